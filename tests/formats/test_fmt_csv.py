"""The ``csv`` format over small tables written here (the real feeds are in the conformance suite)."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from collectors.formats import csv_table
from collectors.formats.common import FormatError, outcome
from settings.sources import SourceConfig
from store.records import Indicator, Rejected


def source(**overrides: Any) -> SourceConfig:
    data = {"id": "test.csv", "name": "test", "source": {"type": "file", "path": "/dev/null"},
            "schedule": {"every": "1h"}, "format": "csv", "filters": {"exclude_private": False}, **overrides}
    return SourceConfig.model_validate(data)


def run(text: str | bytes, src: SourceConfig | None = None, **options: Any) -> list[Any]:
    payload = text.encode() if isinstance(text, str) else text
    return list(csv_table.parse(io.BytesIO(payload), src or source(), csv_table.Options(**options)))


C2_TABLE = (
    "# C2 list written for this test\n"
    '"first_seen_utc","dst_ip","dst_port","c2_status","malware"\n'
    '"2024-02-08 19:20:49","198.51.100.20","5000","offline","ExampleBot"\n'
    '"2024-03-01 08:00:00","203.0.113.9","443","online","ExampleBot"\n'
    "# END 2 entries"
)
C2_MAPPING = {"value": "dst_ip", "port": "dst_port", "malware": "malware", "tags_field": "c2_status",
              "first_seen": {"field": "first_seen_utc", "format": "%Y-%m-%d %H:%M:%S"}}


def test_a_header_row_names_the_columns() -> None:
    records = run(C2_TABLE, source(mapping=C2_MAPPING))
    assert [(r.value, r.port, r.malware, r.tags) for r in records] == [
        ("198.51.100.20", 5000, "ExampleBot", ("offline",)), ("203.0.113.9", 443, "ExampleBot", ("online",))]
    assert records[0].first_seen == datetime(2024, 2, 8, 19, 20, 49, tzinfo=timezone.utc)
    assert records[0].raw == '"2024-02-08 19:20:49","198.51.100.20","5000","offline","ExampleBot"'


def test_column_names_match_without_regard_to_case() -> None:
    records = run(C2_TABLE, source(mapping={"value": "DST_IP", "port": "Dst_Port"}))
    assert [(r.value, r.port) for r in records] == [("198.51.100.20", 5000), ("203.0.113.9", 443)]


def test_a_changed_header_fails_the_run_naming_the_missing_columns() -> None:
    changed = C2_TABLE.replace('"dst_ip"', '"ip_address"').replace('"dst_port"', '"port"')
    with pytest.raises(FormatError, match=r"lacks mapped column\(s\) dst_ip, dst_port") as caught:
        run(changed, source(mapping=C2_MAPPING))
    assert "ip_address" in str(caught.value)  # the message shows the header we got


def test_the_header_can_be_the_last_comment_before_the_data() -> None:
    text = ("################################\n"
            "# Last updated: 2015-10-15 14:45:01 (UTC)\n"
            "#\n"
            "# DstIP,DstPort\n"
            "198.51.100.20,443,ExampleBot C&C\n"
            "203.0.113.9,4483,Other C&C\n")
    records = run(text, source(mapping={"value": "DstIP", "port": "DstPort", "description": "2"}), header_in_comment=True)
    assert [(r.value, r.port, r.description) for r in records] == [
        ("198.51.100.20", 443, "ExampleBot C&C"), ("203.0.113.9", 4483, "Other C&C")]


def test_header_in_comment_without_a_header_like_comment_fails() -> None:
    with pytest.raises(FormatError, match="no comment line"):
        run("# just a banner\n198.51.100.20,443\n", source(mapping={"value": "DstIP"}), header_in_comment=True)


def test_a_table_without_header_is_mapped_by_column_number() -> None:
    records = run("2019-02-13 00:34:42;http://evil.example/a;malware_download\n",
                  source(mapping={"value": "1", "tags_field": "2", "first_seen": {"field": "0"}}),
                  header=False, delimiter=";")
    assert (records[0].type, records[0].value, records[0].tags) == ("url", "http://evil.example/a", ("malware_download",))
    assert records[0].first_seen == datetime(2019, 2, 13, 0, 34, 42, tzinfo=timezone.utc)


def test_without_mapping_the_value_is_the_first_column() -> None:
    records = run("evil.example,x\nother.example,y\n", header=False)
    assert [r.value for r in records] == ["evil.example", "other.example"]


def test_names_are_refused_when_there_is_no_header() -> None:
    with pytest.raises(FormatError, match="must be column numbers: url"):
        run("a,b\n", source(mapping={"value": "url"}), header=False)


def test_columns_option_names_a_headerless_file() -> None:
    records = run("198.51.100.20|8080\n", source(mapping={"value": "ip", "port": "port"}),
                  columns=["ip", "port"], delimiter="|")
    assert (records[0].value, records[0].port) == ("198.51.100.20", 8080)


def test_broken_rows_are_rejected_with_their_line_number_and_the_rest_loads() -> None:
    text = ('"first_seen_utc","dst_ip","dst_port","c2_status","malware"\n'
            '"2024-02-08 19:20:49","198.51.100.20"\n'                               # cut short
            '"2024-02-08 19:20:49","198.51.100.21"x,"1","on","Bot"\n'               # junk after a quote
            '"2024-02-08 19:20:49","198.51.100.22","99999","on","Bot"\n'            # bad port
            '"2024-02-08 19:20:49","bad value","1","on","Bot"\n'
            '"2024-02-08 19:20:49","203.0.113.9","443","online","ExampleBot"\n')
    records = run(text, source(mapping=C2_MAPPING))
    assert [(outcome(r), getattr(r, "location", None)) for r in records] == [
        ("rejected", "line 2"), ("rejected", "line 3"), ("rejected", "line 4"), ("rejected", "line 5"), ("indicator", None)]
    assert records[0].reason == "row has 2 fields, the header names 5"
    assert records[1].reason.startswith("not a CSV row")
    assert records[2].reason.startswith("port:")


def test_a_stray_quote_spoils_only_its_own_line() -> None:
    records = run('v\n"evil.example\nother.example\n', source(mapping={"value": "v"}))
    assert [outcome(r) for r in records] == ["rejected", "indicator"]


def test_an_html_page_instead_of_csv_fails_the_run() -> None:
    with pytest.raises(FormatError, match="expected CSV, got an HTML page"):
        run("<!DOCTYPE html>\n<html><head><title>503</title></head></html>\n", source(mapping=C2_MAPPING))


def test_misp_csv_export_through_type_field() -> None:
    text = ("uuid,event_id,category,type,value,comment,to_ids,date\n"
            '"a1",1,"Payload delivery","md5","D41D8CD98F00B204E9800998ECF8427E","sample",1,1418217432\n'
            '"a2",1,"External analysis","link","https://report.example/x","",0,1418217066\n'
            '"a3",1,"Network activity","ip-dst","198.51.100.20","",1,1418217066\n')
    src = source(mapping={"value": "value", "type_field": "type", "type_map": {"ip-dst": "ip"},
                          "description": "comment", "first_seen": {"field": "date", "format": "epoch"}})
    records = run(text, src)
    assert [(outcome(r), getattr(r, "type", None)) for r in records] == [
        ("indicator", "md5"), ("skipped", None), ("indicator", "ipv4")]
    assert records[0].value == "d41d8cd98f00b204e9800998ecf8427e" and records[0].description == "sample"


cells = st.one_of(st.text(max_size=15), st.sampled_from(["198.51.100.1", "evil.example", "443", "", '"', "#x"]))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=4), max_size=10), delimiter=st.sampled_from([",", ";", "\t"]))
def test_every_data_line_gives_exactly_one_outcome(rows: list[list[str]], delimiter: str) -> None:
    body = [delimiter.join(c.replace("\n", " ").replace("\r", " ") for c in row) for row in rows]
    text = "\n".join(["value" + delimiter + "port", *body])
    try:
        records = run(text, source(mapping={"value": "value", "port": "port"}), delimiter=delimiter)
    except FormatError:
        return
    physical = text.split("\n")
    data = [n for n, line in enumerate(physical, start=1) if n > 1 and line.strip() and not line.strip().startswith("#")]
    assert len(records) == len(data)
    for record, number in zip(records, data):
        assert record.location == f"line {number}" if isinstance(record, Rejected) else record.raw == physical[number - 1]


@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=200), header_in_comment=st.booleans())
def test_arbitrary_bytes_raise_nothing_but_format_error(payload: bytes, header_in_comment: bool) -> None:
    try:
        records = run(payload, source(mapping={"value": "0"}), header_in_comment=header_in_comment)
    except FormatError:
        return
    assert all(isinstance(r, Indicator) or r.location.startswith("line ") for r in records)


def test_threatfox_shape_quoted_header_in_comment_and_ip_port_values() -> None:
    # Written here after the ThreatFox export layout (no real sample is stored): quoted header in a
    # comment, fields separated by '", "', and ip:port values.
    text = ('# ThreatFox-like export\n'
            '# "first_seen_utc","ioc_value","ioc_type","malware_printable","confidence_level","tags"\n'
            '"2024-04-04 07:03:03", "198.51.100.1:443", "ip:port", "Cobalt Strike", "100", "c2,CobaltStrike"\n'
            '"2024-04-04 07:05:00", "evil.example", "domain", "Unknown", "50", ""\n'
            '"2024-04-04 07:06:00", "x", "registry_key", "Unknown", "50", ""\n')
    src = source(mapping={"value": "ioc_value", "type_field": "ioc_type", "type_map": {"ip:port": "ip:port"},
                          "malware": "malware_printable", "confidence": "confidence_level", "tags_field": "tags"})
    records = run(text, src, header_in_comment=True)
    assert [(outcome(r), getattr(r, "value", None), getattr(r, "port", None)) for r in records] == [
        ("indicator", "198.51.100.1", 443), ("indicator", "evil.example", None), ("skipped", None, None)]
    assert (records[0].malware, records[0].confidence, records[0].tags) == ("Cobalt Strike", 100, ("c2", "CobaltStrike"))
