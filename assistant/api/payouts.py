"""Contributors' money over HTTP: earnings, the latest voucher, and contribution proofs.

Public reads, no key: a contributor is a payout address, public on chain anyway, and the web
earnings page must work for anyone holding one. JSON bodies are ``payouts.views``' dicts as
they are; amounts are integers of base units of the 6-decimal token (ocUSD), except the
voucher's ``cumulative_amount`` (a decimal string, as EIP-712 tooling in JavaScript expects).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from assistant.api.unicode_body import UnicodeRoute
from assistant.errors import ApiError
from assistant.provenance import contribution_proofs
from payouts import reclaim, views
from payouts.chain import Deployment, load_artifact
from retrieval.addresses import AddressError, checksum_address

router = APIRouter(prefix="/v1", tags=["payouts"], route_class=UnicodeRoute)
# Ids and offsets are 64-bit in SQLite and PostgreSQL: a larger one is the client's error (400),
# never a driver overflow (500).
INT64_MAX = 2**63 - 1
Offset = Annotated[int, Query(ge=0, le=INT64_MAX)]


def _address(address: str) -> str:
    # The same rule as contributions (the payouts ledger's own check accepts any case): a
    # mixed-case address must carry a valid EIP-55 checksum.
    try:
        return checksum_address(address)
    except AddressError as exc:
        raise ApiError(400, str(exc), "invalid_address", "address") from None


def _read(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with Session(request.app.state.engine) as session:
        return fn(session, *args, **kwargs)


def zero_summary(address: str, limit: int, offset: int) -> dict[str, Any]:
    """What an address that was never credited has: nothing yet (not an error; see docs/payouts.md)."""
    return {"address": address, "display_name": None, "earned": 0, "batched": 0, "vouchered": 0, "settled": 0,
            "unsettled": 0, "credits": {"total": 0, "limit": limit, "offset": offset, "items": []}}


@router.get("/contributors/{address}")
async def get_contributor(
    address: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Earned, batched, vouchered, settled and unsettled amounts, and the newest credits (paginated)."""
    address = _address(address)
    min_owed = request.app.state.settings.payouts.payout_min_owed

    def read(session: Session) -> dict[str, Any]:
        summary = views.contributor_summary(session, address, limit=limit, offset=offset) or zero_summary(address, limit, offset)
        # Why there is no voucher yet, when that is the reason: a payee gets a channel (and
        # vouchers) only once it is owed the minimum payout (docs/payouts.md).
        summary["payout_minimum"] = min_owed
        summary["below_minimum_payout"] = reclaim.is_below_minimum(session, address, min_owed)
        return summary

    return await run_in_threadpool(_read, request, read)


@router.get("/contributors/{address}/voucher")
async def get_voucher(address: str, request: Request) -> dict[str, Any]:
    """The newest signed voucher: EIP-712 ``typed_data``, ``signature`` and ``payer``, ready to claim."""
    address = _address(address)
    voucher = await run_in_threadpool(_read, request, views.latest_voucher, address)
    if voucher is None:
        raise ApiError(404, f"no voucher for {address} yet: vouchers are issued every payout interval once "
                       "credits are batched and the address is owed at least the minimum payout "
                       f"({request.app.state.settings.payouts.payout_min_owed} base units)", "no_voucher", "address")
    return voucher


@router.get("/contributors/{address}/daily")
async def get_contributor_daily(
    address: str,
    request: Request,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> dict[str, Any]:
    """Credited per UTC day over the last ``days`` days (today included): every day listed, exact
    integer base units (``amount``) and the number of credits; zeros for an unknown address."""
    address = _address(address)
    today = datetime.now(UTC).date()
    return await run_in_threadpool(_read, request, views.contributor_daily, address, days=days, today=today)


# What a wallet page needs of PaymentChannels: claim, the channel's state (its ``paid`` is read
# before claiming) and every custom error, so a revert (NothingToClaim, …) is decoded by name.
_WALLET_FUNCTIONS = frozenset({"claim", "getChannel", "channelIdOf", "token"})


@cache
def wallet_abi() -> list[dict[str, Any]]:
    """The PaymentChannels ABI entries a browser wallet uses, from the committed artifact."""
    return [item for item in load_artifact("PaymentChannels")["abi"]
            if item["type"] == "error" or (item["type"] == "function" and item["name"] in _WALLET_FUNCTIONS)
            or (item["type"] == "event" and item["name"] == "ChannelClaimed")]


def _deployment(request: Request) -> Deployment | None:
    path = request.app.state.settings.payouts.resolved_deployment_file
    try:
        return Deployment.load(path)
    except FileNotFoundError:
        return None


@router.get("/payouts/contract")
async def get_payout_contract(request: Request) -> dict[str, Any]:
    """The deployment a voucher is claimed on: chain id, PaymentChannels and token addresses, the
    token's unit, and the ABI fragment a wallet needs (public: all of it is on chain)."""
    try:
        d = await run_in_threadpool(_deployment, request)
    except (OSError, ValueError, KeyError, TypeError):
        raise ApiError(503, "the deployment file cannot be read right now; try again later",
                       "deployment_unavailable") from None
    if d is None:
        raise ApiError(404, "no contracts are deployed yet: the payout worker deploys them on its first start",
                       "no_deployment")
    return {"chain_id": d.chain_id, "payment_channels": d.channels, "token": d.token, "hub": d.hub,
            "symbol": "ocUSD", "decimals": 6, "abi": wallet_abi()}


@router.get("/contributions/{contribution_id}/proof")
async def get_contribution_proof(
    contribution_id: Annotated[int, Path(ge=1, le=INT64_MAX)],
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Each chunk's Merkle proof of origin against the root anchored on the ContributionRegistry:
    leaf values, proof, root, anchor tx hash/block and registry address (public: proofs are)."""
    trees = getattr(request.app.state, "anchor_trees", None)
    body = await run_in_threadpool(_read, request, contribution_proofs, contribution_id, limit, offset, trees)
    if body is None:
        raise ApiError(404, f"no contribution {contribution_id}", "not_found", "contribution_id")
    return body
