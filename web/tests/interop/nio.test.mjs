// E2EE interop: a matrix-nio client (libolm, Debian's python3-matrix-nio
// and python3-olm) and a matrix-js-sdk client (Rust crypto, vodozemac)
// exchange encrypted messages through a real `salon serve`, both ways.
// Two independent implementations of Olm and Megolm agreeing is the test
// that the server carries device keys, one-time keys, to-device messages
// and encrypted events faithfully.
//
// Run through web/tests/interop/run.sh, which installs what is missing.
// SALON_BIN is the salon binary (or SALON_TEST_HOMESERVER an already
// running server). The test runs only when the server serves what it
// needs — the E2EE endpoints, and the r0 paths nio 0.20 calls — and says
// so when it does not.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { missingEndpoints, quietLogger, register, startSalon, until } from "./salon.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const python = process.env.NIO_PYTHON ?? "/usr/bin/python3";

/** The nio client, a child process spoken to in JSON lines. */
function startNio(api, user, password) {
  const store = mkdtempSync(path.join(tmpdir(), "nio-store-"));
  const child = spawn(python, [path.join(here, "nio_agent.py"), api, user, password, store], { stdio: ["pipe", "pipe", "pipe"] });
  const reports = [];
  const waiters = new Set();
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-50_000)));
  createInterface({ input: child.stdout }).on("line", (line) => {
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      return; // a library printing to stdout
    }
    reports.push(r);
    for (const w of waiters) w();
  });
  const nio = {
    reports,
    send(cmd) {
      child.stdin.write(JSON.stringify(cmd) + "\n");
    },
    /** Resolves with the first report (past or future) matching pred. */
    waitFor(what, pred, ms = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const r = reports.find(pred);
          const failed = reports.find((x) => x.event === "error");
          if (r || failed || child.exitCode !== null) {
            clearTimeout(timer);
            waiters.delete(check);
            if (r) return resolve(r);
            return reject(new Error(`nio, waiting for ${what}: ${failed ? failed.message : `exited ${child.exitCode}`}\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`nio: no ${what} within ${ms} ms; reports: ${JSON.stringify(reports)}\n${stderr}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null) {
        nio.send({ cmd: "quit" });
        await new Promise((resolve) => {
          const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
          child.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
        });
      }
      rmSync(store, { recursive: true, force: true });
    },
  };
  return nio;
}

test("an encrypted conversation between matrix-nio (libolm) and matrix-js-sdk (vodozemac)", { timeout: 300_000 }, async (t) => {
  const salon = await startSalon();
  let nio, client;
  const sdkLog = [];
  try {
    await conversation(t, salon.url, sdkLog, (n) => (nio = n), (c) => (client = c));
  } catch (e) {
    console.log(`# matrix-js-sdk log (last lines):\n${sdkLog.slice(-150).join("\n")}`);
    throw e;
  } finally {
    // In this order: the clients stop before the server they talk to.
    client?.stopClient();
    await nio?.stop();
    await salon.stop();
  }
});

async function conversation(t, api, sdkLog, setNio, setClient) {
  // What the test needs of the server; without it there is nothing to test.
  const needs = [
    ["POST", "/_matrix/client/v3/keys/upload"],
    ["POST", "/_matrix/client/v3/keys/query"],
    ["POST", "/_matrix/client/v3/keys/claim"],
    ["PUT", "/_matrix/client/v3/sendToDevice/m.test/probe"],
    ["POST", "/_matrix/client/r0/login"],
    ["POST", "/_matrix/client/r0/keys/upload"],
    ["GET", "/_matrix/client/r0/sync"],
  ];
  const missing = await missingEndpoints(api, needs);
  if (missing.length) {
    t.skip(`the server does not serve ${missing.join(", ")}: this test needs the e2ee and conformance (r0) branches`);
    return;
  }

  const sdk = await import("matrix-js-sdk");
  const alice = await register(api, "alice", "alice password");
  await register(api, "bob", "bob password");

  const nio = startNio(api, "bob", "bob password");
  setNio(nio);
  const bob = await nio.waitFor("ready", (r) => r.event === "ready");

  const client = sdk.createClient({
    baseUrl: api, userId: alice.user_id, accessToken: alice.access_token, deviceId: alice.device_id, logger: quietLogger(sdkLog),
  });
  setClient(client);
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise((resolve) =>
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === "PREPARED" || state === "SYNCING") resolve();
    }),
  );
  client.startClient({ initialSyncLimit: 20 });
  await prepared;

  const { room_id: roomId } = await client.createRoom({
    preset: "private_chat",
    invite: [bob.user_id],
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
  });
  nio.send({ cmd: "join", room: roomId });
  const joined = await nio.waitFor("the join", (r) => r.event === "joined" && r.room === roomId);
  assert.equal(joined.encrypted, true, "nio sees the room as encrypted");
  await until("bob's join at alice", () => client.getRoom(roomId)?.getMember(bob.user_id)?.membership === "join");

  // js-sdk → nio.
  const toNio = "bonjour de matrix-js-sdk (vodozemac) 🔐";
  const { event_id: jsEvent } = await client.sendTextMessage(roomId, toNio);
  const got = await nio.waitFor("the message from js-sdk", (r) => (r.event === "message" || r.event === "undecryptable") && r.sender === alice.user_id);
  assert.equal(got.event, "message", `nio could not decrypt js-sdk's message: ${JSON.stringify(got)}`);
  assert.equal(got.body, toNio);
  assert.equal(got.encrypted, true, "nio got the message through Megolm");

  // nio → js-sdk.
  const toJs = "salut de matrix-nio (libolm) 🔑";
  nio.send({ cmd: "send", room: roomId, body: toJs });
  const sent = await nio.waitFor("nio's send", (r) => r.event === "sent");
  // A key that arrives after its message is a decryption failure at first,
  // retried when the key comes: wait for the clear event.
  let last = "not received";
  const ev = await until("js-sdk decrypting nio's message", () => {
    const e = client.getRoom(roomId)?.findEventById(sent.event_id);
    if (!e) return undefined;
    if (e.isBeingDecrypted() || e.getType() === "m.room.encrypted" || e.isDecryptionFailure()) {
      last = `decryption failure ${e.decryptionFailureReason ?? ""}`;
      return undefined;
    }
    return e;
  }).catch((err) => {
    throw new Error(`${err.message}: ${last}`);
  });
  assert.equal(ev.isEncrypted(), true);
  assert.equal(ev.getContent().body, toJs);
  assert.equal(ev.getSender(), bob.user_id);

  // The server only ever held ciphertext.
  const res = await fetch(`${api}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`, {
    headers: { Authorization: `Bearer ${alice.access_token}` },
  });
  const history = await res.json();
  const stored = history.chunk.filter((e) => e.event_id === jsEvent || e.event_id === sent.event_id);
  assert.equal(stored.length, 2, `both messages in /messages: ${JSON.stringify(history.chunk.map((e) => e.type))}`);
  for (const e of stored) {
    assert.equal(e.type, "m.room.encrypted");
    assert.ok(!JSON.stringify(e).includes("bonjour") && !JSON.stringify(e).includes("salut"), "no plaintext on the server");
  }
}
