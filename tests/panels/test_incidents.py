"""The incident list: URL pre-fill, paging logic, rows as shown, the callback called directly."""
from types import SimpleNamespace

from storefill import DAY, MIN, NOW, add, incident, incidents as incidents_table
from panels import ids as shared
from panels import incidents
from treeutil import find


def test_selection_from_query_prefills_and_drops_unknown_values(config):
    sel = incidents.selection_from_query(
        {"site": "water-b", "severity": "critical,bogus,HIGH", "status": "open", "country": "cn", "range": "7d",
         "q": "log4j", "sort": "-severity", "sector": "nonsense"}, config)
    assert sel.site == "water-b" and sel.severity == ("critical", "high")
    assert sel.status == ("new", "acknowledged", "investigating") and sel.country == "CN"
    assert (sel.range, sel.text, sel.sort, sel.sector) == ("7d", "log4j", "-severity", None)
    assert incidents.selection_from_query({"site": "not-ours", "sort": "raw"}, config) == incidents.Selection()
    flt = sel.filters(NOW)
    assert flt.since_ms == NOW - 7 * DAY and flt.site == "water-b" and flt.text == "log4j"


def test_next_page():
    assert incidents.next_page(incidents.ids.NEXT, 2) == 3
    assert incidents.next_page(incidents.ids.PREV, 0) == 0
    assert incidents.next_page(shared.REFRESH, 4) == 4
    assert incidents.next_page(incidents.ids.SITE, 4) == 0


def test_layout_prefilled_from_url_shows_matching_rows(flask_app, store):
    add(store, incidents_table, [incident(1, site="water-b", sector="water", severity=4),
                                 incident(2, site="plant-a", severity=4, last_seen=NOW - 2 * MIN)])
    tree = incidents.layout(site="water-b")
    assert find(tree, incidents.ids.SITE).value == "water-b"
    rows = find(tree, incidents.ids.GRID).rowData
    assert [r["id"] for r in rows] == ["1"]
    assert rows[0]["site_name"] == "Bravo Water Works" and rows[0]["severity"] == "critical"
    assert rows[0]["source"] == "203.0.113.5 · CN" and rows[0]["last_seen"] == "2027-01-15 14:59"
    assert find(tree, incidents.ids.SUMMARY).children == "1–1 of 1 incidents"
    assert find(tree, incidents.ids.PREV).disabled and find(tree, incidents.ids.NEXT).disabled


def test_grid_colours_severity_like_everywhere_else():
    sev = next(c for c in incidents.COLUMN_DEFS if c["field"] == "severity")
    assert "#ff2d55" in text_of_dict(sev["cellStyle"])


def text_of_dict(d):
    import json

    return json.dumps(d)


def test_callback_pages_through_results(flask_app, store, monkeypatch):
    add(store, incidents_table, [incident(i, last_seen=NOW - i * MIN) for i in range(1, 61)])
    monkeypatch.setattr(incidents, "dash_ctx", SimpleNamespace(triggered_id=incidents.ids.NEXT))
    out = dict(zip(incidents._OUTPUTS, incidents.update_incidents(
        [], [], None, None, "", "all", "", "-last_seen", None, 1, None, 0)))
    assert out[incidents.ids.PAGE] == 1 and [r["id"] for r in out[incidents.ids.GRID]][:2] == ["51", "52"]
    assert out[incidents.ids.SUMMARY] == "51–60 of 60 incidents" and out[incidents.ids.NEXT] is True
    monkeypatch.setattr(incidents, "dash_ctx", SimpleNamespace(triggered_id=incidents.ids.SEVERITY))
    none = dict(zip(incidents._OUTPUTS, incidents.update_incidents(
        ["critical"], [], None, None, "", "all", "", "-last_seen", None, 1, None, 1)))
    assert none[incidents.ids.PAGE] == 0 and none[incidents.ids.GRID] == []
    assert none[incidents.ids.SUMMARY] == "No incidents match these filters"


def test_row_click_opens_the_incident(flask_app):
    assert incidents.row_click_target({"rowId": "42", "colId": "title"}) == "/incidents/42"
    assert incidents.row_click_target({"rowId": None}) is None
    assert incidents.on_row_click({"rowId": "7"}) == "/incidents/7"
