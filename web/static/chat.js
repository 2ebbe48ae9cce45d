// The chat page: conversations, streamed answers, citations and their credits.
import { api, apiKey, ApiError, copyText, errorFrom, formatAmount, formatToken, h, installKeyDialog, percent, shortAddress } from "/static/api.js";
import { renderAnswer } from "/static/render.js";

const $ = (id) => document.getElementById(id);
const thread = $("thread");
const prompt = $("prompt");
const picker = $("model-picker");
const MODEL_KEY = "openchat.model";

const welcomeNode = $("welcome");
const state = {
  conversationId: null,
  history: [], // [{role, content}] sent with each question
  controller: null,
};

const openKeyDialog = installKeyDialog($("key-button"));

// ---------------------------------------------------------------- models
async function loadModels() {
  try {
    const { data } = await api("/v1/models");
    const saved = sessionStorage.getItem(MODEL_KEY);
    picker.replaceChildren(...data.map((m) => h("option", { value: m.id, text: m.id })));
    if (saved && data.some((m) => m.id === saved)) picker.value = saved;
  } catch (err) {
    picker.replaceChildren(h("option", { value: "openchat-extractive", text: "openchat-extractive" }));
  }
}
picker.addEventListener("change", () => sessionStorage.setItem(MODEL_KEY, picker.value));

// ---------------------------------------------------------------- conversations
async function loadConversations() {
  let data = [];
  try {
    ({ data } = await api("/v1/conversations"));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) openKeyDialog(err.explain());
    return;
  }
  const list = $("conversation-list");
  list.replaceChildren(...data.map(conversationItem));
  $("conversation-empty").hidden = data.length > 0;
}

function conversationItem(conv) {
  const active = conv.id === state.conversationId;
  const open = h("button", { class: "conv-open", type: "button", title: conv.title, text: conv.title,
    onclick: () => openConversation(conv.id) });
  const rename = h("button", { class: "icon-button conv-rename", type: "button", "aria-label": `Rename ${conv.title}`,
    title: "Rename", text: "✎", onclick: () => startRename(item, conv) });
  const remove = h("button", { class: "icon-button conv-delete", type: "button", "aria-label": `Delete ${conv.title}`,
    title: "Delete", text: "✕", onclick: () => deleteConversation(conv) });
  const item = h("li", { class: `conv${active ? " active" : ""}`, "data-id": conv.id }, open, h("span", { class: "conv-actions" }, rename, remove));
  return item;
}

function startRename(item, conv) {
  const input = h("input", { class: "conv-title-input", "aria-label": "New title", maxlength: "200" });
  input.value = conv.title;
  const form = h("form", { class: "conv-rename-form" }, input);
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title && title !== conv.title) {
      try {
        await api(`/v1/conversations/${encodeURIComponent(conv.id)}`, { method: "PATCH", body: { title } });
        if (conv.id === state.conversationId) $("conversation-title").textContent = title;
      } catch (err) {
        showError(err);
      }
    }
    await loadConversations();
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); finish(true); });
  input.addEventListener("keydown", (e) => { if (e.key === "Escape") finish(false); });
  input.addEventListener("blur", () => finish(true));
  item.replaceChildren(form);
  input.focus();
  input.select();
}

async function deleteConversation(conv) {
  if (!window.confirm(`Delete “${conv.title}”? Its answers stay on record for their payouts.`)) return;
  try {
    await api(`/v1/conversations/${encodeURIComponent(conv.id)}`, { method: "DELETE" });
  } catch (err) {
    showError(err);
    return;
  }
  if (conv.id === state.conversationId) newChat();
  await loadConversations();
}

function newChat() {
  stop();
  state.conversationId = null;
  state.history = [];
  $("conversation-title").textContent = "";
  thread.replaceChildren(welcomeNode);
  welcomeNode.hidden = false;
  document.querySelectorAll(".conv.active").forEach((el) => el.classList.remove("active"));
  closeSidebar();
  prompt.focus();
}


