// What Salon's SFU forwards, seen from outside it: web/internal/sfuprobe
// (built by web/test.sh, SALON_SFU_PROBE) joins a call as a plain
// LiveKit-protocol subscriber with a token of its own from the MatrixRTC
// JWT service, and no media key; it records the VP8 frames the SFU sends
// it, then checks them with the keys the test hands it afterwards (none,
// or the members' media keys) and reports per track.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { api } from "./harness.mjs";

/**
 * A LiveKit token for `user` (user_id, access_token, device_id) in the call
 * of `room`, through the homeserver's MSC4143 transport and get_token, as
 * a client gets one.
 */
export async function callToken(base, user, room) {
  const { rtc_transports: transports } = await api(base, user.access_token, "GET", "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports");
  const service = transports.find((t) => t.type === "livekit").livekit_service_url.replace(/\/$/, "");
  const openid = await api(base, user.access_token, "POST", `/_matrix/client/v3/user/${encodeURIComponent(user.user_id)}/openid/request_token`, {});
  const res = await fetch(`${service}/get_token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      room_id: room,
      slot_id: "m.call#ROOM",
      openid_token: openid,
      member: { id: `${user.user_id}:${user.device_id}`, claimed_user_id: user.user_id, claimed_device_id: user.device_id },
    }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`get_token: ${res.status} ${JSON.stringify(body)}`);
  return body; // url, jwt
}

/**
 * Records `seconds` of the call; resolves once the recording is over with
 * `check(keys)`, which hands the probe the keys to try (each
 * {index, key: base64}) and resolves with its report ({tracks: [...]}).
 */
export async function probeCall({ url, jwt }, seconds) {
  const bin = process.env.SALON_SFU_PROBE;
  if (!bin) throw new Error("SALON_SFU_PROBE is not set; run the scenarios through web/test.sh");
  const child = spawn(bin, ["--url", url, "--token", jwt, "--seconds", String(seconds)], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`sfuprobe exited (${await exited}): ${err}`);
    return JSON.parse(value);
  };
  const recorded = await next();
  return {
    recorded: recorded.recorded,
    async check(keys) {
      child.stdin.end(JSON.stringify({ keys }) + "\n");
      const report = await next();
      const code = await exited;
      if (code !== 0) throw new Error(`sfuprobe exited with ${code}: ${err}`);
      return report;
    },
  };
}

/** The media keys a page's call holds (its own and the others'), base64. */
export function pageMediaKeys(page) {
  return page.evaluate(() => {
    // The MatrixRTC session re-emits every key it tracks, synchronously.
    const session = window.salonCall?.session;
    if (!session) return [];
    const keys = [];
    const take = (key, index) => keys.push({ index, key: btoa(String.fromCharCode(...key)) });
    session.on("encryption_key_changed", take);
    try {
      session.reemitEncryptionKeys();
    } finally {
      session.off("encryption_key_changed", take);
    }
    return keys;
  });
}
