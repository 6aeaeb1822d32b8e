"""Scenarios through ``EventPipeline.ingest`` with a real SQLite store, real GeoIP and a small inventory."""
from __future__ import annotations

from datetime import timedelta

from pipeline_testkit import NOW_MS, event_at, ingest, write_config
from sqlalchemy import func, select

from pipeline.ingest import EventPipeline
from store.db import loads
from store.events_write import incident_log_entries, set_incident_status
from store.records import Event, Indicator, Severity
from store.schema import events, incidents, rollups
from store.writes import upsert_indicators

SCANNER = "45.33.32.156"          # a public address geoip2fast places in the US
C2 = "185.220.101.1"              # a public address geoip2fast places in Germany


def names(explain_json: str | None) -> list[str]:
    return [part["name"] for part in loads(explain_json, [])]


def all_incidents(store) -> list:
    with store.reader.connect() as conn:
        return conn.execute(select(incidents).order_by(incidents.c.id)).all()


def scan(seconds: float, dst: str) -> Event:
    return event_at(seconds, src_ip=SCANNER, dst_ip=dst, dst_port=502, proto="tcp",
                    signature="ET SCAN Suspicious inbound to Modbus port 502", signature_id="2013000",
                    category="Detection of a Network Scan", sensor_severity=Severity.MEDIUM)


def test_a_scanner_hitting_many_sites_makes_one_incident_per_site(pipeline, store):
    batch = ([scan(i, f"192.0.2.{i + 1}") for i in range(3)]            # plant-a DMZ
             + [scan(10 + i, f"10.3.0.{i + 7}") for i in range(2)]      # water-b IT
             + [scan(20 + i, f"198.51.100.{i + 9}") for i in range(4)])  # rail-c DMZ
    result = ingest(pipeline, store, batch)

    assert (result.accepted, result.duplicates, result.incidents_new, result.incidents_updated) == (9, 0, 3, 0)
    by_site = {row.site: row for row in all_incidents(store)}
    assert {site: row.event_count for site, row in by_site.items()} == {"plant-a": 3, "water-b": 2, "rail-c": 4}
    plant = by_site["plant-a"]
    assert plant.title == "ET SCAN Suspicious inbound to Modbus port 502"
    assert plant.sector == "energy" and plant.src_ip == SCANNER and plant.src_country == "US"
    assert plant.status == "new"
    assert [t["ip"] for t in loads(plant.targets)] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert loads(plant.sources) == [SCANNER]
    assert "T0846" in loads(plant.techniques)
    # sensor medium (20) + site criticality: 5 → 5 points, 3 → 3, 4 → 4: all "low"
    assert {site: (row.score, Severity(row.severity).label) for site, row in by_site.items()} == {
        "plant-a": (25, "low"), "water-b": (23, "low"), "rail-c": (24, "low")}
    assert names(plant.score_explain) == ["sensor_severity", "site_criticality"]


def test_b_blocklisted_c2_talking_to_an_ot_asset_is_critical(pipeline, store):
    with store.writer.begin() as conn:
        upsert_indicators(conn, "abuse-test", [Indicator("ipv4", C2, "abuse-test", confidence=90)],
                          run_id=1, now=NOW_MS - 1000, ttl_ms=None, detect=True)
    beacon = event_at(5, src_ip="10.2.0.10", src_port=49152, dst_ip=C2, dst_port=443, proto="tcp",
                      signature="ET CNC Feodo Tracker Reported CnC Server group 1", sensor_severity=Severity.HIGH)
    result = ingest(pipeline, store, [beacon])

    assert result.incidents_new == 1
    with store.reader.connect() as conn:
        row = conn.execute(select(events)).one()
    assert Severity(row.severity) == Severity.CRITICAL
    explain = {part["name"]: part for part in loads(row.score_explain)}
    assert list(explain) == ["sensor_severity", "indicator_hit", "ot_target", "asset_criticality"]
    assert explain["indicator_hit"]["points"] == 36          # 40 × 90 / 100
    assert "185.220.101.1" in explain["indicator_hit"]["why"] and "abuse-test" in explain["indicator_hit"]["why"]
    assert row.score == 30 + 36 + 15 + 10
    # Our PLC is the protected side even though it is the source: it is the one beaconing out.
    assert (row.site, row.zone, row.zone_kind, row.asset) == ("plant-a", "control", "OT", "a-plc")
    assert row.dst_country == "DE" and row.src_scope == "private" and row.src_country is None
    assert loads(row.indicator_ids) and "T0869" in loads(row.techniques)
    incident = all_incidents(store)[0]
    assert Severity(incident.severity) == Severity.CRITICAL
    assert incident.indicator_ids == row.indicator_ids
    assert names(incident.score_explain) == list(explain)
    assert loads(incident.targets) == [{"ip": "10.2.0.10", "site": "plant-a", "asset": "a-plc", "zone": "control"}]


