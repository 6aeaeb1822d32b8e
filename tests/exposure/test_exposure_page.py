"""The /exposure page and the incident page's Target section, built without a browser."""
from __future__ import annotations

import json
from pathlib import Path

from exposure_testkit import INVENTORY_YAML, NOW, find, inventory, make_config, store_fixtures, text_of

import panels
from panels import exposure, incident_detail, shell
from pipeline.exposure_findings import recompute_exposures
from store import queries
from store.schema import events, incidents


def test_page_is_registered_and_in_the_nav(config) -> None:
    page = next(p for p in panels.PAGES if p.module is exposure)
    assert page.registration == {"path": "/exposure", "name": "Exposure", "order": 4, "title": "Exposure · watchfloor"}
    assert "/exposure" in text_of(shell.header(config, NOW))
    validation = text_of(panels.validation_layout())
    for id_ in (exposure.ids.SITE, exposure.ids.KEV, exposure.ids.GRID, exposure.ids.GRID_BOX, exposure.ids.EMPTY,
                exposure.ids.KPIS, exposure.ids.ASOF, exposure.ids.BASIS, exposure.ids.SUMMARY):
        assert f'"{id_}"' in validation


def test_no_advisories_is_no_data_not_all_clear(flask_app) -> None:
    tree = exposure.layout()
    empty = find(tree, exposure.ids.EMPTY)
    assert "No advisories collected yet" in text_of(empty) and "wf-empty-nodata" in text_of(empty)
    assert find(tree, exposure.ids.GRID_BOX).style == {"display": "none"}
    kpis = text_of(find(tree, exposure.ids.KPIS))
    assert "—" in kpis and "wf-kpi-zero" not in kpis  # unknown is not zero
    assert "no data yet" in text_of(find(tree, exposure.ids.ASOF))


