"""Suricata EVE JSON (``eve.json``): one JSON object per line, one line per Suricata record.

Every record carries ``timestamp`` (ISO 8601 with an offset such as ``+0200``, which
``datetime.fromisoformat`` accepts), ``event_type`` and usually the flow: ``src_ip``,
``src_port``, ``dest_ip``, ``dest_port``, ``proto`` (upper-case), ``app_proto``, ``flow_id``,
``community_id``. The rest lives in a sub-object named after the record type:

* ``alert``     ``alert.{signature_id, signature, category, severity (1 = highest), action, gid, rev}``
* ``anomaly``   ``anomaly.{type, event, layer, app_proto}`` (decoder / stream / app-layer anomalies)
* ``drop``      ``drop.{reason, ...}`` in IPS mode, sometimes with an ``alert`` block
* ``http``      ``http.{hostname, url, http_user_agent, http_method, status}``
* ``dns``       ``dns.{type, rrname, rrtype, rcode}`` (v1/v2) or ``dns.queries[].rrname`` (v3)
* ``tls``       ``tls.{sni, ja3.hash, ja3s.hash, ja4, version, subject, issuerdn}``
* ``fileinfo``  ``fileinfo.{filename, sha256, sha1, md5, size}``, often with an ``http`` block
* ``flow`` / ``netflow``  packet and byte counters
* ``modbus``    ``modbus.request.{function_raw, function_code, access_type, unit_id}``
* ``dnp3``      ``dnp3.application.function_code`` (a number: 13 is a cold restart)
* ``enip``      ``enip.request.{command, cip.service}``
* ``stats``     engine counters, 27-32 KB a line: skipped before any JSON parsing

Alerts logged with metadata carry ``http``/``tls``/``dns``/``files`` blocks too; those fill the
same application fields. Any other ``event_type`` (``netflow``, ``smb``, ``ssh``, ``pgsql``,
``mqtt``, ...) becomes an event of that kind with its flow fields: it still says who talked to
whom. ``Options.skip_event_types`` drops kinds a site does not want (``stats`` by default).

Pretty-printed objects spread over several lines (what ``jq`` or test suites write, never what
Suricata itself writes) are reassembled: a line that is exactly ``{`` opens an object and lines
are buffered until a closing ``}`` at column 0 makes it parse. Bounded by ``max_object_lines``
and ``max_object_bytes``. A single-line record that fails to parse is rejected on its own and
never starts a buffer, so a truncated line cannot swallow the good line after it.

Severity: ``alert.severity`` 1 → high, 2 → medium, 3 → low, 4 and above → info; ``anomaly`` →
low; ``drop`` → its alert's severity, else medium; an ICS write / control / restart function in a
``modbus``/``dnp3``/``enip`` record → medium; every other record has no sensor severity.
See ``docs/event-schema-suricata-zeek.md`` for the full field table.
"""
from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

try:  # msgspec decodes a line into the same dict as json.loads, 2-3x faster; json.loads stays the reference
    from msgspec.json import Decoder as _MsgspecDecoder
except ImportError:  # pragma: no cover - msgspec is a declared dependency; keep working without it
    _MsgspecDecoder = None

from settings.base import ByteSize, StrictModel
from store.records import Event, Rejected, Severity

FORMAT = "suricata-eve"

ALERT_SEVERITY: dict[int, Severity] = {1: Severity.HIGH, 2: Severity.MEDIUM, 3: Severity.LOW}
ALERT_SEVERITY_BEYOND_TABLE = Severity.INFO
ANOMALY_SEVERITY = Severity.LOW
DROP_SEVERITY_WITHOUT_ALERT = Severity.MEDIUM
ICS_CONTROL_SEVERITY = Severity.MEDIUM
DROP_ACTION = "blocked"

# Kinds that are not themselves an application protocol, so they never stand in for app_proto.
NOT_A_PROTOCOL = frozenset({"alert", "anomaly", "drop", "fileinfo", "files", "flow", "netflow", "frame", "pkthdr"})
FLOW_FIELDS = {
    "pkts_toserver": "pkts_toserver", "pkts_toclient": "pkts_toclient", "bytes_toserver": "bytes_toserver",
    "bytes_toclient": "bytes_toclient", "pkts": "pkts", "bytes": "bytes", "state": "flow_state", "reason": "flow_reason",
}

