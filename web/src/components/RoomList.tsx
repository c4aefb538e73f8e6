import {
  ClientEvent,
  EventType,
  KnownMembership,
  NotificationCountType,
  RoomEvent,
  RoomStateEvent,
  type MatrixClient,
  type Room,
} from "matrix-js-sdk";
import { useState } from "preact/hooks";
import { t } from "../i18n";
import { useClient, useEmitterTick } from "../hooks";
import { acceptInvite, canSendState, directRoomIds, isDirect, isJoinedOrInvited, spaceChildren, type SpaceChild } from "../matrix";
import { Avatar, Badge, Dialog } from "./common";
import { Icon } from "./icons";
import { CallPresence, isVoiceChannel } from "../calls/presence";
import { CallIcon } from "./callIcons";

interface Props {
  spaceId: string | null;
  selected: string | null;
  onSelect: (roomId: string) => void;
  onSelectSpace: (spaceId: string) => void;
  onSpaceHome: () => void;
  onCreateRoom: () => void;
  onStartChat: () => void;
  onAddRooms: (() => void) | undefined;
  synced: boolean;
}

/** Arrow keys move focus between the buttons of a list (roving focus). */
export function moveFocus(e: KeyboardEvent): void {
  if (e.key !== "ArrowDown" && e.key !== "ArrowUp" && e.key !== "Home" && e.key !== "End") return;
  const list = e.currentTarget as HTMLElement;
  const items = Array.from(list.querySelectorAll<HTMLElement>("[data-nav]"));
  if (items.length === 0) return;
  const i = items.indexOf(document.activeElement as HTMLElement);
  let next = i;
  if (e.key === "ArrowDown") next = i < 0 ? 0 : Math.min(items.length - 1, i + 1);
  else if (e.key === "ArrowUp") next = i < 0 ? 0 : Math.max(0, i - 1);
  else if (e.key === "Home") next = 0;
  else next = items.length - 1;
  items[next]?.focus();
  e.preventDefault();
}

function byActivity(a: Room, b: Room): number {
  return b.getLastActiveTimestamp() - a.getLastActiveTimestamp();
}

/** Orders for a list of children, rewritten after a move (order keys of § Spaces). */
function reorderKeys(kids: SpaceChild[], from: number, to: number): Map<string, string> {
  const ids = kids.map((k) => k.roomId);
  const [moved] = ids.splice(from, 1);
  if (moved === undefined) return new Map();
  ids.splice(to, 0, moved);
  const out = new Map<string, string>();
  ids.forEach((id, i) => {
    const order = `a${i.toString(36).padStart(4, "0")}`;
    const kid = kids.find((k) => k.roomId === id);
    if (kid && kid.order !== order) out.set(id, order);
  });
  return out;
}

async function moveChild(client: MatrixClient, space: Room, kids: SpaceChild[], from: number, to: number): Promise<void> {
  for (const [roomId, order] of reorderKeys(kids, from, to)) {
    const kid = kids.find((k) => k.roomId === roomId);
    const content = { ...(kid?.event.getContent() ?? {}), order };
    await client.sendStateEvent(space.roomId, EventType.SpaceChild, content, roomId);
  }
}

