// A room's settings: name, topic, who may join (m.room.join_rules), who
// may read the history (m.room.history_visibility), the members' roles
// (m.room.power_levels: member, moderator, admin) and the person's own
// notifications for it (mute, a push rule). Fields the person's power
// level does not allow are shown disabled.
import { EventType, KnownMembership, type Room } from "matrix-js-sdk";
import { useState } from "preact/hooks";
import { t } from "../i18n";
import { useClient } from "../hooks";
import { canSendState } from "../matrix";
import { isRoomMuted, setRoomMuted } from "../notify";
import { Dialog } from "./common";
import { errText } from "./Dialogs";
import { AvatarPicker } from "./SettingsSections";

const joinRules = ["invite", "public", "knock", "restricted"] as const;
const visibilities = ["shared", "invited", "joined", "world_readable"] as const;

const roles = [
  { level: 0, key: "roomSettings.role.member" },
  { level: 50, key: "roomSettings.role.moderator" },
  { level: 100, key: "roomSettings.role.admin" },
] as const;

function stateContent(room: Room, type: string): Record<string, unknown> {
  return (room.currentState.getStateEvents(type, "")?.getContent() ?? {}) as Record<string, unknown>;
}

export function RoomSettingsDialog(props: { roomId: string; onClose: () => void }) {
  const client = useClient();
  const room = client.getRoom(props.roomId);
  const initial = room
    ? {
        name: String(stateContent(room, EventType.RoomName).name ?? ""),
        topic: String(stateContent(room, EventType.RoomTopic).topic ?? ""),
        joinRule: String(stateContent(room, EventType.RoomJoinRules).join_rule ?? "invite"),
        history: String(stateContent(room, EventType.RoomHistoryVisibility).history_visibility ?? "shared"),
        muted: isRoomMuted(client, room.roomId),
        levels: Object.fromEntries(room.getMembersWithMembership(KnownMembership.Join).map((m) => [m.userId, m.powerLevel])) as Record<string, number>,
      }
    : null;
  const [v, setV] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!room || !v || !initial) return null;
  const may = (type: string) => canSendState(client, room, type);
  const set = (patch: Partial<typeof v>) => setV({ ...v, ...patch });

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (v.name !== initial.name) await client.setRoomName(room.roomId, v.name);
      if (v.topic !== initial.topic) await client.setRoomTopic(room.roomId, v.topic);
      if (v.joinRule !== initial.joinRule) {
        // A restricted rule keeps its allow list.
        const content = { ...stateContent(room, EventType.RoomJoinRules), join_rule: v.joinRule };
        await client.sendStateEvent(room.roomId, EventType.RoomJoinRules, content as never, "");
      }
      if (v.history !== initial.history) {
        await client.sendStateEvent(room.roomId, EventType.RoomHistoryVisibility, { history_visibility: v.history } as never, "");
      }
      const changed = Object.entries(v.levels).filter(([u, l]) => initial.levels[u] !== l);
      if (changed.length > 0) {
        const pl = stateContent(room, EventType.RoomPowerLevels);
        const users = { ...((pl.users ?? {}) as Record<string, number>) };
        const usersDefault = typeof pl.users_default === "number" ? pl.users_default : 0;
        for (const [u, l] of changed) {
          if (l === usersDefault) delete users[u];
          else users[u] = l;
        }
        await client.sendStateEvent(room.roomId, EventType.RoomPowerLevels, { ...pl, users } as never, "");
      }
      if (v.muted !== initial.muted) await setRoomMuted(client, room.roomId, v.muted);
      props.onClose();
    } catch (err) {
      setError(errText(err));
      setBusy(false);
    }
  };

  return (
    <Dialog title={t("roomSettings.title", { name: room.name })} onClose={props.onClose} id="room-settings">
      <form class="form" onSubmit={submit}>
        <AvatarPicker
          label={t("roomSettings.avatar")}
          id={room.roomId}
          name={room.name}
          mxc={room.getMxcAvatarUrl()}
          disabled={!may(EventType.RoomAvatar)}
          onUploaded={(url) => client.sendStateEvent(room.roomId, EventType.RoomAvatar, { url } as never, "")}
        />
        <label>
          {t("roomSettings.name")}
          <input name="name" value={v.name} disabled={!may(EventType.RoomName)} onInput={(e) => set({ name: e.currentTarget.value })} />
        </label>
        <label>
          {t("roomSettings.topic")}
          <textarea name="topic" rows={3} value={v.topic} disabled={!may(EventType.RoomTopic)} onInput={(e) => set({ topic: e.currentTarget.value })} />
        </label>
        <label>
          {t("roomSettings.joinRule")}
          <select name="join_rule" value={v.joinRule} disabled={!may(EventType.RoomJoinRules)} onChange={(e) => set({ joinRule: e.currentTarget.value })}>
            {joinRules
              .filter((r) => r !== "restricted" || initial.joinRule === "restricted")
              .map((r) => (
                <option key={r} value={r}>
                  {t(`roomSettings.join.${r}`)}
                </option>
              ))}
          </select>
        </label>
        <label>
          {t("roomSettings.history")}
          <select name="history_visibility" value={v.history} disabled={!may(EventType.RoomHistoryVisibility)} onChange={(e) => set({ history: e.currentTarget.value })}>
            {visibilities.map((h) => (
              <option key={h} value={h}>
                {t(`roomSettings.history.${h}`)}
              </option>
            ))}
          </select>
        </label>
        <fieldset class="roles">
          <legend>{t("roomSettings.roles")}</legend>
          {room
            .getMembersWithMembership(KnownMembership.Join)
            .sort((a, b) => b.powerLevel - a.powerLevel || a.name.localeCompare(b.name))
            .map((m) => {
              const mine = room.getMember(client.getUserId() ?? "")?.powerLevel ?? 0;
              const level = v.levels[m.userId] ?? m.powerLevel;
              // Only someone with more power (or oneself, downwards) may change a level.
              const editable = may(EventType.RoomPowerLevels) && (m.powerLevel < mine || m.userId === client.getUserId());
              return (
                <label key={m.userId} class="role-row">
                  <span>
                    {m.name} <small class="muted">{m.userId}</small>
                  </span>
                  <select
                    name={`role-${m.userId}`}
                    value={String(level)}
                    disabled={!editable}
                    onChange={(e) => set({ levels: { ...v.levels, [m.userId]: Number(e.currentTarget.value) } })}
                  >
                    {roles
                      .filter((r) => r.level <= mine || r.level === level)
                      .map((r) => (
                        <option key={r.level} value={String(r.level)}>
                          {t(r.key)}
                        </option>
                      ))}
                    {!roles.some((r) => r.level === level) && <option value={String(level)}>{String(level)}</option>}
                  </select>
                </label>
              );
            })}
        </fieldset>
        <label class="radio">
          <input type="checkbox" name="muted" checked={v.muted} onChange={(e) => set({ muted: e.currentTarget.checked })} />
          {t("room.mute")}
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={props.onClose}>
            {t("dialog.cancel")}
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {t("dialog.save")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
