"""Settings composition: each package reads its own settings once, at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from payouts.settings import PayoutsSettings
from retrieval.settings import RetrievalSettings

ENV_PREFIX = "OPENCHAT_"
DEFAULT_DEV_API_KEY = "oc-dev-key"


class AppSettings(BaseSettings):
    """The API process: where it listens, its database and its keys."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("./data")
    database_url: str | None = Field(default=None, description="Unset: SQLite under the data dir.")
    dev_api_key: str | None = Field(
        default=DEFAULT_DEV_API_KEY,
        description="A development API key; set it empty to disable.",
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
