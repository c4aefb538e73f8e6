// Test harness for the browser scenarios: a real `salon serve` on a fresh
// SQLite database, Debian's Chromium driven by playwright-core, a
// screenshot per scenario and a Playwright trace for each failing one.
//
// web/test.sh sets SALON_BIN (the salon binary) and SALON_WEB_PROXY (the
// devproxy binary, used only while salon does not serve the client itself).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const resultsDir = process.env.SALON_TEST_RESULTS ?? path.join(here, "..", "test-results");
mkdirSync(resultsDir, { recursive: true });

export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

// Flags from docs/reference toolchain.md: as root, with fake media, no
// network calls of Chromium's own (the machine's network is closed).
export const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required",
  "--allow-loopback-in-peer-connection",
];

// Servers still running when node exits (a crash, a forgotten stop) are
// killed with it, never left behind.
const live = new Set();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** Starts a process and resolves with the first http:// URL it prints. */
function startPrinting(cmd, args, name, { keepLog = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    child.on("exit", () => live.delete(child));
    let out = "";
    let err = "";
    // keepLog: every line of stderr, for scenarios that read the whole log.
    const log = [];
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} printed no URL within 20 s\nstdout: ${out}\nstderr: ${err}`));
    }, 20_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /(http:\/\/[0-9.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], stderr: () => err, log: () => log.join("") });
      }
    });
    child.stderr.on("data", (d) => {
      if (keepLog) log.push(String(d));
      err += d;
      if (err.length > 200_000) err = err.slice(-100_000);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * Starts salon on a fresh data directory. url serves the web client: salon
 * itself once cmd/salon mounts web.Handler(), else devproxy in front of it.
 */
export async function startStack({ config, keepLog = false } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "salon-web-test-"));
  let salon;
  if (process.env.SALON_TEST_HOMESERVER) {
    if (config) throw new Error("a configured salon cannot be replaced by SALON_TEST_HOMESERVER");
    // Another homeserver already running, to check the client against a
    // reference implementation; it gets devproxy in front.
    salon = { url: process.env.SALON_TEST_HOMESERVER.replace(/\/$/, ""), child: null, stderr: () => "" };
  } else {
    const bin = process.env.SALON_BIN;
    if (!bin) throw new Error("SALON_BIN is not set; run the scenarios through web/test.sh");
    const args = ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0"];
    // The TURN relay takes free ports, so scenarios (and a local coturn)
    // never collide on 3478, unless the scenario configures it itself.
    let yaml = config || "";
    if (!/^turn:/m.test(yaml)) {
      yaml += "\nturn:\n  listen_udp: 127.0.0.1:0\n  listen_tcp: 127.0.0.1:0\n  udp_sockets: 1\n";
    }
    // The metrics listener's fixed port would collide between two salons
    // of one scenario file (and with other salons on the machine).
    if (!/^metrics:/m.test(yaml)) {
      yaml += "\nmetrics:\n  listen: \"off\"\n";
    }
    if (!/^sfu:/m.test(yaml)) {
      yaml += `\nsfu:\n  udp_port: ${await freeUDPPort()}\n  tcp_port: -1\n`;
    }
    const file = path.join(dataDir, "salon.yaml");
    writeFileSync(file, yaml);
    args.push("--config", file);
    salon = await startPrinting(bin, args, "salon serve", { keepLog });
  }
  const stack = { api: salon.url, url: salon.url, children: salon.child ? [salon.child] : [], dataDir, salonStderr: salon.stderr, salonLog: salon.log };
  const home = await fetch(`${salon.url}/`).then(
    (r) => r.text(),
    () => "",
  );
  if (!home.includes("data-salon-web")) {
    const proxyBin = process.env.SALON_WEB_PROXY;
    if (!proxyBin) throw new Error("salon does not serve the web client and SALON_WEB_PROXY is not set");
    const proxy = await startPrinting(proxyBin, ["--listen", "127.0.0.1:0", "--upstream", salon.url], "devproxy");
    stack.url = proxy.url;
    stack.children.push(proxy.child);
    console.log(`# note: salon does not serve the web client at / yet; using web/internal/devproxy (${proxy.url})`);
  }
  stack.stop = async () => {
    for (const c of [...stack.children].reverse()) await stopChild(c);
    rmSync(dataDir, { recursive: true, force: true });
  };
  return stack;
}

/**
 * Whether the server lacks an endpoint: it answers 404 M_UNRECOGNIZED (the
 * answer of a route nobody serves). Any other answer, 401 for a missing
 * token included, means the endpoint exists. Under CI=true against Salon
 * itself it throws instead of answering true, so no scenario skips there.
 */
