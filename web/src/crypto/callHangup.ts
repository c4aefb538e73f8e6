// A 1:1 call's hang-up when the page goes away, in an encrypted room.
//
// src/calls/direct.ts hangs up on pagehide so the other side sees the call
// end at once. In an encrypted room the m.call.hangup must be encrypted
// first, and the Rust crypto's encryption waits on IndexedDB: the page is
// gone before the request starts. So once a call connects, its hang-up is
// encrypted ahead of time (the same content the SDK's MatrixCall sends),
// and on pagehide that ready ciphertext is sent with a keepalive request,
// which the browser completes after the page is gone.
import { EventType, MatrixEvent, type MatrixClient, type Room } from "matrix-js-sdk";
import type { MatrixCall } from "matrix-js-sdk/lib/webrtc/call";

interface Encrypting {
  encryptEvent(event: MatrixEvent, room: Room): Promise<void>;
}

const ready = new Map<string, { roomId: string; type: string; content: unknown }>();

/** Encrypts the call's hang-up now, to be sent by sendPreparedHangup. */
export async function prepareHangup(client: MatrixClient, call: MatrixCall): Promise<void> {
  const room = client.getRoom(call.roomId);
  if (!room?.hasEncryptionStateEvent() || ready.has(call.callId)) return;
  // The crypto backend's encryptEvent, as MatrixClient uses it to send.
  const backend = (client as unknown as { cryptoBackend?: Encrypting }).cryptoBackend;
  if (!backend) return;
  const ev = new MatrixEvent({
    type: EventType.CallHangup,
    room_id: room.roomId,
    sender: client.getUserId() ?? undefined,
    content: { reason: "user_hangup", version: "1", call_id: call.callId, party_id: call.ourPartyId },
  });
  try {
    await backend.encryptEvent(ev, room);
    ready.set(call.callId, { roomId: room.roomId, type: ev.getWireType(), content: ev.getWireContent() });
  } catch (err) {
    console.warn("salon: the call's hang-up could not be prepared", err);
  }
}

/**
 * Sends the call's prepared hang-up with keepalive (from pagehide);
 * whether there was one.
 */
export function sendPreparedHangup(client: MatrixClient, call: MatrixCall): boolean {
  const p = ready.get(call.callId);
  const token = client.getAccessToken();
  if (!p || !token) return false;
  ready.delete(call.callId);
  const txn = `salon-hangup-${call.callId}-${Date.now()}`;
  const url = `${client.getHomeserverUrl()}/_matrix/client/v3/rooms/${encodeURIComponent(p.roomId)}/send/${encodeURIComponent(p.type)}/${encodeURIComponent(txn)}`;
  void fetch(url, {
    method: "PUT",
    keepalive: true,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(p.content),
  }).catch(() => undefined);
  return true;
}

/** Drops what was prepared for an ended call. */
export function forgetHangup(call: MatrixCall): void {
  ready.delete(call.callId);
}
