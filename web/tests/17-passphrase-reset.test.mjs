// Scenario 17: a passphrase, a changed recovery key, a reset after total
// loss and the key file. At her first sign-in Alice chooses a passphrase
// instead of the generated key and saves her message keys to a file from
// the settings. A second browser is confirmed with the passphrase alone
// and reads the old message from the backup; there she changes her
// recovery key. With every session gone, a third browser finds the old
// passphrase refused; she resets her encryption after its warning: she
// gets a new recovery key, new messages work, the old one says in words
// that its key was lost in the reset, until she loads the key file. Bob,
// in the room all along, sees one plain-language notice that she reset
// her encryption (no warning shields), dismisses it, and reads her new
// message.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { api, loginUI, message, newPerson, registerApi, resultsDir, scenario, stackAndBrowser, uniqueName, until } from "./harness.mjs";

const env = stackAndBrowser("scenario 17", [
  ["POST", "/_matrix/client/v3/keys/upload", "/keys/upload"],
  ["GET", "/_matrix/client/v3/room_keys/version", "/room_keys"],
]);

async function openRoom(page, room) {
  await page.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);
  await page.locator(".room-head .e2e-state", { hasText: "End-to-end encrypted" }).waitFor();
}

async function openSettings(page, userId) {
  await page.getByRole("button", { name: `${userId}: settings and sign out` }).click();
  return page.getByRole("dialog", { name: "Settings" });
}

const keyFormat = /^([1-9A-HJ-NP-Za-km-z]{4} ){11}[1-9A-HJ-NP-Za-km-z]{4}$/;

