"""Path and body types for database row ids, shared by every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Row ids are 64-bit integers in SQLite and PostgreSQL: a larger one is the client's error
# (422 → 400), never an overflow inside the driver (500).
MAX_ID = 2**63 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
