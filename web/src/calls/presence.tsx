// Who is in a room's call, from its MatrixRTC memberships (the
// org.matrix.msc3401.call.member state events), known before joining:
// "3 in call" in the room header, the names under a voice channel in the
// room list. No media library here, so the room list stays light.
import type { Room } from "matrix-js-sdk";
import { MatrixRTCSessionEvent, type CallMembership, type MatrixRTCSession } from "matrix-js-sdk/lib/matrixrtc";
import { useClient, useEmitterTick } from "../hooks";
import { t } from "../i18n";
import { displayName } from "../matrix";

/** Voice channels: rooms created with type org.matrix.msc3417.call (MSC3417). */
export const VoiceChannelType = "org.matrix.msc3417.call";

export function isVoiceChannel(room: Room): boolean {
  return room.getType() === VoiceChannelType;
}

export function useRtcSession(room: Room): MatrixRTCSession {
  const client = useClient();
  const session = client.matrixRTC.getRoomSession(room);
  useEmitterTick(session as never, [MatrixRTCSessionEvent.MembershipsChanged, MatrixRTCSessionEvent.JoinStateChanged]);
  return session;
}

/** The call's memberships, one per device, live ones only. */
export function liveMemberships(session: MatrixRTCSession): CallMembership[] {
  return session.memberships.filter((m) => !m.isExpired());
}

/** The users in the call, each once, in the order they joined. */
export function callUsers(session: MatrixRTCSession): string[] {
  const seen: string[] = [];
  for (const m of liveMemberships(session)) if (!seen.includes(m.sender)) seen.push(m.sender);
  return seen;
}

/** "3 in call" under a voice channel in the room list, with the names. */
export function CallPresence(props: { room: Room }) {
  const session = useRtcSession(props.room);
  const users = callUsers(session);
  if (users.length === 0) return null;
  return (
    <div class="call-presence" aria-label={t("call.inCall", { count: users.length })}>
      <span class="call-count">{t("call.inCall", { count: users.length })}</span>
      <ul>
        {users.map((u) => (
          <li key={u}>{displayName(props.room, u)}</li>
        ))}
      </ul>
    </div>
  );
}
