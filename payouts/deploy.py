"""Idempotent deployment of the OpenChat contracts, and funding of the hub.

``ensure_deployment`` deploys MockStablecoin, PaymentChannels and ContributionRegistry from the
committed artifacts, tops the hub's mock-stablecoin balance up to the configured amount, lets the
channels contract pull the hub's tokens, and writes the addresses to the deployment JSON file.
Run again against the same (persisted) chain it reuses the addresses after checking that the
recorded code is still there and the block it was deployed in is the recorded one; it redeploys
only when the chain was reset (no code, another chain id, another block at the deployment's
height: a reset anvil redeploys at the same addresses) or the committed artifacts changed, and
only when ``deploy_if_missing`` allows it. The ledger binds what it pays to the deployment
(``payouts.deployments``), so a redeploy never pays again what an older one paid.

``python -m payouts.deploy`` does this for the configured settings (starting the embedded anvil
for the duration when no ``OPENCHAT_CHAIN_RPC_URL`` is set).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from payouts.chain import (
    CONTRACT_NAMES,
    ChainClient,
    Deployment,
    TxSender,
    deploy_contract,
    load_artifact,
)
from payouts.settings import PayoutsSettings

log = logging.getLogger(__name__)

MAX_ALLOWANCE = 2**256 - 1
_ROLE = {
    "MockStablecoin": "token",
    "PaymentChannels": "channels",
    "ContributionRegistry": "registry",
    "TopUps": "topups",
}
# Added after the first deployments: a live deployment without it (or with an older TopUps)
# gets a TopUps of its own deployed next to it, the rest reused (see ensure_topups).
_ADD_ON = ("TopUps",)


class DeploymentError(RuntimeError):
    """The deployment file does not match the chain and may not be redeployed."""


def artifact_fingerprint(name: str) -> str:
    """sha256 of a contract's committed creation bytecode: changes when the contract does."""
    return hashlib.sha256(load_artifact(name)["bytecode"].encode()).hexdigest()


def check_deployment(w3: Web3, deployment: Deployment) -> list[str]:
    """Why the recorded deployment can't be reused on this chain (empty list: it can)."""
    problems = []
    chain_id = w3.eth.chain_id
    if deployment.chain_id != chain_id:
        return [f"deployment is for chain {deployment.chain_id}, node is chain {chain_id}"]
    if deployment.deploy_block_hash:
        live = _block_hash(w3, deployment.deploy_block)
        if live != deployment.deploy_block_hash.lower():
            # a reset chain: the same hub redeploys at the same addresses, so code being there
            # proves nothing; the block the contracts were deployed in does
            return [(f"block {deployment.deploy_block} is {live or 'missing'} on the node, the deployment "
                     f"recorded {deployment.deploy_block_hash}: the chain was reset")]
    for name in CONTRACT_NAMES:
        if name in _ADD_ON:
            continue
        address = getattr(deployment, _ROLE[name])
        code = bytes(w3.eth.get_code(address))
        if not code:
            problems.append(f"no code at {name} {address}")
            continue
        recorded = deployment.code_hashes.get(name)
        if recorded and recorded != "0x" + keccak(code).hex():
            problems.append(f"code at {name} {address} differs from the recorded code")
        artifact = deployment.code_hashes.get(f"{name}.artifact")
        if artifact and artifact != artifact_fingerprint(name):
            problems.append(f"{name} artifact changed since deployment")
    return problems


def _block_hash(w3: Web3, number: int) -> str | None:
    try:
        return "0x" + bytes(w3.eth.get_block(number)["hash"]).hex()
    except Exception:  # noqa: BLE001 - web3 raises BlockNotFound, providers differ
        return None


def topups_problem(w3: Web3, deployment: Deployment) -> str | None:
    """Why the deployment's TopUps can't be used (None: it can)."""
    if not deployment.topups:
        return "no TopUps contract"
    code = bytes(w3.eth.get_code(deployment.topups))
    if not code:
        return f"no code at TopUps {deployment.topups}"
    if deployment.code_hashes.get("TopUps") not in (None, "0x" + keccak(code).hex()):
        return f"code at TopUps {deployment.topups} differs from the recorded code"
    if deployment.code_hashes.get("TopUps.artifact") not in (None, artifact_fingerprint("TopUps")):
        return "TopUps artifact changed since deployment"
    return None


def ensure_topups(w3: Web3, hub: LocalAccount, deployment: Deployment) -> Deployment:
    """The deployment with a usable TopUps (token in, hub as treasury): deploys one when it has
    none (a deployment from before TopUps existed) or when its artifact changed."""
    problem = topups_problem(w3, deployment)
    if problem is None:
        return deployment
    log.info("deploying TopUps: %s", problem)
    address, receipt = deploy_contract(TxSender(w3), hub, "TopUps", deployment.token, deployment.hub)
    hashes = {**deployment.code_hashes, "TopUps": "0x" + keccak(bytes(w3.eth.get_code(address))).hex(),
              "TopUps.artifact": artifact_fingerprint("TopUps")}
    return dataclasses.replace(deployment, topups=address, topups_block=int(receipt["blockNumber"]),
                               code_hashes=hashes)


def fund_hub(client: ChainClient, funding_amount: int) -> None:
    """Dev chains: mint the hub up to ``funding_amount`` (if it owns the token); always make sure
    the channels contract may pull the hub's tokens."""
    hub = client.hub.address
    owner = to_checksum_address(client.token.functions.owner().call())
    balance = client.token_balance(hub)
    if owner == hub and balance < funding_amount:
        client.mint(hub, funding_amount - balance)
        log.info("minted %d base units to hub %s", funding_amount - balance, hub)
    if client.token_allowance(hub) < MAX_ALLOWANCE // 2:
        client.approve(MAX_ALLOWANCE)


