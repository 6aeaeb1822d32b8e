"""Turning query results into the API's JSON: ISO-8601 UTC times, ``null`` for missing, plain types.

Pure functions of their arguments (no Flask), so every rule is unit-tested without a server.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd


def iso(value: Any) -> str | None:
    """A time as ``2026-11-22T06:00:00Z`` (``.123Z`` when it has milliseconds), ``None`` for missing.

    Accepts epoch milliseconds, an aware ``datetime`` / ``pandas.Timestamp``, ``None`` or ``NaT``.
    """
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        ms = int(value)
    elif isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        ms = int(value)
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: the API only writes UTC times")
        stamp = value if isinstance(value, pd.Timestamp) else pd.Timestamp(value)
        ms = int(stamp.value // 1_000_000)  # ``value`` is nanoseconds whatever the unit
    else:
        raise TypeError(f"not a time: {value!r}")
    seconds, millis = divmod(ms, 1000)
    text = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def plain(value: Any) -> Any:
    """A pandas/numpy value as a JSON value: ``NaN``/``NA``/``NaT`` → ``None``, times → ISO text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime)):
        return iso(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    return value


def rows(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The frame's rows as JSON objects (``columns`` picks and orders the keys)."""
    names = list(columns) if columns is not None else list(frame.columns)
    return [{name: plain(value) for name, value in zip(names, values)}
            for values in frame[names].itertuples(index=False, name=None)]


def blank_to_none(value: Any) -> Any:
    return None if value == "" else value


def json_or_text(text: str | None) -> tuple[Any, str]:
    """A stored record as ``(value, "json")`` when it is a JSON object or array, else ``(text, "text")``."""
    if text is None:
        return None, "text"
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(text), "json"
        except ValueError:
            pass
    return text, "text"


def decoded(text: str | None, default: Any) -> Any:
    """A JSON column's value (``default`` when empty); undecodable text is returned as it is."""
    if text is None or text == "":
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
