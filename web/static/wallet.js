// Browser wallets for the pages that move money on chain (claim a voucher; top up).
//
// The wallet, not the page, talks to the chain: every request goes through the EIP-1193 provider
// the wallet injects, so the page's CSP (connect-src 'self') never has to name an RPC node.
// Wallets are found by EIP-6963 (each announces itself with a name and icon, so two installed
// wallets do not fight over window.ethereum), with window.ethereum as the fallback for older ones.

/** Wallets announced within ``waitMs`` (EIP-6963), else window.ethereum; [{info, provider}]. */
export async function discoverWallets(waitMs = 300) {
  const found = new Map();
  const onAnnounce = (event) => {
    const detail = event.detail;
    if (!detail || !detail.provider || typeof detail.provider.request !== "function") return;
    const info = detail.info || {};
    found.set(info.uuid || info.rdns || `wallet-${found.size}`, { info, provider: detail.provider });
  };
  window.addEventListener("eip6963:announceProvider", onAnnounce);
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  window.removeEventListener("eip6963:announceProvider", onAnnounce);
  const wallets = [...found.values()];
  if (!wallets.length && window.ethereum && typeof window.ethereum.request === "function") {
    wallets.push({ info: { name: "Browser wallet", rdns: "window.ethereum" }, provider: window.ethereum });
  }
  return wallets;
}

/** The EIP-1193 / EIP-1474 code of a wallet error, also when ethers wrapped it. */
export function walletErrorCode(err) {
  if (!err) return null;
  if (err.code === "ACTION_REJECTED") return 4001;
  if (typeof err.code === "number") return err.code;
  const inner = err.error || (err.info && err.info.error);
  if (inner && typeof inner.code === "number") return inner.code;
  return null;
}

/** True when the person declined the request in their wallet (EIP-1193 4001). */
export function isRejection(err) {
  return walletErrorCode(err) === 4001;
}

/** A short sentence for a wallet error that is none of the cases a page handles itself. */
export function walletErrorText(err) {
  const code = walletErrorCode(err);
  if (code === 4001) return "You declined the request in your wallet.";
  if (code === 4100) return "The wallet has not authorised this page: connect it and try again.";
  if (code === 4900 || code === 4901) return "The wallet is not connected to a network: check it and try again.";
  if (code === -32002) return "Your wallet already has a request waiting: open the wallet and answer it first.";
  return (err && (err.shortMessage || err.message)) || String(err);
}

/** "0x7a69" -> 31337; a chain id as a number, whatever form the wallet gave it in. */
export function chainNumber(value) {
  return Number(BigInt(value));
}

/** Ask the wallet to switch to ``chainId`` (EIP-3326). Throws the wallet's error (4902: unknown chain). */
export async function switchChain(provider, chainId) {
  await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: `0x${chainId.toString(16)}` }] });
}
