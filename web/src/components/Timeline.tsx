// The conversation: events of the live timeline (or, after a search
// result was chosen, of the stretch around it), with replies, edits,
// reactions, redactions, read receipts and back-pagination on scroll.
import {
  Direction,
  EventStatus,
  EventType,
  KnownMembership,
  MatrixEvent,
  MatrixEventEvent,
  MsgType,
  NotificationCountType,
  RelationType,
  RoomEvent,
  RoomMemberEvent,
  type EventTimeline,
  type MatrixClient,
  type Room,
} from "matrix-js-sdk";
import { Fragment } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { formatBytes, formatDay, formatTime, t } from "../i18n";
import { useClient, useEmitterTick } from "../hooks";
import { linkify, sanitizeHtml, stripReplyFallback } from "../markdown";
import { displayName, downloadMedia, mediaBlobUrl } from "../matrix";
import { AuthImage, Avatar, Dialog } from "./common";
import { Icon } from "./icons";
import { tc } from "../crypto/strings";
import { Undecryptable } from "../crypto/ui";
import { encryptedFileOf } from "../crypto/attachments";
import { EncryptedMedia } from "../crypto/EncryptedMedia";
import { useTimelineKeys } from "./timelineKeys";

const none: string[] = [];

export const quickReactions = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

/** Events shown as tiles; relations and reactions show on their targets. */
function shown(ev: MatrixEvent): boolean {
  if (ev.isRelation(RelationType.Replace)) return false;
  switch (ev.getType()) {
    case EventType.RoomMessage:
    case EventType.Sticker:
    case EventType.RoomEncryption:
    case EventType.RoomMessageEncrypted:
    case EventType.RoomCreate:
    case EventType.RoomName:
    case EventType.RoomTopic:
      return true;
    case EventType.RoomMember: {
      // Profile changes are noise in a conversation.
      const c = ev.getContent();
      const p = ev.getPrevContent();
      return !(c.membership === KnownMembership.Join && p.membership === KnownMembership.Join);
    }
    default:
      return false;
  }
}

export interface TimelineActions {
  onReply: (ev: MatrixEvent) => void;
  onEdit: (ev: MatrixEvent) => void;
}

/** A message to show: from a search result (a new object at each jump). */
export interface JumpTarget {
  eventId: string;
}

