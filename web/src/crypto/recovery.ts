// Recovery: cross-signing, secret storage, key backup and a dehydrated
// device behind one recovery key, set up without questions at an account's first sign-in,
// and used by a later session to confirm it is the same person and read
// old messages from the backup.
//
// The secret storage key is held in memory only while one of these steps
// runs (the SDK asks for it through cryptoCallbacks), then forgotten.
import type { MatrixClient } from "matrix-js-sdk";
import { decodeRecoveryKey, deriveRecoveryKeyFromPassphrase, type CryptoCallbacks } from "matrix-js-sdk/lib/crypto-api";

let held: { keyId: string | null; key: Uint8Array<ArrayBuffer> } | null = null;

/** Given to createClient: the SDK asks here for the secret storage key. */
export const cryptoCallbacks: CryptoCallbacks = {
  getSecretStorageKey: async ({ keys }) => {
    if (!held) return null;
    const ids = Object.keys(keys);
    const id = held.keyId && ids.includes(held.keyId) ? held.keyId : ids[0];
    return id ? [id, held.key] : null;
  },
  cacheSecretStorageKey: (keyId, _info, key) => {
    if (held) held = { keyId, key };
  },
};

/**
 * Where this session stands: "unavailable" (no crypto), "new" (the
 * account has no cross-signing identity yet: set it up), "unconfirmed"
 * (it has one, and this session is not signed by it: confirm with the
 * recovery key or another session), "ready".
 */
export type Standing = "unavailable" | "new" | "unconfirmed" | "ready";

export async function standing(client: MatrixClient): Promise<Standing> {
  const crypto = client.getCrypto();
  if (!crypto) return "unavailable";
  const me = client.getSafeUserId();
  if (!(await crypto.userHasCrossSigningKeys(me, true))) return "new";
  const status = await crypto.getDeviceVerificationStatus(me, client.getDeviceId() ?? "");
  return status?.crossSigningVerified ? "ready" : "unconfirmed";
}

/**
 * Sets up the account's encryption identity: cross-signing keys (this
 * session signed with them), secret storage holding them and the key
 * backup's key, and a new key backup. Returns the recovery key to show
 * once. With a passphrase, the key is derived from it (the recovery key
 * still works).
 */
export async function setUpRecovery(client: MatrixClient, passphrase?: string): Promise<string> {
  const crypto = client.getCrypto();
  if (!crypto) throw new Error("end-to-end encryption is not running");
  const generated = await crypto.createRecoveryKeyFromPassphrase(passphrase);
  held = { keyId: null, key: generated.privateKey };
  try {
    // The first upload of cross-signing keys needs no password (MSC3967).
    await crypto.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest(null);
      },
    });
    await crypto.bootstrapSecretStorage({
      createSecretStorageKey: async () => generated,
      setupNewSecretStorage: true,
      setupNewKeyBackup: true,
    });
    await startDehydration(client, true);
  } finally {
    held = null;
  }
  if (!generated.encodedPrivateKey) throw new Error("no recovery key was made");
  return generated.encodedPrivateKey;
}

/**
 * A dehydrated device (MSC3814): a device kept on the server, its key in
 * secret storage, that receives room keys while no session is open; the
 * next session rehydrates it (and so reads those messages) and makes a
 * new one. Skipped, with a warning, where the server does not offer it.
 */
async function startDehydration(client: MatrixClient, fresh: boolean): Promise<void> {
  const crypto = client.getCrypto();
  try {
    if (!crypto || !(await crypto.isDehydrationSupported())) return;
    await crypto.startDehydration({ createNewKey: fresh, rehydrate: !fresh });
  } catch (err) {
    console.warn("salon: no dehydrated device", err);
  }
}

export class WrongRecoveryKey extends Error {}

/** The secret storage key that the text (a recovery key or the passphrase) stands for, checked. */
async function keyFrom(client: MatrixClient, text: string): Promise<{ keyId: string; key: Uint8Array<ArrayBuffer> }> {
  const found = await client.secretStorage.getKey();
  if (!found) throw new Error("this account has no secret storage");
  const [keyId, info] = found;
  const candidates: Uint8Array<ArrayBuffer>[] = [];
  try {
    candidates.push(decodeRecoveryKey(text.trim()));
  } catch {
    // not a recovery key; maybe the passphrase
  }
  if (info.passphrase && text) {
    candidates.push(await deriveRecoveryKeyFromPassphrase(text, info.passphrase.salt, info.passphrase.iterations, info.passphrase.bits));
  }
  for (const key of candidates) {
    if (await client.secretStorage.checkKey(key, info)) return { keyId, key };
  }
  throw new WrongRecoveryKey("wrong recovery key");
}

