// Scenario 19: approving a new session from another signed-in one, both
// ends in Salon's client. Alice's first session sets up recovery and
// writes in an encrypted room. A second browser asks to be approved; her
// first session approves it by emoji comparison (both pages show the same
// seven emoji). A third browser is approved by QR code: the first session
// scans the code the new one shows (the test hands the code's bytes to the
// scanner the way the camera's reader does). After each approval the new
// session is cross-signed and reads the old message from the key backup,
// with no recovery key typed and no key file. A session not approved yet
// keeps a reminder on screen after "Not now". A fourth browser is approved
// the other way round: from the first session's list of sessions in the
// settings, which offers it the approval.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { api, loginUI, message, newPerson, registerApi, resultsDir, scenario, stackAndBrowser, uniqueName, until } from "./harness.mjs";

const env = stackAndBrowser("scenario 19", [
  ["POST", "/_matrix/client/v3/keys/upload", "/keys/upload"],
  ["GET", "/_matrix/client/v3/room_keys/version", "/room_keys"],
]);

async function deviceOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem("salon.session")).deviceId);
}

async function crossSigned(a, deviceId) {
  const q = await api(env.stack.api, a.access_token, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [a.user_id]: [] } });
  const ssk = Object.keys(q.self_signing_keys[a.user_id].keys)[0];
  return Boolean(q.device_keys[a.user_id][deviceId]?.signatures?.[a.user_id]?.[ssk]);
}

/** A new browser of Alice's that asks her first session to approve it; returns the page at the request. */
async function askApproval(person, a, password, room) {
  const P = person.page;
  await loginUI(P, env.stack.url, a.user_id, password);
  const confirm = P.getByRole("region", { name: "Confirm it is you" });
  await confirm.waitFor({ timeout: 60_000 });
  await P.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);
  await P.locator(".room-head .e2e-state", { hasText: "End-to-end encrypted" }).waitFor();
  await confirm.getByRole("button", { name: "Approve from another session" }).click();
  return P.getByRole("region", { name: "Approve this session" });
}

