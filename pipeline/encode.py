"""Compact JSON for row columns, fast: one encoder for the process.

``json.dumps`` with non-default options builds a new ``JSONEncoder`` on every call; at tens of
thousands of rows a second that was the largest single cost of a batch. Output is the same as
``store.db.dumps``: compact separators, UTF-8 kept, ``None`` for empty values.
"""
from __future__ import annotations

import json

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def to_json(value: object) -> str | None:
    """Compact JSON text, or ``None`` for ``None`` and empty containers (nothing to store)."""
    return _ENCODE(value) if value else None