/**
 * Confirms this session with the recovery key (or passphrase): its
 * cross-signing keys come from secret storage and sign this session, the
 * key backup's key too, and the backup's room keys are restored, so old
 * messages decrypt (the SDK retries them as keys arrive). Resolves with
 * the number of room keys restored.
 */
export async function recover(client: MatrixClient, text: string): Promise<number> {
  const crypto = client.getCrypto();
  if (!crypto) throw new Error("end-to-end encryption is not running");
  held = await keyFrom(client, text);
  try {
    await crypto.bootstrapCrossSigning({});
    await crypto.loadSessionBackupPrivateKeyFromSecretStorage();
    // Messages sent while no session was open: their keys went to the
    // dehydrated device, which this session takes over, then replaces.
    await startDehydration(client, false);
  } finally {
    held = null;
  }
  await crypto.checkKeyBackupAndEnable();
  const res = await crypto.restoreKeyBackup();
  return res.imported;
}

/**
 * A new recovery key (from a passphrase when one is given) in place of
 * the current one: a new secret storage key becomes the default, and the
 * secrets this session holds (cross-signing keys, the key backup's key)
 * are stored under it, as is a new dehydrated device's key. The old key
 * no longer opens anything new. Needs a confirmed session (it holds the
 * secrets); returns the new recovery key to show once.
 */
export async function changeRecovery(client: MatrixClient, passphrase?: string): Promise<string> {
  const crypto = client.getCrypto();
  if (!crypto) throw new Error("end-to-end encryption is not running");
  const generated = await crypto.createRecoveryKeyFromPassphrase(passphrase || undefined);
  held = { keyId: null, key: generated.privateKey };
  try {
    await crypto.bootstrapSecretStorage({
      createSecretStorageKey: async () => generated,
      setupNewSecretStorage: true,
    });
    await startDehydration(client, true);
  } finally {
    held = null;
  }
  if (!generated.encodedPrivateKey) throw new Error("no recovery key was made");
  return generated.encodedPrivateKey;
}

/** Account data noting when the person last reset their encryption identity. */
export const resetEventType = "org.salonhq.encryption_reset";

/** When the person's encryption identity was last reset (ms), or 0. */
export function resetAt(client: MatrixClient): number {
  const ts = client.getAccountData(resetEventType as never)?.getContent()?.reset_ts;
  return typeof ts === "number" ? ts : 0;
}

/**
 * Reset after total loss (no other session, no recovery key): new
 * cross-signing keys (the server asks for the password), a new empty key
 * backup, new secret storage and dehydrated device, and the time of the
 * reset in account data so every later session can say why older messages
 * cannot be read. Returns the new recovery key to show once.
 */
export async function resetIdentity(client: MatrixClient, password: string, passphrase?: string): Promise<string> {
  const crypto = client.getCrypto();
  if (!crypto) throw new Error("end-to-end encryption is not running");
  const userId = client.getSafeUserId();
  const generated = await crypto.createRecoveryKeyFromPassphrase(passphrase || undefined);
  held = { keyId: null, key: generated.privateKey };
  try {
    await crypto.resetEncryption(async (makeRequest) => {
      try {
        await makeRequest(null);
      } catch (err) {
        const e = err as { httpStatus?: number; data?: { session?: string; flows?: unknown } };
        if (e.httpStatus !== 401 || !e.data?.flows) throw err;
        await makeRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password, session: e.data.session } as never);
      }
    });
    await crypto.bootstrapSecretStorage({
      createSecretStorageKey: async () => generated,
      setupNewSecretStorage: true,
    });
    await startDehydration(client, true);
  } finally {
    held = null;
  }
  await client.setAccountData(resetEventType as never, { reset_ts: Date.now() } as never);
  if (!generated.encodedPrivateKey) throw new Error("no recovery key was made");
  return generated.encodedPrivateKey;
}
