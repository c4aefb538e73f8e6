import { MsgType, RelationType, type MatrixEvent, type Room, type RoomMember } from "matrix-js-sdk";
import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../i18n";
import { useClient } from "../hooks";
import { composeMessage } from "../markdown";
import { displayName } from "../matrix";
import { plainText } from "./Timeline";
import { Icon } from "./icons";

interface Props {
  room: Room;
  replyTo: MatrixEvent | null;
  editing: MatrixEvent | null;
  onCancel: () => void;
  onSent: () => void;
  onEditLast: () => void;
  onFiles: (files: File[]) => void;
}

/** The word being typed at the caret, when it starts a mention. */
function mentionQuery(text: string, caret: number): { start: number; q: string } | null {
  const before = text.slice(0, caret);
  const m = /(^|\s)(@[^\s@]*)$/.exec(before);
  if (!m || !m[2] || m[2].length < 2) return null;
  return { start: caret - m[2].length, q: m[2].slice(1).toLowerCase() };
}

export function Composer(props: Props) {
  const client = useClient();
  const { room } = props;
  const [text, setText] = useState("");
  const [suggest, setSuggest] = useState<{ start: number; items: RoomMember[]; sel: number } | null>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const typingSent = useRef(0);

  useEffect(() => {
    if (props.editing) {
      setText(String(props.editing.getContent().body ?? ""));
      area.current?.focus();
    }
  }, [props.editing]);
  useEffect(() => {
    if (props.replyTo) area.current?.focus();
  }, [props.replyTo]);
  useEffect(() => {
    // Grow with the text, up to the CSS max-height.
    const el = area.current;
    if (el) {
      el.style.height = "auto";
      el.style.height = `${el.scrollHeight}px`;
    }
  }, [text]);
  useEffect(
    () => () => {
      if (typingSent.current) void client.sendTyping(room.roomId, false, 0).catch(() => undefined);
    },
    [room.roomId],
  );

  const typing = (on: boolean) => {
    const now = Date.now();
    if (on && now - typingSent.current < 10_000) return;
    if (!on && typingSent.current === 0) return;
    typingSent.current = on ? now : 0;
    void client.sendTyping(room.roomId, on, on ? 20_000 : 0).catch(() => undefined);
  };

  const send = async () => {
    const body = text.trim();
    if (!body) return;
    const known = new Map(room.getJoinedMembers().map((m) => [m.userId, m.name]));
    const msg = composeMessage(body, known);
    const content: Record<string, unknown> = { msgtype: MsgType.Text, body: msg.body };
    if (msg.html !== null) {
      content.format = "org.matrix.custom.html";
      content.formatted_body = msg.html;
    }
    const mentions = new Set(msg.mentions);
    if (props.replyTo?.getSender() && props.replyTo.getSender() !== client.getUserId()) mentions.add(props.replyTo.getSender()!);
    content["m.mentions"] = mentions.size ? { user_ids: [...mentions] } : {};
    let out = content;
    if (props.editing) {
      out = {
        msgtype: MsgType.Text,
        body: `* ${msg.body}`,
        ...(msg.html !== null ? { format: "org.matrix.custom.html", formatted_body: `* ${msg.html}` } : {}),
        "m.new_content": content,
        "m.mentions": {},
        "m.relates_to": { rel_type: RelationType.Replace, event_id: props.editing.getId() },
      };
    } else if (props.replyTo) {
      content["m.relates_to"] = { "m.in_reply_to": { event_id: props.replyTo.getId() } };
    }
    setText("");
    setSuggest(null);
    typing(false);
    props.onSent();
    await client.sendMessage(room.roomId, out as never);
  };

  const pick = (m: RoomMember) => {
    if (!suggest) return;
    const el = area.current;
    const caret = el?.selectionStart ?? text.length;
    const next = `${text.slice(0, suggest.start)}${m.userId} ${text.slice(caret)}`;
    setText(next);
    setSuggest(null);
    requestAnimationFrame(() => {
      const pos = suggest.start + m.userId.length + 1;
      el?.focus();
      el?.setSelectionRange(pos, pos);
    });
  };

  // suggestMentions lists the joined members matching an @-mention being
  // typed; it reports whether one is.
  const suggestMentions = (value: string, caret: number): boolean => {
    const mq = mentionQuery(value, caret);
    if (!mq) {
      setSuggest(null);
      return false;
    }
    const items = room
      .getJoinedMembers()
      .filter((m) => m.userId.toLowerCase().includes(mq.q) || m.name.toLowerCase().includes(mq.q))
      .slice(0, 6);
    setSuggest(items.length ? { start: mq.start, items, sel: 0 } : null);
    return true;
  };

  const onInput = (e: Event) => {
    const el = e.currentTarget as HTMLTextAreaElement;
    setText(el.value);
    typing(el.value.trim() !== "");
    if (suggestMentions(el.value, el.selectionStart) && !room.membersLoaded()) {
      // A large room's members are not all loaded on opening it (lazy
      // loading): the first mention loads them, then suggests again. (Once
      // loaded, the SDK's promise answers true forever: not asked again.)
      const value = el.value;
      void room
        .loadMembersIfNeeded()
        .then((loaded) => {
          if (loaded && el.value === value) suggestMentions(el.value, el.selectionStart);
        })
        .catch(() => undefined);
    }
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (suggest) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        const d = e.key === "ArrowDown" ? 1 : -1;
        setSuggest({ ...suggest, sel: (suggest.sel + d + suggest.items.length) % suggest.items.length });
        e.preventDefault();
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        const m = suggest.items[suggest.sel];
        if (m) pick(m);
        e.preventDefault();
        return;
      }
      if (e.key === "Escape") {
        setSuggest(null);
        e.preventDefault();
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    } else if (e.key === "Escape" && (props.replyTo || props.editing)) {
      e.preventDefault();
      if (props.editing) setText("");
      props.onCancel();
    } else if (e.key === "ArrowUp" && text === "" && !props.editing) {
      e.preventDefault();
      props.onEditLast();
    }
  };

  const context = props.editing
    ? t("composer.editing")
    : props.replyTo
      ? t("composer.replyingTo", { user: displayName(room, props.replyTo.getSender() ?? "") })
      : null;

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      {context && (
        <div class="composer-context">
          <span>{context}</span>
          {props.replyTo && !props.editing && <q class="muted">{plainText(props.replyTo).slice(0, 120)}</q>}
          <button
            type="button"
            class="link"
            onClick={() => {
              if (props.editing) setText("");
              props.onCancel();
            }}
          >
            {t("composer.cancel")}
          </button>
        </div>
      )}
      {suggest && (
        <ul class="suggestions" role="listbox" id="mention-suggestions" aria-label={t("room.members")}>
          {suggest.items.map((m, i) => (
            <li
              key={m.userId}
              role="option"
              id={`mention-${i}`}
              aria-selected={i === suggest.sel}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(m);
              }}
            >
              {m.name} <small class="muted">{m.userId}</small>
            </li>
          ))}
        </ul>
      )}
      <div class="composer-row">
        <button type="button" class="icon" aria-label={t("composer.attach")} title={t("composer.attach")} onClick={() => fileInput.current?.click()}>
          <Icon name="attach" />
        </button>
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          aria-label={t("composer.attach")}
          onChange={(e) => {
            const el = e.currentTarget;
            const files = Array.from(el.files ?? []);
            el.value = "";
            if (files.length) props.onFiles(files);
          }}
        />
        <label class="visually-hidden" for="composer-input">
          {t("composer.label")}
        </label>
        <textarea
          id="composer-input"
          ref={area}
          rows={1}
          value={text}
          placeholder={t("composer.placeholder", { name: room.name })}
          aria-autocomplete="list"
          aria-controls={suggest ? "mention-suggestions" : undefined}
          aria-activedescendant={suggest ? `mention-${suggest.sel}` : undefined}
          onInput={onInput}
          onKeyDown={onKeyDown}
          onBlur={() => typing(false)}
        />
        <button type="submit" class="primary" disabled={text.trim() === ""}>
          {t("composer.send")}
        </button>
      </div>
    </form>
  );
}