export function Timeline(props: { room: Room; actions: TimelineActions; jumpTo?: JumpTarget | null }) {
  const client = useClient();
  const room = props.room;
  useEmitterTick(room, [
    RoomEvent.Timeline,
    RoomEvent.TimelineReset,
    RoomEvent.LocalEchoUpdated,
    RoomEvent.Redaction,
    RoomEvent.Receipt,
    RoomEvent.Name,
  ]);
  useEmitterTick(client, [MatrixEventEvent.Replaced, RoomMemberEvent.Name, MatrixEventEvent.Decrypted]);

  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const restore = useRef<number | null>(null);
  const [loading, setLoading] = useState(false);
  // An older stretch of the conversation around a searched message, loaded
  // with /context when the live timeline does not reach it; null shows
  // the live timeline.
  const [detached, setDetached] = useState<EventTimeline | null>(null);
  const [jumped, setJumped] = useState<string | null>(null);
  const scrollTo = useRef<string | null>(null);
  // Whether forward pagination of the older stretch reached the present.
  const forwardDone = useRef(false);
  const live = detached ?? room.getLiveTimeline();
  const events = live.getEvents().filter(shown);
  const canPaginate = live.getPaginationToken(Direction.Backward) !== null;
  const atStart = !canPaginate || events[0]?.getType() === EventType.RoomCreate;

  const paginate = async () => {
    if (loading || atStart) return;
    const el = scroller.current;
    restore.current = el ? el.scrollHeight - el.scrollTop : null;
    setLoading(true);
    try {
      await client.paginateEventTimeline(live, { backwards: true, limit: 30 });
    } catch {
      // A failed page is retried on the next scroll.
    } finally {
      setLoading(false);
    }
  };

  // Newer messages of an older stretch, down to the live timeline.
  const paginateForward = async () => {
    if (loading || !detached) return;
    setLoading(true);
    try {
      forwardDone.current = !(await client.paginateEventTimeline(detached, { backwards: false, limit: 30 }));
    } catch {
      // Retried on the next scroll.
    } finally {
      setLoading(false);
    }
  };
  const backToLive = () => {
    setDetached(null);
    atBottom.current = true;
  };

  // A jump to a message: in the live timeline if it is there, else in the
  // stretch around it that /context returns.
  useEffect(() => {
    const id = props.jumpTo?.eventId;
    if (!id) return;
    let alive = true;
    const show = (timeline: EventTimeline | null) => {
      if (!alive) return;
      atBottom.current = false;
      forwardDone.current = false;
      setDetached(timeline && timeline !== room.getLiveTimeline() ? timeline : null);
      scrollTo.current = id;
      setJumped(id);
    };
    if (room.getLiveTimeline().getEvents().some((e) => e.getId() === id)) show(null);
    else
      client.getEventTimeline(room.getUnfilteredTimelineSet(), id).then(
        (timeline) => show(timeline ?? null),
        () => undefined,
      );
    return () => {
      alive = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.jumpTo]);

  // Keep the view anchored: on a message jumped to, at the bottom when it
  // was there, or on the same message after older ones were added above.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const target = scrollTo.current ? el.querySelector<HTMLElement>(`li[data-event-id="${CSS.escape(scrollTo.current)}"]`) : null;
    if (target) {
      scrollTo.current = null;
      restore.current = null;
      target.scrollIntoView({ block: "center" });
      target.focus({ preventScroll: true });
    } else if (restore.current !== null) {
      el.scrollTop = el.scrollHeight - restore.current;
      restore.current = null;
    } else if (atBottom.current && !detached) {
      el.scrollTop = el.scrollHeight;
    }
  });

  // Fill the view: fetch older messages while there is no scrollbar yet.
  useEffect(() => {
    const el = scroller.current;
    if (el && el.scrollHeight <= el.clientHeight + 50 && !atStart && !loading) void paginate();
  });

  // Read receipts: for the newest event the server has, shown or not (an
  // edit or a reaction counts too), once the person is at the bottom.
  const all = live.getEvents();
  let last: MatrixEvent | undefined;
  for (let i = all.length - 1; i >= 0 && !last; i--) {
    const e = all[i];
    if (e && e.status === null && e.getId() && !e.getId()!.startsWith("~")) last = e;
  }
  const receiptSentFor = useRef<string | null>(null);
  const markRead = () => {
    const me = client.getUserId() ?? "";
    if (detached || !last || document.visibilityState !== "visible" || !atBottom.current) return;
    // Our own latest event counts as read, but the server may still
    // count notifications before it (an invitation, say): a receipt then
    // resets them.
    const unread = room.getUnreadNotificationCount(NotificationCountType.Total) > 0;
    if (room.hasUserReadEvent(me, last.getId() ?? "") && !unread) return;
    // One receipt per event, whatever the server's counts say afterwards.
    if (receiptSentFor.current === last.getId()) return;
    receiptSentFor.current = last.getId() ?? null;
    const target = last;
    client.sendReadReceipt(target).then(
      () => {
        // Everything is read: clear the badge now rather than at the
        // server's next count.
        if (room.getLiveTimeline().getEvents().at(-1) === target) {
          room.setUnreadNotificationCount(NotificationCountType.Total, 0);
          room.setUnreadNotificationCount(NotificationCountType.Highlight, 0);
        }
      },
      () => undefined,
    );
  };
  useEffect(markRead, [last?.getId(), room.getUnreadNotificationCount(NotificationCountType.Total)]);
  useEffect(() => {
    document.addEventListener("visibilitychange", markRead);
    return () => document.removeEventListener("visibilitychange", markRead);
  });

  const eventList = useRef<HTMLOListElement>(null);
  useTimelineKeys(eventList);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const fromBottom = el.scrollHeight - el.scrollTop - el.clientHeight;
    atBottom.current = fromBottom < 40;
    if (el.scrollTop < 300) void paginate();
    // An older stretch: newer messages as the person scrolls down; the
    // live timeline once they reach the present and the bottom.
    if (detached && fromBottom < 300 && !forwardDone.current) void paginateForward();
    else if (detached && forwardDone.current && fromBottom < 2) backToLive();
    markRead();
  };

  // Each person's read receipt shows on the newest shown event at or
  // before the one it points to (it may point to an edit or a reaction).
  const readers = new Map<string, string[]>();
  {
    const me = client.getUserId();
    let lastShown: MatrixEvent | null = null;
    for (const ev of all) {
      if (shown(ev)) lastShown = ev;
      if (!lastShown) continue;
      const target = lastShown;
      for (const r of room.getReceiptsForEvent(ev)) {
        if (r.type !== "m.read" && r.type !== "m.read.private") continue;
        if (r.userId === me || r.userId === target.getSender()) continue;
        const id = target.getId() ?? "";
        const list = readers.get(id) ?? [];
        if (!list.includes(r.userId)) list.push(r.userId);
        readers.set(id, list);
      }
    }
  }

  let prev: MatrixEvent | undefined;
  const tiles = events.map((ev) => {
    const p = prev;
    prev = ev;
    const day = new Date(ev.getTs()).toDateString();
    const newDay = !p || new Date(p.getTs()).toDateString() !== day;
    const continuation = !newDay && p !== undefined && p.getSender() === ev.getSender() && p.getType() === EventType.RoomMessage && ev.getTs() - p.getTs() < 5 * 60_000;
    // Local echoes keep their transaction ID as key, so a tile is not
    // remounted when the server's event ID arrives.
    const key = ev.getTxnId() ?? ev.getId() ?? "";
    return (
      <Fragment key={key}>
        {newDay && (
          <li class="day">
            <time dateTime={new Date(ev.getTs()).toISOString().slice(0, 10)}>{formatDay(ev.getTs())}</time>
          </li>
        )}
        <EventTile ev={ev} room={room} continuation={continuation} actions={props.actions} readers={readers.get(ev.getId() ?? "") ?? none} jumped={jumped !== null && ev.getId() === jumped} />
      </Fragment>
    );
  });

  return (
    <div class="timeline" ref={scroller} onScroll={onScroll}>
      <ol ref={eventList} class="events" aria-label={room.name} aria-live="polite" aria-relevant="additions">
        <li class="timeline-start muted" key="start">
          {atStart ? t("room.historyStart") : loading ? t("room.loadingHistory") : ""}
        </li>
        {tiles}
      </ol>
      {detached && (
        <div class="timeline-older" role="status">
          <span>{t("room.olderMessages")}</span>
          <button type="button" class="small" onClick={backToLive}>
            {t("room.jumpLatest")}
          </button>
        </div>
      )}
    </div>
  );
}

