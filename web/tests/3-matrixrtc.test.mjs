// MatrixRTC with matrix-js-sdk in Node: a MatrixRTCSession joins a call in a
// room with a delayed leave (MSC4140); a second client sees its membership;
// killing the first process removes it within the delay, because Salon
// sends the delayed leave when the heartbeats stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { api, registerApi, startStack, uniqueName } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

async function memberships(base, token, room) {
  const state = await api(base, token, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state`);
  return state.filter((e) => e.type === "org.matrix.msc3401.call.member" && e.content && e.content.application);
}

// Both storage backends, like the Go tests: PostgreSQL in a fresh schema
// of SALON_TEST_POSTGRES (default the local test database); unreachable, it
// skips, except under CI=true where it fails.
const pgBase = process.env.SALON_TEST_POSTGRES || "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

function postgresConfig(t) {
  const schema = `salon_web_${process.pid}_${Date.now()}`;
  try {
    execFileSync("psql", [pgBase, "-qc", `CREATE SCHEMA ${schema}`], { stdio: "pipe" });
  } catch (err) {
    if (process.env.CI === "true") throw new Error(`PostgreSQL unreachable under CI=true: ${err}`);
    t.skip(`PostgreSQL unreachable (${pgBase})`);
    return null;
  }
  t.after(() => execFileSync("psql", [pgBase, "-qc", `DROP SCHEMA ${schema} CASCADE`], { stdio: "pipe" }));
  const sep = pgBase.includes("?") ? "&" : "?";
  return { config: `database: "${pgBase}${sep}search_path=${schema}"\n` };
}

for (const backend of ["sqlite", "postgres"])
test(`MatrixRTC session (${backend}): membership with a delayed leave, removed when the client dies`, async (t) => {
  const opts = backend === "postgres" ? postgresConfig(t) : {};
  if (opts === null) return;
  const stack = await startStack(opts);
  try {
    const a = await registerApi(stack.api, uniqueName("rtca"), "password alice");
    const b = await registerApi(stack.api, uniqueName("rtcb"), "password bob");
    const { room_id: room } = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", { preset: "public_chat" });
    await api(stack.api, b.access_token, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, {});
    const wk = await fetch(`${stack.api}/.well-known/matrix/client`).then((r) => r.json());
    const focus = wk["org.matrix.msc4143.rtc_foci"][0].livekit_service_url;

    const child = spawn(process.execPath, [path.join(here, "rtc-member.mjs")], {
      env: { ...process.env, BASE: stack.api, TOKEN: a.access_token, USER: a.user_id, DEVICE: a.device_id, ROOM: room, FOCUS: focus },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const joined = await new Promise((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        const m = out.match(/RTC-MEMBER-(NOT-)?JOINED/);
        if (m) resolve(m[0]);
      });
      child.on("exit", (code) => reject(new Error(`participant exited ${code}: ${out}`)));
      setTimeout(() => reject(new Error("participant did not join in 30 s")), 30000);
    });
    assert.equal(joined, "RTC-MEMBER-JOINED");

    // Bob sees Alice in the call, and her client scheduled its leave.
    const seen = await memberships(stack.api, b.access_token, room);
    assert.equal(seen.length, 1, "one device in the call");
    assert.equal(seen[0].sender, a.user_id);
    const delayed = await api(stack.api, a.access_token, "GET", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events");
    assert.ok(delayed.delayed_events.some((d) => d.room_id === room && d.type === "org.matrix.msc3401.call.member"), "a delayed leave is scheduled");

    // The heartbeats keep the membership while the client lives...
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal((await memberships(stack.api, b.access_token, room)).length, 1, "still in the call while heartbeating");
    // ...and a crash removes it within the delay.
    child.kill("SIGKILL");
    const killed = Date.now();
    let left = false;
    while (Date.now() - killed < 10000) {
      if ((await memberships(stack.api, b.access_token, room)).length === 0) { left = true; break; }
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(left, "membership removed after the client died");
    console.log(`# delayed leave took effect ${Date.now() - killed} ms after the kill (delay 3000 ms)`);
  } finally {
    await stack.stop();
  }
});
