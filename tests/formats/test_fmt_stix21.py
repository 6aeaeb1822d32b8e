"""The ``stix21`` format: which patterns become matchable indicators, TLP, lifecycle, relationships."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from collectors.formats import stix21
from collectors.formats.common import FormatError, outcome, tally
from settings.sources import SourceConfig
from store.records import Indicator, Rejected

TLP1_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
TLP1_RED = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
TLP2_AMBER_STRICT = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
TLP2_CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"


def source(**overrides: Any) -> SourceConfig:
    data = {"id": "test.stix", "name": "test", "source": {"type": "file", "path": "/dev/null"},
            "schedule": {"every": "1h"}, "format": "stix21", "filters": {"exclude_private": False},
            "tlp": "amber", **overrides}
    return SourceConfig.model_validate(data)


def indicator(pattern: str, number: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--00000000-0000-4000-8000-{number:012d}",
            "created": "2024-01-02T03:04:05.000Z", "modified": "2024-02-03T04:05:06.000Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z", **extra}


def run(payload: Any, src: SourceConfig | None = None) -> list[Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return list(stix21.parse(io.BytesIO(data), src or source(), stix21.Options()))


def bundle(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": list(objects)}


@pytest.mark.parametrize(("pattern", "expected"), [
    ("[ipv4-addr:value = '198.51.100.1']", [("ipv4", "198.51.100.1")]),
    ("[ipv4-addr:value = '198.51.100.0/24']", [("cidr", "198.51.100.0/24")]),
    ("[ipv6-addr:value = '2001:DB8::1']", [("ipv6", "2001:db8::1")]),
    ("[domain-name:value = 'Evil.Example']", [("domain", "evil.example")]),
    ("[url:value = 'HTTP://Evil.Example/x']", [("url", "http://evil.example/x")]),
    ("[email-addr:value = 'Boss@Evil.Example']", [("email", "boss@evil.example")]),
    ("[file:hashes.'SHA-256' = '" + "A" * 64 + "']", [("sha256", "a" * 64)]),
    ("[file:hashes.MD5 = '" + "b" * 32 + "']", [("md5", "b" * 32)]),
    ("[file:hashes.'SHA-1' = '" + "c" * 40 + "']", [("sha1", "c" * 40)]),
    ("[network-traffic:dst_ref.value = '203.0.113.9']", [("ipv4", "203.0.113.9")]),
    ("[domain-name:value = 'a.example' OR ipv4-addr:value = '198.51.100.1' OR domain-name:value = 'A.example']",
     [("domain", "a.example"), ("ipv4", "198.51.100.1")]),  # the repeated domain comes once
    ("[ipv4-addr:value = '198.51.100.1'] OR ([domain-name:value = 'b.example'])",
     [("ipv4", "198.51.100.1"), ("domain", "b.example")]),
])
def test_equality_patterns_joined_by_or_are_matchable(pattern: str, expected: list[tuple[str, str]]) -> None:
    records = run(bundle(indicator(pattern)))
    assert [(r.type, r.value, r.matchable) for r in records] == [(t, v, True) for t, v in expected]


@pytest.mark.parametrize("pattern", [
    "[ipv4-addr:value = '198.51.100.1' AND domain-name:value = 'a.example']",
    "[ipv4-addr:value = '198.51.100.1'] AND [domain-name:value = 'a.example']",
    "[ipv4-addr:value = '198.51.100.1'] FOLLOWEDBY [domain-name:value = 'a.example']",
    "[ipv4-addr:value = '198.51.100.1'] WITHIN 60 SECONDS",
    "[ipv4-addr:value = '198.51.100.1'] REPEATS 3 TIMES",
    "[ipv4-addr:value != '198.51.100.1']",
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    "[domain-name:value LIKE '%.evil.example']",
    "[email-message:subject MATCHES '^Invoice']",
    "[network-traffic:dst_port = 502]",
    "[file:name = 'dropper.exe']",
    "[file:size > 1000]",
])
def test_other_patterns_are_kept_whole_as_context(pattern: str) -> None:
    records = run(bundle(indicator(pattern)))
    assert len(records) == 1
    assert (records[0].type, records[0].value, records[0].matchable) == ("stix-pattern", pattern, False)


def test_or_with_an_unsupported_comparison_gives_both_values_and_context() -> None:
    pattern = "[domain-name:value = 'a.example' OR file:name = 'dropper.exe']"
    records = run(bundle(indicator(pattern)))
    assert [(r.type, r.value, r.matchable) for r in records] == [
        ("domain", "a.example", True), ("stix-pattern", pattern, False)]


def test_a_bad_value_is_rejected_and_the_rest_of_the_pattern_loads() -> None:
    records = run(bundle(indicator("[domain-name:value = 'domain bad.example' OR ipv4-addr:value = '198.51.100.3']")))
    assert [outcome(r) for r in records] == ["rejected", "indicator"]
    assert records[0].location == "object indicator--00000000-0000-4000-8000-000000000001"
    assert records[0].reason.startswith("bad domain")


def test_an_invalid_indicator_is_rejected() -> None:
    broken = indicator("[ipv4-addr:value = ]")
    records = run(bundle(broken, indicator("[ipv4-addr:value = '198.51.100.1']", 2)))
    assert [outcome(r) for r in records] == ["rejected", "indicator"]
    assert "invalid STIX indicator" in records[0].reason


def test_a_pattern_in_another_language_is_kept_as_context() -> None:
    rule = indicator("rule x { condition: true }", pattern_type="yara")
    [record] = run(bundle(rule))
    assert (record.type, record.matchable, record.tags) == ("pattern", False, ("pattern_type:yara",))


def test_times_revocation_confidence_tags_and_description() -> None:
    obj = indicator("[ipv4-addr:value = '198.51.100.1']", valid_until="2024-06-30T00:00:00Z", revoked=True,
                    confidence=85, labels=["c2"], indicator_types=["malicious-activity"], name="C2 server")
    [record] = run(bundle(obj))
    assert record.first_seen == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert record.last_seen == datetime(2024, 6, 30, tzinfo=timezone.utc)
    assert type(record.first_seen) is datetime
    assert (record.revoked, record.confidence, record.tags, record.description) == (
        True, 85, ("c2", "malicious-activity"), "C2 server")
    [plain] = run(bundle(indicator("[ipv4-addr:value = '198.51.100.1']")))
    assert plain.last_seen == datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone.utc)  # modified, without valid_until
    assert (plain.confidence, plain.revoked) == (50, False)


@pytest.mark.parametrize(("refs", "granular", "expected"), [
    ([TLP1_GREEN], [], "green"),
    ([TLP2_AMBER_STRICT], [], "amber+strict"),
    ([TLP2_CLEAR, TLP1_RED], [], "red"),
    ([TLP1_GREEN], [{"marking_ref": TLP1_RED, "selectors": ["description"]}], "red"),
    (["marking-definition--aaaaaaaa-0000-4000-8000-000000000000"], [], "green"),  # defined in the bundle
    (["marking-definition--bbbbbbbb-0000-4000-8000-000000000000"], [], "amber"),  # a statement: feed default
    ([], [], "amber"),
])
def test_tlp_from_markings(refs: list[str], granular: list[dict[str, Any]], expected: str) -> None:
    local_tlp = {"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--aaaaaaaa-0000-4000-8000-000000000000",
                 "created": "2020-01-01T00:00:00Z", "definition_type": "tlp", "definition": {"tlp": "green"}}
    statement = {"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--bbbbbbbb-0000-4000-8000-000000000000",
                 "created": "2020-01-01T00:00:00Z", "definition_type": "statement", "definition": {"statement": "(c) us"}}
    extra: dict[str, Any] = {"object_marking_refs": refs} if refs else {}
    if granular:
        extra["granular_markings"] = granular
        extra["description"] = "marked"
    records = run(bundle(local_tlp, statement, indicator("[ipv4-addr:value = '198.51.100.1']", **extra)))
    assert [r.tlp for r in records if isinstance(r, Indicator)] == [expected]


def test_malware_comes_from_an_indicates_relationship() -> None:
    malware = {"type": "malware", "spec_version": "2.1", "id": "malware--00000000-0000-4000-8000-000000000001",
               "created": "2020-01-01T00:00:00Z", "modified": "2020-01-01T00:00:00Z", "name": "ExampleRAT",
               "is_family": True}
    relation = {"type": "relationship", "spec_version": "2.1", "id": "relationship--00000000-0000-4000-8000-000000000001",
                "created": "2020-01-01T00:00:00Z", "modified": "2020-01-01T00:00:00Z", "relationship_type": "indicates",
                "source_ref": "indicator--00000000-0000-4000-8000-000000000001", "target_ref": malware["id"]}
    records = run(bundle(indicator("[domain-name:value = 'c2.example']"), malware, relation))
    assert [(outcome(r), getattr(r, "malware", None)) for r in records] == [
        ("indicator", "ExampleRAT"), ("skipped", None), ("skipped", None)]
    assert records[1].reason == "skipped: malware is not an indicator"


def test_payload_shapes() -> None:
    obj = indicator("[domain-name:value = 'c2.example']")
    for payload in (obj, [obj], {"more": False, "objects": [obj]}, bundle(obj)):
        assert [r.value for r in run(payload)] == ["c2.example"]
    assert run({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000"}) == []
    records = run([obj, "junk", {"no": "type"}])
    assert [outcome(r) for r in records] == ["indicator", "rejected", "rejected"]


@pytest.mark.parametrize(("payload", "message"), [
    (b'{"type": "bundle", "objects": [', "not valid JSON"),
    (b"<!doctype html><title>login</title>", "got an HTML page"),
    (b'{"hello": "world"}', "expected a STIX bundle"),
    (b"42", "expected a STIX bundle"),
])
def test_payloads_that_are_not_stix_fail_the_run(payload: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        run(payload)


def test_private_addresses_in_patterns_are_filtered() -> None:
    records = run(bundle(indicator("[ipv4-addr:value = '10.0.0.1' OR ipv4-addr:value = '8.8.8.8']")), source(filters={}))
    assert tally(records)["filtered"] == 1 and [r.value for r in records if isinstance(r, Indicator)] == ["8.8.8.8"]
    assert isinstance(records[0], Rejected) and records[0].reason == "filtered: private or reserved address"
