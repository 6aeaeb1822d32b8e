"""Zeek parser: TSV headers and escapes, JSON variants, and every per-log mapping, over records written here."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collectors.sensors import registry, zeek
from collectors.sensors.zeek import Options, make_parser
from store.records import Event, Rejected, Severity

TS = "1709287200.123456"  # 2024-03-01T10:00:00.123456Z
TS_DATETIME = datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
CONN_ID = ("uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")
CONN_ID_TYPES = ("string", "addr", "port", "addr", "port")


def tsv_header(path: str | None, fields: tuple[str, ...], types: tuple[str, ...]) -> list[str]:
    lines = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-"]
    if path is not None:
        lines.append(f"#path\t{path}")
    lines += ["#open\t2024-03-01-10-00-00", "#fields\t" + "\t".join(fields), "#types\t" + "\t".join(types)]
    return lines


def run(lines: list[str], options: Options | None = None) -> list:
    parser = make_parser("zeek-1", options or Options())
    return [parser(line) for line in lines]


def tsv_events(path: str, fields: tuple[str, ...], types: tuple[str, ...], rows: list[tuple[str, ...]],
               options: Options | None = None) -> list:
    header = tsv_header(path, ("ts",) + fields, ("time",) + types)
    results = run(header + [TS + "\t" + "\t".join(row) for row in rows], options)
    assert results[: len(header)] == [None] * len(header)
    return results[len(header) :]


def json_event(record: dict, options: Options | None = None):
    return run([json.dumps(record)], options)[0]


def test_module_follows_the_sensor_contract():
    assert registry()["zeek"] is zeek
    parser = make_parser("x", Options())
    assert parser.preamble("#fields\tts") is True
    assert parser.preamble("#separator \\x09") is True
    assert parser.preamble(TS + "\tC1") is False
    assert parser.preamble('{"_path":"conn"}') is False


# -- TSV mechanics -------------------------------------------------------------------------------


def test_tsv_conn_row_maps_the_flow():
    [event] = tsv_events("conn", CONN_ID + ("proto", "service", "duration", "orig_bytes", "conn_state", "local_orig"),
                         CONN_ID_TYPES + ("enum", "string", "interval", "count", "string", "bool"),
                         [("CaB1", "10.1.1.5", "49152", "10.20.0.7", "502", "tcp", "modbus", "1.500000", "24", "SF", "T")])
    assert isinstance(event, Event)
    assert event.kind == "conn" and event.sensor == "zeek-1"
    assert event.ts == TS_DATETIME
    assert (event.src_ip, event.src_port, event.dst_ip, event.dst_port) == ("10.1.1.5", 49152, "10.20.0.7", 502)
    assert event.proto == "tcp" and event.app_proto == "modbus"
    assert event.sensor_severity is Severity.INFO
    assert event.extra == {"uid": "CaB1", "duration": 1.5, "orig_bytes": 24, "conn_state": "SF", "local_orig": True}


def test_raw_is_the_line_as_read():
    header = tsv_header("conn", ("ts", "uid"), ("time", "string"))
    line = TS + "\tCx"
    assert run(header + [line])[-1].raw == line


def test_unset_and_empty_markers_are_not_taken_as_text():
    [event] = tsv_events("intel", CONN_ID + ("seen.indicator", "seen.where", "sources", "fuid"),
                         CONN_ID_TYPES + ("string", "enum", "set[string]", "string"),
                         [("-", "10.0.0.1", "1", "10.0.0.2", "2", "(empty)", "-", "(empty)", "(empty)")])
    assert isinstance(event, Event)
    assert event.signature is None and event.category is None
    assert "uid" not in event.extra and "sources" not in event.extra and "fuid" not in event.extra
    assert "(empty)" not in event.extra.values() and "-" not in event.extra.values()


def test_escaped_values_are_decoded():
    [event] = tsv_events("http", CONN_ID + ("host", "uri", "user_agent", "method"), CONN_ID_TYPES + ("string",) * 4,
                         [("C1", "10.0.0.1", "1", "10.0.0.2", "80", "hmi.plant.example", "/a\\x09b\\x2c/c\\\\d",
                           "caf\\xc3\\xa9 agent", "GET")])
    assert event.url == "hmi.plant.example/a\tb,/c\\d"
    assert event.user_agent == "café agent"


def test_literal_dash_value_is_escaped_and_decoded():
    [event] = tsv_events("weird", CONN_ID + ("name",), CONN_ID_TYPES + ("string",),
                         [("C1", "10.0.0.1", "1", "10.0.0.2", "2", "\\x2d")])
    assert event.signature == "-"


def test_custom_separators_and_markers():
    lines = ["#separator |", "#set_separator|;", "#empty_field|EMPTY", "#unset_field|NONE", "#path|known_services",
             "#fields|ts|host|port_num|port_proto|service", "#types|time|addr|port|enum|set[string]",
             TS + "|10.9.9.9|502|tcp|MODBUS;HTTP", TS + "|10.9.9.8|NONE|udp|EMPTY"]
    first, second = run(lines)[-2:]
    assert first.dst_ip == "10.9.9.9" and first.dst_port == 502 and first.app_proto == "modbus,http"
    assert second.dst_port is None and second.app_proto is None and second.proto == "udp"


def test_data_before_fields_header_is_rejected():
    result = run(["#separator \\x09", TS + "\tC1\t10.0.0.1"])[1]
    assert isinstance(result, Rejected)
    assert result.reason == "data line before any #fields header"
    assert result.location == "line 2"


def test_data_line_with_no_header_at_all_is_rejected():
    assert isinstance(run([TS + "\tC1"])[0], Rejected)


def test_wrong_column_count_is_rejected():
    header = tsv_header("conn", ("ts", "uid", "proto"), ("time", "string", "enum"))
    result = run(header + [TS + "\tC1"])[-1]
    assert isinstance(result, Rejected) and "2 values for 3 #fields" in result.reason


def test_value_that_does_not_fit_its_type_is_rejected():
    [result] = tsv_events("conn", CONN_ID, CONN_ID_TYPES, [("C1", "10.0.0.1", "eighty", "10.0.0.2", "2")])
    assert isinstance(result, Rejected) and "#types" in result.reason


def test_types_mismatch_is_rejected_and_columns_stay_text():
    lines = ["#separator \\x09", "#path\tconn", "#fields\tts\tuid\tid.orig_p", "#types\ttime\tstring",
             TS + "\tC1\t443"]
    results = run(lines)
    assert isinstance(results[3], Rejected) and "#types" in results[3].reason
    assert results[4].src_port == 443  # still read, from text


def test_masked_or_missing_timestamp_is_rejected():
    header = tsv_header("conn", ("ts", "uid"), ("time", "string"))
    masked, unset = run(header + ["XXXXXXXXXX.XXXXXX\tC1", "-\tC2"])[-2:]
    assert isinstance(masked, Rejected) and "unparseable ts" in masked.reason
    assert isinstance(unset, Rejected) and unset.reason == "missing ts"


def test_a_new_separator_line_starts_a_new_header_block():
    first = tsv_header("dns", ("ts", "query"), ("time", "string"))
    second = ["#separator \\x09", "#path\tweird", TS + "\tx"]
    results = run(first + [TS + "\tscada.example"] + second)
    assert results[len(first)].domain == "scada.example"
    assert isinstance(results[-1], Rejected)  # the new block has not declared #fields yet


def test_header_lines_and_comments_return_none():
    assert run(["#separator \\x09", "#open XXXX-XX-XX", "### BTest baseline data", "#close\t2024-03-01-11-00-00"]) == [None] * 4


def test_empty_separator_is_rejected():
    assert isinstance(run(["#separator "])[0], Rejected)
    assert isinstance(run(["#separator \\x09", "#set_separator\t"])[1], Rejected)


def test_path_option_is_the_default_for_a_tsv_without_path():
    lines = tsv_header(None, ("ts", "query"), ("time", "string")) + [TS + "\tdefault.example"]
    assert isinstance(run(lines)[-1], Rejected)
    event = run(lines, Options(path="dns"))[-1]
    assert event.kind == "dns" and event.domain == "default.example"


def test_byte_order_mark_before_the_header_is_ignored():
    results = run(["\ufeff#separator |", "#path|dns", "#fields|ts|query", "#types|time|string", TS + "|bom.example"])
    assert results[:4] == [None] * 4
    assert results[4].domain == "bom.example"  # the "|" separator declared behind the mark was honoured


def test_trailing_carriage_return_is_ignored_in_values():
    header = tsv_header("dns", ("ts", "query"), ("time", "string"))
    assert run(header + [TS + "\tcr.example\r"])[-1].domain == "cr.example"


# -- JSON mechanics ------------------------------------------------------------------------------


@pytest.mark.parametrize("ts", [1709287200.123456, "2024-03-01T10:00:00.123456Z", "2024-03-01T11:00:00.123456+01:00"])
def test_json_timestamps(ts):
    event = json_event({"_path": "conn", "ts": ts, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 1,
                        "id.resp_h": "10.0.0.2", "id.resp_p": 2, "proto": "udp"})
    assert event.ts == TS_DATETIME
    assert event.src_ip == "10.0.0.1" and event.dst_port == 2 and event.proto == "udp"


def test_json_epoch_milliseconds_and_seconds_as_integers():
    assert json_event({"_path": "conn", "ts": 1709287200123}).ts == datetime(2024, 3, 1, 10, 0, 0, 123000, tzinfo=timezone.utc)
    assert json_event({"_path": "conn", "ts": 1709287200}).ts == datetime(2024, 3, 1, 10, tzinfo=timezone.utc)


def test_json_iso_without_offset_uses_the_configured_zone():
    event = json_event({"_path": "conn", "ts": "2024-03-01T11:00:00"}, Options(naive_timezone="Europe/Paris"))
    assert event.ts == datetime(2024, 3, 1, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize("ts", ["soon", "XXXXXXXXXX.XXXXXX", True, [1], float("nan"), 10**30])
def test_json_bad_timestamps_are_rejected(ts):
    result = run(['{"_path":"conn","ts":' + (json.dumps(ts) if not isinstance(ts, float) else "NaN") + "}"])[0]
    assert isinstance(result, Rejected) and "ts" in result.reason


def test_json_missing_ts_is_rejected():
    result = json_event({"_path": "dns", "query": "x.example"})
    assert isinstance(result, Rejected) and result.reason == "missing ts"


def test_json_without_path_uses_the_option_or_is_rejected():
    record = {"ts": 1709287200.5, "query": "nopath.example"}
    rejected = json_event(record)
    assert isinstance(rejected, Rejected) and "no _path" in rejected.reason
    assert json_event(record, Options(path="dns")).domain == "nopath.example"
    assert json_event(dict(record, _path="weird", name="x"), Options(path="dns")).kind == "weird"  # _path wins


def test_json_nested_id_object_is_accepted():
    event = json_event({"_path": "conn", "ts": 1709287200.5, "id": {"orig_h": "10.0.0.1", "orig_p": 5, "resp_h": "10.0.0.2", "resp_p": 6}})
    assert (event.src_ip, event.src_port, event.dst_ip, event.dst_port) == ("10.0.0.1", 5, "10.0.0.2", 6)


def test_json_mangled_path_is_rejected():
    result = json_event({"_path": "conn; DROP TABLE", "ts": 1709287200.5})
    assert isinstance(result, Rejected) and "log name" in result.reason
    assert isinstance(json_event({"_path": 7, "ts": 1709287200.5}), Rejected)


@pytest.mark.parametrize("line", ['{"_path":"conn","ts":', "[1, 2]", '{"a":' * 3000 + "1" + "}" * 3000])
def test_json_bad_lines_are_rejected(line):
    assert isinstance(run([line])[0], Rejected)


def test_json_and_tsv_lines_mix_in_one_stream():
    header = tsv_header("dns", ("ts", "query"), ("time", "string"))
    lines = header + [TS + "\ttsv.example", json.dumps({"_path": "dns", "ts": 1709287200.5, "query": "json.example"}),
                      TS + "\tagain.example", "", "   "]
    results = run(lines)[len(header) :]
    assert [r.domain for r in results[:3]] == ["tsv.example", "json.example", "again.example"]
    assert results[3:] == [None, None]


def test_system_name_and_community_id_are_kept():
    event = json_event({"_path": "conn", "ts": 1709287200.5, "_system_name": "substation-7-sensor", "community_id": "1:x="})
    assert event.extra == {"system_name": "substation-7-sensor", "community_id": "1:x="}


def test_ipv6_is_compressed_and_bad_address_kept_in_extra():
    event = json_event({"_path": "conn", "ts": 1709287200.5, "id.orig_h": "2001:0db8:0000:0000:0000:0000:0000:0001",
                        "id.resp_h": "not-an-address", "id.resp_p": 99999})
    assert event.src_ip == "2001:db8::1"
    assert event.dst_ip is None and event.extra["invalid_resp_h"] == "not-an-address"
    assert event.dst_port is None


# -- per-log mappings ----------------------------------------------------------------------------


def test_notice():
    event = json_event({"_path": "notice", "ts": 1709287200.5, "uid": "C1", "id.orig_h": "198.51.100.9",
                        "id.orig_p": 5000, "id.resp_h": "10.20.0.5", "id.resp_p": 22, "proto": "tcp",
                        "note": "SSH::Password_Guessing", "msg": "198.51.100.9 appears to be guessing SSH passwords",
                        "sub": "Sampled servers: 10.20.0.5", "actions": ["Notice::ACTION_LOG"]})
    assert event.signature_id == "SSH::Password_Guessing"
    assert event.signature == "198.51.100.9 appears to be guessing SSH passwords"
    assert event.category == "SSH"
    assert event.sensor_severity is Severity.MEDIUM
    assert event.app_proto is None
    assert event.extra["sub"] == "Sampled servers: 10.20.0.5"


def test_notice_about_a_host_uses_src_dst_p():
    [event] = tsv_events("notice", CONN_ID + ("note", "msg", "src", "dst", "p"), CONN_ID_TYPES + ("enum", "string", "addr", "addr", "port"),
                         [("-", "-", "-", "-", "-", "Scan::Port_Scan", "10.1.1.1 scanned 30 ports", "10.1.1.1", "10.20.0.5", "502")])
    assert (event.src_ip, event.dst_ip, event.dst_port) == ("10.1.1.1", "10.20.0.5", 502)
    assert event.signature == "10.1.1.1 scanned 30 ports"


def test_notice_without_msg_uses_the_note_as_signature():
    assert json_event({"_path": "notice", "ts": 1.5, "note": "Weird::Activity"}).signature == "Weird::Activity"


def test_weird():
    event = json_event({"_path": "weird", "ts": 1709287200.5, "name": "bad_TCP_checksum", "addl": "x", "source": "TCP"})
    assert event.signature_id == "bad_TCP_checksum" and event.signature == "bad_TCP_checksum"
    assert event.sensor_severity is Severity.LOW
    assert event.extra["addl"] == "x"


@pytest.mark.parametrize(("indicator", "kind", "field", "expected"), [
    ("Evil.Example", "Intel::DOMAIN", "domain", "evil.example"),
    ("http://evil.example/a", "Intel::URL", "url", "http://evil.example/a"),
    ("ABCDEF0123456789ABCDEF0123456789", "Intel::FILE_HASH", "file_hash", "abcdef0123456789abcdef0123456789"),
])
def test_intel(indicator, kind, field, expected):
    event = json_event({"_path": "intel", "ts": 1709287200.5, "seen.indicator": indicator, "seen.indicator_type": kind,
                        "seen.where": "DNS::IN_REQUEST", "sources": ["national-cert-feed"], "matched": [kind]})
    assert event.sensor_severity is Severity.HIGH
    assert event.signature == indicator and event.signature_id == kind
    assert event.category == "DNS::IN_REQUEST"
    assert getattr(event, field) == expected
    assert event.extra["sources"] == ["national-cert-feed"]


def test_intel_tsv_sets_are_lists():
    [event] = tsv_events("intel", CONN_ID + ("seen.indicator", "seen.indicator_type", "seen.where", "sources"),
                         CONN_ID_TYPES + ("string", "enum", "enum", "set[string]"),
                         [("C1", "10.0.0.1", "1", "10.0.0.2", "53", "bad.example", "Intel::DOMAIN", "DNS::IN_REQUEST", "feedA,feed\\x2cB")])
    assert event.domain == "bad.example"
    assert event.extra["sources"] == ["feedA", "feed,B"]


def test_dns():
    event = json_event({"_path": "dns", "ts": 1709287200.5, "proto": "udp", "query": "Update.Vendor.Example.",
                        "qtype_name": "A", "rcode_name": "NOERROR"})
    assert event.domain == "update.vendor.example"
    assert event.app_proto == "dns" and event.sensor_severity is Severity.INFO
    assert event.extra["qtype_name"] == "A"


def test_http():
    event = json_event({"_path": "http", "ts": 1709287200.5, "method": "post", "host": "HMI.plant.example:8080",
                        "uri": "/cgi-bin/upload?f=1", "user_agent": "python-requests/2.31", "status_code": 200})
    assert event.domain == "hmi.plant.example"
    assert event.url == "hmi.plant.example:8080/cgi-bin/upload?f=1"
    assert event.http_method == "POST" and event.user_agent == "python-requests/2.31"
    assert event.app_proto == "http"
    assert event.extra["status_code"] == 200


def test_http_without_a_path_uri_has_no_url():
    event = json_event({"_path": "http", "ts": 1.5, "method": "OPTIONS", "host": "a.example", "uri": "*"})
    assert event.url is None and event.domain == "a.example"
    assert json_event({"_path": "http", "ts": 1.5, "uri": "http://b.example/x"}).url == "http://b.example/x"


def test_ssl():
    event = json_event({"_path": "ssl", "ts": 1709287200.5, "server_name": "Portal.Example", "version": "TLSv12",
                        "ja3": "e7d705a3286e19ea42f587b344ee6865", "established": True})
    assert event.domain == "portal.example" and event.ja3 == "e7d705a3286e19ea42f587b344ee6865"
    assert event.app_proto == "ssl"
    assert event.extra["version"] == "TLSv12"


@pytest.mark.parametrize(("func", "function", "severity"), [
    ("READ_HOLDING_REGISTERS", "read_holding_registers", Severity.INFO),
    ("WRITE_SINGLE_COIL", "write_single_coil", Severity.MEDIUM),
    ("WRITE_MULTIPLE_REGISTERS", "write_multiple_registers", Severity.MEDIUM),
    ("READ_WRITE_MULTIPLE_REGISTERS", "read_write_multiple_registers", Severity.MEDIUM),
    ("MASK_WRITE_REGISTER", "mask_write_register", Severity.MEDIUM),
    ("DIAGNOSTICS", "diagnostics", Severity.MEDIUM),
    ("unknown-90", "unknown-90", Severity.MEDIUM),
    ("unknown-100", "unknown-100", Severity.INFO),
])
def test_modbus(func, function, severity):
    [event] = tsv_events("modbus", CONN_ID + ("tid", "unit", "func", "pdu_type", "exception"),
                         CONN_ID_TYPES + ("count", "count", "string", "string", "string"),
                         [("C1", "10.1.1.5", "50000", "10.20.0.7", "502", "7", "1", func, "REQ", "-")])
    assert event.ics_function == function
    assert event.sensor_severity is severity
    assert event.app_proto == "modbus"
    assert event.extra["unit"] == 1


def test_icsnpp_modbus_detailed_is_a_modbus_log():
    event = json_event({"_path": "modbus_detailed", "ts": 1709287200.5, "func": "WRITE_SINGLE_REGISTER", "address": 40001})
    assert event.kind == "modbus_detailed" and event.app_proto == "modbus"
    assert event.ics_function == "write_single_register" and event.sensor_severity is Severity.MEDIUM


@pytest.mark.parametrize(("record", "function", "severity"), [
    ({"fc_request": "COLD_RESTART", "fc_reply": "RESPONSE"}, "cold_restart", Severity.MEDIUM),
    ({"fc_request": "READ", "fc_reply": "RESPONSE"}, "read", Severity.INFO),
    ({"fc_reply": "UNSOLICITED_RESPONSE"}, "unsolicited_response", Severity.INFO),
    ({"fc_request": "DIRECT_OPERATE"}, "direct_operate", Severity.MEDIUM),
    ({"fc_request": "STOP_APPL"}, "stop_appl", Severity.MEDIUM),
])
def test_dnp3(record, function, severity):
    event = json_event({"_path": "dnp3", "ts": 1709287200.5, "id.resp_p": 20000, **record})
    assert event.ics_function == function and event.sensor_severity is severity
    assert event.app_proto == "dnp3"


def test_icsnpp_dnp3_control_select_is_control():
    event = json_event({"_path": "dnp3_control", "ts": 1.5, "block_type": "Control Relay Output Block",
                        "function_code": "SELECT", "operation_type": "Pulse On"})
    assert event.ics_function == "select" and event.sensor_severity is Severity.MEDIUM
    assert event.extra["block_type"] == "Control Relay Output Block"


@pytest.mark.parametrize(("record", "function", "severity"), [
    ({"rosctr_code": 1, "function_code": "0x29", "function_name": "PLC Stop"}, "plc_stop", Severity.MEDIUM),
    ({"rosctr_code": 3, "function_code": "0x29", "function_name": "PLC Stop"}, "plc_stop", Severity.INFO),
    ({"rosctr_code": 1, "function_code": "0x05", "function_name": "Write Variable"}, "write_variable", Severity.MEDIUM),
    ({"rosctr_code": 1, "function_code": "0x1b", "function_name": "Download block"}, "download_block", Severity.MEDIUM),
    ({"rosctr_code": 1, "function_code": "0x04", "function_name": "Read Variable"}, "read_variable", Severity.INFO),
    ({"rosctr_code": 1, "function_code": "0x1d", "function_name": "Start Upload"}, "start_upload", Severity.INFO),
    ({"rosctr_code": 7, "function_code": "0x47", "function_name": "Request: Time Functions",
      "subfunction_code": "0x02", "subfunction_name": "Set Clock"}, "set_clock", Severity.MEDIUM),
    ({"rosctr_code": 7, "function_code": "0x44", "function_name": "Request: CPU Functions",
      "subfunction_code": "0x01", "subfunction_name": "Read SZL"}, "read_szl", Severity.INFO),
])
def test_s7comm(record, function, severity):
    event = json_event({"_path": "s7comm", "ts": 1709287200.5, "id.resp_p": 102, **record})
    assert event.ics_function == function and event.sensor_severity is severity
    assert event.app_proto == "s7comm"
    assert event.extra["ics_function_code"] == record["function_code"]


def test_s7comm_plus():
    write = json_event({"_path": "s7comm_plus", "ts": 1.5, "opcode_name": "Request", "function_code": "0x04f2",
                        "function_name": "Set Variable"})
    assert write.ics_function == "set_variable" and write.sensor_severity is Severity.MEDIUM
    assert write.app_proto == "s7comm_plus"
    read = json_event({"_path": "s7comm_plus", "ts": 1.5, "opcode_name": "Request", "function_name": "Get Multi Variables"})
    assert read.ics_function == "get_multi_variables" and read.sensor_severity is Severity.INFO


@pytest.mark.parametrize(("service", "direction", "function", "severity"), [
    ("Get Attribute List", "request", "get_attribute_list", Severity.INFO),
    ("Set Attribute Single", "request", "set_attribute_single", Severity.MEDIUM),
    ("Stop", "request", "stop", Severity.MEDIUM),
    ("Reset", "request", "reset", Severity.MEDIUM),
    ("Stop", "response", "stop", Severity.INFO),
])
def test_cip(service, direction, function, severity):
    event = json_event({"_path": "cip", "ts": 1.5, "direction": direction, "cip_service_code": "0x07", "cip_service": service})
    assert event.ics_function == function and event.sensor_severity is severity
    assert event.app_proto == "cip"


def test_enip_command_is_never_control():
    event = json_event({"_path": "enip", "ts": 1.5, "enip_command_code": "0x63", "enip_command": "List Identity"})
    assert event.ics_function == "list_identity" and event.sensor_severity is Severity.INFO
    assert event.app_proto == "enip"


def test_known_services_and_software_put_the_host_in_dst():
    service = json_event({"_path": "known_services", "ts": 1.5, "host": "10.20.0.7", "port_num": 502,
                          "port_proto": "tcp", "service": ["MODBUS"]})
    assert (service.dst_ip, service.dst_port, service.proto, service.app_proto) == ("10.20.0.7", 502, "tcp", "modbus")
    software = json_event({"_path": "software", "ts": 1.5, "host": "10.20.0.8", "software_type": "HTTP::SERVER",
                           "name": "Apache", "unparsed_version": "Apache/2.4"})
    assert software.dst_ip == "10.20.0.8" and software.app_proto is None
    assert software.extra["name"] == "Apache" and software.sensor_severity is Severity.INFO


@pytest.mark.parametrize("path", ["x509", "snmp", "rdp", "syslog", "smb_files", "bacnet"])
def test_other_logs_are_info_events_of_their_kind(path):
    event = json_event({"_path": path, "ts": 1709287200.5, "id.orig_h": "10.0.0.1"})
    assert event.kind == path and event.sensor_severity is Severity.INFO
    assert event.app_proto == (None if path == "x509" else path)


@pytest.mark.parametrize("path", ["corelight_metrics_cpu", "stats", "reporter", "loaded_scripts", "capture_loss"])
def test_sensor_health_logs_are_skipped(path):
    assert json_event({"_path": path, "ts": 1709287200.5}) is None


def test_skip_paths_is_configurable():
    options = Options(skip_paths=("conn",))
    assert json_event({"_path": "conn", "ts": 1.5}, options) is None
    assert isinstance(json_event({"_path": "stats", "ts": 1.5}, options), Event)


def test_options_are_strict():
    with pytest.raises(ValidationError):
        Options(paths="conn")
    with pytest.raises(ValidationError):
        Options(path="conn log")
    with pytest.raises(ValidationError):
        Options(naive_timezone="Nowhere/Special")


# -- properties ----------------------------------------------------------------------------------

HEADER = tsv_header("modbus", ("ts",) + CONN_ID + ("func", "sources"), ("time",) + CONN_ID_TYPES + ("string", "set[string]"))
REAL_TSV = TS + "\tC1\t10.1.1.5\t50000\t10.20.0.7\t502\tWRITE_SINGLE_COIL\ta,b"
REAL_JSON = json.dumps({"_path": "notice", "ts": 1709287200.5, "id.orig_h": "10.0.0.1", "note": "X::Y", "msg": "m"})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=8))
def test_arbitrary_text_never_raises(lines):
    parser = make_parser("fuzz", Options())
    for line in HEADER[:2] + lines:
        result = parser(line)
        assert result is None or isinstance(result, (Event, Rejected))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HEADER + [REAL_TSV, REAL_JSON]), st.integers(0, 400), st.integers(0, 400), st.text(max_size=4))
def test_mutated_real_lines_never_raise(line, cut, at, insert):
    mutated = line[:cut]
    mutated = mutated[:at] + insert + mutated[at:]
    parser = make_parser("fuzz", Options())
    for header_line in HEADER:
        parser(header_line)
    result = parser(mutated)
    assert result is None or isinstance(result, (Event, Rejected))
    follow = parser(REAL_JSON)
    assert isinstance(follow, Event)  # a JSON line stands alone, whatever the header has become
