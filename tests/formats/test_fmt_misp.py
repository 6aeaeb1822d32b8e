"""The ``misp`` format (one feed event) and the manifest helper."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from collectors.formats import misp
from collectors.formats.common import FormatError, outcome
from collectors.formats.misp import manifest_events
from settings.sources import SourceConfig
from store.records import Indicator


def source(**overrides: Any) -> SourceConfig:
    data = {"id": "test.misp", "name": "test", "source": {"type": "file", "path": "/dev/null"},
            "schedule": {"every": "1h"}, "format": "misp", "filters": {"exclude_private": False},
            "tlp": "amber", **overrides}
    return SourceConfig.model_validate(data)


def attr(kind: str, value: str, number: int, **extra: Any) -> dict[str, Any]:
    return {"uuid": f"00000000-0000-4000-8000-{number:012d}", "type": kind, "value": value, "to_ids": True,
            "timestamp": "1700000000", "comment": "", **extra}


def event(*attributes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Event": {"uuid": "11111111-0000-4000-8000-000000000000", "info": "Test event", "timestamp": "1700000500",
                      "Tag": [{"name": "tlp:green"}, {"name": "sector:energy"}], "Attribute": list(attributes), **extra}}


def run(payload: Any, src: SourceConfig | None = None, **options: Any) -> list[Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return list(misp.parse(io.BytesIO(data), src or source(), misp.Options(**options)))


def test_attribute_types_map_to_indicators() -> None:
    records = run(event(
        attr("ip-dst", "198.51.100.7", 1), attr("ip-src|port", "203.0.113.5|8443", 2),
        attr("hostname", "C2.Example", 3), attr("domain|ip", "c2.example|198.51.100.8", 4),
        attr("filename|sha256", "dropper.exe|" + "A" * 64, 5), attr("url", "http://c2.example/gate.php", 6),
        attr("email-src", "Boss@Evil.Example", 7), attr("AS", "AS64500", 8), attr("md5", "b" * 32, 9),
    ))
    assert [(r.type, r.value, r.port) for r in records] == [
        ("ipv4", "198.51.100.7", None), ("ipv4", "203.0.113.5", 8443), ("domain", "c2.example", None),
        ("domain", "c2.example", None), ("ipv4", "198.51.100.8", None), ("sha256", "a" * 64, None),
        ("url", "http://c2.example/gate.php", None), ("email", "boss@evil.example", None), ("asn", "64500", None),
        ("md5", "b" * 32, None)]
    assert records[5].description == "dropper.exe"
    assert all(r.tlp == "green" and r.tags == ("sector:energy",) for r in records)


def test_to_ids_false_is_context_or_skipped() -> None:
    payload = event(attr("domain", "a.example", 1, to_ids=False), attr("domain", "b.example", 2, to_ids="0"),
                    attr("domain", "c.example", 3, to_ids="1"))
    assert [r.matchable for r in run(payload)] == [False, False, True]
    assert [outcome(r) for r in run(payload, to_ids_only=True)] == ["skipped", "skipped", "indicator"]


def test_deleted_attributes_come_revoked() -> None:
    [record] = run(event(attr("domain", "a.example", 1, deleted=True)))
    assert record.revoked is True


def test_times_description_and_attribute_tlp() -> None:
    payload = event(
        attr("domain", "a.example", 1, first_seen="2024-03-01T10:00:00.000000+00:00", comment="beacon",
             Tag=[{"name": "tlp:red"}, {"name": "kill-chain:c2"}]),
        attr("domain", "b.example", 2),
        {"uuid": "00000000-0000-4000-8000-000000000003", "type": "domain", "value": "c.example", "to_ids": True})
    a, b, c = run(payload)
    assert a.first_seen == datetime(2024, 3, 1, 10, tzinfo=timezone.utc)
    assert a.last_seen == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)  # from "timestamp"
    assert (a.tlp, a.tags, a.description) == ("red", ("sector:energy", "kill-chain:c2"), "beacon")
    assert (b.tlp, b.description) == ("green", "Test event")
    assert c.first_seen == datetime(2023, 11, 14, 22, 21, 40, tzinfo=timezone.utc)  # the event's timestamp


def test_object_attributes_are_read_and_other_types_skipped() -> None:
    payload = event(attr("link", "https://report.example/", 1), attr("regkey", "HKLM\\Run", 2),
                    Object=[{"name": "file", "Attribute": [attr("sha1", "c" * 40, 3)]}])
    assert [(outcome(r), getattr(r, "type", None)) for r in run(payload)] == [
        ("skipped", None), ("skipped", None), ("indicator", "sha1")]


def test_broken_attributes_are_rejected_with_their_uuid() -> None:
    records = run(event(attr("ip-dst|port", "198.51.100.7", 1), attr("ip-dst|port", "198.51.100.7|http", 2),
                        attr("ip-dst", "198.51.100.300", 3), attr("domain", "a.example", 4, timestamp="soon"), "junk"))
    assert [outcome(r) for r in records] == ["rejected"] * 5
    assert records[0].location == "attribute 00000000-0000-4000-8000-000000000001"
    assert records[4].location == "attribute 5"


def test_event_wrappers() -> None:
    body = event(attr("domain", "a.example", 1))
    for payload in (body, body["Event"], {"response": [body]}, [body, body]):
        assert {r.value for r in run(payload)} == {"a.example"}
    assert len(run([body, body])) == 2


@pytest.mark.parametrize(("payload", "message"), [
    (b'{"Event": {"Attribute": [', "not valid JSON"), (b'{"hello": 1}', "expected a MISP event"),
    (b"<html><body>Forbidden</body></html>", "got an HTML page"),
])
def test_payloads_that_are_not_events_fail_the_run(payload: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        run(payload)


def test_tlp_white_means_clear_and_missing_tlp_means_the_feeds() -> None:
    white = event(attr("domain", "a.example", 1))
    white["Event"]["Tag"] = [{"name": "tlp:white"}]
    assert [r.tlp for r in run(white)] == ["clear"]
    white["Event"]["Tag"] = []
    assert [r.tlp for r in run(white)] == ["amber"]


MANIFEST = {
    "22222222-0000-4000-8000-000000000002": {"timestamp": "1700000200", "info": "b"},
    "11111111-0000-4000-8000-000000000001": {"timestamp": "1700000100", "info": "a"},
    "33333333-0000-4000-8000-000000000003": {"timestamp": 1700000300, "info": "c"},
    "not-a-uuid": {"timestamp": "1700000400"},
    "44444444-0000-4000-8000-000000000004": {"timestamp": "yesterday"},
}


def test_manifest_events_picks_newer_events_oldest_first() -> None:
    problems: list[str] = []
    data = json.dumps(MANIFEST).encode()
    assert manifest_events(data, None, problems) == [
        ("11111111-0000-4000-8000-000000000001", 1700000100), ("22222222-0000-4000-8000-000000000002", 1700000200),
        ("33333333-0000-4000-8000-000000000003", 1700000300)]
    assert manifest_events(data, 1700000200) == [("33333333-0000-4000-8000-000000000003", 1700000300)]
    assert len(problems) == 2 and "not-a-uuid" in problems[0] and "yesterday" in problems[1]


def test_a_manifest_that_is_not_an_object_fails() -> None:
    for data in (b"[]", b"{", b"<html>"):
        with pytest.raises(FormatError):
            manifest_events(data, 0)


def test_indicator_records_are_plain_indicators() -> None:
    assert all(isinstance(r, Indicator) for r in run(event(attr("domain", "a.example", 1))))
