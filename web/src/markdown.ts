// Markdown for sending, and sanitising of the HTML others send
// (org.matrix.custom.html, with the tags and attributes the spec suggests:
// Client-Server API § m.room.message msgtypes, "HTML").
import DOMPurify from "dompurify";
import { Marked } from "marked";

const marked = new Marked({ gfm: true, breaks: true, async: false });

const allowedTags = [
  "font", "del", "s", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub",
  "li", "b", "i", "u", "strong", "em", "strike", "code", "hr", "br", "div", "table", "thead", "tbody",
  "tr", "th", "td", "caption", "pre", "span", "details", "summary",
];
const allowedAttrs = ["href", "start", "class", "title", "data-mx-spoiler", "colspan", "rowspan"];
const safeSchemes = /^(https?|ftp|mailto|magnet):/i;

let hooked = false;
function hook(): void {
  if (hooked) return;
  hooked = true;
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      const href = node.getAttribute("href") ?? "";
      if (!safeSchemes.test(href)) {
        node.removeAttribute("href");
        return;
      }
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
      const m = /^https:\/\/matrix\.to\/#\/(@[^/?]+)/.exec(href);
      if (m) {
        node.setAttribute("class", "mention");
        node.setAttribute("data-user-id", decodeURIComponent(m[1] ?? ""));
      }
    } else if (node.hasAttribute("class")) {
      // Only the language hint of code blocks and our own mention pills.
      const keep = (node.getAttribute("class") ?? "").split(/\s+/).filter((c) => /^language-[\w-]+$/.test(c));
      if (keep.length) node.setAttribute("class", keep.join(" "));
      else node.removeAttribute("class");
    }
  });
}

/** Sanitises HTML from an event's formatted_body (or our own Markdown). */
export function sanitizeHtml(html: string): string {
  hook();
  // Reply fallbacks (removed from the spec in v1.13) repeat the original.
  const noFallback = html.replace(/<mx-reply>[\s\S]*?<\/mx-reply>/gi, "");
  return DOMPurify.sanitize(noFallback, {
    ALLOWED_TAGS: allowedTags,
    ALLOWED_ATTR: [...allowedAttrs, "data-user-id", "target", "rel"],
    ALLOW_DATA_ATTR: false,
    ALLOWED_URI_REGEXP: safeSchemes,
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

const urlRe = /\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]'}]/g;

/** Plain text as HTML, with links made clickable. */
export function linkify(text: string): string {
  let out = "";
  let last = 0;
  for (const m of text.matchAll(urlRe)) {
    const i = m.index ?? 0;
    out += escapeHtml(text.slice(last, i));
    out += `<a href="${escapeHtml(m[0])}">${escapeHtml(m[0])}</a>`;
    last = i + m[0].length;
  }
  out += escapeHtml(text.slice(last));
  return sanitizeHtml(out.replace(/\n/g, "<br>"));
}

/** Strips a legacy reply fallback ("> <@user> quoted" lines) from a body. */
export function stripReplyFallback(body: string): string {
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && lines[i]?.startsWith("> ")) i++;
  if (i > 0 && lines[i] === "") return lines.slice(i + 1).join("\n");
  return body;
}

export interface Composed {
  body: string;
  html: string | null;
  mentions: string[];
}

// HTML typed in a message is shown as text, not interpreted: what we send
// is then safe by construction, and receivers sanitise it anyway.
marked.use({
  renderer: {
    html({ text }) {
      return escapeHtml(text);
    },
  },
});

/**
 * Turns what the person typed into a message: the Markdown source as the
 * plain body, and HTML when the Markdown formats anything. Mentions of
 * known users (by ID) become matrix.to links and are listed for m.mentions.
 */
export function composeMessage(text: string, knownUsers: Map<string, string>): Composed {
  const mentions = new Set<string>();
  const md = text.replace(/(^|[\s(])(@[a-z0-9._=\-/+]+:[a-zA-Z0-9.\-:[\]]+[a-zA-Z0-9\]])/g, (all, pre: string, uid: string) => {
    if (!knownUsers.has(uid)) return all;
    mentions.add(uid);
    const name = knownUsers.get(uid) || uid;
    return `${pre}[${name.replace(/[[\]\\]/g, "\\$&")}](https://matrix.to/#/${uid})`;
  });
  let html = (marked.parse(md) as string).trim();
  // Markdown that formats nothing is sent as plain text only.
  const plain = `<p>${escapeHtml(text).replace(/\n/g, "<br>")}</p>`;
  if (mentions.size === 0 && html === plain) {
    return { body: text, html: null, mentions: [] };
  }
  // A single paragraph goes without <p>, as other clients send it.
  const single = /^<p>([\s\S]*)<\/p>$/.exec(html);
  if (single && !single[1]?.includes("<p>")) html = single[1] ?? html;
  return { body: text, html, mentions: [...mentions] };
}
