// Scenario 9: the keyboard alone, with a bounded number of key presses:
// sign in (focus starts in the username field), the first room is focused
// once the list is there, Ctrl+K finds a room by name and opens it with
// focus in the message box, a message is sent, the timeline is one Tab
// stop whose messages the arrow keys walk, the header's call button opens
// the call with focus on "Join", joining puts focus on the call's
// controls, leaving brings it back to "Join", and Escape closes the panel
// with focus back on the call button. Typed text is not counted.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, launchBrowser, newPerson, registerApi, scenario, startStack, uniqueName, until } from "./harness.mjs";

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

test("scenario 13: keyboard only: sign in, switch room, send, call, leave", { timeout: 180_000 }, async () => {
  const password = "correct horse battery staple";
  const [a, b, c] = await Promise.all(["alice", "bob", "carol"].map((n) => registerApi(stack.api, uniqueName(n), password)));
  const call = (who, method, p, body) => api(stack.api, who.access_token, method, p, body);
  await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Announcements", preset: "public_chat" });
  const { room_id: room } = await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Seminar", preset: "public_chat" });
  for (const who of [b, c]) await call(who, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});
  for (const [who, body] of [
    [b, "first question"],
    [c, "second question"],
  ]) {
    await call(who, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/m.room.message/${uniqueName("t")}`, { msgtype: "m.text", body });
  }

  const alice = await newPerson(browser, "alice");
  const A = alice.page;
  let presses = 0;
  const press = async (key) => {
    presses++;
    await A.keyboard.press(key);
  };
  const focused = () =>
    A.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return "body";
      return `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")} ${(el.getAttribute("aria-label") || el.textContent || "").trim().slice(0, 40)}`;
    });
  const expectFocus = async (what, test) => {
    await until(`focus on ${what}`, async () => {
      const f = await focused();
      return test(f) ? true : { ok: false, focus: f };
    }, 15_000);
  };

  await scenario("scenario-13-keyboard", [alice], async () => {
    await A.goto(stack.url);
    await expectFocus("the username field", (f) => f.startsWith("input"));
    await A.keyboard.type(a.user_id);
    await press("Tab");
    await A.keyboard.type(password);
    await press("Enter");
    await A.locator(".space-button.me").waitFor();
    await expectFocus("a room in the list", (f) => f.includes("room-button"));

    // Ctrl+K: the room switcher.
    await press("Control+k");
    await A.getByRole("dialog", { name: "Go to a room" }).waitFor();
    await A.keyboard.type("semi");
    await press("Enter");
    await A.locator("#room-title", { hasText: "Seminar" }).waitFor();
    await expectFocus("the message box", (f) => f.startsWith("textarea#composer-input"));
    await A.keyboard.type("hello from the keyboard");
    await press("Enter");
    await A.locator("li.event.message", { hasText: "hello from the keyboard" }).waitFor();

    // The timeline is one Tab stop: Shift+Tab from the message box passes
    // the attach button and lands on the newest message; ArrowUp walks back.
    await press("Shift+Tab");
    await press("Shift+Tab");
    await expectFocus("the newest message", (f) => f.startsWith("li.event.message"));
    const newest = await A.evaluate(() => document.activeElement.textContent);
    assert.match(newest, /hello from the keyboard/);
    await press("ArrowUp");
    await expectFocus("the message before", (f) => f.startsWith("li.event.message"));
    assert.match(await A.evaluate(() => document.activeElement.textContent), /second question/);
    assert.equal(await A.locator("li.event.message[tabindex='0']").count(), 1, "one message in the Tab order");

    // Up to the header: the room menu, then the call button.
    await press("Shift+Tab");
    await expectFocus("the room menu", (f) => f.includes("menu-button"));
    await press("Shift+Tab");
    await expectFocus("the call button", (f) => f.includes("call-button"));
    await press("Enter");
    await expectFocus("the join button", (f) => f.includes("call-join"));
    await press("Enter");
    await A.locator(".call.in-call").waitFor({ timeout: 30_000 });
    await expectFocus("the call's controls", (f) => f.includes("call-mic"));
    // "Leave call" is disabled until joining has finished.
    await A.locator(".call-leave:enabled").waitFor({ timeout: 30_000 });
    let steps = 0;
    while (!(await focused()).includes("call-leave") && steps++ < 8) await press("Tab");
    await expectFocus("the leave button", (f) => f.includes("call-leave"));
    await press("Enter");
    await A.locator(".call.lobby").waitFor({ timeout: 30_000 });
    await expectFocus("the join button after leaving", (f) => f.includes("call-join"));
    await press("Escape");
    await A.locator(".call").waitFor({ state: "detached" });
    await expectFocus("the call button", (f) => f.includes("call-button"));

    console.log(`# keyboard path: ${presses} key presses`);
    assert.ok(presses <= 24, `the keyboard path took ${presses} presses`);
  });
});
