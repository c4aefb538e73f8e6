// Scenario 0: a person registers through the web client, reloads and is
// still signed in, switches the language, signs out (which ends the
// session on the server) and signs back in.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPerson, scenario, startStack, uniqueName, unlabelledControls } from "./harness.mjs";

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

test("scenario 0: register, reload, sign out, sign in", { timeout: 120_000 }, async () => {
  const alice = await newPerson(browser, "alice");
  const { page } = alice;
  const username = uniqueName("alice");
  const password = "correct horse battery staple";
  const userId = `@${username}:localhost`;

  await scenario("scenario-0-account", [alice], async () => {
    await page.goto(stack.url);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.deepEqual(await unlabelledControls(page), [], "every control has an accessible name");

    // The bundle is served with the policy that allows only this origin.
    const res = await page.request.get(stack.url);
    const csp = res.headers()["content-security-policy"] ?? "";
    assert.match(csp, /default-src 'none'/);
    // Scripts from this origin only; WebAssembly (the end-to-end
    // encryption) may be compiled from them, never eval of strings.
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/);

    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByRole("heading", { name: "Create an account" }).waitFor();
    await page.getByLabel("Username").fill(username);
    await page.getByLabel("Password", { exact: true }).fill(password);
    await page.getByLabel("Confirm the password").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();

    const me = page.getByRole("button", { name: `${userId}: settings and sign out` });
    await me.waitFor();
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem("salon.session") ?? "null"));
    assert.equal(stored?.userId, userId);
    assert.ok(stored.accessToken, "the access token is kept for the next visit");
    assert.ok(stored.deviceId, "the device ID is kept for the next visit");

    // A reload resumes the session.
    await page.reload();
    await me.waitFor();
    assert.equal(await page.locator('input[name="password"]').count(), 0, "no login form after a reload");

    // Language: French from the settings, kept across a reload.
    await me.click();
    const settings = page.getByRole("dialog", { name: "Settings" });
    await settings.waitFor();
    await settings.getByText(userId).waitFor();
    assert.deepEqual(await unlabelledControls(page), [], "every control has an accessible name");
    await settings.getByLabel("Language").selectOption("fr");
    await page.getByRole("dialog", { name: "Paramètres" }).waitFor();
    await page.keyboard.press("Escape");
    await page.reload();
    await page.getByRole("button", { name: "Accueil" }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), "fr");

    // Sign out: back to the login screen, and the token no longer works.
    await page.getByRole("button", { name: `${userId} : paramètres et déconnexion` }).click();
    await page.getByRole("button", { name: "Se déconnecter" }).click();
    await page.getByRole("heading", { name: "Connexion" }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem("salon.session")), null);
    const whoami = await fetch(`${stack.api}/_matrix/client/v3/account/whoami`, {
      headers: { Authorization: `Bearer ${stored.accessToken}` },
    });
    assert.equal(whoami.status, 401, "the old access token is revoked on the server");

    // Back to English on the login screen, then sign in again.
    await page.getByLabel("Langue").selectOption("en");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("Username").fill(username);
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "Wrong username or password." }).waitFor();
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await me.waitFor();
    const again = await page.evaluate(() => JSON.parse(localStorage.getItem("salon.session") ?? "null"));
    assert.equal(again?.userId, userId);
    assert.notEqual(again.accessToken, stored.accessToken, "a new session");
  });
});

test("scenario 0b: registration that needs a token", { timeout: 120_000 }, async (t) => {
  if (process.env.SALON_TEST_HOMESERVER) {
    t.skip("needs a salon configured by the test");
    return;
  }
  const token = "salon-web-test-token";
  const tokenStack = await startStack({ config: `registration:\n  mode: token\n  token: ${token}\n` });
  try {
    const bob = await newPerson(browser, "bob");
    const { page } = bob;
    const username = uniqueName("bob");
    const password = "correct horse battery staple";
    await scenario("scenario-0b-registration-token", [bob], async () => {
      await page.goto(tokenStack.url);
      await page.getByRole("button", { name: "Create an account" }).click();
      await page.getByLabel("Registration token").waitFor();
      await page.getByLabel("Username").fill(username);
      await page.getByLabel("Password", { exact: true }).fill(password);
      await page.getByLabel("Confirm the password").fill(password);
      await page.getByLabel("Registration token").fill("not-the-token");
      await page.getByRole("button", { name: "Create account" }).click();
      await page.getByRole("alert").filter({ hasText: "This registration token is not valid." }).waitFor();
      await page.getByLabel("Registration token").fill(token);
      await page.getByRole("button", { name: "Create account" }).click();
      await page.getByRole("button", { name: `@${username}:localhost: settings and sign out` }).waitFor();
    });
  } finally {
    await tokenStack.stop();
  }
});
