// The balance page: the account's balance, how to top it up on chain (and a wallet button that
// does it: approve + TopUps.deposit), its deposits with their status, and spending per day.
import { api, ApiError, copyText, formatAmount, h, installKeyDialog, shortAddress } from "/static/api.js";
import { BrowserProvider, Contract, parseUnits } from "/vendor/ethers.min.js";
import uPlot from "/vendor/uPlot.esm.js";

const $ = (id) => document.getElementById(id);
const openKeyDialog = installKeyDialog($("key-button"));
const ERC20 = [
  "function approve(address spender, uint256 amount) returns (bool)",
  "function allowance(address owner, address spender) view returns (uint256)",
  "function balanceOf(address owner) view returns (uint256)",
];
const TOPUPS = ["function deposit(bytes32 account, uint256 amount)"];
const POLL_MS = 2000;
let account = null;
let chart = null;

function status(message, kind = "empty") {
  const box = $("balance-status");
  box.hidden = !message;
  box.className = kind === "error" ? "result error" : "empty";
  box.textContent = message || "";
}

function amount(units) {
  return [formatAmount(units), " ", h("span", { class: "unit", text: "ocUSD" })];
}

function copyable(text, label) {
  return h("span", {}, h("code", { class: "mono", text }), " ",
    h("button", { class: "link-button small", type: "button", "aria-label": `Copy ${label}`,
      onclick: async (e) => { if (await copyText(text)) e.target.textContent = "copied"; } }, "copy"));
}

function instructions(a) {
  const box = $("instructions");
  if (!a.top_up) {
    box.replaceChildren(h("p", { class: "muted", text: "On-chain top-ups are not available on this server (no TopUps contract is deployed)." }));
    $("top-up-form").hidden = true;
    return;
  }
  const t = a.top_up;
  box.replaceChildren(
    h("p", {}, "Deposit ocUSD on chain to this account's reference: approve the TopUps contract for the amount, then call ",
      h("code", { text: "deposit(reference, amount)" }), `. It is credited after ${t.confirmations} confirmation${t.confirmations === 1 ? "" : "s"}.`),
    h("dl", { class: "instructions" },
      h("dt", { text: "Chain id" }), h("dd", { "data-field": "chain-id" }, String(t.chain_id)),
      h("dt", { text: "TopUps contract" }), h("dd", { "data-field": "contract" }, copyable(t.contract, "contract address")),
      h("dt", { text: "Token (ocUSD)" }), h("dd", { "data-field": "token" }, copyable(t.token, "token address")),
      h("dt", { text: "Your reference" }), h("dd", { "data-field": "reference" }, copyable(t.reference, "deposit reference"))));
}

function depositRow(d) {
  return h("tr", { "data-tx": d.tx_hash },
    h("td", { text: (d.final_at || d.seen_at || "").replace("T", " ").slice(0, 16) }),
    h("td", { class: "num" }, ...amount(d.amount)),
    h("td", { class: `status-${d.status}`, "data-status": d.status, text: d.status }),
    h("td", { class: "mono", title: d.tx_hash, text: shortAddress(d.tx_hash) }),
    h("td", { class: "num", text: String(d.block_number) }),
    h("td", { class: "mono", title: d.from, text: shortAddress(d.from) }));
}

function deposits(list) {
  const box = $("deposits");
  if (!list.length) {
    box.replaceChildren(h("p", { class: "empty", text: "No on-chain deposits yet." }));
    return;
  }
  box.replaceChildren(h("div", { class: "table-wrap" }, h("table", { class: "data" },
    h("thead", {}, h("tr", {}, ...["When (UTC)", "Amount", "Status", "Transaction", "Block", "From"].map((c) => h("th", { text: c })))),
    h("tbody", {}, list.map(depositRow)))));
}

function spending(days) {
  const box = $("spending-chart");
  const xs = days.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
  // Plotted in ocUSD (a float is fine for a picture); the exact total is printed below.
  const ys = days.map((d) => d.spent / 1e6);
  const total = days.reduce((sum, d) => sum + BigInt(d.spent), 0n);
  $("spending-total").textContent = `${formatAmount(total)} ocUSD over the last ${days.length} days`;
  const width = Math.max(280, box.clientWidth || 600);
  const opts = {
    width, height: 220,
    // half a day of room on both sides, so the first and last bars are whole
    scales: { x: { time: true, range: () => [xs[0] - 43200, xs[xs.length - 1] + 43200] },
      y: { range: (u, min, max) => [0, Math.max(max, 0.01) * 1.1] } },
    axes: [{}, { label: "ocUSD", size: 60 }],
    legend: { show: false },
    series: [{}, { label: "spent", stroke: "#2563eb", fill: "rgba(37, 99, 235, 0.35)", points: { show: false }, paths: uPlot.paths.bars({ size: [0.7, 40] }) }],
  };
  if (chart) chart.destroy();
  box.replaceChildren();
  chart = new uPlot(opts, [xs, ys], box);
}

async function load() {
  try {
    account = await api("/v1/account");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) openKeyDialog(err.explain());
    status(err instanceof ApiError ? err.explain() : `The account could not be loaded: ${err.message}`, "error");
    return null;
  }
  status("");
  $("account").hidden = false;
  $("balance-amount").replaceChildren(...amount(account.balance));
  const pending = account.deposits.filter((d) => d.status === "pending").reduce((s, d) => s + BigInt(d.amount), 0n);
  $("pending-amount").replaceChildren(...amount(pending));
  instructions(account);
  deposits(account.deposits);
  spending(account.spending);
  return account;
}

// ------------------------------------------------------------------ wallet

