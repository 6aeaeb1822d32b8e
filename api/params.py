"""Query-string parsing for the read API: every bad value becomes a ``ParamError`` naming its parameter.

The API is strict on purpose: a typo in a script (``sevrity=high``, ``page_size=5000``) is a 400 that
says which parameter is wrong and what it accepts, never a silently different answer.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from werkzeug.datastructures import MultiDict


class ParamError(ValueError):
    """A query parameter the API cannot use; rendered as HTTP 400 ``{error, parameter, allowed}``."""

    def __init__(self, parameter: str, message: str, allowed: Sequence[str] | None = None):
        super().__init__(message)
        self.parameter = parameter
        self.message = message
        self.allowed = list(allowed) if allowed is not None else None

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.message, "parameter": self.parameter}
        if self.allowed is not None:
            body["allowed"] = self.allowed
        return body


_UNITS_MS = {"s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|min|m|h|d|w)$", re.IGNORECASE)
# A "+hh:mm" offset arrives as " hh:mm" when the caller did not percent-encode the "+".
_SPACED_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")
MAX_AGE_MS = 36_500 * 86_400_000
TIME_HELP = "ISO-8601 (2026-11-22T06:00:00Z; no offset means UTC), 'now', or an age like 30m, 24h, 7d, 2w"


def reject_unknown(args: MultiDict[str, str], known: Iterable[str]) -> None:
    known = tuple(known)
    for name in args:
        if name not in known:
            raise ParamError(name, f"unknown parameter {name!r}", sorted(known))


def one(args: MultiDict[str, str], name: str) -> str | None:
    """The parameter's single value (stripped), ``None`` when absent or empty; repeated → error."""
    values = [v.strip() for v in args.getlist(name)]
    values = [v for v in values if v]
    if len(values) > 1:
        raise ParamError(name, f"{name} is given {len(values)} times; give it once")
    return values[0] if values else None


def choices(args: MultiDict[str, str], name: str, allowed: Sequence[str],
            aliases: dict[str, Sequence[str]] | None = None) -> tuple[str, ...]:
    """A comma-separated (or repeated) list of words from ``allowed``, lower-cased, de-duplicated."""
    aliases = aliases or {}
    found: list[str] = []
    for value in args.getlist(name):
        for word in value.split(","):
            word = word.strip().lower()
            if not word:
                continue
            expanded = aliases.get(word, (word,))
            for item in expanded:
                if item not in allowed:
                    raise ParamError(name, f"{name} {word!r} is not one of {', '.join([*allowed, *aliases])}",
                                     [*allowed, *aliases])
                if item not in found:
                    found.append(item)
    return tuple(found)


def integer(args: MultiDict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = one(args, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ParamError(name, f"{name} must be a whole number from {low} to {high}, not {text!r}") from None
    if not low <= value <= high:
        raise ParamError(name, f"{name} must be from {low} to {high}, not {value}")
    return value


def text(args: MultiDict[str, str], name: str, max_chars: int = 200) -> str | None:
    value = one(args, name)
    if value is not None and len(value) > max_chars:
        raise ParamError(name, f"{name} is longer than {max_chars} characters")
    return value


def boolean(args: MultiDict[str, str], name: str) -> bool | None:
    value = one(args, name)
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ParamError(name, f"{name} must be true or false, not {value!r}", ["true", "false"])


def parse_time(name: str, value: str, now_ms: int) -> int:
    """``value`` as epoch ms (UTC): ISO-8601, ``now``, or an age before ``now_ms`` (``24h``, ``7d``)."""
    raw = value.strip()
    if raw.lower() == "now":
        return now_ms
    relative = _RELATIVE.match(raw)
    if relative:
        age_ms = int(float(relative[1]) * _UNITS_MS[relative[2].lower()])
        if age_ms > MAX_AGE_MS:
            raise ParamError(name, f"{name} {value!r} is more than 100 years ago")
        return now_ms - age_ms
    iso = _SPACED_OFFSET.sub(r"\1+\2", raw)
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ParamError(name, f"{name} {value!r} is not a time: use {TIME_HELP}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def time(args: MultiDict[str, str], name: str, now_ms: int) -> int | None:
    value = one(args, name)
    return None if value is None else parse_time(name, value, now_ms)
