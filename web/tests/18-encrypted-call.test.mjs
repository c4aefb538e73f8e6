// Scenario 18: a group call in an end-to-end encrypted room. Alice, Bob
// and Carol are members of a private (encrypted) room. Alice and Bob join
// its call: the call view says it is end-to-end encrypted, livekit-client
// encrypts their frames with media keys that matrix-js-sdk's MatrixRTC
// session sends to the call's members over Olm-encrypted to-device
// messages, and each decodes the other's video. Carol's client is cut off
// from every Olm-encrypted to-device message (the test strips them from
// her /sync), so she never gets a media key: she joins, her browser
// receives the others' video bytes from the SFU, and decodes not one frame.
// When Bob leaves, Alice's client makes a new media key.
//
// Bob's browser joins while Alice's key queries about him are held: her
// one media key message from matrix-js-sdk misses his new device, and her
// client sends the key again once the device is known (KeyRedelivery).
//
// On the SFU's side (web/internal/sfuprobe, a LiveKit-protocol subscriber
// outside the browsers, with no key): every VP8 frame the SFU forwards of
// Alice's and Bob's cameras is in livekit-client's encrypted format — the
// clear VP8 header (10 bytes of a key frame, 3 of a delta frame), AES-GCM
// ciphertext, the IV and the trailer (IV length, key index) —, and only
// the members' media keys, taken from Alice's and Bob's pages afterwards,
// authenticate and decrypt them into frames a VP8 decoder decodes. The
// same probe in a call of an unencrypted room finds plain VP8 frames that
// the decoder decodes as they are.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { api, loginUI, newPerson, registerApi, resultsDir, scenario, stackAndBrowser, uniqueName, until } from "./harness.mjs";
import { callToken, pageMediaKeys, probeCall } from "./sfu-probe.mjs";

const env = stackAndBrowser("scenario 18");

/** What the page receives and decodes of each other user's camera. */
function received(page, others) {
  return page.evaluate(async (others) => {
    const out = {};
    const call = window.salonCall;
    for (const u of others) {
      let framesDecoded = 0;
      let bytes = 0;
      for (const p of call ? call.lk.remoteParticipants.values() : []) {
        if (p.name !== u) continue;
        const track = p.getTrackPublication("camera")?.track;
        const stats = track?.receiver ? await track.receiver.getStats() : null;
        stats?.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") {
            framesDecoded += s.framesDecoded || 0;
            bytes += s.bytesReceived || 0;
          }
        });
      }
      out[u] = { framesDecoded, bytes };
    }
    out.e2ee = call ? call.lk.isE2EEEnabled : null;
    out.decryptionErrors = call ? call.decryptionErrors : null;
    return out;
  }, others);
}

async function dismissKey(page) {
  const panel = page.getByRole("region", { name: "Your recovery key" });
  await panel.waitFor({ timeout: 60_000 });
  await panel.getByRole("button", { name: "I have saved it" }).click();
}

async function joinCall(page, room, { publish = true, encrypted = true } = {}) {
  await page.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);
  await page.locator(".room-head .e2e-state", { hasText: encrypted ? "End-to-end encrypted" : "Not encrypted" }).waitFor();
  await page.locator(".room-head .call-button").click();
  if (!publish) {
    // Only watching: less for two shared cores to encode.
    await page.locator(".call.lobby").getByLabel("Camera").uncheck();
    await page.locator(".call.lobby").getByLabel("Microphone").uncheck();
  }
  await page.locator(".call.lobby .call-join").click();
  await page.locator(".call.in-call").waitFor({ timeout: 30_000 });
  if (encrypted) await page.locator(".call-head .call-e2ee", { hasText: "End-to-end encrypted call" }).waitFor();
}

/** The probe's VP8 tracks, each with at least one frame. */
function videoTracks(report) {
  return report.tracks.filter((t) => t.frames > 0);
}

