"""The record schema: every collector produces these, the pipeline enriches them, the store keeps them.

Three kinds of record leave a collector:

* ``Event``      one sensor observation (an IDS alert, a DNS query, a Zeek notice, a CEF line).
* ``Indicator``  one threat-intel indicator from a feed (an IP, a domain, a hash, ...).
* ``Advisory``   one vulnerability advisory (CISA KEV entry, CSAF ICS advisory product).

and a ``Rejected`` stands for an input the parser could not turn into a record. Parsers never
raise on bad input: they yield ``Rejected`` so the run can count it, keep a sample and go on.

All times are timezone-aware UTC ``datetime`` objects. Field names follow ECS where ECS has one
(``source.ip`` becomes ``src_ip`` and so on, flattened for the SQL row).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    """The five levels used everywhere: in the store, the score, the colours and the words."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> "Severity":
        return cls[label.strip().upper()]


SEVERITY_LABELS: tuple[str, ...] = tuple(s.label for s in sorted(Severity, reverse=True))


@dataclass(slots=True)
class Event:
    """One sensor observation, normalised.

    ts              when it happened (UTC), taken from the record, never the time we read it
    sensor          id of the source config that produced it
    kind            event type in the sensor's words: alert, anomaly, drop, dns, http, tls,
                    fileinfo, flow, modbus, dnp3, notice, weird, intel, conn, syslog, cef, leef ...
    src_ip/src_port/dst_ip/dst_port/proto   the flow, ``proto`` lower-case (tcp, udp, icmp)
    app_proto       application protocol when known (http, dns, modbus, dnp3, s7comm ...)
    signature_id    rule/signature id as text (Suricata sid, CEF signature id, Zeek notice name)
    signature       human-readable name of what fired
    category        the sensor's classification text
    sensor_severity the sensor's own severity mapped onto ``Severity`` (``None`` when it has none)
    action          allowed / blocked / drop ... when the sensor says
    domain, url, file_hash, ja3, user_agent, http_method   application fields kept for indicator matching
    ics_function    ICS function name or code (modbus write, dnp3 cold_restart, s7 stop cpu ...)
    extra           anything worth keeping that has no column
    raw             the original record text, unchanged
    """

    ts: datetime
    sensor: str
    kind: str
    raw: str
    src_ip: str | None = None
    src_port: int | None = None
    dst_ip: str | None = None
    dst_port: int | None = None
    proto: str | None = None
    app_proto: str | None = None
    signature_id: str | None = None
    signature: str | None = None
    category: str | None = None
    sensor_severity: Severity | None = None
    action: str | None = None
    domain: str | None = None
    url: str | None = None
    file_hash: str | None = None
    ja3: str | None = None
    user_agent: str | None = None
    http_method: str | None = None
    ics_function: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Identity for idempotent ingest: the same raw record from the same sensor is one event."""
        return content_hash(self.sensor, self.raw)


def content_hash(sensor: str, raw: str) -> str:
    return hashlib.blake2b(f"{sensor}\x00{raw}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


INDICATOR_TYPES: tuple[str, ...] = (
    "ipv4", "ipv6", "cidr", "domain", "url", "md5", "sha1", "sha256", "ja3", "email", "asn",
    # kept for context, never matched: a STIX pattern too complex to match, a YARA/Snort/Sigma rule
    "stix-pattern", "pattern",
)


@dataclass(slots=True)
class Indicator:
    """One threat-intel indicator as a feed states it.

    type         one of ``INDICATOR_TYPES``
    value        normalised value (lower-case domain, canonical IP/CIDR/URL); the store keys on (type, value)
    feed         id of the source config
    first_seen / last_seen   as the feed states them (UTC), ``None`` when it does not
    confidence   0-100
    tlp          clear, green, amber, amber+strict, red
    tags, malware, port, description   context from the feed
    matchable    ``False`` for indicators kept for context only (e.g. complex STIX patterns)
    revoked      the feed withdrew it: the store expires it
    raw          the source row or object, compact
    """

    type: str
    value: str
    feed: str
    raw: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    confidence: int | None = None
    tlp: str | None = None
    tags: tuple[str, ...] = ()
    malware: str | None = None
    port: int | None = None
    description: str | None = None
    matchable: bool = True
    revoked: bool = False


@dataclass(slots=True)
class Advisory:
    """One vulnerability advisory entry, kept for exposure matching against the asset inventory.

    One row per (advisory id, CVE, vendor, product): a CSAF advisory naming three products gives three.
    """

    advisory_id: str
    source: str
    cve: str | None
    vendor: str | None
    product: str | None
    title: str
    raw: str = ""
    versions: tuple[str, ...] = ()
    cvss: float | None = None
    published: datetime | None = None
    updated: datetime | None = None
    known_exploited: bool = False
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Technique:
    """One MITRE ATT&CK (for ICS) technique: ``id`` (T0836), ``name``, ``tactics`` (short names), ``url``."""

    id: str
    name: str
    tactics: tuple[str, ...]
    url: str | None
    stix_id: str
    deprecated: bool = False
    revoked: bool = False


@dataclass(slots=True)
class Rejected:
    """Input a parser could not use: where it was, why, and a short sample for the admin."""

    reason: str
    location: str = ""
    sample: str = ""

    def __post_init__(self) -> None:
        if len(self.sample) > 500:
            self.sample = self.sample[:500] + "…"


Record = Event | Indicator | Advisory | Technique | Rejected
