// Time to decrypt and show the last 50 messages of an encrypted room on
// opening it. Alice's client writes 50 messages in an encrypted room, then
// the page is reloaded (same session: its keys are in IndexedDB, the
// events are not: the client keeps no sync cache); after the first sync,
// a click on the room starts the clock, which stops when all 50 show as
// text (none left "Decrypting…"). The window is tall enough for 50
// messages, so the timeline pages back until they are all on screen.
// Run by web/bench.sh.
import { api, launchBrowser, loginUI, newPerson, registerApi, startStack, uniqueName, until } from "./harness.mjs";

const count = Number(process.env.BENCH_MESSAGES ?? 50);
const runs = Number(process.env.BENCH_RUNS ?? 3);

async function main(stack) {
  const password = "correct horse battery staple";
  const a = await registerApi(stack.api, uniqueName("bench"), password);
  const browser = await launchBrowser();
  const person = await newPerson(browser, "bench-decrypt", { trace: false, viewport: { width: 1280, height: 4200 } });
  const { page } = person;
  await loginUI(page, stack.url, a.user_id, password);
  const panel = page.getByRole("region", { name: "Your recovery key" });
  await panel.waitFor({ timeout: 60_000 });
  await panel.getByRole("button", { name: "I have saved it" }).click();
  const { room_id: room } = await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", {
    name: "Bench room",
    preset: "private_chat",
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
  });
  // A second, plain room to sit in while the clock is not running.
  await api(stack.api, a.access_token, "POST", "/_matrix/client/v3/createRoom", { name: "Lobby", preset: "public_chat" });
  await page.locator(".room-button", { hasText: "Bench room" }).waitFor({ timeout: 30_000 });
  await page.evaluate((id) => (window.location.hash = `#/room/${encodeURIComponent(id)}`), room);
  const input = page.getByLabel("Message", { exact: true });
  const t0 = Date.now();
  for (let i = 1; i <= count; i++) {
    await input.fill(`bench message ${i}`);
    await input.press("Enter");
  }
  await until(
    "every message sent",
    async () => (await page.locator("li.event.message .status").count()) === 0 && (await page.locator("li.event.message").count()) >= count,
    120_000,
  );
  console.log(`set-up: ${count} encrypted messages sent in ${Date.now() - t0} ms`);
  const encrypted = await api(stack.api, a.access_token, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/messages?dir=b&limit=5`);
  if (!encrypted.chunk.some((e) => e.type === "m.room.encrypted")) throw new Error("the messages are not encrypted");

  const times = [];
  for (let r = 0; r < runs; r++) {
    await page.evaluate(() => (window.location.hash = ""));
    await page.reload();
    await page.locator(".room-button", { hasText: "Lobby" }).click({ timeout: 60_000 });
    await page.locator("#room-title", { hasText: "Lobby" }).waitFor();
    const start = Date.now();
    await page.locator(".room-button", { hasText: "Bench room" }).click();
    await page.waitForFunction(
      (n) => {
        const texts = new Set([...document.querySelectorAll("li.event.message .event-content > .text")].map((e) => e.textContent));
        for (let i = 1; i <= n; i++) if (!texts.has(`bench message ${i}`)) return false;
        return document.querySelectorAll(".e2e-undecryptable").length === 0;
      },
      count,
      { timeout: 60_000, polling: 10 },
    );
    const ms = Date.now() - start;
    times.push(ms);
    console.log(`run ${r + 1}: last ${count} messages decrypted and shown ${ms} ms after the click`);
  }
  await person.context.close();
  await browser.close();
  const median = [...times].sort((x, y) => x - y)[Math.floor(times.length / 2)];
  console.log(`decrypt: last ${count} messages of an encrypted room shown in ${median} ms (median of ${runs})`);
}

const stack = await startStack({ config: "rate_limits:\n  messages_per_user: {per_second: 1000, burst: 10000}\n" });
try {
  await main(stack);
} finally {
  await stack.stop();
}
