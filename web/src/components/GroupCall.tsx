// The call view of a room (MatrixRTC + LiveKit): before joining, who is in
// the call and a join button; in the call, a grid of participants with the
// active speaker highlighted, microphone, camera and screen controls and
// device choice; in teaching mode, a stage for moderators and speakers,
// raised hands, and the moderators' "let speak" and "stop" controls.
// Loaded on demand by CallPanel, with livekit-client.
import type { Room } from "matrix-js-sdk";
import type { Participant, Track as LkTrack } from "livekit-client";
import { useEffect, useRef, useState } from "preact/hooks";
import { useClient } from "../hooks";
import { t, type MessageKey } from "../i18n";
import { displayName } from "../matrix";
import { callFor, devices, GroupCall, isCameraOn, isMicOn, Track, userOf } from "../calls/group";
import { currentCall, onCurrentCallChange, setCurrentCall } from "../calls/current";
import { callUsers, liveMemberships, useRtcSession } from "../calls/presence";
import { isModerator, lowerHand, mayChangeTeaching, onStage, raisedHands, raiseHand, setSpeaker, setTeaching, teachingOf } from "../calls/teaching";
import { CallIcon, type CallIconName } from "./callIcons";
import { Avatar } from "./common";
import { tc } from "../crypto/strings";

function useCallTick(call: GroupCall): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    let frame = 0;
    const off = call.onChange(() => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setTick((n) => n + 1);
      });
    });
    return () => {
      off();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [call]);
}

function TrackVideo(props: { track: LkTrack; mirror?: boolean }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    props.track.attach(el);
    return () => {
      props.track.detach(el);
    };
  }, [props.track]);
  return <video ref={ref} class={props.mirror ? "mirror" : ""} autoPlay playsInline muted />;
}

function TrackAudio(props: { track: LkTrack; user: string }) {
  const ref = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    props.track.attach(el);
    return () => {
      props.track.detach(el);
    };
  }, [props.track]);
  return <audio ref={ref} autoPlay data-user={props.user} />;
}

function Tile(props: { room: Room; p: Participant; screen?: boolean; hand?: boolean }) {
  const { p, room } = props;
  const user = userOf(p);
  const pub = p.getTrackPublication(props.screen ? Track.Source.ScreenShare : Track.Source.Camera);
  const track = pub && !pub.isMuted ? pub.track : undefined;
  const mic = isMicOn(p);
  const base = displayName(room, user);
  const name = props.screen ? t("call.screenOf", { name: base }) : p.isLocal ? t("call.you", { name: base }) : base;
  return (
    <li
      class={`call-tile${p.isSpeaking && !props.screen ? " speaking" : ""}${props.screen ? " screen" : ""}`}
      data-user={user}
      data-local={p.isLocal ? "true" : undefined}
      data-source={props.screen ? "screen" : "camera"}
      data-mic={mic ? "on" : "off"}
      data-camera={isCameraOn(p) ? "on" : "off"}
      aria-label={name}
    >
      {track ? <TrackVideo track={track} mirror={p.isLocal && !props.screen} /> : <Avatar id={user} name={base} mxc={room.getMember(user)?.getMxcAvatarUrl()} size={64} />}
      <span class="call-name">
        {!props.screen && !mic && (
          <span class="call-muted" title={t("call.micOff")}>
            <CallIcon name="micOff" size={16} />
            <span class="visually-hidden">{t("call.micOff")}</span>
          </span>
        )}
        {props.hand && (
          <span class="call-hand" title={t("call.handRaised")}>
            <CallIcon name="hand" size={16} />
            <span class="visually-hidden">{t("call.handRaised")}</span>
          </span>
        )}
        {name}
      </span>
    </li>
  );
}

function DevicePicker(props: { call: GroupCall }) {
  const [lists, setLists] = useState<Record<string, MediaDeviceInfo[]>>({});
  useEffect(() => {
    let alive = true;
    void Promise.all((["audioinput", "videoinput", "audiooutput"] as const).map((k) => devices(k).then((d) => [k, d] as const))).then((all) => {
      if (alive) setLists(Object.fromEntries(all));
    });
    return () => {
      alive = false;
    };
  }, [props.call]);
  const kinds: [MediaDeviceKind, MessageKey][] = [
    ["audioinput", "call.microphone"],
    ["videoinput", "call.camera"],
    ["audiooutput", "call.speaker"],
  ];
  return (
    <div class="call-devices" role="group" aria-label={t("call.devices")}>
      {kinds.map(([kind, label]) => {
        const list = (lists[kind] ?? []).filter((d) => d.deviceId);
        if (list.length === 0) return null;
        return (
          <label key={kind}>
            {t(label)}
            <select value={props.call.lk.getActiveDevice(kind) ?? ""} onChange={(e) => void props.call.switchDevice(kind, e.currentTarget.value)}>
              {list.map((d, i) => (
                <option key={d.deviceId} value={d.deviceId}>
                  {d.label || `${t(label)} ${i + 1}`}
                </option>
              ))}
            </select>
          </label>
        );
      })}
    </div>
  );
}

