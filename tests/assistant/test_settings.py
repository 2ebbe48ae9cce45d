import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.settings import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OPENCHAT_"):
            monkeypatch.delenv(name)
    s = load_settings()
    assert (s.app.host, s.app.port) == ("127.0.0.1", 8000)
    assert s.app.data_dir == Path("data") and s.retrieval.data_dir == Path("data")
    assert s.app.effective_database_url.startswith("sqlite:///") and s.app.effective_database_url.endswith("data/openchat.sqlite3")
    assert s.retrieval.qdrant_url is None and s.retrieval.qdrant_path == Path("data/qdrant")


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENCHAT_PORT", "9001")
    monkeypatch.setenv("OPENCHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENCHAT_QDRANT_URL", "http://qdrant:6333")
    monkeypatch.setenv("OPENCHAT_DATABASE_URL", "postgresql+psycopg://u@db/openchat")
    s = load_settings()
    assert s.app.port == 9001 and s.retrieval.data_dir == tmp_path
    assert s.retrieval.qdrant_url == "http://qdrant:6333"
    assert s.app.effective_database_url == "postgresql+psycopg://u@db/openchat"
    assert s.retrieval.model_cache_dir == tmp_path / "models"  # derived model files: in the data dir
    monkeypatch.setenv("OPENCHAT_MODEL_DIR", str(tmp_path / "image-models"))
    assert load_settings().retrieval.model_cache_dir == tmp_path / "image-models"
    monkeypatch.setenv("OPENCHAT_MODEL_DIR", "")  # empty is unset
    assert load_settings().retrieval.model_cache_dir == tmp_path / "models"


@pytest.mark.parametrize(
    ("name", "value"),
    [("OPENCHAT_PORT", "http"), ("OPENCHAT_PORT", "70000"), ("OPENCHAT_DATABASE_URL", "mysql://x"),
     ("OPENCHAT_NEAR_DUPLICATE_THRESHOLD", "2"), ("OPENCHAT_LEXICAL_INDEX", "elastic")],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert name in message and "\n" not in message


def test_cli_fails_start_up_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "OPENCHAT_PORT": "not-a-port", "OPENCHAT_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", "serve"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "OPENCHAT_PORT" in lines[0]


def test_the_default_max_tokens_is_within_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCHAT_LLM_MAX_TOKENS", "5000")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == "invalid setting OPENCHAT_LLM_MAX_TOKENS=5000 must not exceed OPENCHAT_CHAT_MAX_TOKENS=4096"
    monkeypatch.setenv("OPENCHAT_CHAT_MAX_TOKENS", "8000")
    assert load_settings().app.chat_max_tokens == 8000


def test_host_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OPENCHAT_"):
            monkeypatch.delenv(name)
    assert load_settings().app.trusted_hosts == ["localhost", "127.0.0.1", "[::1]"]
    monkeypatch.setenv("OPENCHAT_ALLOWED_HOSTS", "Chat.Example.com, *.example.org")
    app = load_settings().app
    assert app.allowed_hosts == ["chat.example.com", "*.example.org"]
    assert app.trusted_hosts == ["chat.example.com", "*.example.org", "localhost", "127.0.0.1", "[::1]"]
    monkeypatch.setenv("OPENCHAT_ALLOWED_HOSTS", '["chat.example.com", "[::1]"]')
    assert load_settings().app.allowed_hosts == ["chat.example.com", "[::1]"]
    monkeypatch.setenv("OPENCHAT_ALLOWED_HOSTS", "[::1]")
    assert load_settings().app.allowed_hosts == ["[::1]"]
    for bad, says in [("chat.example.com:8000", "without its port"), ("ex*.com", "wildcard"), (" , ", "at least one")]:
        monkeypatch.setenv("OPENCHAT_ALLOWED_HOSTS", bad)
        with pytest.raises(SettingsError, match=f"OPENCHAT_ALLOWED_HOSTS.*{says}"):
            load_settings()


@pytest.mark.parametrize(("host", "enabled"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                               ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
                                               ("192.0.2.2", False), ("chat.example.com", False)])
def test_dev_key_only_on_a_loopback_bind(host: str, enabled: bool) -> None:
    assert load_settings(host=host, dev_api_key="k").app.dev_key_enabled is enabled
    assert load_settings(host=host, dev_api_key="").app.dev_key_enabled is False
