// Scenario 2: attachments. Alice sends an image and a PDF with the file
// picker and a text file by drag-and-drop; Bob sees the image's thumbnail
// inline and downloads the PDF, byte for byte the file Alice sent.
//
// Skipped, and says so, only while the server answers 404 M_UNRECOGNIZED
// on /sync or /createRoom (or on the media upload this scenario is about):
// it then starts running by itself.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { deflateSync } from "node:zlib";
import { api, lacks, launchBrowser, loginUI, newPerson, registerApi, scenario, startStack, uniqueName } from "./harness.mjs";

let stack;
let browser;
let missing = null;

before(async () => {
  stack = await startStack();
  if (await lacks(stack.api, "GET", "/_matrix/client/v3/sync")) missing = "/sync";
  else if (await lacks(stack.api, "POST", "/_matrix/client/v3/createRoom")) missing = "/createRoom";
  else if (await lacks(stack.api, "POST", "/_matrix/media/v3/upload")) missing = "media upload (/_matrix/media/v3/upload)";
  if (missing) {
    console.log(`SKIPPED: server lacks ${missing} (scenario 2 runs once it answers)`);
    return;
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A w×h RGB PNG with a gradient, large enough to need a thumbnail. */
function png(w, h) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    raw[row] = 0;
    for (let x = 0; x < w; x++) {
      raw[row + 1 + x * 3] = (x * 255) / w;
      raw[row + 2 + x * 3] = (y * 255) / h;
      raw[row + 3 + x * 3] = 128;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** A small valid PDF with random bytes in a stream, so no two runs match. */
function pdf() {
  const noise = randomBytes(4096).toString("hex");
  const text = `BT /F1 12 Tf 72 720 Td (Salon attachment test) Tj ET\n% ${noise}\n`;
  const objs = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${text.length} >>\nstream\n${text}endstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let out = "%PDF-1.4\n";
  const offsets = [];
  objs.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, "latin1");
}

test("scenario 2: an image and a PDF; thumbnail inline, the PDF downloads intact", { timeout: 180_000 }, async (t) => {
  if (missing) {
    t.skip(`server lacks ${missing}`);
    return;
  }
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("alice"), password);
  const b = await registerApi(stack.api, uniqueName("bob"), password);
  // The room itself is set up through the API: this scenario is about media.
  const { room_id: roomId } = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", {
    name: "Files",
    preset: "private_chat",
    invite: [b.user_id],
  });
  await api(stack.api, b.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {});

  const alice = await newPerson(browser, "alice");
  const bob = await newPerson(browser, "bob");
  const A = alice.page;
  const B = bob.page;
  const image = png(1600, 1200);
  const report = pdf();

  await scenario("scenario-2-attachments", [alice, bob], async () => {
    await Promise.all([loginUI(A, stack.url, a.user_id, password), loginUI(B, stack.url, b.user_id, password)]);
    for (const p of [A, B]) {
      await p.locator(`.room-button[data-room-id="${roomId}"]`).click();
      await p.locator("#room-title", { hasText: "Files" }).waitFor();
    }

    // Alice picks two files.
    await A.locator('.composer input[type="file"]').setInputFiles([
      { name: "gradient.png", mimeType: "image/png", buffer: image },
      { name: "report.pdf", mimeType: "application/pdf", buffer: report },
    ]);

    // Bob sees the image inline, from a thumbnail.
    const img = B.locator("li.event.message .media.image img");
    await img.waitFor();
    await B.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    const size = await img.evaluate((el) => ({ w: el.naturalWidth, h: el.naturalHeight, src: el.src }));
    assert.ok(size.src.startsWith("blob:"), "authenticated media is shown through a blob: URL");
    assert.ok(size.w <= 800 && size.h <= 600, `a thumbnail, not the 1600×1200 original (got ${size.w}×${size.h})`);
    assert.ok(Math.abs(size.w / size.h - 4 / 3) < 0.02, "the thumbnail keeps the proportions");

    // Bob downloads the PDF: the same bytes.
    const card = B.locator(".file-card", { hasText: "report.pdf" });
    await card.waitFor();
    await card.getByText("application/pdf").waitFor();
    const [download] = await Promise.all([B.waitForEvent("download"), card.getByRole("button", { name: "Download report.pdf" }).click()]);
    assert.equal(download.suggestedFilename(), "report.pdf");
    const got = await readFile(await download.path());
    assert.equal(got.length, report.length);
    assert.ok(got.equals(report), "the downloaded PDF is byte for byte the one sent");

    // Drag-and-drop: a text file dropped on the room.
    await A.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped notes\n"], "notes.txt", { type: "text/plain" }));
      const target = document.querySelector("main.room");
      for (const type of ["dragover", "drop"]) {
        target?.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    });
    await B.locator(".file-card", { hasText: "notes.txt" }).waitFor();
    // Nothing left in the upload list: every upload finished.
    await A.locator(".uploads").waitFor({ state: "detached" });
  });
});
