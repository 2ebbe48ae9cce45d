"""Pay, then deliver, under concurrency: N streamed answers at once against a balance for k.

Starts the real app (embedded defaults, the per-account chat limit off) on a loopback port,
contributes one fact, then for each (N, k) case funds a new account with exactly k answers'
price and sends N ``stream: true`` requests for a cited answer at the same moment with the
official ``openai`` SDK, each in its own thread. It prints, per case, how many answers were
delivered (the whole answer streamed), how many were refused before their first byte (402),
how many were paid (``answer_payments`` rows of the account), what the account was charged, its
balance afterwards and whether the ledger's invariants hold. The price is held before the first
byte (issue 16), so delivered = paid ≤ k in every case; before the hold, 20 streams on a balance
for one answer delivered 20 and paid 1. ``--smoke`` runs one small case.

    .venv/bin/python bench/paid_delivery.py [--cases 20x1,50x5,50x25] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import openai
from sqlalchemy import select
from sqlalchemy.orm import Session

KEY = "bench-key"
MODEL = "openchat-extractive"
FACT = "Octopuses have three hearts: two pump blood through the gills, one through the body."
QUESTION = "How many hearts does an octopus have?"
CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def run_case(live: object, n: int, k: int) -> dict[str, object]:
    """N concurrent streams against a balance for k answers; what was delivered and paid."""
    from assistant.auth import ApiKeys
    from payouts import ledger
    from payouts.models import AnswerPayment

    app = live.server.config.app  # type: ignore[attr-defined]
    price = app.state.settings.payouts.price_per_answer
    account, key = f"bench-{uuid.uuid4().hex[:8]}", f"key-{uuid.uuid4().hex}"
    app.state.api_keys = ApiKeys({**app.state.api_keys._keys, key: account})
    with Session(app.state.engine) as s, s.begin():
        ledger.deposit(s, account, k * price, ref=f"bench:{account}")
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(n)

    def stream() -> None:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=300)  # type: ignore[attr-defined]
        start.wait()
        try:
            chunks = list(client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            outcome = "delivered" if "three hearts" in text else "other"
        except openai.APIStatusError as exc:
            outcome = str(exc.status_code)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=stream) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Session(app.state.engine) as s:
        paid = s.scalars(select(AnswerPayment.total).where(AnswerPayment.account_id == account)).all()
        balance = ledger.balance(s, account)
        problems = ledger.check_invariants(s)
    return {"n": n, "k": k, "delivered": outcomes.count("delivered"), "refused_402": outcomes.count("402"),
            "other": len(outcomes) - outcomes.count("delivered") - outcomes.count("402"),
            "paid": len(paid), "charged": sum(paid), "balance": balance, "funded": k * price,
            "invariants": "hold" if not problems else f"{len(problems)} broken"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="20x1,50x5,50x25", help="comma-separated NxK: N streams, a balance for K answers")
    ap.add_argument("--smoke", action="store_true", help="one small case (a quick check that it runs)")
    args = ap.parse_args()
    cases = [(5, 1)] if args.smoke else [tuple(int(x) for x in c.split("x")) for c in args.cases.split(",")]

    from assistant.settings import load_settings
    from retrieval.embedder import load_embedder
    from tests.conftest import start_server  # the same real server the API tests use

    settings = load_settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-paid-")), dev_api_key=KEY,
                             chat_rate_per_minute=0, write_rate_per_minute=0)
    live = start_server(settings, load_embedder(settings.retrieval))
    try:
        resp = httpx.post(f"{live.url}/v1/contributions", json={"text": FACT, "contributor": CONTRIBUTOR},
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
        assert resp.status_code == 201, resp.text
        print(f"price {settings.payouts.price_per_answer} base units an answer, model {MODEL}, streamed")
        print(f"{'streams':>7} {'funded for':>10} {'delivered':>9} {'402':>4} {'other':>5} {'paid':>4} "
              f"{'charged':>9} {'balance':>8}  invariants")
        for n, k in cases:
            r = run_case(live, n, k)
            print(f"{r['n']:7d} {r['k']:10d} {r['delivered']:9d} {r['refused_402']:4d} {r['other']:5d} {r['paid']:4d} "
                  f"{r['charged']:9d} {r['balance']:8d}  {r['invariants']}")
    finally:
        live.stop()


if __name__ == "__main__":
    main()
