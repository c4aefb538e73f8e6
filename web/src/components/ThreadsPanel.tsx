// A room's threads (GET /v1/rooms/{roomId}/threads, each root with its
// bundled thread summary) and one thread: its root, its replies
// (/relations/{root}/m.thread) and a box to reply in it; a panel beside
// the timeline (the whole screen on a phone), closed with Escape.
import { ClientPrefix, Method, type IEvent, type MatrixClient, type Room } from "matrix-js-sdk";
import { useEffect, useRef, useState } from "preact/hooks";
import { formatTime, t } from "../i18n";
import { useClient } from "../hooks";
import { displayName } from "../matrix";
import { Icon } from "./icons";

type Ev = Partial<IEvent> & { unsigned?: { "m.relations"?: { "m.thread"?: { count?: number } } } };

function bodyOf(ev: Partial<IEvent>): string {
  const b = (ev.content as { body?: unknown } | undefined)?.body;
  return typeof b === "string" ? b : "";
}

const enc = encodeURIComponent;

async function listThreads(client: MatrixClient, roomId: string): Promise<Ev[]> {
  const res = await client.http.authedRequest<{ chunk: Ev[] }>(Method.Get, `/rooms/${enc(roomId)}/threads`, { limit: "30" }, undefined, { prefix: ClientPrefix.V1 });
  return res.chunk ?? [];
}

async function threadReplies(client: MatrixClient, roomId: string, root: string): Promise<Ev[]> {
  const res = await client.http.authedRequest<{ chunk: Ev[] }>(
    Method.Get,
    `/rooms/${enc(roomId)}/relations/${enc(root)}/m.thread`,
    { limit: "100", dir: "f" },
    undefined,
    { prefix: ClientPrefix.V1 },
  );
  return res.chunk ?? [];
}

function Message(props: { room: Room; ev: Ev }) {
  return (
    <div class="thread-message">
      <strong>{displayName(props.room, props.ev.sender ?? "")}</strong> <time class="muted">{formatTime(props.ev.origin_server_ts ?? 0)}</time>
      <p>{bodyOf(props.ev)}</p>
    </div>
  );
}

function Thread(props: { room: Room; root: Ev; onBack: () => void }) {
  const client = useClient();
  const [replies, setReplies] = useState<Ev[] | null>(null);
  const [text, setText] = useState("");
  const [tick, setTick] = useState(0);
  const rootId = props.root.event_id ?? "";
  useEffect(() => {
    let alive = true;
    threadReplies(client, props.room.roomId, rootId).then(
      (r) => alive && setReplies(r),
      () => alive && setReplies([]),
    );
    return () => {
      alive = false;
    };
  }, [client, props.room.roomId, rootId, tick]);
  const send = async () => {
    const body = text.trim();
    if (!body) return;
    const last = replies?.at(-1)?.event_id ?? rootId;
    setText("");
    await client.sendEvent(props.room.roomId, "m.room.message" as never, {
      msgtype: "m.text",
      body,
      "m.relates_to": { rel_type: "m.thread", event_id: rootId, is_falling_back: true, "m.in_reply_to": { event_id: last } },
    } as never);
    setTick((n) => n + 1);
  };
  return (
    <section class="thread" aria-label={t("threads.thread")}>
      <button type="button" class="small" onClick={props.onBack}>
        {t("threads.back")}
      </button>
      <Message room={props.room} ev={props.root} />
      <ol class="thread-replies" aria-label={t("threads.replies")}>
        {(replies ?? []).map((r) => (
          <li key={r.event_id}>
            <Message room={props.room} ev={r} />
          </li>
        ))}
      </ol>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <label>
          {t("threads.reply")}
          <input name="thread-reply" value={text} autoFocus onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={text.trim() === ""}>
          {t("composer.send")}
        </button>
      </form>
    </section>
  );
}

export function ThreadsPanel(props: { room: Room; onClose: () => void }) {
  const client = useClient();
  const [threads, setThreads] = useState<Ev[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<Ev | null>(null);
  useEffect(() => {
    if (open) return;
    let alive = true;
    listThreads(client, props.room.roomId).then(
      (r) => alive && setThreads(r),
      (err: unknown) => alive && setError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      alive = false;
    };
  }, [client, props.room.roomId, open]);
  // Focus into the panel when it opens, back to the room's menu when it closes.
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const close = () => {
    document.querySelector<HTMLElement>(".room-tools > .menu-wrap:last-child .menu-button")?.focus();
    props.onClose();
  };
  return (
    <aside
      class="side-panel threads-panel"
      aria-labelledby="threads-title"
      onKeyDown={(e) => {
        if (e.key === "Escape" && !e.defaultPrevented) {
          e.preventDefault();
          close();
        }
      }}
    >
      <header class="panel-head">
        <h2 id="threads-title" tabIndex={-1} ref={heading}>
          {t("threads.title", { name: props.room.name })}
        </h2>
        <button type="button" class="icon" aria-label={t("threads.close")} title={t("threads.close")} onClick={close}>
          <Icon name="close" />
        </button>
      </header>
      <div class="panel-scroll">
      {open ? (
        <Thread room={props.room} root={open} onBack={() => setOpen(null)} />
      ) : (
        <>
          {error && (
            <p class="error" role="alert">
              {t("error.generic", { message: error })}
            </p>
          )}
          {threads === null && !error && <p class="muted">{t("app.loading")}</p>}
          {threads?.length === 0 && <p class="muted">{t("threads.none")}</p>}
          <ul class="thread-list">
            {(threads ?? []).map((root) => {
              const n = root.unsigned?.["m.relations"]?.["m.thread"]?.count ?? 0;
              return (
                <li key={root.event_id}>
                  <button type="button" class="thread-open" onClick={() => setOpen(root)}>
                    <span>
                      <strong>{displayName(props.room, root.sender ?? "")}</strong>: {bodyOf(root)}
                    </span>
                    <small class="muted">{t("threads.count", { count: n })}</small>
                  </button>
                </li>
              );
            })}
          </ul>
        </>
      )}
      </div>
    </aside>
  );
}