function RoomItem(props: {
  room: Room;
  selected: boolean;
  onSelect: () => void;
  reorder?: { up: (() => void) | null; down: (() => void) | null; remove: () => void } | undefined;
}) {
  const client = useClient();
  const r = props.room;
  const total = r.getUnreadNotificationCount(NotificationCountType.Total);
  const highlight = r.getUnreadNotificationCount(NotificationCountType.Highlight);
  const invited = r.getMyMembership() === KnownMembership.Invite;
  const name = r.name || t("rooms.empty");
  // The badge is drawn; screen readers hear the count in words after the name.
  let unread = "";
  if (highlight > 0) unread = `, ${t("rooms.mentions", { count: highlight })}`;
  else if (total > 0) unread = `, ${t("rooms.unread", { count: total })}`;
  const voice = isVoiceChannel(r);
  const [confirmRemove, setConfirmRemove] = useState(false);
  const inviter = invited ? r.getDMInviter() ?? r.currentState.getMember(client.getUserId() ?? "")?.events.member?.getSender() : undefined;

  return (
    <li class={`room-item${props.selected ? " selected" : ""}${total > 0 ? " unread" : ""}`}>
      <button
        type="button"
        class="room-button"
        data-nav
        data-room-id={r.roomId}
        aria-current={props.selected ? "page" : undefined}
        onClick={props.onSelect}
      >
        <Avatar id={r.roomId} name={name} mxc={r.getMxcAvatarUrl()} />
        {voice && (
          <span class="voice-icon" title={t("call.voiceChannel")}>
            <CallIcon name="voice" size={16} />
            <span class="visually-hidden">{t("call.voiceChannel")}: </span>
          </span>
        )}
        <span class="room-name">
          {name}
          {invited && inviter && <small class="muted">{t("rooms.invitedBy", { user: inviter })}</small>}
          {unread && <span class="visually-hidden">{unread}</span>}
        </span>
        <Badge count={highlight > 0 ? highlight : total} highlight={highlight > 0} />
      </button>
      {voice && !invited && <CallPresence room={r} />}
      {invited && (
        <span class="invite-actions">
          <button type="button" class="small primary" onClick={() => void acceptInvite(client, r).then(props.onSelect)}>
            {t("rooms.accept")}
          </button>
          <button type="button" class="small" onClick={() => void client.leave(r.roomId)}>
            {t("rooms.decline")}
          </button>
        </span>
      )}
      {props.reorder && (
        <span class="reorder">
          <button type="button" class="icon small" aria-label={t("space.moveUp", { name })} disabled={!props.reorder.up} onClick={props.reorder.up ?? undefined}>
            <Icon name="up" />
          </button>
          <button type="button" class="icon small" aria-label={t("space.moveDown", { name })} disabled={!props.reorder.down} onClick={props.reorder.down ?? undefined}>
            <Icon name="down" />
          </button>
          <button type="button" class="icon small" aria-label={t("space.remove", { name })} onClick={() => setConfirmRemove(true)}>
            <Icon name="close" />
          </button>
        </span>
      )}
      {confirmRemove && props.reorder && (
        <Dialog id="remove-from-space" title={t("space.removeTitle")} onClose={() => setConfirmRemove(false)}>
          <p>{t("space.removeConfirm", { name })}</p>
          <div class="dialog-actions">
            <button
              type="button"
              class="danger"
              onClick={() => {
                setConfirmRemove(false);
                props.reorder?.remove();
              }}
            >
              {t("space.removeYes")}
            </button>
            <button type="button" onClick={() => setConfirmRemove(false)}>
              {t("dialog.cancel")}
            </button>
          </div>
        </Dialog>
      )}
    </li>
  );
}

