// Scenario 8: every main view (with the search, threads and room switcher
// dialogs), on a desktop screen and on a 360-pixel
// phone. On each: axe-core (from npm, injected into the page) finds no
// serious or critical violation; on the phone nothing overflows sideways
// (the page never needs zooming out) and every button is a 44-pixel touch
// target. A screenshot of each view on each screen is saved in
// test-results/ (views-desktop-*.png, views-phone-*.png).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, test } from "node:test";
import { api, lacks, launchBrowser, loginUI, newPerson, registerApi, resultsDir, scenario, startStack, uniqueName } from "./harness.mjs";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

let stack;
let browser;
let missing = null;

before(async () => {
  stack = await startStack();
  if (await lacks(stack.api, "GET", "/_matrix/client/v3/sync")) missing = "/sync";
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

/** axe-core's serious and critical violations on the page, as short strings. */
async function axeViolations(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // The page's own animations and the live timeline do not matter here.
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 4).join(", ")}`);
  });
  return result;
}

/** Elements sticking out of the phone's width, and buttons smaller than a fingertip. */
function phoneProblems(page) {
  return page.evaluate(() => {
    const w = window.innerWidth;
    const out = [];
    if (document.documentElement.scrollWidth > w) out.push(`page is ${document.documentElement.scrollWidth}px wide on a ${w}px screen`);
    const seen = (el) => {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) return null;
      const s = getComputedStyle(el);
      if (s.visibility === "hidden") return null;
      return r;
    };
    const name = (el) => `${el.tagName.toLowerCase()}${el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : ""}${el.getAttribute("aria-label") ? `[${el.getAttribute("aria-label")}]` : el.textContent?.trim() ? `"${el.textContent.trim().slice(0, 24)}"` : ""}`;
    for (const el of document.querySelectorAll("body *")) {
      const r = seen(el);
      if (!r) continue;
      // Inside a scroller that clips it, an element may be wider (long code).
      if (r.right > w + 1 && !el.closest(".timeline pre, .timeline code")) out.push(`${name(el)} reaches ${Math.round(r.right)}px`);
    }
    // A visually hidden input (a file picker) is reached through its label.
    for (const el of document.querySelectorAll("button, a.button, label.button, select, input:not([type=hidden]):not(.visually-hidden)")) {
      const r = seen(el);
      if (!r) continue;
      // Check boxes have their label as target too; reaction chips and
      // links inside text are at least 32.
      const min = el.matches("input[type=checkbox], input[type=radio]") ? 24 : el.matches("button.reaction, button.link") ? 32 : 44;
      if (Math.round(r.height) < min || Math.round(r.width) < min - 20) out.push(`${name(el)} is ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
    return [...new Set(out)].slice(0, 30);
  });
}

