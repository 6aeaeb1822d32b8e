"""Conformance of the syslog, CEF and LEEF parsers over every real sample in ``shared/fixtures/syslog_cef``.

Every file is run through all three parsers and the counts of events, rejected and skipped lines
are pinned, so a regression in either direction (a good line lost, a bad line let through) fails.
The jcustenborder/cef-parser golden cases are compared field by field. The fixtures are read in
place and never copied (their licences vary; see ``shared/fixtures/SOURCES.md``).

The clock is fixed, because RFC 3164 and some CEF prefixes carry no year and the parsers pick the
year nearest to "now".
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.sensors import cef, leef, syslog
from store.records import Event, Rejected, Severity

FOLDER = "syslog_cef"
NOW = datetime(2024, 6, 15, 12, 0, tzinfo=timezone.utc)
GOLDEN_CASES = "cef-parser_cases_with_expected.json"
MODULES = {"syslog": syslog, "cef": cef, "leef": leef}

# (file, format) -> (events, rejected, skipped). Each reason for a rejection is pinned below too.
EXPECTED_COUNTS: dict[tuple[str, str], tuple[int, int, int]] = {
    ("azure-sentinel_radiflow_isid_cef.log", "syslog"): (14, 0, 0),
    ("azure-sentinel_radiflow_isid_cef.log", "cef"): (14, 0, 0),
    ("azure-sentinel_radiflow_isid_cef.log", "leef"): (0, 14, 0),
    # 9 bare CEF lines and 9 with an ArcSight "<epoch ms> host" prefix are not syslog.
    (GOLDEN_CASES, "syslog"): (72, 18, 0),
    (GOLDEN_CASES, "cef"): (90, 0, 0),
    (GOLDEN_CASES, "leef"): (0, 90, 0),
    ("cef-parser_inputs.log", "syslog"): (72, 18, 0),
    ("cef-parser_inputs.log", "cef"): (90, 0, 0),
    ("cef-parser_inputs.log", "leef"): (0, 90, 0),
    ("tenzir_leef1.log", "syslog"): (0, 5, 0),
    ("tenzir_leef1.log", "cef"): (0, 5, 0),
    # "just some random junk" has no key=value: rejected. The other junk cases are kept (see below).
    ("tenzir_leef1.log", "leef"): (4, 1, 0),
    ("tenzir_syslog_rfc3164.log", "syslog"): (12, 0, 0),
    # Two Cynet CEF alerts ride inside this syslog file; the other 10 lines are plain syslog.
    ("tenzir_syslog_rfc3164.log", "cef"): (2, 10, 0),
    ("tenzir_syslog_rfc3164.log", "leef"): (0, 12, 0),
    ("tenzir_zscaler_nss_leef.log", "syslog"): (1, 0, 0),
    ("tenzir_zscaler_nss_leef.log", "cef"): (0, 1, 0),
    ("tenzir_zscaler_nss_leef.log", "leef"): (1, 0, 0),
    ("vast_syslog_rfc5424.log", "syslog"): (13, 0, 0),
    ("vast_syslog_rfc5424.log", "cef"): (0, 13, 0),
    ("vast_syslog_rfc5424.log", "leef"): (0, 13, 0),
    ("wrccdc2018_rfc5424_cee_reconstructed.log", "syslog"): (40, 0, 0),
    ("wrccdc2018_rfc5424_cee_reconstructed.log", "cef"): (0, 40, 0),
    ("wrccdc2018_rfc5424_cee_reconstructed.log", "leef"): (0, 40, 0),
}
EXPECTED_REJECTION_REASONS: dict[str, set[str]] = {
    "syslog": {"neither <PRI> nor a timestamp at the start: not a syslog line"},
    "cef": {"no 'CEF:' header in the line"},
    "leef": {"no 'LEEF:' header in the line",
             "LEEF attribute 1 'just some random junk' is not key=value (delimiter tab)"},
}


def fixture_lines(path: Path) -> list[str]:
    """Lines as the tailer hands them over: split on newline, no trailing newline, last empty piece dropped."""
    if path.name == GOLDEN_CASES:
        return [case["input"] for case in json.loads(path.read_text(encoding="utf-8"))]
    lines = path.read_text(encoding="utf-8").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def run(path: Path, format_name: str, *, now: datetime = NOW, **options: object) -> list[Event | Rejected | None]:
    module = MODULES[format_name]
    parser = module.make_parser(f"sensor-{format_name}", module.Options(**options), clock=lambda: now)
    return [parser(line) for line in fixture_lines(path)]


def events_of(path: Path, format_name: str, **options: object) -> list[Event]:
    results = run(path, format_name, **options)
    assert all(isinstance(result, Event) for result in results)
    return results  # type: ignore[return-value]


def test_every_fixture_file_is_pinned(shared_fixtures: Path) -> None:
    on_disk = {path.name for path in (shared_fixtures / FOLDER).iterdir() if path.is_file()}
    assert on_disk == {file_name for file_name, _ in EXPECTED_COUNTS}
    assert {format_name for _, format_name in EXPECTED_COUNTS} == set(MODULES)


@pytest.mark.parametrize(("file_name", "format_name"), sorted(EXPECTED_COUNTS))
def test_counts_per_file_and_format(shared_fixtures: Path, file_name: str, format_name: str) -> None:
    path = shared_fixtures / FOLDER / file_name
    lines = fixture_lines(path)
    results = run(path, format_name)
    events = [result for result in results if isinstance(result, Event)]
    rejected = [result for result in results if isinstance(result, Rejected)]
    skipped = [result for result in results if result is None]
    assert (len(events), len(rejected), len(skipped)) == EXPECTED_COUNTS[(file_name, format_name)]
    assert len(results) == len(lines)
    for line, result in zip(lines, results):
        if isinstance(result, Event):
            assert result.raw == line
            assert result.sensor == f"sensor-{format_name}"
            assert result.kind == format_name
            assert result.ts.tzinfo is not None and result.ts.utcoffset().total_seconds() == 0
            assert result.sensor_severity is None or isinstance(result.sensor_severity, Severity)
            json.dumps(result.extra)  # the store keeps extra as JSON
        elif isinstance(result, Rejected):
            assert result.location == ""
            assert result.reason in EXPECTED_REJECTION_REASONS[format_name]
            assert result.sample == line[:500] + ("…" if len(line) > 500 else "")


# jcustenborder/cef-parser golden cases, field by field

def golden_cases(shared_fixtures: Path) -> list[dict]:
    return json.loads((shared_fixtures / FOLDER / GOLDEN_CASES).read_text(encoding="utf-8"))


def test_golden_cases_are_all_successes(shared_fixtures: Path) -> None:
    # If the file ever gains expected-error cases, they need an "assert we reject" branch below.
    cases = golden_cases(shared_fixtures)
    assert len(cases) == 90
    assert all({"cefVersion", "deviceVendor", "name", "severity", "extensions"} <= case["expected"].keys()
               for case in cases)


def test_golden_cases_field_by_field(shared_fixtures: Path) -> None:
    # The expected timestamp 1493738863000 is 2017-05-02 15:27:43 UTC, and most prefixes
    # ("May 02 15:27:43 host") carry no year: a collector reading them live in 2017 would have
    # had its clock in 2017, so we give the parser that clock.
    now_then = datetime(2017, 5, 2, 16, 0, tzinfo=timezone.utc)
    parser = cef.make_parser("golden", cef.Options(), clock=lambda: now_then)
    mismatches: dict[str, dict[str, tuple[object, object]]] = {}
    for case in golden_cases(shared_fixtures):
        expected = case["expected"]
        result = parser(case["input"])
        assert isinstance(result, Event), (case["_file"], result)
        got: dict[str, object] = {
            "cefVersion": result.extra["cef_version"],
            "deviceVendor": result.extra["device_vendor"],
            "deviceProduct": result.extra["device_product"],
            "deviceVersion": result.extra["device_version"],
            "deviceEventClassId": result.signature_id,
            "name": result.signature,
            "severity": result.extra["cef_severity"],
            "extensions": result.extra["extension"],
        }
        if "host" in expected:
            got["host"] = result.extra["host"]
        if "timestamp" in expected:
            # Deliberate deviation: cef-parser's "timestamp" is the syslog header time, while our
            # Event.ts prefers the device's own rt. We compare the header time we kept in
            # extra.syslog.time with it, and check ts separately below.
            header_time = datetime.fromisoformat(result.extra["syslog"]["time"])
            got["timestamp"] = round(header_time.timestamp() * 1000)
        differences = {key: (got.get(key), value) for key, value in expected.items() if got.get(key) != value}
        if differences:
            mismatches[case["_file"]] = differences

        rt = expected["extensions"].get("rt")
        if rt:
            assert result.ts == datetime.fromtimestamp(int(rt) / 1000, tz=timezone.utc)
            assert result.extra["time_source"] == "rt"
        elif "timestamp" in expected:
            assert result.ts == datetime.fromtimestamp(expected["timestamp"] / 1000, tz=timezone.utc)
            assert result.extra["time_source"] == "syslog"
        else:
            assert (result.ts, result.extra["time_source"]) == (now_then, "received")
    assert mismatches == {}


def test_golden_inputs_log_matches_the_json_cases(shared_fixtures: Path) -> None:
    from_log = fixture_lines(shared_fixtures / FOLDER / "cef-parser_inputs.log")
    assert from_log == [case["input"] for case in golden_cases(shared_fixtures)]


# Spot checks on what matters in each real file

def test_radiflow_ics_alerts(shared_fixtures: Path) -> None:
    path = shared_fixtures / FOLDER / "azure-sentinel_radiflow_isid_cef.log"
    events = events_of(path, "cef", key_aliases={"pt": "dpt"})
    first = events[0]
    assert first.signature == "New Link Detected"
    assert (first.src_ip, first.dst_ip, first.dst_port) == ("172.16.2.41", "172.16.8.17", 502)
    assert first.sensor_severity is Severity.MEDIUM
    assert first.extra["extension"]["SrcMac"] == "00:30:DE:40:D0:8D"  # "#012" artefact decoded and trimmed
    assert first.extra["extension"]["DstName"] == "172.16.8.17 - 0"
    assert first.extra["host"] == "radiflow-labs-isid"
    assert first.extra["syslog"]["pid"] == "1"
    assert first.ts == datetime(2024, 5, 18, 16, 2, tzinfo=timezone.utc)
    logic_update = [event for event in events if event.signature == "Schneider Logic Update Detected"]
    assert len(logic_update) == 1 and logic_update[0].sensor_severity is Severity.HIGH
    assert logic_update[0].signature_id == "101"
    assert sum(event.sensor_severity is Severity.HIGH for event in events) == 3
    assert {event.extra["extension"]["PtName"] for event in events if "PtName" in event.extra["extension"]} == {
        "Modbus", "S7/S7Plus/61850-MMS"}


def test_cynet_cef_inside_rfc3164(shared_fixtures: Path) -> None:
    results = run(shared_fixtures / FOLDER / "tenzir_syslog_rfc3164.log", "cef")
    alerts = [result for result in results if isinstance(result, Event)]
    assert [alert.extra["syslog"].get("app") for alert in alerts] == [None, "FOO"]
    for alert in alerts:
        assert alert.signature == "Memory Pattern - Cobalt Strike Beacon ReflectiveLoader"
        assert alert.sensor_severity is Severity.HIGH  # 8
        assert alert.src_ip == "172.31.5.93"
        assert alert.file_hash == "2BD1650A7AC9A92FD227B2AB8782696F744DD177D94E8983A19491BF6C1389FD"
        assert alert.extra["extension"]["filePath"] == "c:\\windows\\temp\\javac.exe"
        assert alert.extra["host"] == "mymachine/10.1.1.16"
        # rt "3/30/2022 10:55:34 AM" is no CEF time format: the header time is used, and we say so.
        assert alert.extra["time_source"] == "syslog"
        assert "time_warning" in alert.extra


def test_rfc3164_edge_cases(shared_fixtures: Path) -> None:
    events = events_of(shared_fixtures / FOLDER / "tenzir_syslog_rfc3164.log", "syslog")
    assert [event.signature for event in events] == [
        "PROGRAM", "PROGRAM", "OTHERPROGRAM", "OTHERPROGRAM", "su", "OTHERPROGRAM", None, "FOO", "PROCESS",
        None, None, "%FTD-4-419002"]
    assert [event.extra.get("host") for event in events] == [
        "mymachine/10.1.1.16"] * 4 + ["mymachine", "mymachine/10.1.1.16", "mymachine/10.1.1.16",
                                      "mymachine/10.1.1.16", "mymachine", "mymachine/10.1.1.16", "mymachine",
                                      "firepower"]
    assert [event.sensor_severity for event in events].count(None) == 8  # lines without <PRI>
    assert events[2].extra == events[3].extra  # "<34> Nov" and "<34>Nov" read alike
    assert events[5].extra["message"] == ""
    assert events[8].extra["pid"] == "123"
    assert events[11].ts == datetime(2024, 1, 18, 11, 50, 3, tzinfo=timezone.utc)  # year in the line
    # "Nov 16" read on 2024-06-15: five months ahead is nearer than seven months back.
    assert events[0].ts == datetime(2024, 11, 16, 12, 53, 54, tzinfo=timezone.utc)
    assert events[4].ts == datetime(2024, 10, 11, 22, 14, 15, tzinfo=timezone.utc)
    assert events[6].extra["message"].startswith("CEF:0|Cynet|")


def test_rfc5424_edge_cases(shared_fixtures: Path) -> None:
    events = events_of(shared_fixtures / FOLDER / "vast_syslog_rfc5424.log", "syslog")
    assert events[0].extra["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "App]lication", "eventID": "1011"}}
    assert events[3].extra["structured_data"]["exampleSDID@32473"]["eventSource"] == 'Applic"ation'
    assert events[4].extra["structured_data"]["exampleSDID@32473"]["eventSource"] == "Applic\\ation"
    assert events[4].extra["structured_data"]["examplePriority@32473"] == {"class": "high"}
    # The source writes the letters "BOM", not the byte order mark: they are message text.
    assert events[0].extra["message"] == "BOM'su root' failed for lonvick on /dev/pts/8"
    assert events[0].extra["version"] == 8
    assert (events[2].ts, events[2].extra["time_source"]) == (NOW, "received")  # nil timestamp
    assert events[5].sensor_severity is None and events[5].extra["format"] == "rfc5424"  # no PRI
    assert events[6].ts == datetime(2020, 3, 2, 18, 37, 57, 819303, tzinfo=timezone.utc)
    assert events[6].signature == "rsyslogd"
    assert events[7].signature == "polkitd(authority=local)"
    assert events[9].extra["pid"] == "1370"
    assert [event.sensor_severity for event in events[6:]] == [
        Severity.INFO, Severity.LOW, Severity.INFO, Severity.INFO, Severity.MEDIUM, Severity.INFO, Severity.INFO]


def test_windows_events_with_cee_payloads(shared_fixtures: Path) -> None:
    events = events_of(shared_fixtures / FOLDER / "wrccdc2018_rfc5424_cee_reconstructed.log", "syslog")
    with_cee = [event for event in events if "cee" in event.extra]
    assert len(with_cee) == 34
    assert not any("cee_error" in event.extra for event in events)
    logon = [event for event in events if event.signature_id == "4624"]
    assert len(logon) == 1
    assert (logon[0].src_ip, logon[0].src_port) == ("172.20.0.25", 49386)
    trojan = [event for event in events if "Trojan Horse" in event.extra["message"]]
    assert len(trojan) == 1 and trojan[0].sensor_severity is Severity.HIGH  # <131> = local0.err
    assert trojan[0].ts == datetime(2018, 3, 24, 16, 7, 13, tzinfo=timezone.utc)
    assert all(event.signature == "EvntSLog" for event in events)
    assert all(event.extra["host"].endswith(".jerry.land") for event in events)


def test_zscaler_leef_inside_syslog(shared_fixtures: Path) -> None:
    [event] = events_of(shared_fixtures / FOLDER / "tenzir_zscaler_nss_leef.log", "leef")
    assert (event.src_ip, event.src_port, event.dst_ip, event.dst_port, event.proto) == (
        "10.11.12.13", 30513, "10.66.69.21", 53, "tcp")
    assert (event.signature_id, event.category, event.extra["user"]) == ("Drop", "nss-fw", "GCL->SBL-1")
    assert event.extra["device_vendor"] == "Zscaler"
    assert event.extra["syslog"]["app"] == "zscaler-nss"
    assert len(event.extra["attributes"]) == 34
    assert event.ts == datetime(2024, 6, 2, 16, 34, 55, tzinfo=timezone.utc)


def test_cyberark_and_junk_leef(shared_fixtures: Path) -> None:
    results = run(shared_fixtures / FOLDER / "tenzir_leef1.log", "leef")
    cyberark, junk, empty_value, trailing_text, trailing_tab = results
    assert isinstance(cyberark, Event)
    # Deliberate deviation from Tenzir's reference output, which keeps
    # Cat = "Suspected credentials theft|sev=8|src=src1": PTA separates these attributes with
    # pipes, and splitting there recovers the severity an analyst needs.
    assert cyberark.category == "Suspected credentials theft"
    assert cyberark.sensor_severity is Severity.HIGH
    assert cyberark.extra["attributes"]["src"] == "src1" and cyberark.src_ip is None  # not an address
    assert cyberark.dst_ip == "192.168.0.1"
    assert cyberark.ts == datetime(2014, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert isinstance(junk, Rejected)
    assert isinstance(empty_value, Event) and empty_value.extra["attributes"] == {"key": ""}
    assert isinstance(trailing_text, Event) and trailing_text.extra["attributes"] == {"key": "trailing tab next"}
    # Deliberate deviation: Tenzir rejects "key=yikes<TAB>"; a trailing delimiter loses nothing, so we keep it.
    assert isinstance(trailing_tab, Event) and trailing_tab.extra["attributes"] == {"key": "yikes"}


# Properties over mutated real lines

def all_fixture_lines(shared_fixtures: Path) -> list[str]:
    return [line for path in sorted((shared_fixtures / FOLDER).iterdir()) for line in fixture_lines(path)]


SPECIALS = st.sampled_from(["|", "\\", "=", " ", "\t", "<", ">", "[", "]", '"', ":", "#012", "-", "CEF:",
                            "LEEF:", "\ufeff", "\x00", "9"])
PROPERTY_SETTINGS = settings(max_examples=120, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


def mutate(data: st.DataObject, line: str) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(line)))
        operation = data.draw(st.sampled_from(["insert", "delete", "truncate", "replace"]))
        if operation == "insert":
            line = line[:position] + data.draw(st.one_of(SPECIALS, st.text(max_size=4))) + line[position:]
        elif operation == "delete":
            line = line[:position] + line[position + data.draw(st.integers(1, 8)):]
        elif operation == "truncate":
            line = line[:position]
        else:
            line = line[:position] + data.draw(SPECIALS) + line[position + 1:]
    return line


@pytest.mark.parametrize("format_name", sorted(MODULES))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_mutated_real_lines_give_event_rejected_or_none(shared_fixtures: Path, format_name: str,
                                                        data: st.DataObject) -> None:
    line = mutate(data, data.draw(st.sampled_from(all_fixture_lines(shared_fixtures))))
    module = MODULES[format_name]
    result = module.make_parser("fuzz", module.Options(), clock=lambda: NOW)(line)
    assert result is None or isinstance(result, (Event, Rejected))
    if isinstance(result, Event):
        assert result.raw == line and result.kind == format_name
        assert result.ts.utcoffset() is not None and result.ts.utcoffset().total_seconds() == 0
        json.dumps(result.extra)
    if isinstance(result, Rejected):
        assert result.reason and result.location == ""
