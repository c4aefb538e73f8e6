// Scenario 10: message search and threads. Bob writes in a room, starts a
// thread and answers in it (through the API). Alice searches the room from
// its menu and finds the message with the ones around it; the result,
// far back in the history, opens the timeline there (through /context);
// she opens the room's threads in the panel beside the timeline, the
// thread with its reply, and answers in it; Bob's
// view of the thread (the server's) then holds her reply. Then she makes
// the room invitation-only, its history readable from joining, Bob a
// moderator, gives it a picture and mutes it, from the room's settings.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import path from "node:path";
import { api, lacks, launchBrowser, loginUI, newPerson, registerApi, resultsDir, scenario, startStack, uniqueName, until } from "./harness.mjs";

let stack;
let browser;
let missing = null;

before(async () => {
  stack = await startStack();
  if (await lacks(stack.api, "POST", "/_matrix/client/v3/search")) missing = "/search";
  else if (await lacks(stack.api, "GET", "/_matrix/client/v1/rooms/!x:localhost/threads")) missing = "/threads";
  if (missing) {
    console.log(`SKIPPED: server lacks ${missing}`);
    return;
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test("scenario 14: search a room's messages, open a thread and reply in it, room settings", { timeout: 120_000 }, async (t) => {
  if (missing) {
    t.skip(`server lacks ${missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password);
  const b = await registerApi(stack.api, uniqueName("bob"), password);
  const call = (who, method, p, body) => api(stack.api, who.access_token, method, p, body);
  const { room_id: room } = await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Physics lab", preset: "public_chat" });
  await call(b, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});
  const say = (who, content) => call(who, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/m.room.message/${uniqueName("t")}`, content);
  await say(b, { msgtype: "m.text", body: "good morning" });
  await say(b, { msgtype: "m.text", body: "the pendulum period came out at 2.01 seconds" });
  await say(b, { msgtype: "m.text", body: "next week: springs" });
  const { event_id: root } = await say(b, { msgtype: "m.text", body: "who has the stopwatch?" });
  await say(b, { msgtype: "m.text", body: "I think it is in the cupboard", "m.relates_to": { rel_type: "m.thread", event_id: root, is_falling_back: true, "m.in_reply_to": { event_id: root } } });
  // Enough later chatter that the searched message is far beyond what the
  // client's first sync and its first scroll-back load.
  for (let i = 0; i < 80; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, j) => say(b, { msgtype: "m.text", body: `filler ${i + j}` })));
  }
  const { event_id: latest } = await say(b, { msgtype: "m.text", body: "that is all for today" });

  const alice = await newPerson(browser, "alice");
  const A = alice.page;
  await scenario("scenario-14-search-threads", [alice], async () => {
    await loginUI(A, stack.url, a.user_id, password);
    await A.locator(".room-list .room-button", { hasText: "Physics lab" }).click();
    await A.locator("#room-title", { hasText: "Physics lab" }).waitFor();

    // Search.
    await A.getByRole("button", { name: "Room options" }).click();
    await A.getByRole("menuitem", { name: "Search messages" }).click();
    const search = A.getByRole("dialog", { name: "Search in Physics lab" });
    await search.getByLabel("Words to find").fill("pendulum");
    await A.keyboard.press("Enter");
    const hit = search.locator(".search-results > li").first();
    await hit.locator(".search-hit", { hasText: "2.01 seconds" }).waitFor();
    // With its context: the message before and the one after.
    await hit.locator(".search-context", { hasText: "good morning" }).waitFor();
    await hit.locator(".search-context", { hasText: "next week: springs" }).waitFor();
    assert.equal(await search.locator(".search-results > li").count(), 1);
    // The result opens the conversation at that message: loaded with
    // /context (it is not in the timeline the client has), scrolled into
    // view, highlighted and focused.
    const contextCalls = [];
    A.on("request", (r) => {
      if (r.url().includes("/context/")) contextCalls.push(r.url());
    });
    assert.equal(await A.locator("li.event", { hasText: "2.01 seconds" }).count(), 0, "the message is not loaded before the jump");
    await hit.getByRole("button", { name: /2\.01 seconds.*Show in the conversation/ }).click();
    await search.waitFor({ state: "detached" });
    const jumped = A.locator("li.event.jumped");
    await jumped.waitFor({ timeout: 20_000 });
    assert.match(await jumped.innerText(), /2\.01 seconds/);
    assert.equal(await jumped.getAttribute("aria-current"), "true");
    assert.ok(contextCalls.length > 0, "the message was loaded with /context");
    await until("the message in view", async () => {
      const [m, tl] = await Promise.all([jumped.boundingBox(), A.locator(".timeline").boundingBox()]);
      return m && tl && m.y >= tl.y && m.y + Math.min(m.height, 40) <= tl.y + tl.height ? true : { ok: false, m, tl };
    });
    assert.equal(await jumped.evaluate((el) => el === document.activeElement), true, "focus on the message");
    await A.screenshot({ path: path.join(resultsDir, "scenario-14-search-jump.png") });
    // Back to the present.
    await A.getByRole("button", { name: "Jump to the latest" }).click();
    await A.locator(`li.event[data-event-id="${latest}"]`).waitFor();
    assert.equal(await A.locator(".timeline-older").count(), 0);
    await A.getByRole("button", { name: "Room options" }).click();
    await A.getByRole("menuitem", { name: "Search messages" }).click();
    await search.getByLabel("Words to find").fill("nothing-like-this");
    await A.keyboard.press("Enter");
    await search.getByText("No message matches.").waitFor();
    await A.keyboard.press("Escape");
    await search.waitFor({ state: "detached" });

    // Threads.
    await A.getByRole("button", { name: "Room options" }).click();
    await A.getByRole("menuitem", { name: "Threads" }).click();
    // A panel beside the timeline, not a dialog over it.
    const threads = A.getByRole("complementary", { name: "Threads in Physics lab" });
    await threads.waitFor();
    const [panelBox, timelineBox] = await Promise.all([threads.boundingBox(), A.locator(".timeline").boundingBox()]);
    assert.ok(panelBox.x >= timelineBox.x + timelineBox.width - 1, `the threads are beside the timeline: ${JSON.stringify({ panelBox, timelineBox })}`);
    assert.ok(timelineBox.width > 400, "the timeline stays readable");
    assert.equal(await A.getByRole("dialog").count(), 0);
    const open = threads.getByRole("button", { name: /who has the stopwatch\?/ });
    await open.waitFor();
    assert.match(await open.innerText(), /1 replies/);
    await open.click();
    await threads.locator(".thread-replies", { hasText: "in the cupboard" }).waitFor();
    await threads.getByLabel("Reply in the thread").fill("found it, thanks");
    await A.keyboard.press("Enter");
    await threads.locator(".thread-replies", { hasText: "found it, thanks" }).waitFor();

    const rel = await until("Alice's reply in the thread on the server", async () => {
      const r = await call(b, "GET", `/_matrix/client/v1/rooms/${encodeURIComponent(room)}/relations/${encodeURIComponent(root)}/m.thread`);
      return r.chunk.some((e) => e.content?.body === "found it, thanks") ? r : null;
    });
    assert.equal(rel.chunk.length, 2);
    // Escape closes the panel, focus back on the room's menu.
    await A.keyboard.press("Escape");
    await threads.waitFor({ state: "detached" });
    assert.equal(await A.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Room options");

    // Room settings: who may join, who may read the history, mute.
    await A.getByRole("button", { name: "Room options" }).click();
    await A.getByRole("menuitem", { name: "Room settings" }).click();
    const settings = A.getByRole("dialog", { name: "Settings of Physics lab" });
    assert.equal(await settings.getByLabel("Who can join").inputValue(), "public");
    await settings.getByLabel("Who can join").selectOption("invite");
    await settings.getByLabel("Who can read the history").selectOption("joined");
    await settings.getByLabel("Mute notifications").check();
    // A picture for the room.
    const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");
    await settings.getByLabel("Change the room's picture").setInputFiles({ name: "lab.png", mimeType: "image/png", buffer: png });
    await settings.locator(".avatar-picker img").waitFor();
    // Bob becomes a moderator.
    await settings.locator(`select[name="role-${b.user_id}"]`).selectOption({ label: "Moderator" });
    await settings.getByRole("button", { name: "Save" }).click();
    await settings.waitFor({ state: "detached" });
    const state = (type) => call(a, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/${type}/`);
    assert.equal((await state("m.room.join_rules")).join_rule, "invite");
    assert.equal((await state("m.room.history_visibility")).history_visibility, "joined");
    assert.equal((await state("m.room.power_levels")).users[b.user_id], 50);
    assert.match((await state("m.room.avatar")).url, /^mxc:\/\//);
    const mute = await call(a, "GET", `/_matrix/client/v3/pushrules/global/override/${encodeURIComponent(room)}`);
    assert.deepEqual(mute.actions, []);
  });
});
