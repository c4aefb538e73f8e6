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
