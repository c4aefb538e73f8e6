// Scenario 11: the person's settings. Alice picks the dark theme (the page
// turns dark and stays so after a reload), uploads a picture (her
// profile's avatar_url), sees her two sessions (this
// one marked) and signs the other out with her password: its access token
// stops working.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, loginUI, newPerson, registerApi, scenario, startStack, uniqueName, until } from "./harness.mjs";

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

test("scenario 15: theme and sessions in the settings", { timeout: 120_000 }, async () => {
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password); // the "setup" session
  const alice = await newPerson(browser, "alice");
  const A = alice.page;
  await scenario("scenario-15-settings", [alice], async () => {
    await loginUI(A, stack.url, a.user_id, password);
    const openSettings = async () => {
      await A.getByRole("button", { name: `${a.user_id}: settings and sign out` }).click();
      return A.getByRole("dialog", { name: "Settings" });
    };
    let settings = await openSettings();

    // Theme.
    const light = await A.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    await settings.getByLabel("Theme").selectOption("dark");
    assert.equal(await A.evaluate(() => document.documentElement.dataset.theme), "dark");
    const dark = await A.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    assert.notEqual(dark, light, "the page turns dark");
    await A.keyboard.press("Escape");
    await A.reload();
    await A.locator(".space-button.me").waitFor();
    assert.equal(await A.evaluate(() => getComputedStyle(document.documentElement).backgroundColor), dark, "the theme stays after a reload");

    settings = await openSettings();
    // A picture: uploaded, then the profile's avatar_url.
    const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");
    await settings.getByLabel("Change the picture").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: png });
    const profile = await until("the avatar in the profile", async () => {
      const r = await fetch(`${stack.api}/_matrix/client/v3/profile/${encodeURIComponent(a.user_id)}`).then((x) => x.json());
      return r.avatar_url?.startsWith("mxc://") ? r : null;
    });
    await settings.locator(".avatar-picker img").waitFor();
    assert.match(profile.avatar_url, /^mxc:\/\/localhost\//);

    // Sessions: this one and the setup one (and the dehydrated device the
    // first sign-in's encryption set-up leaves, which cannot be signed out).
    const sessions = settings.getByRole("region", { name: "Your sessions" });
    const other = sessions.locator(`li.session[data-device-id="${a.device_id}"]`);
    await other.waitFor();
    await sessions.locator("li.session", { hasText: "this session" }).waitFor();
    await other.getByRole("button", { name: /^Sign out / }).click();
    await other.getByLabel("Your password").fill(password);
    await other.getByRole("button", { name: "Sign it out" }).click();
    await other.waitFor({ state: "detached", timeout: 30_000 });
    const res = await fetch(`${stack.api}/_matrix/client/v3/account/whoami`, { headers: { Authorization: `Bearer ${a.access_token}` } });
    assert.equal(res.status, 401, "the signed-out session's token no longer works");
  });
});
