// Scenario 10: recovery. At her first sign-in Alice's client sets up
// cross-signing, secret storage and key backup without asking anything and
// shows one recovery key, which she downloads. She and Bob write in an
// encrypted DM. Later, with her first browser gone, Alice signs in on a new
// one: the client asks her to confirm it is her; her old messages say in
// words why they cannot be read yet; a wrong key is refused; with the
// recovery key, the keys come from the backup and both old messages show
// (they fix themselves, no reload); so does a message Bob sent while she
// had no session open, whose key only her dehydrated device received.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { api, loginUI, message, newPerson, registerApi, resultsDir, scenario, stackAndBrowser, uniqueName, until } from "./harness.mjs";

const env = stackAndBrowser("scenario 10", [
  ["GET", "/_matrix/client/v3/sync", "/sync"],
  ["POST", "/_matrix/client/v3/keys/upload", "/keys/upload"],
  ["GET", "/_matrix/client/v3/room_keys/version", "/room_keys"],
]);

test("scenario 10: recovery key set up at first sign-in; a new session reads old messages from the key backup", { timeout: 300_000 }, async (t) => {
  if (env.missing) {
    t.skip(`server lacks ${env.missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(env.stack.api, uniqueName("alice"), password);
  const b = await registerApi(env.stack.api, uniqueName("bob"), password);
  const alice = await newPerson(env.browser, "alice");
  const bob = await newPerson(env.browser, "bob");
  const A = alice.page;
  const B = bob.page;
  const secretA = `Before the trip ${uniqueName("a")}`;
  const secretB = `Answer from Bob ${uniqueName("b")}`;
  const secretAway = `While you were away ${uniqueName("c")}`;
  let alice2;

  const people = [alice, bob];
  await scenario("scenario-10-recovery", people, async () => {
    await Promise.all([loginUI(A, env.stack.url, a.user_id, password), loginUI(B, env.stack.url, b.user_id, password)]);

    // First sign-in: the recovery key, shown once.
    const panel = A.getByRole("region", { name: "Your recovery key" });
    await panel.waitFor({ timeout: 60_000 });
    const key = (await panel.locator("code.recovery-key").innerText()).trim();
    assert.match(key, /^([1-9A-HJ-NP-Za-km-z]{4} ){11}[1-9A-HJ-NP-Za-km-z]{4}$/, `a recovery key in the spec's format: ${key}`);
    await A.screenshot({ path: path.join(resultsDir, "scenario-10-recovery-key.png") });
    const [download] = await Promise.all([A.waitForEvent("download"), panel.getByRole("button", { name: "Download as a file" }).click()]);
    assert.equal(download.suggestedFilename(), "salon-recovery-key.txt");
    assert.ok(readFileSync(await download.path(), "utf8").includes(key), "the file holds the key");
    await panel.getByRole("button", { name: "I have saved it" }).click();
    await panel.waitFor({ state: "detached" });
    const bobPanel = B.getByRole("region", { name: "Your recovery key" });
    await bobPanel.waitFor({ timeout: 60_000 });
    await bobPanel.getByRole("button", { name: "I have saved it" }).click();

    // The server holds her cross-signing keys, secret storage and a backup.
    const version = await until("a key backup version", async () => {
      try {
        return await api(env.stack.api, a.access_token, "GET", "/_matrix/client/v3/room_keys/version");
      } catch {
        return null;
      }
    });
    assert.equal(version.algorithm, "m.megolm_backup.v1.curve25519-aes-sha2");

    // An encrypted DM, a message each way.
    await A.getByRole("button", { name: "Start a conversation" }).first().click();
    const start = A.getByRole("dialog", { name: "Start a conversation" });
    await start.getByLabel("Search people by name or user ID").fill(b.user_id);
    await start.getByRole("button", { name: `Invite ${b.user_id}` }).click();
    await A.locator(".room-head .e2e-state", { hasText: "End-to-end encrypted" }).waitFor();
    const dm = await A.evaluate(() => decodeURIComponent(window.location.hash.replace(/^#\/room\//, "")));
    const aliceLocal = a.user_id.slice(1).split(":")[0];
    await B.locator(".room-item", { has: B.locator(".room-button", { hasText: aliceLocal }) }).getByRole("button", { name: "Accept" }).click();
    await B.locator(".room-head .e2e-state", { hasText: "End-to-end encrypted" }).waitFor();
    await A.locator("li.event.state", { hasText: "joined" }).last().waitFor();
    await A.getByLabel("Message", { exact: true }).fill(secretA);
    await A.keyboard.press("Enter");
    await message(B, secretA).waitFor({ timeout: 60_000 });
    await B.getByLabel("Message", { exact: true }).fill(secretB);
    await B.keyboard.press("Enter");
    await message(A, secretB).waitFor({ timeout: 60_000 });

    // Both room keys (Alice's and Bob's Megolm sessions) reach her backup.
    await until(
      "two room keys in Alice's backup",
      async () => {
        const keys = await api(env.stack.api, a.access_token, "GET", `/_matrix/client/v3/room_keys/keys?version=${version.version}`);
        const sessions = Object.keys(keys.rooms?.[dm]?.sessions ?? {});
        return sessions.length >= 2 ? sessions : { ok: false, sessions };
      },
      90_000,
    );

    // Her first browser is gone; Bob writes meanwhile. No session of hers
    // is open to back that key up: it reaches her dehydrated device.
    const dehydrated = await api(env.stack.api, a.access_token, "GET", "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device");
    assert.ok(dehydrated.device_id, "her first session left a dehydrated device on the server");
    const firstDevice = await A.evaluate(() => JSON.parse(localStorage.getItem("salon.session")).deviceId);
    await A.goto("about:blank");
    await B.getByLabel("Message", { exact: true }).fill(secretAway);
    await B.keyboard.press("Enter");
    await message(B, secretAway).locator(".status").waitFor({ state: "detached", timeout: 60_000 });

    // A new browser: signing in asks her to confirm it is her.
    alice2 = await newPerson(env.browser, "alice-new-browser");
    people.push(alice2);
    const A2 = alice2.page;
    await loginUI(A2, env.stack.url, a.user_id, password);
    const confirm = A2.getByRole("region", { name: "Confirm it is you" });
    await confirm.waitFor({ timeout: 60_000 });
    await A2.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), dm);
    await A2.locator(".room-head .e2e-state", { hasText: "End-to-end encrypted" }).waitFor();
    // The old messages are there, saying why they cannot be read yet.
    const waiting = A2.locator(".e2e-undecryptable").filter({ hasNotText: "Decrypting" });
    await until("the old messages' reasons", async () => (await waiting.count()) >= 2, 60_000);
    const reasons = await waiting.allInnerTexts();
    console.log(`# before the recovery key: ${JSON.stringify(reasons)}`);
    for (const r of reasons) assert.ok(r.length > 20, `a reason in words: ${r}`);
    await A2.screenshot({ path: path.join(resultsDir, "scenario-10-confirm.png") });

    // A wrong key is refused, in words.
    const input = confirm.getByLabel("Recovery key or passphrase");
    await input.fill("EsTc not my key at all");
    await confirm.getByRole("button", { name: "Confirm" }).click();
    await confirm.getByRole("alert").filter({ hasText: "This is not your recovery key" }).waitFor({ timeout: 30_000 });

    // The recovery key: old messages decrypt from the backup, in place.
    await input.fill(key);
    await confirm.getByRole("button", { name: "Confirm" }).click();
    await A2.getByRole("status").filter({ hasText: "This session is confirmed" }).waitFor({ timeout: 60_000 });
    await message(A2, secretA).waitFor({ timeout: 60_000 });
    await message(A2, secretB).waitFor({ timeout: 60_000 });
    // … and the one sent while she had no session, through the dehydrated device.
    await message(A2, secretAway).waitFor({ timeout: 60_000 });
    assert.equal(await A2.locator(".e2e-undecryptable").count(), 0, "nothing left undecryptable");

    // The new session is signed by her self-signing key now.
    const q = await api(env.stack.api, a.access_token, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [a.user_id]: [] } });
    const ssk = Object.keys(q.self_signing_keys[a.user_id].keys)[0];
    const newDevice = await A2.evaluate(() => JSON.parse(localStorage.getItem("salon.session")).deviceId);
    assert.ok(q.device_keys[a.user_id][newDevice].signatures[a.user_id][ssk], "the new session is cross-signed");

    // Her sessions in the settings: this one confirmed; the first one,
    // whose browser is gone, signed out with her password.
    await A2.getByRole("button", { name: `${a.user_id}: settings and sign out` }).click();
    const settings = A2.getByRole("dialog", { name: "Settings" });
    const sessions = settings.getByRole("region", { name: "Your sessions" });
    const mine = sessions.locator(`li.session[data-device-id="${newDevice}"]`);
    await mine.getByText("this session").waitFor();
    await mine.getByText("Confirmed", { exact: true }).waitFor();
    // The dehydrated device is listed as what it is, with no sign-out.
    const kept = sessions.locator("li.session", { hasText: "Kept by the server" });
    await kept.waitFor();
    assert.equal(await kept.getByRole("button").count(), 0, "the dehydrated device cannot be signed out from here");
    const old = sessions.locator(`li.session[data-device-id="${firstDevice}"]`);
    await old.waitFor();
    await A2.screenshot({ path: path.join(resultsDir, "scenario-10-sessions.png") });
    await old.getByRole("button", { name: /^Sign out / }).click();
    await old.getByLabel("Your password").fill(password);
    await old.getByRole("button", { name: "Sign it out" }).click();
    await old.waitFor({ state: "detached", timeout: 30_000 });
    const left = await api(env.stack.api, b.access_token, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [a.user_id]: [] } });
    assert.ok(!(firstDevice in left.device_keys[a.user_id]), "the signed-out session's keys are gone");
  });
});
