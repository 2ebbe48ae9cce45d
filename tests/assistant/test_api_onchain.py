"""Money and provenance that reach the chain, through the running app and a real anvil:
vouchers a contributor can verify and claim, payout statuses up to settled, and contribution
proofs that verify against the root anchored on the ContributionRegistry."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.provenance import unanchored_chunk_leaves
from assistant.settings import load_settings
from payouts import anchoring, ledger
from payouts.chain import ChainClient
from payouts.deploy import ensure_deployment_for_settings
from payouts.localchain import LocalChain, LocalChainError, find_anvil
from payouts.models import ContributionAnchor, Contributor
from payouts.tasks import Resources, run_aggregate, run_issue_vouchers, run_settle
from tests.conftest import DEV_KEY, LiveServer, start_server
from tests.payouts.conftest import REDIS_URL, worker_argv

PRICE, FEE = 10_000, 1_000


@dataclass
class ChainedApi:
    live: LiveServer
    chain: LocalChain
    client: ChainClient
    res: Resources


@pytest.fixture(scope="module")
def onchain(embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainedApi]:  # type: ignore[no-untyped-def]
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path_factory.mktemp("onchain")
    chain = LocalChain(data_dir, state_interval=0).start()
    settings = load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, chain_rpc_url=chain.rpc_url,
                             channel_min_topup=1_000, anchor_max_leaves=3, payout_min_owed=0)
    deployment = ensure_deployment_for_settings(settings.payouts)
    live = start_server(settings, embedder)
    client = ChainClient.connect(chain.rpc_url, deployment, settings.payouts.hub_private_key.get_secret_value())
    res = Resources(settings.payouts)
    try:
        yield ChainedApi(live, chain, client, res)
    finally:
        live.stop()
        if res.engine is not None:
            res.engine.dispose()
        chain.stop()


def contribute(api: LiveServer, text: str, who: str) -> int:
    with api.client() as c:
        resp = c.post("/v1/contributions", json={"text": text, "contributor": who})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def ask(api: LiveServer, question: str) -> dict:
    with api.client() as c:
        resp = c.post("/v1/chat/completions", json={"model": "openchat-extractive",
                                                    "messages": [{"role": "user", "content": question}]})
    assert resp.status_code == 200, resp.text
    return resp.json()["openchat"]


def credit_status(api: LiveServer, answer_id: str) -> tuple[str, str | None, str]:
    with api.client() as c:
        ans = c.get(f"/v1/answers/{answer_id}").json()
    (credit,) = ans["credits"]
    return credit["status"], credit["settlement_tx"], ans["sources"][0]["payout_status"]


def test_voucher_recovers_to_payer_and_claims_on_chain(onchain: ChainedApi) -> None:
    api, client = onchain.live, onchain.client
    wallet = Account.create()
    contribute(api, "The axolotl can regrow its limbs, spinal cord and parts of its heart.", wallet.address)
    first = ask(api, "What can an axolotl regrow?")
    assert first["credits"] == [{"contributor": wallet.address, "amount": PRICE - FEE}]
    assert credit_status(api, first["answer_id"])[0] == "credited"
    assert run_aggregate(onchain.res)["credits"] >= 1
    assert credit_status(api, first["answer_id"])[0] == "batched"
    assert run_issue_vouchers(onchain.res)["vouchers"] >= 1
    assert credit_status(api, first["answer_id"])[::2] == ("vouchered", "vouchered")

    with api.client(None) as c:  # public
        body = c.get(f"/v1/contributors/{wallet.address}/voucher").json()
        summary = c.get(f"/v1/contributors/{wallet.address}").json()
    assert (summary["earned"], summary["batched"], summary["vouchered"], summary["settled"], summary["unsettled"]) == \
        (PRICE - FEE, PRICE - FEE, PRICE - FEE, 0, PRICE - FEE)
    assert body["cumulative_amount"] == str(PRICE - FEE) and body["payer"] == client.hub.address
    typed = body["typed_data"]
    assert set(typed) == {"domain", "types", "primaryType", "message"}
    # Anyone can verify it with a standard library: eth-account recovers the hub from the JSON.
    recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=body["signature"])
    assert recovered == body["payer"]
    # ...and the contributor's wallet cashes it on the real PaymentChannels contract with only the JSON.
    onchain.chain.set_balance(wallet.address, 10**18)
    fn = client.channels.functions.claim(bytes.fromhex(body["channel_id"][2:]), int(body["cumulative_amount"]),
                                         bytes.fromhex(body["signature"][2:]))
    client.sender.send(wallet, {"to": fn.address, "data": fn._encode_transaction_data()})
    assert client.token_balance(wallet.address) == PRICE - FEE
    run_settle(onchain.res, threshold=10**12)  # records what the claim paid; pushes nothing
    assert credit_status(onchain.live, first["answer_id"])[:2] == ("settled", None)  # claimed, not pushed

    # A second answer goes the hub's way: a batched push, whose tx the answer then shows.
    second = ask(api, "Which body parts does the axolotl regenerate?")
    run_aggregate(onchain.res)
    run_issue_vouchers(onchain.res)
    pushed = run_settle(onchain.res, threshold=1)
    assert pushed["transactions"] >= 1
    status, tx, source_status = credit_status(api, second["answer_id"])
    assert (status, source_status) == ("settled", "settled") and tx is not None
    receipt = client.w3.eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1 and client.token_balance(wallet.address) == 2 * (PRICE - FEE)
    with Session(onchain.res.db()) as s:
        assert ledger.check_invariants(s) == []


def verify_on_chain(client: ChainClient, item: dict) -> bool:
    """The registry's own verify, called with nothing but the API's JSON."""
    contributor, content_hash, contribution_id = item["leaf_values"]
    fn = client.registry.functions.verify(item["anchor"]["batch_id"], [bytes.fromhex(p[2:]) for p in item["proof"]],
                                          contributor, bytes.fromhex(content_hash[2:]), int(contribution_id))
    return bool(fn.call())


def proof_of(api: LiveServer, contribution_id: int) -> dict:
    with api.client(None) as c:
        resp = c.get(f"/v1/contributions/{contribution_id}/proof")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_anchored_contributions_prove_their_origin(onchain: ChainedApi) -> None:
    api, client = onchain.live, onchain.client
    who = Account.create().address
    ids = [contribute(api, text, who) for text in (
        "Venus rotates backwards compared with most planets in the solar system.",
        "A day on Venus is longer than its year.",
        "Mercury has almost no atmosphere to retain heat.",
        "Olympus Mons on Mars is the tallest volcano known in the solar system.")]
    assert proof_of(api, ids[0])["chunks"]["items"][0]["status"] == "pending"
    batches = client.batch_count()
    out = anchoring.run_anchor(onchain.res, unanchored_chunk_leaves)
    assert out["leaves"] >= 4 and out["anchors"] >= 2  # at most 3 leaves per root in this fixture
    assert client.batch_count() == batches + out["anchors"]
    for cid in ids:
        body = proof_of(api, cid)
        assert body["contributor"] == who
        (item,) = body["chunks"]["items"]
        assert item["status"] == "anchored" and item["leaf_values"][0] == who and item["leaf_values"][2] == str(cid)
        anchor = item["anchor"]
        assert anchor["registry"] == client.deployment.registry and anchor["tx_hash"] and anchor["block_number"]
        assert bytes(client.get_batch(anchor["batch_id"]).root).hex() == item["root"][2:]
        assert verify_on_chain(client, item)
        forged = {**item, "leaf_values": [Account.create().address, *item["leaf_values"][1:]]}
        assert not verify_on_chain(client, forged)  # someone else cannot claim the text
    # The API's per-process tree cache serves the very proofs a fresh rebuild gives.
    trees = anchoring.AnchorTrees(onchain.res.db())
    with Session(onchain.res.db()) as s:
        hashes = [proof_of(api, cid)["chunks"]["items"][0]["content_hash"][2:] for cid in ids]
        assert anchoring.leaf_proofs(s, hashes, trees.get) == anchoring.leaf_proofs(s, hashes)
        anchor_id = s.scalar(select(func.min(ContributionAnchor.id)))
    assert trees.get(anchor_id) is trees.get(anchor_id)
    # A retried task anchors nothing again.
    assert anchoring.run_anchor(onchain.res, unanchored_chunk_leaves) == {"anchors": 0, "leaves": 0, "recovered": 0}
    assert client.batch_count() == batches + out["anchors"]
    with api.client(None) as c:
        resp = c.get("/v1/contributions/999999/proof")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def test_anchor_survives_a_crash_after_sending_and_a_dropped_transaction(onchain: ChainedApi) -> None:
    api, client, res = onchain.live, onchain.client, onchain.res
    who = Account.create().address
    crashed = contribute(api, "Tardigrades survive being frozen, boiled and exposed to the vacuum of space.", who)
    # A run that committed its pending anchor and got the transaction mined, then died.
    with res.transaction() as s:
        aid, root = anchoring.plan_anchor(s, unanchored_chunk_leaves(s, 3))
    sent_batch, receipt = client.anchor_root(root, 1)
    batches = client.batch_count()
    # Another one that died before sending (or whose transaction was dropped).
    dropped = contribute(api, "Octopus arms contain most of the animal's neurons.", who)
    with res.transaction() as s:
        aid2, root2 = anchoring.plan_anchor(s, unanchored_chunk_leaves(s, 3))
    assert client.batch_of_root(root2) is None
    out = anchoring.run_anchor(res, unanchored_chunk_leaves)
    assert out["recovered"] == 2
    assert client.batch_count() == batches + 1  # the mined root was not sent again; the dropped one was
    with Session(res.db()) as s:
        first, second = s.get(ContributionAnchor, aid), s.get(ContributionAnchor, aid2)
        assert first.status == second.status == "confirmed"
        assert first.registry_batch_id == sent_batch and first.tx_hash == "0x" + bytes(receipt["transactionHash"]).hex()
        assert second.registry_batch_id == client.batch_of_root(root2) and second.tx_hash
        assert s.scalar(select(func.count()).select_from(ContributionAnchor).where(
            ContributionAnchor.status == "pending")) == 0
    for cid in (crashed, dropped):
        (item,) = proof_of(api, cid)["chunks"]["items"]
        assert item["status"] == "anchored" and verify_on_chain(client, item)
    # The registry itself refuses a root twice: the last guard against a double anchor.
    from payouts.chain import ContractRevert

    with pytest.raises(ContractRevert) as err:
        client.anchor_root(root, 1)
    assert err.value.name == "DuplicateRoot"


def test_unpayable_payees_are_refused_at_intake_and_quarantined_in_the_runs(onchain: ChainedApi) -> None:
    """Intake refuses the deployment's own addresses (read from the deployment file); a credit
    to one from before the check is quarantined by the runs, paid to nobody, and shown with its
    reason in /metrics, while the honest contributor beside it is vouchered and settled."""
    api, client, res = onchain.live, onchain.client, onchain.res
    d = client.deployment
    for address, why in ((d.token, "the payment token's contract"), (d.channels, "the PaymentChannels contract"),
                         (d.registry, "the ContributionRegistry contract"), (d.hub, "the hub's own address")):
        with api.client() as c:
            resp = c.post("/v1/contributions", json={"text": f"Lichens are fungi living with algae ({why}).",
                                                     "contributor": address.lower()})
        assert resp.status_code == 400, resp.text
        err = resp.json()["error"]
        assert err["code"] == "unpayable_address" and err["param"] == "contributor"
        assert err["message"].startswith(f"contributor {address} can never be paid: it is {why}")
    honest = Account.create().address
    with res.transaction() as s:  # an answer citing the hub's address and an honest contributor
        ledger.deposit(s, "pre-check-asker", PRICE)
        ledger.record_answer_payment(s, "pre-check-asker", "pre-check-" + uuid.uuid4().hex[:12], PRICE,
                                     {d.hub: 1, honest: 1}, fee_bps=FEE * 10_000 // PRICE)
    run_aggregate(res)
    assert run_issue_vouchers(res)["quarantined"] == 1
    run_settle(res, threshold=1)
    with Session(res.db()) as s:
        hub_row = s.get(Contributor, d.hub)
        honest_row = s.get(Contributor, honest)
        assert (hub_row.earned, hub_row.vouchered, hub_row.settled) == ((PRICE - FEE) // 2, 0, 0)
        assert honest_row.settled == honest_row.earned == (PRICE - FEE) // 2
        assert ledger.check_invariants(s) == []
    assert client.token_balance(honest) == (PRICE - FEE) // 2
    with api.client(None) as c:
        text = c.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (payee,) = [x for x in families["openchat_payee_quarantined"].samples if x.labels["address"] == d.hub]
    assert payee.value == 1 and payee.labels == {"address": d.hub, "stage": "voucher", "reason": "hub_address"}
    assert families["openchat_payees_quarantined"].samples[0].value >= 1
    assert families["openchat_quarantined_owed_base_units"].samples[0].value >= (PRICE - FEE) // 2




@dataclass
class Worker:
    """A real `celery -A assistant.worker` process (how deployments run it) and its task sender."""

    onchain: ChainedApi
    prefix: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, **extra_env: str) -> None:
        settings = self.onchain.live.settings
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")},
               "OPENCHAT_DATA_DIR": str(settings.app.data_dir), "OPENCHAT_REDIS_URL": REDIS_URL,
               "OPENCHAT_REDIS_KEY_PREFIX": self.prefix, "OPENCHAT_CHAIN_RPC_URL": str(settings.payouts.chain_rpc_url),
               "OPENCHAT_BROKER_VISIBILITY_TIMEOUT": "3", "OPENCHAT_BROKER_RESTORE_INTERVAL": "1", **extra_env}
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                worker_argv("assistant.worker", f"anchor-{uuid.uuid4().hex[:6]}@test"),
                env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=str(Path(__file__).resolve().parents[2]))
        self.wait_log("ready.")

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace")

    def wait_log(self, needle: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.log():
            assert self.proc is not None and self.proc.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, self.log()[-3000:]
            time.sleep(0.05)

    def send_anchor(self) -> None:
        from assistant.worker import create_worker_app

        settings = self.onchain.live.settings
        sender = create_worker_app(load_settings(data_dir=settings.app.data_dir, redis_url=REDIS_URL,
                                                 redis_key_prefix=self.prefix,
                                                 chain_rpc_url=settings.payouts.chain_rpc_url))
        assert "payouts-anchor-contributions" in sender.conf.beat_schedule
        sender.tasks[anchoring.TASK].apply_async()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture()
def worker(onchain: ChainedApi) -> Iterator[Worker]:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception:  # noqa: BLE001 - no Redis here
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"openchat-test-{uuid.uuid4().hex[:10]}:"
    w = Worker(onchain, prefix, Path(onchain.live.settings.app.data_dir) / f"worker-{prefix[14:24]}.log")
    try:
        yield w
    finally:
        w.stop()
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(match=f"{prefix}*"):
            r.delete(key)


def wait_anchored(w: Worker, contribution_id: int) -> dict:
    deadline = time.monotonic() + 90
    while (item := proof_of(w.onchain.live, contribution_id)["chunks"]["items"][0])["status"] != "anchored":
        assert w.proc is not None and w.proc.poll() is None, w.log()[-3000:]
        assert time.monotonic() < deadline, w.log()[-3000:]
        time.sleep(0.2)
    return item


def test_worker_from_assistant_module_anchors_on_its_own(onchain: ChainedApi, worker: Worker) -> None:
    """`celery -A assistant.worker` (how deployments run it) runs the anchoring task."""
    cid = contribute(onchain.live, "Sea otters hold hands while sleeping so they do not drift apart.",
                     Account.create().address)
    worker.start()
    worker.send_anchor()
    assert verify_on_chain(onchain.client, wait_anchored(worker, cid))


def test_worker_killed_after_the_anchor_is_mined_anchors_once(onchain: ChainedApi, worker: Worker) -> None:
    """SIGKILL between the mined anchor transaction and its record; the redelivered task finds
    the root on chain and records it: one on-chain batch, never two."""
    client = onchain.client
    cid = contribute(onchain.live, "Bar-tailed godwits fly from Alaska to New Zealand without stopping.",
                     Account.create().address)
    worker.start(OPENCHAT_FAULT_PAUSE_SECONDS="60", OPENCHAT_FAULT_PAUSE_TASKS="anchor_contributions")
    batches = client.batch_count()
    worker.send_anchor()
    worker.wait_log("PAUSE anchor_contributions")
    assert client.batch_count() == batches + 1  # mined...
    assert proof_of(onchain.live, cid)["chunks"]["items"][0]["status"] == "anchoring"  # ...not recorded
    worker.stop(signal.SIGKILL)
    worker.start()  # acks_late: the task comes back once the visibility timeout passes
    item = wait_anchored(worker, cid)
    assert client.batch_count() == batches + 1
    assert item["anchor"]["tx_hash"] and item["anchor"]["batch_id"] == batches
    assert verify_on_chain(client, item)