test("scenario 19: a new session approved from another one, by emoji and by QR code, reads old messages from the backup", { timeout: 400_000 }, async (t) => {
  if (env.missing) {
    t.skip(`server lacks ${env.missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(env.stack.api, uniqueName("alice"), password);
  const alice = await newPerson(env.browser, "alice");
  const A = alice.page;
  const secret = `Notes from the seminar ${uniqueName("s")}`;
  const people = [alice];

  await scenario("scenario-19-approve", people, async () => {
    await loginUI(A, env.stack.url, a.user_id, password);
    const panel = A.getByRole("region", { name: "Your recovery key" });
    await panel.waitFor({ timeout: 60_000 });
    await panel.getByRole("button", { name: "I have saved it" }).click();
    const version = await until("a key backup version", async () => {
      try {
        return await api(env.stack.api, a.access_token, "GET", "/_matrix/client/v3/room_keys/version");
      } catch {
        return null;
      }
    });

    // An encrypted room of hers, and a message in it that reaches the backup.
    const { room_id: room } = await api(env.stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", {
      name: "Seminar notes",
      preset: "private_chat",
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await A.locator(".room-button", { hasText: "Seminar notes" }).waitFor({ timeout: 30_000 });
    await A.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);
    await A.locator(".room-head .e2e-state", { hasText: "End-to-end encrypted" }).waitFor();
    await A.getByLabel("Message", { exact: true }).fill(secret);
    await A.keyboard.press("Enter");
    await message(A, secret).locator(".status").waitFor({ state: "detached", timeout: 60_000 });
    await until(
      "the room key in Alice's backup",
      async () => {
        const keys = await api(env.stack.api, a.access_token, "GET", `/_matrix/client/v3/room_keys/keys?version=${version.version}`);
        return Object.keys(keys.rooms?.[room]?.sessions ?? {}).length >= 1;
      },
      60_000,
    );

    // --- Emoji comparison ---
    const alice2 = await newPerson(env.browser, "alice-second-browser");
    people.push(alice2);
    const A2 = alice2.page;
    await loginUI(A2, env.stack.url, a.user_id, password);
    // "Not now" leaves a reminder, never nothing.
    const confirm2 = A2.getByRole("region", { name: "Confirm it is you" });
    await confirm2.waitFor({ timeout: 60_000 });
    await confirm2.getByRole("button", { name: "Not now" }).click();
    const reminder = A2.getByRole("status", { name: "Confirm it is you" });
    await reminder.getByText("This session is not confirmed yet").waitFor();
    await reminder.getByRole("button", { name: "Confirm it now" }).click();
    await A2.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);
    await A2.locator(".room-head .e2e-state", { hasText: "End-to-end encrypted" }).waitFor();
    await confirm2.getByRole("button", { name: "Approve from another session" }).click();
    const ask2 = A2.getByRole("region", { name: "Approve this session" });
    await ask2.getByText("Open Salon on another device").waitFor();

    const incoming = A.getByRole("region", { name: "A new session of yours asks to be approved" });
    await incoming.waitFor({ timeout: 60_000 });
    const device2 = await deviceOf(A2);
    await incoming.getByText(device2).waitFor();
    await A.screenshot({ path: path.join(resultsDir, "scenario-19-request.png") });
    await incoming.getByRole("button", { name: "Approve it" }).click();

    const approveA = A.getByRole("region", { name: "Approve this session" });
    await ask2.getByRole("button", { name: "Compare emoji" }).click();
    const emojiA = approveA.getByRole("list", { name: "Emoji to compare" });
    const emoji2 = ask2.getByRole("list", { name: "Emoji to compare" });
    await Promise.all([emojiA.waitFor({ timeout: 60_000 }), emoji2.waitFor({ timeout: 60_000 })]);
    const namesA = await emojiA.locator("li").evaluateAll((els) => els.map((e) => e.dataset.name));
    const names2 = await emoji2.locator("li").evaluateAll((els) => els.map((e) => e.dataset.name));
    console.log(`# emoji: ${namesA.join(" ")}`);
    assert.equal(namesA.length, 7, "seven emoji");
    assert.deepEqual(names2, namesA, "both sessions show the same emoji in the same order");
    await A2.screenshot({ path: path.join(resultsDir, "scenario-19-emoji.png") });
    await approveA.getByRole("button", { name: "They match" }).click();
    await ask2.getByRole("button", { name: "They match" }).click();

    await approveA.getByText(`Session ${device2} is approved`).waitFor({ timeout: 60_000 });
    const confirmed2 = A2.getByRole("status").filter({ hasText: "This session is confirmed" });
    await confirmed2.waitFor({ timeout: 60_000 });
    console.log(`# after emoji: ${await confirmed2.innerText()}`);
    await message(A2, secret).waitFor({ timeout: 60_000 });
    assert.equal(await A2.locator(".e2e-undecryptable").count(), 0, "nothing left undecryptable");
    assert.ok(await crossSigned(a, device2), "the session approved by emoji is cross-signed");
    await approveA.getByRole("button", { name: "Close" }).click();

    // --- QR code ---
    const alice3 = await newPerson(env.browser, "alice-third-browser");
    people.push(alice3);
    const A3 = alice3.page;
    const ask3 = await askApproval(alice3, a, password, room);
    const incoming3 = A.getByRole("region", { name: "A new session of yours asks to be approved" });
    await incoming3.waitFor({ timeout: 60_000 });
    await incoming3.getByRole("button", { name: "Approve it" }).click();
    // The new session shows its code; the first scans it.
    const code = ask3.getByRole("img", { name: "QR code to scan with your other session" });
    await code.waitFor({ timeout: 60_000 });
    await A3.screenshot({ path: path.join(resultsDir, "scenario-19-qr.png") });
    const payload = await code.getAttribute("data-payload");
    const bytes = Buffer.from(payload, "base64");
    assert.equal(bytes.subarray(0, 6).toString("latin1"), "MATRIX", "the code holds the spec's QR payload");
    const approveA3 = A.getByRole("region", { name: "Approve this session" });
    await approveA3.getByRole("button", { name: "Scan the other session’s code" }).click();
    const scanner = approveA3.locator(".qr-scanner");
    await scanner.waitFor();
    // What the camera's QR reader dispatches when it reads the code: its bytes, one char each.
    await scanner.evaluate((el, text) => el.dispatchEvent(new CustomEvent("salon-qr-scanned", { detail: text })), bytes.toString("latin1"));
    await ask3.getByRole("button", { name: "Yes, it did" }).click({ timeout: 60_000 });
    const device3 = await deviceOf(A3);
    await approveA3.getByText(`Session ${device3} is approved`).waitFor({ timeout: 60_000 });
    await A3.getByRole("status").filter({ hasText: "This session is confirmed" }).waitFor({ timeout: 60_000 });
    await message(A3, secret).waitFor({ timeout: 60_000 });
    assert.equal(await A3.locator(".e2e-undecryptable").count(), 0, "nothing left undecryptable");
    assert.ok(await crossSigned(a, device3), "the session approved by QR code is cross-signed");
    await approveA3.getByRole("button", { name: "Close" }).click();

    // --- From the settings' list of sessions ---
    const alice4 = await newPerson(env.browser, "alice-fourth-browser");
    people.push(alice4);
    const A4 = alice4.page;
    await loginUI(A4, env.stack.url, a.user_id, password);
    await A4.getByRole("region", { name: "Confirm it is you" }).waitFor({ timeout: 60_000 });
    await A4.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);
    const device4 = await deviceOf(A4);
    await A.getByRole("button", { name: `${a.user_id}: settings and sign out` }).click();
    const sessions = A.getByRole("dialog", { name: "Settings" }).getByRole("region", { name: "Your sessions" });
    const row4 = sessions.locator(`li.session[data-device-id="${device4}"]`);
    await row4.getByText("Not confirmed").waitFor({ timeout: 30_000 });
    await row4.getByRole("button", { name: /^Approve / }).click();
    const offer = A4.getByRole("region", { name: "Approve this session" });
    await offer.getByText("offers to approve this one").waitFor({ timeout: 60_000 });
    await offer.getByRole("button", { name: "Accept" }).click();
    const fromSettings = sessions.getByRole("region", { name: "Approve another session of yours" });
    await fromSettings.getByRole("button", { name: "Compare emoji" }).click({ timeout: 60_000 });
    const emojiS = fromSettings.getByRole("list", { name: "Emoji to compare" });
    const emoji4 = offer.getByRole("list", { name: "Emoji to compare" });
    await Promise.all([emojiS.waitFor({ timeout: 60_000 }), emoji4.waitFor({ timeout: 60_000 })]);
    assert.deepEqual(
      await emoji4.locator("li").evaluateAll((els) => els.map((e) => e.dataset.name)),
      await emojiS.locator("li").evaluateAll((els) => els.map((e) => e.dataset.name)),
      "the same emoji on both",
    );
    await fromSettings.getByRole("button", { name: "They match" }).click();
    await offer.getByRole("button", { name: "They match" }).click();
    await fromSettings.getByText(`Session ${device4} is approved`).waitFor({ timeout: 60_000 });
    await A4.getByRole("status").filter({ hasText: "This session is confirmed" }).waitFor({ timeout: 60_000 });
    await message(A4, secret).waitFor({ timeout: 60_000 });
    await fromSettings.getByRole("button", { name: "Close" }).click();
    await row4.getByText("Confirmed", { exact: true }).waitFor({ timeout: 30_000 });
    assert.ok(await crossSigned(a, device4), "the session approved from the settings is cross-signed");
  });
});