test("scenario 18: an encrypted group call: members decode each other, a member without the key decodes nothing", { timeout: 300_000 }, async () => {
  const password = "correct horse battery staple";
  const users = await Promise.all(["alice", "bob", "carol"].map((n) => registerApi(env.stack.api, uniqueName(n), password)));
  const [a, b, c] = users;
  // Dave is no browser: his token lets the SFU probe join the calls.
  const dave = await registerApi(env.stack.api, uniqueName("dave"), password);
  const { room_id: room } = await api(env.stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", {
    name: "Lab meeting",
    preset: "private_chat",
    invite: [b.user_id, c.user_id],
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
  });
  for (const u of [b, c]) await api(env.stack.api, u.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});
  await api(env.stack.api, a.access_token, "POST", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/invite`, { user_id: dave.user_id });
  await api(env.stack.api, dave.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});
  // An unencrypted room, for the probe's comparison.
  const { room_id: openRoom } = await api(env.stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", { name: "Open seminar", preset: "public_chat" });
  // Three members, so that its header has the group call's button (a two-person room has the "Call" menu).
  for (const u of [c, dave]) await api(env.stack.api, u.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(openRoom)}`, {});

  // No traces: three pages encoding and decoding video share two cores.
  const alice = await newPerson(env.browser, "alice", { trace: false });
  const bob = await newPerson(env.browser, "bob", { trace: false });
  const carol = await newPerson(env.browser, "carol", { trace: false });
  const people = [alice, bob, carol];
  if (process.env.CALL_DEBUG) {
    for (const p of people) p.page.on("console", (m) => (m.type() === "error" || m.type() === "warning") && console.log(`# ${p.name} ${m.type()}: ${m.text().slice(0, 300)}`));
  }

  await scenario("scenario-18-encrypted-call", people, async () => {
    // Alice and Carol sign in first; Bob's browser signs in once Alice is in the call.
    await Promise.all([alice, carol].map((p) => loginUI(p.page, env.stack.url, users[people.indexOf(p)].user_id, password)));
    await Promise.all([alice, carol].map((p) => dismissKey(p.page)));

    // Carol's client never sees an Olm-encrypted to-device message from now on.
    let stripped = 0;
    await carol.page.route(/\/_matrix\/client\/v3\/sync/, async (route) => {
      // The long poll may take its 30 s: no timeout of the route's own.
      let res;
      try {
        res = await route.fetch({ timeout: 0 });
      } catch {
        return; // the page is closing
      }
      const body = await res.json().catch(() => null);
      if (body?.to_device?.events) {
        const before = body.to_device.events.length;
        body.to_device.events = body.to_device.events.filter((e) => e.type !== "m.room.encrypted");
        stripped += before - body.to_device.events.length;
      }
      await route.fulfill({ response: res, json: body ?? undefined }).catch(() => undefined);
    });

    await joinCall(alice.page, room);

    // The race of a key sent to a device whose keys are still being
    // fetched: Alice's key queries that name Bob are held until the test
    // lets them go, so when Bob's new browser joins, Alice's crypto does
    // not know its device yet and matrix-js-sdk's one send of her media
    // key leaves it out. Bob receives her video and decodes none of it;
    // once the query answers, Alice's client sends the key again
    // (KeyRedelivery) and Bob decodes her.
    let release;
    const released = new Promise((r) => (release = r));
    let held = 0;
    await alice.page.route(/\/_matrix\/client\/v3\/keys\/query/, async (route) => {
      if ((route.request().postData() ?? "").includes(b.user_id)) {
        held++;
        await Promise.race([released, new Promise((r) => setTimeout(r, 120_000))]);
      }
      await route.continue().catch(() => undefined);
    });
    await loginUI(bob.page, env.stack.url, b.user_id, password);
    await dismissKey(bob.page);
    await joinCall(bob.page, room);
    // Hold 15 s: the crypto waits a while for a query in flight before it
    // encrypts without the device (with KeyRedelivery turned off, a hold of
    // a few seconds let the SDK's own send reach Bob once it was released).
    const joined = Date.now();
    const unkeyed = await until("Bob receiving Alice's video without her key", async () => {
      const d = await received(bob.page, [a.user_id]);
      return { ok: d[a.user_id].bytes > 20_000 && held > 0 && Date.now() - joined > 15_000, d };
    }, 60_000);
    console.log(`# bob before Alice's crypto knows his device (${held} key queries held): ${JSON.stringify(unkeyed.d)}`);
    assert.equal(unkeyed.d[a.user_id].framesDecoded, 0, "Bob has no key of Alice's while her crypto does not know his device");
    release();
    await alice.page.unroute(/\/_matrix\/client\/v3\/keys\/query/);
    // Before anyone else joins (a joiner can make Alice's SDK rotate and
    // send a new key to everyone), Bob decodes Alice: her client sent the
    // key again once her crypto knew his device.
    const keyed = await until("Bob decoding Alice after her client knows his device", async () => {
      const d = await received(bob.page, [a.user_id]);
      return { ok: d[a.user_id].framesDecoded > 0, d };
    }, 60_000);
    const resent = await alice.page.evaluate(() => window.salonCall.keyRedeliveries);
    console.log(`# bob once Alice's crypto knows his device (Alice sent her key again ${resent} times): ${JSON.stringify(keyed.d)}`);
    assert.ok(resent > 0, "Alice's client sent her key again to Bob's device");

    await joinCall(carol.page, room, { publish: false });

    // Alice and Bob decode each other's video, encrypted end to end.
    for (const [p, other] of [
      [alice, b.user_id],
      [bob, a.user_id],
    ]) {
      const seen = await until(`${p.name} decoding ${other}`, async () => {
        const d = await received(p.page, [other]);
        return { ok: d.e2ee === true && d[other].framesDecoded > 0, d };
      }, 60_000);
      console.log(`# ${p.name}: ${JSON.stringify(seen.d)}`);
    }

    await alice.page.screenshot({ path: path.join(resultsDir, "scenario-18-encrypted-call.png") });

    // Carol gets the bytes, never a key: not one frame decodes.
    const others = [a.user_id, b.user_id];
    await until("Carol receiving the others' video", async () => {
      const d = await received(carol.page, others);
      return { ok: others.every((u) => d[u].bytes > 20_000), d };
    }, 60_000);
    // Alice and Bob still decode meanwhile.
    const before = await received(alice.page, [b.user_id]);
    await new Promise((r) => setTimeout(r, 3000));
    const later = await received(alice.page, [b.user_id]);
    assert.ok(later[b.user_id].framesDecoded > before[b.user_id].framesDecoded, "Alice goes on decoding Bob");
    const d = await received(carol.page, others);
    console.log(`# carol (no key, ${stripped} to-device messages withheld): ${JSON.stringify(d)}`);
    assert.ok(stripped > 0, "the media keys were sent to Carol and withheld by the test");
    for (const u of others) assert.equal(d[u].framesDecoded, 0, `Carol decodes nothing of ${u}`);

    // What the SFU forwards, recorded outside the browsers without a key.
    const probe = await probeCall(await callToken(env.stack.api, dave, room), 8);
    const keys = [...(await pageMediaKeys(alice.page)), ...(await pageMediaKeys(bob.page))];
    const sealed = await probe.check(keys);
    console.log(`# SFU probe, encrypted call (${keys.length} media keys given after recording): ${JSON.stringify(sealed)}`);
    const tracks = videoTracks(sealed);
    assert.ok(tracks.length >= 2, "the probe received Alice's and Bob's cameras");
    for (const t of tracks) {
      assert.ok(t.keyFrames > 0, `${t.sid}: a key frame among the forwarded frames`);
      assert.equal(t.clearHeaderOK, t.frames, `${t.sid}: every frame keeps LiveKit's clear VP8 header`);
      assert.equal(t.sealed, t.frames, `${t.sid}: every frame has LiveKit's E2EE trailer`);
      assert.equal(t.opened, t.frames, `${t.sid}: every frame is AES-GCM ciphertext under a member's media key`);
      assert.equal(t.openedKeyFramesDecoded, t.keyFrames, `${t.sid}: decrypted, the key frames decode`);
      assert.equal(t.rawSameAsOpened, 0, `${t.sid}: as forwarded, no key frame shows the picture`);
    }

    // Bob leaves: Alice's client makes a new media key, which Bob never gets.
    const aliceKey = () =>
      alice.page.evaluate(() => {
        const c = window.salonCall;
        return c.keyIndexes.get(`${c.client.getUserId()}:${c.client.getDeviceId()}`) ?? -1;
      });
    const keyBefore = await aliceKey();
    await bob.page.getByRole("button", { name: "Leave call" }).click();
    const rotated = await until("Alice's new media key after Bob left", async () => {
      const k = await aliceKey();
      return { ok: k !== keyBefore, k };
    }, 60_000);
    console.log(`# alice's media key index: ${keyBefore} before Bob left, ${rotated.k} after`);
    await carol.page.unrouteAll({ behavior: "ignoreErrors" });

    // The same probe in a call of an unencrypted room: plain VP8 frames.
    await alice.page.getByRole("button", { name: "Leave call" }).click();
    await alice.page.locator(".call.in-call").waitFor({ state: "detached" });
    await joinCall(alice.page, openRoom, { encrypted: false });
    await until("Alice publishing in the open room", async () => {
      const on = await alice.page.evaluate(() => !!window.salonCall?.lk.localParticipant.getTrackPublication("camera")?.track);
      return { ok: on };
    }, 30_000);
    const plainProbe = await probeCall(await callToken(env.stack.api, dave, openRoom), 6);
    const plain = await plainProbe.check([]);
    console.log(`# SFU probe, unencrypted call: ${JSON.stringify(plain)}`);
    const plainTracks = videoTracks(plain);
    assert.ok(plainTracks.length >= 1, "the probe received Alice's camera");
    for (const t of plainTracks) {
      assert.ok(t.keyFrames > 0, `${t.sid}: a key frame`);
      assert.equal(t.keyFramesDecoded, t.keyFrames, `${t.sid}: every key frame decodes as forwarded`);
      assert.equal(t.firstPartitionFits, t.frames, `${t.sid}: every frame is well-formed VP8`);
      assert.ok(t.sealed < t.frames / 10, `${t.sid}: frames do not look like LiveKit's E2EE format`);
    }
  });
});