def test_c_modbus_write_from_it_into_ot_scores_ics_write_and_it_to_ot(pipeline, store):
    write = event_at(1, kind="modbus", src_ip="10.1.0.30", dst_ip="10.2.0.10", dst_port=502, proto="tcp",
                     app_proto="modbus", ics_function="write_single_register", sensor_severity=Severity.MEDIUM)
    unknown_target = event_at(2, kind="modbus", src_ip="10.1.0.30", dst_ip="10.2.0.99", dst_port=502,
                              app_proto="modbus", ics_function="write_multiple_coils")
    result = ingest(pipeline, store, [write, unknown_target])

    with store.reader.connect() as conn:
        rows = {r.dst_ip: r for r in conn.execute(select(events))}
    first = rows["10.2.0.10"]
    assert names(first.score_explain) == ["sensor_severity", "ot_target", "ics_control", "it_to_ot",
                                          "asset_criticality"]
    assert (first.score, Severity(first.severity)) == (80, Severity.CRITICAL)
    it_to_ot = next(p for p in loads(first.score_explain) if p["name"] == "it_to_ot")
    assert it_to_ot["why"] == "from IT zone corporate of plant-a into OT zone control"
    assert (first.src_site, first.src_zone, first.src_zone_kind) == ("plant-a", "corporate", "IT")
    assert loads(first.techniques) == ["T0836", "T1692"]
    # No sensor severity, no asset: OT 15 + ICS 20 + IT→OT 15 + site criticality 5 = 55 → medium.
    second = rows["10.2.0.99"]
    assert names(second.score_explain) == ["ot_target", "ics_control", "it_to_ot", "site_criticality"]
    assert (second.score, Severity(second.severity)) == (55, Severity.MEDIUM)
    # Both are incident-worthy by level although "modbus" is not an alert kind; same key → one incident.
    assert result.incidents_new == 1 and first.incident_id == second.incident_id
    assert all_incidents(store)[0].event_count == 2


def test_d_replayed_events_are_not_stored_or_counted_twice(pipeline, store):
    batch = [scan(i, "192.0.2.1") for i in range(4)]
    first = ingest(pipeline, store, batch + [batch[0]])  # a duplicate inside the batch too
    assert (first.accepted, first.duplicates) == (4, 1)

    replay = ingest(pipeline, store, batch, now_ms=NOW_MS + 5000)
    assert (replay.accepted, replay.duplicates, replay.incidents_new, replay.incidents_updated) == (0, 4, 0, 0)
    assert replay.newest_ts == first.newest_ts
    with store.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 4
        assert conn.execute(select(func.sum(rollups.c.events))).scalar() == 4
    (incident,) = all_incidents(store)
    assert incident.event_count == 4


