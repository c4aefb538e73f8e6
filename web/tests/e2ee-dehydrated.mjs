// A dehydrated device (MSC3814) with matrix-js-sdk's Rust crypto, for
// 7-e2ee.test.mjs: Bob sets up cross-signing, secret storage and a
// dehydrated device, then logs out his only device; Alice sends him an
// encrypted message; Bob's next login rehydrates the device and reads it.
// Prints DEHYDRATED-OK on success.
import { api, BASE, login, register, say, sdk, stamp } from "./sdk-node.mjs";

// The recovery key (secret storage key) Bob "remembers" between logins.
let ssKey = null;
const clients = [];
async function start(session) {
  const client = sdk.createClient({
    baseUrl: BASE, accessToken: session.access_token, userId: session.user_id, deviceId: session.device_id,
    cryptoCallbacks: {
      getSecretStorageKey: async ({ keys }) => {
        const id = Object.keys(keys)[0];
        return ssKey ? [id, ssKey.privateKey] : null;
      },
      cacheSecretStorageKey: () => {},
    },
  });
  await client.initRustCrypto({ useIndexedDB: false });
  const synced = new Promise((resolve) => {
    const on = (state) => {
      if (state === "PREPARED" || state === "SYNCING") {
        client.off(sdk.ClientEvent.Sync, on);
        resolve();
      }
    };
    client.on(sdk.ClientEvent.Sync, on);
  });
  await client.startClient({ initialSyncLimit: 20 });
  await synced;
  clients.push(client);
  return client;
}

async function until(what, fn, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

try {
  const aliceS = await register(`alice${stamp}`);
  const bobS = await register(`bob${stamp}`);
  const alice = await start(aliceS);
  const bob = await start(bobS);
  const { room_id: room } = await alice.createRoom({ preset: "private_chat", invite: [bobS.user_id] });
  await until("bob invited", () => bob.getRoom(room));
  await bob.joinRoom(room);
  await until("bob joined for alice", () => alice.getRoom(room)?.getJoinedMemberCount() === 2);

  const crypto = bob.getCrypto();
  await crypto.bootstrapCrossSigning({ authUploadDeviceSigningKeys: async (makeRequest) => { await makeRequest(null); } });
  await crypto.bootstrapSecretStorage({
    createSecretStorageKey: async () => {
      ssKey = await crypto.createRecoveryKeyFromPassphrase();
      return ssKey;
    },
    setupNewSecretStorage: true,
  });
  if (!(await crypto.isDehydrationSupported())) throw new Error("dehydration not supported");
  await crypto.startDehydration({ createNewKey: true, rehydrate: false });
  const dh = await api(bobS.access_token, "GET", "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device");
  if (dh.status !== 200) throw new Error(`no dehydrated device: ${JSON.stringify(dh.data)}`);
  const dhID = dh.data.device_id;
  say("dehydrated device uploaded");

  // Bob logs out his only device; Alice's client sees only the dehydrated
  // one left.
  bob.stopClient();
  await api(bobS.access_token, "POST", "/_matrix/client/v3/logout", {});
  await until("alice to see only bob's dehydrated device", async () => {
    const devs = (await alice.getCrypto().getUserDeviceInfo([bobS.user_id], true)).get(bobS.user_id);
    return devs && devs.size === 1 && devs.has(dhID);
  });
  await alice.sendTextMessage(room, "sent while bob had no device");

  // Bob's next login rehydrates and reads it.
  const bob2S = await login(`bob${stamp}`);
  const bob2 = await start(bob2S);
  // The recovery key unlocks secret storage: the new device takes the
  // cross-signing keys from it, then the dehydration key.
  // (once the device has fetched its user's public cross-signing keys,
  // which the import checks the private ones against).
  await until("bob's new device to know his cross-signing keys", () => bob2.getCrypto().userHasCrossSigningKeys(bobS.user_id, true));
  await bob2.getCrypto().bootstrapCrossSigning({ authUploadDeviceSigningKeys: async (makeRequest) => { await makeRequest(null); } });
  await bob2.getCrypto().startDehydration({ rehydrate: true });
  await until("bob's new device to decrypt the message", async () => {
    const r = bob2.getRoom(room);
    if (!r) return false;
    for (const ev of r.getLiveTimeline().getEvents()) {
      if (ev.getWireType() !== "m.room.encrypted") continue;
      if (ev.isDecryptionFailure()) await bob2.decryptEventIfNeeded(ev, { isRetry: true }).catch(() => {});
      if (ev.getContent().body === "sent while bob had no device") return true;
    }
    return false;
  });
  say("rehydrated: ok");
  say("DEHYDRATED-OK");
} finally {
  for (const c of clients) c.stopClient();
}
process.exit(0);
