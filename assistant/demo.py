"""The bundled demo knowledge: ~45 original short snippets, contributed through the running API
when the knowledge base is empty, so the first question of a fresh `make run` gets a cited answer."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEMO_FILE = Path(__file__).with_name("demo_knowledge.jsonl")
# anvil's second deterministic dev account: its key is public, so on the dev chain anyone can
# cash the demo contributor's vouchers to see a claim work end to end.
DEMO_CONTRIBUTOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
DEMO_LICENCE = "CC0-1.0"
# Present while seeding is unfinished: a start interrupted mid-way resumes it (copies of what
# already went in are refused by the intake, so re-sending everything is harmless).
PENDING_MARKER = "demo-knowledge.pending"


@dataclass(frozen=True)
class Snippet:
    title: str
    text: str


def load_demo(path: Path = DEMO_FILE) -> list[Snippet]:
    """The demo snippets, in file order."""
    with path.open(encoding="utf-8") as f:
        return [Snippet(row["title"], row["text"]) for row in map(json.loads, f) if row]


def _post(url: str, api_key: str, body: dict[str, object], timeout: float) -> dict[str, object]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def seed_demo(base_url: str, api_key: str, data_dir: Path, chunks_now: int, timeout: float = 60.0) -> int | None:
    """Contribute the demo set through POST /v1/contributions when the knowledge base is empty
    (or an earlier seeding was interrupted). Returns chunks stored, or None when not needed."""
    marker = data_dir / PENDING_MARKER
    if chunks_now > 0 and not marker.exists():
        return None
    marker.touch()
    stored = 0
    for snippet in load_demo():
        reply = _post(f"{base_url}/v1/contributions", api_key, {
            "text": snippet.text, "title": snippet.title, "contributor": DEMO_CONTRIBUTOR,
            "source": "OpenChat demo knowledge", "licence": DEMO_LICENCE}, timeout)
        stored += int(reply.get("chunks_stored", 0))  # type: ignore[call-overload]
    marker.unlink()
    return stored
