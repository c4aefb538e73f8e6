// Room key export files, the spec's last-resort way to carry message keys
// between sessions ("Key exports" in the client-server spec's end-to-end
// encryption module): the keys as JSON, encrypted with AES-256-CTR under a
// key derived from a passphrase (PBKDF2 with HMAC-SHA-512), authenticated
// with HMAC-SHA-256, base64 between BEGIN/END lines. Made with WebCrypto.

const header = "-----BEGIN MEGOLM SESSION DATA-----";
const footer = "-----END MEGOLM SESSION DATA-----";
/** PBKDF2 rounds for new files (the spec asks for at least 100,000). */
const rounds = 200_000;

export class BadKeyFile extends Error {}

async function deriveKeys(passphrase: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<{ aes: CryptoKey; hmac: CryptoKey }> {
  const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveBits"]);
  const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-512", salt, iterations }, base, 512));
  const aes = await crypto.subtle.importKey("raw", bits.slice(0, 32), { name: "AES-CTR" }, false, ["encrypt", "decrypt"]);
  const hmac = await crypto.subtle.importKey("raw", bits.slice(32, 64), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  return { aes, hmac };
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The export file's text for the keys (the SDK's JSON export) and passphrase. */
export async function encryptKeyFile(json: string, passphrase: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  // Bit 63 cleared, so the 64-bit counter half never wraps into the nonce.
  iv[8]! &= 0x7f;
  const { aes, hmac } = await deriveKeys(passphrase, salt, rounds);
  const cipher = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, aes, new TextEncoder().encode(json)));
  const body = new Uint8Array(1 + 16 + 16 + 4 + cipher.length);
  body[0] = 1;
  body.set(salt, 1);
  body.set(iv, 17);
  new DataView(body.buffer).setUint32(33, rounds);
  body.set(cipher, 37);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmac, body));
  const all = new Uint8Array(body.length + 32);
  all.set(body);
  all.set(mac, body.length);
  const b64 = toBase64(all);
  const lines = [];
  for (let i = 0; i < b64.length; i += 96) lines.push(b64.slice(i, i + 96));
  return `${header}\n${lines.join("\n")}\n${footer}\n`;
}

/** The keys' JSON from an export file's text; BadKeyFile when the file or the passphrase is wrong. */
export async function decryptKeyFile(text: string, passphrase: string): Promise<string> {
  const start = text.indexOf(header);
  const end = text.indexOf(footer);
  if (start < 0 || end < start) throw new BadKeyFile("not a key export file");
  let all: Uint8Array<ArrayBuffer>;
  try {
    all = fromBase64(text.slice(start + header.length, end).replace(/\s+/g, ""));
  } catch {
    throw new BadKeyFile("not a key export file");
  }
  if (all.length < 1 + 16 + 16 + 4 + 32 || all[0] !== 1) throw new BadKeyFile("unknown key export version");
  const salt = all.slice(1, 17);
  const iv = all.slice(17, 33);
  const iterations = new DataView(all.buffer).getUint32(33);
  const cipher = all.slice(37, all.length - 32);
  const { aes, hmac } = await deriveKeys(passphrase, salt, iterations);
  const ok = await crypto.subtle.verify("HMAC", hmac, all.slice(all.length - 32), all.slice(0, all.length - 32));
  if (!ok) throw new BadKeyFile("wrong passphrase");
  const plain = await crypto.subtle.decrypt({ name: "AES-CTR", counter: iv, length: 64 }, aes, cipher);
  return new TextDecoder().decode(plain);
}