function stateText(room: Room, ev: MatrixEvent): string {
  const user = displayName(room, ev.getSender() ?? "");
  const c = ev.getContent();
  switch (ev.getType()) {
    case EventType.RoomCreate:
      return t("event.create", { user });
    case EventType.RoomName:
      return t("event.name", { user, name: String(c.name ?? "") });
    case EventType.RoomTopic:
      return t("event.topic", { user, topic: String(c.topic ?? "") });
    case EventType.RoomMember: {
      const target = displayName(room, ev.getStateKey() ?? "");
      const prev = ev.getPrevContent().membership;
      switch (c.membership) {
        case KnownMembership.Join:
          return t("event.join", { user: target });
        case KnownMembership.Invite:
          return t("event.invite", { user, target });
        case KnownMembership.Ban:
          return t("event.ban", { user, target });
        case KnownMembership.Leave:
          return ev.getSender() === ev.getStateKey() || prev === KnownMembership.Invite ? t("event.leave", { user: target }) : t("event.kick", { user, target });
      }
      return t("event.profile", { user: target });
    }
    case EventType.RoomEncryption:
      return tc("e2e.turnedOn", { user });
    case EventType.RoomMessageEncrypted:
      return t("msg.encrypted");
  }
  return t("msg.unknown", { type: ev.getType() });
}

function Body(props: { ev: MatrixEvent }) {
  const c = props.ev.getContent();
  const isReply = Boolean(props.ev.replyEventId);
  if (c.format === "org.matrix.custom.html" && typeof c.formatted_body === "string") {
    return <div class="body" dangerouslySetInnerHTML={{ __html: sanitizeHtml(c.formatted_body) }} />;
  }
  const body = typeof c.body === "string" ? c.body : "";
  return <div class="body" dangerouslySetInnerHTML={{ __html: linkify(isReply ? stripReplyFallback(body) : body) }} />;
}

