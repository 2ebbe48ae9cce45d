"""The balance page in Chromium: balance, deposit instructions, spending chart, and a top-up from
the page with a wallet injected into it (an EIP-1193 provider, announced by EIP-6963, whose
requests Playwright forwards to a real anvil; anvil's unlocked dev account signs). The deposit is
credited by the real follower after the confirmations."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from assistant.accounts import DEV_ACCOUNT
from assistant.settings import load_settings
from payouts.chain import ChainClient
from payouts.deploy import ensure_deployment_for_settings
from payouts.localchain import LocalChain, LocalChainError, find_anvil, rpc_call
from payouts.tasks import Resources, run_follow_deposits
from tests.assistant.test_api_chat import MODEL
from tests.conftest import DEV_KEY, LiveServer, start_server
from tests.web.conftest import shot

CONFIRMATIONS = 3
WALLET = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # anvil's third dev account: unlocked on anvil

# The wallet the page sees: requests go to the exposed Python function (the page's CSP allows no
# fetch to anvil), errors come back with their EIP-1193 codes.
PROVIDER_JS = """
(() => {
  const listeners = {};
  const provider = {
    isOpenChatInjectedWallet: true,
    async request({ method, params }) {
      const reply = JSON.parse(await window.__wallet(method, JSON.stringify(params || [])));
      if (reply.error) {
        const err = new Error(reply.error.message);
        err.code = reply.error.code;
        if (reply.error.data !== undefined) err.data = reply.error.data;
        throw err;
      }
      return reply.result;
    },
    on(event, fn) { (listeners[event] ||= []).push(fn); return provider; },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); return provider; },
  };
  window.ethereum = provider;
  const info = { uuid: "6b0a7c52-6a0e-4b43-9c1b-0a5e4f2f9d11", name: "Test wallet", rdns: "org.openchat.testwallet",
                 icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E" };
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider",
    { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
})();
"""


@dataclass
class InjectedWallet:
    """What the injected provider forwards to: answers accounts and chain switching itself (a
    wallet's own business), everything else goes to anvil as it is."""

    rpc_url: str
    address: str = WALLET
    chain_id: int | None = None  # None: the node's; else the chain the wallet pretends to be on
    allow_switch: bool = True
    reject: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def __call__(self, method: str, params_json: str) -> str:
        params = json.loads(params_json)
        self.calls.append(method)
        if method in self.reject:
            return json.dumps({"error": {"code": 4001, "message": "User rejected the request."}})
        if method in ("eth_requestAccounts", "eth_accounts"):
            return json.dumps({"result": [self.address]})
        if method == "eth_chainId" and self.chain_id is not None:
            return json.dumps({"result": hex(self.chain_id)})
        if method == "wallet_switchEthereumChain":
            if not self.allow_switch:
                return json.dumps({"error": {"code": 4001, "message": "User rejected the request."}})
            self.chain_id = int(params[0]["chainId"], 16)
            return json.dumps({"result": None})
        reply = httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                           timeout=30).json()
        return json.dumps({k: v for k, v in reply.items() if k in ("result", "error")})


@dataclass
class Topup:
    live: LiveServer
    chain: LocalChain
    client: ChainClient
    res: Resources

    def mine(self, n: int) -> None:
        for _ in range(n):
            rpc_call(self.chain.rpc_url, "evm_mine")

    def account(self) -> dict:
        with httpx.Client(base_url=self.live.url, headers={"Authorization": f"Bearer {DEV_KEY}"}, timeout=30) as c:
            resp = c.get("/v1/account")
            assert resp.status_code == 200, resp.text
            return resp.json()


@pytest.fixture(scope="module")
def topup(embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topup]:  # type: ignore[no-untyped-def]
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path_factory.mktemp("web-topup")
    chain = LocalChain(data_dir, state_interval=0).start()
    settings = load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, chain_rpc_url=chain.rpc_url,
                             deposit_confirmations=CONFIRMATIONS)
    deployment = ensure_deployment_for_settings(settings.payouts)
    live = start_server(settings, embedder)
    client = ChainClient.connect(chain.rpc_url, deployment, settings.payouts.hub_private_key.get_secret_value())
    client.mint(WALLET, 100_000_000)  # 100 ocUSD in the asker's wallet
    res = Resources(settings.payouts)
    # The follower, as the beat would run it every deposit_interval (the Celery path itself is
    # tested in tests/payouts/test_topups.py): here in a thread of the test process.
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(0.3):
            run_follow_deposits(res)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield Topup(live, chain, client, res)
    finally:
        stop.set()
        thread.join(timeout=30)
        live.stop()
        if res.engine is not None:
            res.engine.dispose()
        chain.stop()


