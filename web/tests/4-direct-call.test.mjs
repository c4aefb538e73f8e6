// Scenario 4: a one-to-one video call in a direct conversation, over
// Matrix's legacy VoIP and Salon's embedded TURN relay. Alice (desktop,
// English) calls Bob (phone-sized, French) from the DM's header; Bob,
// who is looking at his room list, accepts from the incoming-call banner.
// Both must decode the other's video (inbound-rtp framesDecoded > 0 from
// the peer connection's getStats), and with the client's forceTURN both
// ends' selected candidate pair must use a relay candidate: the media went
// through Salon's TURN. Bob mutes his microphone from the keyboard; Alice
// hangs up; both see the call ended and their peer connections closed.
// Then Bob declines a voice call from the banner, and Alice is told; and a
// call ends cleanly when Bob leaves the page in the middle of it.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import { api, lacks, launchBrowser, loginUI, newPerson, registerApi, resultsDir, scenario, startStack, uniqueName, unlabelledControls } from "./harness.mjs";

let stack;
let browser;
let missing = null;

// The relay on free loopback ports. Relaying to loopback peers is refused
// by default (turn/peer.go); here both browsers are on 127.0.0.1.
const config = `turn:
  listen_udp: 127.0.0.1:0
  listen_tcp: 127.0.0.1:0
  udp_sockets: 1
  allow_peers: ["127.0.0.0/8"]
`;

