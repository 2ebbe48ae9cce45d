"""Property-based sequences over several channels on a real EVM (py-evm).

A hypothesis RuleBasedStateMachine drives open / top-up / voucher signing / claim / batched push /
close / settle / time travel over four channels in random orders, predicts every outcome (success
or the exact custom error) from a plain Python model, and after every step checks the money
invariants against the chain:

* Σ paid out of a channel ≤ Σ deposited into it, always;
* the contract's token balance = Σ over channels of (deposits − paid − refunds), i.e. what is
  still deposited in open or closing channels;
* a channel's paid (claimed + pushed) amount never decreases;
* each receiver holds exactly what its channel paid it; the hub holds its funding minus deposits
  plus refunds.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from payouts.chain import ChannelState, ContractRevert
from tests.contracts.conftest import CHALLENGE_PERIOD, NEEDS_ANVIL, Evm

N_CHANNELS = 4
EXAMPLES = int(os.environ.get("OPENCHAT_STATEFUL_EXAMPLES", "200"))
STEPS = int(os.environ.get("OPENCHAT_STATEFUL_STEPS", "30"))
PY_EVM_EXAMPLES = int(os.environ.get("OPENCHAT_STATEFUL_PY_EVM_EXAMPLES", "5"))

amounts = st.integers(min_value=0, max_value=5_000)
channel = st.integers(min_value=0, max_value=N_CHANNELS - 1)
# (prefer, index): with prefer (~90%) a rule picks among the channels in the state it needs,
# otherwise any channel — so sequences do real work and still hit every error path.
target = st.tuples(st.sampled_from([True] * 9 + [False]), st.integers(min_value=0, max_value=10**6))


@dataclass
class ModelChannel:
    exists: bool = False
    deposited: int = 0  # contract view: total deposited minus refunds
    paid: int = 0
    closes_at: int = 0
    settled: bool = False
    owed: int = 0  # latest voucher the hub signed (cumulative)
    total_deposits: int = 0
    total_refunds: int = 0

    @property
    def status(self) -> str:
        if not self.exists:
            return "none"
        if self.settled:
            return "settled"
        return "closing" if self.closes_at else "open"


def build_machine(evm: Evm, outcomes: Counter) -> type[RuleBasedStateMachine]:
    client = evm.client
    receivers = evm.receivers[:N_CHANNELS]
    cids = [client.channel_id(r.address) for r in receivers]

    balance_fns = [client.token.functions.balanceOf(r.address) for r in receivers]
    balance_fns += [
        client.token.functions.balanceOf(evm.deployment.channels),
        client.token.functions.balanceOf(evm.hub.address),
    ]
    read_fns = [client.channels.functions.getChannel(cid) for cid in cids] + balance_fns

    class ChannelsMachine(RuleBasedStateMachine):
        @initialize(
            deposits=st.lists(st.integers(1, 5_000), min_size=N_CHANNELS, max_size=N_CHANNELS),
            opened=st.sets(channel, max_size=N_CHANNELS),
        )
        def start(self, deposits: list[int], opened: set[int]) -> None:
            self.snapshot = evm.snapshot()
            self.model = [ModelChannel() for _ in range(N_CHANNELS)]
            self.vouchers: list[list] = [[] for _ in range(N_CHANNELS)]
            self.seen_paid = [0] * N_CHANNELS
            *self.recv_start, self.contract_start, self.hub_start = [
                v[0] for v in evm.read_many(balance_fns)
            ]
            # most sequences start with some channels open, so later steps do more than fail
            for i in sorted(opened):
                self.open(i, deposits[i])

        def teardown(self) -> None:
            if hasattr(self, "snapshot"):
                evm.revert(self.snapshot)

        def expect(self, error: str | None, fn, *args, **kwargs):
            outcomes[(fn.__name__, error or "ok")] += 1
            if error is None:
                return fn(*args, **kwargs)
            with pytest.raises(ContractRevert) as info:
                fn(*args, **kwargs)
            assert info.value.name == error, f"expected {error}, got {info.value}"
            return None

        # ---------------------------------------------------------- payer

        def _choose(self, t: tuple[bool, int], wanted) -> int:
            prefer, index = t
            candidates = [i for i, m in enumerate(self.model) if wanted(i, m)]
            if prefer and candidates:
                return candidates[index % len(candidates)]
            return index % N_CHANNELS

        @rule(t=target, amount=amounts)
        def open_rule(self, t: tuple[bool, int], amount: int) -> None:
            self.open(self._choose(t, lambda _i, m: m.status in ("none", "settled")), amount)

        def open(self, i: int, amount: int) -> None:
            m = self.model[i]
            error = None
            if amount == 0:
                error = "ZeroAmount"
            elif m.exists and not m.settled:
                error = "ChannelExists"
            self.expect(error, client.open_channel, receivers[i].address, amount)
            if error is None:
                m.exists, m.settled, m.closes_at = True, False, 0
                m.deposited += amount
                m.total_deposits += amount

        @rule(t=target, amount=amounts)
        def top_up(self, t: tuple[bool, int], amount: int) -> None:
            i = self._choose(t, lambda _i, m: m.status == "open")
            m = self.model[i]
            error = None
            if amount == 0:
                error = "ZeroAmount"
            elif not m.exists:
                error = "UnknownChannel"
            elif m.status != "open":
                error = "ChannelNotOpen"
            self.expect(error, client.top_up, cids[i], amount)
            if error is None:
                m.deposited += amount
                m.total_deposits += amount

        @rule(t=target, increment=st.integers(min_value=0, max_value=3_000))
        def sign_voucher(self, t: tuple[bool, int], increment: int) -> None:
            """The ledger raises what the hub owes this contributor (may exceed the deposit)."""
            i = self._choose(t, lambda _i, m: m.exists)
            m = self.model[i]
            m.owed += increment
            self.vouchers[i].append(client.sign_voucher(cids[i], m.owed))

        @rule(
            entries=st.lists(
                st.tuples(channel, st.sampled_from(["owed", "capped", "stale", "over"])),
                min_size=0,
                max_size=6,
            )
        )
        def push(self, entries: list[tuple[int, str]]) -> None:
            payments = []
            running = [m.paid for m in self.model]
            error = None
            for i, kind in entries:
                m = self.model[i]
                cumulative = {
                    "owed": m.owed,
                    "capped": min(m.owed, m.deposited),
                    "stale": max(0, running[i] - 1),
                    "over": m.deposited + 1,
                }[kind]
                payments.append((receivers[i].address, cumulative))
                if error is None and cumulative > running[i]:
                    if cumulative > m.deposited:
                        error = "InsufficientDeposit"
                    else:
                        running[i] = cumulative
            if not payments:
                error = "EmptyBatch"
            self.expect(error, client.push_payments, payments)
            if error is None:
                for i, m in enumerate(self.model):
                    m.paid = running[i]

        @rule(t=target)
        def close(self, t: tuple[bool, int]) -> None:
            i = self._choose(t, lambda _i, m: m.status == "open")
            m = self.model[i]
            error = None
            if not m.exists:
                error = "UnknownChannel"
            elif m.status != "open":
                error = "ChannelNotOpen"
            receipt = self.expect(error, client.close_channel, cids[i])
            if error is None:
                block = evm.w3.eth.get_block(receipt["blockNumber"])
                m.closes_at = block["timestamp"] + CHALLENGE_PERIOD

        @rule(t=target)
        def settle(self, t: tuple[bool, int]) -> None:
            i = self._choose(t, lambda _i, m: m.status == "closing")
            m = self.model[i]
            next_time = evm.now() + 1  # the transaction's block is at least one second later
            error = None
            if not m.exists:
                error = "UnknownChannel"
            elif m.status != "closing":
                error = "ChannelNotClosing"
            elif next_time < m.closes_at - 2:
                error = "ChallengePeriodActive"
            elif next_time < m.closes_at:
                # within a wall-clock tick of the end (py-evm follows the wall clock): either
                # outcome is right, as long as it agrees with the block it landed in
                try:
                    client.settle(cids[i], account=evm.outsider)
                except ContractRevert as exc:
                    assert exc.name == "ChallengePeriodActive"
                    return
                self._settled(m)
                return
            self.expect(error, client.settle, cids[i], account=evm.outsider)
            if error is None:
                self._settled(m)

        def _settled(self, m: ModelChannel) -> None:
            assert evm.now() >= m.closes_at
            refund = m.deposited - m.paid
            m.total_refunds += refund
            m.deposited = m.paid
            m.settled = True

        @rule(seconds=st.integers(min_value=1, max_value=2 * CHALLENGE_PERIOD))
        def time_travel(self, seconds: int) -> None:
            evm.advance(seconds)

        # ------------------------------------------------------- receiver

        @rule(
            t=target,
            which=st.integers(min_value=0, max_value=10**6),
            latest=st.sampled_from([True, True, True, False]),
            foreign=st.sampled_from([False] * 9 + [True]),
        )
        def claim(self, t: tuple[bool, int], which: int, latest: bool, foreign: bool) -> None:
            i = self._choose(t, lambda i, m: m.exists and bool(self.vouchers[i]))
            m = self.model[i]
            if latest:  # mostly the newest voucher; sometimes an older one
                which = -1
            if foreign:  # ~10%: another channel's voucher, replayed on channel i
                j = (i + 1) % N_CHANNELS
                if not self.vouchers[j]:
                    return
                v = self.vouchers[j][which if which == -1 else which % len(self.vouchers[j])]
                v = type(v)(v.chain_id, v.contract, cids[i], v.cumulative_amount, v.signature)
            else:
                if not self.vouchers[i]:
                    return
                v = self.vouchers[i][which if which == -1 else which % len(self.vouchers[i])]
            pay_to = min(v.cumulative_amount, m.deposited)
            error = None
            if not m.exists:
                error = "UnknownChannel"
            elif m.settled:
                error = "ChannelIsSettled"
            elif foreign:
                error = "InvalidSignature"
            elif pay_to <= m.paid:
                error = "NothingToClaim"
            self.expect(error, client.claim, v, receivers[i])
            if error is None:
                m.paid = pay_to

        # ------------------------------------------------------ invariants

        @invariant()
        def chain_matches_model_and_money_is_conserved(self) -> None:
            if not hasattr(self, "model"):
                return
            values = evm.read_many(read_fns)
            states = [ChannelState(cids[i], *_reorder(values[i][0])) for i in range(N_CHANNELS)]
            receiver_balances = [v[0] for v in values[N_CHANNELS : 2 * N_CHANNELS]]
            contract_balance, hub_balance = values[-2][0], values[-1][0]
            total_held = 0
            for i, m in enumerate(self.model):
                state = states[i]
                assert state.status == m.status
                assert (state.deposited, state.paid, state.closes_at) == (
                    m.deposited,
                    m.paid,
                    m.closes_at,
                )
                # Σ paid out of a channel never exceeds what was deposited into it
                assert state.paid <= m.total_deposits
                assert state.paid + m.total_refunds <= m.total_deposits
                assert state.paid <= state.deposited
                # claimed/paid never decreases
                assert state.paid >= self.seen_paid[i]
                self.seen_paid[i] = state.paid
                assert receiver_balances[i] == self.recv_start[i] + state.paid
                total_held += m.total_deposits - state.paid - m.total_refunds
            # contract balance = Σ still-deposited (open/closing) − Σ paid
            assert contract_balance == self.contract_start + total_held
            deposits = sum(m.total_deposits for m in self.model)
            refunds = sum(m.total_refunds for m in self.model)
            assert hub_balance == self.hub_start - deposits + refunds

    return ChannelsMachine


def _reorder(raw: tuple) -> tuple:
    """getChannel's (deposited, paid, payer, closesAt, settled, receiver) in ChannelState order."""
    deposited, paid, payer, closes_at, settled, receiver = raw
    return (payer, receiver, deposited, paid, closes_at, settled)


