// The earnings page: totals, earnings per day, credits per answer, the latest voucher (claimable
// with a browser wallet) and settlement transactions.
import { api, ApiError, copyText, formatAmount, formatToken, h, installKeyDialog, percent, shortAddress } from "/static/api.js";
import { dailyBars } from "/static/charts.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const DAYS = 30;
// After a claim, the ledger records it at the payout worker's next settlement run (every payout
// interval): the totals are re-read until they show it, for at most this long.
const FOLLOW_MS = 10 * 60 * 1000;
const FOLLOW_EVERY_MS = 2000;
installKeyDialog($("key-button"));
const claimBox = $("claim"); // moved into the voucher card once there is a voucher

const fromPath = decodeURIComponent(location.pathname.replace(/^\/earnings\/?/, "")).trim();
const address = fromPath || localStorage.getItem("openchat.contributor") || "";
$("address").value = address;

$("address-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("address").value.trim();
  if (value) location.assign(`/earnings/${encodeURIComponent(value)}`);
});

function status(message, kind = "empty") {
  const box = $("earnings-status");
  box.hidden = !message;
  box.className = kind === "error" ? "result error" : "empty";
  box.textContent = message || "";
}

function total(label, units, note) {
  return h("div", { class: "total", "data-total": label.toLowerCase() },
    h("div", { class: "label", text: label }),
    h("div", { class: "value" }, formatAmount(units), " ", h("span", { class: "unit", text: "ocUSD" })),
    note ? h("div", { class: "muted small", text: note }) : null);
}

function date(value) {
  if (!value) return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function creditRow(c) {
  return h("tr", { class: "credit-row" },
    h("td", { class: "mono", title: c.answer_id, text: shortId(c.answer_id) }),
    h("td", { class: "num", text: formatAmount(c.amount) }),
    h("td", { class: "num", text: c.weight !== undefined && c.weight !== null ? percent(c.weight) : "" }),
    h("td", {}, h("span", { class: `status status-${String(c.status || "").replace(/[^a-z_]/g, "")}`, text: c.status || "" })),
    h("td", { class: "num", text: c.batch_id ?? "" }),
    h("td", { class: "mono", title: c.settlement_tx || "", text: c.settlement_tx ? shortAddress(c.settlement_tx) : "" }),
    h("td", { text: date(c.created_at) }));
}

function shortId(id) {
  return id && id.length > 16 ? `${id.slice(0, 12)}…` : id || "";
}

async function loadCredits(summary) {
  const box = $("credits");
  const items = [...summary.credits.items];
  if (!items.length) {
    box.replaceChildren(h("p", { class: "empty", text: "No credits yet: this address earns when an answer cites its contributions." }));
    return items;
  }
  const body = h("tbody", {}, items.map(creditRow));
  const table = h("div", { class: "table-wrap" }, h("table", { class: "data" },
    h("thead", {}, h("tr", {}, ["answer", "ocUSD", "weight", "status", "batch", "settlement tx", "credited"].map((t) => h("th", { text: t })))),
    body));
  const count = h("p", { class: "muted small" });
  const more = h("button", { class: "button", type: "button", text: "Load more" });
  let offset = items.length;
  const update = () => {
    count.textContent = `${offset} of ${summary.credits.total} credits`;
    more.hidden = offset >= summary.credits.total;
  };
  more.addEventListener("click", async () => {
    const next = await api(`/v1/contributors/${encodeURIComponent(summary.address)}?limit=${PAGE}&offset=${offset}`, { openAccount: false });
    body.append(...next.credits.items.map(creditRow));
    offset += next.credits.items.length;
    if (!next.credits.items.length) offset = summary.credits.total;
    update();
  });
  update();
  box.replaceChildren(table, h("div", { class: "actions" }, count, more));
  return items;
}

function renderSettlements(items, summary) {
  const seen = new Map();
  for (const c of items) {
    if (c.settlement_tx && !seen.has(c.settlement_tx)) seen.set(c.settlement_tx, c.settlement_block);
  }
  const box = $("settlements");
  if (!seen.size && summary && BigInt(summary.settled) > 0n && summary.credits.total <= items.length) {
    // The ledger keeps the hub's pushes; a payee's own claim is seen as the channel's paid amount.
    box.replaceChildren(h("p", { class: "empty", text: `${formatToken(summary.settled)} paid on chain by this address's own claim `
      + "(the transaction is in its wallet's history); the hub pushed nothing." }));
    return;
  }
  if (!seen.size) {
    box.replaceChildren(h("p", { class: "empty", text: "No settlement yet: the hub pays vouchered amounts on chain in batches, or you claim your voucher yourself." }));
    return;
  }
  box.replaceChildren(h("ul", { class: "settlement-list" },
    [...seen].map(([tx, block]) => h("li", {}, h("span", { class: "mono", text: tx }), block ? ` (block ${block})` : ""))));
}

async function loadVoucher(addr, summary) {
  const box = $("voucher");
  claimBox.replaceChildren();
  let voucher;
  try {
    voucher = await api(`/v1/contributors/${encodeURIComponent(addr)}/voucher`, { openAccount: false });
  } catch (err) {
    const owed = BigInt(String(summary.earned)) - BigInt(String(summary.vouchered));
    const text = !(err instanceof ApiError && err.status === 404)
      ? `The voucher could not be loaded: ${err.message}`
      : summary.below_minimum_payout
        ? `No voucher yet: vouchers start once an address is owed ${formatAmount(summary.payout_minimum)} ocUSD `
          + `(the minimum payout, so small earnings do not lock the hub's funds); this one is owed ${formatAmount(owed)} ocUSD.`
        : "No voucher yet: credits are batched into a signed voucher every payout interval.";
    box.replaceChildren(h("p", { class: "empty", text }));
    return;
  }
  const json = JSON.stringify(voucher, null, 2);
  const copy = h("button", { class: "button", type: "button", text: "Copy voucher" });
  copy.addEventListener("click", async () => {
    copy.textContent = (await copyText(json)) ? "Copied" : "Copy failed";
    setTimeout(() => { copy.textContent = "Copy voucher"; }, 1500);
  });
  const download = h("a", { class: "button", text: "Download JSON", download: `voucher-${addr}.json` });
  download.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  // The claim first; the raw voucher (for other tools) folded under it.
  box.replaceChildren(
    h("div", { class: "counts" },
      h("span", {}, "cumulative ", h("b", { text: formatAmount(voucher.cumulative_amount) }), " ocUSD"),
      h("span", { class: "mono", text: `channel ${shortAddress(String(voucher.channel_id))}` }),
      h("span", { text: `signed ${date(voucher.created_at)}` })),
    claimBox,
    h("details", { class: "voucher-json" },
      h("summary", { text: "The signed voucher (JSON, to claim with another tool)" }),
      h("pre", { class: "voucher", text: json }),
      h("div", { class: "actions" }, copy, download)));
  await mountClaimButton(addr, voucher, summary);
}

async function mountClaimButton(addr, voucher, summary) {
  const box = claimBox;
  try {
    // Loaded on demand: ethers is ~400 KB and most visitors only look.
    const { mountClaim } = await import("/static/claim.js");
    mountClaim(box, { address: addr, voucher, onClaimed: (amount) => followLedger(addr, summary.settled, amount) });
  } catch (err) {
    box.replaceChildren(h("p", { class: "empty", text: `Claiming from this page is unavailable: ${err.message}` }));
  }
}

/** Re-read the totals until the ledger shows ``amount`` more settled than ``before`` (0n: just
 *  once); true once it does, false after FOLLOW_MS. */
async function followLedger(addr, before, amount) {
  const want = BigInt(before) + BigInt(amount);
  const until = Date.now() + FOLLOW_MS;
  for (;;) {
    let summary;
    try {
      summary = await api(`/v1/contributors/${encodeURIComponent(addr)}?limit=${PAGE}`, { openAccount: false });
    } catch {
      summary = null;
    }
    if (summary) {
      renderTotals(summary);
      if (BigInt(summary.settled) >= want) {
        renderSettlements(await loadCredits(summary), summary);
        return true;
      }
    }
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_EVERY_MS));
  }
}

