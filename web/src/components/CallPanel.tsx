// The light side of group calls, in the main bundle: the room header's
// call button with "3 in call", the panel that loads the call view (and
// livekit-client) on first use, and the bar that shows an ongoing call
// while another room is open.
import type { Room } from "matrix-js-sdk";
import { useEffect, useState } from "preact/hooks";
import { useClient } from "../hooks";
import { t } from "../i18n";
import { currentCall, onCurrentCallChange, setCurrentCall } from "../calls/current";
import { callUsers, useRtcSession } from "../calls/presence";
import { CallIcon } from "./callIcons";

type CallModule = typeof import("./GroupCall");
let loading: Promise<CallModule> | null = null;

export function CallButton(props: { room: Room; open: boolean; onToggle: () => void }) {
  const session = useRtcSession(props.room);
  const n = callUsers(session).length;
  // The accessible name contains the visible text (WCAG "label in name").
  const label = n > 0 ? `${t("call.title")}: ${t("call.inCall", { count: n })}` : t("call.start");
  return (
    <button type="button" class={`small call-button${n > 0 ? " active" : ""}`} aria-pressed={props.open} aria-label={label} title={label} onClick={props.onToggle}>
      <CallIcon name="call" size={16} />
      <span class={n > 0 ? "" : "call-button-text"}>{n > 0 ? t("call.inCall", { count: n }) : t("call.title")}</span>
    </button>
  );
}

export function CallPanel(props: { room: Room; voiceChannel: boolean; onClose: () => void }) {
  const [mod, setMod] = useState<CallModule | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    loading ??= import("./GroupCall");
    loading.then(
      (m) => alive && setMod(m),
      (err: unknown) => {
        loading = null;
        if (alive) setError(String(err));
      },
    );
    return () => {
      alive = false;
    };
  }, []);
  if (error) {
    return (
      <section class="call lobby">
        <p class="error" role="alert">
          {t("call.failed.other", { message: error })}
        </p>
      </section>
    );
  }
  if (!mod) {
    return (
      <section class="call lobby" aria-busy="true">
        <p class="muted">{t("app.loading")}</p>
      </section>
    );
  }
  return <mod.GroupCallView room={props.room} voiceChannel={props.voiceChannel} onClose={props.onClose} />;
}

export function useCurrentCallRoom(): Room | null {
  const [, setTick] = useState(0);
  useEffect(() => onCurrentCallChange(() => setTick((n) => n + 1)), []);
  return currentCall()?.room ?? null;
}

/** "In a call in X": shown while the person reads another room. */
export function OngoingCallBar(props: { openRoomId: string | null; onOpen: (roomId: string) => void }) {
  const client = useClient();
  const room = useCurrentCallRoom();
  if (!room || room.roomId === props.openRoomId || client.getRoom(room.roomId) !== room) return null;
  const name = room.name || room.roomId;
  return (
    <div class="call-ongoing" role="region" aria-label={t("call.ongoing", { room: name })}>
      <CallIcon name="call" size={16} />
      <span>{t("call.ongoing", { room: name })}</span>
      <button type="button" class="small" onClick={() => props.onOpen(room.roomId)}>
        {t("call.return")}
      </button>
      <button type="button" class="small danger" onClick={() => void setCurrentCall(null)}>
        {t("call.leave")}
      </button>
    </div>
  );
}
