"""Bounded inputs under load: a normal question's latency while the worst inputs the API still
accepts run concurrently, against the same question on the quiet server, in one process.

Starts the real app (embedded defaults: SQLite + Qdrant local mode, the per-account chat limit
off, every other bound at its default) on a loopback port, contributes a few facts, then in
each of ``--rounds`` rounds:

1. quiet: the normal question ``--repeats`` times, one after another (median latency);
2. loaded: the same, while these run at once, as fast as they are answered:
   - ``--long-askers`` clients asking the longest question allowed (just under
     ``OPENCHAT_CHAT_MAX_QUESTION_TOKENS`` word pieces), and one sending the longest history
     allowed (``OPENCHAT_CHAT_MAX_HISTORY_TOKENS``);
   - one client posting questions far over the bound (a ~1 MiB question: refused, 400);
   - an anonymous client uploading a large data set without a key (refused, 401, before its
     body is read) and hammering public reads (its IP's budget: 429 past it);
   - one upload of a ``--upload-kib`` KiB ``.txt`` without a blank line (cut into bounded rows,
     embedded in batches of ``OPENCHAT_INGEST_BATCH_CHARS``) and, while it is read, snippets
     posted one after another (their latency: each waits for at most one batch's write).

Prints the medians, the ratio loaded/quiet, what each load client got (status counts) and the
snippets' latency during the upload. ``--smoke`` is a quick run (one short round).

    .venv/bin/python bench/bounded_inputs.py [--rounds 2] [--repeats 15] [--upload-kib 1024] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

KEY = "bench-key"
MODEL = "openchat-extractive"
QUESTION = "How many hearts does an octopus have?"
FACTS = [
    "Octopuses have three hearts: two pump blood through the gills, one through the body.",
    "The capybara is the largest living rodent and lives in South America.",
    "Lyrebirds can imitate chainsaws, camera shutters and car alarms.",
]
CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def ask(c: httpx.Client, messages: list[dict[str, str]]) -> httpx.Response:
    return c.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})


def normal_latencies(url: str, repeats: int) -> list[float]:
    out = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=600) as c:
        for _ in range(repeats):
            t0 = time.perf_counter()
            resp = ask(c, [{"role": "user", "content": QUESTION}])
            out.append(ms_since(t0))
            assert resp.status_code == 200, resp.text
    return out


class Load:
    """Client threads that repeat a request until stopped, counting the statuses they got."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.statuses: dict[str, Counter[int]] = {}
        self.upload: str | None = None  # the data set's status URL

    def loop(self, name: str, url: str, key: str | None, request: Callable[[httpx.Client], httpx.Response]) -> None:
        counts: Counter[int] = Counter()
        self.statuses[name] = counts

        def run() -> None:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            with httpx.Client(base_url=url, headers=headers, timeout=600) as c:
                while not self.stop.is_set():
                    try:
                        counts[request(c).status_code] += 1
                    except httpx.HTTPError:
                        counts[-1] += 1  # the server closed a refused upload's connection
        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=600)


LOADS = ("question", "history", "huge", "anonymous", "upload")


def worst_inputs(settings: object) -> dict[str, list[dict[str, str]]]:
    """The longest question and history the bounds allow, and a ~1 MiB question (refused)."""
    app = settings.app  # type: ignore[attr-defined]
    # "why" is one word piece, "why " four characters: as long as the question may be.
    longest = [{"role": "user", "content": "why " * (app.chat_max_question_tokens - 8) + "octopus hearts?"}]
    per = app.chat_max_message_tokens - 8
    n = max(1, app.chat_max_history_tokens // per)
    history = [{"role": "user" if j % 2 == 0 else "assistant", "content": "word " * per} for j in range(n - 1)]
    history = [*history, {"role": "user", "content": "why " * 100 + "octopus?"}]
    huge = [{"role": "user", "content": "why " * (256 * 1024 - 64)}]  # ~1 MiB: refused on its characters
    return {"longest question": longest, "longest history": history, "1 MiB question": huge}


def alone_ms(url: str, messages: list[dict[str, str]], repeats: int = 5) -> tuple[float, int]:
    """Median latency and status of one input on the quiet server, asked ``repeats`` times in a row."""
    times, status = [], 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=600) as c:
        for _ in range(repeats):
            t0 = time.perf_counter()
            status = ask(c, messages).status_code
            times.append(ms_since(t0))
    return statistics.median(times), status


