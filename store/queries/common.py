"""What every reader of the store shares: time units, the incident statuses, and the typed frames
(``_frame``) and severity words (``_label``/``_level``) every query returns its rows in."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from store.records import Severity

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
OPEN_STATUSES: tuple[str, ...] = ("new", "acknowledged", "investigating")
STATUSES: tuple[str, ...] = ("new", "acknowledged", "investigating", "resolved", "false_positive")


# --- typed frames ------------------------------------------------------------------------------

def _empty_like(kind: str) -> str:
    return {"time": "datetime64[ms, UTC]", "int": "int64", "Int": "Int64", "float": "float64",
            "str": "str", "bool": "bool", "object": "object"}[kind]


def _frame(rows: Iterable[Sequence[Any]], spec: dict[str, str]) -> pd.DataFrame:
    """Rows → DataFrame with exactly ``spec``'s columns and dtypes (``time`` = epoch ms → UTC)."""
    rows = list(rows)
    columns = list(zip(*rows)) if rows else [()] * len(spec)
    data: dict[str, Any] = {}
    for (name, kind), values in zip(spec.items(), columns):
        if kind == "time":
            ms = np.array([np.nan if v is None else v for v in values], dtype="float64").astype("datetime64[ms]")
            data[name] = pd.Series(pd.DatetimeIndex(ms).tz_localize("UTC"))
        else:
            data[name] = pd.Series(list(values), dtype=_empty_like(kind))
    return pd.DataFrame(data, columns=list(spec), copy=False)


_LABELS: dict[int, str] = {int(s): s.label for s in Severity}


def _label(level: int | None) -> str:
    if level is None:
        return ""
    try:
        return Severity(int(level)).label
    except ValueError:
        return "unknown"


def _level(label: str) -> int:
    return int(Severity.from_label(label))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    return [value]
