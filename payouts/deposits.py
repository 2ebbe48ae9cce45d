"""How much the hub deposits into a payee's channel: pure functions, no chain, no database.

A channel's deposit is the hub's money locked for that payee until the channel is settled. It is
sized to what the channel's vouchers will carry (``target``) plus a headroom proportional to it,
so a payee who keeps earning needs a top-up only each time what it is owed grows by that share
(with the default 100 %: each time it doubles, O(log amount) transactions over its life), while a
payee who earned little locks little. ``min_topup`` keeps micro-payments from costing a
transaction each; ``max_headroom`` caps what is locked beyond what is owed.
"""

from __future__ import annotations

from dataclasses import dataclass

BPS = 10_000


@dataclass(frozen=True)
class DepositPolicy:
    """The operator's settings for channel deposits (``PayoutsSettings``: ``payout_min_owed``,
    ``channel_min_topup``, ``channel_headroom_bps``, ``channel_max_headroom``)."""

    min_owed: int
    min_topup: int
    headroom_bps: int
    max_headroom: int

    def __post_init__(self) -> None:
        for name in ("min_owed", "min_topup", "headroom_bps", "max_headroom"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")

    def headroom(self, target: int) -> int:
        """Deposit beyond ``target`` (rounded down, capped)."""
        return min(target * self.headroom_bps // BPS, self.max_headroom)

    def to_add(self, target: int, deposited: int) -> int:
        """What to deposit so the channel covers a voucher of ``target``: 0 when its deposit
        already does, else at least ``min_topup`` and enough for ``target`` plus the headroom."""
        _check(target, "target")
        _check(deposited, "deposited")
        if deposited >= target:
            return 0
        return max(target + self.headroom(target) - deposited, self.min_topup)

    def may_open(self, owed: int) -> bool:
        """Whether a payee without an open channel is owed enough to be given one."""
        _check(owed, "owed")
        return owed > 0 and owed >= self.min_owed


def _check(value: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer of base units, got {value!r}")
