// The signed-in Matrix client and what the views need around it: starting
// sync, authenticated media as blob: URLs, and small room helpers.
import {
  ClientEvent,
  createClient,
  EventType,
  KnownMembership,
  type MatrixClient,
  type MatrixEvent,
  type Room,
} from "matrix-js-sdk";
import { logger as sdkLogger, type Logger } from "matrix-js-sdk/lib/logger";
import type { Session } from "./session";
import { cryptoCallbacks } from "./crypto/recovery";

// The SDK logs every step of sync at debug and info level; that costs
// time in the hundreds-of-rooms case. Warnings and errors only, unless
// localStorage["salon.debug"] is set (or in the Vite dev server).
const verbose = import.meta.env.DEV || (() => {
  try {
    return localStorage.getItem("salon.debug") !== null;
  } catch {
    return false;
  }
})();

function quietLogger(prefix: string): Logger {
  const noop = () => undefined;
  const p = prefix ? [prefix] : [];
  return {
    trace: noop,
    debug: verbose ? (...m: unknown[]) => console.debug(...p, ...m) : noop,
    info: verbose ? (...m: unknown[]) => console.info(...p, ...m) : noop,
    warn: (...m: unknown[]) => console.warn(...p, ...m),
    error: (...m: unknown[]) => console.error(...p, ...m),
    getChild: (ns: string) => quietLogger(prefix ? `${prefix} ${ns}` : ns),
  };
}

// Modules of the SDK that log through its global logger (loglevel).
(sdkLogger as unknown as { setLevel?: (level: string) => void }).setLevel?.(verbose ? "debug" : "warn");

// Requests started while the page is going away (a call's hang-up on
// pagehide) are sent with keepalive, so the browser completes them after
// the page is gone instead of cancelling them.
let leaving = false;
window.addEventListener("pagehide", () => (leaving = true), { capture: true });
window.addEventListener("pageshow", () => (leaving = false));
const fetchFn: typeof fetch = (input, init) => (leaving ? fetch(input, { ...init, keepalive: true }) : fetch(input, init));

export function clientFor(s: Session): MatrixClient {
  return createClient({
    fetchFn,
    logger: quietLogger("matrix"),
    baseUrl: s.homeserver,
    accessToken: s.accessToken,
    userId: s.userId,
    deviceId: s.deviceId,
    // Aggregates relations (edits, reactions) on the events they target.
    timelineSupport: true,
    // The secret storage key, asked for while recovery is set up or used.
    cryptoCallbacks,
  });
}

export async function startSync(client: MatrixClient): Promise<void> {
  performance.mark("salon:sync-start");
  const prepared = (state: string) => {
    if (state !== "PREPARED") return;
    performance.mark("salon:sync-prepared");
    client.off(ClientEvent.Sync, prepared);
  };
  client.on(ClientEvent.Sync, prepared);
  await client.startClient({
    initialSyncLimit: 20,
    lazyLoadMembers: true,
    threadSupport: false,
  });
}

// ---- Authenticated media (MSC3916, Matrix 1.11) ----
//
// Media is fetched with the access token in the Authorization header, so
// it cannot be a plain <img src>: the bytes become a blob: URL, which the
// CSP allows. URLs are kept for the session and revoked at sign-out.

const blobCache = new Map<string, Promise<string>>();

export function mediaUrl(client: MatrixClient, mxc: string, thumb?: { w: number; h: number }): string | null {
  const url = thumb
    ? client.mxcUrlToHttp(mxc, thumb.w, thumb.h, "scale", false, true, true)
    : client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, true);
  return url || null;
}

export async function fetchMedia(client: MatrixClient, url: string): Promise<Blob> {
  const token = client.getAccessToken();
  const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.blob();
}

/** A blob: URL for the media, fetched once per session. */
export function mediaBlobUrl(client: MatrixClient, mxc: string, thumb?: { w: number; h: number }): Promise<string> {
  const url = mediaUrl(client, mxc, thumb);
  if (!url) return Promise.reject(new Error("not an mxc:// URI"));
  let p = blobCache.get(url);
  if (!p) {
    p = fetchMedia(client, url).then((b) => URL.createObjectURL(b));
    p.catch(() => blobCache.delete(url));
    blobCache.set(url, p);
  }
  return p;
}

export function releaseMedia(): void {
  for (const p of blobCache.values()) {
    p.then((u) => URL.revokeObjectURL(u)).catch(() => undefined);
  }
  blobCache.clear();
}

