"""The syslog envelope (RFC 3164 and RFC 5424), shared by the syslog, CEF and LEEF parsers.

RFC 5424::

    <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]
    <34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 [exampleSDID@32473 iut="3"] 'su root' failed

``TIMESTAMP`` is RFC 3339; any header field may be the nil value ``-``; ``STRUCTURED-DATA`` is ``-``
or one or more ``[SD-ID name="value" ...]`` elements whose values escape ``"``, ``]`` and ``\\``
with a backslash; ``MSG`` may start with a UTF-8 byte order mark.

RFC 3164 (BSD syslog)::

    <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
    <34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8

The timestamp has no year and no zone. Real senders stray from it in many ways, all accepted:
no ``<PRI>`` at all, a space after it, a year (``Jan 18 2024 11:50:03``), fractions and a zone
(``May 02 15:27:43.000 UTC``), an RFC 3339 timestamp (rsyslog's file format), no hostname
(``zscaler-nss: LEEF:...``), ``host/ip`` as the hostname, no tag, a tag with a pid but no colon
(``isid[1] CEF:0|...``), a lone colon for a tag (``firepower : %FTD-4-...``). A line with a
``<PRI>`` but no timestamp is taken as PRI plus content, as RFC 3164 section 4.3.3 tells a relay to.

``PRI`` is facility × 8 + severity, 0 to 191.

Decisions made here, for every format that uses the envelope:

* a timestamp without a zone is read in ``EnvelopeOptions.timezone`` (never the host's zone);
* a timestamp without a year gets ``EnvelopeOptions.year`` when set (replaying an archive), else
  the year that puts it nearest to now;
* zone abbreviations are read from ``ZONE_ABBREVIATIONS`` (fixed offsets; the ambiguous ones such
  as ``CST`` and ``IST`` are left out, so such a time is not understood rather than misread);
* rsyslog writes control characters as ``#`` + three octal digits (``#011`` tab, ``#012``
  newline); with ``decode_rsyslog_escapes`` these are turned back into the characters.

The module also holds small field helpers shared by the three parsers (IP, port, protocol).
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from settings.base import StrictModel
from store.records import Severity

MAX_PRI = 191
FACILITY_NAMES: tuple[str, ...] = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
)
SEVERITY_NAMES: tuple[str, ...] = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
# emerg/alert mean the system is unusable or needs action now; crit/err are failures; warning is the
# sensor's "look at this"; notice is normal but significant; info/debug are routine.
PRI_SEVERITY: dict[int, Severity] = {
    0: Severity.CRITICAL, 1: Severity.CRITICAL, 2: Severity.HIGH, 3: Severity.HIGH,
    4: Severity.MEDIUM, 5: Severity.LOW, 6: Severity.INFO, 7: Severity.INFO,
}

MONTHS: dict[str, int] = {
    name: number for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)
}
# Offsets in minutes. Only abbreviations with one meaning in practice.
ZONE_ABBREVIATIONS: dict[str, int] = {
    "UTC": 0, "UT": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 60, "BST": 60, "CET": 60, "CEST": 120,
    "MET": 60, "MEST": 120, "EET": 120, "EEST": 180, "MSK": 180, "EST": -300, "EDT": -240, "CDT": -300,
    "MST": -420, "MDT": -360, "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600,
    "JST": 540, "KST": 540, "AEST": 600, "AEDT": 660, "ACST": 570, "AWST": 480, "NZST": 720, "NZDT": 780,
}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NIL = "-"
BYTE_ORDER_MARK = "\ufeff"

PRI = re.compile(r"<(\d{1,3})>")
# After a PRI, "<digits><space>" is taken as an RFC 5424 VERSION (1-3 digits, no leading zero).
VERSION = re.compile(r"([1-9]\d{0,2}) ")
BSD_TIME = re.compile(
    r"(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})(?:\s+(?P<year>\d{4}))?\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?(?=\s|$)"
)
RFC3339_TIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt ](?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:[.,](?P<fraction>\d{1,9}))?(?P<offset>[Zz]|[+-]\d{2}:?\d{2})?"
)
EPOCH_TIME = re.compile(r"(?P<digits>\d{10}|\d{13})(?=\s)")
ALL_DIGITS = re.compile(r"[0-9]+")
NUMERIC_ZONE = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?")
ZONE_TOKEN = re.compile(r"\s+(\S+)")
IANA_ZONE_NAME = re.compile(r"[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)+")
# A tag is only recognised when it says so with a pid or a colon; a bare word is message text.
TAG = re.compile(r"(?P<tag>[^\s\[\]:]{1,128})(?:\[(?P<pid>[^\]\s]*)\])?(?P<colon>:)?(?=\s|$)")
RSYSLOG_CONTROL_ESCAPE = re.compile(r"#(0[0-3][0-7])")

Clock = Callable[[], datetime]


class MalformedSyslog(ValueError):
    """The line is not syslog; the message is the reason, ready for ``Rejected.reason``."""


class EnvelopeOptions(StrictModel):
    """Options every syslog-family format shares (``syslog``, ``cef``, ``leef``)."""

    timezone: str = "UTC"
    """IANA zone for timestamps that carry none (RFC 3164 headers, CEF ``rt`` without a zone)."""
    year: int | None = Field(None, ge=1970, le=9999)
    """Year for timestamps that carry none; unset means the year that puts the time nearest to now."""
    decode_rsyslog_escapes: bool = True
    """Turn rsyslog's ``#011``/``#012`` control-character escapes back into tab and newline."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_named(value)
        return value


