"""The committed artifacts are what the committed sources compile to, and they run."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from payouts.chain import CONTRACT_NAMES, load_artifact
from tests.contracts.conftest import Evm


def _build_info(contracts_dir: Path) -> dict:
    return json.loads((contracts_dir / "artifacts" / "build-info.json").read_text())


def test_own_sources_match_the_artifacts(contracts_dir: Path) -> None:
    """Runs without Node: the sha256 of every contracts/src file is recorded at build time."""
    recorded = _build_info(contracts_dir)["sources"]
    ours = {k: v for k, v in recorded.items() if k.startswith("src/")}
    on_disk = {
        f"src/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((contracts_dir / "src").glob("*.sol"))
    }
    assert ours == on_disk, "contracts/src changed: run `npm run build --prefix contracts`"


def test_openzeppelin_sources_match_the_artifacts(contracts_dir: Path) -> None:
    oz = contracts_dir / "node_modules"
    if not oz.exists():
        pytest.skip("contracts/node_modules missing: run `npm ci --prefix contracts`")
    for name, digest in _build_info(contracts_dir)["sources"].items():
        if name.startswith("@"):
            assert hashlib.sha256((oz / name).read_bytes()).hexdigest() == digest, name


def test_recompiling_reproduces_the_committed_artifacts(contracts_dir: Path) -> None:
    """solcjs recompiles everything in memory and compares byte for byte (stale → fail)."""
    if not (contracts_dir / "node_modules" / "solc").exists():
        pytest.skip("contracts/node_modules missing: run `npm ci --prefix contracts`")
    node = shutil.which("node")
    assert node, "node is needed with contracts/node_modules"
    result = subprocess.run(
        [node, "scripts/build.js", "--check"],
        cwd=contracts_dir,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_compiler_is_pinned_and_settings_recorded(contracts_dir: Path) -> None:
    package = json.loads((contracts_dir / "package.json").read_text())
    pins = {
        **package["dependencies"],
        **package["devDependencies"],
        **package["optionalDependencies"],
    }
    for name, version in pins.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} must be pinned exactly: {version}"
    assert (contracts_dir / "package-lock.json").exists()
    for name in CONTRACT_NAMES:
        compiler = load_artifact(name)["compiler"]
        assert compiler["version"].startswith(pins["solc"] + "+commit.")
        assert compiler["settings"]["evmVersion"] == "cancun"  # runs on py-evm and anvil
        assert compiler["settings"]["optimizer"]["enabled"] is True


def test_deployed_code_is_the_artifacts_runtime_code(evm: Evm) -> None:
    """The contracts without immutables run exactly the committed runtime bytecode."""
    for name, address in (
        ("MockStablecoin", evm.deployment.token),
        ("ContributionRegistry", evm.deployment.registry),
    ):
        assert (
            "0x" + bytes(evm.w3.eth.get_code(address)).hex()
            == load_artifact(name)["deployedBytecode"]
        )
    assert len(evm.w3.eth.get_code(evm.deployment.channels)) > 0


_EXTERNAL = re.compile(r"^\s*function\s+(\w+)\s*\([^)]*\)[^;{]*\b(external|public)\b", re.MULTILINE)


@pytest.mark.parametrize("source", ["PaymentChannels", "ContributionRegistry", "MockStablecoin", "TopUps"])
def test_sources_follow_the_house_rules(contracts_dir: Path, source: str) -> None:
    text = (contracts_dir / "src" / f"{source}.sol").read_text()
    assert "assembly" not in text, "no inline assembly"
    assert "require(" not in text and 'revert("' not in text, "custom errors only"
    lines = text.splitlines()
    functions = list(_EXTERNAL.finditer(text))
    assert functions, "the regex found no external function"
    for match in functions:
        line_no = text[: match.start()].count("\n")
        block = []
        i = line_no - 1
        while i >= 0 and lines[i].strip().startswith("///"):
            block.append(lines[i])
            i -= 1
        assert any("@notice" in b for b in block), f"{source}.{match.group(1)} lacks NatSpec"
