// Simplified sliding sync (MSC4186) with the real client that speaks it in
// Element Web: matrix-js-sdk's SlidingSync, driving a MatrixClient through
// Salon's /_matrix/client/unstable/org.matrix.simplified_msc3575/sync.
// Its lists and room subscriptions fill, the list count is right, room
// names arrive, and a message another user sends reaches the client.
//
// Run through web/tests/interop/run.sh (or, with SALON_BIN set, with
// `node --test tests/interop/sliding.test.mjs` from web/).
import assert from "node:assert/strict";
import { test } from "node:test";
import { missingEndpoints, quietLogger, register, startSalon, until } from "./salon.mjs";

async function call(api, session, method, path, body) {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { Authorization: `Bearer ${session.access_token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

test("matrix-js-sdk's SlidingSync fills its lists and subscriptions from Salon and receives messages", { timeout: 180_000 }, async (t) => {
  const salon = await startSalon();
  const log = [];
  let client, slidingSync;
  try {
    const api = salon.url;
    const missing = await missingEndpoints(api, [["POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"]]);
    if (missing.length) {
      t.skip(`the server does not serve ${missing.join(", ")}`);
      return;
    }
    const versions = await (await fetch(`${api}/_matrix/client/versions`)).json();
    assert.equal(versions.unstable_features["org.matrix.simplified_msc3575"], true);

    const sdk = await import("matrix-js-sdk");
    const { SlidingSync } = await import("matrix-js-sdk/lib/sliding-sync.js");
    const alice = await register(api, "alice", "alice password");
    const bob = await register(api, "bob", "bob password");
    const rooms = [];
    for (const name of ["Amphi A", "Bibliothèque", "Cafétéria"]) {
      const { room_id } = await call(api, alice, "POST", "/_matrix/client/v3/createRoom", { name, preset: "public_chat" });
      await call(api, bob, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room_id)}`, {});
      await call(api, alice, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(room_id)}/send/m.room.message/${name.length}`, {
        msgtype: "m.text",
        body: `Bienvenue à ${name}`,
      });
      rooms.push(room_id);
    }

    client = sdk.createClient({ baseUrl: api, userId: bob.user_id, accessToken: bob.access_token, deviceId: bob.device_id, logger: quietLogger(log) });
    const lists = new Map([
      [
        "all",
        {
          ranges: [[0, 1]],
          timeline_limit: 1,
          required_state: [
            ["m.room.name", ""],
            ["m.room.create", ""],
            ["m.room.member", "$LAZY"],
          ],
        },
      ],
    ]);
    slidingSync = new SlidingSync(api, lists, { timeline_limit: 20, required_state: [["*", "*"]] }, client, 5000);
    // The oldest room is outside the window [0, 1]: a subscription brings it.
    slidingSync.modifyRoomSubscriptions(new Set([rooms[0]]));
    await client.startClient({ slidingSync });

    await until("the window and the subscription", () => rooms.every((id) => client.getRoom(id)));
    assert.equal(slidingSync.getListData("all")?.joinedCount, 3);
    assert.deepEqual(rooms.map((id) => client.getRoom(id).name), ["Amphi A", "Bibliothèque", "Cafétéria"]);
    const bodies = (id) =>
      client
        .getRoom(id)
        .getLiveTimeline()
        .getEvents()
        .filter((e) => e.getType() === "m.room.message")
        .map((e) => e.getContent().body);
    assert.deepEqual(bodies(rooms[0]), ["Bienvenue à Amphi A"]);

    // A message from alice in the subscribed room arrives live.
    await call(api, alice, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(rooms[0])}/send/m.room.message/live`, {
      msgtype: "m.text",
      body: "Le cours commence",
    });
    await until("alice's message", () => bodies(rooms[0]).includes("Le cours commence"), 30_000);
    // Growing the window brings nothing new but keeps the count.
    slidingSync.setListRanges("all", [[0, 2]]);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(slidingSync.getListData("all")?.joinedCount, 3);
  } catch (e) {
    console.error(log.slice(-60).join("\n"));
    throw e;
  } finally {
    slidingSync?.stop();
    client?.stopClient();
    await salon.stop();
  }
});