async function openConversation(id) {
  stop();
  closeSidebar();
  let conv;
  try {
    conv = await api(`/v1/conversations/${encodeURIComponent(id)}`);
  } catch (err) {
    showError(err);
    return;
  }
  state.conversationId = conv.id;
  state.history = conv.messages.map((m) => ({ role: m.role, content: m.content }));
  $("conversation-title").textContent = conv.title;
  thread.replaceChildren();
  for (const m of conv.messages) {
    if (m.role === "user") thread.append(userMessage(m.content));
    else if (m.role === "assistant") {
      const view = assistantMessage();
      thread.append(view.root);
      view.setText(m.content, new Set());
      if (m.answer_id) {
        api(`/v1/answers/${encodeURIComponent(m.answer_id)}`)
          .then((a) => view.finish(fromAnswer(a)))
          .catch(() => view.finish(null));
      }
    }
  }
  document.querySelectorAll(".conv").forEach((el) => el.classList.toggle("active", el.dataset.id === id));
  scrollToEnd();
}

// ---------------------------------------------------------------- messages
function userMessage(text) {
  return h("div", { class: "msg user" }, h("div", { class: "bubble", text }));
}

let answerSeq = 0;

/** An assistant turn: its text (Markdown), its actions and its sources panel. */
function assistantMessage() {
  const key = `a${++answerSeq}`;
  const body = h("div", { class: "answer-body markdown" });
  const status = h("div", { class: "answer-status", hidden: true });
  const copy = h("button", { class: "chip copy", type: "button", text: "Copy", hidden: true });
  const actions = h("div", { class: "answer-actions" }, copy);
  const sources = h("section", { class: "sources", hidden: true });
  const root = h("div", { class: "msg assistant", "data-key": key }, body, status, actions, sources);
  let text = "";
  const sourceId = (n) => `src-${key}-${n}`;
  copy.addEventListener("click", async () => {
    copy.textContent = (await copyText(text)) ? "Copied" : "Copy failed";
    setTimeout(() => { copy.textContent = "Copy"; }, 1500);
  });
  body.addEventListener("click", (event) => {
    const link = event.target.closest("a.cite");
    if (!link) return;
    event.preventDefault();
    highlight(sources, sourceId(Number(link.dataset.marker)));
  });
  return {
    root,
    sourceId,
    setText(value, markers = null) {
      text = value;
      renderAnswer(body, value, markers, sourceId);
    },
    setStatus(message, kind = "note") {
      status.hidden = !message;
      status.className = `answer-status ${kind}`;
      status.textContent = message || "";
    },
    /** info: {citations, credits, price, answered} or null when unknown. */
    finish(info) {
      copy.hidden = !text;
      if (!info) return;
      const markers = new Set(info.citations.map((c) => c.marker));
      renderAnswer(body, text, markers, sourceId);
      renderSources(sources, info, sourceId);
    },
  };
}

