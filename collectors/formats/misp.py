"""MISP events as a MISP feed serves them, one ``<uuid>.json`` per event (``format: misp``).

The file format (numbers are often strings; ``to_ids`` is a boolean or ``"0"``/``"1"``)::

    {"Event": {"uuid": "57c4445b-...", "info": "Ransomware - Xorist", "timestamp": "1472541011",
      "Tag": [{"name": "tlp:white"}, {"name": "circl:incident-classification=\\"malware\\""}],
      "Attribute": [{"uuid": "57c4448b-...", "type": "md5", "category": "Payload delivery",
                     "value": "0749bae92ca336a02c83d126e04ec628", "to_ids": true,
                     "timestamp": "1472480395", "comment": "...", "first_seen": null, "Tag": []}],
      "Object": [{"name": "file", "Attribute": [...]}]}}

``manifest.json`` (``{event uuid: {"timestamp": "...", "info": ..., "Tag": [...]}}``) lists the
events; ``manifest_events`` picks the ones newer than the collector's cursor.

Rules:

* Attributes of the event and of its objects are read. Types map as in ``ATTRIBUTE_TYPES``:
  ``ip-src``/``ip-dst`` (address or CIDR), ``ip-src|port``, ``domain``, ``hostname``,
  ``domain|ip`` (two indicators), ``hostname|port``, ``url``, ``md5``/``sha1``/``sha256``,
  ``filename|<hash>`` (the filename becomes the description), ``email``/``email-src``/
  ``email-dst``, ``ja3-fingerprint-md5``, ``AS``. Other types (``link``, ``comment``,
  ``filename``, ``regkey``, ...) are skipped.
* ``to_ids`` false: the indicator is kept with ``matchable=False`` (context, never an alert), or
  skipped with ``to_ids_only: true``. ``deleted`` true: the indicator comes with
  ``revoked=True`` so the store expires it.
* TLP: the strictest ``tlp:`` tag of the attribute, else of the event, else the feed's
  (``tlp:white`` is ``clear``). Other event and attribute tags become tags.
* ``first_seen``/``last_seen`` (ISO 8601) when set, else the attribute ``timestamp`` (epoch
  seconds), else the event's. Description: the attribute comment, else the event ``info``.
* The payload is one JSON document (``{"Event": ...}``, a bare event, ``{"response": [...]}`` or a
  list of those); a payload that does not parse fails the run.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from pydantic import Field

from collectors.formats.common import (
    FormatError, check_start, make_indicator, parse_time, skipped, strictest_tlp, tlp_label,
)
from settings.base import StrictModel
from settings.sources import SourceConfig, TimeField
from store.records import Indicator, Rejected

FORMAT = "misp"
KIND = "indicators"

# MISP attribute type -> the role of each '|'-separated part ("port" and "filename" are context).
ATTRIBUTE_TYPES: dict[str, tuple[str, ...]] = {
    "ip-src": ("ip",), "ip-dst": ("ip",), "ip-src|port": ("ip", "port"), "ip-dst|port": ("ip", "port"),
    "domain": ("domain",), "hostname": ("domain",), "domain|ip": ("domain", "ip"), "hostname|port": ("domain", "port"),
    "url": ("url",), "md5": ("md5",), "sha1": ("sha1",), "sha256": ("sha256",),
    "filename|md5": ("filename", "md5"), "filename|sha1": ("filename", "sha1"), "filename|sha256": ("filename", "sha256"),
    "email": ("email",), "email-src": ("email",), "email-dst": ("email",),
    "ja3-fingerprint-md5": ("ja3",), "AS": ("asn",),
}
_ISO = TimeField(field="first_seen", format="iso")
_EPOCH = TimeField(field="timestamp", format="epoch")


class Options(StrictModel):
    to_ids_only: bool = Field(default=False, description="skip attributes whose to_ids is false instead of "
                                                        "keeping them as context (matchable=False)")


def parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Indicator | Rejected]:
    data = payload.read()
    check_start(data[:64], "MISP event JSON")
    try:
        document = json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"payload is not valid JSON: {exc}") from None
    for event in _events(document):
        event_tags, event_tlp = _tags(event.get("Tag"))
        context = {"tags": event_tags, "tlp": event_tlp, "info": _text(event.get("info")),
                   "timestamp": event.get("timestamp")}
        attributes = [*_list(event.get("Attribute")),
                      *(a for obj in _list(event.get("Object")) if isinstance(obj, dict) for a in _list(obj.get("Attribute")))]
        for number, attribute in enumerate(attributes, start=1):
            yield from _attribute(attribute, number, context, source, options)


def manifest_events(manifest: bytes, since_timestamp: int | None = None,
                    problems: list[str] | None = None) -> list[tuple[str, int]]:
    """``(event uuid, timestamp)`` of the events newer than ``since_timestamp``, oldest first.

    A manifest that is not a JSON object raises ``FormatError``. A malformed entry is left out
    and described in ``problems`` (when given) so one bad entry does not block the feed.
    """
    try:
        document = json.loads(manifest.removeprefix(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FormatError("manifest.json should be an object of event uuid -> event summary")
    found: list[tuple[str, int]] = []
    for key, entry in document.items():
        try:
            event_uuid = str(uuid.UUID(key))
            stamp = entry.get("timestamp") if isinstance(entry, dict) else None
            if isinstance(stamp, bool) or not str(stamp).isascii() or not str(stamp).isdigit():
                raise ValueError(f"timestamp {stamp!r} is not epoch seconds")
        except ValueError as exc:
            if problems is not None:
                problems.append(f"manifest entry {key[:60]!r}: {exc}")
            continue
        if since_timestamp is None or int(stamp) > since_timestamp:
            found.append((event_uuid, int(stamp)))
    return sorted(found, key=lambda item: (item[1], item[0]))


def _events(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, list):
        return [e for item in document for e in _events(item)]
    if isinstance(document, dict) and isinstance(document.get("Event"), dict):
        return [document["Event"]]
    if isinstance(document, dict) and isinstance(document.get("response"), list):
        return _events(document["response"])
    if isinstance(document, dict) and ("Attribute" in document or "Object" in document):
        return [document]
    raise FormatError("expected a MISP event ({\"Event\": {...}})")


def _attribute(attribute: Any, number: int, event: dict[str, Any], source: SourceConfig,
               options: Options) -> Iterator[Indicator | Rejected]:
    if not isinstance(attribute, dict):
        yield Rejected("attribute is not an object", f"attribute {number}", str(attribute))
        return
    location = f"attribute {attribute.get('uuid') or number}"
    raw = json.dumps(attribute, separators=(",", ":"), ensure_ascii=False)
    kind, value = attribute.get("type"), attribute.get("value")
    roles = ATTRIBUTE_TYPES.get(kind) if isinstance(kind, str) else None
    if roles is None:
        yield skipped(f"MISP type {kind!r} is not an indicator type", location, raw)
        return
    to_ids = _flag(attribute.get("to_ids"))
    if not to_ids and options.to_ids_only:
        yield skipped("to_ids is false", location, raw)
        return
    parts = value.split("|") if isinstance(value, str) else []
    if len(parts) != len(roles):
        yield Rejected(f"{kind} value should be {len(roles)} part(s) separated by '|'", location, raw)
        return
    try:
        stamp = attribute.get("timestamp") or event["timestamp"]
        first_seen = parse_time(attribute.get("first_seen"), _ISO) or parse_time(stamp, _EPOCH)
        last_seen = parse_time(attribute.get("last_seen"), _ISO) or parse_time(stamp, _EPOCH)
    except ValueError as exc:
        yield Rejected(f"time: {exc}", location, raw)
        return
    named = dict(zip(roles, parts))
    port = named.get("port")
    if port is not None and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        yield Rejected(f"port {port[:20]!r} is not a port number", location, raw)
        return
    tags, tlp = _tags(attribute.get("Tag"))
    description = named.get("filename") or _text(attribute.get("comment")) or event["info"]
    for role, part in zip(roles, parts):
        if role not in ("port", "filename"):
            yield make_indicator(role, part, source, location=location, raw=raw, first_seen=first_seen,
                                 last_seen=last_seen, tlp=tlp or event["tlp"], tags=[*event["tags"], *tags],
                                 port=int(port) if port else None, description=description,
                                 matchable=to_ids, revoked=_flag(attribute.get("deleted")))


def _tags(tags: Any) -> tuple[list[str], str | None]:
    names = [t["name"] for t in _list(tags) if isinstance(t, dict) and isinstance(t.get("name"), str)]
    levels = [tlp_label(n) for n in names if n.lower().startswith("tlp:")]
    return [n for n in names if not n.lower().startswith("tlp:")], strictest_tlp(levels)


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, (str, int)) and str(value).strip().lower() in ("1", "true"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