function failureText(call: GroupCall): string {
  const f = call.failure;
  if (!f) return "";
  switch (f.kind) {
    case "noFocus":
      return t("call.failed.noFocus");
    case "token":
      return t("call.failed.token", { message: f.message });
    case "sfu":
      return t("call.failed.sfu", { message: f.message });
    default:
      return t("call.failed.other", { message: f.message });
  }
}

export function GroupCallView(props: { room: Room; voiceChannel: boolean; onClose: () => void }) {
  const client = useClient();
  const { room } = props;
  const session = useRtcSession(room);
  const [call, setCall] = useState(() => callFor(client, room));
  const [wantAudio, setWantAudio] = useState(true);
  // A voice channel is joined with the microphone only; the camera is a
  // choice (here or once in the call).
  const [wantVideo, setWantVideo] = useState(!props.voiceChannel);
  const [showDevices, setShowDevices] = useState(false);
  const [busy, setBusy] = useState(false);
  useCallTick(call);

  // A call left elsewhere (the bar in the layout) or replaced by another
  // room's: start over with a fresh one.
  useEffect(
    () =>
      onCurrentCallChange(() => {
        if (currentCall() !== call && call.phase !== "idle") setCall(callFor(client, room));
      }),
    [call, client, room],
  );
  // A call never joined goes with the view; a joined one stays current.
  useEffect(
    () => () => {
      if (currentCall() !== call) call.dispose();
    },
    [call],
  );

  const me = client.getSafeUserId();
  const myDevice = client.getDeviceId();
  const teaching = teachingOf(room);
  const moderator = isModerator(room, me);
  const canToggleTeaching = mayChangeTeaching(room, me);
  const memberships = liveMemberships(session);
  const hands = teaching.enabled ? raisedHands(room, memberships) : [];
  const myMembership = memberships.find((m) => m.sender === me && m.deviceId === myDevice);
  const myHand = hands.find((h) => h.membership === myMembership);
  const iAmOnStage = onStage(room, teaching, me);

  // Let speak: the hand has done its job.
  useEffect(() => {
    if (myHand && iAmOnStage) void lowerHand(client, room, myHand.reaction).catch(() => undefined);
  }, [myHand, iAmOnStage, client, room]);

  // Focus follows the call: the join button when the panel is opened from
  // the header (not when a voice channel shows it by itself), the call's
  // controls once joined, the join button again after leaving.
  const section = useRef<HTMLElement>(null);
  const focusNext = useRef<"join" | "controls" | null>(props.voiceChannel ? null : "join");
  useEffect(() => {
    const want = focusNext.current;
    if (!want) return;
    const target = want === "join" ? ".call-join" : ".call-mic, .call-leave";
    const el = section.current?.querySelector<HTMLElement>(target);
    if (el && !(el as HTMLButtonElement).disabled) {
      el.focus();
      focusNext.current = null;
    }
  });
  const onKeyDown = (e: KeyboardEvent) => {
    // Escape closes the panel of a room's call (the call goes on).
    if (e.key === "Escape" && !props.voiceChannel && !e.defaultPrevented && !(e.target as HTMLElement).closest("select")) {
      e.preventDefault();
      props.onClose();
    }
  };

  const join = async () => {
    focusNext.current = "controls";
    setBusy(true);
    try {
      await setCurrentCall(call);
      await call.join({ audio: wantAudio, video: wantVideo });
    } finally {
      setBusy(false);
    }
  };
  const leave = async () => {
    setBusy(true);
    try {
      if (currentCall() === call) await setCurrentCall(null);
      else await call.leave();
    } finally {
      setBusy(false);
    }
    focusNext.current = "join";
    setCall(callFor(client, room));
  };
  const toggleTeaching = async (on: boolean) => {
    try {
      await setTeaching(client, room, on);
    } catch (err) {
      console.warn("call: teaching mode change failed", err);
    }
  };

  const users = callUsers(session);
  const teachingSwitch = canToggleTeaching && (
    <label class="call-teaching-switch">
      <input type="checkbox" checked={teaching.enabled} onChange={(e) => void toggleTeaching(e.currentTarget.checked)} />
      {t("call.teaching")}
    </label>
  );
  const header = (
    <header class="call-head">
      <h2 id={`call-title-${room.roomId}`}>{props.voiceChannel ? t("call.voiceChannel") : t("call.title")}</h2>
      <span class="call-count" aria-live="polite">
        {t("call.inCall", { count: users.length })}
      </span>
      {call.encrypted && (
        <span class="call-e2ee e2e-state on" title={tc("e2e.call.hint")}>
          <span aria-hidden="true">🔒 </span>
          {tc("e2e.call.encrypted")}
        </span>
      )}
      {teachingSwitch}
      {!props.voiceChannel && call.phase !== "connected" && (
        <button type="button" class="icon small" aria-label={t("call.hide")} title={t("call.hide")} onClick={props.onClose}>
          ×
        </button>
      )}
    </header>
  );

  if (call.phase !== "connected") {
    return (
      <section ref={section} onKeyDown={onKeyDown} class={`call lobby${props.voiceChannel ? " voice" : ""}`} aria-labelledby={`call-title-${room.roomId}`}>
        {header}
        {teaching.enabled && <p class="call-note">{iAmOnStage ? t("call.teachingOn") : t("call.listener")}</p>}
        {users.length > 0 ? (
          <ul class="call-lobby-people" aria-label={t("call.inCall", { count: users.length })}>
            {users.map((u) => (
              <li key={u}>
                <Avatar id={u} name={displayName(room, u)} mxc={room.getMember(u)?.getMxcAvatarUrl()} size={28} />
                {displayName(room, u)}
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">{t("call.empty")}</p>
        )}
        <div class="call-lobby-options">
          <label>
            <input type="checkbox" checked={wantAudio} onChange={(e) => setWantAudio(e.currentTarget.checked)} />
            {t("call.microphone")}
          </label>
          <label>
            <input type="checkbox" checked={wantVideo} onChange={(e) => setWantVideo(e.currentTarget.checked)} />
            {t("call.camera")}
          </label>
          <button type="button" class="primary call-join" disabled={busy || call.phase === "connecting"} onClick={() => void join()}>
            <CallIcon name="call" size={18} />
            {call.phase === "connecting" ? t("call.connecting") : call.phase === "failed" ? t("call.retry") : t("call.join")}
          </button>
          {call.phase === "failed" && currentCall() === call && (
            <button type="button" onClick={() => void leave()}>
              {t("call.close")}
            </button>
          )}
        </div>
        {call.phase === "failed" && (
          <p class="error" role="alert">
            {failureText(call)}
          </p>
        )}
      </section>
    );
  }

  const participants = call.participants();
  const handUsers = new Set(hands.map((h) => h.membership.sender));
  const stage = participants.filter((p) => onStage(room, teaching, userOf(p)));
  const audience = participants.filter((p) => !onStage(room, teaching, userOf(p)));
  const sharing = participants.filter((p) => p.getTrackPublication(Track.Source.ScreenShare)?.track && !p.getTrackPublication(Track.Source.ScreenShare)?.isMuted);
  const micOn = isMicOn(call.local);
  const camOn = isCameraOn(call.local);
  const screenOn = !!call.local.getTrackPublication(Track.Source.ScreenShare);
  const mayMic = call.mayPublish(Track.Source.Microphone);
  const mayCam = call.mayPublish(Track.Source.Camera);
  const mayScreen = call.mayPublish(Track.Source.ScreenShare) && typeof navigator.mediaDevices?.getDisplayMedia === "function";
  const notAllowed = t("call.notAllowed");
  const speakers = teaching.enabled ? teaching.speakers.filter((u) => !isModerator(room, u)) : [];

  const audio: { track: LkTrack; user: string; key: string }[] = [];
  for (const p of call.lk.remoteParticipants.values()) {
    for (const src of [Track.Source.Microphone, Track.Source.ScreenShareAudio]) {
      const tr = p.getTrackPublication(src)?.track;
      if (tr) audio.push({ track: tr, user: userOf(p), key: `${p.identity}/${src}` });
    }
  }

  return (
    <section ref={section} onKeyDown={onKeyDown} class={`call in-call${props.voiceChannel ? " voice" : ""}${teaching.enabled ? " teaching" : ""}`} aria-labelledby={`call-title-${room.roomId}`}>
      {header}
      {teaching.enabled && !iAmOnStage && <p class="call-note">{t("call.listener")}</p>}
      <ul class={`call-grid${teaching.enabled ? " stage" : ""}`} aria-label={teaching.enabled ? t("call.stage") : t("call.participants")}>
        {sharing.map((p) => (
          <Tile key={`${p.identity}/screen`} room={room} p={p} screen />
        ))}
        {stage.map((p) => (
          <Tile key={p.identity} room={room} p={p} hand={handUsers.has(userOf(p))} />
        ))}
      </ul>
      {teaching.enabled && audience.length > 0 && (
        <ul class="call-audience" aria-label={t("call.audience")}>
          {audience.map((p) => (
            <Tile key={p.identity} room={room} p={p} hand={handUsers.has(userOf(p))} />
          ))}
        </ul>
      )}
      {teaching.enabled && moderator && (hands.length > 0 || speakers.length > 0) && (
        <div class="call-moderation">
          {hands.length > 0 && (
            <>
              <h3>{t("call.hands")}</h3>
              <ul class="call-hands" aria-label={t("call.hands")}>
                {hands.map((h) => {
                  const name = displayName(room, h.membership.sender);
                  return (
                    <li key={h.reaction.getId()} data-user={h.membership.sender}>
                      <CallIcon name="hand" size={16} />
                      {name}
                      {!onStage(room, teaching, h.membership.sender) && (
                        <button type="button" class="small primary" onClick={() => void setSpeaker(client, room, h.membership.sender, true)}>
                          {t("call.letSpeak", { name })}
                        </button>
                      )}
                    </li>
                  );
                })}
              </ul>
            </>
          )}
          {speakers.length > 0 && (
            <>
              <h3>{t("call.speakers")}</h3>
              <ul class="call-speakers" aria-label={t("call.speakers")}>
                {speakers.map((u) => {
                  const name = displayName(room, u);
                  return (
                    <li key={u} data-user={u}>
                      {name}
                      <button type="button" class="small" onClick={() => void setSpeaker(client, room, u, false)}>
                        {t("call.stopSpeaking", { name })}
                      </button>
                    </li>
                  );
                })}
              </ul>
            </>
          )}
        </div>
      )}
      {audio.map((a) => (
        <TrackAudio key={a.key} track={a.track} user={a.user} />
      ))}
      {showDevices && <DevicePicker call={call} />}
      {(call.refused || call.mediaError) && (
        <p class="error" role="alert">
          {call.refused ? notAllowed : t("call.mediaError", { message: call.mediaError ?? "" })}
        </p>
      )}
      <div class="call-controls" role="toolbar" aria-label={t("call.controls")}>
        <PublishToggle
          cls={`call-mic${micOn ? "" : " off"}`}
          pressed={!micOn}
          label={micOn ? t("call.mute") : t("call.unmute")}
          may={mayMic}
          notAllowed={notAllowed}
          icon={micOn ? "mic" : "micOff"}
          onClick={() => void call.setMic(!micOn)}
        />
        <PublishToggle
          cls={`call-camera${camOn ? "" : " off"}`}
          pressed={!camOn}
          label={camOn ? t("call.cameraOff") : t("call.cameraOn")}
          may={mayCam}
          notAllowed={notAllowed}
          icon={camOn ? "camera" : "cameraOff"}
          onClick={() => void call.setCamera(!camOn)}
        />
        <PublishToggle
          cls="call-screen"
          pressed={screenOn}
          label={screenOn ? t("call.stopShare") : t("call.shareScreen")}
          may={mayScreen}
          notAllowed={notAllowed}
          icon="screen"
          onClick={() => void call.setScreen(!screenOn)}
        />
        <button type="button" class="call-devices-toggle" aria-expanded={showDevices} aria-label={t("call.devices")} title={t("call.devices")} onClick={() => setShowDevices((v) => !v)}>
          <CallIcon name="devices" />
        </button>
        {teaching.enabled && !iAmOnStage && (
          <button
            type="button"
            class="call-raise"
            aria-pressed={!!myHand}
            disabled={!myMembership}
            onClick={() => void (myHand ? lowerHand(client, room, myHand.reaction) : myMembership ? raiseHand(client, room, myMembership) : Promise.resolve()).catch((err) => console.warn("call: hand", err))}
          >
            <CallIcon name="hand" />
            {myHand ? t("call.lowerHand") : t("call.raiseHand")}
          </button>
        )}
        <button type="button" class="danger call-leave" disabled={busy} onClick={() => void leave()}>
          <CallIcon name="hangup" />
          {t("call.leave")}
        </button>
      </div>
    </section>
  );
}

/**
 * A microphone, camera or screen button: labelled with what a press does,
 * disabled (and titled with why) while the grant does not allow it.
 */
function PublishToggle(props: { cls: string; pressed: boolean; label: string; may: boolean; notAllowed: string; icon: CallIconName; onClick: () => void }) {
  return (
    <button
      type="button"
      class={props.cls}
      aria-pressed={props.pressed}
      aria-label={props.label}
      title={props.may ? props.label : props.notAllowed}
      disabled={!props.may}
      onClick={props.onClick}
    >
      <CallIcon name={props.icon} />
    </button>
  );
}