# Named as Zeek names them (lower-case), so both sensors give the pipeline the same words.
MODBUS_FUNCTIONS: dict[int, str] = {
    1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers", 4: "read_input_registers",
    5: "write_single_coil", 6: "write_single_register", 7: "read_exception_status", 8: "diagnostics",
    11: "get_comm_event_counter", 12: "get_comm_event_log", 15: "write_multiple_coils",
    16: "write_multiple_registers", 17: "report_slave_id", 20: "read_file_record", 21: "write_file_record",
    22: "mask_write_register", 23: "read_write_multiple_registers", 24: "read_fifo_queue",
    43: "encap_interface_transport", 90: "schneider_umas",
}
# Writes, diagnostics (can restart the device or force listen-only mode) and UMAS (PLC programming,
# start/stop on Schneider controllers).
MODBUS_CONTROL_CODES = frozenset({5, 6, 8, 15, 16, 21, 22, 23, 90})

DNP3_FUNCTIONS: dict[int, str] = {
    0: "confirm", 1: "read", 2: "write", 3: "select", 4: "operate", 5: "direct_operate",
    6: "direct_operate_nr", 7: "immed_freeze", 8: "immed_freeze_nr", 9: "freeze_clear",
    10: "freeze_clear_nr", 11: "freeze_at_time", 12: "freeze_at_time_nr", 13: "cold_restart",
    14: "warm_restart", 15: "initialize_data", 16: "initialize_appl", 17: "start_appl", 18: "stop_appl",
    19: "save_config", 20: "enable_unsolicited", 21: "disable_unsolicited", 22: "assign_class",
    23: "delay_measure", 24: "record_current_time", 25: "open_file", 26: "close_file", 27: "delete_file",
    28: "get_file_info", 29: "authenticate_file", 30: "abort_file", 31: "activate_config",
    32: "authenticate_req", 33: "authenticate_err", 129: "response", 130: "unsolicited_response",
    131: "authenticate_resp",
}
DNP3_CONTROL_FUNCTIONS = frozenset({
    "write", "select", "operate", "direct_operate", "direct_operate_nr", "freeze_clear", "freeze_clear_nr",
    "cold_restart", "warm_restart", "initialize_data", "initialize_appl", "start_appl", "stop_appl",
    "save_config", "disable_unsolicited", "delete_file", "activate_config",
})

CIP_SERVICES: dict[int, str] = {
    0x01: "get_attributes_all", 0x02: "set_attributes_all", 0x03: "get_attribute_list",
    0x04: "set_attribute_list", 0x05: "reset", 0x06: "start", 0x07: "stop", 0x08: "create", 0x09: "delete",
    0x0A: "multiple_service_packet", 0x0D: "apply_attributes", 0x0E: "get_attribute_single",
    0x10: "set_attribute_single", 0x15: "restore", 0x16: "save", 0x4C: "read_tag", 0x4D: "write_tag",
    0x4E: "read_modify_write_tag", 0x52: "read_tag_fragmented", 0x53: "write_tag_fragmented",
}
CIP_CONTROL_WORDS = ("set_attribute", "reset", "start", "stop", "create", "delete", "apply", "restore", "write")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[\s\-]+")


