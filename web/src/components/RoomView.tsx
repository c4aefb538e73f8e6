import { ClientEvent, EventType, KnownMembership, MsgType, RoomEvent, RoomMemberEvent, RoomStateEvent, type MatrixEvent, type Room } from "matrix-js-sdk";
import { EncryptionState, IdentityNotices } from "../crypto/ui";
import { useEffect, useState } from "preact/hooks";
import { formatBytes, t } from "../i18n";
import { useClient, useEmitterTick } from "../hooks";
import { acceptInvite, displayName } from "../matrix";
import { sendFile, uploadLimit, type UploadProgress } from "../upload";
import { Avatar } from "./common";
import { CallButton, CallPanel } from "./CallPanel";
import { currentCall } from "../calls/current";
import { callUsers, isVoiceChannel, useRtcSession } from "../calls/presence";
import { Composer } from "./Composer";
import { DirectCallButtons, hasDirectCalls } from "./DirectCall";
import { Timeline, type JumpTarget } from "./Timeline";
import { Icon } from "./icons";
import { MenuButton } from "./Menu";
import { isRoomMuted, setRoomMuted } from "../notify";

interface Props {
  room: Room;
  narrow: boolean;
  membersShown: boolean;
  onBack: () => void;
  onToggleMembers: () => void;
  onInvite: () => void;
  onSettings: () => void;
  onLeave: () => void;
  onSearch: () => void;
  onThreads: () => void;
  jumpTo?: JumpTarget | null;
}

function Typing(props: { room: Room }) {
  const client = useClient();
  useEmitterTick(client, [RoomMemberEvent.Typing]);
  const me = client.getUserId();
  const who = props.room
    .getMembers()
    .filter((m) => m.typing && m.userId !== me)
    .map((m) => m.name);
  let text = "";
  if (who.length === 1) text = t("room.typing1", { a: who[0] ?? "" });
  else if (who.length === 2) text = t("room.typing2", { a: who[0] ?? "", b: who[1] ?? "" });
  else if (who.length > 2) text = t("room.typingMany");
  return (
    <div class="typing" aria-live="polite">
      {text}
    </div>
  );
}

/**
 * A room's one call control: in a two-person room the direct call's menu
 * (voice, video, or the group call with its screen sharing and teaching
 * mode), unless a group call is going on there; elsewhere the group
 * call's button.
 */
function RoomCallControl(props: { room: Room; open: boolean; onToggle: () => void }) {
  const client = useClient();
  const session = useRtcSession(props.room);
  const groupCall = props.open || callUsers(session).length > 0;
  if (!groupCall && hasDirectCalls(client, props.room)) return <DirectCallButtons room={props.room} onGroupCall={props.onToggle} />;
  return <CallButton room={props.room} open={props.open} onToggle={props.onToggle} />;
}

// largeRoomMembers is the size above which a room's whole member list is
// not loaded on opening it.
const largeRoomMembers = 500;