before(async () => {
  stack = await startStack({ config });
  if (await lacks(stack.api, "GET", "/_matrix/client/v3/sync")) missing = "/sync";
  else if (await lacks(stack.api, "GET", "/_matrix/client/v3/voip/turnServer")) missing = "/voip/turnServer";
  if (missing) {
    console.log(`SKIPPED: server lacks ${missing} (scenario 4 runs once it answers)`);
    return;
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/**
 * Before any script of the page: every RTCPeerConnection the client makes
 * is kept in window.__salonPCs for the assertions, and the client is told
 * to force TURN (localStorage["salon.forceTURN"], read by src/calls/direct.ts).
 */
function instrument(context) {
  return context.addInitScript(() => {
    localStorage.setItem("salon.forceTURN", "1");
    const Native = window.RTCPeerConnection;
    const made = [];
    Object.defineProperty(window, "__salonPCs", { value: made });
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        made.push(this);
      }
    };
  });
}

/**
 * The media facts of the page's last peer connection: video frames decoded
 * from the other side, and the candidate types of the selected pair.
 */
function mediaFacts(page) {
  return page.evaluate(async () => {
    const pcs = window.__salonPCs;
    const pc = pcs[pcs.length - 1];
    if (!pc) return null;
    const stats = await pc.getStats();
    let framesDecoded = 0;
    let pairId = null;
    const relays = [];
    stats.forEach((s) => {
      if (s.type === "local-candidate" && s.candidateType === "relay") relays.push(`${s.address}:${s.port}`);
      if (s.type === "inbound-rtp" && s.kind === "video") framesDecoded += s.framesDecoded ?? 0;
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId ? stats.get(pairId) : null;
    const local = pair ? stats.get(pair.localCandidateId) : null;
    const remote = pair ? stats.get(pair.remoteCandidateId) : null;
    return {
      count: pcs.length,
      policy: pc.getConfiguration().iceTransportPolicy,
      iceServers: pc.getConfiguration().iceServers?.flatMap((s) => s.urls) ?? [],
      connectionState: pc.connectionState,
      framesDecoded,
      localType: local?.candidateType ?? null,
      remoteType: remote?.candidateType ?? null,
      relayProtocol: local?.relayProtocol ?? null,
      relayServer: local?.url ?? null,
      local: local ? `${local.address}:${local.port}` : null,
      remote: remote ? `${remote.address}:${remote.port}` : null,
      relays,
    };
  });
}

/** Polls mediaFacts until ok(facts) holds, or fails with the last facts seen. */
async function waitMedia(page, who, ok, ms = 30_000) {
  const end = Date.now() + ms;
  let facts = null;
  while (Date.now() < end) {
    facts = await mediaFacts(page);
    if (facts && ok(facts)) return facts;
    await page.waitForTimeout(250);
  }
  throw new Error(`${who}: media did not get there within ${ms} ms; last seen ${JSON.stringify(facts)}`);
}

test("scenario 4: a 1:1 video call in a DM through Salon's TURN, then hang up", { timeout: 120_000 }, async (t) => {
  if (missing) {
    t.skip(`server lacks ${missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password);
  const b = await registerApi(stack.api, uniqueName("bob"), password);
  // The DM, as the client's "Start a conversation" makes it: is_direct on
  // the invitation and m.direct on both sides.
  const { room_id: dm } = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", {
    is_direct: true,
    invite: [b.user_id],
    preset: "trusted_private_chat",
  });
  await api(stack.api, b.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(dm)}`, {});
  await api(stack.api, a.access_token, "PUT", `/_matrix/client/v3/user/${encodeURIComponent(a.user_id)}/account_data/m.direct`, { [b.user_id]: [dm] });
  await api(stack.api, b.access_token, "PUT", `/_matrix/client/v3/user/${encodeURIComponent(b.user_id)}/account_data/m.direct`, { [a.user_id]: [dm] });
  // A room Alice is alone in: no call button there.
  const { room_id: notes } = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", { name: "Notes", preset: "private_chat" });

  const alice = await newPerson(browser, "alice");
  const bob = await newPerson(browser, "bob", { locale: "fr-FR", viewport: { width: 390, height: 844 } });
  await Promise.all([instrument(alice.context), instrument(bob.context)]);
  const A = alice.page;
  const B = bob.page;
  const open = (page, room) => page.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);

  await scenario("scenario-4-direct-call", [alice, bob], async () => {
    await Promise.all([loginUI(A, stack.url, a.user_id, password), loginUI(B, stack.url, b.user_id, password)]);
    // Bob's first sync is done (the SDK listens for calls only after it):
    // his DM with Alice is listed.
    await B.locator(".room-list .room-button", { hasText: a.user_id.slice(1).split(":")[0] }).waitFor();

    await open(A, notes);
    await A.locator("#room-title", { hasText: "Notes" }).waitFor();
    assert.equal(await A.locator(".dmcall-start").count(), 0, "no direct call in a room of one");

    // Alice calls Bob with video from the DM's one call button.
    await open(A, dm);
    const callMenu = A.getByRole("button", { name: "Call", exact: true });
    const place = async (kind) => {
      await callMenu.click();
      await A.getByRole("menuitem", { name: kind }).click();
    };
    await callMenu.waitFor();
    await place("Video call");
    const aliceCall = A.locator("section.dmcall");
    await aliceCall.waitFor();

    // Bob is on his room list (phone: one pane); the banner rings there.
    const banner = B.locator("section.dmcall-incoming");
    await banner.getByRole("heading", { name: /^Appel vidéo de / }).waitFor({ timeout: 20_000 });
    assert.equal(await B.locator(".room-list").count(), 1, "Bob is still on his room list");
    // Alice hears it ring at Bob's end.
    await aliceCall.locator(".dmcall-status", { hasText: "Calling" }).waitFor();
    await banner.getByRole("button", { name: "Répondre" }).click();
    const bobCall = B.locator("section.dmcall");
    await bobCall.waitFor();
    await banner.waitFor({ state: "detached" }); // the banner goes once the call is answered

    await aliceCall.locator(".dmcall-status", { hasText: "Connected" }).waitFor({ timeout: 20_000 });
    await bobCall.locator(".dmcall-status", { hasText: "En communication" }).waitFor({ timeout: 20_000 });

    // Both decode the other's video, and the media goes through the relay.
    const decoding = (f) => f.connectionState === "connected" && f.framesDecoded > 0 && f.localType !== null;
    const [fa, fb] = await Promise.all([waitMedia(A, "alice", decoding), waitMedia(B, "bob", decoding)]);
    console.log(`# alice: ${JSON.stringify(fa)}`);
    console.log(`# bob: ${JSON.stringify(fb)}`);
    for (const [who, f] of [["alice", fa], ["bob", fb]]) {
      assert.equal(f.policy, "relay", `${who}: forceTURN sets iceTransportPolicy relay`);
      assert.ok(f.iceServers.some((u) => /^turn:127\.0\.0\.1:\d+\?transport=udp$/.test(u)), `${who}: Salon's TURN from /voip/turnServer: ${f.iceServers}`);
      assert.equal(f.localType, "relay", `${who}: the selected pair's local candidate is a relay`);
      assert.ok(f.iceServers.includes(f.relayServer), `${who}: relayed by ${f.relayServer}, one of Salon's`);
    }
    // Each end talks to one of the other's relayed addresses (the remote
    // candidate may be peer-reflexive: checks can arrive before the
    // candidate event; and each side may still report a different pair of
    // its UDP and TCP relays while nomination settles).
    assert.ok(fb.relays.includes(fa.remote), `alice reaches one of bob's relayed addresses: ${fa.remote} in ${fb.relays}`);
    assert.ok(fa.relays.includes(fb.remote), `bob reaches one of alice's relayed addresses: ${fb.remote} in ${fa.relays}`);
    // The large video plays the other person's camera; the small one ours.
    for (const p of [A, B]) {
      await p.waitForFunction(() => document.querySelector("video.dmcall-remote")?.videoWidth > 0);
      await p.locator("video.dmcall-local").waitFor();
    }

    // Every control can be announced; Bob mutes his microphone from the
    // keyboard (focus starts on "Raccrocher"; two steps back is the mic).
    for (const p of [A, B]) assert.deepEqual(await unlabelledControls(p), [], "every control has an accessible name");
    assert.equal(await B.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Raccrocher");
    await B.keyboard.press("Shift+Tab");
    await B.keyboard.press("Shift+Tab");
    assert.equal(await B.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Couper le micro");
    await B.keyboard.press("Enter");
    await bobCall.getByRole("button", { name: "Couper le micro", pressed: true }).waitFor();
    const micSent = await B.evaluate(() => {
      const pcs = window.__salonPCs;
      return pcs[pcs.length - 1].getSenders().filter((s) => s.track?.kind === "audio").map((s) => s.track.enabled);
    });
    assert.deepEqual(micSent, [false], "the microphone track is disabled");

    await A.screenshot({ path: path.join(resultsDir, "scenario-4-in-call-alice.png") });
    await B.screenshot({ path: path.join(resultsDir, "scenario-4-in-call-bob.png") });

    // Alice hangs up: both see the call ended, and no peer connection is left open.
    await aliceCall.getByRole("button", { name: "Hang up" }).click();
    await aliceCall.locator(".dmcall-status", { hasText: "Call ended" }).waitFor();
    await bobCall.locator(".dmcall-status", { hasText: "Appel terminé" }).waitFor({ timeout: 20_000 });
    for (const [who, p] of [["alice", A], ["bob", B]]) {
      const states = await p.evaluate(() => window.__salonPCs.map((pc) => [pc.signalingState, pc.connectionState]));
      assert.ok(states.length >= 1, `${who}: made a peer connection`);
      assert.deepEqual(states, states.map(() => ["closed", "closed"]), `${who}: every peer connection is closed`);
    }
    // The ended call is dismissed; the DM is there again, ready for another call.
    await aliceCall.getByRole("button", { name: "Close" }).click();
    await aliceCall.waitFor({ state: "detached" });
    assert.equal(await callMenu.isEnabled(), true);
    await bobCall.getByRole("button", { name: "Fermer" }).click();
    await bobCall.waitFor({ state: "detached" });

    // A voice call Bob declines from the banner: Alice is told, and
    // nothing is left open on either side.
    await place("Voice call");
    await aliceCall.locator(".dmcall-status", { hasText: "Calling" }).waitFor();
    assert.equal(await aliceCall.locator("video.dmcall-local").count(), 0, "no camera in a voice call");
    assert.equal(await aliceCall.getByRole("button", { name: "Turn the camera off" }).count(), 0);
    await banner.getByRole("heading", { name: /^Appel audio de / }).waitFor({ timeout: 20_000 });
    await B.screenshot({ path: path.join(resultsDir, "scenario-4-incoming-bob.png") });
    await banner.getByRole("button", { name: "Refuser" }).click();
    await banner.waitFor({ state: "detached" });
    await aliceCall.locator(".dmcall-status", { hasText: "Call declined" }).waitFor({ timeout: 20_000 });
    for (const [who, p] of [["alice", A], ["bob", B]]) {
      const states = await p.evaluate(() => window.__salonPCs.map((pc) => pc.signalingState));
      assert.equal(states.length, 2, `${who}: one peer connection per call`);
      assert.deepEqual(states, ["closed", "closed"], `${who}: every peer connection is closed`);
    }
    await aliceCall.getByRole("button", { name: "Close" }).click();
    await aliceCall.waitFor({ state: "detached" });

    // Bob leaves the page in the middle of a call: the client hangs up as
    // the page goes, so Alice sees a plain end at once, not the "connection
    // lost" the SDK would report only after its 30 s timeout.
    await place("Voice call");
    await banner.getByRole("button", { name: "Répondre" }).click();
    await aliceCall.locator(".dmcall-status", { hasText: "Connected" }).waitFor({ timeout: 20_000 });
    await B.goto(`${stack.url}/_matrix/client/versions`); // same origin: the init script may read localStorage
    const status = aliceCall.locator(".dmcall-status");
    await status.filter({ hasText: "Call ended" }).waitFor({ timeout: 10_000 });
    assert.doesNotMatch(await status.innerText(), /lost/, "a hang-up, not a lost connection");
  });
});