/** Saves media as a file the person downloads, under its own name. */
export async function downloadMedia(client: MatrixClient, mxc: string, filename: string): Promise<void> {
  const url = mediaUrl(client, mxc);
  if (!url) throw new Error("not an mxc:// URI");
  const blob = await fetchMedia(client, url);
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = filename;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

// ---- Rooms ----

export function isJoinedOrInvited(r: Room): boolean {
  const m = r.getMyMembership();
  return m === KnownMembership.Join || m === KnownMembership.Invite;
}

/** m.direct account data: user ID → DM room IDs. */
export function directRoomIds(client: MatrixClient): Set<string> {
  const ev = client.getAccountData(EventType.Direct);
  const ids = new Set<string>();
  const content = (ev?.getContent() ?? {}) as Record<string, unknown>;
  for (const rooms of Object.values(content)) {
    if (Array.isArray(rooms)) for (const id of rooms) if (typeof id === "string") ids.add(id);
  }
  return ids;
}

export function isDirect(client: MatrixClient, room: Room, direct: Set<string>): boolean {
  if (direct.has(room.roomId)) return true;
  // An invitation to a DM says so in our membership event.
  if (room.getMyMembership() === KnownMembership.Invite) {
    const me = room.currentState.getMember(client.getUserId() ?? "");
    return Boolean(me?.events.member?.getContent().is_direct);
  }
  return false;
}

export interface SpaceChild {
  roomId: string;
  order: string;
  ts: number;
  via: string[];
  event: MatrixEvent;
}

/**
 * The children of a space in the order of the spec (§ Spaces: by `order`
 * where present and valid, then by the child event's timestamp, then by
 * room ID). Children without `via` are removed ones.
 */
export function spaceChildren(space: Room): SpaceChild[] {
  const evs = space.currentState.getStateEvents(EventType.SpaceChild);
  const kids: SpaceChild[] = [];
  for (const ev of evs) {
    const c = ev.getContent() as { via?: unknown; order?: unknown };
    if (!Array.isArray(c.via) || c.via.length === 0) continue;
    const order = typeof c.order === "string" && c.order.length <= 50 && /^[\x20-\x7e]*$/.test(c.order) ? c.order : "";
    kids.push({ roomId: ev.getStateKey() ?? "", order, ts: ev.getTs(), via: c.via.filter((v): v is string => typeof v === "string"), event: ev });
  }
  kids.sort((a, b) => {
    if (a.order && !b.order) return -1;
    if (!a.order && b.order) return 1;
    if (a.order !== b.order) return a.order < b.order ? -1 : 1;
    if (a.ts !== b.ts) return a.ts - b.ts;
    return a.roomId < b.roomId ? -1 : 1;
  });
  return kids;
}

export function serverOf(userOrRoomId: string): string {
  const i = userOrRoomId.indexOf(":");
  return i >= 0 ? userOrRoomId.slice(i + 1) : "";
}

export function canSendState(client: MatrixClient, room: Room, type: string): boolean {
  return room.currentState.maySendStateEvent(type, client.getUserId() ?? "");
}

/** The name of a user as the room knows it, else their ID. */
export function displayName(room: Room | null, userId: string): string {
  const m = room?.getMember(userId);
  return m?.name || m?.rawDisplayName || userId;
}

/** Waits for the first ClientEvent.Sync with one of the given states. */
export function onceSync(client: MatrixClient, states: string[]): Promise<string> {
  return new Promise((resolve) => {
    const cur = client.getSyncState();
    if (cur && states.includes(cur)) {
      resolve(cur);
      return;
    }
    const h = (state: string) => {
      if (states.includes(state)) {
        client.off(ClientEvent.Sync, h);
        resolve(state);
      }
    };
    client.on(ClientEvent.Sync, h);
  });
}

/** Adds a room to m.direct under the other person's user ID. */
export async function markDirect(client: MatrixClient, userId: string, roomId: string): Promise<void> {
  const content = { ...((client.getAccountData(EventType.Direct)?.getContent() ?? {}) as Record<string, string[]>) };
  const list = Array.isArray(content[userId]) ? content[userId] : [];
  if (list.includes(roomId)) return;
  content[userId] = [...list, roomId];
  await client.setAccountData(EventType.Direct, content as never);
}

/** Joins a room we are invited to; a DM invitation also goes into m.direct. */
export async function acceptInvite(client: MatrixClient, room: Room): Promise<string> {
  const me = room.currentState.getMember(client.getUserId() ?? "");
  const ev = me?.events.member;
  await client.joinRoom(room.roomId);
  if (ev?.getContent().is_direct) {
    await markDirect(client, ev.getSender() ?? "", room.roomId).catch(() => undefined);
  }
  return room.roomId;
}
