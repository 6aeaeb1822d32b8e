"""Zeek logs, TSV or JSON, decided line by line: a line starting with ``{`` is JSON, ``#`` is a TSV header.

**TSV** (Zeek's default ASCII writer). A header block opens each file::

    #separator \\x09          the column separator, written with \\xNN escapes
    #set_separator  ,        between the elements of set[...] / vector[...] / table[...] values
    #empty_field    (empty)  an empty string or container
    #unset_field    -        no value (None)
    #path           conn     the log's name: it becomes ``Event.kind``
    #open / #close           when the file was opened / closed (ignored)
    #fields         ts  uid  id.orig_h ...
    #types          time string addr ...

Values may carry ``\\xNN`` escapes (a separator or non-printable byte inside a value) and ``\\\\``
for a backslash. ``#types`` converts columns: count/int/port → int, double/interval → float,
bool ``T``/``F``, containers → lists. A data line before any ``#fields`` header is rejected.

**JSON** (``LogAscii::use_json`` or the json-streaming-logs package): one flat object per line
with dotted keys (``id.orig_h``), ``_path`` naming the log, ``ts`` as epoch seconds (float),
epoch milliseconds (int) or an ISO 8601 string.

The log kind comes from ``#path`` / ``_path``, else ``Options.path`` (for a JSON file written
without ``_path``); with none of them a record is rejected. Fields used (all logs):
``ts``, ``uid``, ``id.orig_h/p`` → src, ``id.resp_h/p`` → dst, ``proto``, ``service`` →
app_proto (else the protocol the log is about). Per log:

* ``notice``   note → signature_id, msg → signature, note's namespace → category; src/dst/p when no id
* ``weird``    name → signature_id and signature, addl
* ``intel``    seen.indicator / seen.indicator_type / seen.where, sources; the indicator fills domain, url or file_hash
* ``dns``      query → domain;  ``http`` host+uri → url, host → domain, user_agent, method
* ``ssl``      server_name → domain, ja3;  ``conn`` duration, bytes, conn_state, history
* ``modbus*``  func → ics_function;  ``dnp3*`` fc_request (else fc_reply) or function_code → ics_function
* ``s7comm*``  function_name (or the user-data subfunction_name) → ics_function
* ``cip*``     cip_service → ics_function;  ``enip`` enip_command → ics_function
* ``known_services``, ``known_modbus``, ``software`` — the host they describe → dst_ip

Severity: intel → high; notice → medium; weird → low; an ICS write / control / restart / stop
request → medium; everything else (conn, dns, http, ssl, x509, snmp, rdp, syslog, software,
known_*, any other log) → info. Sensor-health logs (``Options.skip_paths``: metrics, stats,
reporter, loaded_scripts ...) are skipped. See ``docs/event-schema-suricata-zeek.md``.
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator

from collectors.sensors.suricata_eve import CIP_CONTROL_WORDS, DNP3_CONTROL_FUNCTIONS
from settings.base import StrictModel
from store.records import Event, Rejected, Severity

FORMAT = "zeek"

NOTICE_SEVERITY = Severity.MEDIUM
INTEL_SEVERITY = Severity.HIGH
WEIRD_SEVERITY = Severity.LOW
ICS_CONTROL_SEVERITY = Severity.MEDIUM
DEFAULT_SEVERITY = Severity.INFO

DEFAULT_SKIP_PATHS = (
    "corelight_metrics_*", "stats", "capture_loss", "loaded_scripts", "packet_filter", "reporter",
    "broker", "cluster", "print", "prof", "config", "telemetry*", "analyzer_debug",
)
# Logs that are not about one application protocol, so their name never stands in for app_proto.
NOT_A_PROTOCOL = frozenset({
    "conn", "conn_long", "notice", "notice_alarm", "weird", "intel", "files", "pe", "x509", "ocsp",
    "software", "known_hosts", "known_services", "known_certs", "known_devices", "known_modbus",
    "dpd", "analyzer", "tunnel", "signatures", "netcontrol", "openflow", "unified2",
})
# ICSNPP and Zeek name several logs after one protocol (modbus_detailed, dnp3_control, s7comm_plus ...).
PROTOCOL_FAMILIES = ("s7comm_plus", "s7comm", "modbus", "dnp3", "cip", "enip", "bacnet", "bsap", "ethercat", "opcua", "genisys", "profinet")

MODBUS_CONTROL_FUNCTIONS = frozenset({"diagnostics", "unknown-90", "program_484", "program_584_984", "program_concept"})
S7_CONTROL_CODES = frozenset({"0x05", "0x1a", "0x1b", "0x1c", "0x28", "0x29"})  # write, download, PLC control, PLC stop
S7_CONTROL_SUBFUNCTIONS = frozenset({"set_clock", "delete_block", "insert_block", "plc_stop", "plc_start"})
S7PLUS_CONTROL_WORDS = ("set_", "delete_", "write", "invoke")

_VALID_PATH = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_TSV_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})|\\\\")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_MILLIS_ABOVE = 100_000_000_000  # seconds would be the year 5138: an int this large is milliseconds


class Options(StrictModel):
    """``options:`` of a ``zeek`` source."""

    path: str | None = None
    """Log kind for records that do not name one (a JSON file without ``_path``, a TSV without ``#path``)."""
    skip_paths: tuple[str, ...] = DEFAULT_SKIP_PATHS
    """Log names (shell patterns) that are sensor health, not observations: returned as skipped."""
    naive_timezone: str = "UTC"
    """Zone for an ISO ``ts`` written without an offset."""

    @field_validator("path")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not _VALID_PATH.fullmatch(value):
            raise ValueError(f"not a Zeek log name: {value!r}")
        return value

    @field_validator("naive_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def make_parser(sensor: str, options: Options | None = None) -> ZeekLineParser:
    return ZeekLineParser(sensor, options or Options())


class _Header:
    """What the TSV header block of the current file has said so far."""

    def __init__(self) -> None:
        self.separator = "\t"
        self.set_separator = ","
        self.empty = "(empty)"
        self.unset = "-"
        self.path: str | None = None
        self.fields: list[str] | None = None
        self.types: list[str] | None = None
        self.converters: list[Callable[[str], Any]] = []
        self.containers: list[bool] = []

    def prepare(self) -> None:
        """Column converters for ``#fields``, typed when ``#types`` matches it, plain text otherwise."""
        if self.fields is None:
            return
        types = self.types if self.types is not None and len(self.types) == len(self.fields) else ["string"] * len(self.fields)
        self.containers = [_is_container(kind) for kind in types]
        self.converters = [self._converter(kind) for kind in types]

    def _converter(self, kind: str) -> Callable[[str], Any]:
        if _is_container(kind):
            element = _scalar_converter(kind[kind.index("[") + 1 : -1])
            set_separator, unset = self.set_separator, self.unset

            def container(text: str) -> list[Any]:
                return [None if item == unset else element(item) for item in text.split(set_separator)]

            return container
        return _scalar_converter(kind)


class ZeekLineParser:
    """Keeps the current TSV header; JSON lines stand alone."""

    def __init__(self, sensor: str, options: Options) -> None:
        self.sensor = sensor
        self.options = options
        self._naive_tz: tzinfo = timezone.utc if options.naive_timezone == "UTC" else ZoneInfo(options.naive_timezone)
        self._header = _Header()
        self._line_no = 0
        self._path_plans: dict[str, _PathPlan | None] = {}

    def preamble(self, line: str) -> bool:
        return line.startswith("#")

    def __call__(self, line: str) -> Event | Rejected | None:
        self._line_no += 1
        first = line[:1]
        if first == "\ufeff":  # a byte-order mark left by an editor or a Windows copy
            line = line[1:]
            first = line[:1]
        if first == "#":
            return self._header_line(line)
        if first == "{":
            return self._json_line(line)
        if not first or first.isspace():
            stripped = line.strip()
            if not stripped:
                return None
            if stripped[0] == "{":
                return self._json_line(line)
        return self._tsv_line(line)

    # -- TSV -----------------------------------------------------------------------------------

    def _header_line(self, line: str) -> Rejected | None:
        header = self._header
        text = line.rstrip("\r")
        if text.startswith("#separator"):
            separator = _unescape(text[len("#separator") :].lstrip(" "))
            if not separator:
                return Rejected("empty #separator", self._location(), line)
            self._header = _Header()  # a new file's header block starts here
            self._header.separator = separator
            return None
        directive, found, value = text.partition(header.separator)
        if not found:
            return None  # "#open XXXX", "### BTest ...": comments to us
        if directive == "#fields":
            header.fields = value.split(header.separator)
        elif directive == "#types":
            header.types = value.split(header.separator)
        elif directive == "#path":
            header.path = value
        elif directive in ("#set_separator", "#empty_field", "#unset_field"):
            decoded = _unescape(value)
            if not decoded:
                return Rejected(f"empty {directive}", self._location(), line)
            attribute = {"#set_separator": "set_separator", "#empty_field": "empty", "#unset_field": "unset"}[directive]
            setattr(header, attribute, decoded)
        else:
            return None
        header.prepare()
        if directive == "#types" and header.fields is not None and len(header.types or ()) != len(header.fields):
            return Rejected(f"#types has {len(header.types or ())} columns, #fields {len(header.fields)}", self._location(), line)
        return None

    def _tsv_line(self, line: str) -> Event | Rejected | None:
        header = self._header
        if header.fields is None:
            return Rejected("data line before any #fields header", self._location(), line)
        values = line.rstrip("\r").split(header.separator)
        if len(values) != len(header.fields):
            return Rejected(f"{len(values)} values for {len(header.fields)} #fields", self._location(), line)
        unset, empty = header.unset, header.empty
        record: dict[str, Any] = {}
        try:
            for name, convert, is_container, text in zip(header.fields, header.converters, header.containers, values):
                if text == unset:
                    record[name] = None
                elif text == empty:
                    record[name] = [] if is_container else ""
                else:
                    record[name] = convert(text)
        except ValueError as exc:
            return Rejected(f"value does not fit its #types column: {exc}", self._location(), line)
        path = header.path or self.options.path
        if path is None:
            return Rejected("no #path header and no path option", self._location(), line)
        return self._build(path, record, line)

    # -- JSON ----------------------------------------------------------------------------------

    def _json_line(self, line: str) -> Event | Rejected | None:
        try:
            record = json.loads(line)
        except ValueError as exc:
            detail = f"{exc.msg} (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            return Rejected(f"invalid JSON: {detail}", self._location(), line)
        except RecursionError:
            return Rejected("invalid JSON: nested too deeply", self._location(), line)
        if not isinstance(record, dict):
            return Rejected("not a JSON object", self._location(), line)
        path = record.get("_path")
        if path is None:
            path = self.options.path
            if path is None:
                return Rejected("no _path in the record and no path option", self._location(), line)
        nested_id = record.get("id")
        if isinstance(nested_id, dict):  # written by tools that un-flatten Zeek's dotted names
            for key, value in nested_id.items():
                record.setdefault(f"id.{key}", value)
        return self._build(path, record, line)

    # -- both ----------------------------------------------------------------------------------

    def _build(self, path: Any, record: dict[str, Any], raw: str) -> Event | Rejected | None:
        plan = self._path_plans.get(path, _UNSEEN) if isinstance(path, str) else _INVALID
        if plan is _UNSEEN:
            plan = self._new_plan(path)
        if plan is _INVALID:
            return Rejected(f"not a Zeek log name: {str(path)[:64]!r}", self._location(), raw)
        if plan is None:
            return None
        if "ts" not in record or record["ts"] is None:
            return Rejected("missing ts", self._location(), raw)
        ts = _zeek_time(record["ts"], self._naive_tz)
        if ts is None:
            return Rejected(f"unparseable ts {str(record['ts'])[:64]!r}", self._location(), raw)
        extra: dict[str, Any] = {}
        proto = record.get("proto")
        event = Event(
            ts=ts,
            sensor=self.sensor,
            kind=path,
            raw=raw,
            src_ip=_address(record.get("id.orig_h"), "orig_h", extra),
            src_port=_port(record.get("id.orig_p")),
            dst_ip=_address(record.get("id.resp_h"), "resp_h", extra),
            dst_port=_port(record.get("id.resp_p")),
            proto=proto.lower() if isinstance(proto, str) and proto else None,
            app_proto=_service(record.get("service")) or plan.protocol,
            extra=extra,
        )
        for key, name in (("uid", "uid"), ("community_id", "community_id"), ("_system_name", "system_name")):
            value = record.get(key)
            if isinstance(value, str) and value:
                extra[name] = value
        plan.apply(event, record)
        if event.sensor_severity is None:
            event.sensor_severity = DEFAULT_SEVERITY
        return event

    def _new_plan(self, path: str) -> _PathPlan | None:
        if not _VALID_PATH.fullmatch(path):
            plan: _PathPlan | None = _INVALID
        elif any(fnmatchcase(path, pattern) for pattern in self.options.skip_paths):
            plan = None
        else:
            plan = _PathPlan.for_path(path)
        if len(self._path_plans) < 1024:  # a log has a handful of paths; a flood of bogus ones must not grow this
            self._path_plans[path] = plan
        return plan

    def _location(self) -> str:
        return f"line {self._line_no}"


class _PathPlan:
    """How records of one log path are mapped: its protocol and its field handler."""

    __slots__ = ("protocol", "apply")

    def __init__(self, protocol: str | None, apply: Callable[[Event, dict[str, Any]], None]) -> None:
        self.protocol = protocol
        self.apply = apply

    @classmethod
    def for_path(cls, path: str) -> _PathPlan:
        family = next((f for f in PROTOCOL_FAMILIES if path == f or path.startswith(f + "_")), None)
        if path in _HANDLERS:
            handler = _HANDLERS[path]
        elif family is not None:
            handler = _FAMILY_HANDLERS.get(family, _nothing)
        else:
            handler = _nothing
        if path in NOT_A_PROTOCOL or path.startswith("known_"):
            protocol = None
        else:
            protocol = family or path
        return cls(protocol, handler)


# -- values ----------------------------------------------------------------------------------------


def _unescape(text: str) -> str:
    """Undo Zeek's ASCII escaping: ``\\xNN`` bytes (decoded as UTF-8) and ``\\\\``."""
    if "\\" not in text:
        return text
    pieces: list[bytes] = []
    position = 0
    for match in _TSV_ESCAPE.finditer(text):
        pieces.append(text[position : match.start()].encode("utf-8", "surrogateescape"))
        pieces.append(bytes([int(match.group(1), 16)]) if match.group(1) else b"\\")
        position = match.end()
    pieces.append(text[position:].encode("utf-8", "surrogateescape"))
    return b"".join(pieces).decode("utf-8", "backslashreplace")


def _is_container(kind: str) -> bool:
    return kind.endswith("]") and "[" in kind


def _scalar_converter(kind: str) -> Callable[[str], Any]:
    if kind in ("count", "int", "port"):
        return int
    if kind in ("double", "interval"):
        return float
    if kind == "bool":
        return _bool
    return _unescape


def _bool(text: str) -> bool:
    if text == "T":
        return True
    if text == "F":
        return False
    raise ValueError(f"not a bool: {text[:16]!r}")


def _zeek_time(value: Any, naive_tz: tzinfo) -> datetime | None:
    try:
        if isinstance(value, str):
            if value[:1].isdigit() and "T" not in value and "-" not in value:
                return _epoch_text(value)
            ts = datetime.fromisoformat(value)
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=naive_tz)
            return ts.astimezone(timezone.utc)
        if type(value) is int:
            return _EPOCH + (timedelta(milliseconds=value) if value > _EPOCH_MILLIS_ABOVE else timedelta(seconds=value))
        if type(value) is float and math.isfinite(value):
            text = repr(value)
            return _epoch_text(text) if "e" not in text else datetime.fromtimestamp(value, timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _epoch_text(text: str) -> datetime | None:
    """``1521911720.629574`` exactly, without float rounding."""
    whole, _, fraction = text.partition(".")
    if not (whole.isascii() and whole.isdigit()) or (fraction and not (fraction.isascii() and fraction.isdigit())):
        return None
    return _EPOCH + timedelta(seconds=int(whole), microseconds=int((fraction + "000000")[:6]))


@lru_cache(maxsize=8192)
def _canonical_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _address(value: Any, key: str, extra: dict[str, Any]) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    canonical = _canonical_ip(value)
    if canonical:
        return canonical
    extra[f"invalid_{key}"] = value
    return None


def _port(value: Any) -> int | None:
    if type(value) is not int:
        if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5):
            return None
        value = int(value)
    return value if 0 <= value <= 65535 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _domain(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.strip().rstrip(".").lower()
    return name or None


def _service(value: Any) -> str | None:
    if isinstance(value, list):
        value = ",".join(str(item) for item in value if item)
    return value.lower() if isinstance(value, str) and value else None


def _function_name(value: Any) -> str | None:
    """"Write Variable" → ``write_variable``; "READ_COILS" → ``read_coils``."""
    if not isinstance(value, str) or not value:
        return None
    return _NON_WORD.sub("_", value.lower()).strip("_") or None


def _keep(event: Event, record: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = record.get(key)
        if value is not None and value != "" and value != []:
            event.extra[key] = value


# -- per-log handlers ------------------------------------------------------------------------------


def _nothing(event: Event, record: dict[str, Any]) -> None:
    return None


def _notice(event: Event, record: dict[str, Any]) -> None:
    note = _text(record.get("note"))
    event.signature_id = note
    event.signature = _text(record.get("msg")) or note
    event.category = note.split("::", 1)[0] if note and "::" in note else None
    event.sensor_severity = NOTICE_SEVERITY
    # Notices raised about a host rather than a connection carry src/dst/p instead of id.
    if event.src_ip is None:
        event.src_ip = _address(record.get("src"), "src", event.extra)
    if event.dst_ip is None:
        event.dst_ip = _address(record.get("dst"), "dst", event.extra)
    if event.dst_port is None:
        event.dst_port = _port(record.get("p"))
    _keep(event, record, "sub", "actions", "n")


def _weird(event: Event, record: dict[str, Any]) -> None:
    name = _text(record.get("name"))
    event.signature_id = name
    event.signature = name
    event.sensor_severity = WEIRD_SEVERITY
    _keep(event, record, "addl", "source")


def _intel(event: Event, record: dict[str, Any]) -> None:
    indicator = _text(record.get("seen.indicator"))
    indicator_type = _text(record.get("seen.indicator_type"))
    event.signature_id = indicator_type
    event.signature = indicator
    event.category = _text(record.get("seen.where"))
    event.sensor_severity = INTEL_SEVERITY
    if indicator and indicator_type:
        if indicator_type == "Intel::DOMAIN":
            event.domain = _domain(indicator)
        elif indicator_type == "Intel::URL":
            event.url = indicator
        elif indicator_type == "Intel::FILE_HASH":
            event.file_hash = indicator.lower()
    _keep(event, record, "sources", "matched", "seen.node", "fuid")


def _conn(event: Event, record: dict[str, Any]) -> None:
    _keep(event, record, "duration", "orig_bytes", "resp_bytes", "conn_state", "history", "orig_pkts", "resp_pkts",
          "local_orig", "local_resp")


def _dns(event: Event, record: dict[str, Any]) -> None:
    event.domain = _domain(record.get("query"))
    _keep(event, record, "qtype_name", "rcode_name")


def _http(event: Event, record: dict[str, Any]) -> None:
    host = _text(record.get("host"))
    uri = _text(record.get("uri"))
    if host:
        host = host.lower()
        event.domain = _domain(host.rsplit(":", 1)[0] if host.count(":") == 1 else host)
    if uri and uri.startswith("/"):
        event.url = (host or "") + uri
    elif uri and "://" in uri:
        event.url = uri
    event.user_agent = _text(record.get("user_agent"))
    method = _text(record.get("method"))
    event.http_method = method.upper() if method else None
    _keep(event, record, "status_code")


def _ssl(event: Event, record: dict[str, Any]) -> None:
    event.domain = _domain(record.get("server_name"))
    event.ja3 = _text(record.get("ja3"))
    _keep(event, record, "version", "validation_status", "established", "ja3s", "ja4")


def _known_host(event: Event, record: dict[str, Any]) -> None:
    """Inventory logs describe one host: it goes in dst_ip, "the asset the record is about"."""
    if event.dst_ip is None:
        event.dst_ip = _address(record.get("host"), "host", event.extra)
    if event.dst_port is None:
        event.dst_port = _port(record.get("port_num"))
    if event.proto is None:
        proto = _text(record.get("port_proto"))
        event.proto = proto.lower() if proto else None
    _keep(event, record, "device_type", "software_type", "name", "unparsed_version")


def _keeper(*keys: str) -> Callable[[Event, dict[str, Any]], None]:
    def keep(event: Event, record: dict[str, Any]) -> None:
        _keep(event, record, *keys)

    return keep


def _ics(event: Event, function: str | None, control: bool, code: Any = None) -> None:
    event.ics_function = function
    if code is not None:
        event.extra["ics_function_code"] = code
    if control:
        event.sensor_severity = ICS_CONTROL_SEVERITY


def _modbus(event: Event, record: dict[str, Any]) -> None:
    raw_function = _text(record.get("func"))
    function = raw_function.lower() if raw_function else None
    control = function is not None and ("write" in function or function in MODBUS_CONTROL_FUNCTIONS)
    _ics(event, function, control)
    _keep(event, record, "exception", "exception_code", "unit", "pdu_type", "register", "old_val", "new_val")


def _dnp3(event: Event, record: dict[str, Any]) -> None:
    raw_function = record.get("fc_request") or record.get("function_code") or record.get("fc_reply")
    function = _function_name(raw_function)
    _ics(event, function, function in DNP3_CONTROL_FUNCTIONS)
    _keep(event, record, "fc_reply", "iin", "block_type", "index_number", "operation_type", "trip_control_code")


def _s7comm(event: Event, record: dict[str, Any]) -> None:
    code = _text(record.get("function_code"))
    subfunction = _function_name(record.get("subfunction_name"))
    function_label = _text(record.get("function_name")) or ""
    user_data = record.get("rosctr_code") == 7 or function_label.startswith(("Request:", "Response:"))
    function = subfunction if user_data and subfunction else _function_name(function_label)
    is_response = record.get("rosctr_code") in (2, 3) or function_label.startswith("Response")
    control = not is_response and (
        (not user_data and code is not None and code.lower() in S7_CONTROL_CODES) or (subfunction in S7_CONTROL_SUBFUNCTIONS)
    )
    _ics(event, function, control, code)
    _keep(event, record, "rosctr_name", "subfunction_name", "error_class", "error_code")


def _s7comm_plus(event: Event, record: dict[str, Any]) -> None:
    function = _function_name(record.get("function_name"))
    is_request = record.get("opcode_name") == "Request"
    control = is_request and function is not None and function.startswith(S7PLUS_CONTROL_WORDS)
    _ics(event, function, control, _text(record.get("function_code")))
    _keep(event, record, "opcode_name")


def _cip(event: Event, record: dict[str, Any]) -> None:
    function = _function_name(record.get("cip_service"))
    is_request = record.get("direction") != "response"
    control = is_request and function is not None and any(word in function for word in CIP_CONTROL_WORDS)
    _ics(event, function, control, _text(record.get("cip_service_code")))
    _keep(event, record, "direction", "class_name", "cip_status", "vendor_name", "product_name", "device_type_name")


def _enip(event: Event, record: dict[str, Any]) -> None:
    # The encapsulation command (list identity, send RR data ...) never acts on the device itself.
    _ics(event, _function_name(record.get("enip_command")), False, _text(record.get("enip_command_code")))
    _keep(event, record, "enip_status")


_HANDLERS: dict[str, Callable[[Event, dict[str, Any]], None]] = {
    "notice": _notice,
    "notice_alarm": _notice,
    "weird": _weird,
    "intel": _intel,
    "conn": _conn,
    "conn_long": _conn,
    "dns": _dns,
    "http": _http,
    "ssl": _ssl,
    "known_services": _known_host,
    "known_hosts": _known_host,
    "known_modbus": _known_host,
    "software": _known_host,
    "x509": _keeper("fingerprint", "certificate.subject", "certificate.issuer"),
    "snmp": _keeper("version", "get_requests", "set_requests"),
    "rdp": _keeper("result", "security_protocol", "cookie"),
    "syslog": _keeper("facility", "severity"),
    "s7comm_plus": _s7comm_plus,
    "s7comm_known_devices": _keeper("automation_system_name", "module_name", "module_serial"),
    "cip_identity": _cip,
}
_FAMILY_HANDLERS: dict[str, Callable[[Event, dict[str, Any]], None]] = {
    "modbus": _modbus,
    "dnp3": _dnp3,
    "s7comm": _s7comm,
    "s7comm_plus": _s7comm_plus,
    "cip": _cip,
    "enip": _enip,
}
# Markers in the per-parser path cache: not looked at yet / not a usable log name.
_UNSEEN = _PathPlan(None, _nothing)
_INVALID = _PathPlan(None, _nothing)
