// A MatrixRTC participant in its own process, for 3-matrixrtc.test.mjs:
// matrix-js-sdk's MatrixRTCSession joins the call in ROOM with a delayed
// leave, prints "joined", and stays until killed (a crashed client).
// Node 20 lacks Promise.withResolvers, which the SDK uses: node20.mjs
// defines it before the SDK loads (hence the dynamic import).
import "./node20.mjs";
const sdk = await import("matrix-js-sdk");
const { BASE, TOKEN, USER, DEVICE, ROOM, FOCUS } = process.env;
const client = sdk.createClient({ baseUrl: BASE, accessToken: TOKEN, userId: USER, deviceId: DEVICE });
client.startClient({ initialSyncLimit: 5 });
await new Promise((resolve) => client.once(sdk.ClientEvent.Sync, resolve));
const room = client.getRoom(ROOM);
if (!room) throw new Error("room not in sync");
const session = client.matrixRTC.getRoomSession(room);
session.joinRoomSession([{ type: "livekit", livekit_service_url: FOCUS, livekit_alias: ROOM }], undefined, {
  delayedLeaveEventDelayMs: 3000,
  delayedLeaveEventRestartMs: 1000,
  membershipEventExpiryMs: 3600000,
});
// Joined once our own membership is in the session.
for (let i = 0; i < 200; i++) {
  if (session.memberships.some((m) => m.sender === USER && m.deviceId === DEVICE)) break;
  await new Promise((r) => setTimeout(r, 100));
}
console.log(session.memberships.some((m) => m.sender === USER) ? "RTC-MEMBER-JOINED" : "RTC-MEMBER-NOT-JOINED");
setInterval(() => {}, 1000);
