"""Shared helpers: time parsing, field lookup, input checks, mapping, filters and outcome counting."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from typing import Any

import pytest

from collectors.formats import common
from collectors.formats.common import (
    FormatError, build_indicator, check_start, dotted, iter_lines, make_indicator, outcome, parse_time,
    peek_head, strictest_tlp, tally, tlp_label,
)
from settings.sources import SourceConfig, TimeField
from store.records import Advisory, Indicator, Rejected

UTC = timezone.utc


def source(**overrides: Any) -> SourceConfig:
    """A source whose samples may use the documentation ranges (RFC 5737) unless a test sets filters."""
    data = {"id": "test.feed", "name": "test", "source": {"type": "file", "path": "/dev/null"},
            "schedule": {"every": "1h"}, "format": "json", "filters": {"exclude_private": False}, **overrides}
    return SourceConfig.model_validate(data)


@pytest.mark.parametrize(("value", "spec", "expected"), [
    ("2024-04-04T07:03:03Z", {}, datetime(2024, 4, 4, 7, 3, 3, tzinfo=UTC)),
    ("2024-04-04T09:03:03+02:00", {}, datetime(2024, 4, 4, 7, 3, 3, tzinfo=UTC)),
    ("2024-04-04", {}, datetime(2024, 4, 4, tzinfo=UTC)),  # a bare date is midnight (IntelMQ #1415)
    ("2024-01-15 12:00:00", {"tz": "Europe/Paris"}, datetime(2024, 1, 15, 11, 0, tzinfo=UTC)),
    ("2024-07-15 12:00:00", {"tz": "Europe/Paris"}, datetime(2024, 7, 15, 10, 0, tzinfo=UTC)),
    ("2025-08-25T17:04:19.9796Z", {}, datetime(2025, 8, 25, 17, 4, 19, 979600, tzinfo=UTC)),
    ("1472480395", {"format": "epoch"}, datetime(2016, 8, 29, 14, 19, 55, tzinfo=UTC)),
    (1472480395, {"format": "epoch"}, datetime(2016, 8, 29, 14, 19, 55, tzinfo=UTC)),
    ("1472480395500", {"format": "epoch_ms"}, datetime(2016, 8, 29, 14, 19, 55, 500000, tzinfo=UTC)),
    ("15/12/2015 15:33", {"format": "%d/%m/%Y %H:%M", "tz": "America/New_York"}, datetime(2015, 12, 15, 20, 33, tzinfo=UTC)),
    ("Tue, 15 Dec 2015 15:33:38 +0100", {"format": "%a, %d %b %Y %H:%M:%S %z"}, datetime(2015, 12, 15, 14, 33, 38, tzinfo=UTC)),
    ("", {}, None),
    (None, {"format": "epoch"}, None),
])
def test_parse_time_gives_utc(value: Any, spec: dict[str, str], expected: datetime | None) -> None:
    parsed = parse_time(value, TimeField(field="t", **spec))
    assert parsed == expected
    assert parsed is None or parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(("value", "spec"), [
    ("yesterday", {}), ("2024-13-01", {}), ("12:00 2024", {"format": "%Y-%m-%d"}), ("soon", {"format": "epoch"}),
    (True, {"format": "epoch"}), ("1e400", {"format": "epoch"}), (99999999999999999, {"format": "epoch"}), (17, {}),
])
def test_parse_time_rejects_values_that_do_not_fit(value: Any, spec: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        parse_time(value, TimeField(field="t", **spec))


def test_an_unknown_time_zone_fails_the_run() -> None:
    with pytest.raises(FormatError, match="Mars/Olympus"):
        parse_time("2024-01-01 00:00", TimeField(field="t", tz="Mars/Olympus"))


def test_dotted_paths_reach_keys_and_list_items() -> None:
    record = {"a": {"b": [{"c": 1}, {"c": 2}]}, "x.y": "dotted key", "n": None}
    assert dotted(record, "a.b.1.c") == 2
    assert dotted(record, "x.y") == "dotted key"
    assert dotted(record, "a.b.5.c") is None
    assert dotted(record, "a.missing") is None
    assert dotted(record, "n.deeper") is None
    assert dotted(record, "a.b.c") is None


@pytest.mark.parametrize("start", [b"<!DOCTYPE html><html>", b"\n\n  <html lang=en>", b"\xef\xbb\xbf<HTML>", b"<head>"])
def test_an_html_page_is_a_format_error(start: bytes) -> None:
    with pytest.raises(FormatError, match="expected CSV, got an HTML page"):
        check_start(start, "CSV")


def test_compressed_bytes_are_a_format_error() -> None:
    with pytest.raises(FormatError, match="gzip"):
        check_start(b"\x1f\x8b\x08\x00rest", "CSV")
    check_start(b"# <html> in a comment is fine", "CSV")


def test_iter_lines_numbers_lines_and_rejects_undecodable_ones() -> None:
    payload = io.BytesIO(b"\xef\xbb\xbffirst\r\nsecond\n\xff\xfe broken\nlast")
    lines = list(iter_lines(payload, "text"))
    assert [n for n, _ in lines] == [1, 2, 3, 4]
    assert lines[0][1] == "first" and lines[1][1] == "second" and lines[3][1] == "last"
    broken = lines[2][1]
    assert isinstance(broken, Rejected) and broken.location == "line 3" and "UTF-8" in broken.reason


def test_iter_lines_rejects_an_overlong_line_and_reads_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "MAX_LINE_BYTES", 16)
    lines = list(iter_lines(io.BytesIO(b"short\n" + b"x" * 100 + b"\nafter\n"), "text"))
    assert [text if isinstance(text, str) else text.reason for _, text in lines] == [
        "short", "line longer than 16 bytes", "after"]


class OneWay(io.RawIOBase):
    """A stream that cannot seek or peek, like a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(3, len(buffer))  # tiny reads, as a slow network gives
        chunk, self._data = self._data[:size], self._data[size:]
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_peek_head_replays_what_it_read_and_leaves_the_stream_open() -> None:
    stream = OneWay(b"0123456789\nabc\n")
    head, reader = peek_head(stream, 5)
    assert head == b"01234"  # gathered over several short reads
    assert reader.read() == b"0123456789\nabc\n"
    del reader
    assert not stream.closed
    seekable = io.BytesIO(b"abcdef")
    head, reader = peek_head(seekable, 3)
    assert head == b"abc" and reader.read() == b"abcdef"


