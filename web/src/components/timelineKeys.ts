// The timeline as one Tab stop (the ARIA "roving tabindex"): one message
// is in the Tab order, the newest unless the person moved; the arrow keys,
// Home and End move between messages; the buttons and links of a message
// join the Tab order only while focus is in that message. The tiles render
// tabIndex 0; this keeps the DOM's tabindex right after every change.
import type { RefObject } from "preact";
import { useEffect } from "preact/hooks";

const inner = "a[href], button, input, select, textarea, [tabindex]:not(li)";

export function useTimelineKeys(list: RefObject<HTMLElement | null>): void {
  useEffect(() => {
    const ol = list.current;
    if (!ol) return;
    let active: HTMLElement | null = null;
    let chosen = false;
    const messages = () => [...ol.querySelectorAll<HTMLElement>(":scope > li.event.message")];

    const apply = () => {
      const all = messages();
      if (!active || !active.isConnected || !chosen) active = all.at(-1) ?? null;
      for (const li of all) {
        const want = li === active ? 0 : -1;
        if (li.tabIndex !== want) li.tabIndex = want;
      }
      const focus = document.activeElement;
      for (const el of ol.querySelectorAll<HTMLElement>(`:scope > li.event ${inner}`)) {
        const li = el.closest<HTMLElement>("li.event");
        const want = li && li === active && li.contains(focus) ? 0 : -1;
        if (el.tabIndex !== want) el.tabIndex = want;
      }
    };

    const onFocusIn = (e: FocusEvent) => {
      const li = (e.target as HTMLElement).closest<HTMLElement>("li.event.message");
      if (li && ol.contains(li)) {
        active = li;
        chosen = li !== messages().at(-1);
      }
      apply();
    };
    const onFocusOut = () => queueMicrotask(apply);

    const onKeyDown = (e: KeyboardEvent) => {
      const li = e.target as HTMLElement;
      if (!li.matches("li.event.message") || e.altKey || e.ctrlKey || e.metaKey) return;
      const all = messages();
      const i = all.indexOf(li);
      let next: HTMLElement | undefined;
      if (e.key === "ArrowUp") next = all[Math.max(0, i - 1)];
      else if (e.key === "ArrowDown") next = all[Math.min(all.length - 1, i + 1)];
      else if (e.key === "Home") next = all[0];
      else if (e.key === "End") next = all.at(-1);
      else if (e.key === "PageUp") next = all[Math.max(0, i - 10)];
      else if (e.key === "PageDown") next = all[Math.min(all.length - 1, i + 10)];
      if (!next) return;
      e.preventDefault();
      next.focus();
    };

    const observer = new MutationObserver(apply);
    observer.observe(ol, { childList: true, subtree: true });
    ol.addEventListener("focusin", onFocusIn);
    ol.addEventListener("focusout", onFocusOut);
    ol.addEventListener("keydown", onKeyDown);
    apply();
    return () => {
      observer.disconnect();
      ol.removeEventListener("focusin", onFocusIn);
      ol.removeEventListener("focusout", onFocusOut);
      ol.removeEventListener("keydown", onKeyDown);
    };
  }, [list]);
}