def zone_named(name: str) -> tzinfo:
    """The zone for an IANA name; raises ``ValueError`` for an unknown one so a typo fails at config load."""
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from error


@lru_cache(maxsize=256)
def zone_from_token(token: str) -> tzinfo | None:
    """A zone written after a time: ``UTC``, ``CEST``, ``+0200``, ``GMT+01:00``, ``Europe/Berlin``; else ``None``."""
    if token in ZONE_ABBREVIATIONS:
        return timezone(timedelta(minutes=ZONE_ABBREVIATIONS[token]))
    numeric = NUMERIC_ZONE.fullmatch(token)
    if numeric:
        sign, hours, minutes = numeric.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset > timedelta(hours=14):
            return None
        return timezone(-offset if sign == "-" else offset)
    if IANA_ZONE_NAME.fullmatch(token):  # so hostnames such as "mymachine/10.1.1.16" never reach the zone database
        try:
            return ZoneInfo(token)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None


class TimeRules:
    """Turns the pieces of a written time into an aware UTC ``datetime`` by the source's rules."""

    def __init__(self, options: EnvelopeOptions, clock: Clock | None = None) -> None:
        self.zone = zone_named(options.timezone)
        self.fixed_year = options.year
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def now(self) -> datetime:
        return self._clock().astimezone(timezone.utc)

    def build(self, year: int | None, month: int, day: int, hour: int, minute: int, second: int,
              fraction: str | None, zone: tzinfo | None) -> datetime:
        """Raises ``ValueError`` naming the problem when the parts are no real time."""
        zone = zone or self.zone
        # A leap second has no datetime; the second before it is the honest nearest value.
        second = min(second, 59)
        micro = int((fraction or "0").ljust(6, "0")[:6])
        if year is None:
            year = self.fixed_year
        if year is not None:
            return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone).astimezone(timezone.utc)
        now = self.now()
        nearest: datetime | None = None
        for candidate_year in (now.year - 1, now.year, now.year + 1):
            try:
                candidate = datetime(candidate_year, month, day, hour, minute, second, micro, tzinfo=zone)
            except ValueError:
                continue  # 29 February outside a leap year
            if nearest is None or abs(candidate - now) < abs(nearest - now):
                nearest = candidate
        if nearest is None:
            # Either no such day in any year, or an impossible hour/minute: let datetime name it.
            datetime(2000, month, day, hour, minute, second, micro)
            raise ValueError(f"day {day} of month {month} falls in no year near {now.year}")
        return nearest.astimezone(timezone.utc)

    def from_bsd(self, match: re.Match[str], zone: tzinfo | None) -> datetime:
        month = MONTHS.get(match["month"].lower())
        if month is None:
            raise ValueError(f"{match['month']!r} is not a month name")
        year = int(match["year"]) if match["year"] else None
        return self.build(year, month, int(match["day"]), int(match["hour"]), int(match["minute"]),
                          int(match["second"]), match["fraction"], zone)

    def from_rfc3339(self, match: re.Match[str]) -> datetime:
        offset = match["offset"]
        zone = timezone.utc if offset in ("Z", "z") else (zone_from_token(offset) if offset else None)
        return self.build(int(match["year"]), int(match["month"]), int(match["day"]), int(match["hour"]),
                          int(match["minute"]), int(match["second"]), match["fraction"], zone)


