"""The deposit follower on a real anvil: TopUps deposits credited to askers' balances exactly once,
after the confirmations, across re-runs, duplicated logs, worker SIGKILLs and reorgs
(``evm_snapshot`` / ``evm_revert``) below and above the confirmation depth."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from assistant.db import migrate
from payouts import ledger, topups
from payouts.chain import ChainClient, ContractRevert, Deployment
from payouts.db import make_engine
from payouts.deploy import ensure_deployment_for_settings
from payouts.localchain import LocalChain, LocalChainError, find_anvil, rpc_call
from payouts.models import ChainDeposit, JournalEntry
from payouts.reconcile import reconcile
from payouts.settings import PayoutsSettings
from payouts.tasks import Resources, run_follow_deposits
from payouts.worker import create_celery
from tests.payouts.conftest import REDIS_URL, Stack, redis_available

CONFIRMATIONS = 3
# anvil's second and third dev accounts (public keys of the "test test ... junk" mnemonic): askers' wallets
WALLET_KEYS = ("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
               "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")


@dataclass
class Chain:
    local: LocalChain
    data_dir: Path
    deployment: Deployment
    client: ChainClient
    wallets: list[LocalAccount]

    def rpc(self, method: str, *params: object) -> object:
        return rpc_call(self.local.rpc_url, method, list(params))

    def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self.rpc("evm_mine")

    def deposit(self, ref: str, amount: int, wallet: int = 0) -> dict:
        w = self.wallets[wallet]
        self.client.deposit(bytes.fromhex(ref[2:]), amount, w)
        return {"from": w.address}

    def head(self) -> int:
        return self.client.head()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path_factory.mktemp("topups")
    local = LocalChain(data_dir, state_interval=0).start()
    settings = PayoutsSettings(data_dir=data_dir, chain_rpc_url=local.rpc_url)
    deployment = ensure_deployment_for_settings(settings)
    client = ChainClient.connect(local.rpc_url, deployment, settings.hub_private_key.get_secret_value())
    wallets = [Account.from_key(k) for k in WALLET_KEYS]
    for w in wallets:  # askers' wallets hold ocUSD and let TopUps pull it
        client.mint(w.address, 10**15)
        client.approve(2**255, spender=deployment.topups, account=w)
    yield Chain(local, data_dir, deployment, client, wallets)
    local.stop()


def settings_for(chain: Chain, engine: Engine, **extra: object) -> PayoutsSettings:
    return PayoutsSettings(data_dir=chain.data_dir, chain_rpc_url=chain.local.rpc_url,
                           database_url=engine.url.render_as_string(hide_password=False),
                           deposit_confirmations=CONFIRMATIONS, **extra)


@pytest.fixture
def res(chain: Chain, engine: Engine) -> Iterator[Resources]:
    r = Resources(settings_for(chain, engine))
    r.engine = engine
    # the chain is shared by the module's tests: their deposits are final (and unassigned in this
    # fresh ledger) before this test starts, so its counts are its own
    chain.mine(CONFIRMATIONS)
    run_follow_deposits(r)
    yield r


def new_ref(engine: Engine) -> tuple[str, str]:
    account = f"asker-{uuid.uuid4().hex[:8]}"
    with Session(engine) as s, s.begin():
        return account, topups.deposit_ref(s, account)


def balance(engine: Engine, account: str) -> int:
    with Session(engine) as s:
        return ledger.balance(s, account)


def rows(engine: Engine, ref: str) -> list[ChainDeposit]:
    with Session(engine) as s:
        return list(s.scalars(select(ChainDeposit).where(ChainDeposit.account_ref == ref).order_by(ChainDeposit.id)))


def journal_deposits(engine: Engine, account: str) -> list[int]:
    with Session(engine) as s:
        return [int(d) for d in s.scalars(select(JournalEntry.delta).where(
            JournalEntry.holder == f"account:{account}", JournalEntry.kind == "deposit"))]


def books_balance(engine: Engine) -> None:
    with Session(engine) as s:
        assert topups.check_invariants(s) == []
        assert ledger.check_invariants(s) == []


# ------------------------------------------------------------------ contract


def test_deposit_moves_tokens_to_the_treasury_and_logs_the_reference(chain: Chain, engine: Engine) -> None:
    _, ref = new_ref(engine)
    hub = chain.deployment.hub
    before_hub, before_wallet = chain.client.token_balance(hub), chain.client.token_balance(chain.wallets[0].address)
    head = chain.head()
    chain.deposit(ref, 1_234_567)
    assert chain.client.token_balance(hub) - before_hub == 1_234_567
    assert before_wallet - chain.client.token_balance(chain.wallets[0].address) == 1_234_567
    logs = chain.client.deposit_logs(head + 1, chain.head())
    assert [(lg.account_ref, lg.sender, lg.amount) for lg in logs] == [(ref, chain.wallets[0].address, 1_234_567)]


@pytest.mark.parametrize(("ref", "amount", "error"), [
    ("0x" + "00" * 32, 1, "ZeroAccount"), ("0x" + "11" * 32, 0, "ZeroAmount")])
def test_deposit_refuses_nothing_and_no_reference(chain: Chain, ref: str, amount: int, error: str) -> None:
    with pytest.raises(ContractRevert) as info:
        chain.deposit(ref, amount)
    assert info.value.name == error


def test_deposit_without_allowance_reverts_and_logs_nothing(chain: Chain, engine: Engine) -> None:
    _, ref = new_ref(engine)
    stranger = Account.create()
    chain.rpc("anvil_setBalance", stranger.address, hex(10**18))
    chain.client.mint(stranger.address, 1_000)
    head = chain.head()
    with pytest.raises(ContractRevert) as info:
        chain.client.deposit(bytes.fromhex(ref[2:]), 1_000, stranger)
    assert info.value.name == "ERC20InsufficientAllowance"
    assert chain.client.deposit_logs(head + 1, chain.head()) == []


# ------------------------------------------------------------------ follower


def test_credited_once_after_the_confirmations_and_never_again(chain: Chain, engine: Engine, res: Resources) -> None:
    account, ref = new_ref(engine)
    chain.deposit(ref, 5_000_000)
    out = run_follow_deposits(res)
    assert out["new"] == 1 and out["credited"] == 0  # 1 confirmation of 3
    assert [r.status for r in rows(engine, ref)] == ["pending"] and balance(engine, account) == 0
    chain.mine(CONFIRMATIONS - 2)
    assert run_follow_deposits(res)["credited"] == 0  # 2 of 3
    chain.mine(1)
    out = run_follow_deposits(res)
    assert out["credited"] == 1
    assert balance(engine, account) == 5_000_000
    for _ in range(3):  # re-runs, and a restarted worker (fresh resources, same database)
        assert run_follow_deposits(res)["credited"] == 0
    again = Resources(res.settings)
    again.engine = engine
    out = run_follow_deposits(again)
    assert (out["new"], out["credited"]) == (0, 0)
    assert balance(engine, account) == 5_000_000
    assert journal_deposits(engine, account) == [5_000_000]
    [row] = rows(engine, ref)
    assert (row.status, row.account_id, row.amount) == ("credited", account, 5_000_000)
    books_balance(engine)


def test_duplicated_logs_are_recorded_and_credited_once(chain: Chain, engine: Engine, res: Resources) -> None:
    account, ref = new_ref(engine)
    start = chain.head() + 1
    chain.deposit(ref, 700)
    chain.deposit(ref, 300, wallet=1)
    chain.mine(CONFIRMATIONS)
    logs = chain.client.deposit_logs(start, chain.head())
    assert len(logs) == 2
    with Session(engine) as s, s.begin():  # a node that returns every log twice, in two overlapping reads
        assert topups.record_seen(s, logs + logs) == 2
        assert topups.record_seen(s, list(reversed(logs))) == 0
    due = None
    with Session(engine) as s:
        due = topups.pending(s, chain.client.chain_id, chain.deployment.topups, up_to_block=chain.head())
    assert len(due) == 2
    with Session(engine) as s, s.begin():  # two finalisers with the same rows: one moves each
        assert [topups.finalise(s, r) for r in due] == ["credited", "credited"]
        assert [topups.finalise(s, r) for r in due] == [None, None]
    assert run_follow_deposits(res)["credited"] == 0
    assert balance(engine, account) == 1_000
    assert sorted(journal_deposits(engine, account)) == [300, 700]
    books_balance(engine)


def test_unknown_reference_is_kept_unassigned_not_lost(chain: Chain, engine: Engine, res: Resources) -> None:
    stray = "0x" + uuid.uuid4().hex * 2
    with Session(engine) as s:
        before = topups.figures(s)["deposits_unassigned_base_units"]
    chain.deposit(stray, 42)
    chain.mine(CONFIRMATIONS)
    out = run_follow_deposits(res)
    assert out["unassigned"] == 1 and out["credited"] == 0
    [row] = rows(engine, stray)
    assert (row.status, row.amount, row.account_id) == ("unassigned", 42, None)
    assert "no account" in (row.note or "")
    with Session(engine) as s:
        assert topups.figures(s)["deposits_unassigned_base_units"] - before == 42
    books_balance(engine)


def test_reorg_below_the_depth_credits_only_what_stayed(chain: Chain, engine: Engine, res: Resources) -> None:
    """A deposit seen with fewer confirmations than required, then reorged away, is never
    credited; the deposit the new branch holds is."""
    account, ref = new_ref(engine)
    snapshot = chain.rpc("evm_snapshot")
    chain.deposit(ref, 1_111)  # on the branch that will vanish
    assert run_follow_deposits(res)["new"] == 1
    chain.mine(CONFIRMATIONS - 2)  # still short of final
    assert run_follow_deposits(res)["credited"] == 0
    assert chain.rpc("evm_revert", snapshot) is True
    chain.rpc("evm_increaseTime", 7)  # the new branch's blocks differ from the old ones
    chain.deposit(ref, 2_222, wallet=1)
    chain.mine(CONFIRMATIONS + 1)
    out = run_follow_deposits(res)
    assert out["credited"] == 1 and out["dropped"] == 1
    assert balance(engine, account) == 2_222
    statuses = {r.amount: r.status for r in rows(engine, ref)}
    assert statuses == {1_111: "dropped", 2_222: "credited"}
    with Session(engine) as s:
        assert reconcile(s, chain.client).problems == []
    books_balance(engine)


def test_reorg_that_re_mines_the_same_transaction_in_another_block_credits_it_once(
        chain: Chain, engine: Engine, res: Resources) -> None:
    account, ref = new_ref(engine)
    wallet = chain.wallets[0]
    fn = chain.client.topups.functions.deposit(bytes.fromhex(ref[2:]), 3_333)
    tx = {"to": chain.deployment.topups, "data": fn._encode_transaction_data(), "from": wallet.address,
          "chainId": chain.client.chain_id, "nonce": chain.client.w3.eth.get_transaction_count(wallet.address),
          "gas": 200_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
    raw = wallet.sign_transaction(tx).raw_transaction
    snapshot = chain.rpc("evm_snapshot")
    chain.rpc("eth_sendRawTransaction", "0x" + raw.hex())
    run_follow_deposits(res)
    [seen] = rows(engine, ref)
    chain.rpc("evm_revert", snapshot)
    chain.rpc("evm_increaseTime", 5)
    chain.mine(1)  # the tx comes back one block later
    chain.rpc("eth_sendRawTransaction", "0x" + raw.hex())
    chain.mine(CONFIRMATIONS)
    assert run_follow_deposits(res)["credited"] == 1
    [row] = rows(engine, ref)
    assert row.tx_hash == seen.tx_hash and row.block_number == seen.block_number + 1
    assert row.block_hash != seen.block_hash and row.status == "credited"
    assert balance(engine, account) == 3_333 and journal_deposits(engine, account) == [3_333]
    books_balance(engine)


def test_reorg_above_the_depth_un_credits_nothing_and_reconcile_reports_it(
        chain: Chain, engine: Engine, res: Resources) -> None:
    """Deeper than the confirmations: what was final stays credited (the balance may have been
    spent); reconcile names the deposit whose log the chain lost."""
    account, ref = new_ref(engine)
    snapshot = chain.rpc("evm_snapshot")
    chain.deposit(ref, 4_444)
    chain.mine(CONFIRMATIONS)
    assert run_follow_deposits(res)["credited"] == 1
    chain.rpc("evm_revert", snapshot)
    chain.rpc("evm_increaseTime", 9)
    chain.mine(CONFIRMATIONS + 2)
    out = run_follow_deposits(res)
    assert out["credited"] == 0 and out["dropped"] == 0
    assert balance(engine, account) == 4_444
    assert [r.status for r in rows(engine, ref)] == ["credited"]
    with Session(engine) as s:
        problems = reconcile(s, chain.client).problems
    assert any("no such log any more" in p for p in problems), problems


def test_status_and_figures_count_deposits_by_status(chain: Chain, engine: Engine, res: Resources) -> None:
    account, ref = new_ref(engine)
    chain.deposit(ref, 10)
    chain.mine(CONFIRMATIONS)
    chain.deposit(ref, 20)  # not final yet
    with Session(engine) as s:
        before = topups.figures(s)
    run_follow_deposits(res)
    with Session(engine) as s:
        f = {k: v - before[k] for k, v in topups.figures(s).items()}
        view = topups.account_view(s, account, days=7)
    assert (f["deposits_credited"], f["deposits_credited_base_units"]) == (1, 10)
    assert (f["deposits_pending"], f["deposits_pending_base_units"]) == (1, 20)
    assert f["account_balances_base_units"] >= 10
    assert [(d["amount"], d["status"]) for d in view["deposits"]] == [(20, "pending"), (10, "credited")]
    assert view["balance"] == 10 and len(view["spending"]) == 7


# -------------------------------------------------------------- worker SIGKILL


@pytest.fixture
def worker_stack(chain: Chain, tmp_path: Path) -> Iterator[Stack]:
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    import redis

    db = tmp_path / "ledger.sqlite3"
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    prefix = f"openchat-test-{uuid.uuid4().hex[:10]}:"
    env = {"OPENCHAT_DATA_DIR": str(chain.data_dir), "OPENCHAT_DATABASE_URL": f"sqlite:///{db}",
           "OPENCHAT_REDIS_URL": REDIS_URL, "OPENCHAT_REDIS_KEY_PREFIX": prefix,
           "OPENCHAT_CHAIN_RPC_URL": chain.local.rpc_url, "OPENCHAT_BROKER_VISIBILITY_TIMEOUT": "3",
           "OPENCHAT_BROKER_RESTORE_INTERVAL": "1", "OPENCHAT_TASK_RETRY_BACKOFF_MAX": "2",
           "OPENCHAT_DEPOSIT_CONFIRMATIONS": str(CONFIRMATIONS)}
    settings = PayoutsSettings(data_dir=chain.data_dir, database_url=env["OPENCHAT_DATABASE_URL"], redis_url=REDIS_URL,
                               redis_key_prefix=prefix, chain_rpc_url=chain.local.rpc_url, broker_visibility_timeout=3)
    st = Stack(chain.data_dir, env, settings, engine, chain.local, chain.client, create_celery(settings),
               tmp_path / "worker.log")
    yield st
    st.stop_worker()
    engine.dispose()
    r = redis.Redis.from_url(REDIS_URL)
    for key in r.scan_iter(match=f"{prefix}*"):
        r.delete(key)


@pytest.mark.parametrize("step", ["deposits_seen", "deposits_credit"])
def test_worker_killed_mid_step_loses_and_doubles_nothing(chain: Chain, worker_stack: Stack, step: str) -> None:
    st = worker_stack
    account, ref = new_ref(st.engine)
    chain.deposit(ref, 9_000)
    chain.deposit(ref, 1_000, wallet=1)
    chain.mine(CONFIRMATIONS)
    st.start_worker(OPENCHAT_FAULT_PAUSE_SECONDS="60", OPENCHAT_FAULT_PAUSE_TASKS=step)
    st.send("payouts.follow_deposits")
    st.wait_log(f"PAUSE {step}")
    st.kill_worker()  # SIGKILL before that step's commit
    assert balance(st.engine, account) == 0
    st.start_worker()  # the unacknowledged task is delivered again; one more run on top
    st.send("payouts.follow_deposits")
    st.wait_for(lambda: balance(st.engine, account) == 10_000, timeout=60, what="both deposits credited")
    st.stop_worker()
    # a later run (a restarted worker) finds nothing more to do
    again = Resources(st.settings)
    again.engine = st.engine
    assert run_follow_deposits(again)["credited"] == 0
    with Session(st.engine) as s:
        assert int(s.scalar(select(func.count()).select_from(ChainDeposit).where(
            ChainDeposit.account_ref == ref, ChainDeposit.status == "credited"))) == 2
    assert sorted(journal_deposits(st.engine, account)) == [1_000, 9_000]
    books_balance(st.engine)


# ------------------------------------------------------------------ deploy


def test_a_deployment_from_before_topups_gets_one_added_and_nothing_else_redeployed(
        chain: Chain, tmp_path: Path) -> None:
    import dataclasses
    import json

    from payouts.deploy import ensure_deployment

    old = dataclasses.asdict(chain.deployment)
    for key in ("topups", "topups_block"):
        old.pop(key)
    old["code_hashes"] = {k: v for k, v in old["code_hashes"].items() if not k.startswith("TopUps")}
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(old))
    hub = PayoutsSettings().hub_private_key.get_secret_value()
    w3 = chain.client.w3
    kept = ensure_deployment(w3, hub, path, challenge_period=chain.deployment.challenge_period, funding_amount=0,
                             deploy_if_missing=False)
    assert kept.topups == ""  # deploying disabled: top-ups stay off, nothing sent
    added = ensure_deployment(w3, hub, path, challenge_period=chain.deployment.challenge_period, funding_amount=0)
    assert (added.token, added.channels, added.registry) == (
        chain.deployment.token, chain.deployment.channels, chain.deployment.registry)
    assert added.topups and added.topups != chain.deployment.topups and added.topups_block > chain.deployment.topups_block
    assert Deployment.load(path) == added
    again = ensure_deployment(w3, hub, path, challenge_period=chain.deployment.challenge_period, funding_amount=0)
    assert again == added  # reused
