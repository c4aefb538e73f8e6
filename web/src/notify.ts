// Browser notifications and the unread badge. Which events notify is the
// account's push rules, evaluated by matrix-js-sdk's push processor (the
// same rules the server counts unread notifications with): DMs, mentions,
// keywords, and nothing from a muted room. A notification shows when the
// page is hidden, unfocused, or showing another room. The unread count
// goes in the tab title, and a dot on the favicon. Where the page may not
// construct a Notification (Chrome on Android), the service worker
// (public/sw.js) shows it.
import {
  ClientEvent,
  EventType,
  KnownMembership,
  NotificationCountType,
  PushRuleKind,
  RoomEvent,
  SyncState,
  type IRoomTimelineData,
  type MatrixClient,
  type MatrixEvent,
  type Room,
} from "matrix-js-sdk";
import { t } from "./i18n";

let openRoomId: string | null = null;

/** The room the person has on screen (the Shell tells). */
export function setOpenRoom(id: string | null): void {
  openRoomId = id;
}

const prefKey = "salon.notify";

export function notificationsSupported(): boolean {
  return typeof window.Notification === "function";
}

/** Whether the person wants browser notifications (on unless turned off). */
export function notificationsWanted(): boolean {
  try {
    return localStorage.getItem(prefKey) !== "off";
  } catch {
    return true;
  }
}

/** Turns notifications on (asking the browser's permission) or off. */
export async function setNotificationsWanted(on: boolean): Promise<NotificationPermission | "unsupported"> {
  if (!on) {
    localStorage.setItem(prefKey, "off");
    return notificationsSupported() ? Notification.permission : "unsupported";
  }
  localStorage.removeItem(prefKey);
  if (!notificationsSupported()) return "unsupported";
  if (Notification.permission === "default") return Notification.requestPermission();
  return Notification.permission;
}

function plainBody(ev: MatrixEvent): string {
  const c = ev.getContent() as { body?: unknown; msgtype?: unknown };
  const body = typeof c.body === "string" ? c.body : "";
  if (ev.getType() === EventType.RoomMessage && c.msgtype === "m.emote") return `* ${body}`;
  return body.length > 200 ? `${body.slice(0, 199)}…` : body;
}

function pageAttending(roomId: string): boolean {
  return document.visibilityState === "visible" && document.hasFocus() && openRoomId === roomId;
}

function showNotification(client: MatrixClient, room: Room, ev: MatrixEvent): void {
  if (!notificationsSupported() || Notification.permission !== "granted" || !notificationsWanted()) return;
  const sender = ev.sender?.name || ev.getSender() || "";
  const direct = room.getJoinedMemberCount() <= 2;
  const title = direct ? sender : room.name || t("rooms.empty");
  const text = plainBody(ev);
  const body = direct ? text : `${sender}: ${text}`;
  const openRoom = () => {
    window.focus();
    window.location.hash = `#/room/${encodeURIComponent(room.roomId)}`;
  };
  let n: Notification;
  try {
    n = new Notification(title, { body, tag: room.roomId, icon: "/favicon.svg" });
  } catch {
    // Chrome on Android allows notifications only from a service worker
    // ("Illegal constructor"): show it through ours.
    void showThroughWorker(title, { body, tag: room.roomId, icon: "/favicon.svg", data: { roomId: room.roomId } });
    return;
  }
  n.onclick = () => {
    openRoom();
    n.close();
  };
  void client;
}

// ---- The service worker (public/sw.js), for notifications only ----

let worker: Promise<ServiceWorkerRegistration | null> | null = null;

/** Registers the worker once; null where there are no service workers. */
function notificationWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!("serviceWorker" in navigator)) return Promise.resolve(null);
  worker ??= navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(
    () => navigator.serviceWorker.ready,
    (err: unknown) => {
      console.warn("notifications: no service worker", err);
      worker = null;
      return null;
    },
  );
  return worker;
}

async function showThroughWorker(title: string, options: NotificationOptions): Promise<void> {
  const reg = await notificationWorker();
  if (!reg) return;
  try {
    await reg.showNotification(title, options);
  } catch (err) {
    console.warn("notifications: the service worker could not show it", err);
  }
}

/** A click on a notification the worker showed opens its room here. */
function listenToWorker(): () => void {
  if (!("serviceWorker" in navigator)) return () => undefined;
  const onMessage = (e: MessageEvent) => {
    const d = e.data as { type?: unknown; roomId?: unknown } | null;
    if (d && d.type === "salon.openRoom" && typeof d.roomId === "string") window.location.hash = `#/room/${encodeURIComponent(d.roomId)}`;
  };
  navigator.serviceWorker.addEventListener("message", onMessage);
  return () => navigator.serviceWorker.removeEventListener("message", onMessage);
}