function Media(props: { ev: MatrixEvent }) {
  const client = useClient();
  const c = props.ev.getContent();
  const info = (c.info ?? {}) as { w?: number; h?: number; size?: number; mimetype?: string; thumbnail_url?: string; thumbnail_info?: { w?: number; h?: number } };
  const name = typeof c.filename === "string" && c.filename ? c.filename : String(c.body ?? "file");
  const url = typeof c.url === "string" ? c.url : null;
  const [full, setFull] = useState(false);
  const [video, setVideo] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  // An attachment of an encrypted room: decrypted in the browser.
  const encryptedFile = encryptedFileOf(c.file);
  if (encryptedFile) return <EncryptedMedia ev={props.ev} file={encryptedFile} />;
  if (!url) return <p class="muted">{t("msg.encrypted")}</p>;

  const w = info.thumbnail_info?.w ?? info.w;
  const h = info.thumbnail_info?.h ?? info.h;
  const thumbMxc = info.thumbnail_url ?? url;
  // Ask the server for a thumbnail only when we have no thumbnail of our own.
  const thumb = info.thumbnail_url ? undefined : { w: 800, h: 600 };

  if (c.msgtype === MsgType.Image) {
    return (
      <div class="media image">
        <AuthImage mxc={thumbMxc} thumb={thumb} alt={name} width={w} height={h} class="thumb" onClick={() => setFull(true)} />
        {full && (
          <Dialog title={name} onClose={() => setFull(false)} wide id="image-view">
            <AuthImage mxc={url} alt={name} class="full" />
            <p>
              <button type="button" onClick={() => void downloadMedia(client, url, name)}>
                {t("msg.download")}
              </button>
            </p>
          </Dialog>
        )}
      </div>
    );
  }
  if (c.msgtype === MsgType.Video) {
    const play = async () => {
      try {
        setVideo(await mediaBlobUrl(client, url));
      } catch (e) {
        setError(String(e));
      }
    };
    return (
      <div class="media video">
        {video ? (
          <video src={video} controls autoplay aria-label={name} />
        ) : info.thumbnail_url ? (
          <AuthImage mxc={info.thumbnail_url} alt={t("msg.play")} width={w} height={h} class="thumb" onClick={() => void play()} />
        ) : (
          <button type="button" class="play" onClick={() => void play()}>
            <Icon name="play" /> {t("msg.play")}
          </button>
        )}
        {error && <p class="error">{error}</p>}
      </div>
    );
  }
  return (
    <div class="file-card">
      <span class="file-icon" aria-hidden="true">
        <Icon name="file" />
      </span>
      <span class="file-meta">
        <span class="file-name">{name}</span>
        <small class="muted">
          {info.mimetype ?? ""}
          {info.size !== undefined ? ` · ${formatBytes(info.size)}` : ""}
        </small>
      </span>
      <button
        type="button"
        class="small"
        aria-label={t("msg.downloadFile", { name })}
        onClick={() => downloadMedia(client, url, name).catch((e: unknown) => setError(String(e)))}
      >
        {t("msg.download")}
      </button>
      {error && <p class="error">{error}</p>}
    </div>
  );
}

function ReplyQuote(props: { room: Room; eventId: string }) {
  const client = useClient();
  const [ev, setEv] = useState<MatrixEvent | null | undefined>(() => props.room.findEventById(props.eventId));
  useEffect(() => {
    if (ev !== undefined) return;
    let alive = true;
    client.fetchRoomEvent(props.room.roomId, props.eventId).then(
      (raw) => alive && setEv(new MatrixEvent(raw)),
      () => alive && setEv(null),
    );
    return () => {
      alive = false;
    };
  }, [props.eventId]);
  if (!ev) {
    return <blockquote class="reply-quote muted">{ev === null ? t("msg.originalUnavailable") : t("app.loading")}</blockquote>;
  }
  const user = displayName(props.room, ev.getSender() ?? "");
  const body = ev.isRedacted() ? t("msg.deleted") : plainText(ev);
  return (
    <blockquote class="reply-quote" aria-label={t("msg.inReplyTo", { user })}>
      <span class="sender">{user}</span> <span class="quote-body">{body.length > 200 ? `${body.slice(0, 200)}…` : body}</span>
    </blockquote>
  );
}

/** An event's text without formatting, for quotes. */
export function plainText(ev: MatrixEvent): string {
  const c = ev.getContent();
  if (c.format === "org.matrix.custom.html" && typeof c.formatted_body === "string") {
    const doc = new DOMParser().parseFromString(sanitizeHtml(c.formatted_body), "text/html");
    return doc.body.textContent ?? "";
  }
  const body = typeof c.body === "string" ? c.body : "";
  return ev.replyEventId ? stripReplyFallback(body) : body;
}

