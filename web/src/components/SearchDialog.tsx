// Message search in a room (POST /search, room_events): the server
// decides what the person may read (history visibility); each result
// shows with the message before and after it; a result opens the
// conversation at that message.
import { type IEvent, type MatrixClient, type Room } from "matrix-js-sdk";
import { useState } from "preact/hooks";
import { formatTime, t } from "../i18n";
import { useClient } from "../hooks";
import { displayName } from "../matrix";
import { Dialog } from "./common";

interface Hit {
  result: Partial<IEvent>;
  context?: { events_before?: Partial<IEvent>[]; events_after?: Partial<IEvent>[] };
}

function bodyOf(ev: Partial<IEvent>): string {
  const b = (ev.content as { body?: unknown } | undefined)?.body;
  return typeof b === "string" ? b : "";
}

async function searchRoom(client: MatrixClient, roomId: string, term: string): Promise<{ hits: Hit[]; count: number }> {
  const res = await client.search({
    body: {
      search_categories: {
        room_events: {
          search_term: term,
          keys: ["content.body"],
          filter: { rooms: [roomId], limit: 20 },
          order_by: "recent",
          event_context: { before_limit: 1, after_limit: 1, include_profile: false },
        },
      },
    } as never,
  });
  const re = (res.search_categories as { room_events?: { results?: Hit[]; count?: number } }).room_events;
  return { hits: re?.results ?? [], count: re?.count ?? re?.results?.length ?? 0 };
}

function Line(props: { room: Room; ev: Partial<IEvent>; context?: boolean; onShow?: () => void }) {
  const content = (
    <>
      <strong>{displayName(props.room, props.ev.sender ?? "")}</strong>{" "}
      <time>{formatTime(props.ev.origin_server_ts ?? 0)}</time>
      <br />
      {bodyOf(props.ev)}
    </>
  );
  if (props.context || !props.onShow) return <p class={props.context ? "search-context muted" : "search-hit"}>{content}</p>;
  return (
    <button type="button" class="search-hit" title={t("search.show")} onClick={props.onShow}>
      {content}
      <span class="visually-hidden">, {t("search.show")}</span>
    </button>
  );
}

export function SearchDialog(props: { room: Room; onClose: () => void; onShow: (eventId: string) => void }) {
  const client = useClient();
  const [term, setTerm] = useState("");
  const [state, setState] = useState<{ busy: boolean; hits: Hit[] | null; error: string | null }>({ busy: false, hits: null, error: null });
  return (
    <Dialog title={t("search.title", { name: props.room.name })} onClose={props.onClose} id="search" wide>
      <form
        class="inline-form"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          const q = term.trim();
          if (!q) return;
          setState({ busy: true, hits: null, error: null });
          searchRoom(client, props.room.roomId, q).then(
            (r) => setState({ busy: false, hits: r.hits, error: null }),
            (err: unknown) => setState({ busy: false, hits: null, error: err instanceof Error ? err.message : String(err) }),
          );
        }}
      >
        <label>
          {t("search.label")}
          <input type="search" name="search" value={term} autoFocus onInput={(e) => setTerm(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={state.busy || term.trim() === ""}>
          {t("search.submit")}
        </button>
      </form>
      <div aria-live="polite">
        {state.busy && <p class="muted">{t("app.loading")}</p>}
        {state.error && (
          <p class="error" role="alert">
            {t("error.generic", { message: state.error })}
          </p>
        )}
        {state.hits && state.hits.length === 0 && <p class="muted">{t("search.none")}</p>}
        {state.hits && state.hits.length > 0 && (
          <>
            <p class="muted">{t("search.count", { count: state.hits.length })}</p>
            <ol class="search-results">
              {state.hits.map((h) => (
                <li key={h.result.event_id}>
                  {(h.context?.events_before ?? []).map((ev) => (
                    <Line key={ev.event_id} room={props.room} ev={ev} context />
                  ))}
                  <Line room={props.room} ev={h.result} onShow={h.result.event_id ? () => props.onShow(h.result.event_id ?? "") : undefined} />
                  {(h.context?.events_after ?? []).map((ev) => (
                    <Line key={ev.event_id} room={props.room} ev={ev} context />
                  ))}
                </li>
              ))}
            </ol>
          </>
        )}
      </div>
    </Dialog>
  );
}
