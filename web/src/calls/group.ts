// A group call in a room: MatrixRTC for who is in the call (the
// membership state event, with a delayed leave as Element Call schedules
// it), the MatrixRTC JWT service for a LiveKit token, and livekit-client
// for the media through Salon's SFU. This module is loaded on demand (the
// first time a call view opens), so livekit-client stays out of the
// bundle people download to read their messages.
//
// In an end-to-end encrypted room the call's media is encrypted too, as
// Element Call does it: each member's client makes a media key and
// matrix-js-sdk's MatrixRTC session sends it to the call's other members
// in Olm-encrypted to-device messages (io.element.call.encryption_keys),
// making a new one when someone leaves; livekit-client's E2EE encrypts
// every frame in a worker (insertable streams) with the sender's key, so
// the SFU forwards frames it cannot read. The SDK sends each key once and
// skips devices its crypto does not know yet; KeyRedelivery sends our
// current key again to each member device once it is known.
import { ClientEvent, EventType, Method, type MatrixClient, type Room } from "matrix-js-sdk";
import { encodeBase64 } from "matrix-js-sdk/lib/base64";
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api";
import { MatrixRTCSessionEvent, type MatrixRTCSession, type Transport } from "matrix-js-sdk/lib/matrixrtc";
import E2EEWorker from "livekit-client/e2ee-worker?worker";
import {
  BaseKeyProvider,
  createKeyMaterialFromBuffer,
  ConnectionState,
  DisconnectReason,
  type LocalParticipant,
  type Participant,
  ParticipantEvent,
  Room as LiveKitRoom,
  RoomEvent,
  Track,
  VideoPresets,
} from "livekit-client";
import { currentCall, type OngoingCall } from "./current";
import { KeyRedelivery, type MemberDevice } from "./keyRedelivery";

/** The MatrixRTC slot of a room's one call; its LiveKit room follows from it. */
export const CallSlotId = "m.call#ROOM";

export type CallPhase = "idle" | "connecting" | "connected" | "failed";

/** Why joining failed, for the message the call view shows. */
export type CallFailure = "noFocus" | "token" | "sfu" | "other";

export class CallJoinError extends Error {
  constructor(
    readonly kind: CallFailure,
    message: string,
  ) {
    super(message);
  }
}

/** LiveKit's TrackSource numbers, as the grant's canPublishSources carries them. */
const sourceNumber: Partial<Record<Track.Source, number>> = {
  [Track.Source.Camera]: 1,
  [Track.Source.Microphone]: 2,
  [Track.Source.ScreenShare]: 3,
  [Track.Source.ScreenShareAudio]: 4,
};

interface LivekitTransport extends Transport {
  type: "livekit";
  livekit_service_url: string;
}

function isLivekit(t: unknown): t is LivekitTransport {
  const o = t as { type?: unknown; livekit_service_url?: unknown } | null;
  return !!o && o.type === "livekit" && typeof o.livekit_service_url === "string" && o.livekit_service_url !== "";
}

/**
 * The LiveKit JWT service of this homeserver: the MSC4143 transports
 * endpoint, else the org.matrix.msc4143.rtc_foci of .well-known.
 */
export async function livekitServiceUrl(client: MatrixClient): Promise<string> {
  try {
    const res = await client.http.authedRequest<{ rtc_transports?: unknown[] }>(Method.Get, "/rtc/transports", undefined, undefined, {
      prefix: "/_matrix/client/unstable/org.matrix.msc4143",
    });
    const t = res.rtc_transports?.find(isLivekit);
    if (t) return t.livekit_service_url;
  } catch {
    // Not served: try .well-known.
  }
  try {
    const wk = await fetch(new URL("/.well-known/matrix/client", client.baseUrl)).then((r) => r.json());
    const t = (wk?.["org.matrix.msc4143.rtc_foci"] as unknown[] | undefined)?.find(isLivekit);
    if (t) return t.livekit_service_url;
  } catch {
    // Nothing there either.
  }
  throw new CallJoinError("noFocus", "this homeserver advertises no LiveKit call service");
}

