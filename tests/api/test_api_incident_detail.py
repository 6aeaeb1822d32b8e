"""GET /api/incidents/<id>: score breakdown, matched indicators, events with their raw record, the log."""
from __future__ import annotations

import json

import pytest
from pipeline_testkit import NOW_MS, event_at, ingest
from sqlalchemy import select

from pipeline.ingest import EventPipeline
from store.db import loads
from store.events_write import add_incident_note, set_incident_status
from store.records import Indicator, Severity
from store.schema import events, incidents
from store.writes import upsert_indicators

C2 = "185.220.101.1"
PLC = "10.2.0.10"  # plant-a, OT zone "control", asset a-plc
SYSLOG_LINE = "<34>Nov 22 10:00:40 historian sshd[42]: Failed password for root"


def beacon(seconds: float, n: int) -> object:
    raw = json.dumps({"event_type": "alert", "src_ip": PLC, "dest_ip": C2, "flow_id": n,
                      "alert": {"signature": "ET CNC Feodo Tracker Reported CnC Server group 1"}})
    return event_at(seconds, src_ip=PLC, src_port=49152 + n, dst_ip=C2, dst_port=443, proto="tcp",
                    signature="ET CNC Feodo Tracker Reported CnC Server group 1", sensor_severity=Severity.HIGH,
                    raw=raw)


@pytest.fixture
def filled(client, store, config):
    """A blocklisted C2 beaconed to three times from the PLC (one incident, JSON raws), and an alert
    whose raw is a syslog line (another incident); the first incident acknowledged with a note."""
    with store.writer.begin() as conn:
        upsert_indicators(conn, "feed-1", [Indicator("ipv4", C2, "feed-1", confidence=90, tlp="amber",
                                                     malware="QakBot", tags=["botnet", "c2"])],
                          run_id=1, now=NOW_MS - 60_000, ttl_ms=None, detect=True)
    pipeline = EventPipeline(config, store, clock=lambda: NOW_MS)
    ingest(pipeline, store, [beacon(10, 1), beacon(20, 2), beacon(30, 3)])
    ingest(pipeline, store, [event_at(40, kind="alert", src_ip="45.33.32.156", dst_ip="10.1.0.30",
                                      signature="sshd: Failed password for root", sensor_severity=Severity.MEDIUM,
                                      raw=SYSLOG_LINE)])
    with store.reader.connect() as conn:
        by_title = {row.title: row for row in conn.execute(select(incidents))}
    c2 = by_title["ET CNC Feodo Tracker Reported CnC Server group 1"]
    with store.writer.begin() as conn:
        set_incident_status(conn, c2.id, "acknowledged", "alice", NOW_MS + 1000, note="calling the plant")
        add_incident_note(conn, c2.id, "PLC isolated", "bob", NOW_MS + 2000)
    return {"c2": c2.id, "syslog": by_title["sshd: Failed password for root"].id}