export function RoomView(props: Props) {
  const client = useClient();
  const { room } = props;
  useEmitterTick(room, [RoomEvent.Name, RoomEvent.MyMembership, RoomStateEvent.Events]);
  const [replyTo, setReplyTo] = useState<MatrixEvent | null>(null);
  const [editing, setEditing] = useState<MatrixEvent | null>(null);
  const [uploads, setUploads] = useState<UploadProgress[]>([]);
  const [dragging, setDragging] = useState(false);
  // Voice channels show their call on opening (drop-in); other rooms on demand.
  const voiceChannel = isVoiceChannel(room);
  // Push rules change with the account data (another device) or our own menu.
  useEmitterTick(client, [ClientEvent.AccountData]);
  const [, setMuteTick] = useState(0);
  const muted = isRoomMuted(client, room.roomId);
  const [callOpen, setCallOpen] = useState(() => voiceChannel || currentCall()?.room === room);

  // Lazy loading (/sync's lazy_load_members) gives a room the members its
  // timeline needs; opening a room loads the rest only when it is small. A
  // room of thousands (a year group, all staff) would otherwise download
  // every member event each time it is opened: the composer loads them at
  // the first @-mention, the members panel when it opens, and encryption
  // when it needs them.
  useEffect(() => {
    if (room.getJoinedMemberCount() > largeRoomMembers) return;
    void room.loadMembersIfNeeded().catch(() => undefined);
  }, [room]);

  // Opening a room puts focus in its message box (on a phone, where that
  // would open the keyboard, on its name), unless a dialog holds focus.
  // A frame later: a dialog that opened this room (the Ctrl+K switcher)
  // gives focus back to its opener as it closes, which must not win.
  useEffect(() => {
    const frame = requestAnimationFrame(() => {
      if (document.activeElement?.closest("dialog[open]")) return;
      const target = props.narrow ? document.getElementById("room-title") : document.getElementById("composer-input");
      target?.focus({ preventScroll: true });
    });
    return () => cancelAnimationFrame(frame);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [room.roomId]);

  const closeCall = () => {
    setCallOpen(false);
    // Back to the button that opened it.
    requestAnimationFrame(() => document.querySelector<HTMLElement>(".room-tools .call-button")?.focus());
  };

  const topic = room.currentState.getStateEvents(EventType.RoomTopic, "")?.getContent().topic as string | undefined;
  const name = room.name || t("rooms.empty");

  const sendFiles = async (files: File[]) => {
    const limit = await uploadLimit(client);
    for (const file of files) {
      if (limit !== null && file.size > limit) {
        setUploads((u) => [...u, { id: -Date.now(), name: file.name, loaded: 0, total: file.size, error: t("upload.tooLarge", { name: file.name, max: formatBytes(limit) }) }]);
        continue;
      }
      const relatesTo = replyTo ? { "m.in_reply_to": { event_id: replyTo.getId() } } : undefined;
      setReplyTo(null);
      let id = 0;
      try {
        await sendFile(
          client,
          room.roomId,
          file,
          (p) => {
            id = p.id;
            setUploads((u) => [...u.filter((x) => x.id !== p.id), p]);
          },
          relatesTo,
        );
        setUploads((u) => u.filter((x) => x.id !== id));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        setUploads((u) => u.map((x) => (x.id === id ? { ...x, error: t("upload.failed", { name: file.name, message }) } : x)));
      }
    }
  };

  const editLast = () => {
    const me = client.getUserId();
    const evs = room.getLiveTimeline().getEvents();
    for (let i = evs.length - 1; i >= 0; i--) {
      const ev = evs[i];
      if (ev && ev.getSender() === me && ev.getType() === EventType.RoomMessage && !ev.isRedacted() && !ev.isRelation() && ev.getContent().msgtype === MsgType.Text) {
        setEditing(ev);
        return;
      }
    }
  };

  if (room.getMyMembership() === KnownMembership.Invite) {
    return (
      <main class="main room invited" aria-labelledby="room-title">
        <header class="room-head">
          {props.narrow && (
            <button type="button" class="icon back" aria-label={t("nav.back")} onClick={props.onBack}>
              <Icon name="back" />
            </button>
          )}
          <h1 id="room-title">{t("room.invitedTitle", { name })}</h1>
        </header>
        <div class="invite-screen">
          <Avatar id={room.roomId} name={name} mxc={room.getMxcAvatarUrl()} size={72} />
          <p>{room.getDMInviter() ? t("rooms.invitedBy", { user: displayName(room, room.getDMInviter() ?? "") }) : ""}</p>
          <div class="dialog-actions">
            <button type="button" class="primary" onClick={() => void acceptInvite(client, room)}>
              {t("rooms.accept")}
            </button>
            <button type="button" onClick={() => void client.leave(room.roomId).then(props.onBack)}>
              {t("rooms.decline")}
            </button>
          </div>
        </div>
      </main>
    );
  }

  return (
    <main
      class={`main room${dragging ? " dragging" : ""}`}
      aria-labelledby="room-title"
      onDragOver={(e) => {
        if (e.dataTransfer?.types.includes("Files")) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={(e) => {
        if (e.currentTarget === e.target) setDragging(false);
      }}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        const files = Array.from(e.dataTransfer?.files ?? []);
        if (files.length) void sendFiles(files);
      }}
    >
      <header class="room-head">
        {props.narrow && (
          <button type="button" class="icon back" aria-label={t("nav.back")} onClick={props.onBack}>
            <Icon name="back" />
          </button>
        )}
        <Avatar id={room.roomId} name={name} mxc={room.getMxcAvatarUrl()} size={36} />
        <div class="room-title">
          <h1 id="room-title" tabIndex={-1}>
            {name}
          </h1>
          {topic && <p class="topic">{topic}</p>}
          <EncryptionState room={room} />
        </div>
        <div class="room-tools">
          {!voiceChannel && <RoomCallControl room={room} open={callOpen} onToggle={() => setCallOpen((v) => !v)} />}
          <MenuButton
            label={t("room.menu")}
            items={[
              { label: t("room.invite"), onSelect: props.onInvite },
              { label: t("search.open"), onSelect: props.onSearch },
              { label: t("threads.open"), onSelect: props.onThreads },
              { label: t("room.showMembers"), checked: props.membersShown, onSelect: props.onToggleMembers },
              { label: t("room.mute"), checked: muted, onSelect: () => void setRoomMuted(client, room.roomId, !muted).then(() => setMuteTick((n) => n + 1)) },
              { label: t("room.settings"), onSelect: props.onSettings },
              { label: t("room.leave"), onSelect: props.onLeave, danger: true },
            ]}
          />
        </div>
      </header>
      {(callOpen || voiceChannel) && <CallPanel room={room} voiceChannel={voiceChannel} onClose={closeCall} />}
      <IdentityNotices room={room} />
      <Timeline room={room} jumpTo={props.jumpTo ?? null} actions={{ onReply: (ev) => { setEditing(null); setReplyTo(ev); }, onEdit: (ev) => { setReplyTo(null); setEditing(ev); } }} />
      <Typing room={room} />
      {uploads.length > 0 && (
        <ul class="uploads" aria-label={t("composer.attach")}>
          {uploads.map((u) => (
            <li key={u.id} class={u.error ? "error" : ""}>
              {u.error ? (
                <>
                  <span role="alert">{u.error}</span>
                  <button type="button" class="icon small" aria-label={t("dialog.close")} onClick={() => setUploads((x) => x.filter((y) => y.id !== u.id))}>
                    <Icon name="close" />
                  </button>
                </>
              ) : (
                <label>
                  {t("upload.progress", { name: u.name })}
                  <progress max={u.total || 1} value={u.loaded} />
                </label>
              )}
            </li>
          ))}
        </ul>
      )}
      <Composer
        room={room}
        replyTo={replyTo}
        editing={editing}
        onCancel={() => {
          setReplyTo(null);
          setEditing(null);
        }}
        onSent={() => {
          setReplyTo(null);
          setEditing(null);
        }}
        onEditLast={editLast}
        onFiles={(f) => void sendFiles(f)}
      />
      {dragging && (
        <div class="drop-overlay" aria-hidden="true">
          {t("room.dropHere")}
        </div>
      )}
    </main>
  );
}