class Options(StrictModel):
    """``options:`` of a ``suricata-eve`` source."""

    skip_event_types: tuple[str, ...] = ("stats",)
    max_object_lines: int = Field(2000, ge=2)
    max_object_bytes: ByteSize = 1_048_576
    naive_timezone: str = "UTC"
    """Zone for a timestamp without an offset (Suricata always writes one; hand-made files may not)."""

    @field_validator("naive_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:  # a typo fails at config load, not at 3 a.m.
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def make_parser(sensor: str, options: Options | None = None) -> EveLineParser:
    return EveLineParser(sensor, options or Options())


class EveLineParser:
    """Stateful only while reassembling a pretty-printed object; otherwise one line, one record."""

    def __init__(self, sensor: str, options: Options) -> None:
        self.sensor = sensor
        self.options = options
        self._skip = frozenset(options.skip_event_types)
        # A quoted name absent from the line rules the skip out with one substring scan.
        self._skip_tokens = tuple(f'"{name}"' for name in self._skip)
        self._naive_tz: tzinfo = timezone.utc if options.naive_timezone == "UTC" else ZoneInfo(options.naive_timezone)
        self._line_no = 0
        self._buffer: list[str] = []
        self._buffer_bytes = 0
        self._buffer_start = 0
        self._buffer_depth = 0
        self._discarding = False
        self._pending: list[Rejected] = []

    def preamble(self, line: str) -> bool:
        return False

    def __call__(self, line: str) -> Event | Rejected | None:
        self._line_no += 1
        if self._buffer:
            result = self._continue_object(line)
        elif self._discarding:
            result = self._discard(line)
        else:
            result = self._single_line(line)
        if result is None and self._pending:
            return self._pending.pop(0)
        return result

    def finish(self) -> list[Rejected]:
        """End of input: rejections still owed (an object never closed). Resets the parser's state."""
        owed = self._pending
        self._pending = []
        if self._buffer:
            owed.append(self._buffer_rejected("input ended inside a multi-line object"))
        self._discarding = False
        return owed

    # -- lines ---------------------------------------------------------------------------------

    def _single_line(self, line: str) -> Event | Rejected | None:
        text = line
        if line[:1] != "{":
            text = line.strip().lstrip("\ufeff")
            if not text:
                return None
            if text[0] != "{":
                return Rejected("not a JSON object", self._location(), line)
        if len(text) < 16 and text.strip() == "{":
            self._buffer = [line]
            self._buffer_bytes = len(line)
            self._buffer_start = self._line_no
            self._buffer_depth = 1
            return None
        for token in self._skip_tokens:
            if token in text:
                if _peek_event_type(text) in self._skip:
                    return None
                break
        try:
            record = _fast_loads(text)
        except Exception:  # noqa: BLE001 - whatever msgspec refuses, json.loads decides (and words the reason)
            try:
                record = json.loads(text)
            except ValueError as exc:
                return Rejected(f"invalid JSON: {_json_error(exc)}", self._location(), line)
            except RecursionError:
                return Rejected("invalid JSON: nested too deeply", self._location(), line)
        return self._build(record, line, self._location())

    def _continue_object(self, line: str) -> Event | Rejected | None:
        if line[:1] == "{":
            # Nested objects are indented (or alone on their line), so a column-0 "{" is a new record.
            if line.strip() == "{" and not self._buffer_is_indented():
                return self._append(line)
            abandoned = self._buffer_rejected("multi-line object not closed before the next record", self._line_no - 1)
            self._buffer = []
            if line.strip() == "{":
                self._single_line(line)  # opens the next buffer; "{" alone is never a record
                return abandoned
            # The good line must not be lost for the bad object: it goes first, the rejection waits.
            self._pending.append(abandoned)
            return self._single_line(line)
        return self._append(line)

    def _append(self, line: str) -> Event | Rejected | None:
        self._buffer.append(line)
        self._buffer_bytes += len(line) + 1
        if len(self._buffer) > self.options.max_object_lines or self._buffer_bytes > self.options.max_object_bytes:
            rejected = self._buffer_rejected(
                f"multi-line object exceeds {self.options.max_object_lines} lines or {self.options.max_object_bytes} bytes"
            )
            self._buffer = []
            self._discarding = True
            return rejected
        # Brackets inside strings can fool this count, so it only decides when to try a parse in
        # unindented objects; in indented ones a column-0 "}" is always the top-level close.
        self._buffer_depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
        if line[:1] != "}" or (self._buffer_depth > 0 and not self._buffer_is_indented()):
            return None
        text = "\n".join(self._buffer)
        try:
            record = json.loads(text)
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError) and exc.pos >= len(text.rstrip()):
                return None  # a nested close in an unindented object: more to come
            rejected = self._buffer_rejected(f"invalid JSON: {_json_error(exc)}")
            self._buffer = []
            return rejected
        except RecursionError:
            rejected = self._buffer_rejected("invalid JSON: nested too deeply")
            self._buffer = []
            return rejected
        location = f"lines {self._buffer_start}-{self._line_no}"
        self._buffer = []
        return self._build(record, text, location)

    def _discard(self, line: str) -> Event | Rejected | None:
        """Skip the rest of an oversized object (already rejected once) up to its closing brace."""
        if line[:1] == "}":
            self._discarding = False
            return None
        if line[:1] == "{":
            self._discarding = False
            return self._single_line(line)
        return None

    def _buffer_is_indented(self) -> bool:
        return len(self._buffer) > 1 and self._buffer[1][:1] in (" ", "\t")

    def _buffer_rejected(self, reason: str, last_line: int | None = None) -> Rejected:
        last = self._line_no if last_line is None else last_line
        return Rejected(reason, f"lines {self._buffer_start}-{last}", "\n".join(self._buffer))

    def _location(self) -> str:
        return f"line {self._line_no}"

    # -- records -------------------------------------------------------------------------------

    def _build(self, record: Any, raw: str, location: str) -> Event | Rejected | None:
        if not isinstance(record, dict):
            return Rejected("not a JSON object", location, raw)
        kind = record.get("event_type")
        if not isinstance(kind, str) or not kind:
            return Rejected("no event_type", location, raw)
        if kind in self._skip:
            return None
        stamp = record.get("timestamp")
        if not isinstance(stamp, str):
            return Rejected("missing timestamp", location, raw)
        ts = self._parse_timestamp(stamp)
        if ts is None:
            return Rejected(f"unparseable timestamp {stamp[:64]!r}", location, raw)

        get = record.get
        extra: dict[str, Any] = {}
        src_ip = _address(get("src_ip"), "src_ip", extra)
        dst_ip = _address(get("dest_ip"), "dest_ip", extra)
        proto = get("proto")
        app_proto = get("app_proto")
        src_port = get("src_port")
        dst_port = get("dest_port")
        event = Event(
            ts=ts,
            sensor=self.sensor,
            kind=kind,
            raw=raw,
            src_ip=src_ip,
            src_port=src_port if type(src_port) is int and 0 <= src_port <= 65535 else None,
            dst_ip=dst_ip,
            dst_port=dst_port if type(dst_port) is int and 0 <= dst_port <= 65535 else None,
            proto=proto.lower() if isinstance(proto, str) else (str(proto) if type(proto) is int else None),
            app_proto=app_proto.lower() if isinstance(app_proto, str) else None,
            extra=extra,
        )
        value = get("flow_id")
        if value is not None:
            extra["flow_id"] = value
        value = get("community_id")
        if value is not None:
            extra["community_id"] = value

        alert = get("alert")
        if isinstance(alert, dict):
            _apply_alert(event, alert)
        if kind == "drop":
            _apply_drop(event, get("drop"))
        elif kind == "anomaly":
            _apply_anomaly(event, get("anomaly"))
        elif kind == "flow" or kind == "netflow":
            _apply_flow_counters(event, get(kind))

        if not _APPLICATION_KEYS.isdisjoint(record):  # most alerts carry none: skip the walk
            for key, apply in _APPLICATION_BLOCKS:
                block = get(key)
                if isinstance(block, dict):
                    apply(event, block)
        files = get("files")  # alerts with metadata list the files of the transaction
        if event.file_hash is None and isinstance(files, list) and files and isinstance(files[0], dict):
            _apply_fileinfo(event, files[0])

        if event.app_proto is None and kind not in NOT_A_PROTOCOL:
            event.app_proto = kind.lower()
        return event

    def _parse_timestamp(self, text: str) -> datetime | None:
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            return None
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=self._naive_tz)
        if ts.tzinfo is not timezone.utc:
            try:
                ts = ts.astimezone(timezone.utc)
            except (OverflowError, ValueError):
                return None
        return ts


