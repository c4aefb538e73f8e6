// Attachments in encrypted rooms, as the spec's "Sending encrypted
// attachments" says: each file (and its thumbnail) is encrypted in the
// browser with a fresh AES-256-CTR key (WebCrypto), the ciphertext is
// uploaded, and the message carries `file` (the mxc URI, the key as a
// JWK, the IV and the SHA-256 of the ciphertext) instead of `url`. The
// server never sees the plaintext; readers check the hash, decrypt, and
// show the bytes through a blob: URL.
import type { MatrixClient } from "matrix-js-sdk";
import { fetchMedia, mediaUrl } from "../matrix";

/** The spec's EncryptedFile. */
export interface EncryptedFile {
  url: string;
  key: { kty: "oct"; key_ops: string[]; alg: "A256CTR"; k: string; ext: true };
  iv: string;
  hashes: { sha256: string };
  v: "v2";
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/=+$/, "");
}

function unb64(s: string): Uint8Array<ArrayBuffer> {
  const std = s.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(std + "===".slice((std.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Encrypts the bytes; the result's file lacks only the url of the upload. */
export async function encryptAttachment(plain: ArrayBuffer): Promise<{ data: ArrayBuffer; file: Omit<EncryptedFile, "url"> }> {
  const key = await crypto.subtle.generateKey({ name: "AES-CTR", length: 256 }, true, ["encrypt", "decrypt"]);
  // The IV's first 8 bytes are random; the last 8 are the block counter,
  // starting at 0 (so a counter never wraps into the random half).
  const iv = new Uint8Array(16);
  crypto.getRandomValues(iv.subarray(0, 8));
  const data = await crypto.subtle.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, plain);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return {
    data,
    file: {
      key: { kty: "oct", key_ops: ["encrypt", "decrypt"], alg: "A256CTR", k: String(jwk.k), ext: true },
      iv: b64(iv),
      hashes: { sha256: b64(hash) },
      v: "v2",
    },
  };
}

export class AttachmentError extends Error {}

/** Checks the ciphertext's hash and decrypts it. */
export async function decryptAttachment(data: ArrayBuffer, file: EncryptedFile): Promise<ArrayBuffer> {
  if (!file?.key?.k || !file.iv || !file.hashes?.sha256) throw new AttachmentError("incomplete file description");
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  if (b64(hash) !== file.hashes.sha256.replace(/=+$/, "")) throw new AttachmentError("the file's hash does not match");
  const key = await crypto.subtle.importKey("jwk", { kty: "oct", k: file.key.k, alg: "A256CTR", ext: true, key_ops: ["encrypt", "decrypt"] }, { name: "AES-CTR" }, false, ["decrypt"]);
  const iv = unb64(file.iv);
  if (iv.length !== 16) throw new AttachmentError("bad IV");
  return crypto.subtle.decrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, data);
}

/**
 * Uploads the blob, encrypted when the room is: resolves with what the
 * message says of it, `{ url }` or `{ file }`.
 */
export async function uploadFor(
  client: MatrixClient,
  roomId: string,
  blob: Blob,
  opts: { name: string; type: string; includeFilename?: boolean; progressHandler?: (p: { loaded: number; total: number }) => void },
): Promise<{ url: string } | { file: EncryptedFile }> {
  if (!client.getRoom(roomId)?.hasEncryptionStateEvent()) {
    const up = await client.uploadContent(blob, opts);
    return { url: up.content_uri };
  }
  const { data, file } = await encryptAttachment(await blob.arrayBuffer());
  // Neither the name nor the type of the file goes to the server.
  const up = await client.uploadContent(new Blob([data], { type: "application/octet-stream" }), {
    type: "application/octet-stream",
    includeFilename: false,
    progressHandler: opts.progressHandler,
  });
  return { file: { ...file, url: up.content_uri } };
}

const cache = new Map<string, Promise<string>>();

/** A blob: URL of the decrypted file, fetched and decrypted once per session. */
export function decryptedBlobUrl(client: MatrixClient, file: EncryptedFile, mimetype: string): Promise<string> {
  let p = cache.get(file.url);
  if (!p) {
    p = decryptedBlob(client, file, mimetype).then((b) => URL.createObjectURL(b));
    p.catch(() => cache.delete(file.url));
    cache.set(file.url, p);
  }
  return p;
}

export async function decryptedBlob(client: MatrixClient, file: EncryptedFile, mimetype: string): Promise<Blob> {
  const url = mediaUrl(client, file.url);
  if (!url) throw new AttachmentError("not an mxc:// URI");
  const data = await (await fetchMedia(client, url)).arrayBuffer();
  return new Blob([await decryptAttachment(data, file)], { type: mimetype || "application/octet-stream" });
}

/** Saves the decrypted file as a download under its own name. */
export async function downloadDecrypted(client: MatrixClient, file: EncryptedFile, mimetype: string, filename: string): Promise<void> {
  const href = URL.createObjectURL(await decryptedBlob(client, file, mimetype));
  const a = document.createElement("a");
  a.href = href;
  a.download = filename;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

/** The encrypted file of a message's content (`file`), when it has one. */
export function encryptedFileOf(v: unknown): EncryptedFile | null {
  const f = v as Partial<EncryptedFile> | undefined;
  return f && typeof f === "object" && typeof f.url === "string" && f.key && f.iv && f.hashes ? (f as EncryptedFile) : null;
}
