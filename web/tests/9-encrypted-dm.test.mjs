// Scenario 9: end-to-end encryption in the web client. Alice (desktop,
// English) starts a conversation with Bob from the client; it is created
// encrypted and its header says so in words; Bob (French) accepts; they
// write both ways and each reads the other. The server holds no plaintext:
// the room's history from /messages is m.room.encrypted only, and no file
// under salon's data directory (the SQLite database and its WAL) contains
// either message. A public room Alice creates is not encrypted, and says so.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { api, lacks, launchBrowser, loginUI, newPerson, registerApi, scenario, startStack, uniqueName } from "./harness.mjs";

let stack;
let browser;
let missing = null;

before(async () => {
  stack = await startStack();
  for (const [method, p, name] of [
    ["GET", "/_matrix/client/v3/sync", "/sync"],
    ["POST", "/_matrix/client/v3/keys/upload", "/keys/upload"],
    ["PUT", "/_matrix/client/v3/sendToDevice/m.room_key_request/t1", "sendToDevice"],
  ]) {
    if (await lacks(stack.api, method, p)) {
      missing = name;
      console.log(`SKIPPED: server lacks ${name} (scenario 9 runs once it answers)`);
      return;
    }
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

function message(page, text) {
  return page.locator("li.event.message").filter({ has: page.locator(".event-content > .text", { hasText: text }) });
}

/** Every file under dir whose bytes contain needle (a UTF-8 string). */
export function filesContaining(dir, needle) {
  const found = [];
  const want = Buffer.from(needle, "utf8");
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (readFileSync(p).includes(want)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

test("scenario 9: an encrypted DM between two browsers; the server stores no plaintext", { timeout: 240_000 }, async (t) => {
  if (missing) {
    t.skip(`server lacks ${missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password);
  const b = await registerApi(stack.api, uniqueName("bob"), password);
  const alice = await newPerson(browser, "alice");
  const bob = await newPerson(browser, "bob", { locale: "fr-FR" });
  const A = alice.page;
  const B = bob.page;
  const secretA = `Alice's secret ${uniqueName("plan")}`;
  const secretB = `Bob's secret ${uniqueName("reply")}`;

  await scenario("scenario-9-encrypted-dm", [alice, bob], async () => {
    await Promise.all([loginUI(A, stack.url, a.user_id, password), loginUI(B, stack.url, b.user_id, password)]);

    // A public room is not encrypted, and its header says so.
    await A.getByRole("button", { name: "New room" }).first().click();
    const createRoom = A.getByRole("dialog", { name: "Create a room" });
    await createRoom.getByLabel("Name").fill("Open hall");
    await createRoom.getByLabel("Public: anyone can find and join it").check();
    await createRoom.getByRole("button", { name: "Create" }).click();
    await A.locator("#room-title", { hasText: "Open hall" }).waitFor();
    await A.locator(".room-head .e2e-state", { hasText: "Not encrypted" }).waitFor();

    // Alice starts a conversation with Bob: it is created encrypted.
    await A.getByRole("button", { name: "Start a conversation" }).first().click();
    const start = A.getByRole("dialog", { name: "Start a conversation" });
    await start.getByLabel("Search people by name or user ID").fill(b.user_id);
    await start.getByRole("button", { name: `Invite ${b.user_id}` }).click();
    const state = A.locator(".room-head .e2e-state");
    await state.filter({ hasText: "End-to-end encrypted" }).waitFor();
    assert.equal(await state.getAttribute("data-encrypted"), "true");
    const dm = await A.evaluate(() => decodeURIComponent(window.location.hash.replace(/^#\/room\//, "")));
    assert.match(dm, /^!/, "the DM's room ID is in the address");

    // Bob accepts from his room list; the header says it in French.
    const aliceLocal = a.user_id.slice(1).split(":")[0];
    const invited = B.locator(".room-item", { has: B.locator(".room-button", { hasText: aliceLocal }) });
    await invited.getByRole("button", { name: "Accepter" }).click();
    await B.locator(".room-head .e2e-state", { hasText: "Chiffré de bout en bout" }).waitFor();
    await A.locator("li.event.state", { hasText: "joined" }).last().waitFor();

    // Messages both ways, each read by the other.
    await A.getByLabel("Message", { exact: true }).fill(secretA);
    await A.keyboard.press("Enter");
    await message(B, secretA).waitFor({ timeout: 60_000 });
    await B.getByLabel("Message", { exact: true }).fill(secretB);
    await B.keyboard.press("Enter");
    await message(A, secretB).waitFor({ timeout: 60_000 });
    // Nothing on either side is left undecryptable.
    assert.equal(await A.locator(".e2e-undecryptable").count(), 0);
    assert.equal(await B.locator(".e2e-undecryptable").count(), 0);

    // What the server holds: the history is m.room.encrypted only …
    const history = await api(stack.api, a.access_token, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(dm)}/messages?dir=b&limit=100`);
    const sent = history.chunk.filter((e) => e.state_key === undefined);
    assert.ok(sent.length >= 2, `two messages in the history: ${JSON.stringify(sent.map((e) => e.type))}`);
    for (const e of sent) {
      assert.equal(e.type, "m.room.encrypted", `stored as ${e.type}`);
      assert.equal(e.content.algorithm, "m.megolm.v1.aes-sha2");
      assert.equal(typeof e.content.ciphertext, "string");
    }
    const raw = JSON.stringify(history);
    assert.ok(!raw.includes(secretA) && !raw.includes(secretB), "no plaintext in /messages");
    assert.ok(
      history.chunk.some((e) => e.type === "m.room.encryption" && e.content.algorithm === "m.megolm.v1.aes-sha2"),
      "the room was created with m.room.encryption",
    );
    // … and no byte of either message is in its data directory.
    for (const secret of [secretA, secretB]) {
      assert.deepEqual(filesContaining(stack.dataDir, secret), [], `plaintext "${secret}" stored by the server`);
    }
    // The check would see plaintext: the public room's name is stored as is.
    assert.notDeepEqual(filesContaining(stack.dataDir, "Open hall"), [], "the data directory check reads the database");
  });
});