def start_load(url: str, settings: object, long_askers: int, upload_kib: int, snippets: list[float],
               loads: set[str]) -> Load:
    load = Load()
    worst = worst_inputs(settings)
    longest, history, huge = worst["longest question"], worst["longest history"], worst["1 MiB question"]
    for i in range(long_askers if "question" in loads else 0):
        load.loop(f"longest question #{i + 1}", url, KEY, lambda c: ask(c, longest))
    if "history" in loads:
        load.loop("longest history", url, KEY, lambda c: ask(c, history))
    if "huge" in loads:
        load.loop("1 MiB question", url, KEY, lambda c: ask(c, huge))
    # Built once: the load generator shares this process (and its GIL) with the server.
    boundary = "benchbound"
    big = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n".encode()
           + b"x" * (8 * 1024 * 1024) + f"\r\n--{boundary}--\r\n".encode())
    multipart = {"content-type": f"multipart/form-data; boundary={boundary}"}
    if "anonymous" in loads:
        load.loop("anonymous 8 MiB upload", url, None,
                  lambda c: c.post("/v1/datasets", content=big, headers=multipart))
        load.loop("anonymous reads", url, None, lambda c: c.get(f"/v1/contributors/{CONTRIBUTOR}"))

    def upload_and_snippets() -> None:
        # Distinct text each round (a copy would be refused before it is embedded).
        tag = uuid.uuid4().hex[:8]
        line = f"A sentence of upload {tag} about tides, the moon and the sea, number {{}}.\n"
        text = "".join(line.format(i) for i in range(upload_kib * 1024 // len(line)))
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=600) as c:
            resp = c.post("/v1/datasets", files={"file": ("no-breaks.txt", text.encode())},
                          data={"contributor": CONTRIBUTOR})
            assert resp.status_code == 202, resp.text
            location = load.upload = resp.headers["Location"]
            i = 0
            while not load.stop.is_set():
                t0 = time.perf_counter()
                r = c.post("/v1/contributions", json={"text": f"Snippet {i} {time.time()}: a fact about the sea.",
                                                      "contributor": CONTRIBUTOR})
                snippets.append(ms_since(t0))
                assert r.status_code in (201, 409), r.text
                i += 1
                if c.get(location).json()["status"] != "processing":
                    break
                time.sleep(0.2)

    if "upload" in loads:
        thread = threading.Thread(target=upload_and_snippets, name="upload", daemon=True)
        thread.start()
        load.threads.append(thread)
    return load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15, help="normal questions per phase")
    ap.add_argument("--long-askers", type=int, default=4)
    ap.add_argument("--upload-kib", type=int, default=1024)
    ap.add_argument("--loads", default=",".join(LOADS), help=f"which loads run (of {', '.join(LOADS)})")
    ap.add_argument("--smoke", action="store_true", help="one short round (a quick check that it runs)")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.repeats, args.long_askers, args.upload_kib = 1, 5, 2, 64

    from assistant.settings import load_settings
    from retrieval.embedder import load_embedder
    from tests.conftest import start_server  # the same real server the API tests use

    data_dir = Path(tempfile.mkdtemp(prefix="bench-bounds-"))
    settings = load_settings(data_dir=data_dir, dev_api_key=KEY,
                             chat_rate_per_minute=0, write_rate_per_minute=0)
    live = start_server(settings, load_embedder(settings.retrieval))
    try:
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=600) as c:
            for fact in FACTS:
                assert c.post("/v1/contributions", json={"text": fact, "contributor": CONTRIBUTOR}).status_code == 201
        normal_latencies(live.url, 3)  # warm up
        print(f"bounds: question {settings.app.chat_max_question_tokens} tokens, message "
              f"{settings.app.chat_max_message_tokens}, history {settings.app.chat_max_history_tokens}, "
              f"row {settings.retrieval.max_row_chars} chars, batch {settings.retrieval.ingest_batch_chars} chars, "
              f"anonymous {settings.app.anon_rate_per_minute}/min per IP")
        normal, _ = alone_ms(live.url, [{"role": "user", "content": QUESTION}])
        print(f"alone on the quiet server, median of 5: normal question {normal:.1f} ms")
        for name, messages in worst_inputs(settings).items():
            took, status = alone_ms(live.url, messages)
            print(f"  {name:18s} {took:7.1f} ms ({took / normal:5.1f}x), status {status}")
        quiet_all, loaded_all, snippets = [], [], []
        for r in range(args.rounds):
            quiet = normal_latencies(live.url, args.repeats)
            load = start_load(live.url, settings, args.long_askers, args.upload_kib, snippets,
                              set(args.loads.split(",")))
            time.sleep(1.0)  # the load gets going
            try:
                loaded = normal_latencies(live.url, args.repeats)
            finally:
                load.join()
            if load.upload:  # the next quiet phase starts once the upload is read
                with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=600) as c:
                    t0 = time.perf_counter()
                    while (report := c.get(load.upload).json())["status"] == "processing":
                        time.sleep(0.5)
                    print(f"    upload: {report['rows']} rows, {report['chunks_stored']} chunks stored, "
                          f"{report['rows_rejected']} rows rejected, read {time.perf_counter() - t0:.0f} s after the load")
            quiet_all += quiet
            loaded_all += loaded
            print(f"round {r + 1}: quiet median {statistics.median(quiet):7.1f} ms   loaded median "
                  f"{statistics.median(loaded):7.1f} ms   ratio {statistics.median(loaded) / statistics.median(quiet):5.2f}")
            for name, counts in load.statuses.items():
                print(f"    {name:26s} {dict(sorted(counts.items()))}")
        q, lo = statistics.median(quiet_all), statistics.median(loaded_all)
        print(f"\nnormal question, median of {len(quiet_all)}: quiet {q:.1f} ms, under the worst allowed inputs "
              f"{lo:.1f} ms (max {max(loaded_all):.1f} ms): ratio {lo / q:.2f}")
        if snippets:
            print(f"snippets posted during the upload: {len(snippets)}, median {statistics.median(snippets):.0f} ms, "
                  f"max {max(snippets):.0f} ms")
    finally:
        live.stop()


if __name__ == "__main__":
    main()