export function RoomList(props: Props) {
  const client = useClient();
  useEmitterTick(client, [
    ClientEvent.Room,
    ClientEvent.DeleteRoom,
    ClientEvent.AccountData,
    RoomEvent.MyMembership,
    RoomEvent.Name,
    RoomEvent.Timeline,
    RoomEvent.UnreadNotifications,
    RoomEvent.Receipt,
    RoomStateEvent.Events,
  ]);
  const [filter, setFilter] = useState("");
  const rooms = client.getRooms().filter(isJoinedOrInvited);
  const byId = new Map(rooms.map((r) => [r.roomId, r]));
  const direct = directRoomIds(client);
  const space = props.spaceId ? byId.get(props.spaceId) ?? null : null;
  const f = filter.trim().toLowerCase();
  const matches = (r: Room) => !f || r.name.toLowerCase().includes(f);

  const invites = rooms.filter((r) => r.getMyMembership() === KnownMembership.Invite && !r.isSpaceRoom() && matches(r)).sort(byActivity);
  const joined = rooms.filter((r) => r.getMyMembership() === KnownMembership.Join);
  const dms = joined.filter((r) => !r.isSpaceRoom() && isDirect(client, r, direct) && matches(r)).sort(byActivity);

  let spaceKids: SpaceChild[] = [];
  let list: Room[];
  let subspaces: Room[] = [];
  const canEdit = space ? canSendState(client, space, EventType.SpaceChild) : false;
  if (space) {
    spaceKids = spaceChildren(space);
    list = spaceKids.map((k) => byId.get(k.roomId)).filter((r): r is Room => !!r && r.getMyMembership() === KnownMembership.Join && !r.isSpaceRoom() && matches(r));
    subspaces = spaceKids.map((k) => byId.get(k.roomId)).filter((r): r is Room => !!r && r.isSpaceRoom() && r.getMyMembership() === KnownMembership.Join);
  } else {
    list = joined.filter((r) => !r.isSpaceRoom() && !isDirect(client, r, direct) && matches(r)).sort(byActivity);
  }
  const kidIndex = (id: string) => spaceKids.findIndex((k) => k.roomId === id);

  return (
    <nav id="room-list" class="room-list" aria-label={space ? space.name : t("nav.home")}>
      <header class="list-head">
        <h1 class="list-title">{space ? space.name : t("nav.home")}</h1>
        {space && (
          <button type="button" class="small" onClick={props.onSpaceHome}>
            {t("space.browse")}
          </button>
        )}
      </header>
      <div class="list-tools">
        <label class="filter">
          <span class="visually-hidden">{t("rooms.filter")}</span>
          <input type="search" placeholder={t("rooms.filter")} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </label>
        <button type="button" class="small" onClick={props.onCreateRoom}>
          + {t("rooms.create")}
        </button>
        {props.onAddRooms && canEdit && (
          <button type="button" class="small" onClick={props.onAddRooms}>
            {t("space.addRooms")}
          </button>
        )}
      </div>
      <div class="list-scroll" onKeyDown={moveFocus}>
        {invites.length > 0 && (
          <section aria-labelledby="list-invites">
            <h2 id="list-invites" class="list-section">
              {t("rooms.invites")}
            </h2>
            <ul>
              {invites.map((r) => (
                <RoomItem key={r.roomId} room={r} selected={props.selected === r.roomId} onSelect={() => props.onSelect(r.roomId)} />
              ))}
            </ul>
          </section>
        )}
        <section aria-labelledby="list-rooms">
          <h2 id="list-rooms" class="list-section">
            {t("rooms.title")}
          </h2>
          {list.length === 0 && props.synced && <p class="muted pad">{t("rooms.none")}</p>}
          <ul>
            {list.map((r) => {
              const i = kidIndex(r.roomId);
              const reorder =
                space && canEdit && i >= 0 && !f
                  ? {
                      up: i > 0 ? () => void moveChild(client, space, spaceKids, i, i - 1) : null,
                      down: i < spaceKids.length - 1 ? () => void moveChild(client, space, spaceKids, i, i + 1) : null,
                      remove: () => void client.sendStateEvent(space.roomId, EventType.SpaceChild, {}, r.roomId),
                    }
                  : undefined;
              return <RoomItem key={r.roomId} room={r} selected={props.selected === r.roomId} onSelect={() => props.onSelect(r.roomId)} reorder={reorder} />;
            })}
          </ul>
        </section>
        {subspaces.length > 0 && (
          <section aria-labelledby="list-subspaces">
            <h2 id="list-subspaces" class="list-section">
              {t("rooms.subspaces")}
            </h2>
            <ul>
              {subspaces.map((s) => (
                <li class="room-item" key={s.roomId}>
                  <button type="button" class="room-button" data-nav onClick={() => props.onSelectSpace(s.roomId)}>
                    <Avatar id={s.roomId} name={s.name} mxc={s.getMxcAvatarUrl()} />
                    <span class="room-name">{s.name}</span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        )}
        <section aria-labelledby="list-people">
          <h2 id="list-people" class="list-section">
            {t("rooms.people")}
            <button type="button" class="icon small" aria-label={t("rooms.startChat")} title={t("rooms.startChat")} onClick={props.onStartChat}>
              <Icon name="plus" />
            </button>
          </h2>
          <ul>
            {dms.map((r) => (
              <RoomItem key={r.roomId} room={r} selected={props.selected === r.roomId} onSelect={() => props.onSelect(r.roomId)} />
            ))}
          </ul>
        </section>
      </div>
    </nav>
  );
}
