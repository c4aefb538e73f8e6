// Ctrl+K (Cmd+K on a Mac): a dialog to jump to any joined room or
// conversation by typing part of its name; the arrow keys choose, Enter
// opens (the ARIA combobox pattern with a listbox).
import { KnownMembership } from "matrix-js-sdk";
import { useState } from "preact/hooks";
import { t } from "../i18n";
import { useClient } from "../hooks";
import { Avatar, Dialog } from "./common";

function fold(s: string): string {
  return s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

export function RoomSwitcher(props: { onClose: () => void; onOpenRoom: (roomId: string) => void }) {
  const client = useClient();
  const [term, setTerm] = useState("");
  const [sel, setSel] = useState(0);
  const q = fold(term.trim());
  const rooms = client
    .getRooms()
    .filter((r) => r.getMyMembership() === KnownMembership.Join && !r.isSpaceRoom())
    .filter((r) => q === "" || fold(r.name).includes(q))
    .sort((a, b) => {
      // Names starting with what was typed first, then the most recently active.
      const pa = fold(a.name).startsWith(q) ? 0 : 1;
      const pb = fold(b.name).startsWith(q) ? 0 : 1;
      return pa - pb || b.getLastActiveTimestamp() - a.getLastActiveTimestamp();
    })
    .slice(0, 30);
  const current = Math.min(sel, Math.max(0, rooms.length - 1));
  const open = (i: number) => {
    const r = rooms[i];
    if (r) props.onOpenRoom(r.roomId);
  };
  return (
    <Dialog title={t("switcher.title")} onClose={props.onClose} id="switcher">
      <input
        type="text"
        role="combobox"
        aria-label={t("switcher.label")}
        aria-expanded={rooms.length > 0}
        aria-controls="switcher-list"
        aria-activedescendant={rooms.length ? `switcher-${current}` : undefined}
        aria-autocomplete="list"
        autoComplete="off"
        value={term}
        autoFocus
        onInput={(e) => {
          setTerm(e.currentTarget.value);
          setSel(0);
        }}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown") {
            e.preventDefault();
            setSel(Math.min(current + 1, rooms.length - 1));
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            setSel(Math.max(current - 1, 0));
          } else if (e.key === "Enter") {
            e.preventDefault();
            open(current);
          }
        }}
      />
      {rooms.length === 0 ? (
        <p class="muted">{t("switcher.none")}</p>
      ) : (
        <ul id="switcher-list" class="switcher-list" role="listbox" aria-label={t("switcher.label")}>
          {rooms.map((r, i) => (
            <li key={r.roomId} id={`switcher-${i}`} role="option" aria-selected={i === current} onClick={() => open(i)}>
              <Avatar id={r.roomId} name={r.name} mxc={r.getMxcAvatarUrl()} size={24} />
              {r.name || t("rooms.empty")}
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}
