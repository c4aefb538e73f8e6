// Real end-to-end encryption against Salon, for 7-e2ee.test.mjs:
// matrix-js-sdk with its Rust crypto (vodozemac in WebAssembly) in Node.
// Alice and Bob exchange encrypted messages in a private room and a DM;
// Bob's second device, logged in later, reads new messages; once Bob
// deletes that device, Alice's client drops it from his devices and new
// room keys go only to his first. Prints E2EE-OK on success.
import { api, BASE, login, register, say, sdk, stamp } from "./sdk-node.mjs";

const clients = [];
async function start(session) {
  const client = sdk.createClient({ baseUrl: BASE, accessToken: session.access_token, userId: session.user_id, deviceId: session.device_id });
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

// Waits until client has decrypted an m.room.message with this body in
// the room, sent encrypted.
async function decrypted(client, roomId, body) {
  return until(`${client.getUserId()}/${client.getDeviceId()} to decrypt "${body}"`, async () => {
    const room = client.getRoom(roomId);
    if (!room) return false;
    for (const ev of room.getLiveTimeline().getEvents()) {
      if (ev.getWireType() !== "m.room.encrypted") continue;
      if (ev.isBeingDecrypted() || ev.isDecryptionFailure()) await client.decryptEventIfNeeded(ev).catch(() => {});
      if (ev.getType() === "m.room.message" && ev.getContent().body === body) return ev;
    }
    return false;
  });
}

async function joinWhenInvited(client, roomId) {
  await until(`${client.getUserId()} invited to ${roomId}`, () => client.getRoom(roomId));
  await client.joinRoom(roomId);
  await until(`${client.getUserId()} joined`, () => client.getRoom(roomId)?.getMyMembership() === "join");
}

async function membersJoined(client, roomId, n) {
  await until(`${n} members in ${roomId} for ${client.getUserId()}`, () => client.getRoom(roomId)?.getJoinedMemberCount() === n);
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

try {
  const aliceS = await register(`alice${stamp}`);
  const bobS = await register(`bob${stamp}`);
  const alice = await start(aliceS);
  const bob = await start(bobS);

  // A private room: the server made it encrypted.
  const { room_id: room } = await alice.createRoom({ preset: "private_chat", invite: [bobS.user_id], name: "secret" });
  await joinWhenInvited(bob, room);
  await membersJoined(alice, room, 2);
  check(await alice.getCrypto().isEncryptionEnabledInRoom(room), "the private room is not encrypted");
  await alice.sendTextMessage(room, "hello bob");
  await decrypted(bob, room, "hello bob");
  await bob.sendTextMessage(room, "hello alice");
  await decrypted(alice, room, "hello alice");
  // The server stored ciphertext only.
  const raw = await api(bobS.access_token, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/messages?dir=b&limit=20`);
  const wire = JSON.stringify(raw.data);
  check(!wire.includes("hello bob") && !wire.includes("hello alice"), "plaintext reached the server");
  check(raw.data.chunk.some((e) => e.type === "m.room.encrypted"), "no m.room.encrypted events stored");
  say("private room: ok");

  // A direct chat.
  const { room_id: dm } = await alice.createRoom({ preset: "trusted_private_chat", is_direct: true, invite: [bobS.user_id] });
  await joinWhenInvited(bob, dm);
  await membersJoined(alice, dm, 2);
  await alice.sendTextMessage(dm, "direct hello");
  await decrypted(bob, dm, "direct hello");
  await bob.sendTextMessage(dm, "direct reply");
  await decrypted(alice, dm, "direct reply");
  say("direct chat: ok");

  // Bob's second device, logged in later, reads new messages.
  const bob2S = await login(`bob${stamp}`);
  const bob2 = await start(bob2S);
  await until("alice to see bob's second device", async () => {
    const devs = await alice.getCrypto().getUserDeviceInfo([bobS.user_id], true);
    return devs.get(bobS.user_id)?.has(bob2S.device_id);
  });
  await alice.sendTextMessage(room, "for both of bob's devices");
  await decrypted(bob2, room, "for both of bob's devices");
  await decrypted(bob, room, "for both of bob's devices");
  say("second device: ok");

  // Bob deletes his second device: alice's client drops it and the next
  // room key goes to his first device only.
  bob2.stopClient();
  let r = await api(bobS.access_token, "DELETE", `/_matrix/client/v3/devices/${bob2S.device_id}`, {});
  r = await api(bobS.access_token, "DELETE", `/_matrix/client/v3/devices/${bob2S.device_id}`, {
    auth: { type: "m.login.password", session: r.data.session, identifier: { type: "m.id.user", user: `bob${stamp}` }, password: `password bob${stamp}` },
  });
  check(r.status === 200, `delete device: ${JSON.stringify(r.data)}`);
  await until("alice to forget bob's deleted device", async () => {
    const devs = await alice.getCrypto().getUserDeviceInfo([bobS.user_id], true);
    return devs.get(bobS.user_id) && !devs.get(bobS.user_id).has(bob2S.device_id);
  });
  await alice.getCrypto().forceDiscardSession(room);
  await alice.sendTextMessage(room, "after the deletion");
  await decrypted(bob, room, "after the deletion");
  // Nothing waits for the deleted device: a new login with its ID finds
  // no queued room key.
  const back = await api(null, "POST", "/_matrix/client/v3/login", {
    type: "m.login.password", identifier: { type: "m.id.user", user: `bob${stamp}` }, password: `password bob${stamp}`, device_id: bob2S.device_id,
  });
  const s = await api(back.data.access_token, "GET", "/_matrix/client/v3/sync");
  check(s.data.to_device.events.length === 0, `the deleted device's ID got ${s.data.to_device.events.length} to-device messages`);
  say("deleted device: ok");
  say("E2EE-OK");
} finally {
  for (const c of clients) c.stopClient();
}
process.exit(0);
