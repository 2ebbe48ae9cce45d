"""Asker accounts: the development balance granted at start-up, and the operator's
``openchat accounts fund|show|key|revoke`` commands (balances and keys live in the payouts ledger)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from payouts import ledger

DEV_ACCOUNT = "dev"
DEV_BALANCE_REF = "dev-balance"


def grant_dev_balance(engine: Engine, amount: int, account: str = DEV_ACCOUNT) -> bool:
    """Deposit ``amount`` into the dev account once per database (a journal entry with ref
    ``dev-balance``), so ``make run`` → first question works; True when it deposited now."""
    with Session(engine) as session, session.begin():
        return ledger.deposit_once(session, account, amount, ref=DEV_BALANCE_REF)


# An answer takes seconds (a remote model at most its timeout times its retries); a hold older
# than this was left by a process that died mid-answer. Other replicas' holds are younger.
STALE_HOLD_AGE = timedelta(minutes=15)


def release_stale_holds(engine: Engine, age: timedelta = STALE_HOLD_AGE) -> int:
    """Give back the prices held by answers that a dead process never finished; how many."""
    with Session(engine) as session, session.begin():
        return ledger.release_stale_holds(session, datetime.now(UTC) - age)


def fund(engine: Engine, account: str, amount: int, ref: str | None = None) -> int:
    """Add ``amount`` base units to an account (created if missing); returns the new balance."""
    with Session(engine) as session, session.begin():
        return ledger.deposit(session, account, amount, ref=ref or "operator")


def _engine(args: argparse.Namespace) -> Engine:
    from assistant.cli import _settings
    from assistant.db import make_engine, migrate

    engine = make_engine(_settings().app.effective_database_url)
    migrate(engine)
    return engine


def fund_cmd(args: argparse.Namespace) -> int:
    if args.amount <= 0:
        print("openchat accounts fund: AMOUNT must be a positive integer of base units", file=sys.stderr)
        return 2
    engine = _engine(args)
    try:
        new = fund(engine, args.account, args.amount, args.ref)
    finally:
        engine.dispose()
    print(json.dumps({"account": args.account, "deposited": args.amount, "balance": new}))
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        with Session(engine) as session:
            summary = ledger.account_summary(session, args.account, entries=args.entries)
    finally:
        engine.dispose()
    if summary is None:
        print(f"openchat accounts show: no account {args.account!r}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


def key_cmd(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        with Session(engine) as session, session.begin():
            key = ledger.create_api_key(session, args.account, name=args.name)
    finally:
        engine.dispose()
    # Shown once: only its sha256 is stored.
    print(json.dumps({"account": args.account, "key": key, "name": args.name}))
    return 0


def revoke_cmd(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        with Session(engine) as session, session.begin():
            revoked = ledger.revoke_api_key(session, args.key)
    finally:
        engine.dispose()
    if not revoked:
        print("openchat accounts revoke: no such live key", file=sys.stderr)
        return 1
    print(json.dumps({"revoked": True}))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``openchat accounts fund ACCOUNT AMOUNT`` / ``show ACCOUNT`` / ``key ACCOUNT`` / ``revoke KEY``."""
    p = subparsers.add_parser("accounts", help="asker balances: fund an account, show its balance and journal")
    sub = p.add_subparsers(dest="accounts_command", required=True)
    f = sub.add_parser("fund", help="deposit base units (1 ocUSD = 1,000,000) into an account")
    f.add_argument("account")
    f.add_argument("amount", type=int, help="base units, a positive integer")
    f.add_argument("--ref", help="a note kept in the journal (default: operator)")
    f.set_defaults(func=fund_cmd)
    s = sub.add_parser("show", help="balance and newest journal entries")
    s.add_argument("account")
    s.add_argument("--entries", type=int, default=20)
    s.set_defaults(func=show_cmd)
    k = sub.add_parser("key", help="issue an API key for an account (printed once)")
    k.add_argument("account")
    k.add_argument("--name", help="a label for the key")
    k.set_defaults(func=key_cmd)
    r = sub.add_parser("revoke", help="revoke an API key")
    r.add_argument("key")
    r.set_defaults(func=revoke_cmd)
