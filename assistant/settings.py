"""Settings composition: each package reads its own settings once, at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class SettingsError(Exception):
    """A configuration value is invalid; the message is one line naming the variable."""


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
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
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None
    return Settings(app=app, retrieval=retrieval)
