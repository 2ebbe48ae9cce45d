"""PayoutsSettings: env prefix OPENCHAT_, extra env ignored, dev defaults stated as such."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from payouts.settings import ANVIL_DEV_ADDRESS, ANVIL_DEV_PRIVATE_KEY, PayoutsSettings


def test_defaults_are_the_embedded_dev_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENCHAT_DATA_DIR", "OPENCHAT_CHAIN_RPC_URL", "OPENCHAT_HUB_PRIVATE_KEY"):
        monkeypatch.delenv(var, raising=False)
    s = PayoutsSettings()
    assert s.data_dir == Path("./data") and s.chain_rpc_url is None
    assert s.uses_dev_key and s.hub_private_key.get_secret_value() == ANVIL_DEV_PRIVATE_KEY
    assert s.resolved_deployment_file == Path("./data/chain/deployment.json")
    assert ANVIL_DEV_PRIVATE_KEY not in repr(s)  # secret not printed
    from eth_account import Account

    assert Account.from_key(ANVIL_DEV_PRIVATE_KEY).address == ANVIL_DEV_ADDRESS


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENCHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENCHAT_CHAIN_RPC_URL", "http://127.0.0.1:8545")
    monkeypatch.setenv("OPENCHAT_HUB_PRIVATE_KEY", "0x" + "ab" * 32)
    monkeypatch.setenv("OPENCHAT_CHALLENGE_PERIOD_SECONDS", "120")
    monkeypatch.setenv("OPENCHAT_QDRANT_URL", "http://elsewhere")  # another package's: ignored
    s = PayoutsSettings()
    assert s.data_dir == tmp_path and s.chain_rpc_url == "http://127.0.0.1:8545"
    assert not s.uses_dev_key and s.challenge_period_seconds == 120
    assert s.resolved_deployment_file == tmp_path / "chain" / "deployment.json"


@pytest.mark.parametrize(
    "field,value",
    [("hub_private_key", "0x1234"), ("challenge_period_seconds", 0), ("hub_funding_amount", -1)],
)
def test_invalid_values_are_refused(field: str, value) -> None:
    with pytest.raises(ValidationError):
        PayoutsSettings(**{field: value})
