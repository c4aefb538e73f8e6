// End-to-end encryption: matrix-js-sdk's Rust crypto (vodozemac compiled
// to WebAssembly), started after sign-in and before the first sync.
//
// MatrixClient.initRustCrypto loads the crypto with a dynamic import, so
// Vite puts it (its JavaScript and the .wasm file) in chunks of their own:
// the sign-in page never downloads them, and the browser caches them
// (hashed names under /assets/, served immutable by web/embed.go).
//
// The device's keys live in IndexedDB under one prefix. A browser holds
// one session of Salon at a time (the session in localStorage), so the
// store belongs to one user and device: which one is noted beside the
// session, and a store left by another sign-in is deleted before start
// (the Rust crypto refuses to open a store of another device).
import type { MatrixClient } from "matrix-js-sdk";

export const cryptoDatabasePrefix = "salon";
const ownerKey = "salon.cryptoOwner";

function owner(client: MatrixClient): string {
  return `${client.getUserId()}|${client.getDeviceId()}`;
}

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => resolve();
    req.onblocked = () => resolve();
  });
}

let warming: Promise<void> | null = null;

/**
 * Starts fetching and compiling the crypto's WebAssembly in the
 * background, for a sign-in that is about to happen (the sign-in form
 * calls it when the person starts typing): the compile then overlaps the
 * typing and the login request instead of delaying the first sync. The
 * SDK's own initialisation later finds the module ready (the bindings
 * initialise once). Failures are left for startCrypto to report.
 */
export function warmCrypto(): void {
  if (warming) return;
  warming = import("@matrix-org/matrix-sdk-crypto-wasm").then(
    (m) => m.initAsync(),
    () => undefined,
  );
  warming.catch(() => undefined);
}

/** Deletes this browser's crypto store (the device's keys). */
export async function deleteCryptoStore(): Promise<void> {
  await deleteDatabase(`${cryptoDatabasePrefix}::matrix-sdk-crypto`);
  await deleteDatabase(`${cryptoDatabasePrefix}::matrix-sdk-crypto-meta`);
  try {
    localStorage.removeItem(ownerKey);
  } catch {
    // storage unavailable: nothing noted
  }
}

/**
 * Starts end-to-end encryption on the client; call it before
 * startClient. Resolves false (and logs why) when the crypto cannot run
 * in this browser; the client then reads and writes unencrypted rooms
 * only, and says so in encrypted ones.
 */
export function startCrypto(client: MatrixClient): Promise<boolean> {
  let p = started.get(client);
  if (!p) {
    p = start(client);
    started.set(client, p);
  }
  return p;
}

const started = new WeakMap<MatrixClient, Promise<boolean>>();

/** Resolves once startCrypto is done for the client: whether the crypto runs. */
export function cryptoStarted(client: MatrixClient): Promise<boolean> {
  return started.get(client) ?? Promise.resolve(false);
}

async function start(client: MatrixClient): Promise<boolean> {
  const me = owner(client);
  let noted: string | null = null;
  try {
    noted = localStorage.getItem(ownerKey);
  } catch {
    noted = null;
  }
  if (noted !== me) await deleteCryptoStore();
  performance.mark("salon:crypto-start");
  try {
    await client.initRustCrypto({ cryptoDatabasePrefix });
  } catch (err) {
    // A store we did not note (written by an older client, or by a tab
    // of another session): start from a fresh one.
    console.warn("salon: end-to-end encryption did not start with the stored keys; starting afresh", err);
    await deleteCryptoStore();
    try {
      await client.initRustCrypto({ cryptoDatabasePrefix });
    } catch (err2) {
      console.error("salon: end-to-end encryption is unavailable", err2);
      return false;
    }
  }
  performance.mark("salon:crypto-ready");
  try {
    localStorage.setItem(ownerKey, me);
  } catch {
    // the store works without the note; the next start checks again
  }
  return true;
}

/** Whether the room is end-to-end encrypted (its m.room.encryption state). */
export function isEncrypted(client: MatrixClient, roomId: string): boolean {
  return Boolean(client.getRoom(roomId)?.hasEncryptionStateEvent());
}

/** The initial state that makes a new room end-to-end encrypted (Megolm). */
export function encryptionInitialState(): { type: string; state_key: string; content: Record<string, unknown> } {
  return { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } };
}
