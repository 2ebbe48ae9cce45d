"""The caller's own account: balance, on-chain top-ups and spending (``GET /v1/account``).

Authenticated by the API key like every keyed route and counted in the read budget. The deposit
reference is a random bytes32 drawn for the account (``payouts.topups.deposit_ref``): it
reveals neither the account id nor the key, and knowing it only lets someone pay in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from assistant.api.unicode_body import UnicodeRoute
from assistant.auth import Principal
from assistant.ratelimit import read_key
from payouts import topups
from payouts.chain import Deployment

router = APIRouter(prefix="/v1", tags=["account"], route_class=UnicodeRoute)


class DepositOut(BaseModel):
    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int
    sender: str = Field(alias="from", description="The wallet that deposited.")
    amount: int = Field(description="Base units of the token (6 decimals).")
    status: Literal["pending", "credited", "unassigned", "dropped"] = Field(
        description="pending: waiting for confirmations; credited: in the balance; dropped: its block was "
        "replaced (reorg) and the transaction is not mined any more.")
    seen_at: str
    final_at: str | None

    model_config = {"populate_by_name": True}


class SpendingDay(BaseModel):
    day: str = Field(description="UTC date, YYYY-MM-DD.")
    spent: int = Field(description="Base units paid for answers that day.")


class TopUpTarget(BaseModel):
    """Where and how to deposit: call ``deposit(reference, amount)`` on ``contract`` after
    approving it for ``amount`` of ``token``."""

    chain_id: int
    contract: str
    token: str
    reference: str = Field(description="bytes32 deposit reference of this account (0x + 64 hex).")
    confirmations: int = Field(description="Blocks a deposit needs before it is credited.")


class AccountOut(BaseModel):
    object: Literal["account"] = "account"
    account: str
    balance: int = Field(description="Base units of the token (6 decimals).")
    token: str = "ocUSD"
    decimals: int = 6
    deposit_reference: str
    top_up: TopUpTarget | None = Field(description="null when no TopUps contract is deployed.")
    deposits: list[DepositOut]
    spending: list[SpendingDay]


def _deployment(path: Path) -> Deployment | None:
    try:
        return Deployment.load(path)
    except (OSError, ValueError, TypeError, KeyError):  # no chain yet, or a file from elsewhere
        return None


def _view(request: Request, account: str, days: int, limit: int) -> dict:  # type: ignore[type-arg]
    with Session(request.app.state.engine) as session, session.begin():  # may draw the reference
        return topups.account_view(session, account, deposits=limit, days=days)


@router.get("/account", response_model=AccountOut, response_model_by_alias=True)
async def get_account(
    request: Request,
    principal: Annotated[Principal, Depends(read_key)],
    days: Annotated[int, Query(ge=1, le=366, description="Days of spending, ending today (UTC).")] = 30,
    limit: Annotated[int, Query(ge=1, le=200, description="Newest deposits shown.")] = 50,
) -> AccountOut:
    """Balance, the deposit reference with the TopUps contract and chain id, on-chain deposits
    with their status, and spending per day."""
    view = await run_in_threadpool(_view, request, principal.account, days, limit)
    payouts = request.app.state.settings.payouts
    deployment = await run_in_threadpool(_deployment, payouts.resolved_deployment_file)
    target = None
    if deployment is not None and deployment.topups:
        target = TopUpTarget(chain_id=deployment.chain_id, contract=deployment.topups, token=deployment.token,
                             reference=view["deposit_ref"], confirmations=payouts.deposit_confirmations)
    return AccountOut(account=view["account"], balance=view["balance"], deposit_reference=view["deposit_ref"],
                      top_up=target, deposits=[DepositOut(**d) for d in view["deposits"]],
                      spending=[SpendingDay(**d) for d in view["spending"]])