function highlight(panel, id) {
  panel.querySelectorAll(".source.highlight").forEach((el) => el.classList.remove("highlight"));
  const target = document.getElementById(id);
  if (!target) return;
  target.classList.add("highlight");
  target.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

/** Normalise the streamed final chunk into what the sources panel shows. */
function fromStream(final) {
  const oc = final.openchat || {};
  const credits = new Map((oc.credits || []).map((c) => [c.contributor, { amount: c.amount, status: "credited" }]));
  return { citations: final.citations || [], credits, price: oc.price, answered: oc.answered, answerId: oc.answer_id };
}

/** Normalise GET /v1/answers/{id}. */
function fromAnswer(a) {
  const credits = new Map((a.credits || []).map((c) => [c.contributor, { amount: c.amount, status: c.status ?? c.payout_status }]));
  // Each source's own share of its contributor's credit (the API splits it exactly by weight).
  const citations = (a.sources || []).map((s) => ({ ...s, status: s.payout_status, amount: s.credited_amount, tx: s.settlement_tx }));
  return { citations, credits, price: a.price, answered: a.answered, answerId: a.id };
}

/** "Caroline · 8 May 2023, 13:56": who said a message and when (null for plain knowledge). */
function saidBy(c) {
  if (!c.speaker && !c.timestamp) return null;
  let when = "";
  if (c.timestamp) {
    const d = new Date(c.timestamp.length <= 10 ? `${c.timestamp}T00:00:00` : c.timestamp);
    when = Number.isNaN(d.getTime()) ? c.timestamp
      : d.toLocaleString(undefined, { day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit" });
  }
  return h("p", { class: "source-said muted small", text: [c.speaker, when].filter(Boolean).join(" · ") });
}

function renderSources(panel, info, sourceId) {
  panel.hidden = false;
  const head = h("div", { class: "sources-head" }, h("h3", { text: info.citations.length ? "Sources" : "No sources" }));
  if (info.price !== undefined && info.price !== null) head.append(h("span", { class: "muted small", text: `price ${formatToken(info.price)}` }));
  if (!info.citations.length) {
    panel.replaceChildren(head, h("p", { class: "muted small no-sources",
      text: "This answer cites no contributed source, so no contributor was credited." }));
    return;
  }
  const perContributor = new Map();
  for (const c of info.citations) perContributor.set(c.contributor, (perContributor.get(c.contributor) || 0) + 1);
  const ids = new Set();
  const items = info.citations.map((c) => {
    // A first writer's row shares its copy's marker; the marker's link goes to the first row listed.
    let id = sourceId(c.marker);
    if (ids.has(id)) id = `${id}-first-${c.chunk_id}`;
    ids.add(id);
    const credit = info.credits.get(c.contributor);
    const shared = perContributor.get(c.contributor) > 1;
    const status = (credit && credit.status) || c.status || "not credited";
    let amount = "nothing credited";
    if (c.amount !== undefined && c.amount !== null) amount = `credited ${formatToken(c.amount)}`;
    else if (credit) amount = `credited ${formatToken(credit.amount)}${shared ? " (this contributor's total)" : ""}`;
    return h("li", { class: "source", id, "data-marker": c.marker, "data-copied-by": c.copied_by ?? null },
      h("div", { class: "source-top" },
        h("span", { class: "source-marker", text: String(c.marker) }),
        h("span", { class: "source-title", text: c.title || "Untitled snippet" })),
      c.copied_by ? h("p", { class: "source-first muted small",
        text: `Wrote first words that source ${c.marker} repeats, so it is credited for them.` }) : null,
      saidBy(c),
      h("p", { class: "source-snippet", text: c.snippet || "" }),
      h("div", { class: "source-meta" },
        h("a", { class: "contributor", href: `/earnings/${encodeURIComponent(c.contributor)}`, title: c.contributor,
          text: shortAddress(c.contributor) }),
        h("span", { class: "weight", text: `weight ${percent(c.weight_ppm)}` }),
        h("span", { class: "amount", text: amount }),
        h("span", { class: `status status-${status.replace(/[^a-z_]/g, "")}`, text: status.replace("_", " ") }),
        c.tx ? h("span", { class: "mono tx", title: c.tx, text: `tx ${shortAddress(c.tx)}` }) : null));
  });
  panel.replaceChildren(head, shareBars(info, perContributor), h("ol", { class: "source-list" }, items));
}

/** Each source's share of the price as a bar, and the platform's part, from the exact integer
 *  amounts (data-amount / data-price). Plain CSS bars, not uPlot: one short bar per source sits
 *  in the text flow of each answer, where a canvas per answer would add nothing but weight. */
function shareBars(info, perContributor) {
  const price = info.price === undefined || info.price === null ? 0n : BigInt(info.price);
  if (price <= 0n) return null;
  const parts = [];
  for (const c of info.citations) {
    let amount = c.amount;
    // The stream carries credits per contributor: a contributor's only source has all of it.
    if ((amount === undefined || amount === null) && perContributor.get(c.contributor) === 1) {
      const credit = info.credits.get(c.contributor);
      amount = credit ? credit.amount : 0;
    }
    if (amount === undefined || amount === null) return null; // the recorded answer will tell
    parts.push({ label: `[${c.marker}] ${c.title || "Untitled snippet"}`, amount: BigInt(amount), marker: c.marker });
  }
  const credited = parts.reduce((sum, p) => sum + p.amount, 0n);
  if (credited > price) return null;
  parts.push({ label: "platform fee", amount: price - credited, fee: true });
  const rows = parts.map((p) => {
    const fill = h("div", { class: `share-fill${p.fee ? " fee" : ""}` });
    // Set through the CSSOM (the CSP refuses style attributes, not this).
    fill.style.width = `${(Number(p.amount) * 100) / Number(price)}%`;
    const tenths = (p.amount * 1000n) / price;
    return h("div", { class: "share", "data-amount": p.amount.toString(), "data-price": price.toString(),
      "data-marker": p.marker, "data-fee": p.fee ? "true" : null },
    h("span", { class: "share-label", title: p.label, text: p.label }),
    h("div", { class: "share-track", role: "img", "aria-label": `${p.label}: ${formatToken(p.amount)} of ${formatToken(price)}` }, fill),
    h("span", { class: "share-value", text: `${tenths / 10n}.${tenths % 10n}% · ${formatAmount(p.amount)}` }));
  });
  return h("div", { class: "shares", "aria-label": "Share of the price" }, rows);
}

// ---------------------------------------------------------------- asking
/** Server-sent events from a fetch() body. EventSource cannot POST or send an Authorization
 *  header, so the few lines of the SSE framing (data: lines, blank-line separated) are parsed here. */
async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (data) yield data;
    }
  }
}

