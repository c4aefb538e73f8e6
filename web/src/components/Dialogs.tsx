// The modal dialogs: creating rooms and spaces, inviting people from the
// user directory, the public room directory, adding rooms to a space, room
// settings, leaving, and the person's own settings.
import { encryptionInitialState } from "../crypto/engine";
import { RecoverySection } from "../crypto/RecoveryForms";
import { SessionsSection } from "../crypto/Sessions";
import {
  EventType,
  JoinRule,
  KnownMembership,
  Preset,
  Visibility,
  type ICreateRoomOpts,
  type IPublicRoomsChunkRoom,
  type MatrixClient,
  type Room,
} from "matrix-js-sdk";
import { useEffect, useRef, useState } from "preact/hooks";
import { lang, languages, chosenLang, setLang, t, type Lang } from "../i18n";
import { useAsync, useClient } from "../hooks";
import { canSendState, markDirect, serverOf, spaceChildren } from "../matrix";
import { describeError, type Session } from "../session";
import { Avatar, Dialog, DialogMovedOn } from "./common";
import { RoomSwitcher } from "./RoomSwitcher";
import { AvatarPicker, NotificationSetting, ThemeSetting } from "./SettingsSections";
import { RoomSettingsDialog } from "./RoomSettings";
import { SearchDialog } from "./SearchDialog";
import { VoiceChannelType } from "../calls/presence";

export type DialogState =
  | { kind: "createRoom"; space: string | null }
  | { kind: "createSpace"; parent: string | null }
  | { kind: "invite"; roomId: string }
  | { kind: "directory" }
  | { kind: "settings" }
  | { kind: "roomSettings"; roomId: string }
  | { kind: "addToSpace"; space: string }
  | { kind: "startChat" }
  | { kind: "leave"; roomId: string }
  | { kind: "switcher" }
  | { kind: "search"; roomId: string };

interface Props {
  state: DialogState | null;
  session: Session;
  onClose: () => void;
  onOpenRoom: (roomId: string) => void;
  onOpenSpace: (spaceId: string) => void;
  onSignOut: () => void;
  /** A search result chosen: the room's timeline shows that message. */
  onShowEvent: (roomId: string, eventId: string) => void;
}

export function errText(err: unknown): string {
  const d = describeError(err);
  return d.key ? t(d.key) : t("error.generic", { message: d.message });
}

export function Dialogs(props: Props) {
  // A dialog that opens a room or a message leaves focus to it (Dialog).
  const movedOn = useRef(false);
  const onOpenRoom = (roomId: string) => {
    movedOn.current = roomId !== "";
    props.onOpenRoom(roomId);
  };
  const onShowEvent = (roomId: string, eventId: string) => {
    movedOn.current = true;
    props.onShowEvent(roomId, eventId);
  };
  return <DialogMovedOn.Provider value={movedOn}>{props.state && <OneDialog {...props} state={props.state} onOpenRoom={onOpenRoom} onShowEvent={onShowEvent} />}</DialogMovedOn.Provider>;
}

function OneDialog(props: Props & { state: DialogState }) {
  const client = useClient();
  const s = props.state;
  switch (s.kind) {
    case "createRoom":
      return <CreateDialog key="cr" kind="room" initialSpace={s.space} onClose={props.onClose} onCreated={props.onOpenRoom} />;
    case "createSpace":
      return <CreateDialog key="cs" kind="space" initialSpace={s.parent} onClose={props.onClose} onCreated={props.onOpenSpace} />;
    case "invite":
      return <InviteDialog roomId={s.roomId} onClose={props.onClose} />;
    case "startChat":
      return <InviteDialog roomId={null} onClose={props.onClose} onOpenRoom={props.onOpenRoom} />;
    case "directory":
      return <DirectoryDialog onClose={props.onClose} onOpenRoom={props.onOpenRoom} onOpenSpace={props.onOpenSpace} />;
    case "settings":
      return <SettingsDialog session={props.session} onClose={props.onClose} onSignOut={props.onSignOut} />;
    case "roomSettings":
      return <RoomSettingsDialog roomId={s.roomId} onClose={props.onClose} />;
    case "addToSpace":
      return <AddToSpaceDialog spaceId={s.space} onClose={props.onClose} />;
    case "search": {
      const room = client.getRoom(s.roomId);
      if (!room) return null;
      return <SearchDialog room={room} onClose={props.onClose} onShow={(id) => props.onShowEvent(room.roomId, id)} />;
    }
    case "switcher":
      return <RoomSwitcher onClose={props.onClose} onOpenRoom={props.onOpenRoom} />;
    case "leave":
      return <LeaveDialog roomId={s.roomId} onClose={props.onClose} onLeft={() => props.onOpenRoom("")} />;
  }
}