test("scenario 12: main views on desktop and phone: axe, no sideways overflow, touch targets, screenshots", { timeout: 300_000 }, async (t) => {
  if (missing) {
    t.skip(`server lacks ${missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password);
  const b = await registerApi(stack.api, uniqueName("bob"), password);
  const call = (who, method, p, body) => api(stack.api, who.access_token, method, p, body);
  const space = await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Physics 101", creation_content: { type: "m.space" }, preset: "public_chat" });
  const room = await call(a, "POST", "/_matrix/client/v3/createRoom", { name: "Lab reports", topic: "Where the week's reports go", preset: "public_chat" });
  await call(a, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(space.room_id)}/state/m.space.child/${encodeURIComponent(room.room_id)}`, { via: ["localhost"] });
  await call(b, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room.room_id)}`, {});
  const send = (who, content) => call(who, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(room.room_id)}/send/m.room.message/${uniqueName("t")}`, content);
  await send(b, {
    msgtype: "m.text",
    body: `Alice: the report for the pendulum experiment is due on Friday, see ${a.user_id}`,
    format: "org.matrix.custom.html",
    formatted_body: `<a href="https://matrix.to/#/${a.user_id}">Alice</a>: the report for the pendulum experiment is due on Friday`,
    "m.mentions": { user_ids: [a.user_id] },
  });
  const { event_id: question } = await send(b, { msgtype: "m.text", body: "Does anyone have the measurements from Tuesday? A long message wraps on a phone instead of widening the page: https://example.org/a/very/long/address/that/does/not/break/anywhere/by/itself" });
  await call(a, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(room.room_id)}/send/m.reaction/${uniqueName("r")}`, {
    "m.relates_to": { rel_type: "m.annotation", event_id: question, key: "👍" },
  });

  const failures = [];
  // Bob is online (presence, which the member list shows).
  await call(b, "PUT", `/_matrix/client/v3/presence/${encodeURIComponent(b.user_id)}/status`, { presence: "online" });

  for (const screen of ["desktop", "phone"]) {
    const phone = screen === "phone";
    const alice = await newPerson(browser, `alice-${screen}`, phone ? { viewport: { width: 360, height: 740 }, mobile: true } : {});
    const A = alice.page;
    const check = async (view) => {
      // Let the last render and any transition settle.
      await A.waitForTimeout(150);
      await A.screenshot({ path: path.join(resultsDir, `views-${screen}-${view}.png`) });
      const axe = await axeViolations(A);
      for (const v of axe) failures.push(`${screen} ${view}: axe ${v}`);
      if (phone) for (const p of await phoneProblems(A)) failures.push(`${screen} ${view}: ${p}`);
    };
    await scenario(`scenario-12-views-${screen}`, [alice], async () => {
      await loginUI(A, stack.url, a.user_id, password);
      await A.locator(".room-list .room-button", { hasText: "Lab reports" }).waitFor();
      await check("home");
      assert.equal(await A.getByRole("main").count(), 1, `${screen}: the home view has one main landmark`);

      await A.locator(".spaces-bar").getByRole("button", { name: /Physics 101/ }).click();
      await A.locator(".list-title", { hasText: "Physics 101" }).waitFor();
      await check("space-list");
      await A.getByRole("button", { name: "Browse the space" }).click();
      await A.locator("#space-title").waitFor();
      await check("space-home");
      if (phone) await A.getByRole("button", { name: "Back to the room list" }).first().click();

      await A.locator(".room-list .room-button", { hasText: "Lab reports" }).click();
      await A.locator("#room-title", { hasText: "Lab reports" }).waitFor();
      await A.locator("li.event.message", { hasText: "measurements" }).waitFor();
      await A.locator("button.reaction").first().waitFor();
      await check("room");

      await A.getByRole("button", { name: "Room options" }).click();
      await A.getByRole("menu").waitFor();
      await check("room-menu");
      await A.getByRole("menuitemcheckbox", { name: "Show members" }).click();
      await A.locator(".members-panel").waitFor();
      await A.locator(`.members-panel .member[data-user-id="${b.user_id}"][data-presence="online"]`).waitFor();
      await check("members");
      await A.keyboard.press("Escape");
      if (await A.locator(".members-panel").count()) await A.locator(".members-panel").getByRole("button").first().click();

      await A.getByRole("button", { name: "Room options" }).click();
      await A.getByRole("menuitem", { name: "Invite" }).click();
      await A.getByRole("dialog").waitFor();
      await check("invite");
      // One Escape closes it, even with text in its search field.
      await A.getByRole("dialog").getByRole("searchbox").first().fill("bob");
      await A.keyboard.press("Escape");
      await A.getByRole("dialog").waitFor({ state: "detached" });

      await A.getByRole("button", { name: "Room options" }).click();
      await A.getByRole("menuitem", { name: "Room settings" }).click();
      await A.getByRole("dialog").waitFor();
      await check("room-settings");
      await A.keyboard.press("Escape");
      await A.getByRole("dialog").waitFor({ state: "detached" });

      await A.getByRole("button", { name: "Room options" }).click();
      await A.getByRole("menuitem", { name: "Search messages" }).click();
      await A.getByRole("dialog").getByLabel("Words to find").fill("report");
      await A.keyboard.press("Enter");
      await A.locator(".search-results .search-hit").first().waitFor();
      await check("search");
      await A.keyboard.press("Escape");
      await A.getByRole("dialog").waitFor({ state: "detached" });

      await A.getByRole("button", { name: "Room options" }).click();
      await A.getByRole("menuitem", { name: "Threads" }).click();
      const threads = A.getByRole("complementary", { name: "Threads in Lab reports" });
      await threads.getByText("No thread in this room yet.").waitFor();
      await check("threads");
      // Beside the timeline on a desktop; the whole screen on a phone.
      const box = await threads.boundingBox();
      if (phone) assert.equal(Math.round(box.width), 360, "the threads fill a phone's width");
      else assert.ok(box.x > (await A.locator(".timeline").boundingBox()).x, "the threads beside the timeline");
      await A.keyboard.press("Escape");
      await threads.waitFor({ state: "detached" });

      await A.keyboard.press("Control+k");
      await A.getByRole("dialog", { name: "Go to a room" }).waitFor();
      await check("switcher");
      await A.keyboard.press("Escape");
      await A.getByRole("dialog").waitFor({ state: "detached" });

      if (phone) await A.getByRole("button", { name: "Back to the room list" }).first().click();
      await A.getByRole("button", { name: `${a.user_id}: settings and sign out` }).click();
      await A.getByRole("dialog", { name: "Settings" }).waitFor();
      await check("settings");
      await A.keyboard.press("Escape");
    });
  }
  assert.deepEqual(failures, [], "problems on the main views");
});
