"""Settings composition: each package reads its own settings once, at start-up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from payouts.settings import PayoutsSettings
from retrieval.settings import RetrievalSettings

ENV_PREFIX = "OPENCHAT_"
DEFAULT_DEV_API_KEY = "oc-dev-key"
# The names a browser on this machine uses for it: the Host allow-list's default, and the only
# Host headers the dev key is handed to (assistant/web.py).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether a bind address or client address is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AppSettings(BaseSettings):
    """The API process: where it listens, its database and its keys."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("./data")
    database_url: str | None = Field(default=None, description="Unset: SQLite under the data dir.")
    dev_api_key: str | None = Field(
        default=DEFAULT_DEV_API_KEY,
        description="A development API key (account `dev`); set it empty to disable. Honoured only while "
        "OPENCHAT_HOST is a loopback address, and handed by the page only to a browser on this machine.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOCAL_HOSTS),
        description="Host headers the app answers besides the local names, which it always answers "
        "(comma-separated; '*.example.com' for subdomains, '*' for any, which reopens DNS rebinding); any "
        "other Host gets 400. The port is not part of the match.",
    )
    session_accounts: bool = Field(
        default=True,
        description="A browser that is not given the dev key gets an account of its own (POST /web-session), "
        "its key kept in the browser; false: visitors paste an operator-issued key.",
    )
    session_grant: int = Field(
        default=50_000, ge=0,
        description="Base units deposited (through the ledger) into each new session account once "
        "(50,000 = 0.05 ocUSD, five answers at the default price); 0: none.",
    )
    session_accounts_per_ip_per_day: int = Field(
        default=3, ge=1, description="New session accounts one client IP (an IPv6 /64) may get per 24 hours.",
    )
    session_accounts_per_day: int = Field(
        default=1_000, ge=1,
        description="New session accounts per 24 hours from all IPs together: bounds the free grant "
        "(at most this times OPENCHAT_SESSION_GRANT a day).",
    )
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    shutdown_grace_seconds: int = Field(
        default=20, ge=0, description="On SIGTERM/SIGINT: seconds requests and answer streams in flight may take to finish.",
    )
    dev_balance: int = Field(
        default=100_000_000, ge=0,
        description="Base units (100,000,000 = 100 ocUSD) deposited once into the dev key's account at start-up; 0: none.",
    )

    # ---- chat: the LLM gateway (litellm) and the answering pipeline ----
    llm_model: str | None = Field(
        default=None, description="A litellm model string (e.g. openai/gpt-4o-mini, ollama/llama3); unset: extractive only.",
    )
    llm_models: list[dict[str, Any]] = Field(
        default_factory=list,
        description="A litellm Router model_list (JSON): [{model_name, litellm_params: {model, api_base, ...}}].",
    )
    llm_api_base: str | None = Field(default=None, description="api_base for OPENCHAT_LLM_MODEL.")
    llm_api_key: str | None = Field(default=None, description="api_key for OPENCHAT_LLM_MODEL (else litellm's usual env keys).")
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds per LLM call before a 504.")
    llm_retries: int = Field(default=2, ge=0, le=10)
    llm_context_tokens: int = Field(default=8192, ge=512, description="Context window when litellm does not know the model's.")
    llm_max_tokens: int = Field(default=512, ge=16, description="Completion tokens when the request names none.")
    chat_max_tokens: int = Field(
        default=4096, ge=16,
        description="The most max_tokens (or max_completion_tokens) a chat request may ask for; more is a 400. "
        "A remote model's answer holds the price of its prompt plus max_tokens before the model is called.",
    )
    chat_history_tokens: int = Field(
        default=4096, ge=0,
        description="Tokens of the messages before the question sent to a remote model (oldest turns dropped first).",
    )
    chat_top_k: int = Field(default=5, ge=1, le=50, description="Chunks retrieved per question.")
    chat_max_messages: int = Field(default=200, ge=1, description="Messages a chat request may carry.")
    chat_rate_per_minute: int = Field(default=120, ge=0, description="Chat requests per minute per account; 0: no limit.")
    chat_rate_burst: int = Field(default=60, ge=1, description="Chat requests an account may make at once.")
    write_rate_per_minute: int = Field(
        default=120, ge=0,
        description="Writes (contributions, data sets, conversation edits) per minute per account; 0: no limit.",
    )
    write_rate_burst: int = Field(default=60, ge=1, description="Writes an account may make at once.")
    read_rate_per_minute: int = Field(
        default=600, ge=0,
        description="Authenticated reads (search, conversations, answers) per minute per account; 0: no limit.",
    )
    read_rate_burst: int = Field(default=120, ge=1, description="Reads an account may make at once.")
    anon_rate_per_minute: int = Field(
        default=600, ge=0,
        description="Requests per minute per client IP to /v1 without a valid key (public reads, refused keys); 0: no limit.",
    )
    anon_rate_burst: int = Field(default=120, ge=1, description="Anonymous requests an IP may make at once.")

    # ---- bounds on what a chat request may carry (docs/assistant.md, Bounds) ----
    chat_max_question_tokens: int = Field(
        default=1024, ge=16, description="Word pieces (the embedder's tokenizer) of the question: the last user message.",
    )
    chat_max_message_tokens: int = Field(default=4096, ge=16, description="Word pieces of any one message.")
    chat_max_history_tokens: int = Field(default=16384, ge=16, description="Word pieces of all the messages together.")

    @field_validator("llm_model", "llm_api_base", "llm_api_key", mode="before")
    @classmethod
    def _empty_llm_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        if isinstance(value, str):  # the environment: comma-separated, or a JSON list
            text = value.strip()
            if text.startswith("["):  # a JSON list, unless it is the one name [::1]
                try:
                    return json.loads(text)
                except ValueError:
                    pass
            return [h.strip() for h in text.split(",") if h.strip()]
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one host (e.g. localhost)")
        for pattern in value:
            # TrustedHostMiddleware's own rule, as a clear error rather than an assert at start-up.
            if ("*" in pattern[1:]) or (pattern.startswith("*") and pattern != "*" and not pattern.startswith("*.")):
                raise ValueError(f"{pattern!r}: a wildcard must be like '*.example.com'")
            if ":" in pattern and not pattern.startswith("["):
                raise ValueError(f"{pattern!r}: a host name without its port (IPv6 in brackets: [::1])")
        return [p.lower() for p in value]

    @field_validator("database_url", "dev_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _default_within_cap(self) -> AppSettings:
        if self.llm_max_tokens > self.chat_max_tokens:
            raise ValueError(f"{ENV_PREFIX}LLM_MAX_TOKENS={self.llm_max_tokens} must not exceed "
                             f"{ENV_PREFIX}CHAT_MAX_TOKENS={self.chat_max_tokens}")
        return self

    @property
    def trusted_hosts(self) -> list[str]:
        """The Host allow-list: the configured names and always the local ones. A page of another
        site can never make a browser send a local name (it sends the name it resolved), and the
        supervisor's and the containers' health checks call the API by one."""
        return list(dict.fromkeys([*self.allowed_hosts, *LOCAL_HOSTS]))

    @property
    def dev_key_enabled(self) -> bool:
        """The dev key is honoured only by a server bound to loopback: on any other address every
        machine that reaches it could use a key printed in the README."""
        return self.dev_api_key is not None and is_loopback(self.host)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'openchat.sqlite3').resolve()}"


@dataclass(frozen=True)
class Settings:
    """All settings of one process, composed from each package's own."""

    app: AppSettings
    retrieval: RetrievalSettings
    payouts: PayoutsSettings


class SettingsError(Exception):
    """A configuration value is invalid; the message is one line naming the variable."""


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        if not err["loc"]:  # a check across settings: its message names them
            lines.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
        value = err.get("input")
        lines.append(f"{name}={value!r}: {err['msg']}")
    return "invalid setting " + "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read every package's settings from the environment (overrides win, for tests)."""
    try:
        app = AppSettings(**{k: v for k, v in overrides.items() if k in AppSettings.model_fields})
        retrieval = RetrievalSettings(
            **{k: v for k, v in overrides.items() if k in RetrievalSettings.model_fields}
        )
        payouts = PayoutsSettings(**{k: v for k, v in overrides.items() if k in PayoutsSettings.model_fields})
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None
    return Settings(app=app, retrieval=retrieval, payouts=payouts)
