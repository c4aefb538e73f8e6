// The signed-in layout, as people know it from Element: spaces down the
// left edge, the selected space's rooms and the direct conversations in a
// list, the conversation in the middle, members on demand. On a phone-sized
// screen one pane shows at a time.
import { EncryptionPanel } from "../crypto/EncryptionPanel";
import { ClientEvent, MatrixError, SyncState, type MatrixClient } from "matrix-js-sdk";
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import { useClient, useEmitterTick, useNarrow } from "../hooks";
import type { Session } from "../session";
import { OngoingCallBar } from "./CallPanel";
import { Dialogs, type DialogState } from "./Dialogs";
import { DirectCallLayer } from "./DirectCall";
import { ThreadsPanel } from "./ThreadsPanel";
import { MembersPanel } from "./MembersPanel";
import { RoomList } from "./RoomList";
import { RoomView } from "./RoomView";
import { SpaceHome } from "./SpaceHome";
import { SpacesBar } from "./SpacesBar";
import { Icon } from "./icons";
import { setOpenRoom, startNotifications } from "../notify";
import { focusIfLost } from "../focus";

interface Props {
  session: Session;
  onSignOut: () => void;
}

/** The room in the address (#/room/!id:server), so reloads and links keep it. */
function roomFromHash(): string | null {
  const m = /^#\/room\/(.+)$/.exec(window.location.hash);
  return m?.[1] ? decodeURIComponent(m[1]) : null;
}

function syncBanner(client: MatrixClient): string | null {
  const state = client.getSyncState();
  if (state === null) return t("app.connecting");
  if (state === SyncState.Error) {
    const err = client.getSyncStateData()?.error;
    if (err instanceof MatrixError && err.httpStatus === 404) return t("app.syncUnsupported");
    return t("app.syncError");
  }
  if (state === SyncState.Reconnecting) return t("app.syncError");
  return null;
}

function ListLandmark(props: { main: boolean; children: ComponentChildren }) {
  return props.main ? (
    <main class="list-main" aria-label={t("nav.rooms")}>
      {props.children}
    </main>
  ) : (
    <>{props.children}</>
  );
}

