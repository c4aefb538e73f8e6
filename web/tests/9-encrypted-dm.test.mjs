// Scenario 9: end-to-end encryption in the web client. Alice (desktop,
// English) starts a conversation with Bob from the client; it is created
// encrypted and its header says so in words; Bob (French) accepts; they
// write both ways and each reads the other. The server holds no plaintext:
// the room's history from /messages is m.room.encrypted only, and no file
// under salon's data directory (the SQLite database and its WAL) contains
// either message, nor the marker inside either image (each image goes both
// ways, encrypted in the browser: the spec's `file`). A public room Alice
// creates is not encrypted, and says so.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { deflateSync } from "node:zlib";
import { test } from "node:test";
import { api, loginUI, message, newPerson, registerApi, scenario, stackAndBrowser, uniqueName, until } from "./harness.mjs";

const env = stackAndBrowser("scenario 9", [
  ["GET", "/_matrix/client/v3/sync", "/sync"],
  ["POST", "/_matrix/client/v3/keys/upload", "/keys/upload"],
  ["PUT", "/_matrix/client/v3/sendToDevice/m.room_key_request/t1", "sendToDevice"],
]);

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function pngChunk(type, data) {
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  let c = 0xffffffff;
  for (const b of td) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(8 + data.length + 4);
  out.writeUInt32BE(data.length, 0);
  td.copy(out, 4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0, 8 + data.length);
  return out;
}

/** A small w×h PNG carrying a text marker (a tEXt chunk) to look for in the server's files. */
function markedPng(w, h, marker, shade) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([shade, (x * 255) / w, (y * 255) / h], y * (w * 3 + 1) + 1 + x * 3);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("tEXt", Buffer.from(`Comment\0${marker}`, "latin1")),
    pngChunk("IDAT", deflateSync(raw)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

function countFiles(dir) {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    n += statSync(p).isDirectory() ? countFiles(p) : 1;
  }
  return n;
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
  if (env.missing) {
    t.skip(`server lacks ${env.missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(env.stack.api, uniqueName("alice"), password);
  const b = await registerApi(env.stack.api, uniqueName("bob"), password);
  const alice = await newPerson(env.browser, "alice");
  const bob = await newPerson(env.browser, "bob", { locale: "fr-FR" });
  const A = alice.page;
  const B = bob.page;
  const secretA = `Alice's secret ${uniqueName("plan")}`;
  const secretB = `Bob's secret ${uniqueName("reply")}`;

  await scenario("scenario-9-encrypted-dm", [alice, bob], async () => {
    await Promise.all([loginUI(A, env.stack.url, a.user_id, password), loginUI(B, env.stack.url, b.user_id, password)]);

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

    // An image each way: encrypted in the sender's browser, decrypted in
    // the reader's.
    const markA = `alice-image-${uniqueName("m")}`;
    const markB = `bob-image-${uniqueName("m")}`;
    const filesBefore = countFiles(env.stack.dataDir);
    await A.locator('.composer input[type="file"]').setInputFiles([{ name: "alice.png", mimeType: "image/png", buffer: markedPng(64, 48, markA, 200) }]);
    await B.locator('.composer input[type="file"]').setInputFiles([{ name: "bob.png", mimeType: "image/png", buffer: markedPng(48, 64, markB, 20) }]);
    for (const [p, who] of [
      [A, "alice"],
      [B, "bob"],
    ]) {
      await until(`${who} shows both decrypted images`, async () =>
        p.evaluate(() => {
          const imgs = [...document.querySelectorAll('li.event.message .media.image[data-encrypted="true"] img')];
          return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0 && i.src.startsWith("blob:"));
        }),
      );
      const sizes = await p.$$eval('li.event.message .media.image[data-encrypted="true"] img', (imgs) => imgs.map((i) => `${i.naturalWidth}x${i.naturalHeight}`));
      assert.deepEqual(sizes.sort(), ["48x64", "64x48"], `${who}: the two images, decrypted`);
    }
    await A.locator(".uploads").waitFor({ state: "detached" });
    await B.locator(".uploads").waitFor({ state: "detached" });
    assert.ok(countFiles(env.stack.dataDir) >= filesBefore + 2, "the uploads are stored in the data directory");
    for (const mark of [markA, markB]) {
      assert.deepEqual(filesContaining(env.stack.dataDir, mark), [], `the image marked "${mark}" stored in plaintext`);
    }
    assert.deepEqual(filesContaining(env.stack.dataDir, "alice.png"), [], "not even the file's name reaches the server");

    // Nothing on either side is left undecryptable.
    assert.equal(await A.locator(".e2e-undecryptable").count(), 0);
    assert.equal(await B.locator(".e2e-undecryptable").count(), 0);

    // What the server holds: the history is m.room.encrypted only …
    const history = await api(env.stack.api, a.access_token, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(dm)}/messages?dir=b&limit=100`);
    const sent = history.chunk.filter((e) => e.state_key === undefined);
    assert.ok(sent.length >= 4, `two messages and two images in the history: ${JSON.stringify(sent.map((e) => e.type))}`);
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
      assert.deepEqual(filesContaining(env.stack.dataDir, secret), [], `plaintext "${secret}" stored by the server`);
    }
    // The check would see plaintext: the public room's name is stored as is.
    assert.notDeepEqual(filesContaining(env.stack.dataDir, "Open hall"), [], "the data directory check reads the database");
  });
});
