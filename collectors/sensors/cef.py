"""ArcSight Common Event Format (CEF), on its own or behind a syslog header.

::

    [syslog header ]CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension
    May 18 16:02:00 isid isid[1] CEF:0|radiflow|isid|7.0.2.28|2|New Link Detected|Medium|src=172.16.2.41 pt=502

* **Header**: seven ``|``-separated fields. ``\\|`` and ``\\\\`` escape a pipe and a backslash; any
  other backslash stands for itself. The extension may be missing (``...|10``) or empty (``...|10|``).
* **Extension**: ``key=value`` pairs separated by spaces. A value runs until the next `` key=``, so
  it may hold unescaped spaces and pipes; ``\\=``, ``\\\\``, ``\\n`` and ``\\r`` are escapes. Spaces
  around a value are not part of it.
* **Severity**: 0-10, or a word: Unknown, Low, Medium, High, Very-High.
* **Prefix**: anything before ``CEF:`` is read as a syslog header when it is one (RFC 3164 or 5424,
  or an ArcSight logger's ``<epoch ms> <host>``); otherwise it is kept in ``extra.prefix``.
* **rsyslog**: a newline inside a value reaches the file as ``#012``; it is decoded (see
  ``syslog_header.decode_rsyslog_escapes``) before the extension is split, so ``SrcMac=...#012``
  gives the MAC alone.

Mapping (the full CEF names such as ``sourceAddress`` are accepted for every short key):

====================  ======================================================================
Event field           CEF
====================  ======================================================================
ts                    ``rt``, else ``start``, else ``end`` (epoch ms, ``MMM dd [yyyy] HH:mm:ss[.SSS]
                      [zone]`` or ISO 8601), else the syslog header time, else the time read
                      (``extra.time_source`` says which)
signature_id / name   header Signature ID / Name
sensor_severity       header Severity: 0 → info, 1-3 → low, 4-6 → medium, 7-8 → high,
                      9-10 → critical; Low/Medium/High/Very-High alike; Unknown or other → none
src_ip, src_port      ``src``, ``spt``;  dst_ip, dst_port: ``dst``, ``dpt``
proto / app_proto     ``proto`` (lower-case, IANA numbers named) / ``app``
action, category      ``act``, ``cat``
url, domain           ``request``, ``dhost`` (when it is a name, not an address)
http_method, user_agent, file_hash   ``requestMethod``, ``requestClientApplication``, ``fileHash``
extra                 ``cef_version``, ``device_vendor``, ``device_product``, ``device_version``,
                      ``cef_severity`` (as written), ``extension`` (every pair, unescaped),
                      ``custom`` ({cs1Label: cs1, ...} for cs1-6, cn1-3, cfp1-4, c6a1-4, flex*,
                      deviceCustomDate1-2), ``host`` and ``syslog`` (the envelope), ``prefix``,
                      ``time_source``, ``time_warning``
====================  ======================================================================

``Options.key_aliases`` maps a vendor's own keys onto standard ones (Radiflow iSID writes the
destination port as ``pt``: ``{pt: dpt}``). Rejected: no ``CEF:`` in the line, fewer than seven
header fields, a non-numeric version, an extension that is not ``key=value``.
"""
from __future__ import annotations

import re
from datetime import datetime

from pydantic import field_validator

from collectors.sensors.syslog_header import (
    LineParserBase,
    ALL_DIGITS,
    Clock,
    EnvelopeOptions,
    SyslogHeader,
    decode_rsyslog_escapes,
    ip_or_none,
    parse_prefix,
    parse_time_value,
    port_or_none,
    protocol_or_none,
)
from store.records import Event, Rejected, Severity

