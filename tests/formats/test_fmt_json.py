"""The ``json`` format: arrays, records under a path, JSON lines, skip rules and broken input."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from collectors.formats import json_records
from collectors.formats.common import FormatError, outcome, tally
from settings.sources import SourceConfig


def source(**overrides: Any) -> SourceConfig:
    data = {"id": "test.json", "name": "test", "source": {"type": "file", "path": "/dev/null"},
            "schedule": {"every": "1h"}, "format": "json", "filters": {"exclude_private": False},
            "mapping": {"value": "ip"}, **overrides}
    return SourceConfig.model_validate(data)


def run(payload: bytes | str, src: SourceConfig | None = None, stream: Any = io.BytesIO, **options: Any) -> list[Any]:
    data = payload.encode() if isinstance(payload, str) else payload
    return list(json_records.parse(stream(data), src or source(), json_records.Options(**options)))


def test_an_array_of_records_with_nested_paths() -> None:
    payload = json.dumps([
        {"ip": "198.51.100.1", "meta": {"family": "ExampleBot", "ports": [8443]}, "seen": "2022-11-15"},
        {"ip": "203.0.113.5", "meta": {"family": None}},
    ], indent=2)
    src = source(mapping={"value": "ip", "malware": "meta.family", "port": "meta.ports.0",
                          "last_seen": {"field": "seen"}})
    records = run(payload, src)
    assert [(r.value, r.malware, r.port, r.last_seen) for r in records] == [
        ("198.51.100.1", "ExampleBot", 8443, datetime(2022, 11, 15, tzinfo=timezone.utc)),
        ("203.0.113.5", None, None, None)]
    assert json.loads(records[0].raw)["meta"]["family"] == "ExampleBot"


def test_records_under_a_path() -> None:
    payload = {"data": {"items": [{"ip": "198.51.100.1"}, {"ip": "198.51.100.2"}]}, "count": 2}
    records = run(json.dumps(payload), records_path="data.items")
    assert [r.value for r in records] == ["198.51.100.1", "198.51.100.2"]
    with pytest.raises(FormatError, match="no array at records_path 'data.missing'"):
        run(json.dumps(payload), records_path="data.missing")


def test_json_lines_are_detected_and_a_metadata_line_is_skipped() -> None:
    payload = ('{"cidr":"198.51.100.0/24","sblid":"SBL1"}\n'
               '\n'
               '{"cidr":"203.0.113.0/25","sblid":"SBL2"}\n'
               '{"type":"metadata","timestamp":1744682874,"records":2}\n')
    records = run(payload, source(mapping={"value": "cidr", "description": "sblid"}), skip_if={"type": "metadata"})
    assert [(outcome(r), getattr(r, "value", None)) for r in records] == [
        ("indicator", "198.51.100.0/24"), ("indicator", "203.0.113.0/25"), ("skipped", None)]
    assert records[2].location == "line 4" and records[1].description == "SBL2"


def test_a_broken_json_line_is_rejected_and_the_others_load() -> None:
    payload = '{"ip":"198.51.100.1"}\n{"ip":"198.51.10\n["not", "an object"]\n{"ip":"198.51.100.3"}\n'
    records = run(payload)
    assert [(outcome(r), getattr(r, "location", None)) for r in records] == [
        ("indicator", None), ("rejected", "line 2"), ("rejected", "line 3"), ("indicator", None)]
    assert records[1].reason.startswith("not valid JSON") and "not an object" in records[2].reason


def test_a_truncated_document_fails_the_run() -> None:
    whole = json.dumps([{"ip": "198.51.100.1"}, {"ip": "198.51.100.2"}], indent=1).encode()
    with pytest.raises(FormatError, match="not valid JSON .* cut short"):
        run(whole[: len(whole) // 2])


def test_lines_option_overrides_detection() -> None:
    one_record = '{"ip": "198.51.100.1"}\n'
    assert tally(run(one_record, lines=False))["indicator"] == 1
    with pytest.raises(FormatError):
        run('{"ip": "198.51.100.1"}\n{"ip": "198.51.100.2"}\n', lines=False)  # two documents are not one
    assert [outcome(r) for r in run('{"ip":\n"198.51.100.1"}\n', lines=True)] == ["rejected", "rejected"]


def test_a_single_object_document_is_one_record() -> None:
    assert [r.value for r in run('{\n  "ip": "198.51.100.1"\n}\n')] == ["198.51.100.1"]


def test_non_object_records_and_missing_values_are_rejected() -> None:
    records = run(json.dumps([{"ip": "198.51.100.1"}, 42, {"other": 1}, {"ip": None}]))
    assert [(outcome(r), getattr(r, "location", None)) for r in records] == [
        ("indicator", None), ("rejected", "record 2"), ("rejected", "record 3"), ("rejected", "record 4")]


def test_a_stream_that_cannot_seek_is_read_the_same() -> None:
    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = data

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            size = min(7, len(buffer))
            chunk, self._data = self._data[:size], self._data[size:]
            buffer[:len(chunk)] = chunk
            return len(chunk)

    payload = '{"ip":"198.51.100.1"}\n{"ip":"198.51.100.2"}\n'
    assert [r.value for r in run(payload, stream=OneWay)] == ["198.51.100.1", "198.51.100.2"]


@pytest.mark.parametrize("payload", ["<!DOCTYPE html><html></html>", "\n<html><body>rate limited</body></html>"])
def test_an_html_page_fails_the_run(payload: str) -> None:
    with pytest.raises(FormatError, match="expected JSON, got an HTML page"):
        run(payload)


def test_the_value_path_is_required() -> None:
    with pytest.raises(FormatError, match="mapping.value"):
        run("[]", source(mapping={}))


def test_an_empty_document_fails_but_empty_json_lines_give_nothing() -> None:
    with pytest.raises(FormatError, match="empty"):
        run("  \n")
    assert run("", lines=True) == []
