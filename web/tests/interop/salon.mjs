// Shared by the real-client tests in this directory: a `salon serve` of
// its own, registration, the endpoint probe, waiting, a quiet SDK logger.
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

// matrix-js-sdk 43 wants Node 22 for Promise.withResolvers; Node 20 runs it
// with the polyfill in node20.mjs, defined before the SDK is imported.
import "../node20.mjs";

function freeUDPPort() {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.on("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts salon serve on a fresh data directory; resolves with its URL. */
export async function startSalon() {
  if (process.env.SALON_TEST_HOMESERVER) {
    return { url: process.env.SALON_TEST_HOMESERVER.replace(/\/$/, ""), stop: async () => {} };
  }
  const bin = process.env.SALON_BIN;
  if (!bin) throw new Error("SALON_BIN is not set; run web/tests/interop/run.sh");
  const dataDir = mkdtempSync(path.join(tmpdir(), "salon-nio-"));
  const config = path.join(dataDir, "salon.yaml");
  writeFileSync(
    config,
    "turn:\n  listen_udp: 127.0.0.1:0\n  listen_tcp: 127.0.0.1:0\n  udp_sockets: 1\n" +
      `sfu:\n  udp_port: ${await freeUDPPort()}\n  tcp_port: -1\n` +
      'metrics:\n  listen: "off"\n',
  );
  const child = spawn(bin, ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (d) => (err = (err + d).slice(-50_000)));
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`salon printed no URL in 20 s: ${out}${err}`)), 20_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /(http:\/\/[0-9.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`salon exited with ${code}: ${err}`)));
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
      child.once("exit", () => {
        clearTimeout(kill);
        rmSync(dataDir, { recursive: true, force: true });
        resolve();
      });
      child.kill("SIGTERM");
    });
  return { url, stop, stderr: () => err };
}

/** Whether the server serves no route at method+path (404 M_UNRECOGNIZED). */
export async function lacks(api, method, urlPath) {
  const res = await fetch(`${api}${urlPath}`, { method, headers: { "Content-Type": "application/json" }, body: method === "GET" ? undefined : "{}" });
  if (res.status !== 404) return false;
  const body = await res.json().catch(() => ({}));
  return body.errcode === "M_UNRECOGNIZED";
}

export async function register(api, username, password) {
  const body = { username, password, initial_device_display_name: "setup" };
  let res = await fetch(`${api}/_matrix/client/v3/register`, { method: "POST", body: JSON.stringify(body) });
  let data = await res.json();
  if (res.status === 401 && data.session) {
    res = await fetch(`${api}/_matrix/client/v3/register`, {
      method: "POST",
      body: JSON.stringify({ ...body, auth: { type: "m.login.dummy", session: data.session } }),
    });
    data = await res.json();
  }
  if (!res.ok) throw new Error(`register ${username}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

/** Polls cond every 100 ms until it returns a truthy value. */
export async function until(what, cond, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A logger for the SDK that keeps its chatter for a failure report. */
export function quietLogger(lines) {
  const keep = (level) => (...msg) => {
    lines.push(`${level} ${msg.map((m) => (m instanceof Error ? m.stack : typeof m === "string" ? m : JSON.stringify(m))).join(" ")}`);
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  const l = { trace: keep("trace"), debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error"), log: keep("log") };
  l.getChild = () => l;
  return l;
}


/**
 * Which of needs ([method, path] pairs) the server does not serve; a test
 * skips with their list rather than fail for a missing feature.
 */
export async function missingEndpoints(api, needs) {
  const missing = [];
  for (const [m, p] of needs) if (await lacks(api, m, p)) missing.push(`${m} ${p}`);
  return missing;
}
