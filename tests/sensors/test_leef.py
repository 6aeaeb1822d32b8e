"""Unit tests for the LEEF parser on samples written here."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collectors.sensors import leef, registry
from store.records import Event, Rejected, Severity

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=timezone.utc)
HEADER1 = "LEEF:1.0|Vendor|Product|2.1|Login failed|"


def parse(line: str, *, now: datetime = NOW, **options: object) -> Event | Rejected | None:
    return leef.make_parser("qradar-1", leef.Options(**options), clock=lambda: now)(line)


def event(line: str, **kwargs: object) -> Event:
    result = parse(line, **kwargs)
    assert isinstance(result, Event), result
    return result


def rejected(line: str, **kwargs: object) -> Rejected:
    result = parse(line, **kwargs)
    assert isinstance(result, Rejected), result
    return result


def test_leef1_tab_separated_attributes_and_mapping() -> None:
    line = HEADER1 + "\t".join([
        "src=10.0.0.1", "dst=10.0.0.2", "srcPort=5555", "dstPort=502", "proto=TCP", "sev=7", "cat=auth",
        "usrName=alice", "url=http://x/y?z=1", "domain=Corp.Example", "action=blocked", "note=a=b c",
    ])
    result = event(line)
    assert (result.sensor, result.kind, result.raw) == ("qradar-1", "leef", line)
    assert (result.src_ip, result.src_port, result.dst_ip, result.dst_port, result.proto) == (
        "10.0.0.1", 5555, "10.0.0.2", 502, "tcp")
    assert (result.signature_id, result.signature, result.category) == ("Login failed", "Login failed", "auth")
    assert result.sensor_severity is Severity.HIGH
    assert (result.url, result.domain, result.action) == ("http://x/y?z=1", "corp.example", "blocked")
    assert result.extra["user"] == "alice"
    assert result.extra["attributes"]["note"] == "a=b c"  # only the first '=' separates
    assert (result.extra["leef_version"], result.extra["device_vendor"], result.extra["device_product"],
            result.extra["device_version"], result.extra["delimiter"]) == ("1.0", "Vendor", "Product", "2.1", "\t")


@pytest.mark.parametrize(("spec", "delimiter"), [
    ("^", "^"), ("x5E", "^"), ("0x5e", "^"), ("\\x5E", "^"), ("x09", "\t"), ("0x09", "\t"), ("\\t", "\t"), ("", "\t"),
])
def test_leef2_delimiter_spellings(spec: str, delimiter: str) -> None:
    line = f"LEEF:2.0|Lancope|StealthWatch|1.0|41|{spec}|src=10.0.1.8{delimiter}dst=10.0.0.5{delimiter}sev=5"
    result = event(line)
    assert result.extra["delimiter"] == delimiter
    assert (result.src_ip, result.dst_ip, result.sensor_severity) == ("10.0.1.8", "10.0.0.5", Severity.MEDIUM)


def test_leef2_without_a_delimiter_field_defaults_to_tab() -> None:
    result = event("LEEF:2.0|V|P|1|E|src=10.0.0.1\tdst=10.0.0.2")
    assert (result.src_ip, result.dst_ip, result.extra["delimiter"]) == ("10.0.0.1", "10.0.0.2", "\t")


def test_leef1_delimiter_option() -> None:
    assert event(HEADER1 + "src=10.0.0.1|dst=10.0.0.2", leef1_delimiter="|").dst_ip == "10.0.0.2"


def test_header_escapes_and_no_attributes() -> None:
    result = event(r"LEEF:1.0|Ven\|dor|P|1|E")
    assert result.extra["device_vendor"] == "Ven|dor"
    assert result.extra["attributes"] == {}


def test_trailing_and_doubled_delimiters_are_ignored_but_empty_values_kept() -> None:
    assert event(HEADER1 + "key=yikes\t").extra["attributes"] == {"key": "yikes"}
    assert event(HEADER1 + "a=1\t\tb=\t").extra["attributes"] == {"a": "1", "b": ""}


def test_cyberark_pipes_between_first_attributes() -> None:
    line = "LEEF:1.0|CyberArk|PTA|14.0|1|Cat=Suspected credentials theft|sev=8|src=10.1.1.1\tuserName=mike"
    result = event(line)
    assert result.extra["attributes"] == {
        "Cat": "Suspected credentials theft", "sev": "8", "src": "10.1.1.1", "userName": "mike"}
    assert (result.category, result.sensor_severity, result.src_ip) == (
        "Suspected credentials theft", Severity.HIGH, "10.1.1.1")
    kept_whole = event(line, split_pipe_attributes=False).extra["attributes"]
    assert kept_whole["Cat"] == "Suspected credentials theft|sev=8|src=10.1.1.1"


def test_rsyslog_tab_escape_is_a_delimiter() -> None:
    result = event(HEADER1 + "src=10.0.0.1#011dst=10.0.0.2")
    assert (result.src_ip, result.dst_ip) == ("10.0.0.1", "10.0.0.2")


def test_exact_case_key_wins_over_other_casing() -> None:
    assert event(HEADER1 + "CAT=upper\tcat=lower").category == "lower"
    assert event(HEADER1 + "Cat=only").category == "only"


# Time

def test_devtime_epoch_milliseconds() -> None:
    result = event(HEADER1 + "devTime=1388577600000")
    assert result.ts == datetime(2014, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert result.extra["time_source"] == "devTime"


def test_devtime_default_format_in_the_timezone_option() -> None:
    result = event(HEADER1 + "devTime=Jan 15 2024 10:11:12.345", timezone="Europe/Paris")
    assert result.ts == datetime(2024, 1, 15, 9, 11, 12, 345000, tzinfo=timezone.utc)


@pytest.mark.parametrize(("value", "pattern", "expected"), [
    ("2016-05-15T10:11:12.123+0200", "yyyy-MM-dd'T'HH:mm:ss.SSSZ", datetime(2016, 5, 15, 8, 11, 12, 123000, tzinfo=timezone.utc)),
    ("15/05/16 10:11:12 PM", "dd/MM/yy hh:mm:ss a", datetime(2016, 5, 15, 22, 11, 12, tzinfo=timezone.utc)),
    ("Sun, 15 May 2016 10:11:12 UTC", "EEE, dd MMM yyyy HH:mm:ss z", datetime(2016, 5, 15, 10, 11, 12, tzinfo=timezone.utc)),
    ("May 15 10:11:12", "MMM dd HH:mm:ss", datetime(2016, 5, 15, 10, 11, 12, tzinfo=timezone.utc)),
])
def test_devtime_with_a_java_devtimeformat(value: str, pattern: str, expected: datetime) -> None:
    result = event(HEADER1 + f"devTime={value}\tdevTimeFormat={pattern}", now=datetime(2016, 6, 1, tzinfo=timezone.utc))
    assert result.ts == expected


def test_devtime_that_does_not_fit_its_format_falls_back_and_says_why() -> None:
    result = event("Jun 02 16:34:55 fw: " + HEADER1 + "devTime=yesterday\tdevTimeFormat=yyyy-MM-dd")
    assert result.ts == datetime(2024, 6, 2, 16, 34, 55, tzinfo=timezone.utc)
    assert result.extra["time_source"] == "syslog"
    assert result.extra["time_warning"] == "devTime 'yesterday' not understood with devTimeFormat 'yyyy-MM-dd'"


def test_no_time_anywhere_takes_the_read_time() -> None:
    result = event(HEADER1 + "src=10.0.0.1")
    assert (result.ts, result.extra["time_source"]) == (NOW, "received")


# Syslog envelope

def test_leef_inside_rfc3164_without_hostname() -> None:
    result = event("Jun 02 16:34:55 zscaler-nss: LEEF:1.0|Zscaler|NSS-FW|5.5|Drop|src=10.11.12.13\tdstPort=53")
    assert result.extra["syslog"]["app"] == "zscaler-nss"
    assert "host" not in result.extra
    assert result.ts == datetime(2024, 6, 2, 16, 34, 55, tzinfo=timezone.utc)
    assert (result.src_ip, result.dst_port, result.signature_id) == ("10.11.12.13", 53, "Drop")


def test_leef_inside_rfc5424() -> None:
    result = event("<13>1 2024-01-01T00:00:00Z fw01 app - - - " + HEADER1 + "sev=10")
    assert (result.extra["host"], result.sensor_severity) == ("fw01", Severity.CRITICAL)
    assert result.extra["syslog"]["pri"] == 13


# Rejections

@pytest.mark.parametrize(("line", "reason"), [
    ("<13>Jan  1 00:00:00 host app: plain text", "no 'LEEF:' header in the line"),
    ("LEEF:1.0|Vendor|Product", "LEEF header has 3 of 5 fields"),
    ("LEEF:3.0|V|P|1|E|a=b", "LEEF version '3.0' is not 1.x or 2.x"),
    ("LEEF:one|V|P|1|E|a=b", "LEEF version 'one' is not 1.x or 2.x"),
    ("LEEF:2.0|V|P|1|E|semicolon|a=b", "LEEF 2.0 delimiter 'semicolon' is neither one character nor a hex code like x09"),
    (HEADER1 + "just some random junk", "LEEF attribute 1 'just some random junk' is not key=value (delimiter tab)"),
    (HEADER1 + "a=1\t=2", "LEEF attribute 2 '=2' is not key=value (delimiter tab)"),
    ("LEEF:2.0|V|P|1|E|^|a=1^b", "LEEF attribute 2 'b' is not key=value (delimiter '^')"),
])
def test_malformed_lines_are_rejected_with_a_precise_reason(line: str, reason: str) -> None:
    result = rejected(line)
    assert result.reason == reason
    assert (result.location, result.sample) == ("", line)


def test_blank_lines_are_skipped() -> None:
    assert parse("") is None and parse(" \t ") is None


def test_module_follows_the_sensor_contract() -> None:
    assert registry()["leef"] is leef
    parser = leef.make_parser("qradar-1", leef.Options())
    assert parser.preamble(HEADER1) is False
    assert isinstance(parser(HEADER1), Event)
    with pytest.raises(ValidationError, match="exactly one character"):
        leef.Options(leef1_delimiter="||")


# Properties

SAMPLES = [
    "LEEF:1.0|CyberArk|PTA|14.0|1|Cat=Theft|sev=8|src=src1\tuserName=mike\tdevTime=1388577600000",
    "Jun 02 16:34:55 zscaler-nss: LEEF:1.0|Zscaler|NSS-FW|5.5|Drop|usrName=x\tsrc=10.11.12.13\tproto=TCP",
    "LEEF:2.0|Lancope|SW|1.0|41|^|src=10.0.1.8^devTime=2016-05-15 10:11:12^devTimeFormat=yyyy-MM-dd HH:mm:ss",
    "LEEF:2.0|V|P|1|E|x09|a=b\tc=d",
]
SPECIALS = st.sampled_from(["|", "\\", "=", "\t", "^", "x09", "#011", "LEEF:", "'", "y", "M", " ", "\x00"])


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
        assert result.raw == line and result.kind == "leef"
        assert result.ts.utcoffset() is not None and result.ts.utcoffset().total_seconds() == 0
    if isinstance(result, Rejected):
        assert result.reason and result.location == ""


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(st.one_of(st.text(), st.text().map(lambda tail: "LEEF:2.0|" + tail)))
def test_any_text_gives_event_rejected_or_none(line: str) -> None:
    assert_well_formed(parse(line), line)


@PROPERTY_SETTINGS
@given(mutated_lines(SAMPLES), st.text(max_size=30))
def test_mutated_samples_and_any_devtimeformat_never_raise(line: str, pattern: str) -> None:
    assert_well_formed(parse(line), line)
    with_format = HEADER1 + "devTime=2016-05-15 10:11:12\tdevTimeFormat=" + pattern.replace("\t", " ")
    assert_well_formed(parse(with_format), with_format)


def test_crlf_line_end_stays_in_raw_but_not_in_the_fields() -> None:
    line = HEADER1 + "src=10.0.0.1\tdstPort=502\r"
    result = event(line)
    assert result.raw == line
    assert (result.dst_port, result.extra["attributes"]["dstPort"]) == (502, "502")
