"""Shared building blocks of the feed formats: errors, outcomes, text input, field lookup, time, indicators.

**Outcomes.** Every unit of input (a line, a CSV row, a JSON record, a STIX object, a MISP
attribute) ends as exactly one outcome, so a run can account for all of its input:

* a record (``Indicator``, ``Advisory``, ...); one unit may give several (a STIX ``OR`` pattern);
* ``Rejected(reason, location, sample)``: the unit cannot be used (bad value, broken row);
* ``Rejected`` whose reason starts with ``filtered:``: good input that ``source.filters`` leaves
  out (a private address, an unwanted type, too little confidence). Not an error;
* ``Rejected`` whose reason starts with ``skipped:``: valid input that holds no record of this
  kind (a STIX ``malware`` object, a MISP ``link`` attribute, the Spamhaus metadata line).

``outcome(record)`` names which one a record is and ``tally(records)`` counts them. Comment lines,
blank lines and headers are not units and give nothing.

**FormatError** means the payload as a whole is not what the feed should deliver (an HTML error
page, a CSV whose header lost a mapped column, a JSON document cut short). The collector turns it
into a failed run and keeps the last good data; it is never raised for one bad row.

Values are typed and normalised by ``values.canonical`` (re-exported here with ``classify`` and
``normalise``); see that module for the rules.
"""
from __future__ import annotations

import io
import ipaddress
import math
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectors.formats.values import canonical, classify, normalise
from settings.sources import Mapping, SourceConfig, TimeField
from store.records import INDICATOR_TYPES, Advisory, Indicator, Rejected

__all__ = [
    "FormatError", "FILTERED", "SKIPPED", "filtered", "skipped", "outcome", "tally",
    "check_start", "iter_lines", "peek_head", "dotted", "parse_time", "mapping_fields",
    "build_indicator", "make_indicator", "tlp_label", "strictest_tlp", "MAPPABLE_TYPES",
    "canonical", "classify", "normalise", "MAX_LINE_BYTES",
]

MAX_LINE_BYTES = 1024 * 1024  # a longer "line" is binary junk or a missing newline, not a feed row
FILTERED = "filtered"
SKIPPED = "skipped"
TLP_ORDER = ("clear", "green", "amber", "amber+strict", "red")
# What ``mapping.type`` / ``type_map`` may name: the record types plus the detecting pseudo-types.
MAPPABLE_TYPES = (*INDICATOR_TYPES, "auto", "ip", "hash", "ip:port")
_BOM = b"\xef\xbb\xbf"
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip"}


class FormatError(Exception):
    """The payload as a whole is not what this feed should be; the run fails and the last good data stays."""


def filtered(reason: str, location: str = "", sample: str = "") -> Rejected:
    return Rejected(f"{FILTERED}: {reason}", location, sample)


def skipped(reason: str, location: str = "", sample: str = "") -> Rejected:
    return Rejected(f"{SKIPPED}: {reason}", location, sample)


def outcome(record: object) -> str:
    """``indicator``, ``advisory``, ``rejected``, ``filtered``, ``skipped`` (or a format's own record name)."""
    if isinstance(record, Rejected):
        for kind in (FILTERED, SKIPPED):
            if record.reason.startswith(kind + ":"):
                return kind
        return "rejected"
    if isinstance(record, Indicator):
        return "indicator"
    if isinstance(record, Advisory):
        return "advisory"
    return type(record).__name__.lower()


def tally(records: Iterable[object]) -> dict[str, int]:
    """Counts per outcome, plus ``matchable`` / ``not_matchable`` / ``revoked`` among indicators."""
    counts = dict.fromkeys(("indicator", "matchable", "not_matchable", "revoked",
                            "advisory", "rejected", "filtered", "skipped"), 0)
    for record in records:
        kind = outcome(record)
        counts[kind] = counts.get(kind, 0) + 1
        if isinstance(record, Indicator):
            counts["matchable" if record.matchable else "not_matchable"] += 1
            counts["revoked"] += record.revoked
    return counts


# --- reading text ------------------------------------------------------------------------------

def check_start(head: bytes, expected: str) -> None:
    """Fail loudly when a feed answers with an HTML page (login, error, captcha) or compressed bytes."""
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            raise FormatError(f"expected {expected}, got {name}-compressed data (the transport should decompress it)")
    if head.removeprefix(_BOM).lstrip()[:16].lower().startswith(_HTML_STARTS):
        raise FormatError(f"expected {expected}, got an HTML page")


def peek_head(payload: BinaryIO, size: int) -> tuple[bytes, BinaryIO]:
    """Up to ``size`` first bytes, and a stream that still starts with them (the caller's is not closed)."""
    seekable = payload.seekable()
    start = payload.tell() if seekable else 0
    chunks: list[bytes] = []
    while (wanted := size - sum(map(len, chunks))) > 0 and (chunk := payload.read(wanted)):
        chunks.append(chunk)  # a socket may hand out a few bytes per read
    head = b"".join(chunks)
    if seekable:
        payload.seek(start)
        return head, payload
    return head, io.BufferedReader(_Prefixed(head, payload))  # type: ignore[return-value]


