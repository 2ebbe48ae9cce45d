"""docker-compose.yml (docker cannot run here): the compose-spec schema, the services, health
checks, volumes, and env wiring that uses exactly the settings the code reads."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.validators import validator_for

from assistant.settings import AppSettings, load_settings
from assistant.supervisor import celery_app_module, child_commands
from payouts.settings import PayoutsSettings
from payouts.worker import CHAIN_QUEUE, QUEUE
from retrieval.settings import RetrievalSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
REQUIRED = {"qdrant", "redis", "postgres", "anvil", "api", "worker", "worker-chain", "beat"}
PYTHON_SERVICES = {"setup", "api", "worker", "worker-chain", "beat"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the <<: merge keys


def test_follows_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    # The compose-spec JSON schema as vendored by check-jsonschema (a dev dependency).
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_required_services_with_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert REQUIRED <= set(services)
    one_shot = {name for name, svc in services.items() if svc.get("restart") == "no"}
    assert one_shot == {"setup"}
    for name, svc in services.items():
        if name in one_shot:
            continue
        check = svc.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_depends_on_names_existing_services_with_sound_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert dep != name
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no check"
            if cond["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is not a one-shot service"
    for name in REQUIRED - {"qdrant", "redis", "postgres", "anvil"}:
        assert services[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                used.add(source)
    assert used and used == declared


SETTINGS_FIELDS = set(AppSettings.model_fields) | set(RetrievalSettings.model_fields) | set(PayoutsSettings.model_fields)


def test_every_openchat_variable_is_a_setting_and_parses(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    names_in_file = set(re.findall(r"\b(OPENCHAT_[A-Z0-9_]+)\b", COMPOSE.read_text()))
    unknown = {n for n in names_in_file if n.removeprefix("OPENCHAT_").lower() not in SETTINGS_FIELDS}
    assert not unknown, f"not a field of any settings class: {sorted(unknown)}"
    for name in PYTHON_SERVICES:
        env = compose["services"][name]["environment"]
        assert isinstance(env, dict) and env, name
        for key in list(os.environ):
            if key.startswith("OPENCHAT_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        settings = load_settings()  # the values parse, as each container would read them
        assert settings.payouts.redis_url == "redis://redis:6379/0" and settings.retrieval.qdrant_url == "http://qdrant:6333"
        assert settings.app.database_url and settings.app.database_url.startswith("postgresql+psycopg://")
        assert settings.payouts.chain_rpc_url == "http://anvil:8545"
        assert settings.payouts.deploy_if_missing is (name == "setup")
        assert settings.payouts.resolved_deployment_file.parent == settings.payouts.data_dir / "chain"


def test_workers_run_what_make_run_runs(compose: dict[str, Any], tmp_path: Path) -> None:
    local = child_commands(load_settings(data_dir=tmp_path))
    services = compose["services"]
    for name in ("worker", "worker-chain", "beat"):
        cmd = services[name]["command"]
        assert cmd[:3] == ["celery", "-A", celery_app_module()], name
        assert cmd[3] == local[name][local[name].index(celery_app_module()) + 1], name
    assert services["worker"]["command"][services["worker"]["command"].index("-Q") + 1] == QUEUE
    chain = services["worker-chain"]["command"]
    assert chain[chain.index("-Q") + 1] == CHAIN_QUEUE and chain[chain.index("-c") + 1] == "1"
    assert services["worker-chain"]["deploy"]["replicas"] == 1 and services["beat"]["deploy"]["replicas"] == 1
    assert services["api"]["command"] == ["openchat", "serve"]


def test_dockerfile_builds_what_the_services_run() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "FROM python:3.11" in text and "pip install -c constraints.txt -e ." in text
    # The image installs the versions `make install` does: the constraints file it copies is there.
    assert "COPY pyproject.toml README.md constraints.txt ./" in text and (REPO / "constraints.txt").is_file()
    for path in ("assistant", "retrieval", "payouts", "contracts/artifacts", "web"):
        assert f"COPY {path} {path}" in text, path
        assert (REPO / path).exists()
    assert (REPO / "web" / "package-lock.json").exists()
    # The derived model files are built at image build time, where the services will look.
    build = text.index("RUN openchat models")
    assert "ENV OPENCHAT_MODEL_DIR=" in text[:build] and build < text.index("USER openchat")


def test_no_dev_key_and_a_host_allow_list(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 17: a shared deployment must never hand out (or honour) the dev key, which would make
    # every visitor account `dev`; visitors get session accounts, bounded per IP and per day.
    for name in PYTHON_SERVICES:
        env = compose["services"][name]["environment"]
        for key in list(os.environ):
            if key.startswith("OPENCHAT_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        app = load_settings().app
        assert app.dev_api_key is None and not app.dev_key_enabled, name
        if name == "api":
            assert app.host == "0.0.0.0"
            assert "localhost" in app.trusted_hosts and "*" not in app.trusted_hosts
            assert app.session_accounts and 0 < app.session_grant <= 100_000
            assert app.session_accounts_per_ip_per_day <= 10
