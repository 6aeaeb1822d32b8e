"""Exposure findings over the real CISA KEV and CSAF fixtures, stored as the collectors store them."""
from __future__ import annotations

import json

import pytest
from exposure_testkit import (
    CSAF_ID, INVENTORY_YAML, KEV_ID, MIN, NOW, all_findings, csaf_advisories, inventory, kev_advisories, open_findings, store_advisories,
    store_fixtures,
)
from sqlalchemy import delete, select

from pipeline.assets import AssetIndex
from pipeline.exposure import KevExposure
from pipeline.exposure_findings import (
    RECOMPUTE_CURSOR, RESOLVED_ADVISORY, RESOLVED_ASSET, RESOLVED_NO_MATCH, AdvisoryRow, Counts, inventory_assets,
    match_findings, normalise_name, products_match, recompute_exposures, vendor_key, vendors_match,
)
from store.records import Advisory
from store.schema import advisories, exposures
from store.writes import get_cursor

SINEC_CVES = ("CVE-2024-47553", "CVE-2024-47562", "CVE-2024-47563", "CVE-2024-47565")


def test_names_fold_case_spaces_punctuation_and_company_forms() -> None:
    assert normalise_name("SIMATIC  S7-1500") == "simatic s7 1500"
    assert normalise_name("Software House C●CURE 9000") == "software house c cure 9000"
    assert vendor_key("Siemens AG") == vendor_key("siemens") == "siemens"
    assert vendor_key("Rockwell Automation, Inc.") == "rockwell automation"
    assert vendor_key("Citrix Systems, Inc.") == "citrix"
    assert vendor_key("Schneider Electric") != vendor_key("Schneider")
    assert vendor_key("AG") == "ag"  # a name that is only a suffix stays


def test_products_match_whole_words_in_either_direction() -> None:
    assert products_match("SINEC Security Monitor", "Siemens SINEC Security Monitor")
    assert products_match("SIMATIC S7-1500 CPU family", "simatic s7 1500")
    assert products_match("C-CURE 9000", "Software House C●CURE 9000")
    assert not products_match("S7-150", "SIMATIC S7-1500")
    assert not products_match("Modicon M340", "Modicon M580")
    assert not products_match("", "anything") and not products_match("PLC", None)


def test_an_advisory_without_vendor_matches_when_its_product_names_the_vendor() -> None:
    assert vendors_match("Siemens", "", "Siemens SIMATIC S7-1500")
    assert not vendors_match("Siemens", "", "SIMATIC S7-1500")
    assert not vendors_match("", "Siemens", "SIMATIC")


