// Small pieces shared by the views: avatars, badges, authenticated images
// and the modal dialog.
import { createContext, type ComponentChildren } from "preact";
import { useContext, useEffect, useRef, useState } from "preact/hooks";
import { t } from "../i18n";
import { useClient } from "../hooks";
import { mediaBlobUrl } from "../matrix";
import { Icon } from "./icons";
import { focusIfLost } from "../focus";

function hue(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % 360;
}

function initial(name: string): string {
  const s = name.replace(/^[@#!+]/, "").trim();
  const c = s.codePointAt(0);
  return c === undefined ? "?" : String.fromCodePoint(c).toUpperCase();
}

export function Avatar(props: { id: string; name: string; mxc?: string | null | undefined; size?: number }) {
  const size = props.size ?? 32;
  const client = useClient();
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    setSrc(null);
    if (!props.mxc) return;
    let alive = true;
    const px = size * 2;
    mediaBlobUrl(client, props.mxc, { w: px, h: px }).then(
      (u) => alive && setSrc(u),
      () => undefined,
    );
    return () => {
      alive = false;
    };
  }, [client, props.mxc, size]);
  // Sizes and colours are CSS custom properties: Preact sets them through
  // the CSSOM (style.setProperty), which the style-src 'self' policy
  // allows, unlike style="" in markup.
  return (
    <span class="avatar" style={{ "--size": `${size}px`, "--hue": String(hue(props.id)) }} aria-hidden="true">
      {src ? <img src={src} alt="" /> : initial(props.name)}
    </span>
  );
}

export function Badge(props: { count: number; highlight: boolean }) {
  if (props.count <= 0) return null;
  return (
    <span class={`badge${props.highlight ? " highlight" : ""}`} aria-hidden="true">
      {props.count > 99 ? "99+" : props.count}
    </span>
  );
}

/**
 * Set (by Dialogs) when a dialog's action opens a room or one of its
 * messages: the dialog then goes without handing focus back (see Dialog).
 */
export const DialogMovedOn = createContext<{ current: boolean } | null>(null);

/**
 * A modal dialog on the native <dialog> element: it keeps focus inside,
 * closes with Escape and returns focus to where it was — unless its action
 * opened a room (DialogMovedOn), whose message box takes focus: then it is
 * removed without closing, since closing a modal dialog also hands focus
 * back to its opener, and which of the two focus moves came last would
 * depend on timing.
 */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean; id?: string }) {
  const movedOn = useContext(DialogMovedOn);
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = `${props.id ?? "dialog"}-title`;
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    const back = document.activeElement as HTMLElement | null;
    if (!d.open) d.showModal();
    const onClose = () => props.onClose();
    d.addEventListener("close", onClose);
    return () => {
      d.removeEventListener("close", onClose);
      if (movedOn?.current) {
        movedOn.current = false;
        setTimeout(focusIfLost, 0);
        return;
      }
      if (d.open) d.close();
      // The opener may be gone (a room left): focus goes somewhere useful,
      // never to the page's body.
      if (back?.isConnected) back.focus();
      else setTimeout(focusIfLost, 0);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <dialog
      ref={ref}
      class={`dialog${props.wide ? " wide" : ""}`}
      aria-labelledby={titleId}
      onKeyDown={(e) => {
        // One Escape closes the dialog, even from a search field (which
        // would spend the first one clearing its text).
        if (e.key === "Escape" && !e.defaultPrevented) {
          e.preventDefault();
          ref.current?.close();
        }
      }}
    >
      <header class="dialog-head">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" class="icon" aria-label={t("dialog.close")} onClick={() => ref.current?.close()}>
          <Icon name="close" />
        </button>
      </header>
      <div class="dialog-body">{props.children}</div>
    </dialog>
  );
}

/** An image from authenticated media: a thumbnail first, the file if the server has none. */
export function AuthImage(props: {
  mxc: string;
  thumb?: { w: number; h: number } | undefined;
  alt: string;
  width?: number | undefined;
  height?: number | undefined;
  class?: string;
  onClick?: () => void;
}) {
  const client = useClient();
  const [src, setSrc] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let alive = true;
    setSrc(null);
    setFailed(false);
    const full = () => mediaBlobUrl(client, props.mxc);
    (props.thumb ? mediaBlobUrl(client, props.mxc, props.thumb).catch(full) : full()).then(
      (u) => alive && setSrc(u),
      () => alive && setFailed(true),
    );
    return () => {
      alive = false;
    };
  }, [client, props.mxc, props.thumb?.w, props.thumb?.h]);
  // The box keeps the image's proportions before it loads, so the
  // timeline does not jump.
  const style = props.width && props.height ? { "--w": String(props.width), "--h": String(props.height) } : undefined;
  if (failed) return <span class="media-failed">{props.alt}</span>;
  const img = src ? <img src={src} alt={props.alt} class={props.class} /> : <span class="media-loading" aria-label={t("app.loading")} />;
  return props.onClick ? (
    <button type="button" class="media-box" style={style} onClick={props.onClick} aria-label={props.alt}>
      {img}
    </button>
  ) : (
    <span class="media-box" style={style}>
      {img}
    </span>
  );
}