class _Prefixed(io.RawIOBase):
    """Replays bytes already read from a one-way stream, then reads on (closing it leaves the stream open)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._head[:len(buffer)] if self._head else self._rest.read(len(buffer))
        self._head = self._head[len(data):] if self._head else b""
        buffer[:len(data)] = data
        return len(data)


def iter_lines(payload: BinaryIO, expected: str) -> Iterator[tuple[int, str | Rejected]]:
    """``(line number, text)`` for each line, streamed; an unreadable line comes as a ``Rejected``.

    Line ends are removed. The first non-blank line is checked with ``check_start``.
    """
    lineno = 0
    checked = False
    while raw := payload.readline(MAX_LINE_BYTES + 1):
        lineno += 1
        location = f"line {lineno}"
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (more := payload.readline(MAX_LINE_BYTES)) and not more.endswith(b"\n"):
                pass  # drop the rest of the overlong line without holding it
            yield lineno, Rejected(f"line longer than {MAX_LINE_BYTES} bytes", location, raw[:200].decode("utf-8", "replace"))
            continue
        if lineno == 1:
            raw = raw.removeprefix(_BOM)
        if not checked and raw.strip():
            check_start(raw, expected)
            checked = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield lineno, Rejected(f"not UTF-8 text (bad byte at column {exc.start + 1})", location, raw.decode("utf-8", "replace"))
            continue
        yield lineno, text.rstrip("\r\n")


# --- fields and times ----------------------------------------------------------------------------

def dotted(record: Any, path: str) -> Any:
    """The value at a dotted path (``a.b.0.c``: keys and list indexes) or ``None`` when absent."""
    if isinstance(record, dict) and path in record:
        return record[path]  # a key that itself contains dots
    current = record
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isascii() and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
        if current is None:
            return None
    return current


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # A wrong zone is a configuration fault that would skew every row: fail the run.
        raise FormatError(f"unknown time zone {name!r} in the mapping (use an IANA name such as Europe/Paris)") from None


def parse_time(value: Any, spec: TimeField) -> datetime | None:
    """A UTC datetime from a feed value; ``None`` when the value is absent or empty.

    ``spec.format`` is ``iso`` (ISO 8601; a bare date means midnight), ``epoch`` (seconds),
    ``epoch_ms`` (milliseconds) or a ``strptime`` pattern. Times without an offset are read in
    ``spec.tz`` (never the host's zone). Raises ``ValueError`` for a value that does not fit.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if spec.format in ("epoch", "epoch_ms"):
        return _epoch(value, 1000 if spec.format == "epoch_ms" else 1)
    if not isinstance(value, str):
        raise ValueError(f"expected text for format {spec.format!r}, got {type(value).__name__}")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text) if spec.format == "iso" else datetime.strptime(text, spec.format)
    except ValueError:
        raise ValueError(f"{text[:40]!r} does not match the time format {spec.format!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(spec.tz))
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{text[:40]!r} is out of range") from None


def _epoch(value: Any, divisor: int) -> datetime:
    try:
        number = int(value) if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{str(value)[:40]!r} is not a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    try:
        return datetime.fromtimestamp(number / divisor, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{str(value)[:40]!r} is out of range") from None


def mapping_fields(mapping: Mapping) -> list[str]:
    """Every field the mapping reads, in mapping order (used to check a header before any row)."""
    fields = [mapping.value, mapping.type_field,
              mapping.first_seen.field if mapping.first_seen else None,
              mapping.last_seen.field if mapping.last_seen else None,
              mapping.tags_field, mapping.malware, mapping.port, mapping.description, mapping.confidence]
    return list(dict.fromkeys(f for f in fields if f))


# --- building indicators -------------------------------------------------------------------------

def tlp_label(text: Any) -> str | None:
    """``TLP:WHITE`` / ``tlp:amber+strict`` / ``Green`` -> our label (``white`` is ``clear``); else ``None``."""
    if not isinstance(text, str):
        return None
    label = text.strip().lower().removeprefix("tlp:").strip()
    label = "clear" if label == "white" else label
    return label if label in TLP_ORDER else None


def strictest_tlp(labels: Iterable[str | None]) -> str | None:
    known = [label for label in labels if label in TLP_ORDER]
    return max(known, key=TLP_ORDER.index) if known else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _port(value: Any) -> int | None:
    text = _text(value)
    if text is None:
        return None
    if isinstance(value, bool) or not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{text[:20]!r} is not a port number")
    return int(text)


def _confidence(value: Any) -> int | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text[:20]!r} is not a number") from None
    if isinstance(value, bool) or not 0 <= number <= 100:
        raise ValueError(f"{text[:20]!r} is not within 0-100")
    return round(number)


def _tags(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split(",") if value is not None else []
    return tuple(t for t in (_text(item) for item in items) if t)


def build_indicator(get: Callable[[str], Any], source: SourceConfig, *, location: str, raw: str,
                    value: Any = None, description: str | None = None) -> Indicator | Rejected:
    """One indicator from one row, following ``source.mapping`` (then ``make_indicator``).

    ``get(field)`` reads a field of the row (a column name or index, a dotted path) and returns
    ``None`` when it is absent. ``value`` replaces ``mapping.value`` when the format computes the
    value itself (the ``lines`` format); ``description`` is the default when the mapping has none.
    """
    mapping = source.mapping
    if value is None and mapping.value:
        value = get(mapping.value)
    if _text(value) is None:
        return Rejected(f"no value in field {mapping.value!r}" if mapping.value else "no value", location, raw)
    kind = mapping.type
    if kind not in MAPPABLE_TYPES:
        raise FormatError(f"mapping.type {kind!r} is not one of {', '.join(MAPPABLE_TYPES)}")
    if mapping.type_field:
        # The feed's own type word, translated by type_map; a word we do not track is skipped.
        feed_type = _text(get(mapping.type_field)) or ""
        kind = mapping.type_map.get(feed_type, feed_type)
        if kind not in MAPPABLE_TYPES:
            return skipped(f"type {feed_type!r} is not mapped to an indicator type", location, raw)
    role = "value"
    try:
        if kind == "ip:port":
            value, carried_port = _split_ip_port(str(value).strip())
            kind = "ip"
        else:
            carried_port = None
        role = "first_seen"
        first_seen = parse_time(get(mapping.first_seen.field), mapping.first_seen) if mapping.first_seen else None
        role = "last_seen"
        last_seen = parse_time(get(mapping.last_seen.field), mapping.last_seen) if mapping.last_seen else None
        role = "port"
        port = _port(get(mapping.port)) if mapping.port else None
        port = carried_port if port is None else port
        role = "confidence"
        confidence = _confidence(get(mapping.confidence)) if mapping.confidence else None
    except ValueError as exc:
        return Rejected(f"{role}: {exc}", location, raw)
    return make_indicator(
        kind, value, source, location=location, raw=raw,
        first_seen=first_seen, last_seen=last_seen, port=port, confidence=confidence,
        tags=_tags(get(mapping.tags_field)) if mapping.tags_field else (),
        malware=_text(get(mapping.malware)) if mapping.malware else None,
        description=_text(get(mapping.description)) if mapping.description else description,
    )


def _split_ip_port(text: str) -> tuple[str, int | None]:
    """``198.51.100.1:443`` / ``[2001:db8::1]:443`` -> address and port (ThreatFox ``ip:port``)."""
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        address, _, port = text.partition(":")
    else:
        return text, None  # a bare address (IPv6 without brackets has no room for a port)
    return address, _port(port)


def make_indicator(kind: str, value: Any, source: SourceConfig, *, location: str, raw: str,
                   first_seen: datetime | None = None, last_seen: datetime | None = None,
                   confidence: int | None = None, tlp: str | None = None, tags: Iterable[str] = (),
                   malware: str | None = None, port: int | None = None, description: str | None = None,
                   matchable: bool = True, revoked: bool = False, verbatim: bool = False) -> Indicator | Rejected:
    """Type and normalise ``value``, apply ``source.filters`` and the feed's TLP/confidence defaults.

    Returns the ``Indicator``, a ``Rejected`` for a value that cannot be used, or a ``filtered:``
    one when a filter leaves it out. ``mapping.tags`` are added to every indicator. ``verbatim``
    keeps ``kind`` and the value as given: for context-only records such as a whole STIX pattern.
    """
    try:
        if verbatim:
            final_kind, final_value = kind, str(value).strip()
        else:
            final_kind, final_value = canonical(kind, value)
    except ValueError as exc:
        label = kind if kind != "auto" else classify(str(value)) or "value"
        return Rejected(f"bad {label}: {exc}", location, raw or str(value))
    rules = source.filters
    confidence = source.confidence if confidence is None else confidence
    if rules.types is not None and final_kind not in rules.types:
        return filtered(f"type {final_kind} is not in filters.types", location, raw)
    if rules.exclude_private and final_kind in ("ipv4", "ipv6", "cidr") and _not_public(final_value):
        return filtered("private or reserved address", location, raw)
    if confidence < rules.min_confidence:
        return filtered(f"confidence {confidence} is below filters.min_confidence {rules.min_confidence}", location, raw)
    return Indicator(
        type=final_kind, value=final_value, feed=source.id, raw=raw,
        first_seen=first_seen, last_seen=last_seen, confidence=confidence, tlp=tlp or source.tlp,
        tags=tuple(dict.fromkeys([*source.mapping.tags, *tags])), malware=malware, port=port,
        description=description, matchable=matchable, revoked=revoked,
    )


def _not_public(value: str) -> bool:
    """Private, loopback, link-local, documentation, shared (CGNAT), multicast or reserved space."""
    # A plain address is much cheaper to test than a one-address network.
    target = ipaddress.ip_network(value) if "/" in value else ipaddress.ip_address(value)
    return not target.is_global or target.is_multicast or target.is_reserved
