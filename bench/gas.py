"""Gas report for the OpenChat contracts, on a real EVM.

Prints the gas of open, top-up, claim, close, settle and anchor, and of a batched push payment to
1, 10, 50 and 100 channels, as gas per contributor paid, next to what a separate claim per
channel costs. Two cases, because the token's storage dominates:

* first payment: the contributor holds no tokens yet, so the token's balance slot goes from zero
  to non-zero (a 20,000 gas SSTORE inside the ERC-20 transfer, whoever sends it);
* repeat payment: the contributor already holds tokens (the steady state of a contributor who is
  paid again and again).

Gas figures include each transaction's 21,000 base cost (amortised over the batch for pushes).

    python bench/gas.py            # py-evm (eth-tester), Prague rules
    python bench/gas.py --anvil    # the same against a local anvil (npm binary)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from payouts.chain import ChainClient
from payouts.deploy import deploy_all, fund_hub
from payouts.merkle import ContributionLeaf, ContributionTree

HUB_KEY = "0x" + "11" * 32
SIZES = (1, 10, 50, 100)
TARGET = 30_000


def make_chain(use_anvil: bool, tmp: Path):
    if use_anvil:
        from payouts.localchain import LocalChain

        chain = LocalChain(tmp, state_interval=0).start()
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        funder = w3.eth.accounts[0]
        return w3, funder, chain
    w3 = Web3(EthereumTesterProvider())
    return w3, w3.eth.accounts[0], None


def advance_time(w3: Web3, seconds: int) -> None:
    if isinstance(w3.provider, EthereumTesterProvider):
        tester = w3.provider.ethereum_tester
        tester.time_travel(w3.eth.get_block("latest")["timestamp"] + seconds)
    else:
        w3.provider.make_request("evm_increaseTime", [seconds])
        w3.provider.make_request("evm_mine", [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anvil", action="store_true", help="measure on anvil instead of py-evm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        w3, funder, chain = make_chain(args.anvil, Path(tmp))
        try:
            return run(w3, funder)
        finally:
            if chain is not None:
                chain.stop()


def run(w3: Web3, funder: str) -> int:
    hub = Account.from_key(HUB_KEY)
    w3.eth.send_transaction({"from": funder, "to": hub.address, "value": 10**21})
    deployment = deploy_all(w3, hub, challenge_period=3600)
    client = ChainClient(w3, deployment, hub, fixed_gas=20_000_000)  # gas used is unaffected
    fund_hub(client, 10**15)
    total = sum(SIZES) + 2
    receivers = [Account.create() for _ in range(total)]
    for r in receivers:
        w3.eth.send_transaction({"from": funder, "to": r.address, "value": 10**17})

    rows: list[tuple[str, int]] = []
    deposit = 10**9

    # Single-channel operations on channel 0.
    cid, rec = client.open_channel(receivers[0].address, deposit)
    rows.append(("open (new channel, deposit)", rec["gasUsed"]))
    rows.append(("top up", client.top_up(cid, deposit)["gasUsed"]))
    claim_first = client.claim(client.sign_voucher(cid, 1_000), receivers[0])["gasUsed"]
    claim_repeat = client.claim(client.sign_voucher(cid, 2_000), receivers[0])["gasUsed"]
    rows.append(("claim, first payment to the contributor", claim_first))
    rows.append(("claim, repeat payment", claim_repeat))
    rows.append(("close", client.close_channel(cid)["gasUsed"]))
    advance_time(w3, 3601)
    rows.append(("settle (refund to hub)", client.settle(cid)["gasUsed"]))
    leaves = [
        ContributionLeaf(r.address, bytes([i % 256]) * 32, i) for i, r in enumerate(receivers[:64])
    ]
    tree = ContributionTree(leaves)
    _, rec = client.anchor_root(tree.root, len(tree))
    rows.append(("anchor Merkle root (64 contributions)", rec["gasUsed"]))

    print(f"gas on {'anvil' if not isinstance(w3.provider, EthereumTesterProvider) else 'py-evm'}")
    print()
    width = max(len(name) for name, _ in rows)
    for name, gas in rows:
        print(f"  {name:<{width}}  {gas:>9,}")
    print()

    print("batched push payment (pushPayments), gas per contributor paid; tx base cost included")
    header = (
        f"  {'channels':>8}  {'first: tx gas':>13}  {'per contrib.':>12}  "
        f"{'repeat: tx gas':>14}  {'per contrib.':>12}  {'vs claim/ch.':>12}"
    )
    print(header)
    offset = 1
    worst_repeat = 0
    for n in SIZES:
        group = receivers[offset : offset + n]
        offset += n
        for r in group:
            client.open_channel(r.address, deposit)
        first = client.push_payments([(r.address, 1_000) for r in group])["gasUsed"]
        repeat = client.push_payments([(r.address, 2_000) for r in group])["gasUsed"]
        per_first, per_repeat = first // n, repeat // n
        if n == max(SIZES):
            worst_repeat = per_repeat
            worst_first = per_first
        print(
            f"  {n:>8}  {first:>13,}  {per_first:>12,}  {repeat:>14,}  {per_repeat:>12,}  "
            f"{claim_repeat / per_repeat:>11.1f}x"
        )
    print()
    print(
        f"  one claim per channel instead: {claim_first:,} (first payment), "
        f"{claim_repeat:,} (repeat) per contributor"
    )

    def verdict(gas: int) -> str:
        return "met" if gas <= TARGET else "missed"

    print(f"  target <= {TARGET:,} gas per contributor at {max(SIZES)} channels:")
    print(f"    repeat payment:  {worst_repeat:>7,}  {verdict(worst_repeat)}")
    print(
        f"    first payment:   {worst_first:>7,}  {verdict(worst_first)} — 22,100 of it is the "
        "token's cold zero-to-non-zero balance write, which any ERC-20 transfer to an empty "
        "wallet pays"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
