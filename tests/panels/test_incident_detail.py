"""One incident: summary, why, indicators, target, events, officer actions and the audit log."""
import json
from types import SimpleNamespace

from storefill import MIN, NOW, add, event, events, incident, incidents, indicators, sightings
from panels import incident_detail as detail
from store import queries
from treeutil import find, text_of

EXPLAIN = [{"name": "indicator_hit", "points": 32, "why": "src_ip on demo-blocklist, confidence 80"},
           {"name": "ics_control", "points": 20, "why": "Modbus write"}]


def fill(store):
    add(store, incidents, [incident(5, severity=4, score=92, title="ET SCADA Modbus Write", event_count=3,
                                    score_explain=json.dumps(EXPLAIN), indicator_ids="[11]", site="plant-a")])
    add(store, events, [event(i, ts=NOW - (4 - i) * MIN, incident_id=5, asset="plc-1", zone="ot",
                              raw=json.dumps({"event_type": "alert", "seq": i})) for i in (1, 2, 3)])
    add(store, indicators, [{"id": 11, "type": "ipv4", "value": "203.0.113.5", "first_seen": NOW - MIN,
                             "last_seen": NOW, "updated_at": NOW}])
    add(store, sightings, [{"indicator_id": 11, "source_id": "feed-1", "first_seen": NOW - MIN, "last_seen": NOW,
                            "confidence": 80, "tlp": "amber"}])


def test_unknown_incident_is_a_plain_not_found_page(flask_app):
    tree = detail.layout(incident_id="999")
    assert "No such incident" in text_of(tree) and "/incidents" in text_of(tree)
    assert "No such incident" in text_of(detail.layout(incident_id="abc"))


def test_layout_without_id_is_the_validation_skeleton():
    tree = detail.layout()
    for id_ in (detail.ids.HEADER, detail.ids.LOG, detail.ids.EVENTS, detail.ids.RAW, detail.ids.NOTE):
        assert find(tree, id_) is not None


def test_incident_page_shows_why_what_and_where(flask_app, store):
    fill(store)
    tree = detail.layout(incident_id="5")
    header = text_of(find(tree, detail.ids.HEADER))
    assert "ET SCADA Modbus Write" in header and "wf-sev-critical" in header and "92 / 100" in header
    assert "Alpha Power Plant" in header and "2027-01-15 14:58:00" in header  # first seen, Bangkok time
    page = text_of(tree)
    assert "Why it is critical" in page and "indicator_hit" in page and "+32" in page
    assert "Source feed-1" in page and "TLP:AMBER" in page and "203.0.113.5" in page
    assert "Turbine PLC" in page and "Zone: ot (OT)" in page
    grid = find(tree, detail.ids.EVENTS)
    assert [r["id"] for r in grid.rowData] == ["3", "2", "1"]
    assert '"seq": 3' in find(tree, detail.ids.RAW).children  # newest event's raw record, pretty


def test_officer_actions_write_through_events_write_and_show_in_the_log(flask_app, store):
    fill(store)
    ctx = flask_app.config["WATCHFLOOR"]
    ack = {"type": detail.ids.ACTION, "status": "acknowledged"}
    assert detail.perform_action(ctx, 5, ack, None, None, "somchai") == (True, "Marked acknowledged")
    ok, message = detail.perform_action(ctx, 5, ack, None, None, "somchai")
    assert not ok and "already acknowledged" in message.lower()
    assert detail.perform_action(ctx, 5, detail.ids.ASSIGN, "CERT team 2", None, "somchai") == (
        True, "Assigned to CERT team 2")
    assert detail.perform_action(ctx, 5, detail.ids.ADD_NOTE, None, "  ", "somchai")[0] is False
    assert detail.perform_action(ctx, 5, detail.ids.ADD_NOTE, None, "called the plant", "somchai") == (True, "Note added")
    assert detail.perform_action(ctx, 404, ack, None, None, "somchai") == (False, "Incident #404 no longer exists")
    inc = queries.incident_by_id(store, 5)
    assert (inc.status, inc.assignee) == ("acknowledged", "CERT team 2")
    log = text_of(detail.render_log(queries.incident_log(store, 5), ctx.tz))
    assert "status new → acknowledged" in log and "assigned to CERT team 2" in log and "note: called the plant" in log


def test_action_callback_refreshes_header_and_log(flask_app, store, monkeypatch):
    fill(store)
    trigger = {"type": detail.ids.ACTION, "status": "resolved"}
    monkeypatch.setattr(detail, "dash_ctx", SimpleNamespace(triggered_id=trigger,
                                                            triggered=[{"prop_id": "x.n_clicks", "value": 1}]))
    header, log, feedback, note = detail.on_action([None, None, 1, None], None, None, 5, "", "false alarm? no: real")
    assert "resolved" in text_of(header) and "status new → resolved: false alarm? no: real" in text_of(log)
    assert "Marked resolved with the note" in text_of(feedback) and note == ""


def test_selecting_an_event_shows_its_raw_record(flask_app, store):
    fill(store)
    title, raw = detail.on_event_click({"rowId": "1", "colId": "time"})
    assert "Raw event #1" in title and '"seq": 1' in raw