async function loadDaily(addr) {
  const box = $("daily-chart");
  let daily;
  try {
    daily = await api(`/v1/contributors/${encodeURIComponent(addr)}/daily?days=${DAYS}`, { openAccount: false });
  } catch (err) {
    box.replaceChildren(h("p", { class: "empty", text: `Earnings per day could not be loaded: ${err.message}` }));
    return;
  }
  box.dataset.total = String(daily.total);
  $("daily-total").textContent = `${formatToken(daily.total)} in ${DAYS} days (UTC)`;
  try {
    dailyBars(box, daily.days, { label: "credited" });
  } catch (err) {
    box.replaceChildren(h("p", { class: "empty", text: `The chart could not be drawn: ${err.message}` }));
  }
}

function renderTotals(summary) {
  $("totals").replaceChildren(
    total("Earned", summary.earned, "credited by answers"),
    total("Batched", summary.batched, "owed in the channel"),
    total("Vouchered", summary.vouchered, "signed, claimable"),
    total("Settled", summary.settled, "paid on chain"),
    total("Unsettled", summary.unsettled, "vouchered, not yet paid"));
}

async function load(addr) {
  if (!addr) {
    status("Enter a payout address to see what it earned.");
    return;
  }
  status("Loading…");
  let summary;
  try {
    summary = await api(`/v1/contributors/${encodeURIComponent(addr)}?limit=${PAGE}`, { openAccount: false });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) status(`Nothing recorded for ${addr} yet: it earns once an answer cites its contributions.`);
    else status(err instanceof ApiError ? err.explain() : `Earnings could not be loaded: ${err.message}`, "error");
    return;
  }
  status("");
  $("earnings").hidden = false;
  $("earnings-address").textContent = summary.display_name ? `${summary.display_name} · ${summary.address}` : summary.address;
  renderTotals(summary);
  const items = await loadCredits(summary);
  renderSettlements(items, summary);
  await Promise.all([loadVoucher(summary.address, summary), loadDaily(summary.address)]);
}

load(address);