def wallet_page(browser: Browser, topup: Topup, wallet: InjectedWallet) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=topup.live.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.expose_function("__wallet", wallet)
    page.add_init_script(PROVIDER_JS)
    page.set_default_timeout(30_000)
    return page, errors


def test_top_up_from_the_page_is_credited_after_the_confirmations(browser: Browser, topup: Topup) -> None:
    wallet = InjectedWallet(topup.chain.rpc_url)
    page, errors = wallet_page(browser, topup, wallet)
    with httpx.Client(base_url=topup.live.url, headers={"Authorization": f"Bearer {DEV_KEY}"}, timeout=120) as c:
        for question in ("What do koalas eat?", "Who wrote Hamlet?"):  # some spending for the chart
            resp = c.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": question}]})
            assert resp.status_code == 200, resp.text
    before = topup.account()
    assert before["spending"][-1]["spent"] > 0
    wallet_before = topup.client.token_balance(WALLET)
    page.goto("/balance")
    target = before["top_up"]
    expect(page.locator("[data-field=reference] code")).to_have_text(target["reference"])
    expect(page.locator("[data-field=contract] code")).to_have_text(target["contract"])
    expect(page.locator("[data-field=chain-id]")).to_have_text(str(topup.client.chain_id))
    expect(page.locator("#spending-chart canvas")).to_have_count(1)
    page.fill("#top-up-amount", "2.5")
    page.click("#top-up-button")
    result = page.locator("#top-up-result")
    expect(result).to_contain_text(f"waiting for {CONFIRMATIONS} confirmations", timeout=60_000)
    expect(page.locator("#deposits [data-status=pending]")).to_have_count(1)
    shot(page, "balance-top-up-pending", full_page=True)
    assert topup.account()["balance"] == before["balance"]  # not final: not credited
    topup.mine(CONFIRMATIONS - 1)
    expect(result).to_contain_text("Credited 2.500000 ocUSD", timeout=60_000)
    expect(page.locator("#deposits [data-status=credited]")).to_have_count(1)
    expect(page.locator("#top-up-steps li.done")).to_have_count(5)
    shot(page, "balance-top-up-credited", full_page=True)
    after = topup.account()
    assert after["balance"] == before["balance"] + 2_500_000
    assert topup.client.token_balance(WALLET) == wallet_before - 2_500_000
    [d] = [d for d in after["deposits"] if d["status"] == "credited"]
    assert (d["amount"], d["from"]) == (2_500_000, WALLET)
    assert "eth_sendTransaction" in wallet.calls and "wallet_switchEthereumChain" not in wallet.calls
    assert after["account"] == DEV_ACCOUNT
    assert not errors, errors


def test_wrong_chain_declined_sends_nothing(browser: Browser, topup: Topup) -> None:
    wallet = InjectedWallet(topup.chain.rpc_url, chain_id=1, allow_switch=False)
    page, errors = wallet_page(browser, topup, wallet)
    before = topup.account()
    page.goto("/balance")
    page.fill("#top-up-amount", "1")
    page.click("#top-up-button")
    result = page.locator("#top-up-result")
    expect(result).to_contain_text("Your wallet is on chain 1")
    expect(result).to_contain_text("You declined to switch: nothing was sent")
    expect(page.locator("#top-up-steps li.failed")).to_have_text("Check the network")
    shot(page, "balance-wrong-chain")
    assert "eth_sendTransaction" not in wallet.calls
    assert topup.account()["deposits"] == before["deposits"]
    assert not errors, errors


