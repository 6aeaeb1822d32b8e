"""IBM QRadar Log Event Extended Format (LEEF) 1.0 and 2.0, on its own or behind a syslog header.

::

    [syslog header ]LEEF:1.0|Vendor|Product|Version|EventID|key=value<TAB>key=value...
    [syslog header ]LEEF:2.0|Vendor|Product|Version|EventID|DelimiterChar|key=value<delim>key=value...
    Jun 02 16:34:55 zscaler-nss: LEEF:1.0|Zscaler|NSS-FW|5.5|Drop|usrName=GCL->SBL-1<TAB>src=10.11.12.13...

* **Header**: ``\\|`` and ``\\\\`` escape a pipe and a backslash, as in CEF.
* **Delimiter**: LEEF 1.0 uses a tab (``Options.leef1_delimiter`` changes that for senders that
  do otherwise). LEEF 2.0 names its own in the sixth header field: one character (``^``), or a hex
  code (``x09``, ``0x09``, ``\\x09``, also ``\\t``); an empty or missing field means tab.
* **Attributes**: ``key=value``; only the first ``=`` separates, so values may contain ``=``.
  Empty pieces (a trailing or doubled delimiter) are skipped; a piece without ``=`` is an error.
* **CyberArk PTA** writes its first attributes with pipes (``|Cat=...|sev=8|src=...<TAB>...``).
  With ``Options.split_pipe_attributes`` (on), a ``|`` directly followed by ``key=`` also
  separates attributes, so ``sev`` and ``src`` are not swallowed by ``Cat``.
* **rsyslog** writes a tab as ``#011``; it is decoded before splitting (``decode_rsyslog_escapes``).

Mapping (predefined LEEF keys; looked up case-insensitively, as senders vary: ``Cat``/``cat``):

====================  ======================================================================
Event field           LEEF
====================  ======================================================================
ts                    ``devTime`` read with ``devTimeFormat`` (a Java date pattern) when given,
                      else as epoch ms, ``MMM dd yyyy HH:mm:ss[.SSS] [zone]`` or ISO 8601; else
                      the syslog header time; else the time read (``extra.time_source``)
signature_id          header EventID; signature: the EventID too (LEEF has no event name;
                      QRadar maps it through its QID table)
sensor_severity       ``sev`` 0-10 (same bands as CEF: 0 info, 1-3 low, 4-6 medium, 7-8 high,
                      9-10 critical) or a CEF severity word
src_ip, src_port      ``src``, ``srcPort``;  dst_ip, dst_port: ``dst``, ``dstPort``
proto, category       ``proto`` (lower-case), ``cat``
url, domain, action   ``url``, ``domain``, ``action`` (not predefined, but common)
extra                 ``leef_version``, ``device_vendor``, ``device_product``, ``device_version``,
                      ``delimiter``, ``attributes`` (every pair), ``user`` (``usrName``),
                      ``host``/``syslog``/``prefix`` (the envelope), ``time_source``, ``time_warning``
====================  ======================================================================

Rejected: no ``LEEF:`` in the line, fewer than five header fields, a version that is not 1.x or
2.x, a LEEF 2.0 delimiter that is neither one character nor a hex code, an attribute without ``=``.
"""
from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import field_validator

from collectors.sensors.cef import describe_prefix, find_marker, scaled_severity, split_pipe_header
from collectors.sensors.syslog_header import (
    LineParserBase,
    MONTHS,
    Clock,
    EnvelopeOptions,
    SyslogHeader,
    TimeRules,
    decode_rsyslog_escapes,
    ip_or_none,
    parse_prefix,
    parse_time_value,
    port_or_none,
    protocol_or_none,
    zone_from_token,
)
from store.records import Event, Rejected

FORMAT = "leef"
KIND = "leef"
DEFAULT_DELIMITER = "\t"
VERSION = re.compile(r"([12])(?:\.\d+)?")
HEX_DELIMITER = re.compile(r"(?:0[xX]|[xX]|\\[xX])([0-9A-Fa-f]{1,4})")
NAMED_DELIMITERS = {"\\t": "\t", "tab": "\t"}
MARKER = re.compile(r"(?:^|(?<=[\s>:\]]))LEEF:")
WELL_FORMED_MARKER = re.compile(r"(?:^|(?<=[\s>:\]]))LEEF:[12](?:\.\d+)?\|")
PIPE_BEFORE_KEY = re.compile(r"\|(?=[A-Za-z_][\w.\-]*=)")
# Predefined keys the mapping reads, by lower-case name.
MAPPED_KEYS = ("src", "dst", "srcport", "dstport", "proto", "sev", "cat", "devtime", "devtimeformat",
               "url", "domain", "usrname", "action")