/** Spaces where we may add children. */
function editableSpaces(client: MatrixClient): Room[] {
  return client
    .getRooms()
    .filter((r) => r.isSpaceRoom() && r.getMyMembership() === KnownMembership.Join && canSendState(client, r, EventType.SpaceChild))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function addToSpace(client: MatrixClient, spaceId: string, roomId: string): Promise<void> {
  const server = serverOf(client.getUserId() ?? "");
  await client.sendStateEvent(spaceId, EventType.SpaceChild, { via: [server] }, roomId);
}

function CreateDialog(props: { kind: "room" | "space"; initialSpace: string | null; onClose: () => void; onCreated: (id: string) => void }) {
  const client = useClient();
  const spaces = editableSpaces(client);
  const [name, setName] = useState("");
  const [topic, setTopic] = useState("");
  const [spaceId, setSpaceId] = useState<string>(props.initialSpace && spaces.some((s) => s.roomId === props.initialSpace) ? props.initialSpace : "");
  const [access, setAccess] = useState<"private" | "public" | "restricted">(props.initialSpace ? "restricted" : "private");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [voice, setVoice] = useState(false);
  const isSpace = props.kind === "space";
  const effectiveAccess = access === "restricted" && !spaceId ? "private" : access;

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const server = serverOf(client.getUserId() ?? "");
    const isPublic = effectiveAccess === "public";
    const opts: ICreateRoomOpts = {
      name: name.trim(),
      preset: isPublic ? Preset.PublicChat : Preset.PrivateChat,
      visibility: isPublic ? Visibility.Public : Visibility.Private,
      initial_state: [],
    };
    if (topic.trim()) opts.topic = topic.trim();
    // Private rooms are end-to-end encrypted; public ones, readable by
    // anyone who joins, and spaces are not.
    if (!isPublic && !isSpace) opts.initial_state!.push(encryptionInitialState());
    // A voice channel (MSC3417): its call shows when it is opened.
    if (!isSpace && voice) opts.creation_content = { type: VoiceChannelType };
    if (isSpace) {
      opts.creation_content = { type: "m.space" };
      // Only admins add rooms; everyone may invite to a public space.
      opts.power_level_content_override = { events_default: 100, invite: isPublic ? 0 : 50 };
    }
    if (spaceId) {
      opts.initial_state!.push({ type: EventType.SpaceParent, state_key: spaceId, content: { via: [server], canonical: true } });
      if (effectiveAccess === "restricted") {
        opts.initial_state!.push({
          type: EventType.RoomJoinRules,
          state_key: "",
          content: { join_rule: JoinRule.Restricted, allow: [{ type: "m.room_membership", room_id: spaceId }] },
        });
      }
    }
    try {
      const { room_id } = await client.createRoom(opts);
      if (spaceId) await addToSpace(client, spaceId, room_id);
      props.onCreated(room_id);
    } catch (err) {
      setError(errText(err));
      setBusy(false);
    }
  };

  return (
    <Dialog title={isSpace ? t("create.space.title") : t("create.room.title")} onClose={props.onClose} id="create">
      <form class="form" onSubmit={submit}>
        <label>
          {t("create.name")}
          <input name="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} autoFocus />
        </label>
        <label>
          {t("create.topic")}
          <input name="topic" value={topic} onInput={(e) => setTopic(e.currentTarget.value)} />
        </label>
        {!isSpace && (
          <label class="radio">
            <input type="checkbox" name="voice" checked={voice} onChange={(e) => setVoice(e.currentTarget.checked)} />
            {t("create.voice")}
          </label>
        )}
        {spaces.length > 0 && (
          <label>
            {isSpace ? t("rooms.subspaces") : t("create.inSpace")}
            <select name="space" value={spaceId} onChange={(e) => setSpaceId(e.currentTarget.value)}>
              <option value="">{t("create.noSpace")}</option>
              {spaces.map((s) => (
                <option key={s.roomId} value={s.roomId}>
                  {s.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <fieldset>
          <legend>{t("create.visibility")}</legend>
          <label class="radio">
            <input type="radio" name="access" value="private" checked={effectiveAccess === "private"} onChange={() => setAccess("private")} />
            {t("create.private")}
          </label>
          {spaceId && (
            <label class="radio">
              <input type="radio" name="access" value="restricted" checked={effectiveAccess === "restricted"} onChange={() => setAccess("restricted")} />
              {t("create.restricted")}
            </label>
          )}
          <label class="radio">
            <input type="radio" name="access" value="public" checked={effectiveAccess === "public"} onChange={() => setAccess("public")} />
            {t("create.public")}
          </label>
        </fieldset>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={props.onClose}>
            {t("dialog.cancel")}
          </button>
          <button type="submit" class="primary" disabled={busy || !name.trim()}>
            {t("dialog.create")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

interface Person {
  user_id: string;
  display_name?: string | undefined;
  avatar_url?: string | undefined;
}

const mxidRe = /^@[^:\s]+:\S+$/;

/** Invites to a room; with no room, starts a direct conversation. */
function InviteDialog(props: { roomId: string | null; onClose: () => void; onOpenRoom?: (id: string) => void }) {
  const client = useClient();
  const room = props.roomId ? client.getRoom(props.roomId) : null;
  const [term, setTerm] = useState("");
  const [q, setQ] = useState("");
  const [done, setDone] = useState<Set<string>>(new Set());
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const h = setTimeout(() => setQ(term.trim()), 250);
    return () => clearTimeout(h);
  }, [term]);
  const results = useAsync(async () => {
    if (!q) return [] as Person[];
    const res = await client.searchUserDirectory({ term: q, limit: 10 });
    const people: Person[] = res.results.filter((p) => p.user_id !== client.getUserId());
    if (mxidRe.test(q) && !people.some((p) => p.user_id === q)) people.unshift({ user_id: q });
    return people;
  }, [q]);

  const act = async (p: Person) => {
    setError(null);
    try {
      if (room) {
        await client.invite(room.roomId, p.user_id);
        setDone((d) => new Set(d).add(p.user_id));
      } else {
        const { room_id } = await client.createRoom({
          is_direct: true,
          invite: [p.user_id],
          preset: Preset.TrustedPrivateChat,
          initial_state: [encryptionInitialState()],
        });
        await markDirect(client, p.user_id, room_id);
        props.onOpenRoom?.(room_id);
      }
    } catch (err) {
      setError(errText(err));
    }
  };

  const title = room ? t("invite.title", { name: room.name }) : t("create.dmTitle");
  return (
    <Dialog title={title} onClose={props.onClose} id="invite">
      <label class="block">
        {t("invite.search")}
        <input type="search" name="user-search" value={term} onInput={(e) => setTerm(e.currentTarget.value)} autoFocus />
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {results.error !== null && <p class="error">{errText(results.error)}</p>}
      {q && results.value && results.value.length === 0 && <p class="muted">{t("invite.none")}</p>}
      <ul class="people" aria-live="polite">
        {(results.value ?? []).map((p) => {
          const name = p.display_name || p.user_id;
          return (
            <li key={p.user_id} class="person">
              <Avatar id={p.user_id} name={name} mxc={p.avatar_url} />
              <span class="member-name">
                {name}
                <small class="muted">{p.user_id}</small>
              </span>
              {done.has(p.user_id) ? (
                <span class="muted">{t("invite.sent")}</span>
              ) : (
                <button type="button" class="small primary" aria-label={t("invite.send", { user: p.user_id })} onClick={() => void act(p)}>
                  {room ? t("invite.message") : t("rooms.startChat")}
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </Dialog>
  );
}

function DirectoryDialog(props: { onClose: () => void; onOpenRoom: (id: string) => void; onOpenSpace: (id: string) => void }) {
  const client = useClient();
  const [term, setTerm] = useState("");
  const [q, setQ] = useState("");
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const h = setTimeout(() => setQ(term.trim()), 250);
    return () => clearTimeout(h);
  }, [term]);
  const res = useAsync(() => client.publicRooms(q ? { limit: 30, filter: { generic_search_term: q } } : { limit: 30 }), [q]);
  // Further pages, fetched with next_batch when asked for.
  const [more, setMore] = useState<{ rooms: IPublicRoomsChunkRoom[]; next: string | undefined } | null>(null);
  useEffect(() => setMore(null), [q]);
  const next = more ? more.next : res.value?.next_batch;
  const rooms = [...(res.value?.chunk ?? []), ...(more?.rooms ?? [])];
  const loadMore = async () => {
    if (!next) return;
    try {
      const page = await client.publicRooms(q ? { limit: 30, since: next, filter: { generic_search_term: q } } : { limit: 30, since: next });
      setMore({ rooms: [...(more?.rooms ?? []), ...page.chunk], next: page.next_batch });
    } catch (err) {
      setError(errText(err));
    }
  };

  const join = async (r: IPublicRoomsChunkRoom) => {
    setError(null);
    try {
      const room = await client.joinRoom(r.canonical_alias ?? r.room_id);
      if (r.room_type === "m.space") props.onOpenSpace(room.roomId);
      else props.onOpenRoom(room.roomId);
    } catch (err) {
      setError(errText(err));
    }
  };

  return (
    <Dialog title={t("directory.title")} onClose={props.onClose} wide id="directory">
      <label class="block">
        {t("directory.search")}
        <input type="search" value={term} onInput={(e) => setTerm(e.currentTarget.value)} autoFocus />
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {res.error !== null && <p class="error">{errText(res.error)}</p>}
      {res.value && res.value.chunk.length === 0 && <p class="muted">{t("directory.none")}</p>}
      <ul class="cards">
        {rooms.map((r) => {
          const name = r.name ?? r.canonical_alias ?? r.room_id;
          const joined = client.getRoom(r.room_id)?.getMyMembership() === KnownMembership.Join;
          return (
            <li class="card" key={r.room_id}>
              <Avatar id={r.room_id} name={name} mxc={r.avatar_url} size={40} />
              <div class="card-text">
                <strong>{name}</strong>
                {r.topic && <p class="muted">{r.topic}</p>}
                <small class="muted">{r.num_joined_members === 1 ? t("space.member") : t("space.members", { count: r.num_joined_members })}</small>
              </div>
              <div class="card-actions">
                {joined ? (
                  <button type="button" class="small" onClick={() => (r.room_type === "m.space" ? props.onOpenSpace(r.room_id) : props.onOpenRoom(r.room_id))}>
                    {t("space.open")}
                  </button>
                ) : (
                  <button type="button" class="small primary" aria-label={t("directory.join", { name })} onClick={() => void join(r)}>
                    {t("space.join")}
                  </button>
                )}
              </div>
            </li>
          );
        })}
      </ul>
      {next && (
        <button type="button" class="small" onClick={() => void loadMore()}>
          {t("directory.more")}
        </button>
      )}
    </Dialog>
  );
}

function AddToSpaceDialog(props: { spaceId: string; onClose: () => void }) {
  const client = useClient();
  const space = client.getRoom(props.spaceId);
  const [added, setAdded] = useState<Set<string>>(new Set());
  const [error, setError] = useState<string | null>(null);
  if (!space) return null;
  const kids = new Set(spaceChildren(space).map((c) => c.roomId));
  const candidates = client
    .getRooms()
    .filter((r) => r.getMyMembership() === KnownMembership.Join && r.roomId !== space.roomId && !kids.has(r.roomId))
    .sort((a, b) => a.name.localeCompare(b.name));
  return (
    <Dialog title={t("addToSpace.title", { name: space.name })} onClose={props.onClose} id="add-to-space">
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {candidates.length === 0 && <p class="muted">{t("addToSpace.none")}</p>}
      <ul class="people">
        {candidates.map((r) => (
          <li key={r.roomId} class="person">
            <Avatar id={r.roomId} name={r.name} mxc={r.getMxcAvatarUrl()} />
            <span class="member-name">{r.name}</span>
            {added.has(r.roomId) ? (
              <span class="muted">✓</span>
            ) : (
              <button
                type="button"
                class="small"
                aria-label={t("addToSpace.add", { name: r.name })}
                onClick={() =>
                  addToSpace(client, space.roomId, r.roomId).then(
                    () => setAdded((a) => new Set(a).add(r.roomId)),
                    (err: unknown) => setError(errText(err)),
                  )
                }
              >
                +
              </button>
            )}
          </li>
        ))}
      </ul>
    </Dialog>
  );
}

function LeaveDialog(props: { roomId: string; onClose: () => void; onLeft: () => void }) {
  const client = useClient();
  const room = client.getRoom(props.roomId);
  const [error, setError] = useState<string | null>(null);
  const name = room?.name ?? props.roomId;
  return (
    <Dialog title={t("room.leaveConfirm", { name })} onClose={props.onClose} id="leave">
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="dialog-actions">
        <button type="button" onClick={props.onClose}>
          {t("dialog.cancel")}
        </button>
        <button
          type="button"
          class="danger"
          onClick={() =>
            client.leave(props.roomId).then(
              () => props.onLeft(),
              (err: unknown) => setError(errText(err)),
            )
          }
        >
          {t("room.leave")}
        </button>
      </div>
    </Dialog>
  );
}

function SettingsDialog(props: { session: Session; onClose: () => void; onSignOut: () => void }) {
  const client = useClient();
  const [choice, setChoice] = useState<Lang | "">(chosenLang() ?? "");
  const [name, setName] = useState("");
  const [saved, setSaved] = useState("");
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    client.getProfileInfo(props.session.userId).then(
      (p) => {
        setName(p.displayname ?? "");
        setSaved(p.displayname ?? "");
      },
      () => undefined,
    );
  }, [client, props.session.userId]);

  return (
    <Dialog title={t("settings.title")} onClose={props.onClose} id="settings">
      <section class="form">
        <label>
          {t("settings.language")}
          <select
            name="language"
            value={choice}
            onChange={(e) => {
              const v = e.currentTarget.value as Lang | "";
              setChoice(v);
              setLang(v === "" ? null : v);
            }}
          >
            <option value="">
              {t("settings.languageAuto")} ({languages[lang()]})
            </option>
            {Object.entries(languages).map(([code, label]) => (
              <option key={code} value={code}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </section>
      <ThemeSetting />
      <NotificationSetting />
      <section class="form" aria-labelledby="settings-account">
        <h3 id="settings-account">{t("settings.account")}</h3>
        <AvatarPicker
          label={t("settings.avatar")}
          id={props.session.userId}
          name={saved || props.session.userId}
          mxc={client.getUser(props.session.userId)?.avatarUrl}
          onUploaded={(mxc) => client.setAvatarUrl(mxc)}
        />
        <p>
          <strong class="my-user-id">{props.session.userId}</strong>
          <br />
          <small class="muted">{t("settings.device", { device: props.session.deviceId })}</small>
        </p>
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            setError(null);
            client.setDisplayName(name.trim()).then(
              () => setSaved(name.trim()),
              (err: unknown) => setError(errText(err)),
            );
          }}
        >
          <label>
            {t("settings.displayName")}
            <input name="displayname" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <button type="submit" class="small" disabled={name.trim() === saved}>
            {t("dialog.save")}
          </button>
        </form>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </section>
      <SessionsSection userId={props.session.userId} deviceId={props.session.deviceId} />
      <RecoverySection />
      <div class="dialog-actions">
        <button type="button" class="danger" onClick={props.onSignOut}>
          {t("settings.logout")}
        </button>
      </div>
    </Dialog>
  );
}
