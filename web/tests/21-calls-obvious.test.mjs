// Scenario 21: calls that are obvious, and a space's rooms removed only on
// purpose. A DM and a two-person room each show exactly one call control
// (a "Call" menu: voice or video), not three; a room of three shows the
// group call's button alone. A voice channel has its own icon in the room
// list, is joined with the microphone and without the camera unless asked
// (the page's getUserMedia calls never ask for video, and no camera track
// is published), and the list then shows who is in it. The × that removes
// a room from a space asks first: "Cancel" keeps it, "Remove" removes it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import path from "node:path";
import { api, launchBrowser, loginUI, newPerson, registerApi, resultsDir, scenario, startStack, uniqueName, until } from "./harness.mjs";

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

test("scenario 21: one call button per room, voice channels without the camera, removing from a space asks", { timeout: 150_000 }, async () => {
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password);
  const b = await registerApi(stack.api, uniqueName("bob"), password);
  const c = await registerApi(stack.api, uniqueName("carol"), password);
  const call = (who, method, p, body) => api(stack.api, who.access_token, method, p, body);
  const join = (who, room) => call(who, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});

  const { room_id: dm } = await call(a, "POST", "/_matrix/client/v3/createRoom", { preset: "trusted_private_chat", is_direct: true, invite: [b.user_id] });
  await join(b, dm);
  await call(a, "PUT", `/_matrix/client/v3/user/${encodeURIComponent(a.user_id)}/account_data/m.direct`, { [b.user_id]: [dm] });
  const { room_id: pair } = await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Pair work", preset: "public_chat" });
  await join(b, pair);
  const { room_id: trio } = await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Trio", preset: "public_chat" });
  await join(b, trio);
  await join(c, trio);
  const { room_id: lounge } = await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Lounge", preset: "public_chat", creation_content: { type: "org.matrix.msc3417.call" } });
  const { room_id: space } = await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Campus", preset: "public_chat", creation_content: { type: "m.space" } });
  const childPath = `/_matrix/client/v3/rooms/${encodeURIComponent(space)}/state/m.space.child/${encodeURIComponent(pair)}`;
  await call(a, "PUT", childPath, { via: ["localhost"] });

  const alice = await newPerson(browser, "alice");
  const A = alice.page;
  // Every getUserMedia call's constraints, before the page's own scripts.
  await alice.context.addInitScript(() => {
    window.__gum = [];
    const md = navigator.mediaDevices;
    const orig = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => {
      window.__gum.push(JSON.parse(JSON.stringify(c ?? {})));
      return orig(c);
    };
  });
  const open = (room) => A.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);
  // The header's call controls: the group call's button and the direct call's.
  const callControls = () => A.locator(".room-head .call-button, .room-head .dmcall-start");

  await scenario("scenario-21-calls-obvious", [alice], async () => {
    await loginUI(A, stack.url, a.user_id, password);

    // A DM and a two-person room: one call control, a menu of voice or video.
    for (const room of [dm, pair]) {
      await open(room);
      await A.locator(".room-head .dmcall-start").waitFor({ timeout: 20_000 });
      assert.equal(await callControls().count(), 1, `one call control in ${room}`);
      assert.equal(await A.locator(".room-head").getByRole("button", { name: /call/i }).count(), 1, "one button named for a call");
      await A.getByRole("button", { name: "Call", exact: true }).click();
      const items = A.getByRole("menu", { name: "Call" }).getByRole("menuitem");
      assert.deepEqual(await items.allTextContents(), ["Voice call", "Video call", "Group call (screen sharing)"]);
      await A.keyboard.press("Escape");
      await A.getByRole("menu", { name: "Call" }).waitFor({ state: "detached" });
    }
    // The group call (screen sharing, teaching mode) stays reachable in a
    // two-person room: its menu item opens the group call's lobby.
    await A.getByRole("button", { name: "Call", exact: true }).click();
    await A.getByRole("menu", { name: "Call" }).getByRole("menuitem", { name: "Group call (screen sharing)" }).click();
    await A.locator(".call.lobby .call-join").waitFor({ timeout: 20_000 });
    await A.keyboard.press("Escape");
    await A.locator(".call.lobby").waitFor({ state: "detached", timeout: 10_000 });
    // Three people: the group call's button alone.
    await open(trio);
    await A.locator("#room-title", { hasText: "Trio" }).waitFor();
    await A.locator(".room-head .call-button").waitFor();
    assert.equal(await callControls().count(), 1, "one call control in a room of three");
    assert.equal(await A.locator(".room-head .dmcall-start").count(), 0);

    // The voice channel's own icon in the room list (no other room has it).
    const loungeItem = A.locator(".room-item", { has: A.locator(`.room-button[data-room-id="${lounge}"]`) });
    await loungeItem.locator(".voice-icon").waitFor();
    assert.equal(await A.locator(".room-button .voice-icon").count(), 1, "only the voice channel has the icon");
    assert.match(await loungeItem.locator(".room-button .visually-hidden").first().textContent(), /Voice channel/);

    // Joining it: the microphone is on, the camera off, and no video is asked for.
    await loungeItem.locator(".room-button").click();
    const lobby = A.locator(".call.lobby.voice");
    await lobby.locator(".call-join").waitFor();
    assert.equal(await lobby.getByLabel("Microphone", { exact: true }).isChecked(), true);
    assert.equal(await lobby.getByLabel("Camera", { exact: true }).isChecked(), false);
    assert.equal(await callControls().count(), 0, "the voice channel's call is its panel, not a header button");
    await lobby.locator(".call-join").click();
    await A.locator(".call.in-call").waitFor({ timeout: 30_000 });
    const media = await until("the microphone published", async () => {
      const m = await A.evaluate(() => {
        const lp = window.salonCall?.lk.localParticipant;
        const cam = lp?.getTrackPublication("camera");
        const mic = lp?.getTrackPublication("microphone");
        return { gum: window.__gum, camera: cam ? { muted: cam.isMuted, track: !!cam.track } : null, mic: mic ? !mic.isMuted : false };
      });
      return m.mic ? m : { ok: false, ...m };
    });
    assert.ok(media.gum.length > 0, "getUserMedia was called for the microphone");
    for (const c of media.gum) {
      assert.ok(!c.video, `getUserMedia asked for no video: ${JSON.stringify(c)}`);
      assert.ok(c.audio, `getUserMedia asked for audio: ${JSON.stringify(c)}`);
    }
    assert.equal(media.camera, null, "no camera track published");
    assert.equal(await A.locator(".call-controls .call-camera.off").count(), 1, "the camera button offers to turn it on");
    // The room list shows who is in the channel.
    await loungeItem.locator(".call-presence", { hasText: "1 in call" }).waitFor({ timeout: 20_000 });
    await A.screenshot({ path: path.join(resultsDir, "scenario-21-voice-channel.png") });
    await A.locator(".call-controls .call-leave").click();
    await A.locator(".call.lobby .call-join").waitFor();

    // Removing a room from a space asks first.
    await A.locator(`.space-button[data-space-id="${space}"]`).click();
    const pairItem = A.locator(".room-list .room-item", { hasText: "Pair work" });
    const remove = A.getByRole("button", { name: "Remove Pair work from the space" });
    await pairItem.hover(); // the room's tools show on hover or focus
    await remove.click();
    const confirm = A.getByRole("dialog", { name: "Remove from the space?" });
    await confirm.waitFor();
    await confirm.getByRole("button", { name: "Cancel" }).click();
    await confirm.waitFor({ state: "detached" });
    const child = () => call(a, "GET", childPath);
    assert.deepEqual((await child()).via, ["localhost"], "Cancel keeps the room in the space");
    await pairItem.hover();
    await remove.click();
    await confirm.getByRole("button", { name: "Remove", exact: true }).click();
    await until("the space child emptied", async () => ((await child()).via === undefined ? true : { ok: false }));
    await A.locator(".room-list .room-button", { hasText: "Pair work" }).waitFor({ state: "detached" });
  });
});