async function ask(question) {
  welcomeNode.hidden = true;
  thread.append(userMessage(question));
  const view = assistantMessage();
  thread.append(view.root);
  view.root.classList.add("streaming");
  view.setStatus("Searching the contributed knowledge…");
  scrollToEnd();
  const messages = [...state.history, { role: "user", content: question }];
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  let text = "";
  let final = null;
  let pending = false;
  const paint = () => {
    pending = false;
    view.setText(text, null);
    scrollToEnd();
  };
  try {
    await modelsReady; // a question typed before the model list arrived waits for it
    const key = await apiKey();
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ model: picker.value, messages, stream: true, conversation_id: state.conversationId ?? undefined }),
      signal: controller.signal,
    });
    if (!response.ok) throw await errorFrom(response);
    for await (const data of sseEvents(response)) {
      if (data === "[DONE]") break;
      const event = JSON.parse(data);
      if (event.error) throw new ApiError(500, event);
      const delta = event.choices && event.choices[0] && event.choices[0].delta;
      if (delta && delta.content) {
        text += delta.content;
        view.setStatus("");
        if (!pending) {
          pending = true;
          requestAnimationFrame(paint);
        }
      }
      if (event.openchat) final = event;
    }
    view.setText(text, null);
    view.setStatus("");
    const info = final ? fromStream(final) : null;
    view.finish(info);
    if (info && info.answerId) {
      // The recorded answer adds what the stream does not carry: each source's own share.
      api(`/v1/answers/${encodeURIComponent(info.answerId)}`).then((a) => view.finish(fromAnswer(a))).catch(() => {});
    }
    state.history = [...messages, { role: "assistant", content: text }];
    if (final && final.openchat.conversation_id) {
      const isNew = state.conversationId !== final.openchat.conversation_id;
      state.conversationId = final.openchat.conversation_id;
      // Not awaited: the next question may be typed while the list refreshes.
      if (isNew) loadConversations();
    }
  } catch (err) {
    if (err.name === "AbortError") {
      view.setText(text, null);
      view.finish(null);
      view.setStatus("Stopped.", "note");
      state.history = text ? [...messages, { role: "assistant", content: text }] : state.history;
      loadConversations();
    } else {
      view.setText(text, null);
      view.setStatus(err instanceof ApiError ? err.explain() : `The answer failed: ${err.message}`, "error");
      if (err instanceof ApiError && err.status === 401) openKeyDialog(err.explain());
    }
  } finally {
    view.root.classList.remove("streaming");
    state.controller = null;
    setBusy(false);
    scrollToEnd();
  }
}

function stop() {
  if (state.controller) state.controller.abort();
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  document.body.classList.toggle("busy", busy);
}

function showError(err) {
  const message = err instanceof ApiError ? err.explain() : String(err.message || err);
  thread.append(h("div", { class: "msg assistant" }, h("div", { class: "answer-status error", text: message })));
  scrollToEnd();
}

function scrollToEnd() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

// ---------------------------------------------------------------- composer and layout
function autosize() {
  prompt.style.height = "auto";
  prompt.style.height = `${Math.min(prompt.scrollHeight, 200)}px`;
}

function submit() {
  const question = prompt.value.trim();
  if (!question || state.controller) return;
  prompt.value = "";
  autosize();
  ask(question);
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  submit();
});
prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  }
});
prompt.addEventListener("input", autosize);
$("stop").addEventListener("click", stop);
$("new-chat").addEventListener("click", newChat);

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("scrim").hidden = true;
}
$("menu-toggle").addEventListener("click", () => {
  const open = document.body.classList.toggle("sidebar-open");
  $("scrim").hidden = !open;
});
$("scrim").addEventListener("click", closeSidebar);
$("key-dialog").addEventListener("close", () => { loadModels(); loadConversations(); });

const modelsReady = loadModels();
loadConversations();
prompt.focus();
