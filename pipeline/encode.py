"""Compact JSON for row columns, fast: orjson where it gives the same text, ``json`` otherwise.

Output is what ``store.db.dumps`` writes (compact separators, UTF-8 kept, ``str()`` of anything JSON
has no type for, ``None`` for empty values), with two deliberate differences, both only for floats
that sensors rarely send: a small exponent is written ``1e-7`` rather than ``1e-07`` (the same number),
and NaN / ±Infinity, which are not JSON, are written ``null`` (strict readers such as PostgreSQL's
``json`` type and browsers refuse Python's ``NaN``). Strings are escaped exactly alike (checked over
every code point). What orjson refuses (integers beyond 64 bits, non-string keys, lone surrogates)
goes through the standard library encoder. Measured: about 10x faster than ``json`` on an EVE
``extra`` dict, which is encoded once per event.
"""
from __future__ import annotations

import json

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency; keep working without it
    orjson = None

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode

if orjson is not None:
    _dumps = orjson.dumps
    # datetimes and dataclasses go to ``default=str`` as with ``json``, not to orjson's own formats.
    _OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def _fast(value: object) -> str:
        try:
            return _dumps(value, default=str, option=_OPTIONS).decode()
        except TypeError:  # orjson.JSONEncodeError: a type or value only ``json`` writes
            return _ENCODE(value)
else:  # pragma: no cover
    _fast = _ENCODE


encode = _fast
"""Compact JSON text of any value (``to_json`` without the empty-value rule)."""


def to_json(value: object) -> str | None:
    """Compact JSON text, or ``None`` for ``None`` and empty containers (nothing to store)."""
    return _fast(value) if value else None
