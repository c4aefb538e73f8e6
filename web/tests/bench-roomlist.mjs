// Time from clicking "Sign in" to an interactive room list of 200 rooms
// (all 200 listed, and a click on one opens it), in Chromium against a
// fresh server. Run by web/bench.sh; the target is under 2 s.
import { api, lacks, launchBrowser, newPerson, registerApi, startStack, uniqueName } from "./harness.mjs";

const rooms = Number(process.env.BENCH_ROOMS ?? 200);
const runs = Number(process.env.BENCH_RUNS ?? 3);

async function main(stack) {
  for (const [method, p, what] of [
    ["GET", "/_matrix/client/v3/sync", "/sync"],
    ["POST", "/_matrix/client/v3/createRoom", "/createRoom"],
  ]) {
    if (await lacks(stack.api, method, p)) {
      console.log(`SKIPPED: server lacks ${what}; no room list to time`);
      return;
    }
  }
  const password = process.env.BENCH_PASSWORD ?? "correct horse battery staple";
  // BENCH_USER: an account that already has the rooms (on a server given
  // by SALON_TEST_HOMESERVER), to time again without the set-up.
  const reuse = process.env.BENCH_USER;
  const user = reuse ? { user_id: reuse } : await registerApi(stack.api, uniqueName("bench"), password);
  const t0 = Date.now();
  const queue = Array.from({ length: reuse ? 0 : rooms }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const { room_id } = await api(stack.api, user.access_token, "POST", "/_matrix/client/v3/createRoom", {
          name: `Room ${String(i + 1).padStart(3, "0")}`,
          // BENCH_PRESET=public_chat: unencrypted rooms, to compare.
          preset: process.env.BENCH_PRESET ?? "private_chat",
        });
        await api(stack.api, user.access_token, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(room_id)}/send/m.room.message/b${i}`, {
          msgtype: "m.text",
          body: `message in room ${i + 1}`,
        });
      }
    }),
  );
  if (!reuse) console.log(`set-up: ${rooms} rooms with a message each in ${Date.now() - t0} ms`);

  const browser = await launchBrowser();
  const times = [];
  for (let r = 0; r < runs; r++) {
    const person = await newPerson(browser, `bench-${r}`, { trace: false });
    const { page } = person;
    await page.goto(stack.url);
    await page.locator('input[name="username"]').fill(user.user_id);
    await page.locator('input[name="password"]').fill(password);
    // BENCH_PROFILE=1: a CPU profile of the first run, its heaviest
    // functions printed (self time), and the requests made by path.
    const cdp = process.env.BENCH_PROFILE === "1" && r === 0 ? await person.context.newCDPSession(page) : null;
    if (cdp) {
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
      await cdp.send("Profiler.start");
    }
    const start = Date.now();
    const clickAt = await page.evaluate(() => performance.now());
    await page.locator('form button[type="submit"]').click();
    const listedAt = await (
      await page.waitForFunction(
        (n) => document.querySelectorAll(".room-list .room-button[data-room-id]").length >= n && performance.now(),
        rooms,
        { timeout: 60_000, polling: 20 },
      )
    ).jsonValue();
    const listed = Date.now() - start;
    await page.locator(".room-list .room-button[data-room-id]").first().click();
    await page.locator("#room-title").waitFor();
    const opened = Date.now() - start;
    // Where the time went, on the page's clock: the requests before the
    // first /sync, the server's answer to it, and the client's work after.
    const split = await page.evaluate(() => {
      const rs = performance.getEntriesByType("resource").filter((e) => e.name.includes("/_matrix/client/v3/sync"));
      const first = rs[0];
      return first ? { syncStart: first.startTime, syncEnd: first.responseEnd, bytes: first.encodedBodySize } : null;
    });
    if (cdp) {
      const { profile } = await cdp.send("Profiler.stop");
      printProfile(profile);
      const paths = await page.evaluate(() => {
        const out = {};
        for (const e of performance.getEntriesByType("resource")) {
          const u = new URL(e.name);
          const k = u.pathname.replace(/![^/]+/g, "!room").replace(/\$[^/]+/g, "$event").replace(/@[^/]+/g, "@user");
          out[k] = (out[k] ?? 0) + 1;
        }
        return out;
      });
      console.log("requests by path:", JSON.stringify(paths));
    }
    const marks = await page.evaluate((t0) => performance.getEntriesByType("mark").filter((m) => m.name.startsWith("salon:")).map((m) => `${m.name.slice(6)} +${Math.round(m.startTime - t0)} ms`), clickAt);
    if (marks.length) console.log(`  marks after the click: ${marks.join(", ")}`);
    const t = { listed, opened };
    if (split) {
      t.before = Math.round(split.syncStart - clickAt);
      t.sync = Math.round(split.syncEnd - split.syncStart);
      t.after = Math.round(listedAt - split.syncEnd);
    }
    times.push(t);
    console.log(
      `run ${r + 1}: ${rooms} rooms listed after ${listed} ms, first room open after ${opened} ms` +
        (split ? ` (sign-in and set-up ${t.before} ms, initial /sync ${t.sync} ms for ${Math.round(split.bytes / 1024)} KiB, client ${t.after} ms)` : ""),
    );
    await person.context.close();
  }
  await browser.close();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `roomlist: ${rooms} rooms interactive in ${median(times.map((t) => t.opened))} ms (median of ${runs}; listed in ${median(times.map((t) => t.listed))} ms; ` +
      `client work after the initial /sync ${median(times.map((t) => t.after ?? 0))} ms; target under 2000 ms)`,
  );
}

/** The profile's 30 heaviest functions by self time, with their file. */
function printProfile(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const n = byId.get(profile.samples[i]);
    const f = n.callFrame;
    const key = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`profile: ${Math.round(total / 1000)} ms sampled`);
  const byFile = new Map();
  for (const [k, us] of self) {
    const file = k.split(" ").pop().replace(/-[A-Za-z0-9_]{8}\.(js|wasm):.*$/, ".$1").replace(/:-?\d+$/, "") || "(native)";
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  console.log(`  by file: ${[...byFile.entries()].sort((a, b) => b[1] - a[1]).map(([f, us]) => `${f} ${Math.round(us / 1000)} ms`).join(", ")}`);
  for (const [k, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`  ${String(Math.round(us / 1000)).padStart(6)} ms  ${k}`);
  }
}

// Setting up 200 rooms sends faster than a person: lift the message limit.
const stack = await startStack({ config: "rate_limits:\n  messages_per_user: {per_second: 1000, burst: 10000}\n" });
try {
  await main(stack);
} finally {
  await stack.stop();
}
