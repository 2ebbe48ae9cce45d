"""Ledger amounts are bound to the deployment they are paid on (anvil, the real task bodies).

The reviewer's case: pay some, redeploy, owe more. Vouchers are cumulative per channel, and the
new deployment's channel has paid nothing, so before the ledger kept amounts per deployment the
first voucher there carried everything ever owed (99,000 paid for 9,000 newly owed)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from payouts import deployments, ledger
from payouts.chain import ChainClient, ChainError
from payouts.deploy import deploy_all, ensure_deployment_for_settings, fund_hub
from payouts.localchain import LocalChain, rpc_call
from payouts.models import Contributor, Voucher
from payouts.reconcile import reconcile
from payouts.settings import PayoutsSettings
from payouts.tasks import Resources, run_aggregate, run_issue_vouchers, run_settle
from tests.conftest import new_address
from tests.payouts.conftest import Stack, migrated_engine
from tests.payouts.test_batch_membership import _alembic

ROOT = Path(__file__).resolve().parents[2]


def credit(engine: Engine, amounts: dict[str, int]) -> None:
    """One answer per payee crediting it exactly ``amount`` (no fee)."""
    account = f"asker-{uuid.uuid4().hex[:8]}"
    with Session(engine) as s, s.begin():
        ledger.deposit(s, account, sum(amounts.values()))
        for i, (address, amount) in enumerate(amounts.items()):
            ledger.record_answer_payment(s, account, f"{account}-{i}", amount, {address: 1}, fee_bps=0)


def pay(res: Resources) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """aggregate → vouchers → settle (threshold 0), as the beat runs them."""
    return run_aggregate(res), run_issue_vouchers(res), run_settle(res, threshold=0)


def amounts(engine: Engine, address: str) -> tuple[int, int, int, int]:
    with Session(engine) as s:
        c = s.get(Contributor, address)
        assert c is not None
        return c.earned, c.batched, c.vouchered, c.settled


def paid(client: ChainClient, address: str) -> int:
    return client.get_channel(client.channel_id(address)).paid


def fresh_deployment(stack: Stack) -> ChainClient:
    """A new set of contracts on the session's anvil (new addresses), the hub funded on it."""
    hub = Account.from_key(stack.settings.hub_private_key.get_secret_value())
    deployment = deploy_all(stack.client.w3, hub, stack.settings.challenge_period_seconds)
    client = ChainClient(stack.client.w3, deployment, hub)
    fund_hub(client, stack.settings.hub_funding_amount)
    return client


