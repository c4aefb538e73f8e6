// Scenario 7: browser notifications follow the account's push rules. Bob
// (notification permission granted in his browser context) has a group
// room open, then switches to another tab. His account's push rules say
// group messages do not notify (he turned .m.rule.message off), so a plain
// message from Carol does not notify him; Alice's mention does: a
// notification, "(1)" in the first tab's title and a dot on its favicon.
// Bob then mutes the room from the room's menu: another mention there
// stays silent while a direct message still notifies. A keyword he added
// in his settings ("exam") notifies in another group room, where a plain
// message does not.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, lacks, launchBrowser, loginUI, newPerson, registerApi, scenario, startStack, uniqueName, until } from "./harness.mjs";

let stack;
let browser;
let missing = null;

before(async () => {
  // The other people here post through the API, in the clear: in an
  // encrypted room matrix-js-sdk counts unread notifications itself as it
  // decrypts (fixNotificationCountOnDecryption), so plaintext posted into
  // one would never count. This scenario is about notifications, so its
  // rooms are unencrypted; scenario 9 covers encrypted conversations.
  stack = await startStack({ config: 'encryption:\n  default: "off"\n' });
  if (await lacks(stack.api, "GET", "/_matrix/client/v3/pushrules/")) missing = "/pushrules";
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

// Records every notification the page makes (the real one is still made).
function recordNotifications() {
  const Real = window.Notification;
  const notes = [];
  window.__notes = notes;
  function Recorded(title, options) {
    notes.push({ title, body: options?.body ?? "", tag: options?.tag ?? "" });
    return new Real(title, options);
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...a) => Real.requestPermission(...a);
  window.Notification = Recorded;
}

/**
 * Puts the page in the background as a switch of tabs does: headless
 * Chromium keeps every page visible and focused, so the page is told what
 * a browser tells a tab the person left (visibilityState "hidden", no
 * focus, the visibilitychange and blur events).
 */
async function setBackground(page, hidden) {
  await page.evaluate((hidden) => {
    if (!window.__realVisibility) window.__realVisibility = { hasFocus: document.hasFocus.bind(document) };
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    document.hasFocus = hidden ? () => false : window.__realVisibility.hasFocus;
    document.dispatchEvent(new Event("visibilitychange"));
    window.dispatchEvent(new Event(hidden ? "blur" : "focus"));
  }, hidden);
}

test("scenario 11: a mention in a background tab notifies and counts; a muted room does not", { timeout: 180_000 }, async (t) => {
  if (missing) {
    t.skip(`server lacks ${missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password);
  const b = await registerApi(stack.api, uniqueName("bob"), password);
  const c = await registerApi(stack.api, uniqueName("carol"), password);
  const say = (who, roomId, content) => api(stack.api, who.access_token, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${uniqueName("txn")}`, content);

  const group = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", { name: "Study group", preset: "private_chat", invite: [b.user_id, c.user_id] });
  const seminar = await api(stack.api, c.access_token, "POST", "/_matrix/client/v3/createRoom", { name: "Seminar", preset: "private_chat", invite: [a.user_id, b.user_id] });
  const dm = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", { preset: "trusted_private_chat", is_direct: true, invite: [b.user_id] });
  for (const [who, room] of [
    [b, group.room_id],
    [c, group.room_id],
    [b, dm.room_id],
    [b, seminar.room_id],
    [a, seminar.room_id], // three people: not a one-to-one room
  ]) {
    await api(stack.api, who.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});
  }

  // Bob wants only DMs, mentions and keywords: group messages off.
  await api(stack.api, b.access_token, "PUT", "/_matrix/client/v3/pushrules/global/underride/.m.rule.message/enabled", { enabled: false });

  const bob = await newPerson(browser, "bob");
  await bob.context.grantPermissions(["notifications"], { origin: stack.url });
  await bob.context.addInitScript(recordNotifications);
  const B = bob.page;

  await scenario("scenario-11-notifications", [bob], async () => {
    await loginUI(B, stack.url, b.user_id, password);
    // A keyword of his own: "exam".
    await B.getByRole("button", { name: `${b.user_id}: settings and sign out` }).click();
    const settings = B.getByRole("dialog", { name: "Settings" });
    await settings.getByLabel("Also notify me for the word").fill("exam");
    await settings.getByRole("button", { name: "Add", exact: true }).click();
    await settings.getByRole("list", { name: "Keywords" }).getByText("exam").waitFor();
    await B.keyboard.press("Escape");
    await B.locator(".room-list .room-button", { hasText: "Study group" }).click();
    await B.locator("#room-title", { hasText: "Study group" }).waitFor();
    const baseTitle = await B.title();

    // Bob switches to another tab.
    const other = await bob.context.newPage();
    await other.goto(`${stack.url}/favicon.svg`);
    await other.bringToFront();
    await setBackground(B, true);

    // A plain message in a group room: no notification (push rules).
    await say(c, group.room_id, { msgtype: "m.text", body: "lunch at noon" });
    // A mention: a notification, the count in the title, a dot on the icon.
    await say(a, group.room_id, {
      msgtype: "m.text",
      body: `${b.user_id}: can you check the notes?`,
      "m.mentions": { user_ids: [b.user_id] },
    });
    const notes = () => B.evaluate(() => window.__notes);
    await until("the mention's notification", async () => (await notes()).some((n) => n.body.includes("can you check the notes?")));
    const got = await notes();
    assert.equal(got.length, 1, `only the mention notifies: ${JSON.stringify(got)}`);
    assert.equal(got[0].title, "Study group");
    assert.equal(got[0].tag, group.room_id);
    await until("the unread count in the title", async () => (await B.title()) === `(1) ${baseTitle}`);
    const icon = B.locator('link[rel="icon"]');
    assert.equal(await icon.getAttribute("data-unread"), "1");
    await until("the favicon with a dot", async () => (await icon.getAttribute("href")).startsWith("data:image/svg+xml"));

    // Back on the tab: Bob reads the room, the count goes.
    await B.bringToFront();
    await setBackground(B, false);
    await until("the title without a count", async () => (await B.title()) === baseTitle);

    // Bob mutes the room from its menu.
    await B.getByRole("button", { name: "Room options" }).click();
    await B.getByRole("menuitemcheckbox", { name: "Mute notifications" }).click();
    await B.getByRole("button", { name: "Room options" }).click();
    await B.getByRole("menuitemcheckbox", { name: "Mute notifications", checked: true }).waitFor();
    await B.keyboard.press("Escape");
    await other.bringToFront();
    await setBackground(B, true);

    // A mention in the muted room stays silent; a direct message notifies.
    await say(a, group.room_id, { msgtype: "m.text", body: `${b.user_id}: muted mention`, "m.mentions": { user_ids: [b.user_id] } });
    await say(a, dm.room_id, { msgtype: "m.text", body: "are you there?" });
    await until("the direct message's notification", async () => (await notes()).some((n) => n.body.includes("are you there?")));
    assert.deepEqual(
      (await notes()).filter((n) => n.body.includes("muted mention")),
      [],
      "a muted room does not notify",
    );

    // In another group room: a plain message stays silent, the keyword notifies.
    await say(c, seminar.room_id, { msgtype: "m.text", body: "see you there" });
    await say(c, seminar.room_id, { msgtype: "m.text", body: "the exam moved to Friday" });
    await until("the keyword's notification", async () => (await notes()).some((n) => n.body.includes("the exam moved")));
    assert.deepEqual((await notes()).filter((n) => n.body.includes("see you there")), [], "a plain group message does not notify");
    await other.close();
  });
});

// As Chrome on Android: the page may not construct a Notification
// ("Illegal constructor"), only a service worker's registration may show
// one. Every showNotification call is recorded, with its outcome.
function androidLikeNotifications() {
  const Real = window.Notification;
  window.__pageNotes = 0;
  function PageNotification() {
    window.__pageNotes++;
    throw new TypeError("Failed to construct 'Notification': Illegal constructor. Use ServiceWorkerRegistration.showNotification() instead.");
  }
  Object.defineProperty(PageNotification, "permission", { get: () => Real.permission });
  PageNotification.requestPermission = (...a) => Real.requestPermission(...a);
  window.Notification = PageNotification;
  window.__swNotes = [];
  const show = ServiceWorkerRegistration.prototype.showNotification;
  ServiceWorkerRegistration.prototype.showNotification = function (title, options) {
    const note = { title, body: options?.body ?? "", roomId: options?.data?.roomId ?? "", scope: this.scope, shown: null };
    window.__swNotes.push(note);
    return show.call(this, title, options).then(
      () => {
        note.shown = true;
      },
      (err) => {
        note.shown = String(err);
        throw err;
      },
    );
  };
}

test("scenario 11b: where the page may not construct a Notification, the service worker shows it", { timeout: 120_000 }, async (t) => {
  if (missing) {
    t.skip(`server lacks ${missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password);
  const b = await registerApi(stack.api, uniqueName("bob"), password);
  const dm = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", { preset: "trusted_private_chat", is_direct: true, invite: [b.user_id] });
  await api(stack.api, b.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(dm.room_id)}`, {});
  const { room_id: notes } = await api(stack.api, b.access_token, "POST", "/_matrix/client/v3/createRoom", { name: "Notes", preset: "private_chat" });

  const bob = await newPerson(browser, "bob-android");
  await bob.context.grantPermissions(["notifications"], { origin: stack.url });
  await bob.context.addInitScript(androidLikeNotifications);
  const B = bob.page;
  await scenario("scenario-11b-service-worker", [bob], async () => {
    await loginUI(B, stack.url, b.user_id, password);
    await B.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), notes);
    await B.locator("#room-title", { hasText: "Notes" }).waitFor();
    await setBackground(B, true);
    await api(stack.api, a.access_token, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(dm.room_id)}/send/m.room.message/${uniqueName("txn")}`, { msgtype: "m.text", body: "reached through the worker" });
    const shown = await until("the worker's notification", async () => {
      const n = await B.evaluate(() => ({ page: window.__pageNotes, sw: window.__swNotes }));
      return n.sw.some((x) => x.shown !== null) ? n : { ok: false, ...n };
    });
    assert.ok(shown.page >= 1, "the page tried its own constructor first");
    assert.equal(shown.sw.length, 1);
    assert.equal(shown.sw[0].body, "reached through the worker");
    assert.equal(shown.sw[0].roomId, dm.room_id);
    assert.equal(shown.sw[0].shown, true, "the registration showed it");
    assert.equal(shown.sw[0].scope, `${stack.url}/`);
    // The worker is Salon's, active, and the notification is listed on it.
    const listed = await B.evaluate(async () => {
      const reg = await navigator.serviceWorker.ready;
      const list = await reg.getNotifications();
      return { script: reg.active?.scriptURL ?? "", bodies: list.map((n) => n.body) };
    });
    assert.equal(listed.script, `${stack.url}/sw.js`);
    assert.deepEqual(listed.bodies, ["reached through the worker"]);
  });
});