def test_collected_but_not_computed_says_so(flask_app, store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    empty = text_of(find(exposure.layout(), exposure.ids.EMPTY))
    assert "66 advisories collected, exposure not computed yet" in empty and "wf-empty-nodata" in empty


def test_no_exposure_found_is_calm(flask_app, store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    bare = inventory("""
sites:
  - {id: plant-a, name: Alpha, sector: energy, lat: 13.5, lon: 100.9, criticality: 5,
     zones: [{name: control, kind: OT, networks: [10.1.0.0/16]}],
     assets: [{id: x, name: X, vendor: Nobody, product: Nothing, version: "1.0"}]}
""")
    flask_app.config["WATCHFLOOR"].config = make_config(Path("."), bare)
    recompute_exposures(store, bare, NOW)
    tree = exposure.layout()
    empty = text_of(find(tree, exposure.ids.EMPTY))
    assert "No exposure found: none of the 66 advisories" in empty and "wf-empty-noevents" in empty
    assert "wf-kpi-zero" in text_of(find(tree, exposure.ids.KPIS))
    assert "computed" in text_of(find(tree, exposure.ids.ASOF))


def test_findings_grid_kpis_and_filters(flask_app, store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    recompute_exposures(store, inventory(), NOW - 60_000)
    tree = exposure.layout()
    assert find(tree, exposure.ids.EMPTY).children is None and find(tree, exposure.ids.GRID_BOX).style == {}
    rows = find(tree, exposure.ids.GRID).rowData
    assert len(rows) == 13
    first = rows[0]
    assert first["kev"] is True and first["kev_label"] == "KEV" and first["match"] == "not confirmed"
    sinec = next(r for r in rows if r["cve"] == "CVE-2024-47553" and r["asset"] == "Security monitor (old)")
    assert sinec == {**sinec, "site_name": "Alpha Power Plant", "product": "Siemens AG SINEC Security Monitor",
                     "version": "V4.8.1", "cvss": 9.9, "cvss_level": "critical", "match": "affected",
                     "affected_versions": "vers:all/<V4.9.0", "advisory": "ICSA-24-284-06", "kev_label": "—",
                     "first_found": "2027-01-15 14:59"}
    assert "V4.8.1 is in vers:all/<V4.9.0" in sinec["match_note"]
    kpis = find(tree, exposure.ids.KPIS)
    assert [t.children[1].children for t in kpis.children] == ["5", "3", "2", "7"]
    assert "of 7 with vendor/product · 13 open findings" in text_of(kpis)
    assert "13 open findings on 5 assets" == find(tree, exposure.ids.SUMMARY).children
    assert "47 from CISA KEV" in text_of(find(tree, exposure.ids.BASIS))
    assert "computed 14:59:00 · 60 s ago" in text_of(find(tree, exposure.ids.ASOF))
    # the callback, with the filters the page offers
    out = dict(zip(exposure._OUTPUTS, exposure.update_exposure("port-b", "kev", 1)))
    assert {r["asset"] for r in out[exposure.ids.GRID]} == {"Remote access gateway"}
    assert out[exposure.ids.EMPTY] is None
    out = dict(zip(exposure._OUTPUTS, exposure.update_exposure("port-b", "all", 2)))
    assert len(out[exposure.ids.GRID]) == 4


def test_selection_from_the_url(config) -> None:
    assert exposure.selection_from_query({"site": "port-b", "kev": "1"}, config) == exposure.Selection("port-b", True)
    assert exposure.selection_from_query({"site": "nope", "kev": "no"}, config) == exposure.Selection(None, False)
    assert exposure.cvss_level(9.0) == "critical" and exposure.cvss_level(6.9) == "medium"
    assert exposure.cvss_level(None) == "" and exposure.cvss_level(float("nan")) == ""


def test_filters_that_match_nothing(flask_app, store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    recompute_exposures(store, inventory(), NOW)
    tree = exposure.layout(site="plant-a", kev="1")
    assert find(tree, exposure.ids.SITE).value == "plant-a" and find(tree, exposure.ids.KEV).value == "kev"
    assert len(find(tree, exposure.ids.GRID).rowData) == 1  # the KEV SIMATIC CP
    # nothing known-exploited on the patched SINEC-only selection: calm, and it says it is the filter
    store_fixtures(store, shared_fixtures)
    ctx = flask_app.config["WATCHFLOOR"]
    out = exposure.render(ctx, exposure.Selection(site="plant-a", known_exploited_only=True), NOW)
    assert out[exposure.ids.EMPTY] is None
    recompute_exposures(store, inventory(INVENTORY_YAML.replace("id: cp-1543", "id: cp-1543-x").replace(
        "product: SIMATIC CP 1543-1", "product: SIMATIC S7-1200")), NOW)
    out = exposure.render(ctx, exposure.Selection(site="plant-a", known_exploited_only=True), NOW)
    assert out[exposure.ids.GRID] == [] and out[exposure.ids.GRID_BOX] == {"display": "none"}
    assert "No finding matches these filters" in text_of(out[exposure.ids.EMPTY])
    assert "wf-empty-noevents" in text_of(out[exposure.ids.EMPTY])


def test_incident_target_lists_the_assets_exposure(flask_app, store, shared_fixtures) -> None:
    store_fixtures(store, shared_fixtures)
    recompute_exposures(store, inventory(), NOW)
    with store.writer.begin() as conn:
        conn.execute(incidents.insert().values(
            id=7, group_key="k7", title="ET EXPLOIT SINEC", site="plant-a", sector="energy", first_seen=NOW - 60_000,
            last_seen=NOW, event_count=1, severity=4, score=80, status="new", updated_at=NOW,
            score_explain=json.dumps([{"name": "known_exploited", "points": 15, "why": "x"}])))
        conn.execute(events.insert().values(
            id=1, ts=NOW, sensor="ids-1", kind="alert", severity=4, score=80, raw="{}", content_hash="h1",
            ingested_at=NOW, incident_id=7, asset="sinec-old", zone="control", dst_ip="10.1.0.5"))
    tree = incident_detail.layout(incident_id="7")
    target = text_of(tree)
    assert "Exposure: 4 open findings on this asset" in target
    assert "CVE-2024-47553" in target and "CVSS 9.9" in target and "wf-sev-text-critical" in target
    assert "affected version" in target and "/exposure?site=plant-a" in target
    # a known-exploited finding carries the badge
    inc = queries.incident_by_id(store, 7)
    newest = queries.events_for_incident(store, 7)
    cp = incident_detail.render_target(inc, newest.assign(asset="cp-1543"), flask_app.config["WATCHFLOOR"].config,
                                       queries.exposures_for_asset(store, "cp-1543"))
    text = text_of(cp)
    assert "known exploited" in text and "wf-sev-critical" in text and "version not confirmed" in text
    assert "CISA KEV" in text  # a KEV entry is named by its catalogue, not its CVE twice
    # an asset without findings says so, the section still renders without findings given
    none = incident_detail.render_target(inc, newest.assign(asset="sinec-new"), flask_app.config["WATCHFLOOR"].config,
                                         queries.exposures_for_asset(store, "sinec-new"))
    assert "no open finding for this asset" in text_of(none)
    assert "Exposure" not in text_of(incident_detail.render_target(inc, newest, flask_app.config["WATCHFLOOR"].config))
