"""Integration on anvil (the npm binary): the embedded-default chain as `make run` uses it —
start via payouts.localchain, deploy via payouts.deploy, claim + batched push through the
production client path (gas estimated), restart from persisted state, deploy is idempotent."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from payouts import vouchers
from payouts.chain import ChainClient, Deployment
from payouts.deploy import DeploymentError, ensure_deployment, ensure_deployment_for_settings
from payouts.localchain import LocalChain, LocalChainError, find_anvil, rpc_call
from payouts.merkle import ContributionLeaf, ContributionTree
from payouts.settings import ANVIL_DEV_ADDRESS, ANVIL_DEV_PRIVATE_KEY, PayoutsSettings
from tests.contracts.conftest import NEEDS_ANVIL, expect_revert

pytestmark = NEEDS_ANVIL


def settings_for(tmp_path) -> PayoutsSettings:
    return PayoutsSettings(
        data_dir=tmp_path, challenge_period_seconds=600, anvil_state_interval_seconds=1
    )


def start(settings: PayoutsSettings) -> LocalChain:
    return LocalChain(
        settings.data_dir,
        hardfork=settings.anvil_hardfork,
        state_interval=settings.anvil_state_interval_seconds,
    ).start()


def test_full_cycle_and_restart_from_persisted_state(tmp_path) -> None:
    settings = settings_for(tmp_path)
    receivers = [Account.create() for _ in range(3)]

    chain = start(settings)
    try:
        assert chain.rpc_url.startswith("http://127.0.0.1:")
        deployment = ensure_deployment_for_settings(settings, rpc_url=chain.rpc_url)
        assert settings.resolved_deployment_file.exists()
        assert deployment.chain_id == 31337 and deployment.hub == ANVIL_DEV_ADDRESS
        for r in receivers:
            chain.set_balance(r.address, 10**18)
        client = ChainClient.connect(chain.rpc_url, deployment, ANVIL_DEV_PRIVATE_KEY)
        assert client.token_balance(ANVIL_DEV_ADDRESS) == settings.hub_funding_amount
        assert client.challenge_period() == 600
        cids = [client.open_channel(r.address, 1_000_000)[0] for r in receivers]
        # the receiver cashes a voucher ...
        client.claim(client.sign_voucher(cids[0], 250_000), receivers[0])
        # ... and the hub pushes a batch (channel 0 already got 250,000 of its 300,000)
        receipt = client.push_payments([(r.address, 300_000) for r in receivers])
        assert [e["amount"] for e in client.channel_events(receipt)] == [50_000, 300_000, 300_000]
        tree = ContributionTree(
            ContributionLeaf(r.address, bytes([i + 1]) * 32, i) for i, r in enumerate(receivers)
        )
        batch_id, _ = client.anchor_root(tree.root, len(tree))
        file_before = settings.resolved_deployment_file.read_text()
        block_before = client.w3.eth.block_number
    finally:
        chain.stop()
    assert not chain.running
    assert (tmp_path / "chain" / "anvil-state.json").stat().st_size > 0

    chain = start(settings)  # a new process, likely another port, same state file
    try:
        again = ensure_deployment_for_settings(settings, rpc_url=chain.rpc_url)
        assert again == deployment  # reused: nothing redeployed
        assert settings.resolved_deployment_file.read_text() == file_before
        client = ChainClient.connect(chain.rpc_url, again, ANVIL_DEV_PRIVATE_KEY)
        assert client.w3.eth.block_number >= block_before
        assert [client.token_balance(r.address) for r in receivers] == [300_000] * 3
        assert client.get_channel(cids[1]).paid == 300_000
        assert client.verify_contribution(batch_id, tree.proof(tree.leaves[1]), tree.leaves[1])
        # the hub's nonce sequence carries on after the restart
        client.push_payments([(receivers[2].address, 400_000)])
        assert client.token_balance(receivers[2].address) == 400_000
        # the challenge period on the real node: claim during it, nothing after settle
        client.close_channel(cids[1])
        expect_revert("ChallengePeriodActive", client.settle, cids[1])
        client.claim(client.sign_voucher(cids[1], 500_000), receivers[1])
        chain.increase_time(601)
        client.settle(cids[1])
        expect_revert(
            "ChannelIsSettled", client.claim, client.sign_voucher(cids[1], 900_000), receivers[1]
        )
        assert client.get_channel(cids[1]).status == "settled"
    finally:
        chain.stop()


def test_deploy_redeploys_when_the_chain_was_reset(tmp_path) -> None:
    settings = settings_for(tmp_path)
    with start(settings) as chain:
        first = ensure_deployment_for_settings(settings, rpc_url=chain.rpc_url)
    (tmp_path / "chain" / "anvil-state.json").unlink()  # a fresh chain, the old file remains
    with start(settings) as chain:
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        assert w3.eth.get_code(first.channels) == b""
        second = ensure_deployment_for_settings(settings, rpc_url=chain.rpc_url)
        assert w3.eth.get_code(second.channels) != b""
        assert Deployment.load(settings.resolved_deployment_file) == second


def test_deploy_refuses_to_deploy_when_told_not_to(tmp_path) -> None:
    settings = PayoutsSettings(data_dir=tmp_path, deploy_if_missing=False)
    with start(settings) as chain, pytest.raises(DeploymentError):
        ensure_deployment_for_settings(settings, rpc_url=chain.rpc_url)


def test_voucher_for_another_chain_is_refused_at_the_same_contract_address(tmp_path) -> None:
    """The same deployer key at nonce 0 puts PaymentChannels at the same address on py-evm and on
    anvil; the channel id is the same too. Only the chain id tells the vouchers apart — and it
    does: each chain refuses the other's voucher."""
    key = "0x" + "5a" * 32
    receiver = Account.create()
    tester = Web3(EthereumTesterProvider())
    tester.eth.send_transaction(
        {"from": tester.eth.accounts[0], "to": Account.from_key(key).address, "value": 10**21}
    )
    tester.eth.send_transaction(
        {"from": tester.eth.accounts[0], "to": receiver.address, "value": 10**18}
    )
    with start(settings_for(tmp_path)) as chain:
        anvil = Web3(Web3.HTTPProvider(chain.rpc_url))
        chain.set_balance(Account.from_key(key).address, 10**21)
        chain.set_balance(receiver.address, 10**18)
        clients = []
        for i, w3 in enumerate((tester, anvil)):
            d = ensure_deployment(
                w3,
                key,
                tmp_path / f"deployment-{i}.json",
                challenge_period=60,
                funding_amount=10**9,
            )
            clients.append(ChainClient(w3, d, key))
        a, b = clients
        assert a.deployment.channels == b.deployment.channels
        assert a.chain_id != b.chain_id
        cid_a, _ = a.open_channel(receiver.address, 10_000)
        cid_b, _ = b.open_channel(receiver.address, 10_000)
        assert cid_a == cid_b
        voucher_b = b.sign_voucher(cid_b, 5_000)
        expect_revert("InvalidSignature", a.claim, voucher_b, receiver)
        voucher_a = a.sign_voucher(cid_a, 5_000)
        expect_revert("InvalidSignature", b.claim, voucher_a, receiver)
        a.claim(voucher_a, receiver)
        b.claim(voucher_b, receiver)
        assert a.token_balance(receiver.address) == b.token_balance(receiver.address) == 5_000
        assert vouchers.verify_voucher(voucher_a, Account.from_key(key).address)
        assert not vouchers.verify_voucher(
            dataclasses.replace(voucher_a, chain_id=b.chain_id), Account.from_key(key).address
        )


