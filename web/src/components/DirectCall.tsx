// The views of one-to-one calls (src/calls/direct.ts): the call buttons of
// a two-person room's header, the banner of an incoming call (shown over
// whatever room is open), and the call itself: the other person's video
// large, our camera small, microphone, camera and hang-up controls, and
// the call's state.
import type { Room } from "matrix-js-sdk";
import type { MatrixCall } from "matrix-js-sdk/lib/webrtc/call";
import { useEffect, useRef } from "preact/hooks";
import { callPartner, closeDirectCalls, directCallsFor, phaseOf, type DirectCalls, type EndReason } from "../calls/direct";
import { t, type MessageKey } from "../i18n";
import { useClient, useEmitterTick } from "../hooks";
import { displayName } from "../matrix";
import { CallIcon } from "./callIcons";
import { Avatar } from "./common";
import { MenuButton } from "./Menu";
import "../calls/direct.css";

/** The client's call store; re-renders the component when it changes. */
function useDirectCalls(): DirectCalls {
  const calls = directCallsFor(useClient());
  useEmitterTick(calls, ["change"]);
  return calls;
}

/**
 * The one call control of a two-person room's header: a "Call" menu button
 * offering a voice or a video call, and the room's group call (which has
 * screen sharing and teaching mode) through onGroupCall. Null in any other
 * room (the group call's button is the one there).
 */
export function DirectCallButtons(props: { room: Room; onGroupCall?: () => void }) {
  const client = useClient();
  const calls = useDirectCalls();
  if (!client.supportsVoip() || !callPartner(client, props.room)) return null;
  return (
    <MenuButton
      label={t("dmcall.call")}
      class="dmcall-menu"
      buttonClass="small dmcall-start"
      disabled={calls.busy()}
      icon={
        <>
          <CallIcon name="call" size={16} />
          <span class="call-button-text">{t("dmcall.call")}</span>
        </>
      }
      items={[
        { label: t("dmcall.voice"), onSelect: () => void calls.place(props.room, false) },
        { label: t("dmcall.video"), onSelect: () => void calls.place(props.room, true) },
        ...(props.onGroupCall ? [{ label: t("dmcall.group"), onSelect: props.onGroupCall }] : []),
      ]}
    />
  );
}

/** Whether a room's header offers direct calls (a two-person room). */
export function hasDirectCalls(client: ReturnType<typeof useClient>, room: Room): boolean {
  return client.supportsVoip() && callPartner(client, room) !== null;
}

/** A <video> showing a MediaStream (srcObject cannot be set from markup). */
function StreamVideo(props: { stream: MediaStream | undefined; muted: boolean; class: string; label: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const v = ref.current;
    if (!v) return;
    v.muted = props.muted;
    if (v.srcObject !== (props.stream ?? null)) v.srcObject = props.stream ?? null;
    if (props.stream) void v.play().catch(() => undefined);
  }, [props.stream, props.muted]);
  return <video ref={ref} class={props.class} autoplay playsInline aria-label={props.label} />;
}

function partnerName(calls: DirectCalls, call: MatrixCall): { id: string; name: string; room: Room | null } {
  const room = calls.client.getRoom(call.roomId);
  const id = calls.partnerOf(call) ?? "";
  return { id, name: id ? displayName(room, id) : t("rooms.empty"), room };
}

function duration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

const endMessages: Record<EndReason, MessageKey> = {
  hangup: "dmcall.ended",
  declined: "dmcall.endedDeclined",
  noAnswer: "dmcall.endedNoAnswer",
  busy: "dmcall.endedBusy",
  failed: "dmcall.endedFailed",
  lost: "dmcall.endedLost",
  noMedia: "dmcall.endedNoMedia",
  elsewhere: "dmcall.endedElsewhere",
};

function statusText(calls: DirectCalls, call: MatrixCall, name: string): string {
  switch (phaseOf(call)) {
    case "calling":
      return t("dmcall.calling", { name });
    case "ringing":
      return t("dmcall.ringing");
    case "connecting":
      return t("dmcall.connecting");
    case "connected":
      return call.isRemoteOnHold() ? t("dmcall.onHold") : t("dmcall.connected", { time: duration(calls.lengthOf(call)) });
    case "ended":
      return t(endMessages[calls.endReason(call)]);
  }
}

