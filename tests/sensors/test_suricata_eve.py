"""Suricata EVE parser: every mapping rule and edge case, over small records written here."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collectors.sensors import registry, suricata_eve
from collectors.sensors.suricata_eve import Options, make_parser
from store.records import Event, Rejected, Severity

BASE = {
    "timestamp": "2024-03-01T10:00:00.123456+0000",
    "flow_id": 42,
    "event_type": "alert",
    "src_ip": "203.0.113.7",
    "src_port": 40000,
    "dest_ip": "10.20.0.5",
    "dest_port": 502,
    "proto": "TCP",
}


def record(**fields) -> dict:
    merged = dict(BASE)
    merged.update(fields)
    return {key: value for key, value in merged.items() if value is not ...}


def parse_one(obj: dict | str, options: Options | None = None):
    line = obj if isinstance(obj, str) else json.dumps(obj)
    return make_parser("ids-1", options or Options())(line)


def parse_lines(lines: list[str], options: Options | None = None) -> list:
    parser = make_parser("ids-1", options or Options())
    return [parser(line) for line in lines]


def test_module_follows_the_sensor_contract():
    assert registry()["suricata-eve"] is suricata_eve
    assert make_parser("x", Options()).preamble('{"event_type":"alert"}') is False


# -- alerts --------------------------------------------------------------------------------------


def test_alert_fields_are_mapped():
    line = json.dumps(record(
        app_proto="http",
        community_id="1:abc=",
        alert={"action": "allowed", "gid": 1, "signature_id": 2019401, "rev": 3,
               "signature": "ET SCAN Modbus Scanner", "category": "Attempted Information Leak", "severity": 2},
    ))
    event = parse_one(line)
    assert isinstance(event, Event)
    assert event.sensor == "ids-1"
    assert event.kind == "alert"
    assert event.ts == datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert (event.src_ip, event.src_port, event.dst_ip, event.dst_port) == ("203.0.113.7", 40000, "10.20.0.5", 502)
    assert event.proto == "tcp"
    assert event.app_proto == "http"
    assert event.signature_id == "2019401"
    assert event.signature == "ET SCAN Modbus Scanner"
    assert event.category == "Attempted Information Leak"
    assert event.action == "allowed"
    assert event.sensor_severity is Severity.MEDIUM
    assert event.extra["gid"] == 1 and event.extra["rev"] == 3
    assert event.extra["flow_id"] == 42 and event.extra["community_id"] == "1:abc="
    assert event.raw == line


@pytest.mark.parametrize(("level", "expected"), [
    (1, Severity.HIGH), (2, Severity.MEDIUM), (3, Severity.LOW), (4, Severity.INFO), (255, Severity.INFO),
])
def test_alert_severity_one_is_highest(level, expected):
    event = parse_one(record(alert={"signature_id": 1, "severity": level}))
    assert event.sensor_severity is expected


def test_alert_without_severity_has_none():
    assert parse_one(record(alert={"signature_id": 1})).sensor_severity is None


def test_duplicate_keys_do_not_crash_and_the_last_wins():
    line = ('{"timestamp":"2024-03-01T10:00:00+0000","event_type":"alert","alert":'
            '{"signature_id":7,"severity": 1,"signature":"dup","severity":3}}')
    event = parse_one(line)
    assert event.signature_id == "7" and event.sensor_severity is Severity.LOW


def test_alert_with_http_metadata_fills_application_fields():
    event = parse_one(record(
        alert={"signature_id": 9, "severity": 1},
        http={"hostname": "Evil.Example.", "url": "/drop.exe", "http_user_agent": "curl/8", "http_method": "get"},
    ))
    assert event.domain == "evil.example"
    assert event.url == "evil.example/drop.exe"
    assert event.user_agent == "curl/8"
    assert event.http_method == "GET"


def test_alert_with_files_metadata_takes_the_file_hash():
    event = parse_one(record(alert={"signature_id": 9}, files=[{"filename": "a.exe", "sha256": "AB" * 32}]))
    assert event.file_hash == "ab" * 32


# -- anomaly and drop ----------------------------------------------------------------------------


def test_anomaly_is_low_with_event_as_signature():
    event = parse_one(record(event_type="anomaly", anomaly={"type": "applayer", "event": "INVALID_RECORD_TYPE",
                                                           "layer": "proto_parser", "app_proto": "TLS"}))
    assert event.kind == "anomaly"
    assert event.sensor_severity is Severity.LOW
    assert event.signature == "INVALID_RECORD_TYPE"
    assert event.category == "applayer"
    assert event.app_proto == "tls"
    assert event.extra["layer"] == "proto_parser"


def test_drop_without_alert_is_medium_and_blocked():
    event = parse_one(record(event_type="drop", drop={"len": 76, "reason": "stream error"}))
    assert event.kind == "drop"
    assert event.sensor_severity is Severity.MEDIUM
    assert event.action == "blocked"
    assert event.extra["drop_reason"] == "stream error"


def test_drop_with_alert_takes_the_alert_severity():
    event = parse_one(record(event_type="drop", drop={"reason": "rules"},
                             alert={"action": "blocked", "signature_id": 5, "severity": 1, "signature": "x"}))
    assert event.sensor_severity is Severity.HIGH
    assert event.signature_id == "5"
    assert event.action == "blocked"


# -- application-layer records -----------------------------------------------------------------


def test_http_record():
    event = parse_one(record(event_type="http", http={
        "hostname": "updates.vendor.example", "url": "/fw/image.bin", "http_user_agent": "Wget",
        "http_method": "POST", "status": 200}))
    assert event.kind == "http" and event.app_proto == "http"
    assert event.url == "updates.vendor.example/fw/image.bin"
    assert event.domain == "updates.vendor.example"
    assert event.http_method == "POST"
    assert event.extra["http_status"] == 200


def test_escaped_slashes_are_plain_slashes():
    line = ('{"timestamp":"2017-03-06T06:54:14.002504+0000","event_type":"http",'
            '"http":{"hostname":"foobar","url":"\\/scripts\\/x.dll","protocol":"HTTP\\/1.1"}}')
    assert parse_one(line).url == "foobar/scripts/x.dll"


def test_http_absolute_form_url_is_kept_and_missing_url_gives_no_url():
    proxied = parse_one(record(event_type="http", http={"hostname": "a.example", "url": "http://b.example/x"}))
    assert proxied.url == "http://b.example/x"
    no_url = parse_one(record(event_type="http", http={"hostname": "a.example", "url": None}))
    assert no_url.url is None and no_url.domain == "a.example"


def test_dns_v2_record():
    event = parse_one(record(event_type="dns", proto="UDP", dns={
        "version": 2, "type": "answer", "rrname": "C2.Example.NET.", "rrtype": "A", "rcode": "NOERROR"}))
    assert event.domain == "c2.example.net"
    assert event.proto == "udp" and event.app_proto == "dns"
    assert event.extra["rrtype"] == "A" and event.extra["rcode"] == "NOERROR" and event.extra["dns_type"] == "answer"


def test_dns_v3_queries_list():
    event = parse_one(record(event_type="dns", dns={"version": 3, "type": "request",
                                                    "queries": [{"rrname": "scada-update.example", "rrtype": "TXT"}]}))
    assert event.domain == "scada-update.example"
    assert event.extra["rrtype"] == "TXT"


def test_tls_record():
    event = parse_one(record(event_type="tls", tls={
        "sni": "Portal.Example.org", "version": "TLS 1.2", "ja3": {"hash": "e7d705a3286e19ea42f587b344ee6865", "string": "771,..."},
        "ja3s": {"hash": "f4febc55ea12b31ae17cfb7e614afda8"}}))
    assert event.domain == "portal.example.org"
    assert event.ja3 == "e7d705a3286e19ea42f587b344ee6865"
    assert event.extra["ja3s"] == "f4febc55ea12b31ae17cfb7e614afda8"
    assert event.app_proto == "tls"


def test_fileinfo_prefers_sha256_and_falls_back_to_md5():
    both = parse_one(record(event_type="fileinfo", app_proto="http",
                            fileinfo={"filename": "/x", "md5": "0" * 32, "sha256": "F" * 64, "size": 10}))
    assert both.file_hash == "f" * 64
    assert both.extra["file_filename"] == "/x" and both.extra["file_size"] == 10
    assert both.app_proto == "http"
    md5_only = parse_one(record(event_type="fileinfo", fileinfo={"md5": "8d81d793b28b098e8623d47bae23cf44"}))
    assert md5_only.file_hash == "8d81d793b28b098e8623d47bae23cf44"
    assert md5_only.app_proto is None  # fileinfo is not a protocol


def test_flow_record_keeps_counters():
    event = parse_one(record(event_type="flow", app_proto="modbus", flow={
        "pkts_toserver": 3, "bytes_toserver": 200, "state": "closed", "reason": "timeout"}))
    assert event.kind == "flow" and event.app_proto == "modbus"
    assert event.extra["bytes_toserver"] == 200 and event.extra["flow_state"] == "closed"
    assert event.sensor_severity is None


def test_unknown_event_types_become_events_of_that_kind():
    event = parse_one(record(event_type="pgsql", pgsql={"tx_id": 1}))
    assert event.kind == "pgsql" and event.app_proto == "pgsql"
    netflow = parse_one(record(event_type="netflow", app_proto="failed", netflow={"pkts": 2, "bytes": 486}))
    assert netflow.kind == "netflow" and netflow.app_proto == "failed" and netflow.extra["bytes"] == 486


# -- ICS -------------------------------------------------------------------------------------------


def test_modbus_write_by_name_is_medium():
    event = parse_one(record(event_type="modbus", modbus={"request": {"function_code": "WriteSingleRegister",
                                                                      "unit_id": 1}}))
    assert event.ics_function == "write_single_register"
    assert event.sensor_severity is Severity.MEDIUM
    assert event.app_proto == "modbus"
    assert event.extra["ics_protocol"] == "modbus" and event.extra["modbus_unit_id"] == 1


def test_modbus_read_by_raw_code_has_no_severity():
    event = parse_one(record(event_type="modbus", modbus={"id": 1, "request": {
        "transaction_id": 7, "unit_id": 1, "function_raw": 3, "function_code": "RdHoldRegs",
        "access_type": "READ | HOLDING", "read": {"address": 0, "quantity": 10}}}))
    assert event.ics_function == "read_holding_registers"
    assert event.extra["ics_function_code"] == 3
    assert event.sensor_severity is None


def test_modbus_access_type_write_marks_control():
    event = parse_one(record(event_type="modbus", modbus={"request": {
        "function_raw": 16, "function_code": "WrMultRegs", "access_type": "WRITE | HOLDING"}}))
    assert event.ics_function == "write_multiple_registers"
    assert event.sensor_severity is Severity.MEDIUM


def test_modbus_exception_response_strips_the_high_bit():
    event = parse_one(record(event_type="modbus", modbus={"response": {"function_raw": 0x86}}))
    assert event.ics_function == "write_single_register"
    assert event.extra["modbus_exception"] is True


def test_dnp3_cold_restart_is_medium():
    event = parse_one(record(event_type="dnp3", dest_port=20000, dnp3={
        "type": "request", "src": 3, "dst": 10,
        "application": {"control": {"fir": True, "fin": True}, "function_code": 13, "objects": []}}))
    assert event.ics_function == "cold_restart"
    assert event.sensor_severity is Severity.MEDIUM
    assert event.app_proto == "dnp3"
    assert event.extra["dnp3_type"] == "request"


def test_dnp3_read_has_no_severity():
    event = parse_one(record(event_type="dnp3", dnp3={"type": "request", "application": {"function_code": 1}}))
    assert event.ics_function == "read"
    assert event.sensor_severity is None


def test_enip_cip_stop_is_medium_and_list_identity_is_not():
    stop = parse_one(record(event_type="enip", dest_port=44818, enip={"request": {
        "command": "SendRRData", "cip": {"service": "0x07", "class": 1, "instance": 1}}}))
    assert stop.ics_function == "stop" and stop.sensor_severity is Severity.MEDIUM
    named = parse_one(record(event_type="enip", enip={"request": {"command": "SendRRData",
                                                                   "cip": {"service": "Set_Attribute_Single"}}}))
    assert named.ics_function == "set_attribute_single" and named.sensor_severity is Severity.MEDIUM
    identity = parse_one(record(event_type="enip", enip={"request": {"command": "ListIdentity"}}))
    assert identity.ics_function == "list_identity" and identity.sensor_severity is None


def test_ics_function_does_not_lower_an_alert_severity():
    event = parse_one(record(alert={"signature_id": 1, "severity": 1},
                             modbus={"request": {"function_raw": 6}}))
    assert event.sensor_severity is Severity.HIGH
    assert event.ics_function == "write_single_register"


# -- timestamps, addresses, nulls --------------------------------------------------------------


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2024-03-01T17:00:00.500000+0700", datetime(2024, 3, 1, 10, 0, 0, 500000, tzinfo=timezone.utc)),
    ("2024-03-01T10:00:00+00:00", datetime(2024, 3, 1, 10, 0, 0, tzinfo=timezone.utc)),
    ("2024-03-01T10:00:00.25Z", datetime(2024, 3, 1, 10, 0, 0, 250000, tzinfo=timezone.utc)),
    ("2024-03-01T02:00:00-0800", datetime(2024, 3, 1, 10, 0, 0, tzinfo=timezone.utc)),
    ("1969-12-31T16:04:21.000000-0800", datetime(1970, 1, 1, 0, 4, 21, tzinfo=timezone.utc)),
])
def test_timestamps_become_utc(stamp, expected):
    event = parse_one(record(timestamp=stamp))
    assert event.ts == expected
    assert event.ts.tzinfo is timezone.utc


def test_timestamp_without_offset_uses_the_configured_zone():
    assert parse_one(record(timestamp="2024-03-01T10:00:00")).ts == datetime(2024, 3, 1, 10, tzinfo=timezone.utc)
    berlin = parse_one(record(timestamp="2024-03-01T11:00:00"), Options(naive_timezone="Europe/Berlin"))
    assert berlin.ts == datetime(2024, 3, 1, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize("stamp", [..., None, 1709287200, "yesterday", "2024-13-01T00:00:00+0000", ""])
def test_missing_or_bad_timestamp_is_rejected(stamp):
    result = parse_one(record(timestamp=stamp))
    assert isinstance(result, Rejected)
    assert "timestamp" in result.reason
    assert result.location == "line 1"


def test_ipv6_written_in_full_is_compressed():
    event = parse_one(record(src_ip="2a03:b0c0:0002:00d0:0000:0000:0bd3:4001",
                             dest_ip="0000:0000:0000:0000:0000:0000:0000:0001"))
    assert event.src_ip == "2a03:b0c0:2:d0::bd3:4001"
    assert event.dst_ip == "::1"


def test_invalid_address_keeps_the_event_and_the_text():
    event = parse_one(record(src_ip="not-an-ip", src_port=70000))
    assert isinstance(event, Event)
    assert event.src_ip is None and event.extra["invalid_src_ip"] == "not-an-ip"
    assert event.src_port is None


def test_null_fields_are_none():
    event = parse_one(record(event_type="fileinfo", flow_id=None, src_ip=None, src_port=None, dest_ip=None,
                             dest_port=None, proto=None, http={"hostname": "api.example", "url": None, "md5": None}))
    assert isinstance(event, Event)
    assert (event.src_ip, event.src_port, event.dst_ip, event.dst_port, event.proto) == (None,) * 5
    assert "flow_id" not in event.extra
    assert event.domain == "api.example"


# -- skipping and rejecting ------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    '{"timestamp":"2019-05-02T15:56:53.843674+0200","event_type":"stats","stats":{"uptime":3}}',
    '{ "timestamp": "2019-08-08T16:26:33.000244+0200", "event_type": "stats", "stats": { "uptime": 15 } }',
])
def test_stats_lines_are_skipped_without_json_parsing(line, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("stats line was JSON-parsed")

    monkeypatch.setattr(suricata_eve.json, "loads", refuse)
    assert parse_one(line) is None


def test_configured_skip_types_are_skipped():
    options = Options(skip_event_types=("stats", "flow"))
    assert parse_one(record(event_type="flow"), options) is None
    assert isinstance(parse_one(record(event_type="dns"), options), Event)


@pytest.mark.parametrize(("line", "reason"), [
    ("this is not json", "not a JSON object"),
    ('["a list"]', "not a JSON object"),
    ('{"timestamp":"2024-03-01T10:00:00+0000","event_type":"alert"', "invalid JSON"),
    ('{"timestamp":"2024-03-01T10:00:00+0000"}', "no event_type"),
    ('{"timestamp":"2024-03-01T10:00:00+0000","event_type":7}', "no event_type"),
    ('{"a":' * 5000 + "1" + "}" * 5000, "invalid JSON"),
])
def test_bad_lines_are_rejected_with_a_reason(line, reason):
    result = parse_one(line)
    assert isinstance(result, Rejected)
    assert reason in result.reason
    assert result.sample == line[:500] + ("…" if len(line) > 500 else "")


def test_blank_lines_are_skipped():
    assert parse_lines(["", "   ", "\r"]) == [None, None, None]


def test_byte_order_mark_and_trailing_carriage_return_are_tolerated():
    line = "\ufeff" + json.dumps(record(event_type="dns", dns={"rrname": "a.example"})) + "\r"
    event = parse_one(line)
    assert event.domain == "a.example" and event.raw == line


def test_truncated_line_does_not_swallow_the_next_good_line():
    good = json.dumps(record(event_type="dns", dns={"rrname": "next.example"}))
    results = parse_lines(['{"timestamp":"2017-03-06T06:54:10', good, good])
    assert isinstance(results[0], Rejected) and results[0].location == "line 1"
    assert [r.domain for r in results[1:]] == ["next.example", "next.example"]


def test_line_numbers_count_every_line():
    results = parse_lines([json.dumps(record()), "", "garbage"])
    assert results[2].location == "line 3"


# -- pretty-printed objects --------------------------------------------------------------------


def test_pretty_printed_object_is_reassembled():
    lines = json.dumps(record(alert={"signature_id": 6, "severity": 3, "source": {"ip": "10.0.0.5"}}), indent=4).split("\n")
    results = parse_lines(lines)
    assert results[:-1] == [None] * (len(lines) - 1)
    event = results[-1]
    assert isinstance(event, Event)
    assert event.signature_id == "6" and event.sensor_severity is Severity.LOW
    assert event.raw == "\n".join(lines)


def test_unindented_pretty_object_with_nested_array_of_objects():
    obj = record(event_type="dns", dns={"rrname": "x.example", "answers": [{"rdata": "1.2.3.4"}, {"rdata": "5.6.7.8"}]})
    lines = json.dumps(obj, indent=0).split("\n")
    results = parse_lines(lines)
    assert [r for r in results if r is not None] == [results[-1]]
    assert results[-1].domain == "x.example"


def test_braces_inside_strings_do_not_confuse_an_indented_object():
    obj = record(event_type="http", http={"hostname": "a.example", "url": "/x?q={{[", "http_user_agent": "}]"})
    results = parse_lines(json.dumps(obj, indent=2).split("\n"))
    assert results[-1].url == "a.example/x?q={{["


def test_unindented_object_is_parsed_once_not_at_every_nested_close(monkeypatch):
    calls = []
    real_loads = json.loads

    def counting_loads(text, *args, **kwargs):
        calls.append(text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(suricata_eve.json, "loads", counting_loads)
    answers = [{"rdata": f"10.0.0.{i}"} for i in range(30)]
    lines = json.dumps(record(event_type="dns", dns={"rrname": "x.example", "answers": answers}), indent=0).split("\n")
    results = parse_lines(lines)
    assert results[-1].domain == "x.example"
    assert len(calls) == 1


def test_two_pretty_objects_in_a_row_then_a_compact_line():
    first = json.dumps(record(event_type="dns", dns={"rrname": "one.example"}), indent=2).split("\n")
    second = json.dumps(record(event_type="dns", dns={"rrname": "two.example"}), indent=2).split("\n")
    compact = json.dumps(record(event_type="dns", dns={"rrname": "three.example"}))
    events = [r for r in parse_lines(first + second + [compact]) if r is not None]
    assert [e.domain for e in events] == ["one.example", "two.example", "three.example"]


def test_pretty_printed_stats_object_is_skipped():
    lines = json.dumps({"timestamp": "2023-04-07T00:21:07.805683+0800", "event_type": "stats",
                        "stats": {"uptime": 160, "flow": {"memcap": 0}}}, indent=4).split("\n")
    assert parse_lines(lines) == [None] * len(lines)


def test_unclosed_pretty_object_followed_by_another_is_rejected_at_the_new_one():
    broken = json.dumps(record(event_type="dns", dns={"rrname": "lost.example"}), indent=4).split("\n")[:5]
    good = json.dumps(record(event_type="dns", dns={"rrname": "kept.example"}), indent=4).split("\n")
    results = parse_lines(broken + good)
    rejected = results[len(broken)]
    assert isinstance(rejected, Rejected)
    assert rejected.location == f"lines 1-{len(broken)}"
    assert results[-1].domain == "kept.example"


def test_unclosed_pretty_object_followed_by_a_compact_line_keeps_the_line_and_owes_the_rejection():
    broken = json.dumps(record(), indent=4).split("\n")[:4]
    compact = json.dumps(record(event_type="dns", dns={"rrname": "kept.example"}))
    parser = make_parser("ids-1", Options())
    results = [parser(line) for line in broken + [compact]]
    assert results[-1].domain == "kept.example"
    assert results[:-1] == [None] * len(broken)
    owed = parser("")  # the next line that is not a record carries the rejection
    assert isinstance(owed, Rejected) and owed.location.startswith("lines 1-")
    assert parser.finish() == []


def test_finish_reports_an_object_left_open_at_end_of_input():
    parser = make_parser("ids-1", Options())
    for line in ["{", '    "event_type": "alert",']:
        assert parser(line) is None
    owed = parser.finish()
    assert len(owed) == 1 and owed[0].location == "lines 1-2"
    assert "ended inside" in owed[0].reason


def test_malformed_pretty_object_is_rejected_at_its_closing_brace():
    lines = ["{", '    "event_type": "alert",', '    "timestamp": oops', "}"]
    results = parse_lines(lines + [json.dumps(record())])
    assert isinstance(results[3], Rejected) and results[3].location == "lines 1-4"
    assert isinstance(results[4], Event)


def test_oversized_pretty_object_is_rejected_once_and_the_rest_discarded():
    body = ["{"] + [f'    "k{i}": {i},' for i in range(50)] + ['    "event_type": "alert"', "}"]
    good = json.dumps(record(event_type="dns", dns={"rrname": "after.example"}))
    results = parse_lines(body + [good], Options(max_object_lines=10))
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert len(rejected) == 1
    assert rejected[0].location == "lines 1-11" and "exceeds" in rejected[0].reason
    assert results[-1].domain == "after.example"
    assert all(r is None for r in results[11:-1])


def test_oversized_by_bytes():
    body = ["{", '    "pad": "' + "x" * 5000 + '",', '    "event_type": "alert"', "}"]
    results = parse_lines(body, Options(max_object_bytes="1KB"))
    assert isinstance(results[1], Rejected) and results[1].location == "lines 1-2"


# -- options ---------------------------------------------------------------------------------------


def test_options_are_strict():
    with pytest.raises(ValidationError):
        Options(skip_event_type=("stats",))
    with pytest.raises(ValidationError):
        Options(naive_timezone="Mars/Olympus_Mons")
    assert Options(max_object_bytes="2MiB").max_object_bytes == 2 * 1024 * 1024


# -- properties --------------------------------------------------------------------------------

REAL_LINES = [
    json.dumps(record(alert={"signature_id": 2019401, "severity": 1, "signature": "x"}, app_proto="modbus",
                      modbus={"request": {"function_raw": 6}})),
    json.dumps(record(event_type="http", src_ip="2a03:b0c0:0002:00d0:0000:0000:0bd3:4001",
                      http={"hostname": "h.example", "url": "/a", "http_user_agent": "u"})),
    json.dumps(record(event_type="tls", tls={"sni": "s.example", "ja3": {"hash": "a" * 32}})),
    json.dumps(record(event_type="dnp3", dnp3={"application": {"function_code": 13}})),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=200), max_size=8))
def test_arbitrary_text_never_raises(lines):
    parser = make_parser("fuzz", Options(max_object_lines=5))
    for line in lines:
        result = parser(line)
        assert result is None or isinstance(result, (Event, Rejected))
    assert all(isinstance(r, Rejected) for r in parser.finish())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL_LINES), st.integers(0, 2000), st.integers(0, 2000), st.text(max_size=5))
def test_mutated_real_lines_never_raise(line, cut, at, insert):
    mutated = line[: min(cut, len(line))] if cut < len(line) else line
    mutated = mutated[:at] + insert + mutated[at:]
    parser = make_parser("fuzz", Options())
    result = parser(mutated)
    assert result is None or isinstance(result, (Event, Rejected))
    follow = parser(REAL_LINES[0])
    assert isinstance(follow, Event)  # whatever the damage, it never swallows the next good line


# -- the fast decoder -------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [
    '"a":1,"a":2',                                    # duplicate keys: the last wins
    '"u":"http:\\/\\/x\\/y"',                         # escaped slashes
    '"n":null,"t":true,"f":false',
    '"big":123456789012345678901234567890',           # beyond 64 bits: exact int, as json.loads
    '"neg":-9223372036854775809,"z":-0,"fl":1.5e300',
    '"nan":NaN,"inf":Infinity',                       # not JSON: msgspec refuses, json.loads accepts
    '"huge":1E400',
    '"s":"\\ud800"',                                  # lone surrogate escape
    '"e":"\\u00e9\\ud83d\\ude00","c":"\\u0000"',
])
def test_fast_decoder_gives_exactly_what_json_loads_gives(extra):
    line = '{"timestamp":"2024-03-01T10:00:00+0000","event_type":"alert","src_ip":"203.0.113.7",' + extra + "}"
    event = parse_one(line)
    assert isinstance(event, Event)
    assert event.raw == line
    reference = json.loads(line)
    try:
        decoded = suricata_eve._fast_loads(line)
    except Exception:  # noqa: BLE001 - refused: the parser falls back to json.loads for this line
        return
    assert repr(decoded) == repr(reference)  # repr: 1 vs 1.0, -0 vs 0, big ints exact


def test_lines_the_fast_decoder_refuses_are_judged_by_json_loads():
    bad = '{"timestamp":"2024-03-01T10:00:00+0000","event_type":"alert",}'
    result = parse_one(bad)
    assert isinstance(result, Rejected)
    try:
        json.loads(bad)
    except ValueError as exc:
        assert result.reason == f"invalid JSON: {suricata_eve._json_error(exc)}"