test("scenario 17: passphrase at setup, recovery key changed, reset after total loss, key file as the last resort", { timeout: 400_000 }, async (t) => {
  if (env.missing) {
    t.skip(`server lacks ${env.missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const passphrase = "the lighthouse keeper sings at dawn";
  const filePass = "a file passphrase";
  const a = await registerApi(env.stack.api, uniqueName("alice"), password);
  const b = await registerApi(env.stack.api, uniqueName("bob"), password);
  const alice = await newPerson(env.browser, "alice");
  const A = alice.page;
  const bob = await newPerson(env.browser, "bob");
  const B = bob.page;
  const old = `Before the reset ${uniqueName("o")}`;
  const fresh = `After the reset ${uniqueName("n")}`;
  const people = [alice, bob];

  await scenario("scenario-17-passphrase-reset", people, async () => {
    await Promise.all([loginUI(A, env.stack.url, a.user_id, password), loginUI(B, env.stack.url, b.user_id, password)]);
    const bobPanel = B.getByRole("region", { name: "Your recovery key" });
    await bobPanel.waitFor({ timeout: 60_000 });
    await bobPanel.getByRole("button", { name: "I have saved it" }).click();
    // First sign-in: a passphrase instead of the generated key.
    const panel = A.getByRole("region", { name: "Your recovery key" });
    await panel.waitFor({ timeout: 60_000 });
    const generated = (await panel.locator("code.recovery-key").innerText()).trim();
    await panel.getByRole("button", { name: "Use a passphrase I choose instead" }).click();
    await panel.getByLabel("Passphrase", { exact: true }).fill(passphrase);
    await panel.getByLabel("Again", { exact: true }).fill(passphrase);
    await panel.getByRole("button", { name: "Use this passphrase" }).click();
    await panel.getByText("Your passphrase is set").waitFor({ timeout: 60_000 });
    const spare = (await panel.locator("code.recovery-key").innerText()).trim();
    assert.match(spare, keyFormat);
    assert.notEqual(spare, generated, "a new key, made from the passphrase");
    await A.screenshot({ path: path.join(resultsDir, "scenario-17-passphrase.png") });
    await panel.getByRole("button", { name: "I have saved it" }).click();

    const version = await until("a key backup version", async () => {
      try {
        return await api(env.stack.api, a.access_token, "GET", "/_matrix/client/v3/room_keys/version");
      } catch {
        return null;
      }
    });
    const { room_id: room } = await api(env.stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", {
      name: "Diary",
      preset: "private_chat",
      invite: [b.user_id],
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await api(env.stack.api, b.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});
    await A.locator(".room-button", { hasText: "Diary" }).waitFor({ timeout: 30_000 });
    await openRoom(A, room);
    await B.locator(".room-button", { hasText: "Diary" }).waitFor({ timeout: 30_000 });
    await openRoom(B, room);
    await A.getByLabel("Message", { exact: true }).fill(old);
    await A.keyboard.press("Enter");
    await message(A, old).locator(".status").waitFor({ state: "detached", timeout: 60_000 });
    await until(
      "the room key in the backup",
      async () => {
        const keys = await api(env.stack.api, a.access_token, "GET", `/_matrix/client/v3/room_keys/keys?version=${version.version}`);
        return Object.keys(keys.rooms?.[room]?.sessions ?? {}).length >= 1;
      },
      60_000,
    );

    // The key file, saved from the settings.
    let settings = await openSettings(A, a.user_id);
    const keyfile = settings.getByRole("region", { name: "Message keys file" });
    await keyfile.getByLabel("Passphrase for the file").fill(filePass);
    await keyfile.getByLabel("Again", { exact: true }).fill(filePass);
    const [download] = await Promise.all([A.waitForEvent("download"), keyfile.getByRole("button", { name: "Save message keys to a file" }).click()]);
    assert.equal(download.suggestedFilename(), "salon-message-keys.txt");
    const filePath = await download.path();
    const fileText = readFileSync(filePath, "utf8");
    assert.match(fileText, /^-----BEGIN MEGOLM SESSION DATA-----\n[A-Za-z0-9+/=\n]+-----END MEGOLM SESSION DATA-----\n$/);
    assert.ok(!fileText.includes(room), "the file is encrypted");
    await keyfile.getByRole("status").filter({ hasText: "1 message keys saved" }).waitFor();
    await A.keyboard.press("Escape");
    await A.goto("about:blank");

    // A second browser, confirmed with the passphrase alone.
    const alice2 = await newPerson(env.browser, "alice-second-browser");
    people.push(alice2);
    const A2 = alice2.page;
    await loginUI(A2, env.stack.url, a.user_id, password);
    const confirm2 = A2.getByRole("region", { name: "Confirm it is you" });
    await confirm2.waitFor({ timeout: 60_000 });
    await openRoom(A2, room);
    await confirm2.getByLabel("Recovery key or passphrase").fill(passphrase);
    await confirm2.getByRole("button", { name: "Confirm" }).click();
    await A2.getByRole("status").filter({ hasText: "This session is confirmed" }).waitFor({ timeout: 60_000 });
    await message(A2, old).waitFor({ timeout: 60_000 });

    // There she changes her recovery key (a generated one this time).
    settings = await openSettings(A2, a.user_id);
    const recovery = settings.getByRole("region", { name: "Recovery", exact: true });
    await recovery.getByRole("button", { name: "Change recovery key" }).click();
    await recovery.getByRole("button", { name: "Make the new recovery key" }).click();
    const newKey = (await recovery.locator("code.recovery-key").innerText({ timeout: 60_000 })).trim();
    assert.match(newKey, keyFormat);
    await A2.screenshot({ path: path.join(resultsDir, "scenario-17-change-key.png") });
    await recovery.getByRole("button", { name: "I have saved it" }).click();
    // Then every session goes: the others signed out from here (her first
    // browser's, and the one the test registered her with), then this one.
    const sessions = settings.getByRole("region", { name: "Your sessions" });
    const others = sessions.locator("li.session").filter({ has: A2.getByRole("button", { name: /^Sign out / }) });
    await others.first().waitFor();
    while ((await others.count()) > 0) {
      const id = await others.first().getAttribute("data-device-id");
      const row = sessions.locator(`li.session[data-device-id="${id}"]`);
      await row.getByRole("button", { name: /^Sign out / }).click();
      await row.getByLabel("Your password").fill(password);
      await row.getByRole("button", { name: "Sign it out" }).click();
      await row.waitFor({ state: "detached", timeout: 30_000 });
    }
    await settings.getByRole("button", { name: "Sign out", exact: true }).click();
    await A2.locator('input[name="username"]').waitFor({ timeout: 30_000 });

    // Every session gone, the passphrase no longer works (the key changed).
    const alice3 = await newPerson(env.browser, "alice-third-browser");
    people.push(alice3);
    const A3 = alice3.page;
    await loginUI(A3, env.stack.url, a.user_id, password);
    const confirm3 = A3.getByRole("region", { name: "Confirm it is you" });
    await confirm3.waitFor({ timeout: 60_000 });
    // No other session is left to approve this one: the page says so.
    await confirm3.getByText("No other session of yours is signed in to approve this one").waitFor({ timeout: 30_000 });
    assert.equal(await confirm3.getByRole("button", { name: "Approve from another session" }).count(), 0);
    await confirm3.getByLabel("Recovery key or passphrase").fill(passphrase);
    await confirm3.getByRole("button", { name: "Confirm" }).click();
    await confirm3.getByRole("alert").filter({ hasText: "This is not your recovery key" }).waitFor({ timeout: 30_000 });

    // Reset after total loss: the warning first.
    await confirm3.getByText("Lost your recovery key and every other session?").click();
    const reset = confirm3.getByRole("form", { name: "Reset your encryption" });
    await reset.getByText("Messages sent before the reset cannot be read any more").waitFor();
    const go = reset.getByRole("button", { name: "Reset my encryption" });
    await reset.getByLabel("Your password").fill(password);
    assert.equal(await go.isDisabled(), true, "nothing happens before she says she understands");
    await A3.screenshot({ path: path.join(resultsDir, "scenario-17-reset-warning.png") });
    await reset.getByLabel("I understand that my earlier encrypted messages will be unreadable").check();
    await go.click();
    const newPanel = A3.getByRole("region", { name: "Your recovery key" });
    await newPanel.waitFor({ timeout: 60_000 });
    const resetKey = (await newPanel.locator("code.recovery-key").innerText()).trim();
    assert.match(resetKey, keyFormat);
    assert.notEqual(resetKey, newKey);
    await newPanel.getByRole("button", { name: "I have saved it" }).click();

    // A new identity on the server: another master key, this session signed by it.
    // (The token the test registered her with was signed out with the rest: this session's.)
    const token3 = await A3.evaluate(() => JSON.parse(localStorage.getItem("salon.session")).accessToken);
    const q = await api(env.stack.api, token3, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [a.user_id]: [] } });
    const ssk = Object.keys(q.self_signing_keys[a.user_id].keys)[0];
    const device3 = await A3.evaluate(() => JSON.parse(localStorage.getItem("salon.session")).deviceId);
    assert.ok(q.device_keys[a.user_id][device3].signatures[a.user_id][ssk], "the session is signed by the new identity");

    // The old message says why it cannot be read; new ones work.
    await openRoom(A3, room);
    const lost = A3.locator(".e2e-undecryptable", { hasText: "Sent before you reset your encryption" });
    await lost.waitFor({ timeout: 60_000 });
    await A3.getByLabel("Message", { exact: true }).fill(fresh);
    await A3.keyboard.press("Enter");
    await message(A3, fresh).locator(".status").waitFor({ state: "detached", timeout: 60_000 });
    await A3.screenshot({ path: path.join(resultsDir, "scenario-17-after-reset.png") });

    // Bob: one notice in words, then her new message as usual.
    await message(B, old).waitFor({ timeout: 60_000 });
    const notice = B.locator(".e2e-identity-notice", { hasText: "reset their encryption" });
    await notice.waitFor({ timeout: 60_000 });
    assert.ok((await notice.innerText()).includes(a.user_id.slice(1).split(":")[0]), "the notice names her");
    await B.screenshot({ path: path.join(resultsDir, "scenario-17-contact-notice.png") });
    await notice.getByRole("button", { name: "OK" }).click();
    await notice.waitFor({ state: "detached" });
    await message(B, fresh).waitFor({ timeout: 60_000 });

    // The key file, the last resort, brings the old message back.
    settings = await openSettings(A3, a.user_id);
    const keyfile3 = settings.getByRole("region", { name: "Message keys file" });
    await keyfile3.getByLabel("Keys file").setInputFiles(filePath);
    await keyfile3.getByLabel("Its passphrase").fill("not the passphrase");
    await keyfile3.getByRole("button", { name: "Load message keys" }).click();
    await keyfile3.getByRole("alert").filter({ hasText: "This file cannot be opened with this passphrase" }).waitFor({ timeout: 30_000 });
    await keyfile3.getByLabel("Its passphrase").fill(filePass);
    await keyfile3.getByRole("button", { name: "Load message keys" }).click();
    await keyfile3.getByRole("status").filter({ hasText: "1 message keys loaded" }).waitFor({ timeout: 30_000 });
    await A3.keyboard.press("Escape");
    await message(A3, old).waitFor({ timeout: 60_000 });
  });
});
