// Scenario 22 (Node, no browser, no server): the decisions of
// src/calls/keyRedelivery.ts, which sends our media key again to the
// member devices of an encrypted call that matrix-js-sdk's one send
// skipped because the crypto did not know them yet (scenario 18's flake
// under load). The module is compiled from the TypeScript source with
// Vite's transformer and loaded alone.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { transformWithOxc } from "vite";

const src = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src", "calls", "keyRedelivery.ts");
const { code } = await transformWithOxc(await readFile(src, "utf8"), src, { lang: "ts" });
const { KeyRedelivery } = await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);

const me = { userId: "@alice:s", deviceId: "A" };
const bob = { userId: "@bob:s", deviceId: "B", membershipTs: 100 };
const carol = { userId: "@carol:s", deviceId: "C", membershipTs: 200 };
const members = [{ ...me, membershipTs: 50 }, bob, carol];
const names = (r) => r.targets.map((m) => m.deviceId).sort();

test("scenario 22: nothing is due before we have a key", () => {
  const r = new KeyRedelivery(me);
  assert.deepEqual(r.due(members, () => true), { targets: [], unknown: [] });
});

test("scenario 22: a device unknown at the first send gets the key once it is known, and once only", () => {
  const r = new KeyRedelivery(me);
  r.setKey({ index: 0, key: new Uint8Array(16) });
  const knownNow = new Set(["B"]);
  let d = r.due(members, (_u, dev) => knownNow.has(dev));
  assert.deepEqual(names(d), ["B"], "only known devices are sent to; never our own");
  assert.deepEqual(d.unknown, ["@carol:s"], "Carol's device list is to be fetched");
  r.sent(d.targets, 0);
  // Carol's device list arrives.
  knownNow.add("C");
  d = r.due(members, (_u, dev) => knownNow.has(dev));
  assert.deepEqual(names(d), ["C"]);
  r.sent(d.targets, 0);
  d = r.due(members, () => true);
  assert.deepEqual(d, { targets: [], unknown: [] }, "each device gets each key once");
});

test("scenario 22: a new key is due to everyone again", () => {
  const r = new KeyRedelivery(me);
  r.setKey({ index: 0, key: new Uint8Array(16) });
  r.sent(r.due(members, () => true).targets, 0);
  r.setKey({ index: 1, key: new Uint8Array(16).fill(1) });
  assert.deepEqual(names(r.due(members, () => true)), ["B", "C"]);
});

test("scenario 22: a member who re-joins (a new membership) is sent the key again; one who left is forgotten", () => {
  const r = new KeyRedelivery(me);
  r.setKey({ index: 3, key: new Uint8Array(16) });
  r.sent(r.due(members, () => true).targets, 3);
  const rejoined = { ...bob, membershipTs: 900 };
  assert.deepEqual(names(r.due([members[0], rejoined, carol], () => true)), ["B"]);
  // Bob's old membership is gone from the record: were it to come back
  // (it cannot), it would be sent again rather than wrongly skipped.
  assert.deepEqual(names(r.due(members, () => true)), ["B"]);
});

test("scenario 22: a member listed twice is sent once", () => {
  const r = new KeyRedelivery(me);
  r.setKey({ index: 0, key: new Uint8Array(16) });
  assert.deepEqual(names(r.due([bob, bob], () => true)), ["B"]);
});

test("scenario 22: an old key of ours re-emitted is not taken for the current one", () => {
  const r = new KeyRedelivery(me);
  const k0 = { index: 0, key: new Uint8Array(16).fill(1) };
  const k1 = { index: 1, key: new Uint8Array(16).fill(2) };
  assert.equal(r.setKey(k0), true);
  assert.equal(r.setKey(k1), true);
  r.sent(r.due(members, () => true).targets, 1);
  // reemitEncryptionKeys hands every key again, oldest first.
  assert.equal(r.setKey(k0), false);
  assert.equal(r.setKey(k1), false);
  assert.equal(r.key.index, 1);
  assert.deepEqual(r.due(members, () => true).targets, [], "nothing sent again");
});

test("scenario 22: after joining again, index 0 with other bytes is a new key, due to everyone", () => {
  const r = new KeyRedelivery(me);
  r.setKey({ index: 0, key: new Uint8Array(16).fill(1) });
  r.sent(r.due(members, () => true).targets, 0);
  r.reset();
  assert.deepEqual(r.due(members, () => true).targets, [], "no key until the new session's first");
  assert.equal(r.setKey({ index: 0, key: new Uint8Array(16).fill(9) }), true);
  const d = r.due(members, () => true);
  assert.deepEqual(names(d), ["B", "C"]);
  assert.equal(r.key.key[0], 9, "the new session's key, not the old one of the same index");
});
