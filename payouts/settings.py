"""Settings of the payouts package (env prefix ``OPENCHAT_``), read once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from payouts.deposits import DepositPolicy
from payouts.small_payees import SmallPayeeCap

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

    # ---- ledger, pricing, workers
    database_url: str | None = Field(
        default=None, description="Ledger DB (OPENCHAT_DATABASE_URL); unset: SQLite under data_dir."
    )
    price_per_answer: int = Field(
        default=10_000, ge=0, description="Base units per answer (10,000 = 0.01 ocUSD at 6 decimals)."
    )
    platform_fee_bps: int = Field(
        default=1_000, ge=0, le=10_000, description="Platform fee in basis points of the price."
    )
    # A remote LLM's answer costs the operator by the token: its price is price_per_answer plus
    # these (the extractive model's stays flat). The defaults are $1 / $4 per million tokens.
    price_per_1k_prompt_tokens: int = Field(
        default=1_000, ge=0, description="Base units per 1,000 prompt tokens of a remote LLM's answer (rounded up)."
    )
    price_per_1k_completion_tokens: int = Field(
        default=4_000, ge=0, description="Base units per 1,000 completion tokens of a remote LLM's answer (rounded up)."
    )
    redis_url: str | None = Field(
        default=None, description="Celery broker (OPENCHAT_REDIS_URL); unset: embedded broker."
    )
    redis_key_prefix: str = Field(
        default="openchat:", description="Prefix of every broker key in Redis (kombu global_keyprefix)."
    )
    broker_visibility_timeout: float = Field(
        default=3_600.0, gt=0,
        description="Seconds before an unacknowledged task (e.g. of a killed worker) is redelivered.",
    )
    broker_restore_interval: int = Field(
        default=10, gt=0,
        description="Redis: seconds between sweeps that put such timed-out tasks back on the queue.",
    )
    payout_interval: float = Field(
        default=60.0, gt=0, description="Seconds between beat runs of aggregate → vouchers → settle."
    )
    settle_threshold: int = Field(
        default=1_000_000, ge=0, description="Push on chain once a contributor's unsettled amount reaches this."
    )
    settle_max_age_seconds: float = Field(
        default=86_400.0, gt=0, description="...or once their oldest unsettled voucher is this old."
    )
    # ---- channel deposits (docs/payouts.md, "Channel deposits and idle channels")
    payout_min_owed: int = Field(
        default=100_000, ge=0,
        description="A payee without an open channel gets one only once it is owed at least this "
        "(100,000 = 0.1 ocUSD); below it the amount stays owed in the ledger ('below minimum payout').",
    )
    channel_min_topup: int = Field(
        default=100_000, ge=0,
        description="Smallest deposit/top-up of a channel (fewer transactions for micro-payments).",
    )
    channel_headroom_bps: int = Field(
        default=10_000, ge=0, le=1_000_000,
        description="A deposit or top-up covers the channel's new voucher plus this share of it (basis "
        "points; 10,000: twice what is owed), so a growing payee needs a top-up only when it doubles.",
    )
    channel_max_headroom: int = Field(
        default=100_000_000, ge=0,
        description="Cap of that headroom (100 ocUSD): the hub's funds locked beyond what is owed, per channel.",
    )
    small_payee_earned_below: int = Field(
        default=10_000_000, ge=0,
        description="A payee whose lifetime earnings are below this (10,000,000 = 10 ocUSD) is 'small': the "
        "deposits of all small payees' channels share the cap below. 0: no cap.",
    )
    small_payees_max_committed: int = Field(
        default=1_000_000_000, ge=0,
        description="Cap of the hub funds committed to small payees' channels (deposited, not paid out; "
        "1,000,000,000 = 1,000 ocUSD). A small payee whose deposit would pass it waits, queued, until funds free up.",
    )
    small_payees_max_committed_bps: int = Field(
        default=1_000, ge=0, le=10_000,
        description="...and at most this share of the hub's funds (its token balance plus its channels' "
        "deposits not paid out), in basis points (1,000 = 10 %); the smaller of the two applies.",
    )
    channel_idle_seconds: float = Field(
        default=30 * 86_400.0, gt=0,
        description="A channel with no new voucher for this long (all of it paid) is closed and its "
        "unused deposit reclaimed after the challenge period.",
    )
    reclaim_interval: float = Field(
        default=3_600.0, gt=0, description="Seconds between beat runs of reclaim_channels."
    )
    aggregate_max_credits: int = Field(default=200_000, gt=0, description="Credits per batch (one transaction).")
    payee_retry_seconds: float = Field(
        default=3_600.0, ge=0,
        description="A quarantined payee (its payment failed) is retried automatically after this "
        "many seconds, doubling after each further failure; 0: only `openchat payouts release`.",
    )
    payee_max_retries: int = Field(
        default=5, ge=0,
        description="Automatic retries of a quarantined payee before only the operator can release it.",
    )
    deposit_confirmations: int = Field(
        default=3, ge=1, le=10_000,
        description="OPENCHAT_DEPOSIT_CONFIRMATIONS: blocks a TopUps deposit needs (its own included) "
        "before it is credited; a reorg shallower than this never touches a credited deposit.",
    )
    deposit_interval: float = Field(
        default=5.0, gt=0, description="Seconds between beat runs of follow_deposits (on-chain top-ups)."
    )
    deposit_scan_blocks: int = Field(
        default=2_000, gt=0, le=100_000, description="Blocks per eth_getLogs call of the deposit follower."
    )
    anvil_block_time: float | None = Field(
        default=2.0, gt=0,
        description="Embedded anvil: also mine an empty block every this many seconds (transactions are "
        "still mined at once), so deposits gather confirmations on an idle dev chain; None: only on transactions.",
    )
    anchor_interval: float = Field(
        default=300.0, gt=0, description="Seconds between beat runs of anchor_contributions (Merkle roots on chain)."
    )
    anchor_max_leaves: int = Field(
        default=4_096, gt=0, le=1_000_000,
        description="Contribution leaves per anchored root (a proof request rebuilds its root's tree).",
    )
    task_max_retries: int = Field(default=20, ge=0)
    task_retry_backoff_max: int = Field(default=60, gt=0, description="Seconds: cap of the retry backoff.")
    fault_pause_seconds: float = Field(
        default=0.0, ge=0,
        description="TEST HOOK (fault tests): the tasks named in fault_pause_tasks sleep this long "
        "just before committing their result, printing 'PAUSE <task>' to the worker's stderr, so a "
        "test can SIGKILL the worker mid-task. Keep 0.",
    )
    fault_pause_tasks: str = Field(
        default="", description="TEST HOOK: comma-separated: aggregate, issue_vouchers, settle, reclaim, deposits_seen, deposits_credit."
    )

    @field_validator("hub_private_key")
    @classmethod
    def _key_is_hex32(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().removeprefix("0x")
        if len(raw) != 64 or any(c not in "0123456789abcdefABCDEF" for c in raw):
            raise ValueError("hub_private_key must be 32 bytes of hex")
        return value

    def deposit_policy(self) -> DepositPolicy:
        """The channel deposit settings as the pure policy the voucher run applies."""
        return DepositPolicy(min_owed=self.payout_min_owed, min_topup=self.channel_min_topup,
                             headroom_bps=self.channel_headroom_bps, max_headroom=self.channel_max_headroom)

    def small_payee_cap(self) -> SmallPayeeCap:
        """The cap on small payees' committed funds as the pure policy the voucher run applies."""
        return SmallPayeeCap(earned_below=self.small_payee_earned_below, budget=self.small_payees_max_committed,
                             share_bps=self.small_payees_max_committed_bps)

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def resolved_deployment_file(self) -> Path:
        return self.deployment_file or (self.chain_dir / "deployment.json")

    @property
    def effective_database_url(self) -> str:
        """The ledger DB: OPENCHAT_DATABASE_URL, else the app's SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'openchat.sqlite3').resolve()}"

    @property
    def broker_url(self) -> str:
        """Redis when configured. Otherwise kombu's SQLAlchemy transport on a SQLite file: it is
        a transport kombu itself ships and supports, needs no extra server or package (SQLAlchemy
        is already a dependency), persists queued tasks across restarts (unlike the in-memory
        transport, which also cannot be shared between the worker, beat and the API processes),
        and works from every process on the machine. It polls (about 70 ms a task, measured):
        fine for payout batches every few seconds; use Redis to scale out."""
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite3').resolve()}"

    @property
    def uses_dev_key(self) -> bool:
        return self.hub_private_key.get_secret_value().lower() == ANVIL_DEV_PRIVATE_KEY
