"""The store on a real PostgreSQL server: schema creation, the event pipeline, the read side and the
writes, each checked against what the same data gives on SQLite (the default, most tested path)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pipeline_testkit import NOW_MS, event_at, ingest, write_config
from sqlalchemy import func, inspect, select

from pipeline.exposure_findings import recompute_exposures
from pipeline.ingest import EventPipeline
from settings.loader import Config
from store import coarse_rollups, incident_search, queries
from store.db import Store, create_or_upgrade, loads
from store.events_write import (add_incident_note, assign_incident, incident_log_entries,
                                set_incident_status)
from store.records import Advisory, Event, Indicator, Severity
from store.schema import (SCHEMA_VERSION, advisories, events, exposures, incidents, indicators, metadata,
                          place_rollups, rollups, rollups_pairs, rollups_severity, schema_info, sightings)
from store.writes import upsert_advisories, upsert_indicators

SCANNER = "45.33.32.156"          # geoip2fast: US
C2 = "185.220.101.1"              # geoip2fast: DE
BRUTE = "92.63.197.153"           # another public source
MODBUS = dict(signature="ET SCAN Suspicious inbound to Modbus port 502", signature_id="2013000",
              category="Detection of a Network Scan", sensor_severity=Severity.MEDIUM, dst_port=502, proto="tcp")


def story() -> list[Event]:
    """A small attack: a scanner sweeping three sites, a PLC beaconing to a listed C2, SSH guessing
    against a jump host over several minutes, an IPv6 probe, and a repeated (duplicate) alert."""
    batch = [event_at(i, src_ip=SCANNER, dst_ip=f"192.0.2.{i + 1}", **MODBUS) for i in range(3)]
    batch += [event_at(10 + i, src_ip=SCANNER, dst_ip=f"10.3.0.{i + 7}", **MODBUS) for i in range(2)]
    batch += [event_at(20 + 60 * i, src_ip=SCANNER, dst_ip=f"198.51.100.{i + 9}", **MODBUS) for i in range(4)]
    batch += [event_at(300 + 30 * i, src_ip="10.2.0.10", src_port=49152 + i, dst_ip=C2, dst_port=443, proto="tcp",
                       signature="ET CNC Feodo Tracker Reported CnC Server group 1", sensor_severity=Severity.HIGH)
              for i in range(3)]
    batch += [event_at(900 + 45 * i, src_ip=BRUTE, dst_ip="10.5.9.9", dst_port=22, proto="tcp",
                       signature="ET SCAN Potential SSH Scan", signature_id="2001219",
                       category="Attempted Information Leak", sensor_severity=Severity.LOW) for i in range(6)]
    batch.append(event_at(1500, src_ip="2001:db8:ffff::1", dst_ip="2001:db8:a:ff::10", dst_port=20000, proto="tcp",
                          signature="ET SCADA DNP3 unsolicited response", sensor_severity=Severity.HIGH))
    batch.append(dataclasses.replace(batch[0]))  # the same alert twice: deduplicated by content hash
    return batch


_STORY = story()  # built once: ``event_at`` numbers each event's raw text, and both databases get the same


def run_story(store: Store, config: Config) -> tuple[list[Event], list[Any]]:
    with store.writer.begin() as conn:
        upsert_indicators(conn, "abuse-test", [Indicator("ipv4", C2, "abuse-test", confidence=90)],
                          run_id=1, now=NOW_MS - 1000, ttl_ms=None, detect=True)
    pipeline = EventPipeline(config, store, clock=lambda: NOW_MS)
    batch = _STORY
    results = [ingest(pipeline, store, batch[:9]), ingest(pipeline, store, batch[9:])]
    return batch, results


def plain(value: Any) -> Any:
    """A comparable form: dataclasses as dicts, frames as (columns, dtypes, records)."""
    if isinstance(value, pd.DataFrame):
        return (list(value.columns), [str(t) for t in value.dtypes],
                [{k: (None if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT else v)
                  for k, v in rec.items()} for rec in value.to_dict("records")])
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def table_rows(store: Store, table: Any, exclude: tuple[str, ...] = ()) -> list[tuple]:
    columns = [c for c in table.columns if c.name not in exclude]
    with store.reader.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(select(*columns)))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path / "config")


def test_store_open_creates_the_schema_and_is_idempotent(pg_store: Store, tmp_path: Path) -> None:
    names = set(inspect(pg_store.writer).get_table_names())
    assert set(metadata.tables) <= names
    with pg_store.reader.connect() as conn:
        assert conn.execute(select(schema_info.c.value).where(schema_info.c.key == "version")).scalar() \
            == str(SCHEMA_VERSION)
        # SQLite's FTS5 search index does not exist on PostgreSQL, and nothing tries to build it.
        assert incident_search.ensure(conn, False) == "unavailable"
        assert incident_search.ensure(conn, True) == "unavailable"
        assert not incident_search.usable(conn)
        assert not incident_search.trigram_available(pg_store.writer)
    assert not {n for n in names if n.startswith("incident_fts")}
    # A second start (another process, a restart) changes nothing and does not fail.
    create_or_upgrade(pg_store.writer)
    again = Store.open(tmp_path / "again")
    try:
        with again.reader.connect() as conn:
            assert conn.execute(select(func.count()).select_from(schema_info)).scalar() >= 1
    finally:
        again.dispose()


def test_coarse_rollups_are_filled_once_from_rollups_on_upgrade(pg_store: Store, config: Config) -> None:
    run_story(pg_store, config)
    before = table_rows(pg_store, rollups_severity), table_rows(pg_store, rollups_pairs)
    assert before[0] and before[1]
    # A store written before the coarse tables existed: rollups, but no coarse rows and no marker.
    with pg_store.writer.begin() as conn:
        conn.execute(rollups_severity.delete())
        conn.execute(rollups_pairs.delete())
        conn.execute(schema_info.delete().where(schema_info.c.key == coarse_rollups.MARKER_KEY))
    create_or_upgrade(pg_store.writer)
    assert (table_rows(pg_store, rollups_severity), table_rows(pg_store, rollups_pairs)) == before
    with pg_store.writer.begin() as conn:
        coarse_rollups.rebuild(conn)
    assert (table_rows(pg_store, rollups_severity), table_rows(pg_store, rollups_pairs)) == before
    create_or_upgrade(pg_store.writer)  # already filled: left alone
    assert (table_rows(pg_store, rollups_severity), table_rows(pg_store, rollups_pairs)) == before


def test_ingest_and_replay_match_sqlite(pg_store: Store, sqlite_store: Store, config: Config) -> None:
    batch, pg_results = run_story(pg_store, config)
    _, lite_results = run_story(sqlite_store, config)
    assert pg_results == lite_results
    assert sum(r.accepted for r in pg_results) == len(batch) - 1
    assert sum(r.duplicates for r in pg_results) == 1

    # Replaying the very same events (a tailer restarting from an old offset) stores nothing twice.
    snapshot = {t.name: table_rows(pg_store, t) for t in (events, incidents, rollups, place_rollups,
                                                          rollups_severity, rollups_pairs)}
    pipeline = EventPipeline(config, pg_store, clock=lambda: NOW_MS)
    replay = ingest(pipeline, pg_store, batch)
    assert (replay.accepted, replay.duplicates, replay.incidents_new, replay.incidents_updated) == (0, len(batch), 0, 0)
    assert {t.name: table_rows(pg_store, t) for t in (events, incidents, rollups, place_rollups,
                                                      rollups_severity, rollups_pairs)} == snapshot

    # Same rows on both databases (ids included: both count from 1 in the same order).
    for table in (incidents, rollups, place_rollups, rollups_severity, rollups_pairs, indicators, sightings):
        assert table_rows(pg_store, table) == table_rows(sqlite_store, table), table.name
    assert table_rows(pg_store, events, ("ingested_at",)) == table_rows(sqlite_store, events, ("ingested_at",))

    with pg_store.reader.connect() as conn:
        beacon = conn.execute(select(events).where(events.c.dst_ip == C2)).first()
    assert Severity(beacon.severity) == Severity.CRITICAL and loads(beacon.indicator_ids)


def test_read_side_matches_sqlite(pg_store: Store, sqlite_store: Store, config: Config) -> None:
    run_story(pg_store, config)
    run_story(sqlite_store, config)
    for now in (NOW_MS, NOW_MS + 6 * 3_600_000, NOW_MS + 30 * 3_600_000):
        assert plain(queries.wall_kpis(pg_store, now)) == plain(queries.wall_kpis(sqlite_store, now))
        assert plain(queries.timeline_24h(pg_store, now)) == plain(queries.timeline_24h(sqlite_store, now))
        assert plain(queries.attack_map(pg_store, config.inventory, now, hours=2)) \
            == plain(queries.attack_map(sqlite_store, config.inventory, now, hours=2))
    kpis = queries.wall_kpis(pg_store, NOW_MS)
    assert sum(kpis.open_by_severity.values()) == 6

    filters = [queries.IncidentFilters(), queries.IncidentFilters(severity=("critical", "high")),
               queries.IncidentFilters(site="plant-a"), queries.IncidentFilters(text="modbus"),
               queries.IncidentFilters(text="MODBUS port"), queries.IncidentFilters(text=SCANNER),
               queries.IncidentFilters(text="185.220"), queries.IncidentFilters(text="50%_"),
               queries.IncidentFilters(text="no such thing")]
    for f in filters:
        for sort in ("-last_seen", "severity", "-event_count"):
            assert plain(queries.incidents_page(pg_store, f, sort)) == plain(queries.incidents_page(sqlite_store, f, sort)), (f, sort)
    found = queries.incidents_page(pg_store, queries.IncidentFilters(text="modbus"))
    assert found.total == 3
    assert queries.incidents_page(pg_store, queries.IncidentFilters(text=SCANNER)).total == 3

    for incident_id in range(1, 8):
        assert plain(queries.incident_by_id(pg_store, incident_id)) == plain(queries.incident_by_id(sqlite_store, incident_id))
        assert plain(queries.events_for_incident(pg_store, incident_id)) \
            == plain(queries.events_for_incident(sqlite_store, incident_id))
        assert plain(queries.incident_log(pg_store, incident_id)) == plain(queries.incident_log(sqlite_store, incident_id))
    assert queries.incident_by_id(pg_store, 99) is None
    for event_id in (1, 10, 14, 20, 99):
        assert plain(queries.event_by_id(pg_store, event_id)) == plain(queries.event_by_id(sqlite_store, event_id))
    assert plain(queries.incident_events(pg_store, 4)) == plain(queries.incident_events(sqlite_store, 4))
    assert plain(queries.indicators_by_ids(pg_store, [1, 2])) == plain(queries.indicators_by_ids(sqlite_store, [1, 2]))
    for severity in ("info", "high"):
        assert plain(queries.recent_incidents(pg_store, severity)) == plain(queries.recent_incidents(sqlite_store, severity))
    assert queries.latest_event_time(pg_store) == queries.latest_event_time(sqlite_store) is not None
    assert plain(queries.data_as_of(pg_store)) == plain(queries.data_as_of(sqlite_store))
    assert plain(queries.source_places(pg_store, config.inventory, NOW_MS, hours=2)) \
        == plain(queries.source_places(sqlite_store, config.inventory, NOW_MS, hours=2))


def test_indicator_upsert_is_idempotent(pg_store: Store, sqlite_store: Store) -> None:
    records = [Indicator("ipv4", "198.18.0.1", "feed-x", confidence=70),
               Indicator("domain", "evil.example", "feed-x", confidence=50),
               Indicator("cidr", "203.0.113.0/24", "feed-x")]
    counts = []
    for store in (pg_store, sqlite_store):
        with store.writer.begin() as conn:
            first = upsert_indicators(conn, "feed-x", records, run_id=1, now=NOW_MS, ttl_ms=None, detect=True)
            second = upsert_indicators(conn, "feed-x", records, run_id=2, now=NOW_MS + 1, ttl_ms=None, detect=True)
            # A second source listing one of them: new for that source (a sighting of its own).
            other = upsert_indicators(conn, "feed-y", records[:1], run_id=3, now=NOW_MS + 2, ttl_ms=None, detect=True)
        counts.append((first, second, other))
    assert counts[0] == counts[1]
    first, second, other = counts[0]
    assert (first.new, second.new, second.updated, other.new) == (3, 0, 3, 1)
    assert len(table_rows(pg_store, indicators)) == 3
    assert table_rows(pg_store, indicators) == table_rows(sqlite_store, indicators)
    assert table_rows(pg_store, sightings) == table_rows(sqlite_store, sightings)
    assert len(table_rows(pg_store, sightings)) == 4


def test_advisory_upsert_and_exposures(pg_store: Store, sqlite_store: Store, config: Config) -> None:
    published = datetime(2026, 10, 1, tzinfo=timezone.utc)
    records = [Advisory("ICSA-26-001", "kev", "CVE-2026-0001", "Siemens", "SIMATIC S7-1500", "PLC flaw",
                        versions=("<3.0",), cvss=9.8, published=published, known_exploited=True),
               Advisory("ICSA-26-002", "kev", "CVE-2026-0002", "Schneider Electric", "Modicon M340", "RTU flaw",
                        cvss=7.5, published=published),
               Advisory("ICSA-26-003", "kev", "CVE-2026-0003", "Nobody", "Nothing", "unrelated")]
    counts = []
    for store in (pg_store, sqlite_store):
        with store.writer.begin() as conn:
            first = upsert_advisories(conn, "kev", records, run_id=1)
            again = upsert_advisories(conn, "kev", records, run_id=2)
        found = recompute_exposures(store, config.inventory, NOW_MS)
        repeat = recompute_exposures(store, config.inventory, NOW_MS + 1)
        counts.append((first, again, found, repeat))
    assert counts[0] == counts[1]
    first, again, found, repeat = counts[0]
    assert (first.new, again.new) == (3, 0)
    assert found.new == 2 and repeat.new == 0 and repeat.still == 2
    assert table_rows(pg_store, advisories) == table_rows(sqlite_store, advisories)
    assert table_rows(pg_store, exposures) == table_rows(sqlite_store, exposures)
    assert plain(queries.exposure_findings(pg_store)) == plain(queries.exposure_findings(sqlite_store))
    assert plain(queries.exposure_summary(pg_store)) == plain(queries.exposure_summary(sqlite_store))


def test_officer_actions(pg_store: Store, sqlite_store: Store, config: Config) -> None:
    for store in (pg_store, sqlite_store):
        run_story(store, config)
        with store.writer.begin() as conn:
            set_incident_status(conn, 1, "acknowledged", "alice", NOW_MS + 1, note="looking")
            assign_incident(conn, 1, "bob", "alice", NOW_MS + 2)
            add_incident_note(conn, 1, "called the site", "bob", NOW_MS + 3)
            set_incident_status(conn, 1, "resolved", "bob", NOW_MS + 4)
        with store.writer.begin() as conn, pytest.raises(ValueError):
            set_incident_status(conn, 1, "false_positive", "bob", NOW_MS + 5)
    with pg_store.reader.connect() as conn:
        log = incident_log_entries(conn, 1)
    assert [(e.actor, e.action) for e in log] == [("alice", "status"), ("alice", "assign"), ("bob", "note"),
                                                  ("bob", "status")]
    assert plain(queries.incident_log(pg_store, 1)) == plain(queries.incident_log(sqlite_store, 1))
    assert plain(queries.incident_by_id(pg_store, 1)) == plain(queries.incident_by_id(sqlite_store, 1))
    detail = queries.incident_by_id(pg_store, 1)
    assert (detail.status, detail.assignee) == ("resolved", "bob")
    assert sum(queries.wall_kpis(pg_store, NOW_MS).open_by_severity.values()) == 5


def test_an_older_store_gains_the_missing_columns(pg_store: Store, tmp_path: Path) -> None:
    """``create_or_upgrade`` adds the columns an older release did not have, defaults included."""
    with pg_store.writer.begin() as conn:
        conn.execute(indicators.insert().values(type="ipv4", value="198.18.0.9", first_seen=1, last_seen=1,
                                              updated_at=1))
        for table, column in (("indicators", "matchable"), ("advisories", "known_exploited"),
                              ("advisories", "vendor"), ("incidents", "status"), ("feed_runs", "parsed"),
                              ("incidents", "src_city")):
            conn.exec_driver_sql(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    create_or_upgrade(pg_store.writer)
    columns = {(t, c["name"]): c for t in ("indicators", "advisories", "incidents", "feed_runs")
               for c in inspect(pg_store.writer).get_columns(t)}
    assert {("indicators", "matchable"), ("advisories", "known_exploited"), ("advisories", "vendor"),
            ("incidents", "status"), ("feed_runs", "parsed"), ("incidents", "src_city")} <= set(columns)
    with pg_store.reader.connect() as conn:
        assert conn.execute(select(indicators.c.matchable)).scalar() is True


def test_two_feeds_storing_the_same_new_indicator_at_once(pg_store: Store) -> None:
    """Two collector processes (two feeds) list the same new indicator in overlapping transactions:
    the second waits for the first and then shares its row instead of failing on the unique key."""
    import threading

    record = [Indicator("ipv4", "185.220.101.77", "x", confidence=60)]
    first = pg_store.writer.connect()
    tx = first.begin()
    upsert_indicators(first, "feed-a", record, run_id=1, now=NOW_MS, ttl_ms=None, detect=True)
    outcome: list[Any] = []

    def second_feed() -> None:
        try:
            with pg_store.writer.begin() as conn:
                outcome.append(upsert_indicators(conn, "feed-b", record, run_id=2, now=NOW_MS, ttl_ms=None,
                                                 detect=True))
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            outcome.append(exc)

    worker = threading.Thread(target=second_feed)
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # waiting on the first transaction's row
    tx.commit()
    first.close()
    worker.join(10)
    [counts] = outcome
    assert not isinstance(counts, Exception), counts
    assert counts.new == 1
    assert len(table_rows(pg_store, indicators)) == 1
    assert len(table_rows(pg_store, sightings)) == 2


def test_two_sensor_processes_ingesting_at_once_share_one_incident(pg_store: Store, config: Config) -> None:
    """Two collector processes ingest alerts of the same group key (signature, source, site) in
    overlapping transactions: the second waits for the first, then adds to its incident."""
    import threading

    alert = dict(src_ip="92.63.197.153", dst_ip="10.5.9.9", dst_port=22, proto="tcp",
                 signature="ET SCAN Potential SSH Scan", sensor_severity=Severity.MEDIUM)
    first_pipeline = EventPipeline(config, pg_store, clock=lambda: NOW_MS)
    second_pipeline = EventPipeline(config, pg_store, clock=lambda: NOW_MS)
    first = pg_store.writer.connect()
    tx = first.begin()
    first_pipeline.ingest(first, [event_at(i, sensor="ids-1", **alert) for i in range(3)], NOW_MS)
    outcome: list[Any] = []

    def second_sensor() -> None:
        try:
            outcome.append(ingest(second_pipeline, pg_store, [event_at(10 + i, sensor="ids-2", **alert)
                                                              for i in range(2)]))
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            outcome.append(exc)

    worker = threading.Thread(target=second_sensor)
    worker.start()
    worker.join(0.5)
    tx.commit()
    first.close()
    worker.join(10)
    [result] = outcome
    assert not isinstance(result, Exception), result
    assert (result.incidents_new, result.incidents_updated) == (0, 1)
    assert len(table_rows(pg_store, incidents)) == 1
    with pg_store.reader.connect() as conn:
        assert conn.execute(select(incidents.c.event_count)).scalar() == 5
        assert conn.execute(select(func.sum(rollups.c.events))).scalar() == 5