def test_fixtures_give_affected_unknown_and_no_findings(store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    counts = recompute_exposures(store, inventory(), NOW)
    found = open_findings(store)
    # SINEC Security Monitor V4.8.1 is in "vers:all/<V4.9.0": four CVEs, affected, CVSS from the advisory
    for cve in SINEC_CVES:
        row = found[("sinec-old", cve)]
        assert (row.version_match, row.advisory_id, row.source_id, row.site_id) == (
            "affected", "ICSA-24-284-06", CSAF_ID, "plant-a")
        assert row.asset_version == "V4.8.1" and json.loads(row.advisory_versions) == ["vers:all/<V4.9.0"]
        assert row.known_exploited is False and "is in vers:all/<V4.9.0" in row.version_note
    assert found[("sinec-old", "CVE-2024-47553")].cvss == 9.9
    # at the fixed version: nothing; without a version: "version not confirmed"
    assert not [k for k in found if k[0] == "sinec-new"]
    assert {k[1] for k in found if k[0] == "sinec-nover"} == set(SINEC_CVES)
    assert all(found[("sinec-nover", c)].version_match == "unknown" for c in SINEC_CVES)
    # a KEV entry (no versions): unknown, known exploited
    cp = found[("cp-1543", "CVE-2016-8562")]
    assert (cp.version_match, cp.known_exploited, cp.source_id, cp.cvss) == ("unknown", True, KEV_ID, None)
    assert "version not confirmed" in cp.version_note
    citrix = {k[1] for k in found if k[0] == "citrix-gw"}
    assert citrix == {"CVE-2025-5777", "CVE-2025-6543"}  # "Citrix Systems, Inc." is KEV's "Citrix"
    # AdminerEvo: exact versions 4.8.2 / 4.8.3 (CVE-2023-45197 names 4.8.2 only); 4.8.4 is fixed
    assert {k[1] for k in found if k[0] == "adminer-old"} == {"CVE-2023-45195", "CVE-2023-45196"}
    assert not [k for k in found if k[0] in ("adminer-new", "hmi-plain")]
    assert counts == Counts(new=len(found), still=0, resolved=0) and len(found) == 13


def test_known_exploited_when_any_kev_entry_names_the_cve_and_versions_decide(store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    # A versioned (CSAF-like) advisory for the KEV CVE: V2.2 is outside "<V2.0", so the version-less
    # KEV entry alone does not keep the finding; an asset at V1.5 is affected and known exploited.
    store_advisories(store, "vendor-csaf", [Advisory(
        "SSA-000001", "vendor-csaf", "CVE-2016-8562", "Siemens", "SIMATIC CP 1543-1", "CP 1543-1 flaw",
        versions=("<V2.0",), cvss=7.5)], run_id=3)
    inv = inventory()
    plant = inv.sites[0]
    plant.assets.append(plant.assets[3].model_copy(update={"id": "cp-old", "ip": "10.1.0.20", "version": "V1.5"}))
    recompute_exposures(store, inv, NOW)
    found = open_findings(store)
    assert ("cp-1543", "CVE-2016-8562") not in found
    old = found[("cp-old", "CVE-2016-8562")]
    assert (old.version_match, old.known_exploited, old.source_id, old.advisory_id, old.cvss) == (
        "affected", True, "vendor-csaf", "SSA-000001", 7.5)
    assert json.loads(old.advisories) == ["cisa-kev:CVE-2016-8562", "vendor-csaf:SSA-000001"]
    # Scoring reads the same version-aware result (pipeline.exposure.KevExposure)
    kev = KevExposure(AssetIndex(inv).assets_by_id.values())
    with store.reader.connect() as conn:
        assert kev.refresh(conn, NOW) is True
    assert kev.for_asset("cp-old") == ("CVE-2016-8562",)
    assert kev.for_asset("cp-1543") == ()
    assert kev.for_asset("citrix-gw") == ("CVE-2025-5777", "CVE-2025-6543")
    assert kev.for_asset("sinec-old") == ()  # affected, but not known exploited


def test_recompute_is_idempotent(store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    first = recompute_exposures(store, inventory(), NOW)
    before = all_findings(store)
    second = recompute_exposures(store, inventory(), NOW + 10 * MIN)
    after = all_findings(store)
    assert second == Counts(new=0, still=first.new, resolved=0)
    assert before.keys() == after.keys()
    for key, row in after.items():
        assert row.id == before[key].id and row.first_found == NOW and row.last_confirmed == NOW + 10 * MIN
        assert {k: v for k, v in row._mapping.items() if k != "last_confirmed"} == \
            {k: v for k, v in before[key]._mapping.items() if k != "last_confirmed"}
    with store.reader.connect() as conn:
        run = get_cursor(conn, *RECOMPUTE_CURSOR)
    assert run["at"] == NOW + 10 * MIN and run["open"] == first.new and run["assets"] == 7


def test_a_removed_advisory_resolves_its_findings_and_a_returning_one_reopens(store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    recompute_exposures(store, inventory(), NOW)
    with store.writer.begin() as conn:
        conn.execute(delete(advisories).where(advisories.c.advisory_id == "ICSA-24-284-06"))
    counts = recompute_exposures(store, inventory(), NOW + MIN)
    assert counts.resolved == 8  # four CVEs on two SINEC assets
    rows = all_findings(store)
    gone = rows[("sinec-old", "CVE-2024-47553")]
    assert (gone.resolved_at, gone.resolved_reason) == (NOW + MIN, RESOLVED_ADVISORY)  # kept, not deleted
    assert rows[("cp-1543", "CVE-2016-8562")].resolved_at is None
    # the advisory comes back: the same row reopens, found anew
    store_advisories(store, CSAF_ID, [a for a in csaf_advisories(shared_fixtures) if a.advisory_id == "ICSA-24-284-06"],
                     run_id=4)
    counts = recompute_exposures(store, inventory(), NOW + 2 * MIN)
    assert counts.new == 8 and counts.resolved == 0
    back = all_findings(store)[("sinec-old", "CVE-2024-47553")]
    assert (back.id, back.resolved_at, back.resolved_reason, back.first_found) == (gone.id, None, None, NOW + 2 * MIN)


def test_a_removed_or_patched_asset_resolves_its_findings(store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    recompute_exposures(store, inventory(), NOW)
    lines = [line for line in INVENTORY_YAML.splitlines() if "id: cp-1543" not in line]  # removed
    patched = "\n".join(lines).replace("version: V4.8.1", "version: V4.9.1")  # sinec-old patched
    counts = recompute_exposures(store, inventory(patched), NOW + MIN)
    rows = all_findings(store)
    assert rows[("cp-1543", "CVE-2016-8562")].resolved_reason == RESOLVED_ASSET
    assert rows[("sinec-old", "CVE-2024-47562")].resolved_reason == RESOLVED_NO_MATCH
    assert counts.resolved == 5


def test_recompute_with_no_advisories_records_the_run_and_finds_nothing(store) -> None:
    assert recompute_exposures(store, inventory(), NOW) == Counts(0, 0, 0)
    with store.reader.connect() as conn:
        assert conn.execute(select(exposures)).first() is None
        assert get_cursor(conn, *RECOMPUTE_CURSOR)["advisories"] == 0


def test_matching_is_pure_and_reads_only_assets_with_vendor_and_product(shared_fixtures) -> None:
    rows = [AdvisoryRow(a.source, a.advisory_id, a.cve or "", a.vendor or "", a.product or "", a.versions, a.cvss,
                        a.known_exploited, a.title, a.url)
            for a in kev_advisories(shared_fixtures) + csaf_advisories(shared_fixtures)]
    assets = inventory_assets(inventory())
    assert "hmi-plain" not in {a.asset_id for a in assets} and len(assets) == 7
    findings = match_findings(assets, rows)
    assert len(findings) == 13 == len({(f.asset_id, f.vuln_key) for f in findings})
    assert match_findings(assets, rows) == findings


@pytest.mark.parametrize("versions, expected", [((), "unknown"), (("All versions",), "affected"),
                                                (("<=2.9.1",), None), (("<=2.9.2",), "affected")])
def test_one_asset_one_advisory(versions: tuple[str, ...], expected: str | None) -> None:
    from pipeline.exposure_findings import AssetRef

    asset = AssetRef("plc", "plant", "PLC", "Siemens", "SIMATIC S7-1500", "V2.9.2")
    row = AdvisoryRow("feed", "ICSA-1", "CVE-2099-0001", "Siemens", "SIMATIC S7-1500 CPU family", versions)
    found = match_findings([asset], [row])
    assert [f.version_match for f in found] == ([expected] if expected else [])