def deploy_all(w3: Web3, hub: LocalAccount, challenge_period: int) -> Deployment:
    """Deploy the four contracts (hub owns the token and the registry; deposits go to the hub)."""
    sender = TxSender(w3)
    token, receipt = deploy_contract(sender, hub, "MockStablecoin", hub.address)
    first_block = receipt["blockNumber"]
    channels, _ = deploy_contract(sender, hub, "PaymentChannels", token, challenge_period)
    registry, _ = deploy_contract(sender, hub, "ContributionRegistry", hub.address)
    topups, topups_receipt = deploy_contract(sender, hub, "TopUps", token, hub.address)
    addresses = {
        "MockStablecoin": token,
        "PaymentChannels": channels,
        "ContributionRegistry": registry,
        "TopUps": topups,
    }
    code_hashes = {}
    for name, address in addresses.items():
        code_hashes[name] = "0x" + keccak(bytes(w3.eth.get_code(address))).hex()
        code_hashes[f"{name}.artifact"] = artifact_fingerprint(name)
    return Deployment(
        chain_id=w3.eth.chain_id,
        token=token,
        channels=channels,
        registry=registry,
        hub=hub.address,
        challenge_period=challenge_period,
        deploy_block=first_block,
        code_hashes=code_hashes,
        deploy_block_hash="0x" + bytes(receipt["blockHash"]).hex(),
        topups=topups,
        topups_block=int(topups_receipt["blockNumber"]),
    )


def ensure_deployment(
    w3: Web3,
    hub: LocalAccount | str,
    deployment_file: Path,
    *,
    challenge_period: int,
    funding_amount: int,
    deploy_if_missing: bool = True,
) -> Deployment:
    """Reuse the deployment recorded in ``deployment_file`` if it is live on this chain,
    otherwise deploy (if allowed) and record it. Funds the hub either way. Idempotent."""
    account = hub if isinstance(hub, LocalAccount) else Account.from_key(hub)
    deployment: Deployment | None = None
    if deployment_file.exists():
        recorded = Deployment.load(deployment_file)
        problems = check_deployment(w3, recorded)
        if not problems:
            deployment = recorded
            log.info("reusing deployment %s on chain %d", deployment_file, recorded.chain_id)
            if not recorded.deploy_block_hash:  # a file from before the hash was recorded
                live = _block_hash(w3, recorded.deploy_block)
                if live:
                    deployment = dataclasses.replace(recorded, deploy_block_hash=live)
                    deployment.save(deployment_file)
            live_period = int(
                w3.eth.contract(
                    address=recorded.channels, abi=load_artifact("PaymentChannels")["abi"]
                )
                .functions.challengePeriod()
                .call()
            )
            if live_period != challenge_period:
                log.warning(
                    "deployed challenge period is %ds, settings ask %ds (immutable; keeping %ds)",
                    live_period, challenge_period, live_period,
                )  # fmt: skip
        elif not deploy_if_missing:
            raise DeploymentError("; ".join(problems))
        else:
            log.warning("redeploying: %s", "; ".join(problems))
    elif not deploy_if_missing:
        raise DeploymentError(f"no deployment file at {deployment_file} and deploying is disabled")
    if deployment is None:
        deployment = deploy_all(w3, account, challenge_period)
        deployment.save(deployment_file)
        log.info("deployed %s", json.dumps({k: getattr(deployment, v) for k, v in _ROLE.items()}))
    if not deploy_if_missing:
        problem = topups_problem(w3, deployment)
        if problem:
            log.warning("on-chain top-ups are off: %s (deploying is disabled)", problem)
        with_topups = deployment
    else:
        with_topups = ensure_topups(w3, account, deployment)
    if with_topups is not deployment:
        deployment = with_topups
        deployment.save(deployment_file)
    fund_hub(ChainClient(w3, deployment, account), funding_amount)
    return deployment


def ensure_deployment_for_settings(
    settings: PayoutsSettings, *, rpc_url: str | None = None
) -> Deployment:
    """:func:`ensure_deployment` with everything taken from settings."""
    url = rpc_url or settings.chain_rpc_url
    if not url:
        raise DeploymentError("no RPC URL: start payouts.localchain or set OPENCHAT_CHAIN_RPC_URL")
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    if settings.chain_id is not None and w3.eth.chain_id != settings.chain_id:
        raise DeploymentError(
            f"node chain id {w3.eth.chain_id} != OPENCHAT_CHAIN_ID {settings.chain_id}"
        )
    return ensure_deployment(
        w3,
        settings.hub_private_key.get_secret_value(),
        settings.resolved_deployment_file,
        challenge_period=settings.challenge_period_seconds,
        funding_amount=settings.hub_funding_amount,
        deploy_if_missing=settings.deploy_if_missing,
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    from payouts.localchain import LocalChain

    parser = argparse.ArgumentParser(description="Deploy (or reuse) the OpenChat contracts.")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = PayoutsSettings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    if settings.uses_dev_key:
        log.warning("using anvil's public dev key as the hub key: dev chains only")
    if settings.chain_rpc_url:
        deployment = ensure_deployment_for_settings(settings)
    else:
        with LocalChain(
            settings.data_dir,
            port=settings.anvil_port,
            hardfork=settings.anvil_hardfork,
            state_interval=settings.anvil_state_interval_seconds,
            anvil_bin=settings.anvil_bin,
        ) as chain:
            deployment = ensure_deployment_for_settings(settings, rpc_url=chain.rpc_url)
    print(deployment.to_json(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