function IncomingCall(props: { calls: DirectCalls; call: MatrixCall }) {
  const { calls, call } = props;
  const who = partnerName(calls, call);
  const video = calls.isVideo(call);
  return (
    <section class="dmcall-incoming" aria-labelledby="dmcall-incoming-title">
      <Avatar id={who.id} name={who.name} mxc={who.room?.getMember(who.id)?.getMxcAvatarUrl()} size={40} />
      <div class="dmcall-incoming-text" role="alert">
        <h2 id="dmcall-incoming-title">
          {video ? t("dmcall.incomingVideo", { name: who.name }) : t("dmcall.incomingVoice", { name: who.name })}
        </h2>
        {who.room && who.room.name !== who.name && <p>{who.room.name}</p>}
      </div>
      <div class="dmcall-incoming-actions">
        <button type="button" class="primary" onClick={() => void calls.accept()}>
          {t("dmcall.accept")}
        </button>
        <button type="button" class="danger" onClick={() => calls.decline()}>
          {t("dmcall.decline")}
        </button>
      </div>
    </section>
  );
}

function CallView(props: { calls: DirectCalls; call: MatrixCall }) {
  const { calls, call } = props;
  const who = partnerName(calls, call);
  const phase = phaseOf(call);
  const ended = phase === "ended";
  const remote = call.remoteUsermediaStream;
  const local = call.localUsermediaStream;
  const remoteVideo = !ended && call.hasRemoteUserMediaVideoTrack && !call.remoteUsermediaFeed?.isVideoMuted();
  const localVideo = !ended && call.hasLocalUserMediaVideoTrack && !call.isLocalVideoMuted();
  const micMuted = call.isMicrophoneMuted();
  const cameraOff = call.isLocalVideoMuted();
  const hangupRef = useRef<HTMLButtonElement>(null);
  const closeRef = useRef<HTMLButtonElement>(null);

  // The call covers the page: keyboard focus goes to its main control.
  useEffect(() => {
    (ended ? closeRef.current : hangupRef.current)?.focus();
  }, [ended]);

  return (
    <section class={`dmcall phase-${phase}`} aria-labelledby="dmcall-title" data-call-id={call.callId}>
      <h2 id="dmcall-title" class="dmcall-title">
        {t("dmcall.with", { name: who.name })}
      </h2>
      <div class="dmcall-stage">
        <StreamVideo stream={ended ? undefined : remote} muted={false} class={`dmcall-remote${remoteVideo ? "" : " hidden"}`} label={t("dmcall.remoteVideo", { name: who.name })} />
        {!remoteVideo && (
          <div class="dmcall-avatar">
            <Avatar id={who.id} name={who.name} mxc={who.room?.getMember(who.id)?.getMxcAvatarUrl()} size={96} />
          </div>
        )}
        {localVideo && <StreamVideo stream={local} muted class="dmcall-local" label={t("dmcall.localVideo")} />}
      </div>
      <p class="dmcall-status" role="status">
        {statusText(calls, call, who.name)}
      </p>
      {calls.error && !ended && (
        <p class="dmcall-error" role="alert">
          {t("dmcall.error", { message: calls.error })}
        </p>
      )}
      <div class="dmcall-controls">
        {ended ? (
          <button type="button" ref={closeRef} onClick={() => calls.dismiss()}>
            {t("dialog.close")}
          </button>
        ) : (
          <>
            <button type="button" class="dmcall-toggle" aria-label={t("dmcall.mute")} title={t("dmcall.mute")} aria-pressed={micMuted} onClick={() => void calls.toggleMicrophone()}>
              <CallIcon name={micMuted ? "micOff" : "mic"} />
            </button>
            {call.hasLocalUserMediaVideoTrack && (
              <button type="button" class="dmcall-toggle" aria-label={t("dmcall.cameraOff")} title={t("dmcall.cameraOff")} aria-pressed={cameraOff} onClick={() => void calls.toggleCamera()}>
                <CallIcon name={cameraOff ? "cameraOff" : "camera"} />
              </button>
            )}
            <button type="button" ref={hangupRef} class="dmcall-hangup" aria-label={t("dmcall.hangup")} title={t("dmcall.hangup")} onClick={() => calls.hangup()}>
              <CallIcon name="hangup" />
            </button>
          </>
        )}
      </div>
    </section>
  );
}

/**
 * Everything of one-to-one calls that is not in a room's header: mounted
 * once in the signed-in layout, so an incoming call rings whatever room is
 * open. Signing out hangs up.
 */
export function DirectCallLayer() {
  const client = useClient();
  const calls = useDirectCalls();
  useEffect(() => () => closeDirectCalls(client), [client]);
  return (
    <>
      {calls.incoming && <IncomingCall calls={calls} call={calls.incoming} />}
      {calls.current && <CallView calls={calls} call={calls.current} />}
    </>
  );
}