/** Trades an OpenID token for a LiveKit URL and access token (POST get_token). */
async function liveKitToken(client: MatrixClient, serviceUrl: string, roomId: string): Promise<{ url: string; jwt: string }> {
  const userId = client.getSafeUserId();
  const deviceId = client.getDeviceId() ?? "";
  const openid = await client.getOpenIdToken();
  let res: Response;
  try {
    res = await fetch(`${serviceUrl.replace(/\/$/, "")}/get_token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        room_id: roomId,
        slot_id: CallSlotId,
        openid_token: openid,
        member: { id: `${userId}:${deviceId}`, claimed_user_id: userId, claimed_device_id: deviceId },
      }),
    });
  } catch (err) {
    throw new CallJoinError("token", String(err));
  }
  const body = (await res.json().catch(() => ({}))) as { url?: string; jwt?: string; error?: string; errcode?: string };
  if (!res.ok || !body.url || !body.jwt) throw new CallJoinError("token", body.error || body.errcode || `HTTP ${res.status}`);
  return { url: body.url, jwt: body.jwt };
}

/**
 * The call's media keys for livekit-client, as the MatrixRTC session
 * hands them out: one per member (their LiveKit identity) and key index.
 */
class MatrixKeyProvider extends BaseKeyProvider {
  constructor() {
    super({ ratchetWindowSize: 10, keyringSize: 256 });
  }

  async setKey(key: Uint8Array<ArrayBuffer>, index: number, identity: string): Promise<void> {
    this.onSetEncryptionKey(await createKeyMaterialFromBuffer(key.buffer.slice(key.byteOffset, key.byteOffset + key.byteLength)), identity, index);
  }
}

/** The LiveKit identity get_token gives a member: unpadded base64 of SHA-256 of the JSON array [user, device, member ID]. */
async function hashedIdentity(userId: string, deviceId: string, memberId: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify([userId, deviceId, memberId]))));
  let s = "";
  for (const b of digest) s += String.fromCharCode(b);
  return btoa(s).replace(/=+$/, "");
}

export interface JoinOptions {
  audio: boolean;
  video: boolean;
}

/**
 * One call the person is in (at most one at a time). Views subscribe with
 * onChange and read the state; everything that changes it emits.
 */
export class GroupCall implements OngoingCall {
  readonly lk: LiveKitRoom;
  phase: CallPhase = "idle";
  failure: CallJoinError | null = null;
  /** A publish the SFU or the grant refused (shown until the next attempt). */
  refused: Track.Source | null = null;
  /** A device or browser failure of the last publish (no camera, denied access…). */
  mediaError: string | null = null;
  private readonly listeners = new Set<() => void>();
  private readonly session: MatrixRTCSession;
  private left = false;
  /** Whether the call's media is end-to-end encrypted (the room is). */
  readonly encrypted: boolean;
  private readonly keys: MatrixKeyProvider | null;
  /** The frame encryption worker (encrypted rooms only), ended with the call. */
  private readonly worker: Worker | null;
  /** Frames that failed to decrypt (no key for them yet, or a wrong one). */
  decryptionErrors = 0;
  /** The index of each member's latest media key ("user:device"), for tests and debugging. */
  readonly keyIndexes = new Map<string, number>();
  /** Our media key sent again to member devices the SDK's one send missed (encrypted rooms only). */
  private readonly redelivery: KeyRedelivery | null;
  /** Our membership's member ID, as our key messages name it. */
  private ownMemberId = "";
  private redeliveryRunning = false;
  private redeliveryAgain = false;
  private redeliveryTimer: ReturnType<typeof setInterval> | null = null;
  /** Key messages this client sent beyond the SDK's own (tests and debugging). */
  keyRedeliveries = 0;

  constructor(
    readonly client: MatrixClient,
    readonly room: Room,
  ) {
    this.session = client.matrixRTC.getRoomSession(room);
    this.encrypted = room.hasEncryptionStateEvent();
    this.keys = this.encrypted ? new MatrixKeyProvider() : null;
    this.redelivery = this.encrypted ? new KeyRedelivery({ userId: client.getSafeUserId(), deviceId: client.getDeviceId() ?? "" }) : null;
    this.worker = this.encrypted ? new E2EEWorker() : null;
    this.lk = new LiveKitRoom({
      adaptiveStream: true,
      dynacast: true,
      videoCaptureDefaults: { resolution: VideoPresets.h360.resolution },
      publishDefaults: { simulcast: true, videoSimulcastLayers: [VideoPresets.h180] },
      ...(this.keys && this.worker ? { encryption: { keyProvider: this.keys, worker: this.worker } } : {}),
    });
    if (this.keys) {
      this.session.on(MatrixRTCSessionEvent.EncryptionKeyChanged, this.onKey);
      this.lk.on(RoomEvent.EncryptionError, () => {
        this.decryptionErrors++;
      });
    }
    const emit = () => this.emit();
    for (const ev of [
      RoomEvent.ParticipantConnected,
      RoomEvent.ParticipantDisconnected,
      RoomEvent.TrackSubscribed,
      RoomEvent.TrackUnsubscribed,
      RoomEvent.TrackPublished,
      RoomEvent.TrackUnpublished,
      RoomEvent.TrackMuted,
      RoomEvent.TrackUnmuted,
      RoomEvent.LocalTrackPublished,
      RoomEvent.LocalTrackUnpublished,
      RoomEvent.ActiveSpeakersChanged,
      RoomEvent.ParticipantPermissionsChanged,
      RoomEvent.ConnectionStateChanged,
      RoomEvent.MediaDevicesChanged,
      RoomEvent.ActiveDeviceChanged,
      RoomEvent.ParticipantNameChanged,
      RoomEvent.Reconnecting,
      RoomEvent.Reconnected,
    ] as const) {
      this.lk.on(ev, emit);
    }
    // The grant can change while in the call (teaching mode, power
    // levels): the buttons follow the local participant's permissions.
    this.lk.localParticipant.on(ParticipantEvent.ParticipantPermissionsChanged, emit);
    this.lk.on(RoomEvent.Disconnected, (reason?: DisconnectReason) => {
      if (this.left) return;
      this.stopRedelivery();
      // Removed by the server (no longer in the room, kicked) or the SFU went away.
      this.phase = "failed";
      this.failure = new CallJoinError("sfu", `disconnected (${reason ?? "unknown"})`);
      void this.session.leaveRoomSession(2000).catch(() => undefined);
      this.emit();
    });
    this.session.on(MatrixRTCSessionEvent.MembershipsChanged, emit);
    if (this.redelivery) {
      this.session.on(MatrixRTCSessionEvent.MembershipsChanged, this.redeliver);
      client.on(CryptoEvent.DevicesUpdated, this.redeliver);
    }
    client.on(ClientEvent.Event, this.onRoomChange);
    window.addEventListener("pagehide", this.onPageHide);
  }

  // A member's key, under each LiveKit identity their media may come
  // from: the SDK names the legacy membership's "user:device" (what
  // lk-jwt-service's /sfu/get gives, as Element Call asks), while a client
  // that asks get_token, as this one does, is named by the hash of user,
  // device and member ID (signaling.LiveKitIdentity).
  private readonly onKey = (key: Uint8Array<ArrayBuffer>, index: number, member: { userId: string; deviceId: string; memberId?: string }, identity: string) => {
    this.keyIndexes.set(`${member.userId}:${member.deviceId}`, index);
    if (this.redelivery && member.userId === this.client.getUserId() && member.deviceId === this.client.getDeviceId()) {
      // Our own key (the SDK emits it once it encrypts with it).
      if (member.memberId) this.ownMemberId = member.memberId;
      if (this.redelivery.setKey({ index, key })) this.redeliver();
    }
    void (async () => {
      const names = new Set([identity]);
      for (const memberId of new Set([member.memberId, `${member.userId}:${member.deviceId}`])) {
        if (memberId) names.add(await hashedIdentity(member.userId, member.deviceId, memberId));
      }
      for (const name of names) await this.keys?.setKey(key, index, name);
    })().catch((err: unknown) => console.warn("call: a media key could not be used", err));
  };

  // Sends our current key to the member devices due it (KeyRedelivery);
  // runs one at a time, and once more when asked meanwhile.
  private readonly redeliver = () => {
    if (!this.redelivery || this.left || !this.session.isJoined()) return;
    if (this.redeliveryRunning) {
      this.redeliveryAgain = true;
      return;
    }
    this.redeliveryRunning = true;
    void this.redeliverOnce()
      .catch((err: unknown) => console.warn("call: sending our media key again failed", err))
      .finally(() => {
        this.redeliveryRunning = false;
        if (this.redeliveryAgain) {
          this.redeliveryAgain = false;
          this.redeliver();
        }
      });
  };

  private async redeliverOnce(): Promise<void> {
    const r = this.redelivery;
    const crypto = this.client.getCrypto();
    const key = r?.key;
    if (!r || !crypto || !key) return;
    const members: MemberDevice[] = this.session.memberships
      .filter((m) => !!m.sender && !!m.deviceId)
      .map((m) => ({ userId: m.sender as string, deviceId: m.deviceId, membershipTs: m.createdTs() }));
    const users = [...new Set(members.map((m) => m.userId))];
    if (users.length === 0) return;
    // What the crypto knows now, without fetching.
    const devices = await crypto.getUserDeviceInfo(users, false);
    // Devices not known yet: the crypto is fetching their owners' lists
    // (members of an encrypted room are tracked; a new device of theirs
    // marks the list outdated), and CryptoEvent.DevicesUpdated brings us
    // back when it has them.
    const { targets } = r.due(members, (u, d) => !!devices.get(u)?.has(d));
    if (targets.length === 0) return;
    // The content ToDeviceKeyTransport sends (io.element.call.encryption_keys),
    // the key encoded as the SDK encodes it.
    const content = {
      keys: { index: key.index, key: encodeBase64(key.key) },
      room_id: this.room.roomId,
      member: { claimed_device_id: this.client.getDeviceId() ?? "", id: this.ownMemberId || `${this.client.getUserId()}:${this.client.getDeviceId()}` },
      session: { call_id: "", application: "m.call", scope: "m.room" },
      sent_ts: Date.now(),
    };
    await this.client.encryptAndSendToDevice(
      EventType.CallEncryptionKeysPrefix,
      targets.map((m) => ({ userId: m.userId, deviceId: m.deviceId })),
      content,
    );
    // Recorded only if the key is still the current one: a re-join while
    // this send was under way starts the keys anew at index 0, and this
    // (older) key's index must not count as the new key's delivery.
    if (r.key === key) r.sent(targets, key.index);
    this.keyRedeliveries += targets.length;
  }

  // Closing the tab: the SFU frees the seat at once, and the membership
  // goes when the delayed leave fires (the heartbeats stop).
  private readonly onPageHide = () => {
    if (this.phase === "connected") void this.lk.disconnect();
  };

  // Teaching mode and power levels change what may be published; reactions
  // and redactions change the raised hands: redraw on the room's events.
  private readonly onRoomChange = (ev: { getRoomId(): string | undefined }) => {
    if (ev.getRoomId() === this.room.roomId) this.emit();
  };

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const fn of [...this.listeners]) fn();
  }

  get local(): LocalParticipant {
    return this.lk.localParticipant;
  }

  get connected(): boolean {
    return this.phase === "connected" && this.lk.state === ConnectionState.Connected;
  }

  /** Local and remote participants, the local one first. */
  participants(): Participant[] {
    return [this.lk.localParticipant, ...this.lk.remoteParticipants.values()];
  }

  /** Whether the current grant lets this person publish the source. */
  mayPublish(source: Track.Source): boolean {
    const p = this.lk.localParticipant.permissions;
    if (!p) return this.phase !== "connected";
    if (!p.canPublish) return false;
    const n = sourceNumber[source];
    return p.canPublishSources.length === 0 || (n !== undefined && p.canPublishSources.includes(n));
  }

  async join(opts: JoinOptions): Promise<void> {
    if (this.phase === "connecting" || this.phase === "connected") return;
    this.phase = "connecting";
    this.failure = null;
    this.left = false;
    this.emit();
    try {
      const serviceUrl = await livekitServiceUrl(this.client);
      const { url, jwt } = await liveKitToken(this.client, serviceUrl, this.room.roomId);
      // Frames are encrypted from the first one on.
      if (this.keys) await this.lk.setE2EEEnabled(true);
      try {
        await this.lk.connect(url, jwt);
      } catch (err) {
        throw new CallJoinError("sfu", err instanceof Error ? err.message : String(err));
      }
      // A new MatrixRTC session: its keys start anew.
      this.redelivery?.reset();
      // In an encrypted room the SDK sends our media key to the members'
      // devices it knows when it sends: wait for a fetch of their lists
      // under way (for users the crypto tracks it answers from the list it
      // has; a device it learns later gets the key from KeyRedelivery).
      if (this.encrypted) await this.knowMembersDevices();
      // The membership, with a delayed leave the server sends if this
      // client stops heartbeating (a crash, a lost network): 8 s, restarted
      // every 5 s, as Element Call does.
      this.session.joinRoomSession(
        [{ type: "livekit", livekit_service_url: serviceUrl, livekit_alias: this.room.roomId }],
        { type: "livekit", focus_selection: "oldest_membership" } as Transport,
        {
          callIntent: opts.video ? "video" : "audio",
          delayedLeaveEventDelayMs: 8000,
          delayedLeaveEventRestartMs: 5000,
          // Media keys made, shared with the members and rotated by the SDK.
          manageMediaKeys: this.encrypted,
        },
      );
      this.phase = "connected";
      this.emit();
      if (this.redelivery) {
        // A device list fetched without an event we hear of: look again now and then.
        this.redeliveryTimer = setInterval(this.redeliver, 10_000);
      }
      // A handle for the browser tests and for debugging from the console.
      (window as unknown as { salonCall?: GroupCall }).salonCall = this;
      if (opts.audio && this.mayPublish(Track.Source.Microphone)) await this.setMic(true);
      if (opts.video && this.mayPublish(Track.Source.Camera)) await this.setCamera(true);
    } catch (err) {
      this.phase = "failed";
      this.failure = err instanceof CallJoinError ? err : new CallJoinError("other", err instanceof Error ? err.message : String(err));
      this.left = true;
      this.stopRedelivery();
      await this.lk.disconnect().catch(() => undefined);
      this.emit();
    }
  }

  private async knowMembersDevices(): Promise<void> {
    const crypto = this.client.getCrypto();
    if (!crypto) return;
    // The call's members first; the rest of a small room may join it.
    const inCall = this.session.memberships.map((m) => m.sender).filter((u): u is string => !!u);
    const users = [...new Set([...inCall, ...this.room.getJoinedMembers().map((m) => m.userId)])].slice(0, 100);
    await crypto.getUserDeviceInfo(users, true).catch((err: unknown) => console.warn("call: members' devices unknown", err));
  }

  async leave(): Promise<void> {
    this.left = true;
    this.stopRedelivery();
    await this.lk.disconnect().catch(() => undefined);
    if (this.session.isJoined()) await this.session.leaveRoomSession(5000).catch(() => false);
    this.phase = "idle";
    const w = window as unknown as { salonCall?: GroupCall };
    if (w.salonCall === this) delete w.salonCall;
    this.emit();
  }

  private stopRedelivery(): void {
    if (this.redeliveryTimer) clearInterval(this.redeliveryTimer);
    this.redeliveryTimer = null;
  }

  /** Stops listening; the call must have been left. */
  dispose(): void {
    this.stopRedelivery();
    this.session.off(MatrixRTCSessionEvent.MembershipsChanged, this.redeliver);
    this.client.off(CryptoEvent.DevicesUpdated, this.redeliver);
    this.client.off(ClientEvent.Event, this.onRoomChange);
    this.session.off(MatrixRTCSessionEvent.EncryptionKeyChanged, this.onKey);
    this.worker?.terminate();
    window.removeEventListener("pagehide", this.onPageHide);
    this.lk.removeAllListeners();
    this.listeners.clear();
  }

  private async publish(source: Track.Source, on: boolean, fn: () => Promise<unknown>): Promise<boolean> {
    this.refused = null;
    this.mediaError = null;
    try {
      await fn();
      return true;
    } catch (err) {
      console.warn(`call: ${source} ${on ? "on" : "off"} failed`, err);
      const e = err as { name?: string; status?: number; message?: string };
      if (e.name === "PublishTrackError" && e.status === 403) this.refused = source;
      // Closing the screen picker is a choice, not a failure.
      else if (!(source === Track.Source.ScreenShare && e.name === "NotAllowedError")) this.mediaError = e.message || String(err);
      return false;
    } finally {
      this.emit();
    }
  }

  setMic(on: boolean): Promise<boolean> {
    return this.publish(Track.Source.Microphone, on, () => this.lk.localParticipant.setMicrophoneEnabled(on));
  }

  setCamera(on: boolean): Promise<boolean> {
    return this.publish(Track.Source.Camera, on, () => this.lk.localParticipant.setCameraEnabled(on));
  }

  setScreen(on: boolean): Promise<boolean> {
    return this.publish(Track.Source.ScreenShare, on, () => this.lk.localParticipant.setScreenShareEnabled(on, { audio: true }));
  }

  async switchDevice(kind: MediaDeviceKind, deviceId: string): Promise<void> {
    await this.lk.switchActiveDevice(kind, deviceId).catch((err: unknown) => console.warn("call: switching device failed", err));
    this.emit();
  }
}

export function devices(kind: MediaDeviceKind): Promise<MediaDeviceInfo[]> {
  return LiveKitRoom.getLocalDevices(kind, false).catch(() => []);
}

export function isMicOn(p: Participant): boolean {
  const pub = p.getTrackPublication(Track.Source.Microphone);
  return !!pub && !pub.isMuted;
}

export function isCameraOn(p: Participant): boolean {
  const pub = p.getTrackPublication(Track.Source.Camera);
  return !!pub && !pub.isMuted;
}

/** The Matrix user of a LiveKit participant: the JWT service puts it in the name. */
export function userOf(p: Participant): string {
  if (p.name?.startsWith("@")) return p.name;
  const legacy = /^(@[^:]+:[^:]+(?::\d+)?):/.exec(p.identity);
  return legacy?.[1] ?? p.identity;
}

export { Track };

/** The call view's call for room: the ongoing one if it is there, else a new one. */
export function callFor(client: MatrixClient, room: Room): GroupCall {
  const cur = currentCall();
  if (cur instanceof GroupCall && cur.room.roomId === room.roomId && cur.client === client) return cur;
  return new GroupCall(client, room);
}
