// The API client of the pages: the key, OpenAI-shaped errors, amounts.
//
// Where the key is kept: the dev key (handed only to a browser on the server's own machine) and
// a key pasted into the key dialog stay in sessionStorage, gone with the tab. A session account's
// key (a shared server opens one per browser, POST /web-session) is that account's only key, so it
// is kept in localStorage: the visitor's conversations and balance survive a closed tab. Not an
// HttpOnly cookie: the API authenticates by Bearer header, and a cookie would make every /v1 write
// forgeable from another site (CSRF); the page's strict CSP (script-src 'self', no inline script)
// and DOMPurify-sanitised answers are the guard against script reading it.

const KEY_NAME = "openchat.apiKey";
const SESSION_KEY_NAME = "openchat.sessionKey";
let configPromise = null;
let sessionPromise = null;

/** The page config the app serves: the dev key for a browser on the server's machine, whether a
 * visitor may open an account of its own, the token's unit. */
export function config() {
  configPromise ??= fetch("/web-config.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  return configPromise;
}

function storedKey() {
  return sessionStorage.getItem(KEY_NAME) || localStorage.getItem(SESSION_KEY_NAME) || "";
}

/** A new account of this browser's own (once: concurrent callers share the request); its key is
 * kept in localStorage. Throws ApiError when the server refuses (e.g. its daily bound). */
function openSessionAccount() {
  sessionPromise ??= fetch("/web-session", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })
    .then(async (response) => {
      if (!response.ok) throw await errorFrom(response);
      const body = await response.json();
      localStorage.setItem(SESSION_KEY_NAME, body.key);
      return body.key;
    })
    .finally(() => {
      sessionPromise = null;
    });
  return sessionPromise;
}

/** The API key of this browser: a pasted or dev key, else its session account's key; the dev key
 * or (with ``open``) a new session account is adopted on first use when the app offers one. */
export async function apiKey({ open = true } = {}) {
  let key = storedKey();
  if (key) return key;
  const cfg = await config();
  // A key saved while the config was loading (the key dialog) wins.
  key = storedKey();
  if (key) return key;
  if (cfg.dev_api_key) {
    sessionStorage.setItem(KEY_NAME, cfg.dev_api_key);
    return cfg.dev_api_key;
  }
  if (open && cfg.session_accounts) return openSessionAccount();
  return "";
}

/** Use ``key`` in this tab; an empty one forgets every key this browser holds (the session
 * account's too: the next request opens a new one where the server offers it). */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_NAME, key);
  else {
    sessionStorage.removeItem(KEY_NAME);
    localStorage.removeItem(SESSION_KEY_NAME);
  }
}

/** An error the API reported in OpenAI's shape ({error: {message, type, param, code}}). */
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `request failed (HTTP ${status})`);
    this.status = status;
    this.code = err.code || null;
    this.type = err.type || null;
    this.param = err.param || null;
  }

  /** A sentence a person can act on. */
  explain() {
    if (this.status === 401) return `The API key was refused (${this.message}). Set a valid key with the “API key” button.`;
    if (this.status === 402) return `Your balance does not cover this answer: ${this.message}. Add funds to your account, then ask again.`;
    if (this.status === 429) return `Too many requests: ${this.message}`;
    return this.message;
  }
}

export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new ApiError(response.status, body);
}

/** fetch() with the Bearer key; a non-2xx answer throws ApiError. ``openAccount: false`` for a
 * public read, which must not open a session account just to look. */
export async function api(path, { method = "GET", body, headers = {}, signal, raw = false, openAccount = true } = {}) {
  const key = await apiKey({ open: openAccount });
  const init = { method, headers: { ...headers }, signal };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await errorFrom(response);
  return raw ? response : response.json();
}

/** Integer base units (number or string) as a decimal string: 9000 -> "0.009000". Exact (BigInt). */
export function formatAmount(units, decimals = 6) {
  if (units === null || units === undefined || units === "") return "—";
  let n = BigInt(String(units));
  const sign = n < 0n ? "-" : "";
  if (n < 0n) n = -n;
  const s = n.toString().padStart(decimals + 1, "0");
  return `${sign}${s.slice(0, s.length - decimals)}.${s.slice(s.length - decimals)}`;
}

export function formatToken(units) {
  return `${formatAmount(units)} ocUSD`;
}

/** 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed -> 0x5aAe…eAed */
export function shortAddress(address) {
  if (!address || address.length < 14) return address || "";
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

export function percent(ppm) {
  return `${(Number(ppm) / 10000).toFixed(ppm % 10000 === 0 ? 0 : 1)}%`;
}

/** Create an element with attributes and children; text is always set as text, never as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Copy text to the clipboard; falls back to a selected textarea where the Clipboard API is refused. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** The key dialog: shows the current key state and lets the user set or clear it. */
export function installKeyDialog(button) {
  const dialog = document.getElementById("key-dialog");
  if (!dialog || !button) return () => {};
  const input = dialog.querySelector("input");
  const open = async (reason = "") => {
    input.value = await apiKey({ open: false });
    dialog.querySelector(".dialog-reason").textContent = reason;
    dialog.showModal();
    input.focus();
  };
  button.addEventListener("click", () => open());
  dialog.querySelector("form").addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value === "save") setApiKey(input.value.trim());
  });
  return open;
}