// ---- The unread badge ----

let baseTitle = "";
let faviconPlain: string | null = null;
let faviconDot: string | null = null;

function iconLink(): HTMLLinkElement | null {
  return document.querySelector<HTMLLinkElement>('link[rel="icon"]');
}

async function dotFavicon(): Promise<string | null> {
  if (faviconDot) return faviconDot;
  const link = iconLink();
  if (!link) return null;
  faviconPlain ??= link.getAttribute("href");
  try {
    const svg = await (await fetch(faviconPlain ?? "/favicon.svg")).text();
    const dot = '<circle cx="25" cy="7" r="6.5" fill="#d93025" stroke="#fff" stroke-width="1.5"/>';
    faviconDot = `data:image/svg+xml,${encodeURIComponent(svg.replace(/<\/svg>\s*$/, `${dot}</svg>`))}`;
  } catch {
    return null;
  }
  return faviconDot;
}

/** Unread notifications over the joined rooms, plus invitations. */
export function unreadTotal(client: MatrixClient): number {
  let n = 0;
  for (const r of client.getRooms()) {
    const m = r.getMyMembership();
    if (m === KnownMembership.Invite) n++;
    else if (m === KnownMembership.Join) n += r.getUnreadNotificationCount(NotificationCountType.Total);
  }
  return n;
}

function updateBadge(client: MatrixClient): void {
  const n = unreadTotal(client);
  const title = n > 0 ? `(${n}) ${baseTitle}` : baseTitle;
  if (document.title !== title) document.title = title;
  const link = iconLink();
  if (!link) return;
  if (n > 0) {
    if (link.dataset.unread === "1") return;
    link.dataset.unread = "1";
    void dotFavicon().then((href) => {
      if (href && link.dataset.unread === "1") link.href = href;
    });
  } else if (link.dataset.unread === "1") {
    delete link.dataset.unread;
    if (faviconPlain) link.href = faviconPlain;
  }
}

/**
 * Starts notifying for the client's live events and keeping the badge;
 * returns the function that stops it (sign-out).
 */
export function startNotifications(client: MatrixClient): () => void {
  baseTitle = document.title.replace(/^\(\d+\) /, "") || t("app.name");
  const onTimeline = (ev: MatrixEvent, room: Room | undefined, toStart: boolean | undefined, removed: boolean, data: IRoomTimelineData) => {
    if (!room || toStart || removed || !data.liveEvent) return;
    // The first sync brings history, not news.
    if (client.getSyncState() !== SyncState.Syncing) return;
    if (ev.getSender() === client.getUserId()) return;
    if (pageAttending(room.roomId)) return;
    if (!client.getPushActionsForEvent(ev)?.notify) return;
    showNotification(client, room, ev);
  };
  let queued = false;
  const badge = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      updateBadge(client);
    });
  };
  // The worker is registered ahead where notifications are on, so that it
  // is ready when a page that may not construct them needs it.
  if (notificationsSupported() && Notification.permission === "granted" && notificationsWanted()) void notificationWorker();
  const stopWorker = listenToWorker();
  client.on(RoomEvent.Timeline, onTimeline);
  client.on(RoomEvent.MyMembership, badge);
  client.on(ClientEvent.Sync, badge);
  return () => {
    client.off(RoomEvent.Timeline, onTimeline);
    client.off(RoomEvent.MyMembership, badge);
    client.off(ClientEvent.Sync, badge);
    stopWorker();
    document.title = baseTitle;
    const link = iconLink();
    if (link && faviconPlain) {
      delete link.dataset.unread;
      link.href = faviconPlain;
    }
  };
}

// ---- Per-room mute ----
//
// A room is muted by an override rule whose ID is the room's ID, matching
// its events and doing nothing (the spec's "mute" in push rules, as
// Element sets it); the server then counts no notification for it either.

export function isRoomMuted(client: MatrixClient, roomId: string): boolean {
  const rules = client.pushRules?.global?.override ?? [];
  return rules.some(
    (r) =>
      r.rule_id === roomId &&
      r.enabled !== false &&
      (r.actions.length === 0 || r.actions.every((a) => a === "dont_notify")) &&
      (r.conditions ?? []).some((c) => c.kind === "event_match" && "pattern" in c && c.pattern === roomId),
  );
}

export async function setRoomMuted(client: MatrixClient, roomId: string, muted: boolean): Promise<void> {
  if (muted) {
    await client.addPushRule("global", PushRuleKind.Override, roomId, {
      actions: [],
      conditions: [{ kind: "event_match" as never, key: "room_id", pattern: roomId }],
    });
  } else {
    await client.deletePushRule("global", PushRuleKind.Override, roomId);
  }
  client.pushRules = await client.getPushRules();
}
