"""Unit tests for the CEF parser on samples written here."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collectors.sensors import cef, registry
from store.records import Event, Rejected, Severity

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=timezone.utc)
HEADER = "CEF:0|Vendor|Product|1.0|100|Something happened|5|"


def parse(line: str, *, now: datetime = NOW, **options: object) -> Event | Rejected | None:
    return cef.make_parser("ids-7", cef.Options(**options), clock=lambda: now)(line)


def event(line: str, **kwargs: object) -> Event:
    result = parse(line, **kwargs)
    assert isinstance(result, Event), result
    return result


def rejected(line: str, **kwargs: object) -> Rejected:
    result = parse(line, **kwargs)
    assert isinstance(result, Rejected), result
    return result


# Header

def test_header_fields_and_flow_mapping() -> None:
    line = (HEADER + "src=10.0.0.1 spt=1232 dst=2001:db8::1 dpt=502 proto=TCP act=blocked cat=/Intrusion "
            "app=HTTP request=http://evil.example/x?a=b dhost=Evil.Example shost=ws-1 requestMethod=post "
            "requestClientApplication=Mozilla/5.0 (X11) fileHash=abc123")
    result = event(line)
    assert (result.sensor, result.kind, result.raw) == ("ids-7", "cef", line)
    assert (result.signature_id, result.signature) == ("100", "Something happened")
    assert (result.src_ip, result.src_port, result.dst_ip, result.dst_port) == ("10.0.0.1", 1232, "2001:db8::1", 502)
    assert (result.proto, result.app_proto, result.action, result.category) == ("tcp", "http", "blocked", "/Intrusion")
    assert result.url == "http://evil.example/x?a=b"
    assert result.domain == "evil.example"
    assert (result.http_method, result.user_agent, result.file_hash) == ("POST", "Mozilla/5.0 (X11)", "abc123")
    assert result.sensor_severity is Severity.MEDIUM
    extra = result.extra
    assert (extra["cef_version"], extra["device_vendor"], extra["device_product"], extra["device_version"]) == (
        0, "Vendor", "Product", "1.0")
    assert extra["cef_severity"] == "5"
    assert extra["extension"]["shost"] == "ws-1"


def test_header_escapes_pipe_and_backslash_and_keeps_other_backslashes() -> None:
    result = event(r"CEF:0|Ven\|dor|Pro\\duct|1.0|100|a \d b \| c|3|")
    assert result.extra["device_vendor"] == "Ven|dor"
    assert result.extra["device_product"] == "Pro\\duct"
    assert result.signature == "a \\d b | c"


@pytest.mark.parametrize("line", [
    "CEF:0|Vendor|Product|1.0|100|Name|10",
    "CEF:0|Vendor|Product|1.0|100|Name|10|",
    "CEF:0|Vendor|Product|1.0|100|Name|10|   ",
])
def test_missing_or_empty_extension(line: str) -> None:
    assert event(line).extra["extension"] == {}


# Extension

def test_extension_values_keep_spaces_and_pipes_and_undo_escapes() -> None:
    result = event(HEADER + r"act=blocked a | msg=line one\nline two\rend cs1=a\=b c\\d \q dst=1.1.1.1")
    assert result.extra["extension"] == {
        "act": "blocked a |",
        "msg": "line one\nline two\rend",
        "cs1": "a=b c\\d \\q",
        "dst": "1.1.1.1",
    }


def test_empty_value_and_trailing_backslash() -> None:
    extension = event(HEADER + "src= suser=root act=a \\ dst=1.1.1.1").extra["extension"]
    assert extension == {"src": "", "suser": "root", "act": "a \\", "dst": "1.1.1.1"}
    assert event(HEADER + "src= suser=root").src_ip is None


def test_equals_sign_inside_a_value_not_after_a_space_stays_in_the_value() -> None:
    assert event(HEADER + "request=http://x/?a=b&c=d act=x").url == "http://x/?a=b&c=d"


def test_rsyslog_newline_escape_is_decoded_before_splitting() -> None:
    line = HEADER + "SrcMac=00:30:DE:40:D0:8D#012 DstMac=B8:27:EB:11:DE:24 note=a#012b"
    assert event(line).extra["extension"] == {
        "SrcMac": "00:30:DE:40:D0:8D", "DstMac": "B8:27:EB:11:DE:24", "note": "a\nb"}
    assert event(line, decode_rsyslog_escapes=False).extra["extension"]["SrcMac"] == "00:30:DE:40:D0:8D#012"


def test_full_key_names_map_like_short_ones_and_short_ones_win() -> None:
    result = event(HEADER + "sourceAddress=10.1.1.1 destinationPort=443 src=10.9.9.9 deviceReceiptTime=1493738863000")
    assert result.src_ip == "10.9.9.9"
    assert result.dst_port == 443
    assert result.ts == datetime(2017, 5, 2, 15, 27, 43, tzinfo=timezone.utc)


def test_custom_fields_are_named_by_their_labels() -> None:
    result = event(HEADER + "cs1=Ok cs1Label=Status cn2=42 cn2Label=value cs3=unlabelled "
                            "deviceCustomString4=x deviceCustomString4Label=Full")
    assert result.extra["custom"] == {"Status": "Ok", "value": "42", "cs3": "unlabelled", "Full": "x"}


def test_key_aliases_map_vendor_keys() -> None:
    line = HEADER + "src=172.16.2.41 dst=172.16.8.17 pt=502 PtName=Modbus"
    assert event(line).dst_port is None
    assert event(line, key_aliases={"pt": "dpt"}).dst_port == 502
    assert event(HEADER + "pt=502 dpt=503", key_aliases={"pt": "dpt"}).dst_port == 503


@pytest.mark.parametrize(("fields", "src_ip", "src_port", "proto"), [
    ("src=not-an-ip spt=70000 proto=17", None, None, "udp"),
    ("src=::ffff:10.0.0.1 spt=0 proto=ICMP", "::ffff:a00:1", 0, "icmp"),
    ("src=010.0.0.1 spt=-1", None, None, None),
])
def test_addresses_ports_and_protocols_are_validated(fields: str, src_ip: str | None, src_port: int | None,
                                                     proto: str | None) -> None:
    result = event(HEADER + fields)
    assert (result.src_ip, result.src_port, result.proto) == (src_ip, src_port, proto)


def test_destination_host_that_is_an_address_is_not_a_domain() -> None:
    assert event(HEADER + "dhost=10.0.0.5").domain is None


# Severity

@pytest.mark.parametrize(("written", "expected"), [
    ("0", Severity.INFO), ("1", Severity.LOW), ("3", Severity.LOW), ("4", Severity.MEDIUM),
    ("6", Severity.MEDIUM), ("7", Severity.HIGH), ("8", Severity.HIGH), ("9", Severity.CRITICAL),
    ("10", Severity.CRITICAL), ("Low", Severity.LOW), ("medium", Severity.MEDIUM), ("High", Severity.HIGH),
    ("Very-High", Severity.CRITICAL), ("Unknown", None), ("11", None), ("-1", None), ("severe", None),
])
def test_severity_mapping(written: str, expected: Severity | None) -> None:
    result = event(f"CEF:0|V|P|1|100|N|{written}|src=1.2.3.4")
    assert result.sensor_severity is expected
    assert result.extra["cef_severity"] == written


# Time

def test_rt_in_epoch_milliseconds() -> None:
    result = event(HEADER + "rt=1305034099211")
    assert result.ts == datetime(2011, 5, 10, 13, 28, 19, 211000, tzinfo=timezone.utc)
    assert result.extra["time_source"] == "rt"


def test_rt_in_words_uses_the_timezone_option_unless_it_names_a_zone() -> None:
    assert event(HEADER + "rt=May 02 2017 15:27:43", timezone="Europe/Berlin").ts == datetime(
        2017, 5, 2, 13, 27, 43, tzinfo=timezone.utc)
    assert event(HEADER + "rt=May 02 2017 15:27:43.500 GMT", timezone="Europe/Berlin").ts == datetime(
        2017, 5, 2, 15, 27, 43, 500000, tzinfo=timezone.utc)
    assert event(HEADER + "rt=2017-05-02T15:27:43+02:00").ts == datetime(2017, 5, 2, 13, 27, 43, tzinfo=timezone.utc)


def test_rt_without_year_gets_the_nearest_year() -> None:
    assert event(HEADER + "rt=Dec 31 23:00:00", now=datetime(2024, 1, 1, tzinfo=timezone.utc)).ts.year == 2023


def test_start_then_end_stand_in_for_a_missing_rt() -> None:
    result = event(HEADER + "end=1000000000000 start=1000000001000")
    assert (result.ts, result.extra["time_source"]) == (datetime(2001, 9, 9, 1, 46, 41, tzinfo=timezone.utc), "start")
    assert event(HEADER + "end=1000000000000").extra["time_source"] == "end"


def test_unreadable_rt_falls_back_to_the_syslog_time_and_says_why() -> None:
    result = event("Nov 21 13:09:11 host CEF:0|Cynet|C|4|0|Beacon|8| rt=3/30/2022 10:55:34 AM src=172.31.5.93")
    assert result.ts == datetime(2024, 11, 21, 13, 9, 11, tzinfo=timezone.utc)
    assert result.extra["time_source"] == "syslog"
    assert "rt '3/30/2022 10:55:34 AM' not understood" in result.extra["time_warning"]


def test_no_time_anywhere_takes_the_read_time_and_says_so() -> None:
    result = event(HEADER + "src=1.2.3.4")
    assert (result.ts, result.extra["time_source"]) == (NOW, "received")


# Syslog prefix

@pytest.mark.parametrize(("prefix", "host", "ts"), [
    ("1493738863000 hostname.example.com ", "hostname.example.com", datetime(2017, 5, 2, 15, 27, 43, tzinfo=timezone.utc)),
    ("May 02 2017 15:27:43.000 UTC hostname.example.com ", "hostname.example.com",
     datetime(2017, 5, 2, 15, 27, 43, tzinfo=timezone.utc)),
    ("<134>1 2018-03-24T08:59:37-07:00 sensor01 ids - - - ", "sensor01", datetime(2018, 3, 24, 15, 59, 37, tzinfo=timezone.utc)),
    ("<134>Mar 24 08:59:37 sensor02 ids[7]: ", "sensor02", datetime(2024, 3, 24, 8, 59, 37, tzinfo=timezone.utc)),
])
def test_syslog_prefix_gives_host_and_time(prefix: str, host: str, ts: datetime) -> None:
    result = event(prefix + HEADER + "src=1.2.3.4")
    assert result.extra["host"] == host
    assert result.ts == ts
    assert result.extra["time_source"] == "syslog"
    assert result.src_ip == "1.2.3.4"


def test_syslog_prefix_details_are_kept() -> None:
    result = event("<134>Mar 24 08:59:37 sensor02 ids[7]: " + HEADER)
    assert result.extra["syslog"] == {
        "format": "rfc3164", "pri": 134, "facility": "local0", "severity": "info", "host": "sensor02",
        "app": "ids", "pid": "7", "time": "2024-03-24T08:59:37+00:00"}
    assert result.sensor_severity is Severity.MEDIUM  # the CEF severity, not the syslog one


def test_unrecognised_prefix_is_kept_as_text() -> None:
    result = event("garbage before it " + HEADER + "src=1.2.3.4")
    assert result.extra["prefix"] == "garbage before it "
    assert "syslog" not in result.extra


def test_cef_marker_inside_a_value_does_not_start_the_payload() -> None:
    result = event(HEADER + "msg=saw CEF:1|x|y|z|1|n|1| in the data")
    assert result.extra["extension"]["msg"] == "saw CEF:1|x|y|z|1|n|1| in the data"


# Rejections

@pytest.mark.parametrize(("line", "reason"), [
    ("<13>Jan 1 00:00:00 host app: not cef at all", "no 'CEF:' header in the line"),
    ("CEF:0|Vendor|Product|1.0|100", "CEF header has 5 of 7 fields"),
    ("host CEF:", "CEF header has 1 of 7 fields"),
    ("CEF:zero|Vendor|Product|1.0|100|Name|5|", "CEF version 'zero' is not a number"),
    (HEADER + "just words", "CEF extension has no key=value pair: 'just words'"),
    (HEADER + "oops src=1.2.3.4", "CEF extension starts with text that is not key=value: 'oops'"),
])
def test_malformed_lines_are_rejected_with_a_precise_reason(line: str, reason: str) -> None:
    result = rejected(line)
    assert result.reason == reason
    assert (result.location, result.sample) == ("", line)


@pytest.mark.parametrize("line", ["", "  "])
def test_blank_lines_are_skipped(line: str) -> None:
    assert parse(line) is None


# Contract

def test_module_follows_the_sensor_contract() -> None:
    assert registry()["cef"] is cef
    parser = cef.make_parser("ids-7", cef.Options())
    assert parser.preamble(HEADER) is False
    assert isinstance(parser(HEADER), Event)
    with pytest.raises(ValidationError):
        cef.Options(key_aliases={"": "dpt"})
    with pytest.raises(ValidationError):
        cef.Options(year=12)


# Properties

SAMPLES = [
    HEADER + r"src=10.0.0.1 act=blocked a \= b | msg=x\ny cs1=v cs1Label=L rt=1305034099211",
    r"May 02 2017 15:27:43.000 UTC host CEF:0|sec\|urity|tm|1.0|100|det \\ x|10|src=1.2.3.4 dpt=80",
    "<134>1 2018-03-24T08:59:37-07:00 h ids - - - CEF:1|a|b|c|d|e|Very-High|SrcMac=00:11#012 X=y",
    "CEF:0|V|P|1|1|N|Low",
]
SPECIALS = st.sampled_from(["|", "\\", "=", " ", "CEF:", "#012", "<", ">", "\t", "9", "\x00", "rt="])


@st.composite
def mutated_lines(draw: st.DrawFn, lines: list[str]) -> str:
    line = draw(st.sampled_from(lines))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(line)))
        operation = draw(st.sampled_from(["insert", "delete", "truncate", "replace"]))
        if operation == "insert":
            line = line[:position] + draw(st.one_of(SPECIALS, st.text(max_size=4))) + line[position:]
        elif operation == "delete":
            line = line[:position] + line[position + draw(st.integers(1, 6)):]
        elif operation == "truncate":
            line = line[:position]
        else:
            line = line[:position] + draw(SPECIALS) + line[position + 1:]
    return line


def assert_well_formed(result: Event | Rejected | None, line: str) -> None:
    assert result is None or isinstance(result, (Event, Rejected))
    if isinstance(result, Event):
        assert result.raw == line and result.kind == "cef"
        assert result.ts.utcoffset() is not None and result.ts.utcoffset().total_seconds() == 0
    if isinstance(result, Rejected):
        assert result.reason and result.location == ""


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(st.one_of(st.text(), st.text().map(lambda tail: "CEF:" + tail)))
def test_any_text_gives_event_rejected_or_none(line: str) -> None:
    assert_well_formed(parse(line), line)


@PROPERTY_SETTINGS
@given(mutated_lines(SAMPLES))
def test_mutated_samples_give_event_rejected_or_none(line: str) -> None:
    assert_well_formed(parse(line), line)


def test_crlf_line_end_stays_in_raw_but_not_in_the_fields() -> None:
    line = HEADER + "src=10.0.0.1 dpt=502\r"
    result = event(line)
    assert result.raw == line
    assert (result.dst_port, result.extra["extension"]["dpt"]) == (502, "502")
