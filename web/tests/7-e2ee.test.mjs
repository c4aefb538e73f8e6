// End-to-end encryption with a real client doing real cryptography:
// matrix-js-sdk 43 with its Rust crypto (vodozemac) in Node, against a
// real `salon serve` on each storage backend. The clients run in a child
// process (e2ee-clients.mjs), which prints E2EE-OK when Alice and Bob
// read each other's encrypted messages in a private room and a DM, Bob's
// later second device reads new ones, and his deleted device gets no more
// room keys; and (e2ee-dehydrated.mjs) a dehydrated device lets Bob read
// a message sent while he had no device.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startStack } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const pgBase = process.env.SALON_TEST_POSTGRES || "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

// PostgreSQL in a fresh schema; unreachable, it skips, except under
// CI=true where it fails (as 3-matrixrtc.test.mjs).
function postgresConfig(t) {
  const schema = `salon_e2ee_${process.pid}_${Date.now()}`;
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
  test(`end-to-end encryption with matrix-js-sdk's Rust crypto (${backend})`, async (t) => {
    const opts = backend === "postgres" ? postgresConfig(t) : {};
    if (opts === null) return;
    // Private rooms and DMs start encrypted (the server's choice, not the
    // client's: e2ee-clients.mjs checks it).
    opts.config = (opts.config || "") + "encryption:\n  default: private\n";
    const stack = await startStack(opts);
    try {
      await runClients(stack, "e2ee-clients.mjs", /E2EE-OK/);
      await runClients(stack, "e2ee-dehydrated.mjs", /DEHYDRATED-OK/);
    } finally {
      await stack.stop();
    }
  });

// runClients runs one client script against the stack and expects its
// success line.
async function runClients(stack, script, ok) {
  const child = spawn(process.execPath, [path.join(here, script)], {
    env: { ...process.env, BASE: stack.api },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const code = await new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      process.stdout.write(`# ${d}`);
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`clients did not finish in 240 s: ${out}`));
    }, 240_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  assert.equal(code, 0, out);
  assert.match(out, ok);
}