function Reactions(props: { room: Room; ev: MatrixEvent }) {
  const client = useClient();
  const id = props.ev.getId();
  if (!id) return null;
  const rel = props.room.getUnfilteredTimelineSet().relations.getChildEventsForEvent(id, RelationType.Annotation, EventType.Reaction);
  const groups = rel?.getSortedAnnotationsByKey() ?? [];
  if (groups.length === 0) return null;
  const me = client.getUserId();
  return (
    <ul class="reactions" aria-label={t("msg.react")}>
      {groups.map(([key, set]) => {
        const evs = [...set].filter((e) => !e.isRedacted());
        if (evs.length === 0) return null;
        const mine = evs.find((e) => e.getSender() === me);
        const users = evs.map((e) => displayName(props.room, e.getSender() ?? "")).join(", ");
        const toggle = () => {
          const mineId = mine?.getId();
          if (mine && mineId) void client.redactEvent(props.room.roomId, mineId);
          else void react(client, props.room, props.ev, key);
        };
        return (
          <li key={key}>
            <button
              type="button"
              class={`reaction${mine ? " mine" : ""}`}
              aria-pressed={mine ? "true" : "false"}
              title={t("msg.reactionBy", { key, users })}
              onClick={toggle}
            >
              <span class="emoji" aria-hidden="true">
                {key}
              </span>{" "}
              <span class="count">{evs.length}</span>
              <span class="visually-hidden">{` ${mine ? t("msg.removeReaction", { key }) : t("msg.reactWith", { key })}: ${users}`}</span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}

export function react(client: MatrixClient, room: Room, ev: MatrixEvent, key: string): Promise<unknown> {
  return client.sendEvent(room.roomId, EventType.Reaction, {
    "m.relates_to": { rel_type: RelationType.Annotation, event_id: ev.getId() ?? "", key },
  } as never);
}

function Receipts(props: { room: Room; users: string[] }) {
  if (props.users.length === 0) return null;
  const names = props.users.map((u) => displayName(props.room, u)).join(", ");
  return (
    <div class="receipts" role="img" title={t("room.seenBy", { users: names })} aria-label={t("room.seenBy", { users: names })}>
      {props.users.slice(0, 4).map((u) => (
        <Avatar key={u} id={u} name={displayName(props.room, u)} size={16} />
      ))}
      {props.users.length > 4 && <small>+{props.users.length - 4}</small>}
    </div>
  );
}

function EventTile(props: { ev: MatrixEvent; room: Room; continuation: boolean; actions: TimelineActions; readers: string[]; jumped?: boolean }) {
  const client = useClient();
  const { ev, room } = props;
  const [picker, setPicker] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const me = client.getUserId() ?? "";
  const sender = ev.getSender() ?? "";
  const name = displayName(room, sender);
  const type = ev.getType();
  // An encrypted message not decrypted (yet) is a message tile saying why.
  // (The SDK turns a failed one into an m.room.message of m.bad.encrypted.)
  const undecryptable = type === EventType.RoomMessageEncrypted || ev.isDecryptionFailure();
  const isMessage = type === EventType.RoomMessage || type === EventType.Sticker || undecryptable;

  if (!isMessage) {
    return (
      <li class="event state" data-event-id={ev.getId()}>
        <span class="muted">{stateText(room, ev)}</span>
        <Receipts room={room} users={props.readers} />
      </li>
    );
  }

  const c = ev.getContent();
  const redacted = ev.isRedacted();
  const mine = sender === me;
  const sent = ev.status === null && !!ev.getId() && !ev.getId()!.startsWith("~");
  const msgtype = String(c.msgtype ?? "");
  const editable = mine && sent && !redacted && (msgtype === MsgType.Text || msgtype === MsgType.Emote || msgtype === MsgType.Notice);
  const canRedact = sent && !redacted && (mine || room.currentState.hasSufficientPowerLevelFor("redact", room.getMember(me)?.powerLevel ?? 0));
  const isMedia = [MsgType.Image, MsgType.Video, MsgType.File, MsgType.Audio].includes(msgtype as MsgType) || type === EventType.Sticker;
  const replyTo = ev.replyEventId;
  const highlighted = !mine && !redacted && isMentioned(ev, me);

  return (
    <li
      class={`event message${props.continuation ? " continuation" : ""}${mine ? " mine" : ""}${highlighted ? " highlight" : ""}${props.jumped ? " jumped" : ""}`}
      aria-current={props.jumped ? "true" : undefined}
      data-event-id={ev.getId()}
      tabIndex={0}
      aria-label={`${name}, ${formatTime(ev.getTs())}`}
    >
      {!props.continuation && (
        <div class="event-head">
          <Avatar id={sender} name={name} mxc={room.getMember(sender)?.getMxcAvatarUrl()} />
          <span class="sender">{name}</span>
          <time dateTime={new Date(ev.getTs()).toISOString()}>{formatTime(ev.getTs())}</time>
        </div>
      )}
      <div class="event-content">
        {replyTo && !redacted && <ReplyQuote room={room} eventId={replyTo} />}
        {redacted ? (
          <p class="muted deleted">{t("msg.deleted")}</p>
        ) : undecryptable ? (
          <Undecryptable room={room} ev={ev} />
        ) : isMedia ? (
          <Media ev={ev} />
        ) : (
          <div class={`text${msgtype === MsgType.Emote ? " emote" : ""}${msgtype === MsgType.Notice ? " notice" : ""}`}>
            {msgtype === MsgType.Emote && <span class="sender">* {name} </span>}
            <Body ev={ev} />
            {ev.replacingEventId() && <small class="muted edited">{t("msg.edited")}</small>}
          </div>
        )}
        {ev.status === EventStatus.SENDING || ev.status === EventStatus.QUEUED || ev.status === EventStatus.ENCRYPTING ? (
          <small class="muted status">{t("msg.sending")}</small>
        ) : ev.status === EventStatus.NOT_SENT ? (
          <small class="error status">
            {t("msg.notSent")}{" "}
            <button type="button" class="link" onClick={() => void client.resendEvent(ev, room)}>
              {t("msg.retry")}
            </button>
          </small>
        ) : null}
        {!redacted && <Reactions room={room} ev={ev} />}
      </div>
      {sent && !redacted && (
        <div class="event-actions" role="toolbar" aria-label={t("msg.actions")}>
          <button type="button" class="icon small" aria-label={t("msg.react")} title={t("msg.react")} aria-expanded={picker} onClick={() => setPicker((v) => !v)}>
            <Icon name="smile" />
          </button>
          <button type="button" class="icon small" aria-label={t("msg.reply")} title={t("msg.reply")} onClick={() => props.actions.onReply(ev)}>
            <Icon name="reply" />
          </button>
          {editable && (
            <button type="button" class="icon small" aria-label={t("msg.edit")} title={t("msg.edit")} onClick={() => props.actions.onEdit(ev)}>
              <Icon name="edit" />
            </button>
          )}
          {canRedact && (
            <button type="button" class="icon small" aria-label={t("msg.delete")} title={t("msg.delete")} onClick={() => setConfirmDelete(true)}>
              <Icon name="trash" />
            </button>
          )}
          {picker && (
            <ul class="reaction-picker">
              {quickReactions.map((k) => (
                <li key={k}>
                  <button
                    type="button"
                    class="icon"
                    aria-label={t("msg.reactWith", { key: k })}
                    onClick={() => {
                      setPicker(false);
                      void react(client, room, ev, k);
                    }}
                  >
                    {k}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {confirmDelete && (
        <Dialog title={t("msg.deleteConfirm")} onClose={() => setConfirmDelete(false)} id="confirm-delete">
          <div class="dialog-actions">
            <button type="button" onClick={() => setConfirmDelete(false)}>
              {t("dialog.cancel")}
            </button>
            <button
              type="button"
              class="danger"
              onClick={() => {
                setConfirmDelete(false);
                void client.redactEvent(room.roomId, ev.getId() ?? "");
              }}
            >
              {t("msg.delete")}
            </button>
          </div>
        </Dialog>
      )}
      <Receipts room={room} users={props.readers} />
    </li>
  );
}

function isMentioned(ev: MatrixEvent, me: string): boolean {
  const c = ev.getContent();
  const m = c["m.mentions"] as { user_ids?: unknown } | undefined;
  if (m && Array.isArray(m.user_ids)) return m.user_ids.includes(me);
  return typeof c.body === "string" && c.body.includes(me);
}