def payouts_cli(db_url: str, *args: str, rpc_url: str | None = None, deployment_file: Path | None = None
                ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")}
    env["OPENCHAT_DATABASE_URL"] = db_url
    if rpc_url:
        env["OPENCHAT_CHAIN_RPC_URL"] = rpc_url
    if deployment_file:
        env["OPENCHAT_DEPLOYMENT_FILE"] = str(deployment_file)
    return subprocess.run([sys.executable, "-m", "payouts.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)


def test_a_redeploy_pays_only_what_is_newly_owed(engine: Engine, stack: Stack, tmp_path: Path) -> None:
    settings = stack.settings.model_copy(update={"channel_min_topup": 0})
    old = fresh_deployment(stack)
    old_res = Resources(settings, engine=engine, chain=old)
    alice, bob, carol = new_address(), new_address(), new_address()
    credit(engine, {alice: 90_000, bob: 30_000})
    _, vouchers, settled = pay(old_res)
    assert vouchers["vouchers"] == 2 and settled["amount"] == 120_000
    credit(engine, {carol: 5_000})  # vouchered on the old deployment, not settled there yet
    run_aggregate(old_res)
    assert run_issue_vouchers(old_res)["vouchers"] == 1

    new = fresh_deployment(stack)  # the redeploy
    assert new.deployment.channels != old.deployment.channels
    res = Resources(settings, engine=engine, chain=new)
    credit(engine, {alice: 9_000, bob: 1_000})
    hub = new.hub.address
    hub_new, hub_old = new.token_balance(hub), old.token_balance(hub)
    aggregated, vouchers, settled = pay(res)
    assert aggregated["total"] == 10_000
    assert vouchers["vouchers"] == 2  # alice and bob; carol's voucher is the old deployment's
    # the new channels pay exactly what was newly owed; carol is paid on the contract she was vouchered on
    assert (paid(new, alice), paid(new, bob), paid(new, carol)) == (9_000, 1_000, 0)
    assert (paid(old, alice), paid(old, bob), paid(old, carol)) == (90_000, 30_000, 5_000)
    assert (new.token_balance(alice), old.token_balance(alice)) == (9_000, 90_000)
    assert settled["amount"] == 15_000 and settled["transactions"] == 2  # one push per deployment
    assert hub_new - new.token_balance(hub) == 10_000  # deposits of the new channels, to the unit
    assert hub_old == old.token_balance(hub)  # carol's deposit was made with her old voucher
    assert amounts(engine, alice) == (99_000,) * 4 and amounts(engine, carol) == (5_000,) * 4
    with Session(engine) as s:
        v = ledger.latest_voucher(s, alice)
        assert (v.contract, v.cumulative_amount) == (new.deployment.channels, 9_000)
        assert ledger.check_invariants(s) == []
        report = reconcile(s, new)
    assert report.ok, report.problems
    checked = {d["contract"]: d for d in report.deployments}
    assert checked[new.deployment.channels]["checked"] == "configured"
    assert checked[old.deployment.channels]["checked"] == "live on the configured node"
    assert checked[new.deployment.channels]["settled"] == 10_000
    assert checked[old.deployment.channels]["settled"] == 125_000

    # idempotent: everything again after the redeploy moves nothing, on either contract
    nonce = new.w3.eth.get_transaction_count(hub)
    assert pay(res) == ({"batches": 0, "credits": 0, "total": 0},
                        {"vouchers": 0, "opened": 0, "topped_up": 0, "deposited": 0, "below_minimum": 0, "waiting": 0, "skipped": 0,
                         "quarantined": 0},
                        {"transactions": 0, "channels": 0, "amount": 0, "reconciled": 0, "synced": 0,
                         "quarantined": 0})
    assert run_issue_vouchers(old_res)["vouchers"] == 0 and run_settle(old_res, threshold=0)["transactions"] == 0
    assert new.w3.eth.get_transaction_count(hub) == nonce
    assert (paid(new, alice), paid(old, alice)) == (9_000, 90_000)

    # a voucher recorded under another contract than its deployment's: reconcile fails, loudly
    deployment_file = tmp_path / "deployment.json"
    new.deployment.save(deployment_file)
    url = engine.url.render_as_string(hide_password=False)
    clean = payouts_cli(url, "reconcile", rpc_url=stack.chain.rpc_url, deployment_file=deployment_file)
    assert clean.returncode == 0 and "OK: ledger and chain agree" in clean.stdout, clean.stdout + clean.stderr
    assert "(configured)" in clean.stdout and "(live on the configured node)" in clean.stdout
    with Session(engine) as s, s.begin():
        vid = s.scalar(select(Voucher.id).where(Voucher.contributor == alice).order_by(Voucher.id.desc()).limit(1))
        s.execute(update(Voucher).where(Voucher.id == vid).values(contract=old.deployment.channels))
    failed = payouts_cli(url, "reconcile", rpc_url=stack.chain.rpc_url, deployment_file=deployment_file)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert (f"{alice}: voucher #{vid} was signed for chain {new.chain_id}, contract {old.deployment.channels}, "
            f"but is recorded under a deployment on chain {new.chain_id}, contract {new.deployment.channels}"
            ) in failed.stdout
    with Session(engine) as s, s.begin():
        s.execute(update(Voucher).where(Voucher.id == vid).values(contract=new.deployment.channels))
        assert reconcile(s, new).ok


@pytest.fixture
def two_chains(tmp_path: Path) -> Iterator[tuple[LocalChain, LocalChain]]:
    a = LocalChain(tmp_path / "a", state_interval=0).start()
    b = LocalChain(tmp_path / "b", state_interval=0)
    try:
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_a_reset_chain_at_the_same_addresses_pays_only_what_is_owed(two_chains: tuple[LocalChain, LocalChain],
                                                                     tmp_path: Path) -> None:
    """A reset anvil redeploys at the SAME addresses (same hub key, same nonces): chain id and
    contract cannot tell the two apart, the deployment block's hash does. Chain A stands for the
    chain before the reset, B for after it."""
    chain_a, chain_b = two_chains
    engine, _ = migrated_engine("sqlite", tmp_path)
    url = engine.url.render_as_string(hide_password=False)
    # Two anvils started in the same second are the same chain block for block; a reset one is
    # started later. B's first block is stamped an hour later: same height, another hash.
    latest = int(str(rpc_call(chain_b.rpc_url, "eth_getBlockByNumber", ["latest", False])["timestamp"]), 16)
    rpc_call(chain_b.rpc_url, "evm_setNextBlockTimestamp", [latest + 3_600])
    clients, files = [], []
    for name, chain in (("a", chain_a), ("b", chain_b)):
        s = PayoutsSettings(data_dir=tmp_path / name, chain_rpc_url=chain.rpc_url, database_url=url,
                            channel_min_topup=0)
        deployment = ensure_deployment_for_settings(s)
        clients.append(ChainClient.connect(chain.rpc_url, deployment, s.hub_private_key.get_secret_value()))
        files.append(s.resolved_deployment_file)
    a, b = clients
    assert a.deployment.channels == b.deployment.channels and a.chain_id == b.chain_id
    assert a.deployment.deploy_block == b.deployment.deploy_block
    assert a.deployment_key() != b.deployment_key()
    with pytest.raises(ChainError, match="the chain was reset or is another chain"):
        ChainClient.connect(chain_b.rpc_url, a.deployment, a.hub.key).deployment_key()

    # deposits of exactly what is owed, a channel for any amount: this test counts deposits to the unit
    settings = PayoutsSettings(data_dir=tmp_path, database_url=url, channel_min_topup=0, payout_min_owed=0,
                               channel_headroom_bps=0)
    res_a, res_b = Resources(settings, engine=engine, chain=a), Resources(settings, engine=engine, chain=b)
    dave, erin = new_address(), new_address()
    credit(engine, {dave: 50_000, erin: 20_000})
    pay(res_a)
    credit(engine, {erin: 7_000})  # vouchered on A, never settled there: A is then "reset"
    run_aggregate(res_a)
    assert run_issue_vouchers(res_a)["vouchers"] == 1

    credit(engine, {dave: 3_000})
    _, vouchers, settled = pay(res_b)
    assert vouchers["vouchers"] == 1 and settled["amount"] == 3_000  # erin's 7,000 is not vouchered twice
    assert (paid(b, dave), paid(b, erin), b.token_balance(dave)) == (3_000, 0, 3_000)
    assert amounts(engine, erin) == (27_000, 27_000, 27_000, 20_000)
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        report = reconcile(s, b)
        id_a = deployments.find(s, a.deployment_key()).id
        id_b = deployments.find(s, b.deployment_key()).id
    # A's voucher to erin is accounted for by nothing the configured node can see: a difference
    assert len(report.problems) == 1 and report.problems[0].startswith(f"deployment #{id_a} (chain 31337, ")
    assert ("7000 base units vouchered there to 1 payee(s) are neither settled nor returned to owed"
            in report.problems[0])
    cli = payouts_cli(url, "reconcile", rpc_url=chain_b.rpc_url, deployment_file=files[1])
    assert cli.returncode == 1 and f"`openchat payouts retire {id_a}`" in cli.stdout, cli.stdout + cli.stderr

    # B is live on its node: not retired. A is gone: its unsettled vouchers return to owed, once.
    refused = payouts_cli(url, "retire", str(id_b), rpc_url=chain_b.rpc_url, deployment_file=files[1])
    assert refused.returncode == 1 and "can still be claimed" in refused.stderr
    retired = payouts_cli(url, "retire", str(id_a), "--json", "--note", "anvil reset",
                          rpc_url=chain_b.rpc_url, deployment_file=files[1])
    assert retired.returncode == 0, retired.stderr
    assert '"returned_to_owed": {\n    "' + erin + '": 7000' in retired.stdout
    again = payouts_cli(url, "retire", str(id_a), rpc_url=chain_b.rpc_url, deployment_file=files[1])
    assert again.returncode == 0 and "already retired: nothing returned" in again.stdout
    assert amounts(engine, erin) == (27_000, 27_000, 20_000, 20_000)

    _, vouchers, settled = pay(res_b)
    assert vouchers["vouchers"] == 1 and settled["amount"] == 7_000
    assert (paid(b, dave), paid(b, erin)) == (3_000, 7_000)
    assert amounts(engine, erin) == (27_000,) * 4 and amounts(engine, dave) == (53_000,) * 4
    assert pay(res_b)[1]["vouchers"] == 0 and pay(res_b)[2]["transactions"] == 0  # nothing twice
    assert (paid(b, dave), paid(b, erin)) == (3_000, 7_000)
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        report = reconcile(s, b)
    assert report.ok, report.problems
    status = payouts_cli(url, "status")
    assert status.returncode == 0
    assert f"#{id_a}  chain 31337  PaymentChannels {a.deployment.channels}" in status.stdout
    assert "outstanding 0  returned to owed 7000" in status.stdout
    engine.dispose()


def test_migration_binds_existing_vouchers_and_settlements_and_back(bare_engine: Engine) -> None:
    """A ledger paid before 0011 (one deployment): its vouchers and settlement are placed on a
    deployment row (block hash unknown until a chain that agrees adopts it), each channel carries
    its voucher and what was settled, every rule holds; the downgrade gives the old tables back."""
    engine = bare_engine
    _alembic(engine, "upgrade", "0009")
    frank, gail = new_address(), new_address()
    credit(engine, {frank: 8_000, gail: 3_000})
    with Session(engine) as s, s.begin():
        ledger.aggregate(s)
    contract, payer = new_address(), new_address()
    with engine.begin() as c:  # what issue_vouchers and settle wrote before 0011
        for who, amount in ((frank, 8_000), (gail, 3_000)):
            c.execute(text("INSERT INTO vouchers (contributor, chain_id, contract, payer, channel_id, "
                           "cumulative_amount, signature, created_at) VALUES (:w, 31337, :k, :p, :c, :a, '0x00', "
                           "CURRENT_TIMESTAMP)"), {"w": who, "k": contract, "p": payer, "c": "0x" + (who[2:].lower() * 2)[:64],
                                                   "a": amount})
        c.execute(text("UPDATE contributors SET vouchered = batched WHERE address IN (:a, :b)"), {"a": frank, "b": gail})
        sid = c.execute(text("INSERT INTO settlements (status, total, created_at) VALUES ('confirmed', 8000, "
                             "CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        c.execute(text("INSERT INTO settlement_items (settlement_id, contributor, cumulative_amount, amount) "
                       "VALUES (:s, :w, 8000, 8000)"), {"s": sid, "w": frank})
        c.execute(text("UPDATE contributors SET settled = 8000 WHERE address = :a"), {"a": frank})

    _alembic(engine, "upgrade", "head")
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        (d,) = [d for d in deployments.all_deployments(s) if d.contract == contract]
        assert (d.chain_id, d.deploy_block_hash) == (31337, None)
        chans = {c.contributor: c for c in deployments.channels(s, d.id)}
        assert (chans[frank].vouchered, chans[frank].settled) == (8_000, 8_000)
        assert (chans[gail].vouchered, chans[gail].settled, chans[gail].outstanding) == (3_000, 0, 3_000)
        settlement = s.execute(text("SELECT deployment_id, chain_id, contract FROM settlements WHERE id = :s"),
                               {"s": sid}).one()
        assert tuple(settlement) == (d.id, 31337, contract)
    _alembic(engine, "downgrade", "0009")
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM vouchers WHERE contract = :k"), {"k": contract}).scalar_one() == 2
        assert c.execute(text("SELECT settled FROM contributors WHERE address = :a"), {"a": frank}).scalar_one() == 8_000
    _alembic(engine, "upgrade", "head")
