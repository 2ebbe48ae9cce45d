// Model output as safe Markdown: raw HTML is shown as text, the result is sanitised by DOMPurify,
// and citation markers [n] become links to their sources. They are the only links: a Markdown link
// or bare URL in an answer comes from contributed text (or a model quoting it), and a link
// labelled "2" would pass for a citation, so every one is shown as the text it was written as.
import { Marked } from "/vendor/marked.esm.js";
import DOMPurify from "/vendor/purify.es.mjs";

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// Markdown shown as written; linkMarkers leaves its text alone (a "[2]" in it is not our marker).
function literal(raw) {
  return `<span class="literal">${escapeHtml(raw ?? "")}</span>`;
}

// Answers quote contributed text, so HTML inside them is data: marked shows it as text
// (DOMPurify below is the second wall, for whatever Markdown itself produces).
const markdown = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html(token) {
      return escapeHtml(token.text ?? token.raw ?? "");
    },
    link(token) {
      return literal(token.raw);
    },
    image(token) {
      return literal(token.raw);
    },
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "img"],
  FORBID_ATTR: ["style"],
  RETURN_DOM_FRAGMENT: true,
};

const MARKER = /\[(\d{1,3})\]/g;
const HAS_MARKER = /\[\d{1,3}\]/;

/**
 * Render `text` into `target`. `markers` is the set of verified citation markers (null while
 * streaming: every marker is linked); `sourceId(n)` names the element of source n.
 */
export function renderAnswer(target, text, markers, sourceId) {
  const fragment = DOMPurify.sanitize(markdown.parse(text), PURIFY);
  linkMarkers(fragment, markers, sourceId);
  target.replaceChildren(fragment);
}

function linkMarkers(root, markers, sourceId) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      return node.parentElement && node.parentElement.closest("code, pre, a, .literal")
        ? NodeFilter.FILTER_REJECT
        : NodeFilter.FILTER_ACCEPT;
    },
  });
  const nodes = [];
  while (walker.nextNode()) if (HAS_MARKER.test(walker.currentNode.data)) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const parts = [];
    let last = 0;
    node.data.replace(MARKER, (match, n, offset) => {
      parts.push(document.createTextNode(node.data.slice(last, offset)));
      const marker = Number(n);
      if (markers === null || markers.has(marker)) {
        const link = document.createElement("a");
        link.className = "cite";
        link.href = `#${sourceId(marker)}`;
        link.dataset.marker = String(marker);
        link.textContent = String(marker);
        link.setAttribute("aria-label", `source ${marker}`);
        parts.push(link);
      } else {
        // A marker whose citation did not check out against its source: shown, but not a link.
        const span = document.createElement("span");
        span.className = "cite unverified";
        span.title = "this citation was not verified against its source";
        span.textContent = String(marker);
        parts.push(span);
      }
      last = offset + match.length;
      return match;
    });
    parts.push(document.createTextNode(node.data.slice(last)));
    node.replaceWith(...parts);
  }
}
