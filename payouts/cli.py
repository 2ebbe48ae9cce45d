"""``openchat payouts status|reconcile|release|retire`` (also ``python -m payouts.cli ...``).

Wire into the main CLI with ``payouts.cli.add_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from sqlalchemy.orm import Session

from payouts import deployments, ledger, quarantine, reclaim, small_payees, topups
from payouts.settings import PayoutsSettings


def _settings(args: argparse.Namespace) -> PayoutsSettings:
    overrides = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return PayoutsSettings(**overrides)


def status(args: argparse.Namespace) -> int:
    """Ledger totals: debits, fees, credits; unbatched → batched → vouchered → settled; the
    payees in quarantine with their reasons; the hub's funds in channels and the payees below
    the minimum payout."""
    from payouts.db import begin_snapshot, make_engine

    settings = _settings(args)
    engine = make_engine(settings.effective_database_url)
    with Session(engine) as s:
        begin_snapshot(s)  # totals from separate statements must add up on a running system
        totals = asdict(ledger.totals(s))
        held_out = quarantine.quarantined(s)
        per_deployment = deployments.figures(s)
        channel_funds = reclaim.figures(s, settings.payout_min_owed)
        _, _, below = reclaim.below_minimum(s, settings.payout_min_owed, limit=args.limit)
        small = small_payees.figures(s, settings.small_payee_cap())
        _, _, _, waiting = small_payees.waiting(s, limit=args.limit)
        totals.update(topups.figures(s))
        if args.contributor:
            from payouts.models import Contributor

            c = s.get(Contributor, ledger.checksum(args.contributor))
            totals["contributor"] = None if c is None else {
                "address": c.address, "earned": c.earned, "batched": c.batched,
                "vouchered": c.vouchered, "settled": c.settled,
                "quarantine": next((q for q in held_out if q["address"] == c.address), None),
                "below_minimum_payout": reclaim.is_below_minimum(s, c.address, settings.payout_min_owed),
                "waiting_for_funds": next((w for w in small_payees.waiting(s)[3] if w["address"] == c.address), None)}
    engine.dispose()
    totals["quarantined"] = held_out
    totals["deployments"] = per_deployment
    totals["channels"] = channel_funds | {"payout_min_owed": settings.payout_min_owed}
    totals["below_minimum"] = below
    totals["small_payees"] = small
    totals["waiting_for_funds"] = waiting
    if args.json:
        print(json.dumps(totals, indent=2))
        return 0
    for key, value in totals.items():
        if key not in ("quarantined", "deployments", "channels", "below_minimum", "small_payees", "waiting_for_funds"):
            print(f"{key:>20}  {value}")
    _print_deployments(per_deployment)
    c = totals["channels"]
    print(f"channels: open {c['channels_open']}  closing {c['channels_closing']}  reclaimed {c['channels_reclaimed']}")
    print(f"  deposits committed {c['deposits_committed']}  reclaimable {c['deposits_reclaimable']}  "
          f"closing {c['deposits_closing']}  reclaimed {c['deposits_reclaimed']}")
    if c["payees_below_minimum"]:
        print(f"below minimum payout ({c['payout_min_owed']}; owed, no channel yet): {c['payees_below_minimum']} "
              f"payee(s), owed {c['below_minimum_owed']}")
        for b in below:
            print(f"  {b['address']}  owed {b['owed']}  below minimum payout")
    if small["earned_below"]:
        print(f"small payees (lifetime earnings below {small['earned_below']}): channels hold {small['committed']} of "
              f"the cap min({small['budget']}, {small['share_bps']} bps of hub funds)"
              + (f", {small['last_cap']} at the last wait" if small["last_cap"] else ""))
    if small["waiting"]:
        print(f"waiting for funds under that cap (queued, paid in this order as funds free up): {small['waiting']} "
              f"payee(s), owed {small['waiting_owed']}, deposits needed {small['waiting_needed']}")
        for w in waiting:
            print(f"  {w['position']:>4}. {w['address']}  owed {w['owed']}  needs {w['needed']}  since {w['since']}")
            print(f"        {w['reason']}")
    if held_out:
        print("quarantined payees (left out of voucher and settlement runs; "
              "release with `openchat payouts release ADDRESS`):")
    for q in held_out:
        retry = f"retry after {q['retry_at']}" if q["retry_at"] else "operator release only"
        print(f"  {q['address']}  {q['stage']}  {q['code']}  failures {q['failures']}  owed {q['owed']}  {retry}")
        print(f"    {q['reason']}")
    return 0


def _print_deployments(rows: list[dict]) -> None:  # type: ignore[type-arg]
    if not rows:
        return
    print("deployments (amounts of each one's channels; a new deployment pays only what is still owed):")
    for d in rows:
        block = f"block {d['deploy_block']} {d['deploy_block_hash']}" if d["deploy_block_hash"] else "block unknown"
        state = ["retired"] if d["retired"] else []
        if d.get("checked"):
            state.append(d["checked"])
        print(f"  #{d['id']}  chain {d['chain_id']}  PaymentChannels {d['contract']}  {block}"
              + (f"  ({', '.join(state)})" if state else ""))
        print(f"    channels {d['channels']}  vouchered {d['vouchered']}  settled {d['settled']}  "
              f"outstanding {d['outstanding']}  returned to owed {d['returned_to_owed']}")


def retire_cmd(args: argparse.Namespace) -> int:
    """Return a gone deployment's unsettled vouchers to owed, exactly once; refused while the
    configured node still has its contract (they can be claimed there)."""
    from payouts.chain import ChainClient, Deployment
    from payouts.db import make_engine

    settings = _settings(args)
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as s:
            row = next((d for d in deployments.all_deployments(s) if d.id == args.deployment), None)
        if row is None:
            print(f"openchat payouts retire: no deployment #{args.deployment} in the ledger "
                  "(`openchat payouts status` lists them)", file=sys.stderr)
            return 2
        if settings.chain_rpc_url:
            client = ChainClient.connect(settings.chain_rpc_url, Deployment.load(settings.resolved_deployment_file),
                                         settings.hub_private_key.get_secret_value())
            if client.is_live(row.chain_id, row.contract, row.deploy_block, row.deploy_block_hash):
                print(f"openchat payouts retire: {row.label()} is on the configured node: its vouchers can still "
                      "be claimed there (and the settlement run pays them); nothing retired", file=sys.stderr)
                return 1
        elif not args.no_chain:
            print("openchat payouts retire: no chain configured (OPENCHAT_CHAIN_RPC_URL) to check that "
                  f"{row.label()} is gone; pass --no-chain to retire it on your word", file=sys.stderr)
            return 2
        with Session(engine) as s, s.begin():
            returned = deployments.retire(s, row.id, by=args.note or "operator")
    finally:
        engine.dispose()
    if returned is None:
        out = {"deployment": row.id, "retired": False, "returned_to_owed": {}}
        message = f"{row.label()} was already retired: nothing returned"
    else:
        out = {"deployment": row.id, "retired": True, "returned_to_owed": returned}
        message = (f"retired {row.label()}: {sum(returned.values())} base units returned to owed "
                   f"for {len(returned)} payee(s); the next voucher run vouchers them on the configured deployment")
    print(json.dumps(out, indent=2) if args.json else message)
    return 0


def release_cmd(args: argparse.Namespace) -> int:
    """Release quarantined payees: the next voucher and settlement runs try to pay them again."""
    from payouts.db import make_engine

    if bool(args.all) == bool(args.addresses):
        print("openchat payouts release: name the payees' addresses, or --all", file=sys.stderr)
        return 2
    try:
        addresses = None if args.all else [ledger.checksum(a) for a in args.addresses]
    except ValueError as exc:
        print(f"openchat payouts release: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(_settings(args).effective_database_url)
    with Session(engine) as s, s.begin():
        released = quarantine.release(s, addresses, by=args.note or "operator")
    engine.dispose()
    missing = sorted(set(addresses or []) - set(released))
    if args.json:
        print(json.dumps({"released": released, "not_quarantined": missing}, indent=2))
    else:
        for a in released:
            print(f"released {a}")
        for a in missing:
            print(f"not quarantined: {a}")
        if args.all and not released:
            print("no payee was quarantined")
    return 0 if released or args.all else 1


def reconcile_cmd(args: argparse.Namespace) -> int:
    """Check the ledger against itself and each deployment on the chain; exit 1 and list differences if any."""
    from payouts.chain import ChainClient, ChainError, Deployment
    from payouts.db import make_engine
    from payouts.reconcile import reconcile

    settings = _settings(args)
    client = None
    if settings.chain_rpc_url and not args.ledger_only:
        try:
            client = ChainClient.connect(settings.chain_rpc_url, Deployment.load(settings.resolved_deployment_file),
                                         settings.hub_private_key.get_secret_value())
        except (ChainError, OSError) as exc:  # another chain id, no deployment file
            print(f"openchat payouts reconcile: the configured chain cannot be checked: {exc}", file=sys.stderr)
            return 1
    engine = make_engine(settings.effective_database_url)
    with Session(engine) as s:
        report = reconcile(s, client)
    engine.dispose()
    out = asdict(report) | {"ok": report.ok, "chain_checked": client is not None}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key in ("contributors", "channels", "ledger_vouchered", "ledger_settled", "chain_deposited", "chain_paid",
                    "pending_settlements", "topups_credited", "topups_checked_on_chain", "closings_checked",
                    "closings_reclaimed", "chain_refunded"):
            print(f"{key:>18}  {out[key]}")
        _print_deployments(report.deployments)
        print("OK: ledger and chain agree" if report.ok else f"{len(report.problems)} difference(s):")
        for p in report.problems:
            print(f"  - {p}")
    return 0 if report.ok else 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add ``payouts status``, ``reconcile``, ``release`` and ``retire`` to a CLI's subcommands."""
    p = subparsers.add_parser("payouts", help="payout ledger: status, reconcile with the chain, release payees, "
                              "retire a gone deployment")
    sub = p.add_subparsers(dest="payouts_command", required=True)
    st = sub.add_parser("status", help="ledger totals (and one contributor's amounts)")
    st.add_argument("--contributor", help="a payout address")
    st.add_argument("--limit", type=int, default=100, help="payees below the minimum payout listed (default 100)")
    st.set_defaults(func=status)
    rc = sub.add_parser("reconcile", help="check ledger against chain; exit 1 on any difference")
    rc.add_argument("--ledger-only", action="store_true", help="skip the chain")
    rc.set_defaults(func=reconcile_cmd)
    rl = sub.add_parser("release", help="release quarantined payees (their next runs try to pay them again)")
    rl.add_argument("addresses", nargs="*", metavar="ADDRESS", help="payout addresses to release")
    rl.add_argument("--all", action="store_true", help="release every quarantined payee")
    rl.add_argument("--note", help="who or why, recorded as released_by (default: operator)")
    rl.set_defaults(func=release_cmd)
    rt = sub.add_parser("retire", help="return a gone deployment's unsettled vouchers to owed (once)")
    rt.add_argument("deployment", type=int, metavar="ID", help="the deployment's id (`payouts status` lists them)")
    rt.add_argument("--note", help="who or why, recorded as retired_by (default: operator)")
    rt.add_argument("--no-chain", action="store_true",
                    help="no chain is configured: retire without checking that its contract is gone")
    rt.set_defaults(func=retire_cmd)
    for q in (st, rc, rl, rt):
        q.add_argument("--json", action="store_true")
        q.add_argument("--database-url", help="default: OPENCHAT_DATABASE_URL or the SQLite file")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payouts.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["payouts", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
