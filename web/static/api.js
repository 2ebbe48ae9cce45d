// The API client of the pages: the key (sessionStorage only), OpenAI-shaped errors, amounts.

const KEY_NAME = "openchat.apiKey";
let configPromise = null;

/** The page config the app serves: the dev key when one is configured, the token's unit. */
export function config() {
  configPromise ??= fetch("/web-config.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  return configPromise;
}

/** The API key of this browser session; the dev key is adopted on first use when the app has one. */
export async function apiKey() {
  let key = sessionStorage.getItem(KEY_NAME);
  if (!key) {
    const cfg = await config();
    // A key saved while the config was loading (the key dialog) wins over the dev key.
    key = sessionStorage.getItem(KEY_NAME);
    if (!key && cfg.dev_api_key) {
      key = cfg.dev_api_key;
      sessionStorage.setItem(KEY_NAME, key);
    }
  }
  return key || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_NAME, key);
  else sessionStorage.removeItem(KEY_NAME);
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

/** fetch() with the Bearer key; a non-2xx answer throws ApiError. */
export async function api(path, { method = "GET", body, headers = {}, signal, raw = false } = {}) {
  const key = await apiKey();
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
    input.value = await apiKey();
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
