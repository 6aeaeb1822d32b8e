"""STIX 2.1 indicators from a bundle, a TAXII envelope, a list of objects or one object (``format: stix21``).

An indicator as the OASIS examples write it::

    {"type": "indicator", "spec_version": "2.1", "id": "indicator--33fe3b22-...",
     "pattern": "[ipv4-addr:value = '10.0.0.0']", "pattern_type": "stix",
     "valid_from": "2014-05-08T09:00:00.000000Z", "indicator_types": ["malicious-activity"],
     "object_marking_refs": ["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]}

Rules:

* Each ``indicator`` is checked with the ``stix2`` library (``stix2.parse``, custom properties
  allowed) and its pattern read with ``stix2.pattern_visitor`` (built on ``stix2-patterns``). A
  failing object is one ``Rejected`` ("object <id>").
* A pattern made only of ``=`` comparisons joined by ``OR`` (inside one observation or across
  observations) gives one matchable indicator per distinct value, for these paths:
  ``ipv4-addr:value``, ``ipv6-addr:value`` (an address or a CIDR), ``domain-name:value``,
  ``url:value``, ``email-addr:value``, ``file:hashes.MD5`` / ``'SHA-1'`` / ``'SHA-256'``,
  ``network-traffic:dst_ref.value`` / ``src_ref.value``. A value that fails normalisation is a
  ``Rejected`` of its own; the other values of the pattern still load.
* Anything else (``AND``, ``FOLLOWEDBY``, ``MATCHES``, ``LIKE``, ``!=``, ``>``, ``IN``, a qualifier,
  an unsupported path) is kept as **one** indicator with ``matchable=False``, type
  ``stix-pattern`` and the pattern text as value: context for the analyst, never dropped. An
  ``OR`` of supported and unsupported comparisons gives both: the matchable values and the
  whole pattern as context. A pattern in another language (``pattern_type`` ``yara``, ``snort``
  ...) is kept the same way with type ``pattern`` and a ``pattern_type:<name>`` tag.
* TLP: the strictest TLP among ``object_marking_refs`` and ``granular_markings`` (strictest,
  because a granular marking on any part still restricts the object we store whole). Known
  ids are TLP 1.0 (``stix2`` constants) and TLP 2.0; a marking-definition in the same payload is
  read from ``definition.tlp``, a TLP 2.0 extension or its ``TLP:`` name. No TLP: the feed's.
* ``valid_from`` (else ``created``) -> ``first_seen``; ``valid_until`` (else ``modified``) ->
  ``last_seen``; ``revoked`` -> ``revoked``; ``confidence`` -> ``confidence`` (else the feed's);
  ``labels`` and ``indicator_types`` -> tags; ``name`` (else ``description``) -> description;
  the ``malware`` an ``indicates`` relationship in the same payload points at -> ``malware``.
* Every other object (malware, attack-pattern, relationship, sighting, marking-definition ...)
  is ``skipped``: it holds no indicator. The payload is read whole (a bundle or a TAXII page is
  one JSON document); a payload that is not JSON, or JSON without STIX objects, fails the run.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, BinaryIO

import stix2
from stix2 import patterns as stix_patterns
from stix2.pattern_visitor import create_pattern_object

from collectors.formats.common import FormatError, check_start, make_indicator, skipped, strictest_tlp, tlp_label
from settings.base import StrictModel
from settings.sources import SourceConfig
from store.records import Indicator, Rejected

FORMAT = "stix21"
KIND = "indicators"

TLP_MARKINGS = {
    # TLP 1.0, predefined by STIX 2.1 (constants of the stix2 library)
    stix2.TLP_WHITE.id: "clear", stix2.TLP_GREEN.id: "green", stix2.TLP_AMBER.id: "amber", stix2.TLP_RED.id: "red",
    # TLP 2.0, published by OASIS in cti-stix-common-objects (extension-definition--60a3c5c5-...)
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
}
# (object type, property path) -> the indicator type handed to ``canonical``
SIMPLE_PATHS = {
    ("ipv4-addr", ("value",)): "ip",
    ("ipv6-addr", ("value",)): "ip",
    ("domain-name", ("value",)): "domain",
    ("url", ("value",)): "url",
    ("email-addr", ("value",)): "email",
    ("network-traffic", ("dst_ref", "value")): "ip",
    ("network-traffic", ("src_ref", "value")): "ip",
}
HASH_NAMES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256"}


class Options(StrictModel):
    """No knobs yet: every rule above applies to every STIX 2.1 source."""


def parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Indicator | Rejected]:
    objects = load_objects(payload)
    known = [o for o in objects if isinstance(o, dict)]
    markings = {**TLP_MARKINGS, **{o["id"]: t for o in known if o.get("type") == "marking-definition"
                                   and isinstance(o.get("id"), str) and (t := _marking_tlp(o))}}
    malware = _malware_by_indicator(known)
    for number, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            yield Rejected("not a STIX object (no type)", f"object {number}", str(obj))
            continue
        location = f"object {obj.get('id', number)}"
        raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        if obj["type"] != "indicator":
            yield skipped(f"{obj['type']} is not an indicator", location, raw)
            continue
        yield from _indicator(obj, raw, location, source, markings, malware)


def load_objects(payload: BinaryIO) -> list[Any]:
    """The objects of a bundle, a TAXII envelope (``objects``), a list, or one object."""
    data = payload.read()
    check_start(data[:64], "STIX JSON")
    try:
        document = json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except json.JSONDecodeError as exc:
        raise FormatError(f"payload is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"payload is not valid JSON: {exc}") from None
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("objects"), list):
        return document["objects"]
    if isinstance(document, dict) and document.get("type") == "bundle":
        return []  # an empty bundle may omit "objects"
    if isinstance(document, dict) and isinstance(document.get("type"), str):
        return [document]
    raise FormatError("expected a STIX bundle, a TAXII envelope or STIX objects")


def _indicator(obj: dict[str, Any], raw: str, location: str, source: SourceConfig,
               markings: dict[str, str], malware: dict[str, str]) -> Iterator[Indicator | Rejected]:
    try:
        parsed = stix2.parse(obj, allow_custom=True, version="2.1")
    except Exception as exc:  # noqa: BLE001 - stix2 raises many exception types on bad input
        yield Rejected(f"invalid STIX indicator: {exc}"[:300], location, raw)
        return
    refs = [*parsed.get("object_marking_refs", []), *(g.get("marking_ref") for g in parsed.get("granular_markings", []))]
    tags = [*parsed.get("labels", []), *parsed.get("indicator_types", [])]
    context = dict(
        first_seen=_utc(parsed.get("valid_from") or parsed.get("created")),
        last_seen=_utc(parsed.get("valid_until") or parsed.get("modified")),
        confidence=parsed.get("confidence"), tlp=strictest_tlp(markings.get(r) for r in refs),
        malware=malware.get(obj["id"]), description=parsed.get("name") or parsed.get("description") or None,
        revoked=bool(parsed.get("revoked")),
    )
    pattern = parsed.pattern
    if parsed.pattern_type != "stix":
        yield make_indicator("pattern", pattern, source, location=location, raw=raw, matchable=False, verbatim=True,
                             tags=[*tags, f"pattern_type:{parsed.pattern_type}"], **context)
        return
    try:
        comparisons = _or_of_equalities(create_pattern_object(pattern, version="2.1"))
    except Exception:  # noqa: BLE001 - stix2 accepted the pattern; if its visitor cannot, keep it as context
        comparisons = None
    simple = [(_record_type(path), value) for path, value in comparisons or []]
    seen: set[tuple[str, str]] = set()
    for kind, value in simple:
        if kind is None:
            continue
        record = make_indicator(kind, value, source, location=location, raw=raw, tags=tags, **context)
        # One record per distinct key: 'A.example' and 'a.example' in one pattern are one indicator.
        key = (record.type, record.value) if isinstance(record, Indicator) else (kind, value)
        if key not in seen:
            seen.add(key)
            yield record
    if comparisons is None or any(kind is None for kind, _ in simple):
        yield make_indicator("stix-pattern", pattern, source, location=location, raw=raw, matchable=False,
                             verbatim=True, tags=tags, **context)


def _utc(moment: datetime | None) -> datetime | None:
    """A plain UTC ``datetime`` (stix2 returns its own ``STIXdatetime`` subclass)."""
    if moment is None:
        return None
    return datetime(*moment.utctimetuple()[:6], moment.microsecond, tzinfo=timezone.utc)


def _or_of_equalities(expression: Any) -> list[tuple[Any, str]] | None:
    """``(object path, value)`` of every comparison when the pattern is an OR of ``=``; else ``None``."""
    if isinstance(expression, stix_patterns.ParentheticalExpression):
        return _or_of_equalities(expression.expression)
    if isinstance(expression, stix_patterns.ObservationExpression):
        return _or_of_equalities(expression.operand)
    if isinstance(expression, (stix_patterns.OrObservationExpression, stix_patterns.OrBooleanExpression)):
        found: list[tuple[Any, str]] = []
        for operand in expression.operands:
            part = _or_of_equalities(operand)
            if part is None:
                return None
            found += part
        return found
    if (isinstance(expression, stix_patterns.EqualityComparisonExpression) and not expression.negated
            and isinstance(expression.rhs, stix_patterns.StringConstant)):
        return [(expression.lhs, expression.rhs.value)]
    return None


def _record_type(path: Any) -> str | None:
    steps = tuple(getattr(step, "property_name", None) for step in path.property_path)
    if any(isinstance(step, stix_patterns.ListObjectPathComponent) for step in path.property_path):
        return None
    if path.object_type_name == "file" and len(steps) == 2 and steps[0] == "hashes":
        return HASH_NAMES.get(str(steps[1]).upper().replace("-", ""))
    return SIMPLE_PATHS.get((path.object_type_name, steps))


def _marking_tlp(marking: dict[str, Any]) -> str | None:
    definition = marking.get("definition")
    if marking.get("definition_type") == "tlp" and isinstance(definition, dict):
        return tlp_label(definition.get("tlp"))
    for extension in (marking.get("extensions") or {}).values():
        if isinstance(extension, dict) and "tlp_2_0" in extension:
            return tlp_label(extension["tlp_2_0"])
    return tlp_label(marking.get("name"))


def _malware_by_indicator(objects: list[dict[str, Any]]) -> dict[str, str]:
    names = {o.get("id"): o.get("name") for o in objects if o.get("type") == "malware" and isinstance(o.get("name"), str)}
    found: dict[str, str] = {}
    for rel in objects:
        if rel.get("type") == "relationship" and rel.get("relationship_type") == "indicates":
            name = names.get(rel.get("target_ref"))
            if name and isinstance(rel.get("source_ref"), str):
                found.setdefault(rel["source_ref"], name)  # the first one named wins
    return found