// An encrypted DM with the Rust crypto on both ends: alice on /sync, bob on
// sliding sync, whose to_device and e2ee extensions carry the Olm-wrapped
// room key and the key counts; each reads the other's message.
test("matrix-js-sdk's SlidingSync with Rust crypto: an encrypted DM both ways", { timeout: 300_000 }, async (t) => {
  const salon = await startSalon();
  const log = [];
  const clients = [];
  let slidingSync;
  try {
    const api = salon.url;
    const missing = await missingEndpoints(api, [
      ["POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"],
      ["POST", "/_matrix/client/v3/keys/upload"],
      ["PUT", "/_matrix/client/v3/sendToDevice/m.test/probe"],
    ]);
    if (missing.length) {
      t.skip(`the server does not serve ${missing.join(", ")}`);
      return;
    }
    const sdk = await import("matrix-js-sdk");
    const { SlidingSync } = await import("matrix-js-sdk/lib/sliding-sync.js");
    const aliceS = await register(api, "alice", "alice password");
    const bobS = await register(api, "bob", "bob password");

    const alice = sdk.createClient({ baseUrl: api, userId: aliceS.user_id, accessToken: aliceS.access_token, deviceId: aliceS.device_id, logger: quietLogger(log) });
    clients.push(alice);
    await alice.initRustCrypto({ useIndexedDB: false });
    const prepared = new Promise((resolve) =>
      alice.on(sdk.ClientEvent.Sync, (state) => {
        if (state === "PREPARED" || state === "SYNCING") resolve();
      }),
    );
    alice.startClient({ initialSyncLimit: 20 });
    await prepared;

    const bob = sdk.createClient({ baseUrl: api, userId: bobS.user_id, accessToken: bobS.access_token, deviceId: bobS.device_id, logger: quietLogger(log) });
    clients.push(bob);
    await bob.initRustCrypto({ useIndexedDB: false });
    const lists = new Map([["all", { ranges: [[0, 20]], timeline_limit: 10, required_state: [["*", "*"]] }]]);
    slidingSync = new SlidingSync(api, lists, { timeline_limit: 20, required_state: [["*", "*"]] }, bob, 3000);
    await bob.startClient({ slidingSync });
    // bob's device keys are on the server before alice encrypts to him.
    await until("bob's device keys", async () => {
      const res = await fetch(`${api}/_matrix/client/v3/keys/query`, {
        method: "POST",
        headers: { Authorization: `Bearer ${aliceS.access_token}` },
        body: JSON.stringify({ device_keys: { [bobS.user_id]: [] } }),
      });
      const body = await res.json();
      return Object.keys(body.device_keys?.[bobS.user_id] ?? {}).length > 0;
    });

    const { room_id: roomId } = await alice.createRoom({
      preset: "trusted_private_chat",
      is_direct: true,
      invite: [bobS.user_id],
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await until("the invite over sliding sync", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
    await bob.joinRoom(roomId);
    await until("bob's join at alice", () => alice.getRoom(roomId)?.getMember(bobS.user_id)?.membership === "join");
    await until("bob's room state", () => bob.getRoom(roomId)?.hasEncryptionStateEvent());

    const clear = async (client, eventId, what) => {
      let last = "not received";
      return until(what, () => {
        const e = client.getRoom(roomId)?.findEventById(eventId);
        if (!e) return undefined;
        if (e.isBeingDecrypted() || e.getType() === "m.room.encrypted" || e.isDecryptionFailure()) {
          last = `decryption failure ${e.decryptionFailureReason ?? ""}`;
          return undefined;
        }
        return e;
      }).catch((err) => {
        throw new Error(`${err.message}: ${last}`);
      });
    };
    const toBob = "Le TD est en salle 204 🔐";
    const { event_id: e1 } = await alice.sendTextMessage(roomId, toBob);
    const got = await clear(bob, e1, "bob decrypting alice's message over sliding sync");
    assert.equal(got.isEncrypted(), true);
    assert.equal(got.getContent().body, toBob);

    const toAlice = "Merci, j'arrive 🔑";
    const { event_id: e2 } = await bob.sendTextMessage(roomId, toAlice);
    const back = await clear(alice, e2, "alice decrypting bob's message");
    assert.equal(back.getContent().body, toAlice);
    assert.equal(back.getSender(), bobS.user_id);
  } catch (e) {
    console.error(log.slice(-80).join("\n"));
    throw e;
  } finally {
    slidingSync?.stop();
    for (const c of clients) c.stopClient();
    await salon.stop();
  }
});