export function Shell({ session, onSignOut }: Props) {
  const client = useClient();
  useEmitterTick(client, [ClientEvent.Sync]);
  const narrow = useNarrow();
  const [spaceId, setSpaceId] = useState<string | null>(() => localStorage.getItem("salon.space"));
  const [roomId, setRoomIdState] = useState<string | null>(roomFromHash);
  const [showMembers, setShowMembers] = useState(false);
  // The right-hand panel shows the members or the threads, not both.
  const [showThreads, setShowThreads] = useState(false);
  const [spaceHome, setSpaceHome] = useState(false);
  const [dialog, setDialog] = useState<DialogState | null>(null);
  // A search result chosen: its room shows that message (a new object per jump).
  const [jump, setJump] = useState<{ roomId: string; eventId: string } | null>(null);
  useEffect(() => startNotifications(client), [client]);
  // A jump holds only while its room stays open (not again on coming back).
  useEffect(() => setJump((j) => (j && j.roomId !== roomId ? null : j)), [roomId]);

  const setRoomId = useCallback((id: string | null) => {
    setRoomIdState(id);
    const hash = id ? `#/room/${encodeURIComponent(id)}` : "";
    if (window.location.hash !== hash) {
      window.history.pushState(null, "", window.location.pathname + window.location.search + hash);
    }
  }, []);

  useEffect(() => {
    const h = () => setRoomIdState(roomFromHash());
    window.addEventListener("popstate", h);
    window.addEventListener("hashchange", h);
    return () => {
      window.removeEventListener("popstate", h);
      window.removeEventListener("hashchange", h);
    };
  }, []);

  const selectSpace = useCallback(
    (id: string | null) => {
      setSpaceId(id);
      setSpaceHome(false);
      if (id) localStorage.setItem("salon.space", id);
      else localStorage.removeItem("salon.space");
      setRoomId(null);
    },
    [setRoomId],
  );

  useEffect(() => setOpenRoom(roomId), [roomId]);

  // Ctrl+K / Cmd+K: the room switcher, from anywhere.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === "k") {
        e.preventDefault();
        setDialog({ kind: "switcher" });
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const banner = syncBanner(client);
  const room = roomId ? client.getRoom(roomId) : null;
  // A space opened as a room (a link, the address bar) shows as a space.
  useEffect(() => {
    if (room?.isSpaceRoom()) selectSpace(room.roomId);
  }, [room, room?.isSpaceRoom(), selectSpace]);
  const space = spaceId ? client.getRoom(spaceId) : null;
  // On a phone the list or the main pane shows, never both.
  const mainSelected = roomId !== null || (spaceHome && space !== null);
  const showList = !narrow || !mainSelected;
  const showMain = !narrow || mainSelected;
  const synced = client.getSyncState() === SyncState.Prepared || client.getSyncState() === SyncState.Syncing;

  // After signing in (or a reload) focus goes to the list or the open
  // room's message box, once the rooms are there.
  useEffect(() => {
    if (synced) focusIfLost();
  }, [synced]);

  let main = null;
  if (room) {
    main = (
      <RoomView
        key={room.roomId}
        room={room}
        narrow={narrow}
        membersShown={showMembers}
        onBack={() => setRoomId(null)}
        onToggleMembers={() => {
          setShowThreads(false);
          setShowMembers((v) => !v);
        }}
        onInvite={() => setDialog({ kind: "invite", roomId: room.roomId })}
        onSettings={() => setDialog({ kind: "roomSettings", roomId: room.roomId })}
        onLeave={() => setDialog({ kind: "leave", roomId: room.roomId })}
        onSearch={() => setDialog({ kind: "search", roomId: room.roomId })}
        onThreads={() => {
          setShowMembers(false);
          setShowThreads(true);
        }}
        jumpTo={jump?.roomId === room.roomId ? jump : null}
      />
    );
  } else if (space && !roomId) {
    main = (
      <SpaceHome
        key={space.roomId}
        space={space}
        narrow={narrow}
        onBack={() => setSpaceHome(false)}
        onOpen={setRoomId}
        onSelectSpace={selectSpace}
        onCreateRoom={() => setDialog({ kind: "createRoom", space: space.roomId })}
        onCreateSubspace={() => setDialog({ kind: "createSpace", parent: space.roomId })}
        onAddRooms={() => setDialog({ kind: "addToSpace", space: space.roomId })}
        onInvite={() => setDialog({ kind: "invite", roomId: space.roomId })}
      />
    );
  } else {
    main = (
      <main class="main empty" aria-label={t("app.name")}>
        {narrow && (
          <button type="button" class="icon back" aria-label={t("nav.back")} onClick={() => setRoomId(null)}>
            <Icon name="back" />
          </button>
        )}
        <p>{roomId && !synced ? t("app.loading") : t("room.select")}</p>
      </main>
    );
  }

  return (
    <div class={`shell${narrow ? " narrow" : ""}${(showMembers || showThreads) && room ? " with-members" : ""}`}>
      <a
        class="skip-link"
        href={room ? "#composer-input" : "#room-list"}
        onClick={(e) => {
          e.preventDefault();
          const target = document.querySelector<HTMLElement>(room ? "#composer-input" : ".room-list .room-button, .room-list input");
          target?.focus();
        }}
      >
        {room ? t("nav.skipComposer") : t("nav.skipList")}
      </a>
      {banner && (
        <div class="banner" role="status">
          {banner}
        </div>
      )}
      <EncryptionPanel />
      {showList && (
        <SpacesBar
          session={session}
          selected={spaceId}
          onSelect={selectSpace}
          onCreateSpace={() => setDialog({ kind: "createSpace", parent: null })}
          onExplore={() => setDialog({ kind: "directory" })}
          onSettings={() => setDialog({ kind: "settings" })}
        />
      )}
      {showList && (
        // On a phone the list is the page's main content when no room shows.
        <ListLandmark main={narrow && !showMain}>
        <RoomList
          spaceId={spaceId}
          selected={roomId}
          onSelect={setRoomId}
          onSelectSpace={selectSpace}
          onSpaceHome={() => {
            setRoomId(null);
            setSpaceHome(true);
          }}
          onCreateRoom={() => setDialog({ kind: "createRoom", space: spaceId })}
          onStartChat={() => setDialog({ kind: "startChat" })}
          onAddRooms={space ? () => setDialog({ kind: "addToSpace", space: space.roomId }) : undefined}
          synced={synced}
        />
        </ListLandmark>
      )}
      {showMain && main}
      <OngoingCallBar openRoomId={roomId} onOpen={setRoomId} />
      {room && showMembers && (
        <MembersPanel room={room} onClose={() => setShowMembers(false)} onInvite={() => setDialog({ kind: "invite", roomId: room.roomId })} />
      )}
      {room && showThreads && <ThreadsPanel key={room.roomId} room={room} onClose={() => setShowThreads(false)} />}
      <Dialogs
        state={dialog}
        session={session}
        onClose={() => setDialog(null)}
        onOpenRoom={(id) => {
          setDialog(null);
          setRoomId(id || null);
        }}
        onOpenSpace={(id) => {
          setDialog(null);
          selectSpace(id);
        }}
        onSignOut={onSignOut}
        onShowEvent={(id, eventId) => {
          setDialog(null);
          setRoomId(id);
          setJump({ roomId: id, eventId });
        }}
      />
      <DirectCallLayer />
    </div>
  );
}
