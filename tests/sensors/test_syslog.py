"""Unit tests for the syslog parser (RFC 3164, RFC 5424, @cee) on samples written here."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collectors.sensors import registry, syslog
from store.records import Event, Rejected, Severity

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=timezone.utc)


def parse(line: str, *, now: datetime = NOW, **options: object) -> Event | Rejected | None:
    return syslog.make_parser("fw-1", syslog.Options(**options), clock=lambda: now)(line)


def event(line: str, **kwargs: object) -> Event:
    result = parse(line, **kwargs)
    assert isinstance(result, Event), result
    return result


def rejected(line: str, **kwargs: object) -> Rejected:
    result = parse(line, **kwargs)
    assert isinstance(result, Rejected), result
    return result


# RFC 3164

def test_rfc3164_with_pri_gives_tag_pid_host_and_message() -> None:
    line = "<34>Oct 11 22:14:15 mymachine su[4242]: 'su root' failed for lonvick on /dev/pts/8"
    result = event(line)
    assert result.ts == datetime(2024, 10, 11, 22, 14, 15, tzinfo=timezone.utc)  # 4 months ahead beats 8 back
    assert (result.sensor, result.kind, result.raw) == ("fw-1", "syslog", line)
    assert result.signature == "su"
    assert result.sensor_severity is Severity.HIGH  # 34 = auth.crit
    assert result.extra["facility"] == "auth"
    assert result.extra["severity"] == "crit"
    assert result.extra["host"] == "mymachine"
    assert result.extra["pid"] == "4242"
    assert result.extra["message"] == "'su root' failed for lonvick on /dev/pts/8"
    assert result.extra["format"] == "rfc3164"


def test_rfc3164_without_pri_has_no_severity() -> None:
    result = event("Nov 16 12:53:54 mymachine PROGRAM: Info: MODULE: Startup")
    assert result.sensor_severity is None
    assert "pri" not in result.extra
    assert result.signature == "PROGRAM"
    assert result.extra["message"] == "Info: MODULE: Startup"


def test_space_after_pri_is_accepted() -> None:
    assert event("<34> Nov 16 14:55:56 host OTHER: text").extra["message"] == "text"


def test_single_digit_day_padded_with_space() -> None:
    assert event("Dec  6 15:56:37 mymachine PROCESS[123]: foobar").ts.day == 6


def test_host_with_address_gives_host_ip() -> None:
    result = event("Nov 16 12:53:54 mymachine/10.1.1.16 PROGRAM: x")
    assert result.extra["host"] == "mymachine/10.1.1.16"
    assert result.extra["host_ip"] == "10.1.1.16"


def test_no_tag_leaves_signature_empty_and_message_whole() -> None:
    result = event("Dec  6 15:56:27 mymachine No app name in this message, either")
    assert result.signature is None
    assert result.extra["message"] == "No app name in this message, either"


def test_tag_without_hostname() -> None:
    result = event("Jun 02 16:34:55 zscaler-nss: LEEF:1.0|Zscaler|NSS-FW|5.5|Drop|")
    assert "host" not in result.extra
    assert result.signature == "zscaler-nss"
    assert result.extra["message"].startswith("LEEF:1.0|")


def test_tag_with_pid_but_no_colon() -> None:
    result = event("May 18 16:02:00 isid isid[1] CEF:0|radiflow|isid|7|2|New Link|Medium|")
    assert (result.signature, result.extra["pid"]) == ("isid", "1")
    assert result.extra["message"].startswith("CEF:0|")


def test_cisco_message_id_is_the_signature_when_there_is_no_tag() -> None:
    line = "<164>Jan 18 2024 11:50:03 firepower : %FTD-4-419002: Duplicate TCP SYN from outside"
    result = event(line)
    assert result.signature == "%FTD-4-419002"
    assert result.ts == datetime(2024, 1, 18, 11, 50, 3, tzinfo=timezone.utc)
    assert result.sensor_severity is Severity.MEDIUM  # 164 = local4.warning


def test_rsyslog_tab_escape_is_decoded_in_the_message_unless_disabled() -> None:
    line = "Jan 10 10:00:00 host app: a#011b"
    assert event(line).extra["message"] == "a\tb"
    assert event(line, decode_rsyslog_escapes=False).extra["message"] == "a#011b"
    assert event(line).raw == line


# Time rules

@pytest.mark.parametrize(("now", "written", "year"), [
    (datetime(2024, 1, 2, tzinfo=timezone.utc), "Dec 31 23:59:59", 2023),  # just before new year
    (datetime(2023, 12, 31, 23, 0, tzinfo=timezone.utc), "Jan  1 00:00:01", 2024),  # clock a bit behind
    (datetime(2024, 6, 15, tzinfo=timezone.utc), "Mar  3 03:03:03", 2024),
    (datetime(2023, 3, 1, tzinfo=timezone.utc), "Feb 29 12:00:00", 2024),  # only 2024 has the day
])
def test_year_is_the_one_nearest_to_now(now: datetime, written: str, year: int) -> None:
    assert event(f"{written} host app: x", now=now).ts.year == year


def test_fixed_year_option_replays_an_archive() -> None:
    assert event("Dec 31 23:59:59 host app: x", year=2019).ts.year == 2019


def test_timezone_option_reads_zoneless_times_in_that_zone_with_dst() -> None:
    summer = event("Jul  1 12:00:00 host app: x", timezone="Europe/Berlin")
    winter = event("Jan  1 12:00:00 host app: x", timezone="Europe/Berlin", year=2024)
    assert summer.ts == datetime(2024, 7, 1, 10, 0, tzinfo=timezone.utc)
    assert winter.ts == datetime(2024, 1, 1, 11, 0, tzinfo=timezone.utc)
    assert summer.ts.tzinfo is timezone.utc


@pytest.mark.parametrize(("stamp", "expected"), [
    ("May 02 15:27:43.250 UTC", datetime(2024, 5, 2, 15, 27, 43, 250000, tzinfo=timezone.utc)),
    ("May 02 15:27:43 CEST", datetime(2024, 5, 2, 13, 27, 43, tzinfo=timezone.utc)),
    ("May 02 2017 15:27:43 +0200", datetime(2017, 5, 2, 13, 27, 43, tzinfo=timezone.utc)),
    ("May 02 2017 15:27:43 Europe/Helsinki", datetime(2017, 5, 2, 12, 27, 43, tzinfo=timezone.utc)),
])
def test_zone_written_after_the_time_wins_over_the_option(stamp: str, expected: datetime) -> None:
    result = event(f"{stamp} host app: x", timezone="America/New_York")
    assert result.ts == expected
    assert result.extra["host"] == "host"


def test_rfc3339_timestamp_in_a_bsd_line() -> None:
    result = event("2020-03-02T19:37:57.819303+01:00 host sshd[7]: Accepted")
    assert result.ts == datetime(2020, 3, 2, 18, 37, 57, 819303, tzinfo=timezone.utc)
    assert (result.extra["format"], result.signature, result.extra["pid"]) == ("rfc3164", "sshd", "7")


def test_impossible_date_is_rejected_with_the_text() -> None:
    assert "Feb 30 10:00:00" in rejected("Feb 30 10:00:00 host app: x").reason
    assert "not a real time" in rejected("Feb 29 10:00:00 host app: x", year=2023).reason


# RFC 5424

def test_rfc5424_fields_structured_data_and_escapes() -> None:
    line = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 88 ID47 '
            '[exampleSDID@32473 iut="3" eventSource="App\\]li\\"ca\\\\tion"][meta seq="1"] An event')
    result = event(line)
    assert result.ts == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=timezone.utc)
    assert result.signature == "evntslog"
    assert result.signature_id == "ID47"
    assert result.sensor_severity is Severity.LOW  # 165 = local4.notice
    assert result.extra["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": 'App]li"ca\\tion'},
        "meta": {"seq": "1"},
    }
    assert (result.extra["version"], result.extra["pid"], result.extra["message"]) == (1, "88", "An event")


def test_rfc5424_nil_fields_and_offset() -> None:
    result = event("<13>1 2020-03-02T19:37:57+01:00 - - - - - hello")
    assert result.ts == datetime(2020, 3, 2, 18, 37, 57, tzinfo=timezone.utc)
    assert result.signature is None and result.signature_id is None
    assert not {"host", "app", "pid", "msgid", "structured_data"} & result.extra.keys()


def test_rfc5424_nil_timestamp_takes_the_read_time_and_says_so() -> None:
    result = event("<165>8 - 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.")
    assert result.ts == NOW
    assert result.extra["time_source"] == "received"
    assert result.extra["host_ip"] == "192.0.2.1"
    assert event("<13>1 2020-03-02T19:37:57Z h a - - - x").extra["time_source"] == "header"


def test_rfc5424_byte_order_mark_is_dropped_from_the_message_not_from_raw() -> None:
    line = "<34>1 2003-10-11T22:14:15.003Z host su - ID47 - \ufeff'su root' failed"
    result = event(line)
    assert result.extra["message"] == "'su root' failed"
    assert result.raw == line


def test_rfc5424_repeated_parameter_keeps_every_value() -> None:
    result = event('<13>1 2020-01-01T00:00:00Z h a - - [x ip="1.1.1.1" ip="2.2.2.2" ip="3.3.3.3"] m')
    assert result.extra["structured_data"]["x"]["ip"] == ["1.1.1.1", "2.2.2.2", "3.3.3.3"]


def test_rfc5424_without_pri_and_version_is_still_read() -> None:
    result = event('2003-10-11T22:14:15.003Z host evntslog - ID47 [id@1 a="b"][p@1 class="high"]')
    assert result.extra["format"] == "rfc5424"
    assert result.extra["structured_data"]["p@1"] == {"class": "high"}
    assert result.sensor_severity is None


@pytest.mark.parametrize(("line", "reason"), [
    ("<13>1 2020-01-01T00:00:00Z host app", "RFC 5424 header has 3 of 6 fields"),
    ('<13>1 2020-01-01T00:00:00Z h a - - [x a="b msg', "value of x a has no closing quote"),
    ('<13>1 2020-01-01T00:00:00Z h a - - [x a="b" msg', "bad parameter name in element [x"),
    ('<13>1 2020-01-01T00:00:00Z h a - - [x a="b"', "element [x is not closed"),
    ("<13>1 2020-01-01T00:00:00Z h a - - [x a=b] m", "not in double quotes"),
    ("<13>1 2020-01-01T00:00:00Z h a - - [] m", "empty SD-ID"),
    ('<13>1 2020-01-01T00:00:00Z h a - - [x a="b"]m', "without a space"),
    ("<13>1 2020-01-01T00:00:00Z h a - - {} m", "must be '-' or start with '['"),
    ("<13>1 yesterday h a - - - m", "is not RFC 3339"),
    ("<13>1 2020-13-01T00:00:00Z h a - - - m", "not a real time"),
])
def test_malformed_rfc5424_is_rejected_with_a_precise_reason(line: str, reason: str) -> None:
    result = rejected(line)
    assert reason in result.reason
    assert result.location == ""
    assert result.sample == line


# PRI and non-syslog

@pytest.mark.parametrize(("code", "expected"), [
    (0, Severity.CRITICAL), (1, Severity.CRITICAL), (2, Severity.HIGH), (3, Severity.HIGH),
    (4, Severity.MEDIUM), (5, Severity.LOW), (6, Severity.INFO), (7, Severity.INFO),
])
def test_pri_severity_mapping(code: int, expected: Severity) -> None:
    result = event(f"<{16 * 8 + code}>Jan  1 00:00:00 host app: x")
    assert result.sensor_severity is expected
    assert result.extra["facility"] == "local0"


def test_pri_without_timestamp_is_pri_plus_content() -> None:
    result = event("<13>just some content")
    assert result.extra["format"] == "pri-only"
    assert result.extra["message"] == "just some content"
    assert result.extra["time_source"] == "received"


@pytest.mark.parametrize(("line", "reason"), [
    ("<192>Jan  1 00:00:00 host app: x", "PRI <192> is out of range 0-191"),
    ("<ab>Jan  1 00:00:00 host app: x", "is not <0..191>"),
    ("hello world", "not a syslog line"),
    ('{"json": true}', "not a syslog line"),
    ("1493738863000 host text", "not a syslog line"),  # epoch prefixes are only for CEF/LEEF
])
def test_non_syslog_is_rejected(line: str, reason: str) -> None:
    assert reason in rejected(line).reason


@pytest.mark.parametrize("line", ["", "   ", "\t"])
def test_blank_lines_are_skipped(line: str) -> None:
    assert parse(line) is None


# @cee

def test_cee_payload_is_parsed_and_flow_fields_are_picked() -> None:
    line = ('<133>1 2018-03-24T09:06:44-07:00 PC-susan EvntSLog - - - @cee: {"msg": "An account was logged on.", '
            '"id": "4624", "src": "PC-susan", "IpAddress": "172.20.0.25", "IpPort": "49386", "proto": "6"}')
    result = event(line)
    assert result.extra["cee"]["id"] == "4624"
    assert result.signature_id == "4624"
    assert result.src_ip == "172.20.0.25"  # "src" holds a hostname, so the next candidate is used
    assert result.src_port == 49386
    assert result.proto == "tcp"
    assert result.extra["message"] == "An account was logged on."


def test_msgid_wins_over_the_cee_event_id() -> None:
    assert event('<13>1 2020-01-01T00:00:00Z h a - LOGIN - @cee: {"id": "1"}').signature_id == "LOGIN"


def test_broken_cee_payload_keeps_the_event_and_flags_it() -> None:
    result = event('<13>1 2020-01-01T00:00:00Z h a - - - @cee: {"msg": ')
    assert "not JSON" in result.extra["cee_error"]
    assert "cee" not in result.extra
    assert "JSON list" in event("<13>1 2020-01-01T00:00:00Z h a - - - @cee: [1, 2]").extra["cee_error"]


def test_cee_parsing_can_be_switched_off() -> None:
    result = event('<13>1 2020-01-01T00:00:00Z h a - - - @cee: {"src_ip": "10.0.0.1"}', parse_cee=False)
    assert result.src_ip is None and "cee" not in result.extra


# Contract

def test_options_reject_unknown_zone_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        syslog.Options(timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        syslog.Options(timezon="UTC")  # type: ignore[call-arg]


def test_module_follows_the_sensor_contract() -> None:
    formats = registry()
    assert formats["syslog"] is syslog
    assert "syslog_header" not in {module.__name__.rsplit(".", 1)[-1] for module in formats.values()}
    parser = syslog.make_parser("fw-1", syslog.Options())
    assert parser.preamble("<13>Jan  1 00:00:00 host app: x") is False
    assert isinstance(parser("<13>Jan  1 00:00:00 host app: x"), Event)


# Properties

SAMPLES = [
    "<34>Oct 11 22:14:15 mymachine su[12]: 'su root' failed",
    '<165>1 2003-10-11T22:14:15.003Z host app 1 ID47 [a@1 b="c\\"d" e="f"] msg',
    '<134>1 2018-03-24T08:59:37-07:00 h EvntSLog - - - @cee: {"src": "10.0.0.1", "id": "7"}',
    "<164>Jan 18 2024 11:50:03 firepower : %FTD-4-419002: x",
    "May 02 15:27:43.000 UTC host CEF:0|a|b|c|d|e|5|src=1.2.3.4",
]
SPECIALS = st.sampled_from(["<", ">", "[", "]", '"', "\\", "=", " ", "-", ":", "|", "#012", "\ufeff", "9", "\x00"])


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
        assert result.raw == line
        assert result.ts.utcoffset() is not None and result.ts.utcoffset().total_seconds() == 0
        assert result.kind == "syslog"
    if isinstance(result, Rejected):
        assert result.reason and result.location == ""


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(st.text())
def test_any_text_gives_event_rejected_or_none(line: str) -> None:
    assert_well_formed(parse(line), line)


@PROPERTY_SETTINGS
@given(mutated_lines(SAMPLES))
def test_mutated_samples_give_event_rejected_or_none(line: str) -> None:
    assert_well_formed(parse(line), line)


def test_crlf_line_end_stays_in_raw_but_not_in_the_fields() -> None:
    line = "<13>1 2020-01-01T00:00:00Z h app - - - hello\r"
    result = event(line)
    assert result.raw == line
    assert result.extra["message"] == "hello"