/** EIP-6963: wallets announce themselves on request; window.ethereum (EIP-1193) is the fallback. */
function discoverWallet(timeoutMs = 400) {
  return new Promise((resolve) => {
    const found = [];
    const onAnnounce = (event) => found.push(event.detail);
    window.addEventListener("eip6963:announceProvider", onAnnounce);
    window.dispatchEvent(new Event("eip6963:requestProvider"));
    setTimeout(() => {
      window.removeEventListener("eip6963:announceProvider", onAnnounce);
      if (found.length) resolve(found[0].provider);
      else resolve(window.ethereum || null);
    }, found.length ? 0 : timeoutMs);
  });
}

const STEPS = ["Connect the wallet", "Check the network", "Approve ocUSD", "Deposit", "Wait for confirmations"];

function steps(active, failed = false) {
  const list = $("top-up-steps");
  list.hidden = false;
  list.replaceChildren(...STEPS.map((label, i) => h("li", {
    class: i < active ? "done" : i === active ? (failed ? "failed" : "active") : "", text: label })));
}

function result(kind, message) {
  const box = $("top-up-result");
  box.hidden = !message;
  box.className = `result ${kind}`;
  box.textContent = message || "";
  box.dataset.kind = kind;
}

function rejected(err) {
  const code = err && (err.code ?? (err.info && err.info.error && err.info.error.code));
  return code === 4001 || code === "ACTION_REJECTED";
}

/** A message meant for the person as it is. */
class Plain extends Error {}

function walletMessage(err, step) {
  if (err instanceof Plain) return err.message;
  if (err instanceof ApiError) return err.explain();
  if (rejected(err)) return `You rejected the request in your wallet (${STEPS[step].toLowerCase()}); nothing was sent.`;
  const inner = (err && (err.shortMessage || err.message)) || String(err);
  return `${STEPS[step]} failed: ${inner}`;
}

/** Ask the wallet to switch to the deployment's chain; a clear message when it can't. */
async function ensureChain(provider, wanted) {
  const current = parseInt(await provider.request({ method: "eth_chainId" }), 16);
  if (current === wanted) return;
  try {
    await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: `0x${wanted.toString(16)}` }] });
  } catch (err) {
    if (rejected(err)) throw new Plain(`Your wallet is on chain ${current}; the deposit must go to chain ${wanted}. You declined to switch: nothing was sent.`);
    if (err && err.code === 4902) throw new Plain(`Your wallet does not know chain ${wanted}: add it (the server's RPC) to your wallet, then try again.`);
    throw new Plain(`Your wallet is on chain ${current}; switch it to chain ${wanted} and try again (${err.message || err}).`);
  }
  const now = parseInt(await provider.request({ method: "eth_chainId" }), 16);
  if (now !== wanted) throw new Plain(`Your wallet is still on chain ${now}; switch it to chain ${wanted} and try again.`);
}

async function waitCredited(txHash, confirmations) {
  for (;;) {
    const a = await load();
    const d = a && a.deposits.find((x) => x.tx_hash.toLowerCase() === txHash.toLowerCase());
    if (d && d.status === "credited") return d;
    if (d && d.status === "unassigned") throw new Plain("The deposit arrived but names no account here; the operator has it on record.");
    result("warn", d ? `Deposited; waiting for ${confirmations} confirmation${confirmations === 1 ? "" : "s"} (status: ${d.status}).`
      : "Deposited; waiting for the server to see it on chain…");
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function topUp(event) {
  event.preventDefault();
  const t = account && account.top_up;
  if (!t) return;
  const button = $("top-up-button");
  let units;
  try {
    units = parseUnits($("top-up-amount").value.trim() || "0", 6);
  } catch {
    result("error", "Enter an amount in ocUSD, e.g. 5 or 2.50 (at most 6 decimals).");
    return;
  }
  if (units <= 0n) {
    result("error", "Enter an amount above zero.");
    return;
  }
  button.disabled = true;
  let step = 0;
  try {
    steps(step);
    result("", "");
    const injected = await discoverWallet();
    if (!injected) throw new Plain("No browser wallet found: install one (e.g. a wallet extension) or send the deposit with the details above.");
    const [from] = await injected.request({ method: "eth_requestAccounts" });
    step = 1; steps(step);
    await ensureChain(injected, t.chain_id);
    const provider = new BrowserProvider(injected, t.chain_id);
    const signer = await provider.getSigner(from);
    const token = new Contract(t.token, ERC20, signer);
    const held = await token.balanceOf(from);
    if (held < units) throw new Plain(`Your wallet ${shortAddress(from)} holds ${formatAmount(held)} ocUSD, less than ${formatAmount(units)}.`);
    step = 2; steps(step);
    if ((await token.allowance(from, t.contract)) < units) {
      result("warn", "Confirm the approval in your wallet…");
      const approval = await token.approve(t.contract, units);
      result("warn", `Approval sent (${shortAddress(approval.hash)}); waiting for it to be mined…`);
      await approval.wait();
    }
    step = 3; steps(step);
    result("warn", "Confirm the deposit in your wallet…");
    const topups = new Contract(t.contract, TOPUPS, signer);
    const tx = await topups.deposit(t.reference, units);
    result("warn", `Deposit sent (${shortAddress(tx.hash)}); waiting for it to be mined…`);
    const receipt = await tx.wait();
    if (!receipt || receipt.status !== 1) throw new Plain(`The deposit transaction ${tx.hash} failed on chain; nothing was credited.`);
    step = 4; steps(step);
    await waitCredited(tx.hash, t.confirmations);
    steps(STEPS.length);
    result("ok", `Credited ${formatAmount(units)} ocUSD (transaction ${shortAddress(tx.hash)}).`);
  } catch (err) {
    steps(step, true);
    result("error", walletMessage(err, step));
  } finally {
    button.disabled = false;
  }
}

$("top-up-form").addEventListener("submit", topUp);
load();
