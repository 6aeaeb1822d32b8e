"""Advisory formats: CISA KEV (JSON and CSV), CSAF 2.0, and the CSAF provider listings."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from collectors.formats import csaf, csaf_index, kev
from collectors.formats.common import FormatError, outcome
from settings.sources import SourceConfig
from store.records import Advisory

UTC = timezone.utc


def source(fmt: str) -> SourceConfig:
    return SourceConfig.model_validate({"id": f"test.{fmt}", "name": "test", "format": fmt,
                                        "source": {"type": "file", "path": "/dev/null"}, "schedule": {"every": "1d"}})


def run_kev(payload: str | bytes, **options: Any) -> list[Any]:
    data = payload.encode() if isinstance(payload, str) else payload
    return list(kev.parse(io.BytesIO(data), source("kev"), kev.Options(**options)))


ENTRY = {"cveID": "CVE-2099-0001", "vendorProject": "ExampleCorp", "product": "PLC Runtime",
         "vulnerabilityName": "ExampleCorp PLC Runtime Missing Authentication", "dateAdded": "2099-01-15",
         "shortDescription": "A made-up entry.", "requiredAction": "Apply updates.", "dueDate": "2099-02-05",
         "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": ["CWE-306"]}
CSV_HEADER = "cveID,vendorProject,product,vulnerabilityName,dateAdded,shortDescription,requiredAction,dueDate,knownRansomwareCampaignUse,notes,cwes\n"


def test_kev_json_entry_becomes_a_known_exploited_advisory() -> None:
    [record] = run_kev(json.dumps({"catalogVersion": "x", "vulnerabilities": [ENTRY]}))
    assert record == Advisory(advisory_id="CVE-2099-0001", source="test.kev", cve="CVE-2099-0001", vendor="ExampleCorp",
                              product="PLC Runtime", title="ExampleCorp PLC Runtime Missing Authentication",
                              raw=json.dumps(ENTRY, separators=(",", ":")),
                              published=datetime(2099, 1, 15, tzinfo=UTC), known_exploited=True)


def test_kev_csv_gives_the_same_advisory() -> None:
    row = 'CVE-2099-0001,ExampleCorp,"PLC Runtime","ExampleCorp PLC Runtime Missing Authentication",2099-01-15,"A made-up entry.","Apply updates.",2099-02-05,Unknown,,CWE-306\n'
    [from_csv] = run_kev(CSV_HEADER + row)
    [from_json] = run_kev(json.dumps({"vulnerabilities": [ENTRY]}))
    assert (from_csv.cve, from_csv.vendor, from_csv.product, from_csv.title, from_csv.published) == (
        from_json.cve, from_json.vendor, from_json.product, from_json.title, from_json.published)
    assert json.loads(from_csv.raw)["dueDate"] == "2099-02-05"


def test_kev_bad_entries_are_rejected() -> None:
    entries = [{**ENTRY, "cveID": "CVE-99-1"}, {**ENTRY, "dateAdded": "15/01/2099"}, "junk", ENTRY]
    records = run_kev(json.dumps({"vulnerabilities": entries}))
    assert [(outcome(r), getattr(r, "location", None)) for r in records] == [
        ("rejected", "vulnerability 1"), ("rejected", "vulnerability 2"), ("rejected", "vulnerability 3"), ("advisory", None)]
    short_row = run_kev(CSV_HEADER + "CVE-2099-0002,Only,three\n")
    assert [(outcome(r), r.location) for r in short_row] == [("rejected", "line 2")]


@pytest.mark.parametrize(("payload", "options", "message"), [
    ('{"vulnerabilities": [', {}, "not valid JSON"),
    ('{"title": "no list"}', {}, "no 'vulnerabilities'"),
    ("cveID,vendor,product\nCVE-2099-0001,a,b\n", {}, "lacks column"),
    ("<!DOCTYPE html><html></html>", {}, "HTML page"),
    ('{"vulnerabilities": []}', {"variant": "csv"}, "lacks column"),
])
def test_kev_payloads_that_are_not_the_catalogue_fail(payload: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        run_kev(payload, **options)


def product(pid: str, category: str, name: str) -> dict[str, Any]:
    return {"category": category, "name": name, "product": {"product_id": pid, "name": f"full {pid}"}}


CSAF_DOC = {
    "document": {"title": "ExampleCorp PLCs", "category": "csaf_security_advisory",
                 "tracking": {"id": "ICSA-99-001-01", "initial_release_date": "2099-01-01T06:00:00.000000Z",
                              "current_release_date": "2099-02-01T06:00:00Z"},
                 "references": [{"category": "self", "url": "https://example.org/csaf/icsa-99-001-01.json"},
                                {"category": "self", "url": "https://example.org/advisories/icsa-99-001-01"},
                                {"category": "external", "url": "https://nvd.example/"}]},
    "product_tree": {
        "branches": [{"category": "vendor", "name": "ExampleCorp", "branches": [
            {"category": "product_name", "name": "PLC-100", "branches": [
                product("P1", "product_version", "1.0"), product("P2", "product_version_range", "<2.3")]},
            {"category": "product_family", "name": "HMI Suite", "branches": [product("P3", "product_version", "7")]},
            {"category": "product_name", "name": "Gateway", "product": {"product_id": "P4", "name": "Gateway"}}]}],
        "full_product_names": [{"product_id": "P5", "name": "Legacy Box"}],
        "relationships": [{"category": "installed_on", "product_reference": "P1", "relates_to_product_reference": "P4",
                           "full_product_name": {"product_id": "P6", "name": "PLC-100 1.0 on Gateway"}}]},
    "vulnerabilities": [
        {"cve": "CVE-2099-1000", "product_status": {"known_affected": ["P1", "P2", "P3", "P6"], "fixed": ["P4"]},
         "scores": [{"cvss_v3": {"baseScore": 7.5}, "products": ["P1"]}, {"cvss_v3": {"baseScore": 9.1}, "products": ["P2"]},
                    {"cvss_v2": {"baseScore": 5.0}, "products": ["P3"]}]},
        {"cve": "CVE-2099-1001", "product_status": {"first_affected": ["P4"], "last_affected": ["P5", "P9"]}},
        {"cve": "CVE-2099-1002", "product_status": {"fixed": ["P1"]}},
        {"cve": "not-a-cve", "product_status": {"known_affected": ["P1"]}},
        "junk",
    ],
}


def run_csaf(document: Any) -> list[Any]:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return list(csaf.parse(io.BytesIO(data), source("csaf"), csaf.Options()))


def test_csaf_one_advisory_per_cve_vendor_and_product() -> None:
    records = run_csaf(CSAF_DOC)
    advisories = [r for r in records if isinstance(r, Advisory)]
    assert [(a.cve, a.vendor, a.product, a.versions, a.cvss) for a in advisories] == [
        ("CVE-2099-1000", "ExampleCorp", "PLC-100", ("1.0", "<2.3"), 9.1),  # P6 is P1 installed elsewhere
        ("CVE-2099-1000", "ExampleCorp", "HMI Suite", ("7",), 5.0),
        ("CVE-2099-1001", "ExampleCorp", "Gateway", (), None),
        ("CVE-2099-1001", None, "Legacy Box", (), None),
        ("CVE-2099-1001", None, "P9", (), None),  # an id found nowhere stays visible
    ]
    first = advisories[0]
    assert (first.advisory_id, first.title, first.source, first.url) == (
        "ICSA-99-001-01", "ExampleCorp PLCs", "test.csaf", "https://example.org/advisories/icsa-99-001-01")
    assert (first.published, first.updated) == (datetime(2099, 1, 1, 6, tzinfo=UTC), datetime(2099, 2, 1, 6, tzinfo=UTC))
    assert first.known_exploited is False
    assert [(outcome(r), getattr(r, "location", None)) for r in records[5:]] == [
        ("skipped", "vulnerability 3"), ("rejected", "vulnerability 4"), ("rejected", "vulnerability 5")]


@pytest.mark.parametrize(("payload", "message"), [
    (b'{"document": {"tracking": {}}}', "no document.tracking.id"), (b"[1, 2]", "no document.tracking.id"),
    (b'{"document": ', "not valid JSON"), (b"<html>", "HTML page"),
])
def test_csaf_payloads_that_are_not_advisories_fail(payload: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        run_csaf(payload)


def test_csaf_index_keeps_safe_json_paths_only() -> None:
    problems: list[str] = []
    data = (b"csaf_files/OT/white/2099/icsa-99-001-01.json\n\n../../etc/passwd.json\n/abs/x.json\n"
            b"https://evil.example/x.json\ncsaf_files/OT/white/readme.txt\ncsaf_files/OT/white/2099/icsa-99-002-01.json\n")
    assert csaf_index.parse_index(data, problems) == [
        "csaf_files/OT/white/2099/icsa-99-001-01.json", "csaf_files/OT/white/2099/icsa-99-002-01.json"]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5", "line 6"]


def test_csaf_changes_and_what_changed_since_a_cursor() -> None:
    data = (b"csaf_files/a.json,2099-01-03T06:00:00.000000Z\n"
            b"csaf_files/b.json,2099-01-02T06:00:00.000000Z\n"
            b"csaf_files/a.json,2099-01-01T06:00:00.000000Z\n"
            b"csaf_files/c.json,not a time\n")
    problems: list[str] = []
    assert csaf_index.parse_changes(data, problems)[0] == ("csaf_files/a.json", datetime(2099, 1, 3, 6, tzinfo=UTC))
    assert len(problems) == 1 and problems[0].startswith("line 4")
    assert csaf_index.changed_since(data, None) == ["csaf_files/b.json", "csaf_files/a.json"]
    assert csaf_index.changed_since(data, datetime(2099, 1, 2, 6, tzinfo=UTC)) == ["csaf_files/a.json"]
    with pytest.raises(FormatError):
        csaf_index.parse_index(b"<!DOCTYPE html>", [])
