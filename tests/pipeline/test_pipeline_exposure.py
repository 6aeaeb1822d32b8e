"""Known-exploited exposure: KEV entries matched to inventory assets by vendor and product."""
from __future__ import annotations

import yaml
from pipeline_testkit import ASSETS_YAML, NOW_MS, event_at, ingest

from pipeline.assets import AssetIndex
from pipeline.exposure import KevExposure, match_assets, products_match
from settings.inventory import Inventory
from store.db import loads
from store.records import Advisory, Severity
from store.schema import events
from store.writes import upsert_advisories

ASSETS = AssetIndex(Inventory.model_validate(yaml.safe_load(ASSETS_YAML)))


def test_products_match_case_space_and_containment():
    assert products_match("SIMATIC S7-1500", "simatic  s7 1500")
    assert products_match("SIMATIC S7-1500 CPU", "SIMATIC S7-1500")
    assert not products_match("Modicon M340", "Modicon M580")
    assert not products_match("", "anything")


def test_match_assets_needs_vendor_and_product():
    found = match_assets(ASSETS.assets_by_id.values(), [
        ("siemens", "SIMATIC S7-1500", "CVE-2019-10929"), ("Siemens", "SIMATIC S7-1500", "CVE-2020-15782"),
        ("Schneider", "Modicon M340", "CVE-2018-7842"),  # vendor spelled differently: not ours
        ("AVEVA", "InTouch", "CVE-2022-0001"),
    ])
    assert found == {"a-plc": ("CVE-2019-10929", "CVE-2020-15782")}


def test_a_known_exploited_advisory_adds_its_contribution_through_the_pipeline(pipeline, store):
    with store.writer.begin() as conn:
        upsert_advisories(conn, "cisa-kev", [
            Advisory("CVE-2019-10929", "cisa-kev", "CVE-2019-10929", "Siemens", "SIMATIC S7-1500", "Crypto flaw",
                     known_exploited=True),
            Advisory("CVE-2099-0001", "cisa-kev", "CVE-2099-0001", "Siemens", "SIMATIC S7-1500", "Not exploited"),
        ], run_id=1)
    ingest(pipeline, store, [event_at(0, src_ip="45.33.32.156", dst_ip="10.2.0.10", signature="ET SCAN x",
                                      sensor_severity=Severity.LOW)])
    with store.reader.connect() as conn:
        row = conn.execute(events.select()).one()
    explain = {p["name"]: p for p in loads(row.score_explain)}
    assert explain["known_exploited"]["points"] == 15
    assert "CVE-2019-10929" in explain["known_exploited"]["why"] and "CVE-2099" not in explain["known_exploited"]["why"]
    # low 10 + OT 15 + outside→OT 15 + asset 10 + KEV 15
    assert row.score == 65 and Severity(row.severity) == Severity.HIGH


def test_exposure_refreshes_when_advisories_change(store):
    exposure = KevExposure(ASSETS.assets_by_id.values(), check_every_ms=1000)
    with store.reader.connect() as conn:
        assert exposure.refresh(conn, NOW_MS) is True and exposure.for_asset("b-rtu") == ()
    with store.writer.begin() as conn:
        upsert_advisories(conn, "cisa-kev", [Advisory("CVE-2018-7842", "cisa-kev", "CVE-2018-7842",
                                                      "Schneider Electric", "Modicon M340", "t", known_exploited=True)],
                          run_id=2)
    with store.reader.connect() as conn:
        assert exposure.refresh(conn, NOW_MS + 500) is False
        assert exposure.refresh(conn, NOW_MS + 1000) is True
    assert exposure.for_asset("b-rtu") == ("CVE-2018-7842",)