def test_build_indicator_follows_the_mapping() -> None:
    src = source(tlp="green", confidence=70, mapping={
        "value": "ioc", "type_field": "kind", "type_map": {"ip:port": "ip", "link": "skip"},
        "first_seen": {"field": "seen", "format": "epoch"}, "tags": ["c2"], "tags_field": "labels",
        "malware": "family", "port": "port", "description": "note", "confidence": "score"})
    row = {"ioc": "198.51.100.9", "kind": "ip:port", "seen": "1700000000", "labels": "botnet, c2,",
           "family": "Pikabot", "port": "443", "note": "C2 server", "score": "85.4"}
    record = build_indicator(row.get, src, location="line 2", raw="raw row")
    assert record == Indicator(type="ipv4", value="198.51.100.9", feed="test.feed", raw="raw row",
                               first_seen=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), confidence=85,
                               tlp="green", tags=("c2", "botnet"), malware="Pikabot", port=443,
                               description="C2 server")


@pytest.mark.parametrize(("row", "reason"), [
    ({"ioc": ""}, "no value in field 'ioc'"),
    ({"ioc": "198.51.100.9", "port": "https"}, "port:"),
    ({"ioc": "198.51.100.9", "port": "70000"}, "port:"),
    ({"ioc": "198.51.100.9", "seen": "last week"}, "first_seen:"),
    ({"ioc": "198.51.100.9", "score": "150"}, "confidence:"),
    ({"ioc": "198.051.100.9"}, "bad ipv4: leading zero"),
])
def test_build_indicator_rejects_rows_with_bad_fields(row: dict[str, str], reason: str) -> None:
    src = source(mapping={"value": "ioc", "port": "port", "confidence": "score",
                          "first_seen": {"field": "seen", "format": "epoch"}})
    record = build_indicator(row.get, src, location="line 7", raw="the row")
    assert isinstance(record, Rejected) and outcome(record) == "rejected"
    assert record.reason.startswith(reason) and record.location == "line 7" and record.sample == "the row"


def test_feed_types_are_translated_passed_through_or_skipped() -> None:
    src = source(mapping={"value": "v", "type_field": "t", "type_map": {"FQDN": "domain", "link": "skip"}})
    assert build_indicator({"v": "Evil.Example", "t": "FQDN"}.get, src, location="", raw="").type == "domain"
    assert build_indicator({"v": "c" * 64, "t": "sha256"}.get, src, location="", raw="").type == "sha256"
    for feed_type in ("link", "registry-key", None):
        record = build_indicator({"v": "x", "t": feed_type}.get, src, location="row 1", raw="")
        assert outcome(record) == "skipped", feed_type