def test_d2_a_batch_mixing_stored_late_and_new_events_stores_only_the_unseen(pipeline, store):
    # Identity is (ts, content hash): a stored line is found whether the batch is older, mixed or newer
    # than what the store holds, and a new line older than the newest stored event is still new.
    stored = [scan(i * 10, "192.0.2.1") for i in range(5)]          # 0 s … 40 s
    ingest(pipeline, store, stored)
    late = scan(15, "192.0.2.2")                                     # new, older than the newest stored
    same_time_other_line = event_at(40, src_ip=SCANNER, dst_ip="192.0.2.3", raw="another line at 40 s")
    newer = scan(100, "192.0.2.4")
    mixed = ingest(pipeline, store, [stored[1], late, stored[4], same_time_other_line, newer, stored[0]],
                   now_ms=NOW_MS + 5000)
    assert (mixed.accepted, mixed.duplicates) == (3, 3)
    with store.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 8
        stored_hashes = set(conn.execute(select(events.c.content_hash)).scalars())
    assert {e.content_hash for e in [*stored, late, same_time_other_line, newer]} == stored_hashes


def test_e_window_expiry_starts_a_second_incident(pipeline, store):
    ingest(pipeline, store, [scan(0, "192.0.2.1"), scan(50 * 60, "192.0.2.1")])
    later = ingest(pipeline, store, [scan(50 * 60 + 3601, "192.0.2.1")])  # 1 h 1 s after the last one

    assert later.incidents_new == 1
    first, second = all_incidents(store)
    assert (first.event_count, second.event_count) == (2, 1)
    assert second.first_seen - first.last_seen == 3_601_000

    # An out-of-order event inside the first incident's span still joins it.
    late = ingest(pipeline, store, [scan(10 * 60, "192.0.2.1")])
    assert (late.incidents_new, late.incidents_updated) == (0, 1)
    assert [row.event_count for row in all_incidents(store)] == [3, 1]


def test_e_resolved_incident_reopens_within_the_window(pipeline, store):
    ingest(pipeline, store, [scan(0, "192.0.2.1")])
    (incident,) = all_incidents(store)
    with store.writer.begin() as conn:
        set_incident_status(conn, incident.id, "resolved", "officer", NOW_MS)
    result = ingest(pipeline, store, [scan(600, "192.0.2.1")], now_ms=NOW_MS + 1000)

    assert (result.incidents_new, result.incidents_updated) == (0, 1)
    (reopened,) = all_incidents(store)
    assert (reopened.status, reopened.event_count) == ("new", 2)
    with store.reader.connect() as conn:
        log = incident_log_entries(conn, incident.id)
    assert [(e.actor, e.action) for e in log] == [("officer", "status"), ("pipeline", "reopened")]


def test_e_false_positive_and_no_reopen_start_new_incidents(tmp_path, store):
    config = write_config(tmp_path / "cfg", "incidents: {window: 1h, reopen_resolved: false}\n")
    pipeline = EventPipeline(config, store)
    ingest(pipeline, store, [scan(0, "192.0.2.1"), scan(0, "10.3.0.7")])
    plant, water = all_incidents(store)
    with store.writer.begin() as conn:
        set_incident_status(conn, plant.id, "resolved", "officer", NOW_MS)
        set_incident_status(conn, water.id, "false_positive", "officer", NOW_MS)
    result = ingest(pipeline, store, [scan(60, "192.0.2.1"), scan(60, "10.3.0.7")], now_ms=NOW_MS + 1000)

    assert result.incidents_new == 2
    assert [(row.site, row.status, row.event_count) for row in all_incidents(store)] == [
        ("plant-a", "resolved", 1), ("water-b", "false_positive", 1), ("plant-a", "new", 1), ("water-b", "new", 1)]


