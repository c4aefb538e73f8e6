import { ClientEvent, NotificationCountType, RoomEvent, RoomStateEvent, type Room } from "matrix-js-sdk";
import { t } from "../i18n";
import { useClient, useEmitterTick } from "../hooks";
import { isJoinedOrInvited, spaceChildren } from "../matrix";
import type { Session } from "../session";
import { Avatar } from "./common";
import { moveFocus } from "./RoomList";
import { Icon } from "./icons";

interface Props {
  session: Session;
  selected: string | null;
  onSelect: (spaceId: string | null) => void;
  onCreateSpace: () => void;
  onExplore: () => void;
  onSettings: () => void;
}

/** Joined spaces that no other joined space lists as a child. */
export function topLevelSpaces(rooms: Room[]): Room[] {
  const spaces = rooms.filter((r) => r.isSpaceRoom() && isJoinedOrInvited(r));
  const children = new Set<string>();
  for (const s of spaces) for (const c of spaceChildren(s)) children.add(c.roomId);
  return spaces.filter((s) => !children.has(s.roomId));
}

function spaceHasUnread(space: Room, byId: Map<string, Room>): { count: number; highlight: boolean } {
  let count = 0;
  let highlight = false;
  for (const c of spaceChildren(space)) {
    const r = byId.get(c.roomId);
    if (!r || r.isSpaceRoom()) continue;
    count += r.getUnreadNotificationCount(NotificationCountType.Total);
    highlight ||= r.getUnreadNotificationCount(NotificationCountType.Highlight) > 0;
  }
  return { count, highlight };
}

export function SpacesBar(props: Props) {
  const client = useClient();
  useEmitterTick(client, [ClientEvent.Room, ClientEvent.DeleteRoom, RoomEvent.MyMembership, RoomEvent.Name, RoomStateEvent.Events, RoomEvent.UnreadNotifications]);
  const rooms = client.getRooms();
  const byId = new Map(rooms.map((r) => [r.roomId, r]));
  const spaces = topLevelSpaces(rooms);
  const me = client.getUser(props.session.userId);
  const myName = me?.displayName || props.session.userId;

  return (
    <nav class="spaces-bar" aria-label={t("nav.spaces")}>
      <ul class="spaces" onKeyDown={moveFocus}>
        <li>
          <button
            type="button"
            class={`space-button${props.selected === null ? " selected" : ""}`}
            aria-current={props.selected === null ? "page" : undefined}
            aria-label={t("nav.home")}
            title={t("nav.home")}
            onClick={() => props.onSelect(null)}
          >
            <span class="avatar home" aria-hidden="true">
              <Icon name="home" />
            </span>
          </button>
        </li>
        {spaces.map((s) => {
          const u = spaceHasUnread(s, byId);
          const label = u.count > 0 ? `${s.name} (${t("rooms.unread", { count: u.count })})` : s.name;
          return (
            <li key={s.roomId}>
              <button
                type="button"
                class={`space-button${props.selected === s.roomId ? " selected" : ""}`}
                aria-current={props.selected === s.roomId ? "page" : undefined}
                aria-label={label}
                title={s.name}
                data-space-id={s.roomId}
                onClick={() => props.onSelect(s.roomId)}
              >
                <Avatar id={s.roomId} name={s.name} mxc={s.getMxcAvatarUrl()} size={36} />
                {u.count > 0 && <span class={`dot${u.highlight ? " highlight" : ""}`} aria-hidden="true" />}
              </button>
            </li>
          );
        })}
        <li>
          <button type="button" class="space-button add" aria-label={t("nav.createSpace")} title={t("nav.createSpace")} onClick={props.onCreateSpace}>
            <span class="avatar plain" aria-hidden="true">
              <Icon name="plus" />
            </span>
          </button>
        </li>
        <li>
          <button type="button" class="space-button" aria-label={t("nav.explore")} title={t("nav.explore")} onClick={props.onExplore}>
            <span class="avatar plain" aria-hidden="true">
              <Icon name="search" />
            </span>
          </button>
        </li>
      </ul>
      <button
        type="button"
        class="space-button me"
        aria-label={t("settings.userMenu", { user: props.session.userId })}
        title={props.session.userId}
        data-user-id={props.session.userId}
        onClick={props.onSettings}
      >
        <Avatar id={props.session.userId} name={myName} mxc={me?.avatarUrl} size={36} />
      </button>
    </nav>
  );
}
