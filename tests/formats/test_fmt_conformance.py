"""Conformance: every real sample under ../shared/fixtures/{feeds,stix,misp,kev,csaf} parses to known counts.

The samples are read in place (their licences vary; see SOURCES.md) through ``shared_fixtures``.
A new sample in those folders fails ``test_every_sample_is_covered`` until it is counted here.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from collectors.formats import csaf, csaf_index, csv_table, json_records, kev, lines, misp, stix21
from collectors.formats.common import outcome, tally
from settings.sources import SourceConfig
from store.records import Advisory, Indicator, Rejected

UTC = timezone.utc
FEODO = {"value": "dst_ip", "port": "dst_port", "malware": "malware", "last_seen": {"field": "last_online"},
         "first_seen": {"field": "first_seen_utc", "format": "%Y-%m-%d %H:%M:%S"}}

# sample -> (format module, options, mapping, expected tally without zeros)
SAMPLES: dict[str, tuple[ModuleType, dict[str, Any], dict[str, Any], dict[str, int]]] = {
    "feeds/abusech_feodotracker_ipblocklist.csv": (csv_table, {}, FEODO, {"indicator": 28, "matchable": 28}),
    "feeds/abusech_feodotracker_ipblocklist_2021_sanitized.csv": (
        csv_table, {}, FEODO, {"indicator": 1, "matchable": 1, "filtered": 1}),
    "feeds/abusech_sslbl_ipblacklist_2015.csv": (
        csv_table, {"header_in_comment": True}, {"value": "DstIP", "port": "DstPort", "description": "2"},
        {"indicator": 83, "matchable": 83}),
    "feeds/abusech_urlhaus_tld_feed_2019.csv": (
        csv_table, {"header_in_comment": True},
        {"value": "URL", "first_seen": {"field": "Dateadded (UTC)"}, "tags_field": "Threat"},
        {"indicator": 2, "matchable": 2}),
    "feeds/abusech_feodotracker_ipblocklist.json": (
        json_records, {}, {"value": "ip_address", "port": "port", "malware": "malware",
                           "first_seen": {"field": "first_seen", "format": "%Y-%m-%d %H:%M:%S"},
                           "last_seen": {"field": "last_online"}},
        {"indicator": 4, "matchable": 4}),
    "feeds/spamhaus_drop_v4.json": (
        json_records, {"skip_if": {"type": "metadata"}}, {"value": "cidr", "description": "sblid"},
        {"indicator": 60, "matchable": 60, "skipped": 1}),
    "feeds/spamhaus_drop_2015.txt": (lines, {}, {}, {"indicator": 10, "matchable": 10}),
    "feeds/spamhaus_asndrop_2015.txt": (lines, {}, {}, {"indicator": 2, "matchable": 2}),
    "feeds/emergingthreats_compromised-ips.txt": (lines, {}, {}, {"indicator": 100, "matchable": 100}),
    "feeds/blocklistde_imap.txt": (lines, {}, {}, {"filtered": 6}),  # IntelMQ put documentation addresses in
    "feeds/openphish_feed.txt": (lines, {}, {}, {"rejected": 2}),  # sanitised hosts 'www..example.com'
    "feeds/dshield_block_2015.txt": (
        lines, {"delimiter": "\t", "netmask_column": 2, "header": True}, {"description": "4"},
        {"indicator": 2, "matchable": 2}),
    "stix/mitre-ics-attack-subset.json": (stix21, {}, {}, {"skipped": 122}),
    "stix/oasis-apt1.json": (stix21, {}, {}, {"indicator": 12, "matchable": 10, "not_matchable": 2, "skipped": 64}),
    "stix/oasis-indicator-for-c2-ip-address.json": (stix21, {}, {}, {"filtered": 1}),
    "stix/oasis-indicators-for-C2-with-COA.json": (
        stix21, {}, {}, {"indicator": 1, "matchable": 1, "filtered": 1, "skipped": 6}),
    "stix/oasis-infrastructure.json": (stix21, {}, {}, {"skipped": 10}),
    "stix/oasis-malicious-email-indicator-with-attachment.json": (
        stix21, {}, {}, {"indicator": 2, "not_matchable": 2, "skipped": 4}),
    "stix/oasis-poisonivy.json": (
        stix21, {}, {}, {"indicator": 66, "matchable": 64, "not_matchable": 2, "rejected": 1, "skipped": 130}),
    "stix/oasisdoc-defining-campaigns-threat-actors-intrusion-sets.json": (stix21, {}, {}, {"skipped": 26}),
    "stix/oasisdoc-indicator-for-malicious-url.json": (stix21, {}, {}, {"indicator": 1, "matchable": 1, "skipped": 2}),
    "stix/oasisdoc-malware-indicator-for-file-hash.json": (stix21, {}, {}, {"indicator": 1, "matchable": 1, "skipped": 2}),
    "stix/oasisdoc-sighting-of-an-indicator.json": (stix21, {}, {}, {"indicator": 1, "matchable": 1, "skipped": 3}),
    "stix/oasisdoc-sighting-of-observed-data.json": (stix21, {}, {}, {"skipped": 8}),
    "stix/oasisdoc-threat-actor-leveraging-attack-patterns-and-malware.json": (stix21, {}, {}, {"skipped": 7}),
    "stix/oasisdoc-using-granular-markings.json": (stix21, {}, {}, {"indicator": 1, "not_matchable": 1, "skipped": 3}),
    "stix/oasisdoc-using-marking-definitions.json": (stix21, {}, {}, {"filtered": 1, "skipped": 3}),
    "misp/circl-osint-57c4445b-c548-4654-af0b-4be3950d210f.json": (
        misp, {}, {}, {"indicator": 3, "matchable": 3, "skipped": 6}),
    "misp/crowdsec-feed/6a10e5d8-f1cd-42b0-8240-a4650efd83d6.json": (misp, {}, {}, {"indicator": 15, "matchable": 15}),
    "misp/crowdsec-feed/8f09de10-6867-45c6-814d-3d91a33d3af7.json": (misp, {}, {}, {"indicator": 15, "matchable": 15}),
    "misp/crowdsec-feed/d177856e-6e46-44ee-8eb5-83ef1c7452c7.json": (misp, {}, {}, {"indicator": 15, "matchable": 15}),
    "misp/misp-event-export.csv": (
        csv_table, {}, {"value": "value", "type_field": "type", "description": "comment",
                        "first_seen": {"field": "date", "format": "epoch"}},
        {"indicator": 27, "matchable": 27, "skipped": 3}),  # 27 md5; link and 2 filename have no indicator type
    "kev/known_exploited_vulnerabilities.json": (kev, {}, {}, {"advisory": 47}),
    "kev/known_exploited_vulnerabilities.csv": (kev, {}, {}, {"advisory": 47}),
    "csaf/icsa-17-180-01a.json": (csaf, {}, {}, {"advisory": 1}),
    "csaf/icsa-23-269-05.json": (csaf, {}, {}, {"advisory": 3}),
    "csaf/icsa-24-051-02.json": (csaf, {}, {}, {"advisory": 3}),
    "csaf/icsa-24-067-01.json": (csaf, {}, {}, {"advisory": 1}),
    "csaf/icsa-24-135-03.json": (csaf, {}, {}, {"advisory": 1}),
    "csaf/icsa-24-284-06.json": (csaf, {}, {}, {"advisory": 4}),
    "csaf/va-24-201-01.json": (csaf, {}, {}, {"advisory": 6}),
}
# Samples that are not a feed payload, and the test that reads each.
NOT_PAYLOADS = {
    "stix/mitre-ics-attack-subset.LICENSE.txt": "licence text",
    "misp/crowdsec-feed/manifest.json": "test_misp_manifest",
    "misp/crowdsec-feed/hashes.csv": "test_misp_hashes_match_the_parsed_values",
    "csaf/icsa-24-051-02.json.sha512": "checksum, verified by the transport",
    "csaf/index_OT_white.txt": "test_csaf_provider_listings",
    "csaf/changes_OT_white.csv": "test_csaf_provider_listings",
}


def parse(fixtures: Path, name: str, **overrides: Any) -> list[Any]:
    module, options, mapping, _ = SAMPLES[name]
    config = {"id": "conformance", "name": name, "source": {"type": "file", "path": str(fixtures / name)},
              "schedule": {"every": "1h"}, "format": module.FORMAT, "mapping": mapping, **overrides}
    with (fixtures / name).open("rb") as payload:
        return list(module.parse(payload, SourceConfig.model_validate(config), module.Options(**options)))


def test_every_sample_is_covered(shared_fixtures: Path) -> None:
    present = {p.relative_to(shared_fixtures).as_posix() for folder in ("feeds", "stix", "misp", "kev", "csaf")
               for p in (shared_fixtures / folder).rglob("*") if p.is_file()}
    assert present == set(SAMPLES) | set(NOT_PAYLOADS)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_counts(shared_fixtures: Path, name: str) -> None:
    records = parse(shared_fixtures, name)
    assert {k: v for k, v in tally(records).items() if v} == SAMPLES[name][3]
    for record in records:
        assert isinstance(record, (Indicator, Advisory)) or record.location, record
        if isinstance(record, Indicator):
            assert record.first_seen is None or record.first_seen.tzinfo is UTC
            assert record.feed == "conformance" and record.raw


def by_value(records: list[Any]) -> dict[str, Indicator]:
    return {r.value: r for r in records if isinstance(r, Indicator)}


def test_feodo_csv_and_json(shared_fixtures: Path) -> None:
    first = parse(shared_fixtures, "feeds/abusech_feodotracker_ipblocklist.csv")[0]
    assert (first.type, first.value, first.port, first.malware) == ("ipv4", "192.9.135.73", 1194, "Pikabot")
    assert first.first_seen == datetime(2023, 5, 23, 17, 51, 44, tzinfo=UTC)
    assert first.last_seen == datetime(2024, 4, 1, tzinfo=UTC)
    old = parse(shared_fixtures, "feeds/abusech_feodotracker_ipblocklist_2021_sanitized.csv")
    assert (old[0].reason, old[0].location) == ("filtered: private or reserved address", "line 10")
    records = parse(shared_fixtures, "feeds/abusech_feodotracker_ipblocklist.json")
    assert (records[0].value, records[0].port, records[0].first_seen) == (
        "51.178.161.32", 4643, datetime(2021, 1, 17, 7, 44, 46, tzinfo=UTC))
    assert (records[3].value, records[3].first_seen, records[3].last_seen) == (
        "1.234.21.73", None, datetime(2022, 11, 15, tzinfo=UTC))  # the record without first_seen


def test_abusech_headers_in_comments(shared_fixtures: Path) -> None:
    sslbl = parse(shared_fixtures, "feeds/abusech_sslbl_ipblacklist_2015.csv")
    assert (sslbl[0].value, sslbl[0].port, sslbl[0].description) == ("104.130.17.100", 443, "URLzone C&C")
    urlhaus = parse(shared_fixtures, "feeds/abusech_urlhaus_tld_feed_2019.csv")
    assert [(r.value, r.tags) for r in urlhaus] == [
        ("http://marconuenlist.ch/verif.accounts.docs.net/", ("malware_download",)),
        ("http://cbd-planet.ch/sec.myacc.send.com/", ("malware_download",))]
    assert urlhaus[1].first_seen == datetime(2019, 2, 12, 14, 27, 3, tzinfo=UTC)


def test_plain_lists(shared_fixtures: Path) -> None:
    drop = parse(shared_fixtures, "feeds/spamhaus_drop_2015.txt")
    assert (drop[0].type, drop[0].value, drop[0].description) == ("cidr", "1.4.0.0/17", "SBL256893")
    assert drop[-1].value == "27.133.208.0/20"  # the last line has no newline
    asn = parse(shared_fixtures, "feeds/spamhaus_asndrop_2015.txt")
    assert [(r.type, r.value) for r in asn] == [("asn", "260"), ("asn", "10516")]
    dshield = parse(shared_fixtures, "feeds/dshield_block_2015.txt")
    assert [(r.value, r.description) for r in dshield] == [("43.229.53.0/24", "Japan Inet"), ("194.63.140.0/24", None)]
    et = parse(shared_fixtures, "feeds/emergingthreats_compromised-ips.txt")
    assert et[0].value == "101.100.216.61" and len(by_value(et)) == 100
    phish = parse(shared_fixtures, "feeds/openphish_feed.txt")
    assert [(r.location, r.reason) for r in phish] == [
        ("line 1", "bad url: empty label (two dots in a row, or a leading dot)"),
        ("line 2", "bad url: empty label (two dots in a row, or a leading dot)")]
    blocklist = parse(shared_fixtures, "feeds/blocklistde_imap.txt")
    assert [r.location for r in blocklist] == [f"line {n}" for n in range(1, 7)]
    kept = parse(shared_fixtures, "feeds/blocklistde_imap.txt", filters={"exclude_private": False})
    assert [r.value for r in kept][:2] == ["192.0.2.4", "192.0.2.45"]


def test_spamhaus_drop_json_lines(shared_fixtures: Path) -> None:
    records = parse(shared_fixtures, "feeds/spamhaus_drop_v4.json")
    assert (records[0].value, records[0].description) == ("1.10.16.0/20", "SBL256894")
    assert (records[-1].reason, records[-1].location) == ("skipped: matches skip_if", "line 61")


def test_stix_samples(shared_fixtures: Path) -> None:
    apt1 = by_value(parse(shared_fixtures, "stix/oasis-apt1.json"))
    assert (apt1["223.166.0.0/15"].type, apt1["223.166.0.0/15"].malware) == ("cidr", "HUC Packet Transmit Tool (HTRAN)")
    assert [r.type for r in apt1.values() if not r.matchable] == ["stix-pattern", "stix-pattern"]
    ivy = parse(shared_fixtures, "stix/oasis-poisonivy.json")
    [bad] = [r for r in ivy if outcome(r) == "rejected"]
    assert bad.reason.startswith("bad domain: label 'domain autuo'")
    assert by_value(ivy)["60.10.1.115"].matchable  # the other half of that OR still loads
    coa = by_value(parse(shared_fixtures, "stix/oasis-indicators-for-C2-with-COA.json"))
    sha = "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"
    assert (coa[sha].type, coa[sha].malware) == ("sha256", "Poison Ivy")
    marked = parse(shared_fixtures, "stix/oasisdoc-using-marking-definitions.json", filters={"exclude_private": False})
    assert [(r.value, r.tlp) for r in marked if isinstance(r, Indicator)] == [("10.0.0.0", "amber")]
    granular = parse(shared_fixtures, "stix/oasisdoc-using-granular-markings.json")
    assert [r.tlp for r in granular if isinstance(r, Indicator)] == ["red"]


def test_misp_samples(shared_fixtures: Path) -> None:
    circl = parse(shared_fixtures, "misp/circl-osint-57c4445b-c548-4654-af0b-4be3950d210f.json")
    sha = by_value(circl)["b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"]
    assert (sha.type, sha.tlp, sha.first_seen) == ("sha256", "clear", datetime(2016, 8, 29, 14, 19, 55, tzinfo=UTC))
    assert "ms-caro-malware:malware-type=\"Ransom\"" in sha.tags
    assert [r.reason for r in circl if isinstance(r, Rejected)][:1] == ["skipped: MISP type 'link' is not an indicator type"]
    export = parse(shared_fixtures, "misp/misp-event-export.csv")
    assert (export[1].type, export[1].value, export[1].description) == (
        "md5", "744c07e886497f7b68f6f7fe57b7ab54", "Regin samples collected.")


def test_misp_hashes_match_the_parsed_values(shared_fixtures: Path) -> None:
    # hashes.csv lists md5(value) per event: our normalised values must be the values MISP hashed.
    folder = shared_fixtures / "misp" / "crowdsec-feed"
    pairs = {tuple(line.split(",")) for line in (folder / "hashes.csv").read_text().split()}
    for name in SAMPLES:
        if name.startswith("misp/crowdsec-feed/"):
            event = Path(name).stem
            for record in parse(shared_fixtures, name):
                assert (event, hashlib.md5(record.value.encode()).hexdigest()) in pairs


def test_misp_manifest(shared_fixtures: Path) -> None:
    data = (shared_fixtures / "misp" / "crowdsec-feed" / "manifest.json").read_bytes()
    problems: list[str] = []
    assert misp.manifest_events(data, None, problems) == [
        ("8f09de10-6867-45c6-814d-3d91a33d3af7", 1779109245), ("d177856e-6e46-44ee-8eb5-83ef1c7452c7", 1779411630),
        ("6a10e5d8-f1cd-42b0-8240-a4650efd83d6", 1779411638)]
    assert problems == []
    assert [u for u, _ in misp.manifest_events(data, 1779411630)] == ["6a10e5d8-f1cd-42b0-8240-a4650efd83d6"]


def test_kev_json_and_csv_agree(shared_fixtures: Path) -> None:
    from_json = parse(shared_fixtures, "kev/known_exploited_vulnerabilities.json")
    from_csv = parse(shared_fixtures, "kev/known_exploited_vulnerabilities.csv")
    key = lambda a: (a.advisory_id, a.cve, a.vendor, a.product, a.title, a.published, a.known_exploited)  # noqa: E731
    assert [key(a) for a in from_json] == [key(a) for a in from_csv]
    siemens = next(a for a in from_json if a.cve == "CVE-2016-8562")
    assert (siemens.vendor, siemens.product, siemens.known_exploited) == ("Siemens", "SIMATIC CP", True)
    assert from_json[0].published == datetime(2025, 8, 25, tzinfo=UTC)
    assert json.loads(from_json[0].raw)["dueDate"] == "2025-09-15"


def test_csaf_samples(shared_fixtures: Path) -> None:
    bently = parse(shared_fixtures, "csaf/icsa-23-269-05.json")
    assert [(a.cve, a.vendor, a.product, a.versions, a.cvss) for a in bently][0] == (
        "CVE-2023-34437", "Baker Hughes - Bently Nevada", "Bently Nevada 3500 Rack (TDI Firmware)", ("5.05",), 7.5)
    assert bently[0].url == "https://www.cisa.gov/news-events/ics-advisories/icsa-23-269-05"
    assert bently[0].published == datetime(2023, 9, 26, 6, tzinfo=UTC)
    [ccure] = parse(shared_fixtures, "csaf/icsa-24-135-03.json")
    assert (ccure.vendor, ccure.product, ccure.cve) == ("Johnson Controls", "Software House C●CURE 9000", "CVE-2024-0912")
    update_c = parse(shared_fixtures, "csaf/icsa-24-067-01.json")[0]
    assert (update_c.published, update_c.updated) == (datetime(2024, 3, 7, 7, tzinfo=UTC), datetime(2024, 5, 2, 6, tzinfo=UTC))
    adminer = parse(shared_fixtures, "csaf/va-24-201-01.json")
    assert {(a.cve, a.vendor, a.versions) for a in adminer if a.cve == "CVE-2023-45197"} == {
        ("CVE-2023-45197", "AdminerEvo", ("4.8.2",)), ("CVE-2023-45197", "Adminer", ("all versions",))}


def test_csaf_provider_listings(shared_fixtures: Path) -> None:
    folder = shared_fixtures / "csaf"
    problems: list[str] = []
    paths = csaf_index.parse_index((folder / "index_OT_white.txt").read_bytes(), problems)
    changes = csaf_index.parse_changes((folder / "changes_OT_white.csv").read_bytes(), problems)
    assert problems == [] and len(paths) == 40 and len(changes) == 40
    assert paths[0] == "csaf_files/OT/white/2024/icsma-24-254-01.json"
    assert changes[0] == ("csaf_files/OT/white/2024/icsma-24-254-01.json", datetime(2024, 9, 10, 6, tzinfo=UTC))
    ordered = csaf_index.changed_since((folder / "changes_OT_white.csv").read_bytes(), None)
    stamps = dict(changes)
    assert sorted(ordered) == sorted(stamps) and [stamps[p] for p in ordered] == sorted(stamps.values())
