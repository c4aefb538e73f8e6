// Server-side key backup with a real client doing real cryptography:
// matrix-js-sdk 43 with its Rust crypto (vodozemac) creates a backup,
// sends encrypted messages whose room keys it backs up to Salon, and a new
// device of the same person, which never received those keys, restores
// them from Salon with the backup decryption key and reads the messages.
//
// Run through web/tests/interop/run.sh. It skips, naming what is missing,
// while the server does not serve the E2EE endpoints or /room_keys.
import assert from "node:assert/strict";
import { test } from "node:test";
import { missingEndpoints, quietLogger, register, startSalon, until } from "./salon.mjs";

async function login(api, user, password) {
  const res = await fetch(`${api}/_matrix/client/v3/login`, {
    method: "POST",
    body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user }, password }),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(`login ${user}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

async function cryptoClient(sdk, api, session, log) {
  const client = sdk.createClient({
    baseUrl: api, userId: session.user_id, accessToken: session.access_token, deviceId: session.device_id, logger: quietLogger(log),
  });
  await client.initRustCrypto({ useIndexedDB: false });
  const synced = new Promise((resolve) =>
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === "PREPARED" || state === "SYNCING") resolve();
    }),
  );
  client.startClient({ initialSyncLimit: 30 });
  await synced;
  return client;
}

test("matrix-js-sdk backs up room keys to Salon and a new device restores them", { timeout: 300_000 }, async (t) => {
  const salon = await startSalon();
  const clients = [];
  const log = [];
  try {
    const api = salon.url;
    const missing = await missingEndpoints(api, [
      ["POST", "/_matrix/client/v3/keys/upload"],
      ["POST", "/_matrix/client/v3/keys/query"],
      ["PUT", "/_matrix/client/v3/sendToDevice/m.test/probe"],
      ["POST", "/_matrix/client/v3/room_keys/version"],
      ["PUT", "/_matrix/client/v3/room_keys/keys"],
    ]);
    if (missing.length) {
      t.skip(`the server does not serve ${missing.join(", ")}: this test needs the e2ee branch`);
      return;
    }
    const sdk = await import("matrix-js-sdk");
    const first = await register(api, "alice", "alice password");
    const a1 = await cryptoClient(sdk, api, first, log);
    clients.push(a1);
    const c1 = a1.getCrypto();

    // A backup, made and trusted by the first device.
    await c1.resetKeyBackup();
    const version = await until("the backup to be active", () => c1.getActiveSessionBackupVersion());
    const backupKey = await c1.getSessionBackupPrivateKey();
    assert.ok(backupKey, "the first device holds the backup decryption key");

    const { room_id: roomId } = await a1.createRoom({
      preset: "private_chat",
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await until("the room at the first device", () => a1.getRoom(roomId));
    const texts = ["premier message chiffré", "second message chiffré 🔐"];
    const ids = [];
    for (const text of texts) ids.push((await a1.sendTextMessage(roomId, text)).event_id);

    // Salon holds the room key, as ciphertext, in that version.
    const auth = { Authorization: `Bearer ${first.access_token}` };
    const info = await until("the room key in Salon's backup", async () => {
      const r = await fetch(`${api}/_matrix/client/v3/room_keys/version`, { headers: auth }).then((x) => x.json());
      return r.version === version && r.count >= 1 ? r : undefined;
    });
    const stored = await fetch(`${api}/_matrix/client/v3/room_keys/keys/${encodeURIComponent(roomId)}?version=${version}`, { headers: auth }).then((x) => x.json());
    const sessions = Object.values(stored.sessions ?? {});
    assert.ok(sessions.length >= 1, `sessions of the room in the backup: ${JSON.stringify(stored)}`);
    for (const s of sessions) {
      assert.equal(typeof s.session_data.ciphertext, "string");
      assert.ok(!JSON.stringify(s).includes("session_key"), "the server holds no session key in the clear");
    }
    assert.equal(info.count, sessions.length);

    // A new device of Alice: the room key never reached it, only the
    // backup can give it the messages.
    const second = await login(api, "alice", "alice password");
    const a2 = await cryptoClient(sdk, api, second, log);
    clients.push(a2);
    const c2 = a2.getCrypto();
    await until("the room at the new device", () => a2.getRoom(roomId));
    await c2.storeSessionBackupPrivateKey(backupKey, version);
    const restored = await c2.restoreKeyBackup();
    assert.ok(restored.imported >= 1, `imported from the backup: ${JSON.stringify(restored)}`);

    const room = a2.getRoom(roomId);
    for (const [i, id] of ids.entries()) {
      const ev = await until(`the new device reading message ${i + 1}`, async () => {
        const e = room.findEventById(id);
        if (!e) return undefined;
        if (e.isDecryptionFailure() || e.getType() === "m.room.encrypted") {
          await a2.decryptEventIfNeeded(e, { isRetry: true });
          return undefined;
        }
        return e;
      });
      assert.equal(ev.getContent().body, texts[i]);
      assert.equal(ev.isEncrypted(), true);
    }
  } catch (e) {
    console.log(`# matrix-js-sdk log (last lines):\n${log.slice(-150).join("\n")}`);
    throw e;
  } finally {
    for (const c of clients) c.stopClient();
    await salon.stop();
  }
});