export async function lacks(api, method, urlPath) {
  const res = await fetch(`${api}${urlPath}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: method === "GET" ? undefined : "{}",
  });
  if (res.status !== 404) return false;
  const body = await res.json().catch(() => ({}));
  if (body.errcode !== "M_UNRECOGNIZED") return false;
  // The skip is for runs against another homeserver
  // (SALON_TEST_HOMESERVER); Salon serves every endpoint a scenario
  // needs, so under CI a missing one is a failure, never a skip.
  if (process.env.CI === "true" && !process.env.SALON_TEST_HOMESERVER) {
    throw new Error(`Salon answers ${method} ${urlPath} with 404 M_UNRECOGNIZED: an endpoint a scenario needs is gone`);
  }
  return true;
}

/**
 * A scenario file's server and browser, for its tests: before them, Salon
 * starts and, unless the server lacks one of `needs` ([method, path, name]
 * each; the file's tests then skip on `missing`), a browser; after them,
 * both stop. The returned object's fields are filled in by the hooks.
 */
export function stackAndBrowser(label, needs = []) {
  const env = { stack: null, browser: null, missing: null };
  before(async () => {
    env.stack = await startStack();
    for (const [method, p, name] of needs) {
      if (await lacks(env.stack.api, method, p)) {
        env.missing = name;
        console.log(`SKIPPED: server lacks ${name} (${label} runs once it answers)`);
        return;
      }
    }
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.stack?.stop();
  });
  return env;
}

/** The message tile of the timeline on `page` whose text has `text`. */
export function message(page, text) {
  return page.locator("li.event.message").filter({ has: page.locator(".event-content > .text", { hasText: text }) });
}

export function launchBrowser() {
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
}

/**
 * A browser context for one person, traced from the start. Page errors and
 * Content-Security-Policy violations are collected: a scenario fails on them.
 */
export async function newPerson(browser, name, { locale = "en-US", viewport = { width: 1280, height: 800 }, trace = true, mobile = false } = {}) {
  // mobile: a phone's browser (meta viewport honoured, touch), which zooms
  // out when the page is wider than the screen.
  const context = await browser.newContext({ locale, viewport, acceptDownloads: true, ...(mobile ? { isMobile: true, hasTouch: true } : {}) });
  if (trace) await context.tracing.start({ screenshots: true, snapshots: true, title: name });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content.Security.Policy|Refused to (load|connect|execute|apply)/i.test(m.text())) {
      problems.push(`CSP: ${m.text()}`);
    }
  });
  return { name, context, page, problems };
}

function fileSafe(s) {
  return s.replace(/[^a-zA-Z0-9._-]+/g, "-").replace(/^-|-$/g, "");
}

/**
 * Runs a scenario with its people: screenshots of every page at the end
 * under test-results/, and a trace per person when it failed.
 */
export async function scenario(title, people, fn) {
  const base = fileSafe(title);
  let failed = true;
  try {
    await fn();
    for (const p of people) {
      if (p.problems.length) throw new Error(`${p.name}: ${p.problems.join("\n")}`);
    }
    failed = false;
  } finally {
    for (const p of people) {
      const suffix = people.length > 1 ? `-${fileSafe(p.name)}` : "";
      await p.page.screenshot({ path: path.join(resultsDir, `${base}${suffix}.png`), fullPage: true }).catch(() => undefined);
      if (failed) {
        const trace = path.join(resultsDir, `${base}${suffix}-trace.zip`);
        await p.context.tracing.stop({ path: trace }).catch(() => undefined);
        console.log(`# trace kept: ${trace} (npx playwright-core show-trace ${trace})`);
      } else {
        await p.context.tracing.stop().catch(() => undefined);
      }
      await p.context.close().catch(() => undefined);
    }
  }
}

/** A user registered through the API (for scenarios about other things). */
export async function registerApi(api, username, password) {
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
  return data; // user_id, access_token, device_id
}

export async function api(base, token, method, urlPath, body) {
  const res = await fetch(`${base}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

/** Signs in through the login screen and waits for the signed-in layout. */
export async function loginUI(page, url, username, password) {
  await page.goto(url);
  await page.locator('input[name="username"]').fill(username);
  await page.locator('input[name="password"]').fill(password);
  await page.locator('form button[type="submit"]').click();
  await page.locator(".space-button.me").waitFor();
}

export function uniqueName(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
}

/**
 * Controls on the page that have no accessible name (a label, an
 * aria-label or text): each one is a button or field a screen reader
 * cannot announce. Returns short descriptions of the offenders.
 */
export function unlabelledControls(page) {
  return page.evaluate(() => {
    const named = (el) => {
      if (el.getAttribute("aria-label")?.trim()) return true;
      const by = el.getAttribute("aria-labelledby");
      if (by && by.split(/\s+/).some((id) => document.getElementById(id)?.textContent?.trim())) return true;
      if (el.labels && el.labels.length > 0 && [...el.labels].some((l) => l.textContent?.trim())) return true;
      if (el.tagName === "BUTTON" && el.textContent?.trim()) return true;
      return false;
    };
    return [...document.querySelectorAll("button, input, select, textarea, a[href]")]
      .filter((el) => !(el instanceof HTMLInputElement && el.type === "hidden"))
      .filter((el) => (el.tagName === "A" ? !el.textContent?.trim() && !el.getAttribute("aria-label") : !named(el)))
      .map((el) => el.outerHTML.slice(0, 120));
  });
}

/** A UDP port free right now on loopback (the SFU wants a fixed one). */
async function freeUDPPort() {
  const { createSocket } = await import("node:dgram");
  const sock = createSocket("udp4");
  await new Promise((resolve) => sock.bind(0, "127.0.0.1", resolve));
  const port = sock.address().port;
  await new Promise((resolve) => sock.close(resolve));
  return port;
}

/** Polls fn (async, in Node) until it returns a truthy value (not an object with ok: false), or fails with what it last saw. */
export async function until(what, fn, ms = 45_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last && (typeof last !== "object" || last.ok !== false)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)}`);
}
