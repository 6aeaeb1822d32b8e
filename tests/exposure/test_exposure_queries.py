"""The read side of exposure: findings (filtered, most urgent first), one asset's findings, the summary."""
from __future__ import annotations

from exposure_testkit import CSAF_ID, KEV_ID, NOW, inventory, store_fixtures

from pipeline.exposure_findings import recompute_exposures
from store import queries


def test_before_anything_ran_the_summary_says_so(store) -> None:
    summary = queries.exposure_summary(store)
    assert (summary.advisories, summary.computed_at_ms, summary.findings) == (0, None, 0)
    df = queries.exposure_findings(store)
    assert df.empty and list(df.columns) == list(queries.EXPOSURE_COLUMNS)
    assert queries.exposures_for_asset(store, "sinec-old").empty and queries.exposures_for_asset(store, None).empty


def test_findings_are_listed_most_urgent_first_and_filter(store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    recompute_exposures(store, inventory(), NOW)
    df = queries.exposure_findings(store)
    assert len(df) == 13
    kev = df[df["known_exploited"]]
    assert list(df["known_exploited"][:len(kev)]) == [True] * len(kev)  # known exploited first
    rest = df[~df["known_exploited"]]["cvss"].tolist()
    assert rest[0] == 9.9 and rest == sorted(rest, reverse=True)  # then the highest CVSS
    first = df.iloc[0]
    assert isinstance(first["advisories"], list) and isinstance(first["advisory_versions"], list)
    assert str(df["first_found"].dtype) == "datetime64[ms, UTC]"
    assert set(queries.exposure_findings(store, site="port-b")["asset_id"]) == {"citrix-gw", "adminer-old"}
    only_kev = queries.exposure_findings(store, known_exploited_only=True)
    assert set(only_kev["cve"]) == {"CVE-2016-8562", "CVE-2025-5777", "CVE-2025-6543"}
    assert len(queries.exposure_findings(store, limit=2)) == 2


def test_one_assets_findings(store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    recompute_exposures(store, inventory(), NOW)
    sinec = queries.exposures_for_asset(store, "sinec-old")
    assert sinec["cve"].tolist() == ["CVE-2024-47553", "CVE-2024-47562", "CVE-2024-47563", "CVE-2024-47565"]
    assert sinec["cvss"].tolist() == [9.9, 8.8, 5.3, 4.3]
    assert queries.exposures_for_asset(store, "adminer-new").empty


def test_summary_counts_under_the_filters(store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    recompute_exposures(store, inventory(), NOW)
    s = queries.exposure_summary(store)
    assert (s.findings, s.assets_exposed, s.known_exploited, s.critical_cvss, s.unconfirmed) == (13, 5, 3, 2, 7)
    assert s.computed_at_ms == NOW and s.last_run["assets"] == 7
    assert s.advisories_by_source == {CSAF_ID: 19, KEV_ID: 47} and s.advisories == 66
    port = queries.exposure_summary(store, site="port-b")
    assert (port.findings, port.assets_exposed, port.known_exploited) == (4, 2, 2)
    assert queries.exposure_summary(store, known_exploited_only=True).findings == 3