FORMAT = "cef"
KIND = "cef"
HEADER_FIELD_COUNT = 7
# ArcSight's bands: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high. We keep 0 apart as info
# because senders use it for "informational, no threat".
NUMERIC_SEVERITY: tuple[Severity, ...] = (
    Severity.INFO, Severity.LOW, Severity.LOW, Severity.LOW, Severity.MEDIUM, Severity.MEDIUM,
    Severity.MEDIUM, Severity.HIGH, Severity.HIGH, Severity.CRITICAL, Severity.CRITICAL,
)
WORD_SEVERITY: dict[str, Severity | None] = {
    "unknown": None, "low": Severity.LOW, "medium": Severity.MEDIUM, "high": Severity.HIGH,
    "very-high": Severity.CRITICAL, "very high": Severity.CRITICAL, "veryhigh": Severity.CRITICAL,
}
TIME_KEYS = ("rt", "start", "end")
FULL_NAMES: dict[str, str] = {
    "sourceAddress": "src", "destinationAddress": "dst", "sourcePort": "spt", "destinationPort": "dpt",
    "transportProtocol": "proto", "applicationProtocol": "app", "deviceAction": "act",
    "deviceEventCategory": "cat", "requestUrl": "request", "destinationHostName": "dhost",
    "sourceHostName": "shost", "deviceReceiptTime": "rt", "startTime": "start", "endTime": "end",
    "message": "msg", "sourceUserName": "suser", "destinationUserName": "duser",
    "deviceAddress": "dvc", "deviceHostName": "dvchost",
}
CUSTOM_FIELDS: dict[str, str] = {
    **{f"cs{n}": f"deviceCustomString{n}" for n in range(1, 7)},
    **{f"cn{n}": f"deviceCustomNumber{n}" for n in range(1, 4)},
    **{f"cfp{n}": f"deviceCustomFloatingPoint{n}" for n in range(1, 5)},
    **{f"c6a{n}": f"deviceCustomIPv6Address{n}" for n in range(1, 5)},
    "flexString1": "flexString1", "flexString2": "flexString2", "flexNumber1": "flexNumber1",
    "flexNumber2": "flexNumber2", "flexDate1": "flexDate1",
    "deviceCustomDate1": "deviceCustomDate1", "deviceCustomDate2": "deviceCustomDate2",
}
FULL_NAMES.update({full: short for short, full in CUSTOM_FIELDS.items() if short != full})
FULL_NAMES.update({f"{full}Label": f"{short}Label" for short, full in CUSTOM_FIELDS.items() if short != full})

# A marker is only taken at a token start, so a "CEF:" inside a value cannot start the payload.
MARKER = re.compile(r"(?:^|(?<=[\s>:\]]))CEF:")
WELL_FORMED_MARKER = re.compile(r"(?:^|(?<=[\s>:\]]))CEF:\d+\|")
EXTENSION_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_][\w.\-\[\]]*)=")
EXTENSION_ESCAPE = re.compile(r"\\([=\\nr|])")
EXTENSION_UNESCAPED = {"=": "=", "\\": "\\", "n": "\n", "r": "\r", "|": "|"}


class Options(EnvelopeOptions):
    """``options:`` of a ``cef`` source."""

    key_aliases: dict[str, str] = {}
    """Vendor key → standard CEF key, used when the standard key is absent (e.g. ``{pt: dpt}``)."""

    @field_validator("key_aliases")
    @classmethod
    def _non_empty(cls, aliases: dict[str, str]) -> dict[str, str]:
        if any(not key.strip() or not target.strip() for key, target in aliases.items()):
            raise ValueError("key_aliases keys and targets must not be empty")
        return aliases


def make_parser(sensor: str, options: Options | None = None, *, clock: Clock | None = None) -> CefLineParser:
    return CefLineParser(sensor, options or Options(), clock)


def split_pipe_header(text: str, count: int) -> tuple[list[str], str | None]:
    """Split ``count`` pipe-separated header fields off ``text``, undoing ``\\|`` and ``\\\\``.

    Returns the fields and the rest after the last header pipe (``""`` when the text ends with the
    last field), or fewer fields and ``None`` when the header is short.
    """
    fields: list[str] = []
    current: list[str] = []
    position, length = 0, len(text)
    while position < length:
        char = text[position]
        if char == "\\" and position + 1 < length and text[position + 1] in "|\\":
            current.append(text[position + 1])
            position += 2
            continue
        if char == "|":
            fields.append("".join(current))
            current = []
            if len(fields) == count:
                return fields, text[position + 1:]
        else:
            current.append(char)
        position += 1
    fields.append("".join(current))
    return (fields, "") if len(fields) == count else (fields, None)


def scaled_severity(text: str) -> Severity | None:
    """A 0-10 number or a CEF severity word on our five levels; ``None`` when it is neither."""
    text = text.strip()
    if ALL_DIGITS.fullmatch(text) and len(text) <= 2 and int(text) <= 10:
        return NUMERIC_SEVERITY[int(text)]
    return WORD_SEVERITY.get(text.lower())


def parse_extension(text: str) -> dict[str, str] | str:
    """The extension's pairs, unescaped; or the reason it is not an extension."""
    keys = list(EXTENSION_KEY.finditer(text))
    if not keys:
        return f"CEF extension has no key=value pair: {text.strip()[:60]!r}" if text.strip() else {}
    leading = text[:keys[0].start()].strip()
    if leading:
        return f"CEF extension starts with text that is not key=value: {leading[:60]!r}"
    pairs: dict[str, str] = {}
    ends = [key.start() for key in keys[1:]] + [len(text)]
    for key, end in zip(keys, ends):
        pairs[key[1]] = unescape_value(text[key.end():end].strip())
    return pairs


def unescape_value(value: str) -> str:
    if "\\" not in value:
        return value
    return EXTENSION_ESCAPE.sub(lambda match: EXTENSION_UNESCAPED[match[1]], value)


