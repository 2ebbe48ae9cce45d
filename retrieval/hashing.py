"""Normalisation and content hashing: the identity of a chunk's text."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Fold the differences that do not change what a text says: Unicode form, case, spacing."""
    text = unicodedata.normalize("NFKC", text)
    return _SPACE.sub(" ", text).strip().casefold()


def content_hash(text: str) -> str:
    """Hex sha256 of the normalised text; equal for texts that differ only in form."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()