@pytest.mark.slow
# 200 sequences take about 2 minutes on a quiet 2-core machine and 5 on a busy one; the
# suite-wide 300 s limit is for hung tests, not for this one.
@pytest.mark.timeout(1200)
@NEEDS_ANVIL
def test_channel_invariants_hold_over_random_sequences(anvil_evm: Evm) -> None:
    """The full run (EXAMPLES sequences of up to STEPS steps) on anvil, the fast real EVM."""
    run(anvil_evm, EXAMPLES)


def test_channel_invariants_hold_on_py_evm(evm_session: Evm) -> None:
    """A shorter run of the same machine on the other EVM implementation (py-evm)."""
    run(evm_session, PY_EVM_EXAMPLES)


def run(evm: Evm, examples: int) -> None:
    outcomes: Counter = Counter()
    machine = build_machine(evm, outcomes)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=STEPS,
            deadline=None,
            # A fixed sequence of examples: the coverage guard below must not depend on luck
            # (a random run once had no successful settle in 200 sequences).
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            print_blob=True,
        ),
    )
    print(f"\n{evm.backend}: outcomes of {examples} sequences:")
    for (fn, outcome), n in sorted(outcomes.items()):
        print(f"  {fn:<16} {outcome:<22} {n:>6}")
    if examples < 50:
        return
    # the sequences really exercise the money paths, not only the error paths
    for fn in ("open_channel", "top_up", "push_payments", "claim", "close_channel", "settle"):
        assert outcomes[(fn, "ok")] > 0, f"no successful {fn} in the run"
