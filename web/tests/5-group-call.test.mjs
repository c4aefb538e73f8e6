// Scenario 5: a group call with three participants in a voice channel
// (a room created with type org.matrix.msc3417.call). Opening the channel
// shows its call; each person joins through the web client (MatrixRTC
// membership, a token from Salon's JWT service, livekit-client to the
// embedded SFU); each page must decode the other two's video; the room
// list and the call header say "3 in call" from the MatrixRTC memberships;
// Alice mutes her microphone with the keyboard and Bob and Carol see the
// mute indicator on her tile. Carol is on a phone-sized screen in French.
import assert from "node:assert/strict";
import { test } from "node:test";
import path from "node:path";
import { api, loginUI, newPerson, registerApi, resultsDir, scenario, stackAndBrowser, uniqueName, unlabelledControls, until } from "./harness.mjs";

const env = stackAndBrowser("scenario 5");

/**
 * What a page decodes from each other user: the tile's <video> (size and
 * frames shown) and the LiveKit receiver's framesDecoded from getStats.
 */
function decoded(page, others) {
  return page.evaluate(async (others) => {
    const out = {};
    const call = window.salonCall;
    for (const u of others) {
      const v = document.querySelector(`.call-tile[data-user="${u}"][data-source="camera"] video`);
      let framesDecoded = 0;
      for (const p of call ? call.lk.remoteParticipants.values() : []) {
        if (p.name !== u) continue;
        const track = p.getTrackPublication("camera")?.track;
        const stats = track?.receiver ? await track.receiver.getStats() : null;
        stats?.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") framesDecoded += s.framesDecoded || 0;
        });
      }
      out[u] = {
        width: v ? v.videoWidth : 0,
        shown: v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0,
        framesDecoded,
      };
    }
    return out;
  }, others);
}