# Java SimpleDateFormat letters → regex groups; runs of the same letter form one token.
JAVA_PATTERN_TOKEN = re.compile(r"'[^']*'|([A-Za-z])\1*|.", re.DOTALL)


class Options(EnvelopeOptions):
    """``options:`` of a ``leef`` source."""

    leef1_delimiter: str = DEFAULT_DELIMITER
    """Attribute separator for LEEF 1.0, which the standard fixes as a tab."""
    split_pipe_attributes: bool = True
    """Also split at ``|`` followed by ``key=`` (CyberArk PTA's first attributes)."""

    @field_validator("leef1_delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError("leef1_delimiter must be exactly one character")
        return value


def make_parser(sensor: str, options: Options | None = None, *, clock: Clock | None = None) -> LeefLineParser:
    return LeefLineParser(sensor, options or Options(), clock)


def delimiter_from_spec(spec: str) -> str | None:
    """The LEEF 2.0 delimiter named by ``spec`` (``^``, ``x09``, ``0x09``, ``\\t``); ``None`` if none."""
    if spec == "":
        return DEFAULT_DELIMITER
    if len(spec) == 1:
        return spec
    if spec.lower() in NAMED_DELIMITERS:
        return NAMED_DELIMITERS[spec.lower()]
    hex_code = HEX_DELIMITER.fullmatch(spec)
    if hex_code:
        return chr(int(hex_code[1], 16))
    return None


class LeefLineParser(LineParserBase):
    """Stateless: one line, one event."""

    def __call__(self, line: str) -> Event | Rejected | None:
        if not line.strip():
            return None
        text = line.rstrip("\r")  # a CRLF file leaves "\r" on every line; raw keeps it, the fields do not
        start = find_marker(text, MARKER, WELL_FORMED_MARKER)
        if start is None:
            return Rejected(reason="no 'LEEF:' header in the line", sample=line)
        body = text[start + len("LEEF:"):]
        version_text = body.split("|", 1)[0]
        version = VERSION.fullmatch(version_text.strip())
        if not version:
            return Rejected(reason=f"LEEF version {version_text[:20]!r} is not 1.x or 2.x", sample=line)
        header, attribute_text = split_pipe_header(body, 5)
        if attribute_text is None:
            return Rejected(reason=f"LEEF header has {len(header)} of 5 fields", sample=line)
        _, vendor, product, product_version, event_id = header

        delimiter = self.options.leef1_delimiter
        if version[1] == "2":
            delimiter_spec, separator, after = attribute_text.partition("|")
            # A LEEF 2.0 sender that leaves the delimiter field out goes straight to key=value.
            if (separator and "=" not in delimiter_spec) or len(delimiter_spec) == 1:
                found = delimiter_from_spec(delimiter_spec)
                if found is None:
                    return Rejected(reason=f"LEEF 2.0 delimiter {delimiter_spec[:20]!r} is neither one character "
                                           "nor a hex code like x09", sample=line)
                delimiter, attribute_text = found, after
            else:
                delimiter = DEFAULT_DELIMITER
        if self.options.decode_rsyslog_escapes:
            attribute_text = decode_rsyslog_escapes(attribute_text)
        attributes = self._attributes(attribute_text, delimiter, pipes=self.options.split_pipe_attributes)
        if isinstance(attributes, str):
            return Rejected(reason=attributes, sample=line)

        prefix = text[:start]
        envelope = parse_prefix(prefix, self.times)
        mapped = _mapped(attributes)
        ts, extra = self._time(mapped, envelope)
        extra.update(leef_version=version_text.strip(), device_vendor=vendor, device_product=product,
                     device_version=product_version, delimiter=delimiter, attributes=attributes)
        if mapped.get("usrname"):
            extra["user"] = mapped["usrname"]
        describe_prefix(prefix, envelope, extra)

        domain = mapped.get("domain") or None
        return Event(
            ts=ts,
            sensor=self.sensor,
            kind=KIND,
            raw=line,
            src_ip=ip_or_none(mapped.get("src")),
            src_port=port_or_none(mapped.get("srcport")),
            dst_ip=ip_or_none(mapped.get("dst")),
            dst_port=port_or_none(mapped.get("dstport")),
            proto=protocol_or_none(mapped.get("proto")),
            signature_id=event_id or None,
            signature=event_id or None,
            category=mapped.get("cat") or None,
            sensor_severity=scaled_severity(mapped.get("sev") or ""),
            action=mapped.get("action") or None,
            domain=domain.lower() if domain else None,
            url=mapped.get("url") or None,
            extra=extra,
        )

    @staticmethod
    def _attributes(text: str, delimiter: str, *, pipes: bool) -> dict[str, str] | str:
        attributes: dict[str, str] = {}
        pieces = text.split(delimiter)
        if pipes:
            pieces = [part for piece in pieces for part in PIPE_BEFORE_KEY.split(piece)]
        for number, piece in enumerate(pieces, start=1):
            if not piece.strip():
                continue
            key, equals, value = piece.partition("=")
            if not equals or not key.strip():
                shown = repr(delimiter) if delimiter != DEFAULT_DELIMITER else "tab"
                return f"LEEF attribute {number} {piece[:40]!r} is not key=value (delimiter {shown})"
            attributes[key.strip()] = value
        return attributes

    def _time(self, mapped: dict[str, str], envelope: SyslogHeader | None) -> tuple[datetime, dict[str, Any]]:
        extra: dict[str, Any] = {}
        dev_time = mapped.get("devtime")
        if dev_time:
            pattern = mapped.get("devtimeformat")
            ts = java_pattern_time(dev_time, pattern, self.times) if pattern else parse_time_value(dev_time, self.times)
            if ts is not None:
                extra["time_source"] = "devTime"
                return ts, extra
            extra["time_warning"] = f"devTime {dev_time[:40]!r} not understood" + (
                f" with devTimeFormat {pattern[:40]!r}" if pattern else "")
        if envelope is not None and envelope.timestamp is not None:
            extra["time_source"] = "syslog"
            return envelope.timestamp, extra
        extra["time_source"] = "received"
        return self.times.now(), extra


def _mapped(attributes: dict[str, str]) -> dict[str, str]:
    """The predefined keys by lower-case name; an exact-case key wins over a differently cased one."""
    mapped: dict[str, str] = {}
    for key, value in attributes.items():
        lower = key.lower()
        if lower in MAPPED_KEYS and (lower not in mapped or key == lower):
            mapped[lower] = value
    return mapped


@lru_cache(maxsize=64)
def _java_pattern_regex(pattern: str) -> re.Pattern[str] | None:
    """A regex for a Java ``SimpleDateFormat`` pattern, or ``None`` when it uses letters we do not read."""
    parts: list[str] = []
    for match in JAVA_PATTERN_TOKEN.finditer(pattern):
        token = match[0]
        letter = match[1]
        if token.startswith("'"):
            parts.append(re.escape(token[1:-1] or "'"))
        elif letter is None:
            parts.append(r"\s+" if token.isspace() else re.escape(token))
        elif letter == "y":
            parts.append(r"(?P<year>\d{4})" if len(token) != 2 else r"(?P<year2>\d{2})")
        elif letter == "M":
            parts.append(r"(?P<month_name>[A-Za-z]{3,9})" if len(token) >= 3 else r"(?P<month>\d{1,2})")
        elif letter in "dHhms":
            name = {"d": "day", "H": "hour", "h": "hour12", "m": "minute", "s": "second"}[letter]
            parts.append(rf"(?P<{name}>\d{{1,2}})")
        elif letter == "S":
            parts.append(r"(?P<fraction>\d{1,9})")
        elif letter == "a":
            parts.append(r"(?P<ampm>[AaPp][Mm])")
        elif letter in "zZX":
            parts.append(r"(?P<zone>[A-Za-z][A-Za-z0-9/_+\-:]*|[+-]\d{2}:?\d{2}|Z)")
        elif letter == "E":
            parts.append(r"[A-Za-z]+")
        else:
            return None
    try:
        return re.compile("".join(parts))
    except re.error:  # a pattern naming the same field twice
        return None


def java_pattern_time(text: str, pattern: str, times: TimeRules) -> datetime | None:
    """Read ``text`` with a LEEF ``devTimeFormat`` (Java ``SimpleDateFormat``); ``None`` if it does not fit."""
    regex = _java_pattern_regex(pattern)
    match = regex.fullmatch(text.strip()) if regex else None
    if not match:
        return None
    parts = match.groupdict()
    try:
        month = int(parts["month"]) if parts.get("month") else MONTHS.get((parts.get("month_name") or "")[:3].lower())
        if month is None:
            return None
        year = int(parts["year"]) if parts.get("year") else (2000 + int(parts["year2"]) if parts.get("year2") else None)
        hour = int(parts.get("hour") or 0)
        if parts.get("hour12"):
            hour = int(parts["hour12"]) % 12 + (12 if (parts.get("ampm") or "").lower() == "pm" else 0)
        zone = None
        if parts.get("zone"):
            zone = zone_from_token(parts["zone"])
            if zone is None:
                return None
        return times.build(year, month, int(parts.get("day") or 1), hour, int(parts.get("minute") or 0),
                           int(parts.get("second") or 0), parts.get("fraction"), zone)
    except (ValueError, OverflowError):
        return None
