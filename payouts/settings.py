"""Settings of the payouts package (env prefix ``OPENCHAT_``), read once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Anvil's first deterministic dev account (mnemonic "test test ... junk"). PUBLIC KNOWLEDGE:
# dev chains only. Anyone can spend from it on any real network; set OPENCHAT_HUB_PRIVATE_KEY.
ANVIL_DEV_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_CHAIN_ID = 31337


class PayoutsSettings(BaseSettings):
    """Chain and payout settings.

    With ``chain_rpc_url`` unset the embedded default applies: a local anvil node is started
    (``payouts.localchain``) with its state persisted under ``data_dir/chain``, and the
    contracts are deployed on first start (``payouts.deploy``); the addresses go to
    ``deployment_file``. With ``chain_rpc_url`` set, the node at that URL is used, and the
    deployment file must name the already-deployed contracts (or ``deploy_if_missing`` lets
    ``payouts.deploy`` deploy them, e.g. on a dev chain).
    """

    model_config = SettingsConfigDict(env_prefix="OPENCHAT_", extra="ignore")

    data_dir: Path = Path("./data")
    chain_rpc_url: str | None = None
    chain_id: int | None = Field(
        default=None, description="Expected chain id; checked against the node when set."
    )
    hub_private_key: SecretStr = Field(
        default=SecretStr(ANVIL_DEV_PRIVATE_KEY),
        description="Key of the hub (channel payer, registry owner). The default is anvil's "
        "public dev key: DEV ONLY.",
    )
    deployment_file: Path | None = Field(
        default=None, description="Deployment JSON; default data_dir/chain/deployment.json."
    )
    deploy_if_missing: bool = True
    challenge_period_seconds: int = Field(default=86_400, gt=0)
    hub_funding_amount: int = Field(
        default=1_000_000_000_000,  # 1,000,000 ocUSD at 6 decimals
        ge=0,
        description="Dev chains: mock-stablecoin base units the hub is topped up to on deploy.",
    )
    anvil_port: int | None = Field(default=None, description="None: a free loopback port.")
    anvil_bin: Path | None = Field(
        default=None, description="anvil binary; default contracts/node_modules/... from npm."
    )
    anvil_hardfork: str = "prague"
    anvil_state_interval_seconds: int = Field(default=5, ge=0)
    tx_timeout_seconds: float = Field(default=120.0, gt=0)
    push_batch_size: int = Field(default=100, gt=0, le=500)

    @field_validator("hub_private_key")
    @classmethod
    def _key_is_hex32(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().removeprefix("0x")
        if len(raw) != 64 or any(c not in "0123456789abcdefABCDEF" for c in raw):
            raise ValueError("hub_private_key must be 32 bytes of hex")
        return value

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def resolved_deployment_file(self) -> Path:
        return self.deployment_file or (self.chain_dir / "deployment.json")

    @property
    def uses_dev_key(self) -> bool:
        return self.hub_private_key.get_secret_value().lower() == ANVIL_DEV_PRIVATE_KEY
