// "Claim": the earnings page's latest voucher cashed by its payout address with a browser wallet.
//
// The page reads the channel's `paid` before sending (an already-claimed voucher costs no gas and
// gets a clear message), sends PaymentChannels.claim through the wallet, follows the transaction
// to its receipt and decodes a revert by the contract's custom errors (the ABI comes from
// GET /v1/payouts/contract). Nothing is ever lost here: the voucher stays on the page and on the
// server until the chain has paid it.
import { BrowserProvider, Contract, isError } from "/vendor/ethers.min.js";
import { api, formatToken, h, shortAddress } from "/static/api.js";
import { chainNumber, discoverWallets, isRejection, switchChain, walletErrorCode, walletErrorText } from "/static/wallet.js";

const POLL_MS = 500;

/**
 * Mount the claim button and its status line into ``box``.
 * voucher: GET /v1/contributors/{address}/voucher; onClaimed(amount): called after a mined claim
 * (and after finding the voucher claimed already) so the page can refresh its totals; it may
 * return a promise of true once the ledger shows the claim.
 */
export function mountClaim(box, { address, voucher, onClaimed }) {
  const button = h("button", { class: "button primary", type: "button", id: "claim-button",
    text: `Claim ${formatToken(voucher.cumulative_amount)} with a wallet` });
  const state = h("div", { id: "claim-status", class: "claim-status", role: "status", "aria-live": "polite", hidden: true });
  const choices = h("div", { class: "actions claim-choices", hidden: true });
  box.replaceChildren(h("div", { class: "actions" }, button), choices, state);

  let busy = false;
  const show = (kind, message, ...extra) => {
    state.hidden = false;
    state.dataset.state = kind;
    state.className = `claim-status result ${{ claimed: "ok", "already-claimed": "ok", pending: "", confirm: "", connecting: "" }[kind] ?? "error"}`;
    state.replaceChildren(h("p", { text: message }), ...extra);
  };

  const domain = voucher.typed_data.domain;
  const message = voucher.typed_data.message;
  const wantChain = chainNumber(domain.chainId);
  const cumulative = BigInt(voucher.cumulative_amount);

  async function pickWallet() {
    const wallets = await discoverWallets();
    if (!wallets.length) return null;
    if (wallets.length === 1) return wallets[0];
    // Several wallets announced themselves (EIP-6963): the person picks one.
    return new Promise((resolve) => {
      choices.hidden = false;
      choices.replaceChildren(h("span", { class: "muted small", text: "Claim with:" }), ...wallets.map((w) => {
        const pick = h("button", { class: "button", type: "button", "data-wallet": w.info.rdns || "" },
          w.info.icon && /^data:image\//.test(w.info.icon) ? h("img", { src: w.info.icon, alt: "", class: "wallet-icon" }) : null,
          w.info.name || "Wallet");
        pick.addEventListener("click", () => {
          choices.hidden = true;
          resolve(w);
        });
        return pick;
      }));
    });
  }

  async function run() {
    show("connecting", "Looking for a browser wallet…");
    const wallet = await pickWallet();
    if (!wallet) {
      show("no-wallet", "No browser wallet found. Install one (any EIP-1193 wallet), open this page again, or copy the "
        + "voucher above and submit it to PaymentChannels.claim with a tool of your choice.");
      return;
    }
    const eip1193 = wallet.provider;
    show("connecting", `Connecting to ${wallet.info.name || "your wallet"}…`);
    let accounts;
    try {
      accounts = await eip1193.request({ method: "eth_requestAccounts" });
    } catch (err) {
      if (isRejection(err)) show("rejected", "You declined the connection in your wallet. Nothing was sent; the voucher is still yours to claim.");
      else show("error", `The wallet could not connect: ${walletErrorText(err)}`);
      return;
    }
    const account = (accounts || []).find((a) => a.toLowerCase() === address.toLowerCase());
    if (!account) {
      const shown = accounts && accounts.length ? accounts[0] : "(none)";
      show("wrong-account", `Your wallet's account ${shown} is not this payout address ${address}. Only the payout `
        + "address can claim its voucher: switch to that account in your wallet, then press Claim again. Nothing was sent.");
      return;
    }
    if (!(await onRightChain(eip1193))) return;
    await claimWith(eip1193, account);
  }

  /** True when the wallet is on the voucher's chain; otherwise offers to switch and says why not. */
  async function onRightChain(eip1193) {
    const current = chainNumber(await eip1193.request({ method: "eth_chainId" }));
    if (current === wantChain) return true;
    const switcher = h("button", { class: "button", type: "button", id: "switch-chain", text: `Switch the wallet to chain ${wantChain}` });
    show("wrong-chain", `Your wallet is on chain ${current}; this voucher pays on chain ${wantChain}. Nothing was sent.`,
      h("div", { class: "actions" }, switcher));
    switcher.addEventListener("click", () => guarded(async () => {
      try {
        await switchChain(eip1193, wantChain);
      } catch (err) {
        const code = walletErrorCode(err);
        if (code === 4001) show("rejected", "You declined the network switch. Nothing was sent; the voucher is still yours to claim.");
        else if (code === 4902) show("unknown-chain", `Your wallet does not know chain ${wantChain}: add that network (ask the operator for its RPC address), then press Claim again.`);
        else show("error", `The wallet could not switch networks: ${walletErrorText(err)}`);
        return;
      }
      await run();
    }));
    return false;
  }

  async function claimWith(eip1193, account) {
    const contract = await api("/v1/payouts/contract", { openAccount: false });
    // "any": the wallet may change networks under us; every call below is made after the check.
    const provider = new BrowserProvider(eip1193, "any");
    provider.pollingInterval = POLL_MS;
    const signer = await provider.getSigner(account);
    const channels = new Contract(domain.verifyingContract, contract.abi, signer);
    const channelId = message.channelId;

    show("connecting", "Reading the channel on chain…");
    const ch = await channels.getChannel(channelId);
    if (ch.payer === "0x0000000000000000000000000000000000000000") {
      show("error", `This voucher's channel does not exist on chain ${wantChain} at ${domain.verifyingContract} (was the chain reset?). Nothing was sent.`);
      return;
    }
    if (ch.settled) {
      show("error", "This channel was closed and settled: nothing more can be claimed from it. Nothing was sent.");
      return;
    }
    const payTo = cumulative < ch.deposited ? cumulative : ch.deposited;
    if (payTo <= ch.paid) {
      alreadyClaimed(ch.paid);
      return;
    }
    show("confirm", `Confirm the claim of ${formatToken(payTo - ch.paid)} in your wallet…`);
    let tx;
    try {
      tx = await channels.claim(channelId, cumulative, voucher.signature);
    } catch (err) {
      explainFailure(err, channels);
      return;
    }
    const link = h("span", { class: "mono", title: tx.hash, text: tx.hash });
    show("pending", "Sent; waiting for the transaction to be mined…", h("p", { class: "small" }, "transaction ", link));
    let receipt;
    try {
      receipt = await tx.wait(1);
    } catch (err) {
      explainFailure(err, channels);
      return;
    }
    let amount = payTo - ch.paid;
    for (const log of receipt.logs) {
      const parsed = safeParse(channels, log);
      if (parsed && parsed.name === "ChannelClaimed") amount = parsed.args.amount;
    }
    state.dataset.tx = tx.hash;
    state.dataset.amount = amount.toString();
    const note = h("p", { class: "muted small ledger-note",
      text: "The totals above show it as settled once the payout worker records the claim (at its next settlement run)." });
    show("claimed", `Claimed ${formatToken(amount)}: it is in your wallet's account ${shortAddress(account)}.`,
      h("p", { class: "small" }, `block ${receipt.blockNumber} · transaction `, h("span", { class: "mono", title: tx.hash, text: tx.hash })),
      note);
    Promise.resolve(onClaimed(amount)).then((recorded) => {
      if (recorded) note.textContent = "Recorded by the ledger: the totals above show it as settled.";
    });
  }

  function alreadyClaimed(paid) {
    show("already-claimed", `Already claimed: this channel has paid ${formatToken(paid)}, and this voucher is worth `
      + `${formatToken(cumulative)} in all. Nothing was sent.`);
    onClaimed(0n);
  }

  function explainFailure(err, channels) {
    if (isRejection(err)) {
      show("rejected", "You rejected the transaction in your wallet. Nothing was sent; the voucher is still yours to claim.");
      return;
    }
    const revert = decodeRevert(err, channels);
    if (revert && revert.name === "NothingToClaim") {
      alreadyClaimed(revert.args.paid);
      return;
    }
    if (revert) {
      show("error", `The contract refused the claim: ${revert.name}(${revert.args.map(String).join(", ")}). Nothing was paid.`);
      return;
    }
    show("error", `The claim failed: ${walletErrorText(err)}. The voucher is still yours to claim.`);
  }

  async function guarded(fn) {
    if (busy) return;
    busy = true;
    button.disabled = true;
    try {
      await fn();
    } catch (err) {
      show("error", `The claim failed: ${walletErrorText(err)}. The voucher is still yours to claim.`);
    } finally {
      busy = false;
      button.disabled = false;
    }
  }

  button.addEventListener("click", () => guarded(run));
}

/** A revert's custom error ({name, args}) from whatever shape ethers or the wallet gave it. */
function decodeRevert(err, channels) {
  if (isError(err, "CALL_EXCEPTION") && err.revert) return err.revert;
  for (const data of [err && err.data, err && err.info && err.info.error && err.info.error.data, err && err.error && err.error.data]) {
    if (typeof data !== "string" || !data.startsWith("0x") || data.length < 10) continue;
    try {
      const parsed = channels.interface.parseError(data);
      if (parsed) return parsed;
    } catch {
      // not one of PaymentChannels' errors
    }
  }
  return null;
}

function safeParse(channels, log) {
  try {
    return channels.interface.parseLog(log);
  } catch {
    return null;
  }
}
