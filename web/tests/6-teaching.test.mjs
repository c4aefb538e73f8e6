// Scenario 6: teaching mode. Alice (the room's creator, a moderator)
// turns teaching mode on from the call view and joins; Bob joins as a
// listener: his microphone and camera buttons are disabled and an attempt
// to publish his microphone is refused, by his client and by the SFU. Bob raises his hand (an m.reaction
// on his call membership, Element Call's convention); Alice sees it and
// lets him speak; Bob's buttons enable while he stays in the call (same
// LiveKit session, the grant changes live), he turns his microphone on and
// Alice receives his audio. Alice then stops him speaking and his
// microphone button is disabled again. Bob's screen is phone-sized.
//
// Needs the server side of teaching mode and live grants (the SFU updates
// a participant's permission when the room's teaching event changes).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import path from "node:path";
import { api, launchBrowser, loginUI, newPerson, registerApi, resultsDir, scenario, startStack, uniqueName, unlabelledControls, until } from "./harness.mjs";

let stack;
let browser;

before(async () => {
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Audio Alice receives from user: the subscribed track's packets and bytes. */
function audioFrom(page, user) {
  return page.evaluate(async (user) => {
    const call = window.salonCall;
    for (const p of call ? call.lk.remoteParticipants.values() : []) {
      if (p.name !== user) continue;
      const track = p.getTrackPublication("microphone")?.track;
      if (!track?.receiver) return { ok: false, why: "no subscribed microphone track" };
      let packets = 0;
      (await track.receiver.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio") packets += s.packetsReceived || 0;
      });
      const el = document.querySelector(`audio[data-user="${user}"]`);
      return { ok: packets > 0 && !!el?.srcObject, packets, element: !!el };
    }
    return { ok: false, why: "no participant" };
  }, user);
}

test("scenario 6: teaching mode, a raised hand, let speak, stop", { timeout: 150_000 }, async () => {
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("teacher"), password);
  const b = await registerApi(stack.api, uniqueName("pupil"), password);
  const { room_id: room } = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", { name: "Lesson", preset: "public_chat" });
  await api(stack.api, b.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});
  // A third pupil (never in the call): a room of two has the one-to-one
  // call's menu instead of the group call's button.
  const c = await registerApi(stack.api, uniqueName("pupil2"), password);
  await api(stack.api, c.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});

  const alice = await newPerson(browser, "alice", { trace: false });
  const bob = await newPerson(browser, "bob", { trace: false, viewport: { width: 390, height: 844 } });
  const A = alice.page;
  const B = bob.page;

  await scenario("scenario-6-teaching", [alice, bob], async () => {
    await Promise.all([loginUI(A, stack.url, a.user_id, password), loginUI(B, stack.url, b.user_id, password)]);
    for (const p of [A, B]) {
      await p.locator(`.room-button[data-room-id="${room}"]`).click();
      // A plain room: the call opens from the header's call button.
      await p.locator(".room-head .call-button").click();
      await p.locator(".call.lobby .call-join").waitFor();
    }

    // Alice, a moderator, turns teaching mode on; Bob cannot (no switch).
    // The switch shows the room's state: a redraw before the state event
    // comes back may show it off again for a moment, so click, then wait.
    await A.getByRole("checkbox", { name: "Teaching mode" }).click();
    await until("the teaching event", async () => {
      const s = await api(stack.api, a.access_token, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/org.salonhq.call.teaching/`).catch(() => null);
      return s?.enabled === true;
    });
    await A.getByRole("checkbox", { name: "Teaching mode", checked: true }).waitFor();
    assert.equal(await B.getByRole("checkbox", { name: "Teaching mode" }).count(), 0, "a listener has no teaching switch");
    await B.locator(".call.lobby .call-note", { hasText: "You are listening" }).waitFor({ timeout: 15_000 });

    await A.locator(".call.lobby .call-join").click();
    await A.locator(".call.in-call").waitFor({ timeout: 20_000 });
    await B.locator(".call.lobby .call-join").click();
    await B.locator(".call.in-call").waitFor({ timeout: 20_000 });

    // Bob listens: his publish buttons are disabled, and publishing his
    // microphone anyway is refused by his grant.
    const bobMic = B.locator(".call-controls .call-mic");
    await until("Bob's grant to arrive", () => B.evaluate(() => !!window.salonCall?.lk.localParticipant.permissions));
    assert.ok(await bobMic.isDisabled(), "Bob's microphone button is disabled");
    assert.ok(await B.locator(".call-controls .call-camera").isDisabled(), "Bob's camera button is disabled");
    assert.ok(await B.locator(".call-controls .call-screen").isDisabled(), "Bob's screen button is disabled");
    const attempt = await B.evaluate(() =>
      window.salonCall.lk.localParticipant.setMicrophoneEnabled(true).then(
        () => "published",
        (e) => `refused: ${e?.message ?? e}`,
      ),
    );
    assert.match(attempt, /^refused/, "publishing the microphone is refused");
    assert.equal(await B.evaluate(() => window.salonCall.setMic(true)), false);
    await B.getByRole("alert").filter({ hasText: "You may not publish this now." }).waitFor();
    // And the SFU refuses it too: with the client's own check bypassed, the
    // add-track request is answered NOT_ALLOWED and never published
    // (livekit-client then gives up after its 10 s publication timeout).
    const forced = await B.evaluate(async () => {
      const lp = window.salonCall.lk.localParticipant;
      const granted = lp.permissions;
      lp.permissions = { ...granted, canPublish: true, canPublishSources: [] };
      try {
        await lp.setMicrophoneEnabled(true);
        return "published";
      } catch (e) {
        return `refused: ${e?.message ?? e}`;
      } finally {
        lp.permissions = granted;
        await lp.setMicrophoneEnabled(false).catch(() => undefined);
      }
    });
    console.log(`# forced publish: ${forced}`);
    assert.match(forced, /^refused/, "the SFU refuses the microphone");
    assert.equal((await audioFrom(A, b.user_id)).ok, false, "Alice receives no audio from Bob");
    const sid = await B.evaluate(() => window.salonCall.lk.localParticipant.sid);
    // Alice sees Bob among the listeners, with no microphone.
    await A.locator(`.call-audience .call-tile[data-user="${b.user_id}"][data-mic="off"]`).waitFor({ timeout: 15_000 });

    // Bob raises his hand; Alice sees it and lets him speak.
    await B.getByRole("button", { name: "Raise hand" }).click();
    await B.getByRole("button", { name: "Lower hand", pressed: true }).waitFor({ timeout: 15_000 });
    const hand = A.locator(`.call-hands li[data-user="${b.user_id}"]`);
    await hand.waitFor({ timeout: 15_000 });
    await A.locator(`.call-audience .call-tile[data-user="${b.user_id}"] .call-hand`).waitFor();
    await hand.getByRole("button", { name: /^Let .* speak$/ }).click();

    // The grant changes live: Bob's buttons enable in the same session.
    await B.locator(".call-controls .call-mic:not([disabled])").waitFor({ timeout: 20_000 });
    assert.equal(await B.evaluate(() => window.salonCall.lk.localParticipant.sid), sid, "Bob did not rejoin");
    // His hand went down by itself, and he is on the stage.
    await A.locator(`.call-hands li[data-user="${b.user_id}"]`).waitFor({ state: "detached", timeout: 15_000 });
    await A.locator(`.call-grid .call-tile[data-user="${b.user_id}"]`).waitFor({ timeout: 15_000 });

    // Bob speaks: Alice receives his audio.
    await B.getByRole("button", { name: "Unmute microphone" }).click();
    await B.getByRole("button", { name: "Mute microphone" }).waitFor({ timeout: 15_000 });
    await A.locator(`.call-tile[data-user="${b.user_id}"][data-mic="on"]`).waitFor({ timeout: 15_000 });
    const heard = await until("Alice receiving Bob's audio", () => audioFrom(A, b.user_id));
    console.log(`# Alice receives Bob's microphone: ${JSON.stringify(heard)}`);

    // The call as each person sees it now (the final screenshots come
    // after some have left).
    for (const p of [alice, bob]) await p.page.screenshot({ path: path.join(resultsDir, `scenario-6-speaking-${p.name}.png`) });
    for (const p of [alice, bob]) assert.deepEqual(await unlabelledControls(p.page), [], `${p.name}: unlabelled controls`);

    // Alice takes the floor back: Bob's microphone is disabled again and
    // his track is gone from her view.
    await A.locator(`.call-speakers li[data-user="${b.user_id}"]`).getByRole("button", { name: /^Stop .* speaking$/ }).click();
    await B.locator(".call-controls .call-mic[disabled]").waitFor({ timeout: 20_000 });
    await A.locator(`.call-audience .call-tile[data-user="${b.user_id}"][data-mic="off"]`).waitFor({ timeout: 20_000 });
    assert.equal(await B.evaluate(() => window.salonCall.lk.localParticipant.sid), sid, "Bob is still in the same session");
  });
});