def test_wrong_chain_switched_then_rejected_deposit_is_a_clear_message(browser: Browser, topup: Topup) -> None:
    wallet = InjectedWallet(topup.chain.rpc_url, chain_id=1, allow_switch=True, reject={"eth_sendTransaction"})
    page, errors = wallet_page(browser, topup, wallet)
    page.goto("/balance")
    page.fill("#top-up-amount", "1")
    page.click("#top-up-button")
    result = page.locator("#top-up-result")
    expect(result).to_contain_text("You rejected the request in your wallet")
    expect(result).to_contain_text("nothing was sent")
    assert "wallet_switchEthereumChain" in wallet.calls and wallet.chain_id == topup.client.chain_id
    assert not errors, errors


@pytest.mark.parametrize("amount", ["abc", "0", "1.0000001"])
def test_bad_amounts_are_refused_before_the_wallet(browser: Browser, topup: Topup, amount: str) -> None:
    wallet = InjectedWallet(topup.chain.rpc_url)
    page, errors = wallet_page(browser, topup, wallet)
    page.goto("/balance")
    expect(page.locator("[data-field=reference] code")).to_have_count(1)
    page.fill("#top-up-amount", amount)
    page.click("#top-up-button")
    expect(page.locator("#top-up-result")).to_have_attribute("data-kind", "error")
    assert wallet.calls == []
    assert not errors, errors


def test_balance_page_without_a_chain_says_so(page: Page) -> None:
    page.goto("/balance")
    expect(page.locator("#balance-amount")).to_contain_text("ocUSD")
    expect(page.locator("#instructions")).to_contain_text("not available on this server")
    expect(page.locator("#top-up-form")).to_be_hidden()
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Balance")


def test_an_empty_balance_becomes_a_paid_answer_after_one_top_up(topup: Topup) -> None:
    """A new asker with nothing gets 402, deposits one answer's price on chain to its reference,
    and once the deposit has its confirmations the next answer is delivered and paid."""
    import uuid

    import openai
    from web3 import Web3

    from assistant.auth import ApiKeys
    from payouts.chain import load_artifact

    app = topup.live.server.config.app
    price = app.state.settings.payouts.price_per_answer
    account, key = f"new-{uuid.uuid4().hex[:8]}", f"key-{uuid.uuid4().hex}"
    app.state.api_keys = ApiKeys({**app.state.api_keys._keys, key: account})
    client = openai.OpenAI(base_url=f"{topup.live.url}/v1", api_key=key, max_retries=0, timeout=120)
    name = f"Quokka {uuid.uuid4().hex[:6]}"
    resp = httpx.post(f"{topup.live.url}/v1/contributions", headers={"Authorization": f"Bearer {DEV_KEY}"}, timeout=60,
                      json={"text": f"{name} eats grasses, leaves and stems on Rottnest Island.",
                            "contributor": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"})
    assert resp.status_code == 201, resp.text
    question = [{"role": "user", "content": f"What does {name} eat?"}]
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model=MODEL, messages=question)
    assert refused.value.status_code == 402
    with httpx.Client(base_url=topup.live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        target = c.get("/v1/account").json()["top_up"]
        assert c.get("/v1/account").json()["balance"] == 0
        w3 = Web3(Web3.HTTPProvider(topup.chain.rpc_url))
        token = w3.eth.contract(address=topup.client.deployment.token, abi=load_artifact("MockStablecoin")["abi"])
        topups = w3.eth.contract(address=Web3.to_checksum_address(target["contract"]), abi=load_artifact("TopUps")["abi"])
        w3.eth.wait_for_transaction_receipt(token.functions.approve(topups.address, price).transact({"from": WALLET}))
        w3.eth.wait_for_transaction_receipt(
            topups.functions.deposit(bytes.fromhex(target["reference"][2:]), price).transact({"from": WALLET}))
        topup.mine(CONFIRMATIONS)
        for _ in range(100):  # the follower thread credits it within a few of its 0.3 s rounds
            if c.get("/v1/account").json()["balance"] == price:
                break
            threading.Event().wait(0.3)
        assert c.get("/v1/account").json()["balance"] == price
        reply = client.chat.completions.create(model=MODEL, messages=question)
        assert reply.choices[0].message.content and reply.model_extra["openchat"]["price"] == price
        assert c.get("/v1/account").json()["balance"] == 0
