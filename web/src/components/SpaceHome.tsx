// A space's home: its name and topic, and its hierarchy (the rooms and
// sub-spaces it lists, joined or not) through GET /hierarchy.
import { EventType, KnownMembership, RoomEvent, type HierarchyRoom, type Room } from "matrix-js-sdk";
import { useState } from "preact/hooks";
import { t } from "../i18n";
import { useAsync, useClient, useEmitterTick } from "../hooks";
import { canSendState } from "../matrix";
import { Avatar } from "./common";
import { Icon } from "./icons";

interface Props {
  space: Room;
  narrow: boolean;
  onBack: () => void;
  onOpen: (roomId: string) => void;
  onSelectSpace: (spaceId: string) => void;
  onCreateRoom: () => void;
  onCreateSubspace: () => void;
  onAddRooms: () => void;
  onInvite: () => void;
}

export function SpaceHome(props: Props) {
  const client = useClient();
  const { space } = props;
  const tick = useEmitterTick(client, [RoomEvent.MyMembership]);
  // The hierarchy of a sub-space being browsed, without leaving this space.
  const [path, setPath] = useState<{ id: string; name: string }[]>([]);
  const current = path[path.length - 1]?.id ?? space.roomId;
  const [joining, setJoining] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const hierarchy = useAsync(() => client.getRoomHierarchy(current, 100, 1), [current, tick > 0 ? Math.floor(tick / 5) : 0]);
  const canEdit = canSendState(client, space, EventType.SpaceChild);
  const topic = space.currentState.getStateEvents(EventType.RoomTopic, "")?.getContent().topic as string | undefined;

  const rooms = (hierarchy.value?.rooms ?? []).filter((r) => r.room_id !== current);
  const join = async (r: HierarchyRoom) => {
    setJoining(r.room_id);
    setError(null);
    try {
      // Servers to join through come from the parent's m.space.child event.
      const parent = hierarchy.value?.rooms.find((x) => x.room_id === current);
      const via = parent?.children_state.find((c) => c.state_key === r.room_id)?.content.via ?? [];
      await client.joinRoom(r.room_id, { viaServers: via });
      if (r.room_type === "m.space") props.onSelectSpace(r.room_id);
      else props.onOpen(r.room_id);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setJoining(null);
    }
  };

  return (
    <main class="main space-home" aria-labelledby="space-title">
      <header class="room-head">
        {props.narrow && (
          <button type="button" class="icon back" aria-label={t("nav.back")} onClick={props.onBack}>
            <Icon name="back" />
          </button>
        )}
        <Avatar id={space.roomId} name={space.name} mxc={space.getMxcAvatarUrl()} size={48} />
        <div class="room-title">
          <h1 id="space-title">{space.name}</h1>
          {topic && <p class="topic">{topic}</p>}
        </div>
      </header>
      <div class="space-tools">
        <button type="button" class="small" onClick={props.onInvite}>
          {t("room.invite")}
        </button>
        {canEdit && (
          <>
            <button type="button" class="small" onClick={props.onCreateRoom}>
              + {t("rooms.create")}
            </button>
            <button type="button" class="small" onClick={props.onCreateSubspace}>
              + {t("create.space.title")}
            </button>
            <button type="button" class="small" onClick={props.onAddRooms}>
              {t("space.addRooms")}
            </button>
          </>
        )}
      </div>
      <nav aria-label={t("space.browse")} class="breadcrumbs">
        <button type="button" class="link" onClick={() => setPath([])} aria-current={path.length === 0 ? "page" : undefined}>
          {space.name}
        </button>
        {path.map((p, i) => (
          <>
            {" › "}
            <button type="button" class="link" key={p.id} onClick={() => setPath(path.slice(0, i + 1))} aria-current={i === path.length - 1 ? "page" : undefined}>
              {p.name}
            </button>
          </>
        ))}
      </nav>
      <section class="hierarchy" aria-label={t("space.browse")}>
        {hierarchy.value === null && !hierarchy.error && <p class="muted">{t("app.loading")}</p>}
        {hierarchy.error !== null && <p class="error">{t("error.generic", { message: String((hierarchy.error as Error).message ?? hierarchy.error) })}</p>}
        {hierarchy.value && rooms.length === 0 && <p class="muted">{t("space.nothing")}</p>}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <ul class="cards">
          {rooms.map((r) => {
            const name = r.name ?? r.canonical_alias ?? r.room_id;
            const mine = client.getRoom(r.room_id)?.getMyMembership() === KnownMembership.Join;
            const isSpace = r.room_type === "m.space";
            return (
              <li class="card" key={r.room_id}>
                <Avatar id={r.room_id} name={name} mxc={r.avatar_url} size={40} />
                <div class="card-text">
                  <strong>{name}</strong>
                  {r.topic && <p class="muted">{r.topic}</p>}
                  <small class="muted">{r.num_joined_members === 1 ? t("space.member") : t("space.members", { count: r.num_joined_members })}</small>
                </div>
                <div class="card-actions">
                  {isSpace && (
                    <button type="button" class="small" onClick={() => setPath([...path, { id: r.room_id, name }])}>
                      {t("space.browse")}
                    </button>
                  )}
                  {mine ? (
                    <button type="button" class="small" onClick={() => (isSpace ? props.onSelectSpace(r.room_id) : props.onOpen(r.room_id))}>
                      {t("space.open")}
                    </button>
                  ) : (
                    <button type="button" class="small primary" disabled={joining === r.room_id} onClick={() => void join(r)} aria-label={t("directory.join", { name })}>
                      {t("space.join")}
                    </button>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      </section>
    </main>
  );
}
