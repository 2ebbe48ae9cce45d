"""Which payout addresses can never be paid (pure), and the quarantine's backoff (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account

from payouts.payees import PRECOMPILES, ZERO_ADDRESS, unpayable_reason
from payouts.quarantine import next_retry

HUB = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEPLOYMENT = {"hub": HUB, "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
              "channels": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
              "registry": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"}


@pytest.mark.parametrize(("address", "code", "words"), [
    (ZERO_ADDRESS, "zero_address", "zero address"),
    (HUB, "hub_address", "hub's own address"),
    (HUB.lower(), "hub_address", "hub's own address"),
    (DEPLOYMENT["token"], "contract_address", "payment token"),
    (DEPLOYMENT["channels"].upper().replace("0X", "0x"), "contract_address", "PaymentChannels"),
    (DEPLOYMENT["registry"], "contract_address", "ContributionRegistry"),
    ("0x0000000000000000000000000000000000000001", "precompile_address", "ecRecover"),
    ("0x000000000000000000000000000000000000000a", "precompile_address", "point evaluation"),
    ("0x0000000000000000000000000000000000000011", "precompile_address", "BLS12_MAP_FP2_TO_G2"),
    ("0x0000000000000000000000000000000000000100", "precompile_address", "P256VERIFY"),
])
def test_each_unpayable_class_is_named(address: str, code: str, words: str) -> None:
    found = unpayable_reason(address, DEPLOYMENT)
    assert found is not None and found[0] == code and words in found[1]


def test_ordinary_addresses_and_near_misses_are_payable() -> None:
    assert len(PRECOMPILES) == 18  # 0x01..0x11 and 0x100
    for address in (Account.create().address, "0x0000000000000000000000000000000000000012",
                    "0x00000000000000000000000000000000000000ff", "0x0000000000000000000000000000000000000101"):
        assert unpayable_reason(address, DEPLOYMENT) is None
    # the deployment is passed in: another deployment's token is an ordinary address here
    assert unpayable_reason(DEPLOYMENT["token"], {"hub": HUB}) is None
    # a role without a name of its own still refuses its address
    other = Account.create().address
    assert unpayable_reason(other, {"vault": other}) == (
        "contract_address", "the deployment's vault contract (tokens sent there are stuck for good)")
    with pytest.raises(ValueError, match="not an Ethereum address"):
        unpayable_reason("0x123", DEPLOYMENT)


def test_backoff_doubles_then_stops() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    assert [next_retry(n, now, 60, 3) for n in (1, 2, 3)] == [now + timedelta(seconds=s) for s in (60, 120, 240)]
    assert next_retry(4, now, 60, 3) is None  # retried max_retries times: the operator's call now
    assert next_retry(1, now, 0, 3) is None  # automatic retries off
