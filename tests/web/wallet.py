"""A test wallet for the pages: an EIP-1193 provider injected into the page (window.ethereum, and
announced by EIP-6963) whose requests Playwright hands to Python, which signs transactions with
eth-account and forwards everything else to anvil. The page's CSP forbids it to reach anvil
itself (connect-src 'self'); so does every real wallet, which talks to its node from its own
process: this one does the same from the test process."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from eth_account import Account
from eth_utils import to_checksum_address
from playwright.sync_api import Page

# The provider object in the page: every request goes to the wallet's binding (a function exposed
# by Playwright), and errors come back as EIP-1193 errors ({code, message, data}).
_PROVIDER_JS = """
(() => {
  const cfg = %s;
  const listeners = {};
  const emit = (event, value) => (listeners[event] || []).forEach((fn) => fn(value));
  const provider = {
    isOpenChatTestWallet: true,
    async request({ method, params }) {
      const out = JSON.parse(await window[cfg.binding](JSON.stringify({ method, params: params ?? [] })));
      if (out.error) {
        const err = new Error(out.error.message);
        err.code = out.error.code;
        if (out.error.data !== undefined) err.data = out.error.data;
        throw err;
      }
      if (method === "wallet_switchEthereumChain") emit("chainChanged", params[0].chainId);
      return out.result;
    },
    on(event, fn) { (listeners[event] ||= []).push(fn); return provider; },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); return provider; },
  };
  if (cfg.window) window.ethereum = provider;
  if (cfg.announce) {
    const icon = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxNiAxNiI+PGNpcmNsZSBjeD0iOCIgY3k9IjgiIHI9IjgiIGZpbGw9IiMxMGEzN2YiLz48L3N2Zz4=";
    const detail = Object.freeze({ info: { uuid: cfg.uuid, name: cfg.name, icon, rdns: cfg.rdns }, provider });
    const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
    window.addEventListener("eip6963:requestProvider", announce);
    announce();
  }
})();
"""


class WalletError(Exception):
    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class TestWallet:
    """The wallet's state: its key, the chain it says it is on, and what it was asked."""

    __test__ = False  # not a test class

    def __init__(self, rpc_url: str, private_key: str, *, chain_id: int | None = None) -> None:
        self.rpc = httpx.Client(timeout=60)
        self.rpc_url = rpc_url
        self.account = Account.from_key(private_key)
        self.node_chain = int(self._node("eth_chainId", []), 16)
        self.chain_id = self.node_chain if chain_id is None else chain_id
        self.reject_sends = False
        self.knows_node_chain = True  # False: the wallet answers a switch to it with 4902 (unknown chain)
        self.before_estimate: Callable[[], None] | None = None
        self.calls: list[str] = []
        self.sent: list[str] = []
        self.errors: list[str] = []

    @property
    def address(self) -> str:
        return self.account.address

    def install(self, page: Page, *, window: bool = True, announce: bool = True, name: str = "OpenChat test wallet",
                rdns: str = "org.openchat.testwallet") -> None:
        """Expose this wallet to ``page`` (before it loads): window.ethereum and/or EIP-6963."""
        binding = f"__openchatTestWallet{id(self)}"
        page.expose_function(binding, self.handle)
        cfg = {"window": window, "announce": announce, "name": name, "rdns": rdns, "uuid": f"test-{id(self)}",
               "binding": binding}
        page.add_init_script(_PROVIDER_JS % json.dumps(cfg))

    def handle(self, payload: str) -> str:
        req = json.loads(payload)
        self.calls.append(req["method"])
        try:
            return json.dumps({"result": self._request(req["method"], req["params"])})
        except WalletError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            self.errors.append(f"{req['method']}: {exc.code} {exc.message}")
            return json.dumps({"error": error})
        except Exception as exc:  # noqa: BLE001 - a bug of the test wallet: kept in .errors, which tests assert on
            self.errors.append(f"{req['method']}: {exc!r}")
            return json.dumps({"error": {"code": -32603, "message": f"test wallet: {exc!r}"}})

    def _node(self, method: str, params: list[Any]) -> Any:
        body = self.rpc.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
        if "error" in body:
            e = body["error"]
            raise WalletError(e.get("code", -32000), e.get("message", "error"), e.get("data"))
        return body["result"]

    def _request(self, method: str, params: list[Any]) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.address]
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "net_version":
            return str(self.chain_id)
        if method == "wallet_switchEthereumChain":
            wanted = int(params[0]["chainId"], 16)
            if wanted != self.node_chain or not self.knows_node_chain:
                raise WalletError(4902, f"Unrecognized chain ID {hex(wanted)}")
            self.chain_id = wanted
            return None
        if self.chain_id != self.node_chain:
            raise WalletError(-32603, f"the test wallet is on chain {self.chain_id}, which it cannot reach")
        if method == "eth_estimateGas" and self.before_estimate is not None:
            hook, self.before_estimate = self.before_estimate, None
            hook()
        if method == "eth_sendTransaction":
            return self._send(params[0])
        if method.startswith(("eth_sign", "personal_")):
            raise WalletError(4200, f"the test wallet does not support {method}")
        return self._node(method, params)

    def _send(self, tx: dict[str, Any]) -> str:
        if self.reject_sends:
            raise WalletError(4001, "User rejected the request.")
        if tx.get("from", "").lower() != self.address.lower():
            raise WalletError(4100, f"the test wallet holds {self.address}, not {tx.get('from')}")
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        gas = int(tx.get("gas") or self._node("eth_estimateGas", [call]), 16)
        base = int(self._node("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
        tip = 10**9
        signed = Account.sign_transaction({
            "type": 2, "chainId": self.node_chain, "to": to_checksum_address(tx["to"]), "data": tx.get("data", "0x"),
            "value": int(tx.get("value", "0x0"), 16), "gas": gas,
            "nonce": int(self._node("eth_getTransactionCount", [self.address, "pending"]), 16),
            "maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip,
        }, self.account.key)
        tx_hash = self._node("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
        self.sent.append(tx_hash)
        return tx_hash