def test_local_chain_lock_and_clean_stop(tmp_path) -> None:
    chain = LocalChain(tmp_path, state_interval=0).start()
    pid = chain.pid
    try:
        with pytest.raises(LocalChainError, match="lock"):
            LocalChain(tmp_path, state_interval=0).start()
        assert int(str(rpc_call(chain.rpc_url, "eth_chainId")), 16) == 31337
    finally:
        chain.stop()
    chain.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # the lock is released: the data dir can be used again
    with LocalChain(tmp_path, state_interval=0) as again:
        assert again.running


def test_anvil_dies_with_its_starter_and_holds_the_lock_till_then(tmp_path) -> None:
    """A starter killed with SIGKILL (no cleanup at all) takes its anvil with it; the state-file
    lock stays taken exactly as long as that anvil lives."""
    code = ("import sys, time; from pathlib import Path; from payouts.localchain import LocalChain; "
            "c = LocalChain(Path(sys.argv[1]), state_interval=0).start(); print(c.pid, flush=True); time.sleep(600)")
    starter = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                               cwd=Path(__file__).resolve().parents[2])
    try:
        assert starter.stdout is not None
        anvil = int(starter.stdout.readline())
        assert (tmp_path / "chain" / "anvil.lock").read_text() == str(anvil)
        with pytest.raises(LocalChainError, match=f"lock held by pid {anvil}"):
            LocalChain(tmp_path, state_interval=0).start()
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(timeout=10)
        deadline = time.monotonic() + 15
        while True:
            try:
                os.kill(anvil, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, f"anvil {anvil} outlived its starter"
            time.sleep(0.05)
    finally:
        starter.kill()
        starter.wait()
    with LocalChain(tmp_path, state_interval=0) as again:  # the lock went with that anvil
        assert again.running


def test_find_anvil_reports_how_to_install(tmp_path) -> None:
    assert find_anvil().name == "anvil"
    with pytest.raises(LocalChainError):
        find_anvil(tmp_path / "no-such-anvil")