def test_a_mapping_type_that_does_not_exist_fails_the_run() -> None:
    with pytest.raises(FormatError, match="ipv5"):
        build_indicator({"v": "1.2.3.4"}.get, source(mapping={"value": "v", "type": "ipv5"}), location="", raw="")


def test_private_and_reserved_addresses_are_filtered_not_rejected() -> None:
    src = source(filters={})  # exclude_private defaults to true
    for value in ("10.1.2.3", "192.168.0.0/16", "127.0.0.1", "192.0.2.1", "100.64.0.1", "fe80::1", "224.0.0.1",
                  "2001:db8::/32", "::1"):
        record = make_indicator("auto", value, src, location="line 1", raw=value)
        assert outcome(record) == "filtered" and record.reason == "filtered: private or reserved address", value
    public = make_indicator("auto", "8.8.8.8", src, location="line 1", raw="")
    assert outcome(public) == "indicator"
    kept = make_indicator("auto", "10.1.2.3", source(filters={"exclude_private": False}), location="", raw="")
    assert isinstance(kept, Indicator) and kept.value == "10.1.2.3"


def test_type_and_confidence_filters() -> None:
    src = source(confidence=40, filters={"types": ["domain"], "min_confidence": 50, "exclude_private": False})
    assert make_indicator("auto", "8.8.8.8", src, location="", raw="").reason == "filtered: type ipv4 is not in filters.types"
    low = make_indicator("auto", "evil.example", src, location="", raw="")
    assert low.reason == "filtered: confidence 40 is below filters.min_confidence 50"
    assert make_indicator("auto", "evil.example", src, location="", raw="", confidence=90).value == "evil.example"


def test_feed_defaults_and_explicit_context() -> None:
    src = source(tlp="amber", confidence=60, mapping={"tags": ["ics", "feed"]})
    record = make_indicator("domain", "Evil.Example", src, location="", raw="", tags=["feed", "c2"])
    assert (record.tlp, record.confidence, record.tags) == ("amber", 60, ("ics", "feed", "c2"))
    red = make_indicator("domain", "evil.example", src, location="", raw="", tlp="red", confidence=5)
    assert (red.tlp, red.confidence) == ("red", 5)
    pattern = make_indicator("stix-pattern", " [a:b = 'c'] ", src, location="", raw="", verbatim=True, matchable=False)
    assert (pattern.type, pattern.value, pattern.matchable) == ("stix-pattern", "[a:b = 'c']", False)


def test_tally_counts_every_outcome() -> None:
    records = [
        Indicator(type="ipv4", value="8.8.8.8", feed="f"),
        Indicator(type="stix-pattern", value="[x]", feed="f", matchable=False, revoked=True),
        Advisory(advisory_id="A", source="f", cve=None, vendor=None, product=None, title="t"),
        Rejected("bad ipv4: x"), Rejected("filtered: private or reserved address"), Rejected("skipped: comment"),
    ]
    assert tally(records) == {"indicator": 2, "matchable": 1, "not_matchable": 1, "revoked": 1, "advisory": 1,
                              "rejected": 1, "filtered": 1, "skipped": 1}


def test_tlp_labels() -> None:
    assert [tlp_label(x) for x in ("TLP:WHITE", "tlp:clear", "Green", "TLP:AMBER+STRICT", "red", "tlp:ex:chr", 3)] == [
        "clear", "clear", "green", "amber+strict", "red", None, None]
    assert strictest_tlp(["green", None, "amber+strict", "amber"]) == "amber+strict"
    assert strictest_tlp([None]) is None


@pytest.mark.parametrize(("value", "expected"), [
    ("198.51.100.1:443", ("ipv4", "198.51.100.1", 443)),
    ("[2001:DB8::1]:8443", ("ipv6", "2001:db8::1", 8443)),
    ("198.51.100.1", ("ipv4", "198.51.100.1", None)),
])
def test_ip_port_values_carry_their_port(value: str, expected: tuple[str, str, int | None]) -> None:
    src = source(mapping={"value": "v", "type_field": "t", "type_map": {"ip:port": "ip:port"}})
    record = build_indicator({"v": value, "t": "ip:port"}.get, src, location="", raw="")
    assert (record.type, record.value, record.port) == expected


def test_a_bad_port_in_an_ip_port_value_is_rejected() -> None:
    src = source(mapping={"value": "v", "type": "ip:port"})
    record = build_indicator({"v": "198.51.100.1:http"}.get, src, location="line 3", raw="")
    assert isinstance(record, Rejected) and record.reason.startswith("value:")