# -- field helpers ---------------------------------------------------------------------------------


def _reference_loads(text: str) -> Any:
    return json.loads(text)


# The single-line fast path. msgspec's decoder gives exactly json.loads' result for every document it
# accepts (duplicate keys: the last wins; escapes, nulls, big integers, -0, floats alike); what it
# refuses (NaN/Infinity literals, 1E400, lone surrogate escapes, malformed or too deeply nested
# text) goes to json.loads, which accepts it or words the rejection as before.
_fast_loads = _MsgspecDecoder().decode if _MsgspecDecoder is not None else _reference_loads


def _peek_event_type(line: str) -> str | None:
    """The ``event_type`` value read straight from the text, so a 32 KB ``stats`` line is never parsed."""
    at = line.find('"event_type"')
    if at < 0:
        return None
    colon = at + len('"event_type"')
    opening = line.find('"', colon)
    if opening < 0 or line[colon:opening].strip() != ":":
        return None
    closing = line.find('"', opening + 1)
    return line[opening + 1 : closing] if closing > 0 else None


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno}, column {exc.colno}"
        return f"{exc.msg} ({where})"
    return str(exc)


@lru_cache(maxsize=8192)
def _canonical_ip(text: str) -> str:
    """Compressed form (``2a03:b0c0:2:d0::bd3:4001``); "" when the text is not an address. Sensors repeat
    the same few thousand addresses, so a bounded cache pays."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _address(value: Any, key: str, extra: dict[str, Any]) -> str | None:
    if not isinstance(value, str):
        return None
    canonical = _canonical_ip(value)
    if canonical:
        return canonical
    # Keep the event (it is still an observation) and the text the sensor wrote.
    extra[f"invalid_{key}"] = value
    return None


def _port(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value <= 65535 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _domain(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.strip().rstrip(".").lower()
    return name or None


def _integer(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            return None
    return None


def _snake(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name.strip()).lower()


def _apply_alert(event: Event, alert: dict[str, Any]) -> None:
    get = alert.get
    sid = get("signature_id")
    if sid is not None and not isinstance(sid, (dict, list)):
        event.signature_id = str(sid)
    value = get("signature")
    event.signature = value if isinstance(value, str) and value else None
    value = get("category")
    event.category = value if isinstance(value, str) and value else None
    value = get("action")
    event.action = value if isinstance(value, str) and value else None
    level = get("severity")
    if type(level) is not int:
        level = _integer(level)
    if level is not None:
        event.sensor_severity = ALERT_SEVERITY.get(level, ALERT_SEVERITY_BEYOND_TABLE) if level >= 1 else None
    value = get("gid")
    if value is not None:
        event.extra["gid"] = value
    value = get("rev")
    if value is not None:
        event.extra["rev"] = value


def _apply_drop(event: Event, drop: Any) -> None:
    if event.sensor_severity is None:
        event.sensor_severity = DROP_SEVERITY_WITHOUT_ALERT
    if event.action is None or event.action == "allowed":
        event.action = DROP_ACTION
    if isinstance(drop, dict):
        reason = _text(drop.get("reason"))
        if reason:
            event.extra["drop_reason"] = reason


def _apply_anomaly(event: Event, anomaly: Any) -> None:
    event.sensor_severity = ANOMALY_SEVERITY
    if not isinstance(anomaly, dict):
        return
    event.signature = _text(anomaly.get("event"))
    event.category = _text(anomaly.get("type"))
    layer = _text(anomaly.get("layer"))
    if layer:
        event.extra["layer"] = layer
    if event.app_proto is None:
        app_proto = _text(anomaly.get("app_proto"))
        event.app_proto = app_proto.lower() if app_proto else None


def _apply_flow_counters(event: Event, flow: Any) -> None:
    if isinstance(flow, dict):
        for key, name in FLOW_FIELDS.items():
            value = flow.get(key)
            if value is not None:
                event.extra[name] = value


def _apply_http(event: Event, http: dict[str, Any]) -> None:
    host = _domain(http.get("hostname"))
    path = _text(http.get("url"))
    if event.domain is None:
        event.domain = host
    if event.url is None and path:
        # Origin-form "/path" joins the host; absolute-form (proxy requests) already names it.
        event.url = (host or "") + path if path and path.startswith("/") else path
    event.user_agent = event.user_agent or _text(http.get("http_user_agent"))
    method = _text(http.get("http_method"))
    event.http_method = event.http_method or (method.upper() if method else None)
    status = http.get("status")
    if status is not None:
        event.extra["http_status"] = status


def _apply_dns(event: Event, dns: dict[str, Any]) -> None:
    name = dns.get("rrname")
    rrtype = dns.get("rrtype")
    queries = dns.get("queries")  # EVE DNS v3 (Suricata 8)
    if name is None and isinstance(queries, list) and queries and isinstance(queries[0], dict):
        name = queries[0].get("rrname")
        rrtype = queries[0].get("rrtype")
    if event.domain is None:
        event.domain = _domain(name)
    for key, value in (("dns_type", dns.get("type")), ("rrtype", rrtype), ("rcode", dns.get("rcode"))):
        if value is not None:
            event.extra[key] = value


def _apply_tls(event: Event, tls: dict[str, Any]) -> None:
    if event.domain is None:
        event.domain = _domain(tls.get("sni"))
    ja3 = tls.get("ja3")
    if isinstance(ja3, dict):
        event.ja3 = _text(ja3.get("hash"))
    ja3s = tls.get("ja3s")
    if isinstance(ja3s, dict) and ja3s.get("hash"):
        event.extra["ja3s"] = ja3s["hash"]
    for key in ("ja4", "version", "subject", "issuerdn", "fingerprint"):
        value = tls.get(key)
        if value is not None:
            event.extra[f"tls_{key}"] = value


def _apply_fileinfo(event: Event, fileinfo: dict[str, Any]) -> None:
    for algorithm in ("sha256", "sha1", "md5"):
        digest = _text(fileinfo.get(algorithm))
        if digest:
            event.file_hash = digest.lower()
            break
    for key in ("filename", "size", "magic"):
        value = fileinfo.get(key)
        if value is not None:
            event.extra[f"file_{key}"] = value


def _mark_ics(event: Event, protocol: str, function: str | None, code: int | None, control: bool) -> None:
    event.ics_function = function
    event.extra["ics_protocol"] = protocol
    if code is not None:
        event.extra["ics_function_code"] = code
    if control and event.sensor_severity is None:
        event.sensor_severity = ICS_CONTROL_SEVERITY
    if event.app_proto is None:
        event.app_proto = protocol


def _apply_modbus(event: Event, modbus: dict[str, Any]) -> None:
    message = _first_dict(modbus.get("request"), modbus.get("response"), modbus)
    code = _integer(message.get("function_raw"))
    label = message.get("function_code")
    if code is None and type(label) is int:
        code, label = label, None
    if code is not None and code > 0x80:
        code -= 0x80  # an exception response echoes the function code with the high bit set
        event.extra["modbus_exception"] = True
    if code in MODBUS_FUNCTIONS:
        function: str | None = MODBUS_FUNCTIONS[code]
    elif isinstance(label, str) and label:
        function = _snake(label)
    else:
        function = str(code) if code is not None else None
    access = message.get("access_type")
    control = (
        code in MODBUS_CONTROL_CODES
        or (isinstance(access, str) and "WRITE" in access.upper())
        or (function is not None and ("write" in function or function.startswith("wr")))
    )
    unit = message.get("unit_id")
    if unit is not None:
        event.extra["modbus_unit_id"] = unit
    _mark_ics(event, "modbus", function, code, control)


def _apply_dnp3(event: Event, dnp3: dict[str, Any]) -> None:
    application = dnp3.get("application")
    source = application if isinstance(application, dict) else dnp3
    raw_function = source.get("function_code")
    code = _integer(raw_function)
    if code is not None:
        function: str | None = DNP3_FUNCTIONS.get(code, str(code))
    elif isinstance(raw_function, str) and raw_function:
        function = _snake(raw_function)
    else:
        function = None
    dnp3_type = _text(dnp3.get("type"))
    if dnp3_type:
        event.extra["dnp3_type"] = dnp3_type
    _mark_ics(event, "dnp3", function, code, function in DNP3_CONTROL_FUNCTIONS)


def _apply_enip(event: Event, enip: dict[str, Any]) -> None:
    message = _first_dict(enip.get("request"), enip.get("response"), enip)
    cip = message.get("cip")
    if isinstance(cip, list):
        cip = cip[0] if cip else None
    service = cip.get("service") if isinstance(cip, dict) else None
    code = _integer(service)
    if code is not None:
        function: str | None = CIP_SERVICES.get(code & 0x7F, f"0x{code:02x}")
    elif isinstance(service, str) and service:
        function = _snake(service)
    else:
        command = message.get("command")
        function = _snake(command) if isinstance(command, str) and command else None
    # Only the CIP service says what is done to the device; the encapsulation command never does.
    control = service is not None and function is not None and any(word in function for word in CIP_CONTROL_WORDS)
    _mark_ics(event, "enip", function, code, control)


def _first_dict(*candidates: Any) -> dict[str, Any]:
    for candidate in candidates:
        if isinstance(candidate, dict):
            return candidate
    return {}


_APPLICATION_BLOCKS = (
    ("http", _apply_http),
    ("dns", _apply_dns),
    ("tls", _apply_tls),
    ("fileinfo", _apply_fileinfo),
    ("modbus", _apply_modbus),
    ("dnp3", _apply_dnp3),
    ("enip", _apply_enip),
)
_APPLICATION_KEYS = frozenset(key for key, _ in _APPLICATION_BLOCKS)
