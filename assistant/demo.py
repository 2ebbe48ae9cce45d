"""The bundled demo knowledge: ~45 original short snippets, contributed through the running API
when the knowledge base is empty, so the first question of a fresh `make run` gets a cited answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEMO_FILE = Path(__file__).with_name("demo_knowledge.jsonl")
# anvil's second deterministic dev account: its key is public, so on the dev chain anyone can
# cash the demo contributor's vouchers to see a claim work end to end.
DEMO_CONTRIBUTOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
DEMO_LICENCE = "CC0-1.0"
# Present while seeding is unfinished: a start interrupted mid-way resumes it. Re-sending every
# snippet is harmless: the intake refuses a copy of stored text with 409, which counts as
# "already there", never as a failure.
PENDING_MARKER = "demo-knowledge.pending"
DUPLICATE = "duplicate_content"  # the error code of that 409 (assistant/api/knowledge.py)


class SeedError(RuntimeError):
    """The API refused or failed a demo snippet for another reason than holding it already."""


@dataclass(frozen=True)
class Seeded:
    """What one seeding did: chunks it stored, and snippets the knowledge base already held."""

    chunks: int
    already: int


@dataclass(frozen=True)
class Snippet:
    title: str
    text: str


def load_demo(path: Path = DEMO_FILE) -> list[Snippet]:
    """The demo snippets, in file order."""
    with path.open(encoding="utf-8") as f:
        return [Snippet(row["title"], row["text"]) for row in map(json.loads, f) if row]


def _post(url: str, api_key: str, body: dict[str, object], timeout: float) -> dict[str, object] | None:
    """The stored contribution, or None when the API refused the text as a copy (409)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            error = json.loads(detail)["error"]
        except (ValueError, KeyError, TypeError):
            error = {"message": detail[:300]}
        if exc.code == 409 and error.get("code") == DUPLICATE:
            return None
        raise SeedError(f"POST {url} answered {exc.code}: {error.get('message')}") from None


def demo_pending(data_dir: Path, chunks_now: int) -> bool:
    """Whether the demo set is to be (re)sent: an empty knowledge base, or an unfinished seeding."""
    return chunks_now == 0 or (data_dir / PENDING_MARKER).exists()


def seed_demo(base_url: str, api_key: str, data_dir: Path, chunks_now: int, timeout: float = 60.0) -> Seeded | None:
    """Contribute the demo set through POST /v1/contributions when the knowledge base is empty
    (or an earlier seeding was interrupted). None when not needed; SeedError when the API
    refuses a snippet for another reason than holding it already (the next start retries)."""
    if not demo_pending(data_dir, chunks_now):
        return None
    marker = data_dir / PENDING_MARKER
    marker.touch()
    stored = already = 0
    for snippet in load_demo():
        reply = _post(f"{base_url}/v1/contributions", api_key, {
            "text": snippet.text, "title": snippet.title, "contributor": DEMO_CONTRIBUTOR,
            "source": "OpenChat demo knowledge", "licence": DEMO_LICENCE}, timeout)
        if reply is None:
            already += 1
        else:
            stored += int(reply.get("chunks_stored", 0))  # type: ignore[call-overload]
    marker.unlink()
    return Seeded(stored, already)
