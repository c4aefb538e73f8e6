import { KnownMembership, RoomMemberEvent, RoomStateEvent, UserEvent, type MatrixClient, type Room, type RoomMember } from "matrix-js-sdk";
import { useEffect } from "preact/hooks";
import { t } from "../i18n";
import { useClient, useEmitterTick } from "../hooks";
import { Avatar } from "./common";
import { moveFocus } from "./RoomList";
import { Icon } from "./icons";

type Presence = "online" | "unavailable" | "offline";

/** What the server's presence (in /sync) says of a user; offline when it says nothing. */
function presenceOf(client: MatrixClient, userId: string): Presence {
  const p = client.getUser(userId)?.presence;
  return p === "online" || p === "unavailable" ? p : "offline";
}

const presenceRank: Record<Presence, number> = { online: 0, unavailable: 1, offline: 2 };

function MemberRow(props: { m: RoomMember; presence: Presence }) {
  const label = t(`presence.${props.presence}`);
  return (
    <li class="member" tabIndex={-1} data-nav data-user-id={props.m.userId} data-presence={props.presence}>
      <span class="member-avatar">
        <Avatar id={props.m.userId} name={props.m.name} mxc={props.m.getMxcAvatarUrl()} />
        <span class={`presence-dot ${props.presence}`} title={label} aria-hidden="true" />
      </span>
      <span class="member-name">
        {props.m.name}
        <span class="visually-hidden">, {label}</span>
        <small class="muted">{props.m.userId}</small>
      </span>
      {props.m.powerLevel >= 100 ? <small class="muted">admin</small> : props.m.powerLevel >= 50 ? <small class="muted">mod</small> : null}
    </li>
  );
}

export function MembersPanel(props: { room: Room; onClose: () => void; onInvite: () => void }) {
  const client = useClient();
  useEmitterTick(client, [RoomStateEvent.Members, RoomStateEvent.NewMember, RoomMemberEvent.Membership, RoomMemberEvent.Name, UserEvent.Presence]);
  useEffect(() => {
    void props.room.loadMembersIfNeeded().catch(() => undefined);
  }, [props.room]);
  const presence = (m: RoomMember) => presenceOf(client, m.userId);
  const byName = (a: RoomMember, b: RoomMember) => b.powerLevel - a.powerLevel || presenceRank[presence(a)] - presenceRank[presence(b)] || a.name.localeCompare(b.name);
  const joined = props.room.getMembersWithMembership(KnownMembership.Join).sort(byName);
  const invited = props.room.getMembersWithMembership(KnownMembership.Invite).sort(byName);
  return (
    <aside class="members-panel" aria-labelledby="members-title">
      <header class="panel-head">
        <h2 id="members-title">{t("room.members")}</h2>
        <button type="button" class="icon" aria-label={t("room.hideMembers")} onClick={props.onClose}>
          <Icon name="close" />
        </button>
      </header>
      <button type="button" class="small primary" onClick={props.onInvite}>
        {t("room.invite")}
      </button>
      <div class="panel-scroll" onKeyDown={moveFocus}>
        <h3 class="list-section">
          {t("members.joined")} ({joined.length})
        </h3>
        <ul>
          {joined.map((m) => (
            <MemberRow key={m.userId} m={m} presence={presence(m)} />
          ))}
        </ul>
        {invited.length > 0 && (
          <>
            <h3 class="list-section">
              {t("members.invited")} ({invited.length})
            </h3>
            <ul>
              {invited.map((m) => (
                <MemberRow key={m.userId} m={m} presence={presence(m)} />
              ))}
            </ul>
          </>
        )}
      </div>
    </aside>
  );
}