def test_incident_detail_has_the_breakdown_indicators_events_and_log(client, store, filled):
    response = client.get(f"/api/incidents/{filled['c2']}")
    assert response.status_code == 200
    body = response.get_json()
    with store.reader.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == filled["c2"])).one()

    assert body["id"] == filled["c2"] and body["severity"] == Severity(row.severity).label == "critical"
    assert body["status"] == "acknowledged" and body["assignee"] is None
    assert (body["site"], body["sector"], body["event_count"]) == ("plant-a", "energy", 3)
    assert body["first_seen"] == "2026-11-22T10:00:10Z" and body["last_seen"] == "2026-11-22T10:00:30Z"
    assert body["targets"] == [{"ip": PLC, "site": "plant-a", "asset": "a-plc", "zone": "control"}]
    assert body["sources"] == loads(row.sources) and body["techniques"] == loads(row.techniques)
    assert body["techniques"]

    # the score and its named contributions, exactly as stored, each {name, points, why}
    assert body["score"] == row.score
    assert body["score_breakdown"] == loads(row.score_explain)
    assert all(set(part) == {"name", "points", "why"} for part in body["score_breakdown"])
    hit = next(part for part in body["score_breakdown"] if part["name"] == "indicator_hit")
    assert C2 in hit["why"] and hit["points"] > 0
    assert body["score"] == min(100, sum(part["points"] for part in body["score_breakdown"]))

    # the indicator that matched, with the feed's view of it
    [indicator] = body["indicators"]
    assert {k: indicator[k] for k in ("type", "value", "feed", "feed_name", "confidence", "tlp", "expired",
                                      "malware", "tags")} == {
        "type": "ipv4", "value": C2, "feed": "feed-1", "feed_name": "Test blocklist", "confidence": 90,
        "tlp": "amber", "expired": False, "malware": "QakBot", "tags": ["botnet", "c2"]}
    assert indicator["first_seen"].endswith("Z") and indicator["last_seen"].endswith("Z")

    # events newest first, each with its fields and the raw record parsed
    assert [e["ts"] for e in body["events"]] == ["2026-11-22T10:00:30Z", "2026-11-22T10:00:20Z",
                                                 "2026-11-22T10:00:10Z"]
    newest = body["events"][0]
    assert newest["raw_format"] == "json"
    assert newest["raw"]["flow_id"] == 3 and newest["raw"]["alert"]["signature"].startswith("ET CNC")
    assert (newest["src_ip"], newest["dst_ip"], newest["dst_port"], newest["proto"]) == (PLC, C2, 443, "tcp")
    assert (newest["site"], newest["zone"], newest["asset"], newest["incident_id"]) == \
        ("plant-a", "control", "a-plc", filled["c2"])
    assert newest["severity"] == "critical" and newest["sensor_severity"] == "high"
    assert newest["indicator_ids"] == [indicator["id"]]
    assert any(part["name"] == "indicator_hit" for part in newest["score_breakdown"])
    assert isinstance(newest["techniques"], list) and isinstance(newest["extra"], dict)
    assert newest["ingested_at"] == "2026-11-22T11:00:00Z"
    assert body["events_limit"] == 100 and body["events_truncated"] is False

    # the audit log, newest first, its detail decoded
    assert [(e["actor"], e["action"]) for e in body["log"]] == [("bob", "note"), ("alice", "status")]
    assert body["log"][0]["detail"] == {"text": "PLC isolated"}
    assert body["log"][1]["detail"] == {"from": "new", "to": "acknowledged", "note": "calling the plant"}
    assert body["log"][1]["at"] == "2026-11-22T11:00:01Z"
    assert body["url"] == f"http://localhost/api/incidents/{filled['c2']}"
    assert body["ui_url"] == f"http://localhost/incidents/{filled['c2']}"


def test_events_limit_caps_the_events_newest_first(client, filled):
    body = client.get(f"/api/incidents/{filled['c2']}?events_limit=2").get_json()
    assert [e["raw"]["flow_id"] for e in body["events"]] == [3, 2]
    assert body["events_limit"] == 2 and body["events_truncated"] is True
    none = client.get(f"/api/incidents/{filled['c2']}?events_limit=0").get_json()
    assert none["events"] == [] and none["events_truncated"] is True and none["event_count"] == 3


def test_a_raw_that_is_not_json_is_returned_as_text(client, store, filled):
    body = client.get(f"/api/incidents/{filled['syslog']}").get_json()
    [event] = body["events"]
    assert event["raw_format"] == "text"
    assert event["raw"] == SYSLOG_LINE
    assert body["indicators"] == [] and body["log"] == []
    with store.reader.connect() as conn:
        assert conn.execute(select(events.c.raw).where(events.c.id == event["id"])).scalar_one() == event["raw"]


@pytest.mark.parametrize("incident_id", ["999999", "abc", "0"])
def test_an_unknown_incident_is_a_json_404(client, filled, incident_id):
    response = client.get(f"/api/incidents/{incident_id}")
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert incident_id in response.get_json()["error"]


@pytest.mark.parametrize(("query", "parameter"), [("?events_limit=-1", "events_limit"),
                                                  ("?events_limit=5001", "events_limit"),
                                                  ("?events=5", "events")])
def test_bad_detail_parameters_are_400(client, filled, query, parameter):
    response = client.get(f"/api/incidents/{filled['c2']}{query}")
    assert response.status_code == 400 and response.get_json()["parameter"] == parameter