def find_marker(line: str, marker: re.Pattern[str], well_formed: re.Pattern[str]) -> int | None:
    """Where the payload starts: the first well-formed marker, else the first marker at all (so a
    bad version is reported as such), else ``None``."""
    found = well_formed.search(line) or marker.search(line)
    return found.start() if found else None


class CefLineParser(LineParserBase):
    """Stateless: one line, one event."""

    def __call__(self, line: str) -> Event | Rejected | None:
        if not line.strip():
            return None
        text = line.rstrip("\r")  # a CRLF file leaves "\r" on every line; raw keeps it, the fields do not
        start = find_marker(text, MARKER, WELL_FORMED_MARKER)
        if start is None:
            return Rejected(reason="no 'CEF:' header in the line", sample=line)
        header_fields, extension_text = split_pipe_header(text[start + len("CEF:"):], HEADER_FIELD_COUNT)
        if extension_text is None:
            return Rejected(reason=f"CEF header has {len(header_fields)} of {HEADER_FIELD_COUNT} fields", sample=line)
        version_text, vendor, product, device_version, signature_id, name, severity_text = header_fields
        if not ALL_DIGITS.fullmatch(version_text.strip()):
            return Rejected(reason=f"CEF version {version_text[:20]!r} is not a number", sample=line)
        if self.options.decode_rsyslog_escapes:
            extension_text = decode_rsyslog_escapes(extension_text)
        extension = parse_extension(extension_text)
        if isinstance(extension, str):
            return Rejected(reason=extension, sample=line)

        prefix = text[:start]
        envelope = parse_prefix(prefix, self.times)
        fields = self._standard_fields(extension)
        ts, extra = self._time(fields, envelope)
        extra.update(
            cef_version=int(version_text), device_vendor=vendor, device_product=product,
            device_version=device_version, cef_severity=severity_text, extension=extension,
        )
        custom = {fields.get(f"{key}Label") or key: fields[key] for key in CUSTOM_FIELDS if key in fields}
        if custom:
            extra["custom"] = custom
        describe_prefix(prefix, envelope, extra)

        destination_host = fields.get("dhost") or None
        return Event(
            ts=ts,
            sensor=self.sensor,
            kind=KIND,
            raw=line,
            src_ip=ip_or_none(fields.get("src")),
            src_port=port_or_none(fields.get("spt")),
            dst_ip=ip_or_none(fields.get("dst")),
            dst_port=port_or_none(fields.get("dpt")),
            proto=protocol_or_none(fields.get("proto")),
            app_proto=(fields.get("app") or "").lower() or None,
            signature_id=signature_id or None,
            signature=name or None,
            category=fields.get("cat") or None,
            sensor_severity=scaled_severity(severity_text),
            action=fields.get("act") or None,
            domain=destination_host.lower() if destination_host and not ip_or_none(destination_host) else None,
            url=fields.get("request") or None,
            file_hash=fields.get("fileHash") or None,
            user_agent=fields.get("requestClientApplication") or None,
            http_method=(fields.get("requestMethod") or "").upper() or None,
            extra=extra,
        )

    def _standard_fields(self, extension: dict[str, str]) -> dict[str, str]:
        """The extension under short CEF keys; a key already present wins over an alias of it."""
        fields = dict(extension)
        for source_key, standard_key in (*FULL_NAMES.items(), *self.options.key_aliases.items()):
            if source_key in extension:
                fields.setdefault(standard_key, extension[source_key])
        return fields

    def _time(self, fields: dict[str, str], envelope: SyslogHeader | None) -> tuple[datetime, dict[str, object]]:
        """The event time and how it was found; a time field that cannot be read is reported, not fatal."""
        extra: dict[str, object] = {}
        not_understood: list[str] = []
        ts: datetime | None = None
        for key in TIME_KEYS:
            value = fields.get(key)
            if value:
                ts = parse_time_value(value, self.times)
                if ts is not None:
                    extra["time_source"] = key
                    break
                not_understood.append(f"{key} {value[:40]!r} not understood")
        if ts is None and envelope is not None and envelope.timestamp is not None:
            ts, extra["time_source"] = envelope.timestamp, "syslog"
        if ts is None:
            ts, extra["time_source"] = self.times.now(), "received"
        if not_understood:
            extra["time_warning"] = "; ".join(not_understood)
        return ts, extra


def describe_prefix(prefix: str, envelope: SyslogHeader | None, extra: dict[str, object]) -> None:
    """Shared with LEEF: the syslog envelope, or the unrecognised prefix, into ``extra``."""
    if envelope is not None:
        described = envelope.describe()
        if envelope.message.strip():
            described["message"] = envelope.message.strip()
        extra["syslog"] = described
        if envelope.host:
            extra["host"] = envelope.host
    elif prefix.strip():
        extra["prefix"] = prefix
