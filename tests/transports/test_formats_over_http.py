"""Every real sample in ``shared/fixtures`` (feeds, KEV, CSAF, STIX, MISP) served over loopback HTTP
and collected through the runner with a matching source config; the stored counts are asserted.

The samples are served in place (never copied into the repository); the counts were checked
against the files themselves (rows, objects, private addresses the filters drop).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from conftest import Floor, make_source
from store.schema import advisories, techniques

FEODO_CSV = {"value": "dst_ip", "type": "ipv4", "port": "dst_port", "malware": "malware",
             "first_seen": {"field": "first_seen_utc", "format": "%Y-%m-%d %H:%M:%S"},
             "last_seen": {"field": "last_online"}}
SSLBL = ({"header_in_comment": True}, {"value": "DstIP", "type": "ipv4", "port": "DstPort", "description": "2"})

# fixture -> (format, options, mapping, parsed, stored, filtered): "stored" is what the store holds
# afterwards (active sightings, advisory rows or techniques), fewer than parsed when a value repeats.
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any], int, int, int]] = {
    "feeds/abusech_feodotracker_ipblocklist.csv": ("csv", {}, FEODO_CSV, 28, 28, 0),
    "feeds/abusech_feodotracker_ipblocklist_2021_sanitized.csv": ("csv", {}, FEODO_CSV, 1, 1, 1),  # 10.x dropped
    "feeds/abusech_feodotracker_ipblocklist.json": ("json", {}, {
        "value": "ip_address", "type": "ipv4", "port": "port", "malware": "malware",
        "first_seen": {"field": "first_seen", "format": "%Y-%m-%d %H:%M:%S"}, "last_seen": {"field": "last_online"}},
        4, 4, 0),
    "feeds/abusech_sslbl_ipblacklist_2015.csv": ("csv", *SSLBL, 83, 83, 0),
    "feeds/abusech_urlhaus_tld_feed_2019.csv": ("csv", {"header_in_comment": True}, {
        "value": "URL", "type": "url", "first_seen": {"field": "Dateadded (UTC)", "format": "%Y-%m-%d %H:%M:%S"},
        "description": "Threat"}, 2, 2, 0),
    "feeds/blocklistde_imap.txt": ("lines", {}, {"type": "ip"}, 0, 0, 6),  # documentation addresses only
    "feeds/dshield_block_2015.txt": ("lines", {"delimiter": "\t", "netmask_column": 2, "header": True},
                                     {"type": "cidr"}, 2, 2, 0),
    "feeds/emergingthreats_compromised-ips.txt": ("lines", {}, {"type": "ipv4"}, 100, 100, 0),
    "feeds/openphish_feed.txt": ("lines", {}, {"type": "url"}, 0, 0, 0),  # both sanitised URLs are invalid
    "feeds/spamhaus_drop_2015.txt": ("lines", {}, {"type": "cidr"}, 10, 10, 0),
    "feeds/spamhaus_asndrop_2015.txt": ("lines", {}, {"type": "asn"}, 2, 2, 0),
    "feeds/spamhaus_drop_v4.json": ("json", {"skip_if": {"type": "metadata"}},
                                    {"value": "cidr", "type": "cidr", "description": "sblid"}, 60, 60, 0),
    "kev/known_exploited_vulnerabilities.json": ("kev", {}, {}, 47, 47, 0),
    "kev/known_exploited_vulnerabilities.csv": ("kev", {"variant": "csv"}, {}, 47, 47, 0),
    "csaf/icsa-17-180-01a.json": ("csaf", {}, {}, 1, 1, 0),
    "csaf/icsa-23-269-05.json": ("csaf", {}, {}, 3, 3, 0),
    "csaf/icsa-24-051-02.json": ("csaf", {}, {}, 3, 3, 0),
    "csaf/icsa-24-067-01.json": ("csaf", {}, {}, 1, 1, 0),
    "csaf/icsa-24-135-03.json": ("csaf", {}, {}, 1, 1, 0),
    "csaf/icsa-24-284-06.json": ("csaf", {}, {}, 4, 4, 0),
    "csaf/va-24-201-01.json": ("csaf", {}, {}, 6, 6, 0),
    "stix/mitre-ics-attack-subset.json": ("attack-ics", {}, {}, 12, 12, 0),
    "stix/oasis-apt1.json": ("stix21", {}, {}, 12, 12, 0),
    "stix/oasis-indicator-for-c2-ip-address.json": ("stix21", {}, {}, 0, 0, 1),  # 10.0.0.0 is private
    "stix/oasis-indicators-for-C2-with-COA.json": ("stix21", {}, {}, 1, 1, 1),
    "stix/oasis-infrastructure.json": ("stix21", {}, {}, 0, 0, 0),
    "stix/oasis-malicious-email-indicator-with-attachment.json": ("stix21", {}, {}, 2, 2, 0),
    "stix/oasis-poisonivy.json": ("stix21", {}, {}, 66, 44, 0),  # the same hashes recur across indicators
    "stix/oasisdoc-defining-campaigns-threat-actors-intrusion-sets.json": ("stix21", {}, {}, 0, 0, 0),
    "stix/oasisdoc-indicator-for-malicious-url.json": ("stix21", {}, {}, 1, 1, 0),
    "stix/oasisdoc-malware-indicator-for-file-hash.json": ("stix21", {}, {}, 1, 1, 0),
    "stix/oasisdoc-sighting-of-an-indicator.json": ("stix21", {}, {}, 1, 1, 0),
    "stix/oasisdoc-sighting-of-observed-data.json": ("stix21", {}, {}, 0, 0, 0),
    "stix/oasisdoc-threat-actor-leveraging-attack-patterns-and-malware.json": ("stix21", {}, {}, 0, 0, 0),
    "stix/oasisdoc-using-granular-markings.json": ("stix21", {}, {}, 1, 1, 0),
    "stix/oasisdoc-using-marking-definitions.json": ("stix21", {}, {}, 0, 0, 1),
    "misp/circl-osint-57c4445b-c548-4654-af0b-4be3950d210f.json": ("misp", {}, {}, None, None, None),
    "misp/crowdsec-feed/6a10e5d8-f1cd-42b0-8240-a4650efd83d6.json": ("misp", {}, {}, 15, 15, 0),
}
# Rejected inputs per fixture (bad values, not "skipped" objects that hold no indicator).
REJECTED = {"feeds/openphish_feed.txt": 2, "stix/oasis-poisonivy.json": 1}


def stored(floor: Floor, source_id: str, fmt: str) -> int:
    if fmt in ("kev", "csaf"):
        table = advisories
        with floor.store.reader.connect() as conn:
            return conn.execute(select(func.count()).select_from(table).where(table.c.source_id == source_id)).scalar()
    if fmt == "attack-ics":
        with floor.store.reader.connect() as conn:
            return conn.execute(select(func.count()).select_from(techniques)
                                .where(techniques.c.source_id == source_id)).scalar()
    return len(floor.active(source_id))


def test_every_fixture_file_is_covered(shared_fixtures: Path) -> None:
    data_files = {p.relative_to(shared_fixtures).as_posix() for folder in ("feeds", "kev", "csaf", "stix")
                  for p in (shared_fixtures / folder).iterdir()
                  if p.suffix in (".json", ".csv", ".txt") and "LICENSE" not in p.name}
    listings = {"csaf/changes_OT_white.csv", "csaf/index_OT_white.txt"}  # provider listings, not advisories
    assert data_files - listings <= set(CASES)


@pytest.mark.parametrize("fixture", list(CASES))
def test_fixture_over_http(fixture: str, floor: Floor, httpserver: HTTPServer, shared_fixtures: Path) -> None:
    fmt, options, mapping, parsed, expected, filtered = CASES[fixture]
    content_type = "application/json" if fixture.endswith(".json") else "text/plain"
    httpserver.expect_request("/feed").respond_with_data((shared_fixtures / fixture).read_bytes(),
                                                         content_type=content_type)
    source = make_source(id="sample", format=fmt, options=options, mapping=mapping,
                         source={"type": "http", "url": httpserver.url_for("/feed")})

    summary = floor.run(source)

    run = floor.last_run("sample")
    assert run.outcome == "ok", run.error
    if parsed is None:  # the 2016 CIRCL layout: just prove it loads cleanly
        assert run.parsed > 0 and stored(floor, "sample", fmt) > 0
        return
    assert (summary.parsed, summary.filtered) == (parsed, filtered)
    assert stored(floor, "sample", fmt) == expected
    assert run.bytes == (shared_fixtures / fixture).stat().st_size and len(run.sha256) == 64
    samples = run.rejected_samples or ""
    bad = samples.count('"reason":"') - samples.count('"reason":"skipped:')
    assert bad == REJECTED.get(fixture, 0), samples