def test_f_rollups_sum_to_accepted_events_and_plain_records_open_no_incident(pipeline, store):
    batch = [
        scan(0, "192.0.2.1"), scan(61, "10.3.0.7"),
        event_at(5, kind="dns", src_ip="10.1.0.30", dst_ip="8.8.8.8", domain="example.org"),
        event_at(125, kind="flow", src_ip="10.4.0.8", dst_ip="10.4.0.9"),
        event_at(130, kind="dns", src_ip="2001:db8:a::5", dst_ip="2001:4860:4860::8888", domain="example.net"),
    ]
    result = ingest(pipeline, store, batch)

    assert result.accepted == 5 and result.incidents_new == 2
    with store.reader.connect() as conn:
        assert conn.execute(select(func.sum(rollups.c.events))).scalar() == result.accepted
        minutes = conn.execute(select(rollups.c.minute, rollups.c.site, rollups.c.src_country, rollups.c.events)
                               .order_by(rollups.c.minute, rollups.c.site)).all()
        plain = conn.execute(select(events.c.kind, events.c.incident_id, events.c.severity, events.c.site)
                             .where(events.c.kind != "alert").order_by(events.c.ts)).all()
    t0_minute = NOW_MS - 3_600_000
    assert (t0_minute, "plant-a", "US", 1) in minutes and (t0_minute, "plant-a", "", 1) in minutes
    assert (t0_minute + 60_000, "water-b", "US", 1) in minutes
    assert all(row.incident_id is None for row in plain)
    # the IPv6 DNS query comes from plant-a's corporate range; the flow is inside water-b's OT zone
    assert [(row.kind, row.site) for row in plain] == [("dns", "plant-a"), ("flow", "water-b"), ("dns", "plant-a")]
    # a second batch in the same minute adds to the same rollup row
    ingest(pipeline, store, [scan(1, "192.0.2.2")], now_ms=NOW_MS + 1)
    with store.reader.connect() as conn:
        assert conn.execute(select(rollups.c.events).where(rollups.c.minute == t0_minute, rollups.c.site == "plant-a",
                                                            rollups.c.src_country == "US")).scalar() == 2


def test_unknown_incident_keys_group_by_configured_fields(tmp_path, store):
    config = write_config(tmp_path / "cfg", "incidents: {group_by: [src_ip], window: 30m}\n")
    pipeline = EventPipeline(config, store)
    result = ingest(pipeline, store, [scan(0, "192.0.2.1"), scan(1, "10.3.0.7"), scan(2, "198.51.100.9")])
    assert result.incidents_new == 1
    (incident,) = all_incidents(store)
    assert incident.event_count == 3 and len(loads(incident.targets)) == 3
    assert pipeline.correlator.window_ms == int(timedelta(minutes=30).total_seconds() * 1000)


def test_a_rolled_back_batch_leaves_no_trace_in_later_batches(pipeline, store):
    ingest(pipeline, store, [scan(0, "192.0.2.1")])
    batch = [scan(10, "192.0.2.1"), scan(20, "10.3.0.7")]
    try:
        with store.writer.begin() as conn:
            pipeline.ingest(conn, batch, NOW_MS + 1)
            raise RuntimeError("the caller failed to write its cursor")
    except RuntimeError:
        pass
    again = ingest(pipeline, store, batch, now_ms=NOW_MS + 2)

    assert (again.accepted, again.duplicates, again.incidents_new, again.incidents_updated) == (2, 0, 1, 1)
    assert [(row.site, row.event_count) for row in all_incidents(store)] == [("plant-a", 2), ("water-b", 1)]
    with store.reader.connect() as conn:
        assert conn.execute(select(func.sum(rollups.c.events))).scalar() == 3


def test_officer_changes_between_batches_are_seen(pipeline, store):
    ingest(pipeline, store, [scan(0, "192.0.2.1")])
    (incident,) = all_incidents(store)
    with store.writer.begin() as conn:      # same millisecond as the pipeline's own write
        set_incident_status(conn, incident.id, "false_positive", "officer", NOW_MS)
    result = ingest(pipeline, store, [scan(30, "192.0.2.1")])
    assert result.incidents_new == 1
    assert [(row.status, row.event_count) for row in all_incidents(store)] == [("false_positive", 1), ("new", 1)]