def epoch_time(digits: str) -> datetime:
    """Seconds (up to 10 digits), milliseconds (13), microseconds (16) or nanoseconds (19) since 1970."""
    value = int(digits)
    if len(digits) <= 11:
        return EPOCH + timedelta(seconds=value)
    if len(digits) <= 14:
        return EPOCH + timedelta(milliseconds=value)
    if len(digits) <= 17:
        return EPOCH + timedelta(microseconds=value)
    return EPOCH + timedelta(microseconds=value // 1000)


def parse_time_value(text: str, times: TimeRules) -> datetime | None:
    """A time written as a field value (CEF ``rt``, LEEF ``devTime``): epoch digits, ``MMM dd [yyyy]
    HH:mm:ss[.SSS] [zone]`` or ISO 8601. ``None`` when it is none of these or no real time."""
    text = text.strip()
    try:
        if ALL_DIGITS.fullmatch(text):
            return epoch_time(text) if len(text) <= 20 else None
        bsd = BSD_TIME.match(text)
        if bsd:
            rest = text[bsd.end():].strip()
            zone = zone_from_token(rest) if rest else None
            if rest and zone is None:
                return None
            return times.from_bsd(bsd, zone)
        iso = RFC3339_TIME.fullmatch(text)
        if iso:
            return times.from_rfc3339(iso)
    except (ValueError, OverflowError):
        return None
    return None


def decode_rsyslog_escapes(text: str) -> str:
    if "#0" not in text:
        return text
    return RSYSLOG_CONTROL_ESCAPE.sub(lambda match: chr(int(match[1], 8)), text)


@dataclass(slots=True)
class SyslogHeader:
    """What the envelope said. ``message`` is everything after it, unchanged apart from a leading BOM."""

    dialect: str  # "rfc5424", "rfc3164", "pri-only", or "epoch" (an ArcSight logger prefix)
    message: str
    pri: int | None = None
    version: int | None = None
    timestamp: datetime | None = None
    host: str | None = None
    app: str | None = None
    pid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def facility(self) -> str | None:
        return None if self.pri is None else FACILITY_NAMES[self.pri >> 3]

    @property
    def severity_name(self) -> str | None:
        return None if self.pri is None else SEVERITY_NAMES[self.pri & 7]

    @property
    def severity(self) -> Severity | None:
        return None if self.pri is None else PRI_SEVERITY[self.pri & 7]

    @property
    def host_ip(self) -> str | None:
        """The sender's address when the hostname is one, or ends in one (``mymachine/10.1.1.16``)."""
        if not self.host:
            return None
        return ip_or_none(self.host.rpartition("/")[2])

    def describe(self) -> dict[str, Any]:
        """The envelope for ``Event.extra``: only what the line actually carried."""
        described: dict[str, Any] = {"format": self.dialect}
        if self.pri is not None:
            described.update(pri=self.pri, facility=self.facility, severity=self.severity_name)
        for name in ("version", "host", "app", "pid", "msgid"):
            value = getattr(self, name)
            if value is not None:
                described[name] = value
        if self.host_ip:
            described["host_ip"] = self.host_ip
        if self.timestamp is not None:
            described["time"] = self.timestamp.isoformat()
        if self.structured_data:
            described["structured_data"] = self.structured_data
        return described


def parse_envelope(line: str, times: TimeRules, *, allow_epoch: bool = False) -> SyslogHeader:
    """Read the syslog header at the start of ``line``; raise ``MalformedSyslog`` when there is none.

    ``allow_epoch`` also accepts ``1493738863000 host`` (what ArcSight loggers put before CEF); it is
    off for plain syslog, where a line starting with a number is not syslog.
    """
    position = 0
    pri: int | None = None
    if line.startswith("<"):
        match = PRI.match(line)
        if not match:
            raise MalformedSyslog(f"PRI {line[:6]!r} is not <0..191>")
        pri = int(match[1])
        if pri > MAX_PRI:
            raise MalformedSyslog(f"PRI <{pri}> is out of range 0-{MAX_PRI}")
        position = match.end()
        while line.startswith(" ", position):
            position += 1

    version = VERSION.match(line, position)
    if version and pri is not None:
        return _rfc5424(line[version.end():], pri, int(version[1]), times)

    rest = line[position:]
    iso = RFC3339_TIME.match(rest)
    if iso and rest[iso.end():iso.end() + 1] in (" ", ""):
        if _looks_like_rfc5424_fields(rest):
            return _rfc5424(rest, pri, None, times)
        return _rfc3164(rest[iso.end():], pri, _checked(lambda: times.from_rfc3339(iso), iso[0]))

    bsd = BSD_TIME.match(rest)
    if bsd:
        end = bsd.end()
        zone = None
        zone_token = ZONE_TOKEN.match(rest, end)
        if zone_token:
            zone = zone_from_token(zone_token[1])
            if zone is not None:
                end = zone_token.end()
        return _rfc3164(rest[end:], pri, _checked(lambda: times.from_bsd(bsd, zone), rest[bsd.start():end]))

    epoch = EPOCH_TIME.match(rest) if allow_epoch else None
    if epoch:
        header = _rfc3164(rest[epoch.end():], pri, _checked(lambda: epoch_time(epoch["digits"]), epoch[0]))
        header.dialect = "epoch"
        return header

    if pri is None:
        raise MalformedSyslog("neither <PRI> nor a timestamp at the start: not a syslog line")
    return SyslogHeader(dialect="pri-only", pri=pri, message=rest)


def parse_prefix(prefix: str, times: TimeRules) -> SyslogHeader | None:
    """The syslog header in front of a CEF or LEEF payload, or ``None`` when the prefix is not one."""
    if not prefix.strip():
        return None
    try:
        return parse_envelope(prefix, times, allow_epoch=True)
    except MalformedSyslog:
        return None


def _checked(read: Callable[[], datetime], text: str) -> datetime:
    try:
        return read()
    except (ValueError, OverflowError) as error:
        raise MalformedSyslog(f"timestamp {text!r} is not a real time ({error})") from None


def _looks_like_rfc5424_fields(rest: str) -> bool:
    """An RFC 5424 line that lost its ``<PRI>VERSION``: six fields, the last one structured data."""
    parts = rest.split(" ", 5)
    return len(parts) == 6 and parts[5][:1] in ("-", "[") and not parts[2].endswith(":")


def _nil(value: str) -> str | None:
    return None if value == NIL else value


def _rfc5424(rest: str, pri: int | None, version: int | None, times: TimeRules) -> SyslogHeader:
    parts = rest.split(" ", 5)
    if len(parts) < 6:
        raise MalformedSyslog(
            f"RFC 5424 header has {len(parts)} of 6 fields "
            "(TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA)")
    stamp_text, host, app, pid, msgid, tail = parts
    timestamp = None
    if stamp_text != NIL:
        stamp = RFC3339_TIME.fullmatch(stamp_text)
        if not stamp:
            raise MalformedSyslog(f"RFC 5424 TIMESTAMP {stamp_text[:40]!r} is not RFC 3339")
        timestamp = _checked(lambda: times.from_rfc3339(stamp), stamp_text)
    structured_data, message = _structured_data(tail)
    return SyslogHeader(
        dialect="rfc5424", pri=pri, version=version, timestamp=timestamp, host=_nil(host), app=_nil(app),
        pid=_nil(pid), msgid=_nil(msgid), structured_data=structured_data,
        message=message.removeprefix(BYTE_ORDER_MARK),
    )


def _rfc3164(rest: str, pri: int | None, timestamp: datetime) -> SyslogHeader:
    host, tag, pid, message = _host_and_tag(rest)
    return SyslogHeader(dialect="rfc3164", pri=pri, timestamp=timestamp, host=host, app=tag, pid=pid,
                        message=message)


def _host_and_tag(rest: str) -> tuple[str | None, str | None, str | None, str]:
    rest = rest.lstrip(" ")
    if not rest:
        return None, None, None, ""
    first = TAG.match(rest)
    if first and (first["pid"] is not None or first["colon"]):
        return None, first["tag"], first["pid"], _after_tag(rest, first.end())
    host, _, after_host = rest.partition(" ")
    after_host = after_host.lstrip(" ")
    if after_host.startswith(":"):
        return host, None, None, after_host[1:].lstrip(" ")
    tag = TAG.match(after_host)
    if tag and (tag["pid"] is not None or tag["colon"]):
        return host, tag["tag"], tag["pid"], _after_tag(after_host, tag.end())
    return host, None, None, after_host


def _after_tag(text: str, end: int) -> str:
    return text[end + 1:] if text.startswith(" ", end) else text[end:]


def _structured_data(text: str) -> tuple[dict[str, dict[str, Any]], str]:
    """Parse STRUCTURED-DATA at the start of ``text``; return it and the MSG after it."""
    if text.startswith(NIL):
        elements: dict[str, dict[str, Any]] = {}
        position = 1
    elif text.startswith("["):
        elements, position = _sd_elements(text)
    else:
        raise MalformedSyslog(f"RFC 5424 STRUCTURED-DATA must be '-' or start with '[', not {text[:20]!r}")
    if position == len(text):
        return elements, ""
    if text[position] != " ":
        raise MalformedSyslog(f"RFC 5424: {text[position:position + 20]!r} follows STRUCTURED-DATA without a space")
    return elements, text[position + 1:]


def _sd_elements(text: str) -> tuple[dict[str, dict[str, Any]], int]:
    elements: dict[str, dict[str, Any]] = {}
    position, length = 0, len(text)
    while position < length and text[position] == "[":
        start = position + 1
        position = start
        while position < length and text[position] not in ' ]="':
            position += 1
        sd_id = text[start:position]
        if not sd_id:
            raise MalformedSyslog(f"RFC 5424 structured data: empty SD-ID at offset {start}")
        params = elements.setdefault(sd_id, {})
        while True:
            if position >= length:
                raise MalformedSyslog(f"RFC 5424 structured data: element [{sd_id} is not closed with ']'")
            char = text[position]
            if char == "]":
                position += 1
                break
            if char != " ":
                raise MalformedSyslog(f"RFC 5424 structured data: unexpected {char!r} in element [{sd_id}")
            name, value, position = _sd_param(text, position + 1, sd_id)
            if name in params:  # RFC 5424 lets a parameter repeat: keep every value
                previous = params[name]
                params[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                params[name] = value
    return elements, position


def _sd_param(text: str, start: int, sd_id: str) -> tuple[str, str, int]:
    equals = text.find("=", start)
    name = text[start:equals] if equals != -1 else ""
    if not name or any(char in name for char in ' ]"'):
        raise MalformedSyslog(f"RFC 5424 structured data: bad parameter name in element [{sd_id}")
    if not text.startswith('"', equals + 1):
        raise MalformedSyslog(f"RFC 5424 structured data: value of {sd_id} {name} is not in double quotes")
    value: list[str] = []
    position = equals + 2
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text) and text[position + 1] in '"]\\':
            value.append(text[position + 1])
            position += 2
            continue
        if char == '"':
            return name, "".join(value), position + 1
        value.append(char)
        position += 1
    raise MalformedSyslog(f"RFC 5424 structured data: value of {sd_id} {name} has no closing quote")


# Field helpers shared by the syslog-family parsers.

IANA_PROTOCOLS: dict[str, str] = {"1": "icmp", "2": "igmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp",
                                  "51": "ah", "58": "ipv6-icmp", "132": "sctp"}


def ip_or_none(value: Any) -> str | None:
    """The address in canonical text form, or ``None`` for anything that is not one (``-``, a hostname)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def port_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and ALL_DIGITS.fullmatch(value.strip()) and len(value.strip()) <= 5:
        number = int(value)
    else:
        return None
    return number if 0 <= number <= 65535 else None


def protocol_or_none(value: Any) -> str | None:
    """Lower-case protocol name; IANA numbers for the common ones become names (``6`` → ``tcp``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return IANA_PROTOCOLS.get(value, value.lower())


class LineParserBase:
    """What the syslog, CEF and LEEF parsers share: stateless, one line at a time, the source's time rules."""

    def __init__(self, sensor: str, options: Any, clock: Clock | None = None) -> None:
        self.sensor = sensor
        self.options = options
        self.times = TimeRules(options, clock)

    def preamble(self, line: str) -> bool:
        return False