test("scenario 5: a group call with three people in a voice channel", { timeout: 150_000 }, async () => {
  const password = "correct horse battery staple";
  const users = await Promise.all(["alice", "bob", "carol"].map((n) => registerApi(env.stack.api, uniqueName(n), password)));
  const [a, b, c] = users;
  const { room_id: room } = await api(env.stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", {
    name: "Lounge",
    preset: "public_chat",
    creation_content: { type: "org.matrix.msc3417.call" },
  });
  for (const u of [b, c]) await api(env.stack.api, u.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});

  // No traces: three pages encoding and decoding video share two cores.
  const alice = await newPerson(env.browser, "alice", { trace: false });
  const bob = await newPerson(env.browser, "bob", { trace: false });
  const carol = await newPerson(env.browser, "carol", { trace: false, locale: "fr-FR", viewport: { width: 390, height: 844 } });
  const people = [alice, bob, carol];

  await scenario("scenario-5-group-call", people, async () => {
    await Promise.all(people.map((p, i) => loginUI(p.page, env.stack.url, users[i].user_id, password)));

    // Opening the voice channel shows its call (drop-in): a join button,
    // nobody in it yet.
    for (const [i, p] of people.entries()) {
      await p.page.locator(`.room-button[data-room-id="${room}"]`).click();
      await p.page.locator(".call.lobby .call-join").waitFor();
      // Alice and Bob with the keyboard-free path. A voice channel offers
      // the microphone alone; everyone here turns the camera on as well.
      if (i < 2) assert.equal(await p.page.locator(".call.lobby .call-join").textContent(), "Join call");
      const camera = p.page.locator(".call.lobby").getByLabel(i < 2 ? "Camera" : "Caméra", { exact: true });
      assert.equal(await camera.isChecked(), false, `${p.name}: the camera is off by default in a voice channel`);
      assert.equal(await p.page.locator(".call.lobby").getByLabel(i < 2 ? "Microphone" : "Micro", { exact: true }).isChecked(), true);
      await camera.check();
    }
    assert.equal(await carol.page.locator(".call.lobby .call-join").textContent(), "Rejoindre l’appel");

    // Alice joins; the others see "1 in call" from her MatrixRTC membership before joining.
    await alice.page.locator(".call.lobby .call-join").click();
    await alice.page.locator(".call.in-call").waitFor();
    await bob.page.locator(".call.lobby .call-count", { hasText: "1 in call" }).waitFor({ timeout: 20_000 });
    await bob.page.locator(".call.lobby .call-lobby-people li").first().waitFor();
    await bob.page.locator(".call.lobby .call-join").click();
    await carol.page.locator(".call.lobby .call-join").click();
    for (const p of people) await p.page.locator(".call.in-call").waitFor({ timeout: 20_000 });

    // Every page decodes the other two's video.
    for (const [i, p] of people.entries()) {
      const others = users.filter((_, j) => j !== i).map((u) => u.user_id);
      const seen = await until(`${p.name} decoding ${others.join(", ")}`, async () => {
        const d = await decoded(p.page, others);
        const ok = Object.values(d).every((x) => x.width > 0 && x.shown > 0 && x.framesDecoded > 0);
        return { ok, d };
      });
      console.log(`# ${p.name} decodes: ${JSON.stringify(seen.d)}`);
    }

    // "3 in call", from the memberships: in the call header everywhere,
    // and under the voice channel in Alice's and Bob's room lists.
    await alice.page.locator(".call-head .call-count", { hasText: "3 in call" }).waitFor({ timeout: 20_000 });
    await carol.page.locator(".call-head .call-count", { hasText: "3 dans l’appel" }).waitFor({ timeout: 20_000 });
    const presence = bob.page.locator(`.room-item:has(.room-button[data-room-id="${room}"]) .call-presence`);
    await presence.locator(".call-count", { hasText: "3 in call" }).waitFor({ timeout: 20_000 });
    assert.equal(await presence.locator("li").count(), 3);

    // Everyone's microphone is on, as the others see it.
    for (const p of [bob, carol]) {
      await p.page.locator(`.call-tile[data-user="${a.user_id}"][data-source="camera"][data-mic="on"]`).waitFor({ timeout: 15_000 });
    }

    // Alice mutes with the keyboard: Tab reaches the labelled mute button.
    const mute = alice.page.getByRole("button", { name: "Mute microphone" });
    await mute.waitFor();
    let reached = false;
    await alice.page.locator("body").click({ position: { x: 1, y: 1 } });
    for (let i = 0; i < 80 && !reached; i++) {
      await alice.page.keyboard.press("Tab");
      reached = await alice.page.evaluate(() => document.activeElement?.classList.contains("call-mic") ?? false);
    }
    assert.ok(reached, "the microphone button is reachable with Tab");
    await alice.page.keyboard.press("Enter");
    await alice.page.getByRole("button", { name: "Unmute microphone" }).waitFor();

    // Bob and Carol see the mute indicator on Alice's tile.
    for (const p of [bob, carol]) {
      const tile = p.page.locator(`.call-tile[data-user="${a.user_id}"][data-source="camera"][data-mic="off"]`);
      await tile.waitFor({ timeout: 15_000 });
      assert.ok(await tile.locator(".call-muted").isVisible(), `${p.name} sees the mute indicator`);
    }
    assert.ok(await carol.page.locator(`.call-tile[data-user="${a.user_id}"] .call-muted`, { hasText: "Micro coupé" }).count(), "the indicator in French");
    // Bob's and Carol's microphones stay on.
    await alice.page.locator(`.call-tile[data-user="${b.user_id}"][data-mic="on"]`).waitFor();

    // The call as each person sees it now (the final screenshots come
    // after some have left).
    for (const p of people) await p.page.screenshot({ path: path.join(resultsDir, `scenario-5-in-call-${p.name}.png`) });
    // Device choice: the fake camera and microphone are offered.
    await alice.page.getByRole("button", { name: "Devices" }).click();
    const devices = alice.page.getByRole("group", { name: "Devices" });
    await devices.getByLabel("Camera").locator("option").first().waitFor({ state: "attached" });
    assert.ok((await devices.getByLabel("Microphone").locator("option").count()) > 0, "microphones listed");

    // Every control in the call has a name a screen reader announces.
    for (const p of people) assert.deepEqual(await unlabelledControls(p.page), [], `${p.name}: unlabelled controls`);

    // Carol leaves: the others' calls go on with two.
    await carol.page.getByRole("button", { name: "Quitter l’appel" }).click();
    await carol.page.locator(".call.lobby").waitFor();
    await alice.page.locator(`.call-tile[data-user="${c.user_id}"]`).waitFor({ state: "detached", timeout: 20_000 });
    await alice.page.locator(".call-head .call-count", { hasText: "2 in call" }).waitFor({ timeout: 20_000 });
    // Bob still sees Alice.
    await bob.page.locator(`.call-tile[data-user="${c.user_id}"]`).waitFor({ state: "detached", timeout: 20_000 });
    await bob.page.locator(`.call-tile[data-user="${a.user_id}"][data-source="camera"] video`).waitFor();
  });
});
