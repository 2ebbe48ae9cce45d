"""Intake's payee check: a contribution's payout address must be one the chain can ever pay.

The rule itself is :func:`payouts.payees.unpayable_reason` (pure); this module gives it this
deployment's addresses: the hub (from its key, known before anything is deployed) and the
contracts of the deployment file once there is one. The file is re-read when it changes (a
reset chain is redeployed at the next start), so the check never refuses with stale addresses.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from eth_account import Account

from payouts.chain import Deployment
from payouts.payees import unpayable_reason
from payouts.settings import PayoutsSettings

log = logging.getLogger(__name__)


class UnpayableAddress(ValueError):
    """A payout address no payment can ever reach (``code``: zero/hub/contract/precompile)."""

    def __init__(self, address: str, code: str, why: str):
        self.address, self.code, self.why = address, code, why
        super().__init__(f"{address} can never be paid: it is {why}")


class PayeeCheck:
    """Refuses the payout addresses of :func:`unpayable_reason` for this deployment."""

    def __init__(self, settings: PayoutsSettings) -> None:
        self._payer = Account.from_key(settings.hub_private_key.get_secret_value()).address
        self._file: Path = settings.resolved_deployment_file
        self._stamp: tuple[int, int] | None = None
        self._known: dict[str, str] = {"payer": self._payer}
        self._lock = threading.Lock()

    def known(self) -> dict[str, str]:
        """Role -> address of everything that can never be a payee here."""
        try:
            st = os.stat(self._file)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                known = {"payer": self._payer}
                if stamp is not None:
                    try:
                        known |= Deployment.load(self._file).addresses()
                    except (OSError, ValueError, KeyError, TypeError) as exc:  # half-written or foreign file
                        log.warning("payee check: deployment file %s unreadable (%s); checking the hub only",
                                    self._file, exc)
                self._known, self._stamp = known, stamp
            return self._known

    def check(self, address: str) -> str:
        """``address`` (a well-formed address) unchanged, or :class:`UnpayableAddress`."""
        found = unpayable_reason(address, self.known())
        if found is not None:
            raise UnpayableAddress(address, *found)
        return address
