"""City GeoIP end to end: ``GeoIP`` with a real ``.mmdb``, the pipeline's events, incidents and place
rollups in a real SQLite store, the runtime that opens the configured database, and an older store."""
from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import maxminddb
import pytest
from citydb_testkit import (
    LONDON_AT, LONDON_IP, REGISTERED_IP, SPECIAL_NETWORKS, TOKYO_AT, TOKYO_IP, UNNAMED_AT, UNNAMED_IP, write_city_db,
)
from pipeline_testkit import NOW_MS, T0, event_at, ingest, write_config
from sqlalchemy import func, select

from pipeline.geoip import GLOBAL, GeoInfo, GeoIP
from pipeline.geoip_city import CityDatabase
from pipeline.ingest import EventPipeline, configured_geoip
from settings.loader import load_config
from store.coarse_rollups import PAIR_SPANS
from store.db import Store
from store.records import Severity
from store.schema import events, incidents, place_rollups, rollups

PLC = "10.2.0.10"               # plant-a, OT zone "control", asset a-plc
RTU6 = "2001:db8:a:ff::10"      # plant-a, OT zone "control", asset a-rtu6
HISTORIAN = "10.1.0.30"         # plant-a, IT zone "corporate"
SETTINGS = "incidents: {group_by: [signature, src_ip, site], window: 1h}\n"


@pytest.fixture
def city_path(tmp_path: Path) -> Path:
    return write_city_db(tmp_path / "GeoLite2-City.mmdb")


@pytest.fixture
def geoip(city_path: Path):
    city = CityDatabase.open(city_path, cache_size=0)
    yield GeoIP(city=city)
    city.close()


@pytest.fixture
def city_config(tmp_path: Path):
    folder = tmp_path / "config"
    folder.mkdir()
    write_city_db(folder / "GeoLite2-City.mmdb")  # relative in settings.yaml: next to it
    return write_config(folder, SETTINGS + "geoip_city_database: GeoLite2-City.mmdb\n")


# --- GeoIP ------------------------------------------------------------------------------------------

def test_a_city_database_adds_city_and_coordinates_for_ipv4_and_ipv6(geoip: GeoIP) -> None:
    london = geoip.lookup(LONDON_IP)
    assert london == GeoInfo(GLOBAL, "GB", "Andrews & Arnold Ltd", "London", *LONDON_AT, 10)
    assert london.has_coordinates
    # The embedded data says US for this address; the city database's country goes with its coordinates.
    assert geoip.lookup(TOKYO_IP) == GeoInfo(GLOBAL, "JP", None, "Tokyo", *TOKYO_AT, 50)
    assert geoip.lookup(f"::ffff:{LONDON_IP}") == london
    assert geoip.lookup(UNNAMED_IP) == GeoInfo(GLOBAL, "SE", "Bredband2 AB", None, *UNNAMED_AT, None)


def test_special_ranges_never_get_coordinates_even_where_the_database_has_some(geoip: GeoIP, city_path: Path) -> None:
    with maxminddb.open_database(str(city_path)) as reader:  # the file does place them (at "Nowhere")
        assert all(reader.get(net.split("/")[0])["city"]["names"]["en"] == "Nowhere" for net in SPECIAL_NETWORKS)
    for ip, scope in (("10.1.2.3", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
                      ("100.64.0.1", "cgnat"), ("192.0.2.1", "documentation"), ("127.0.0.1", "loopback"),
                      ("::ffff:10.0.0.1", "private"), ("not an address", "invalid")):
        found = geoip.lookup(ip)
        assert found.scope == scope, ip
        assert (found.country, found.city, found.latitude, found.longitude) == (None, None, None, None), ip


def test_an_address_without_a_location_keeps_the_embedded_country(geoip: GeoIP) -> None:
    found = geoip.lookup(REGISTERED_IP)  # the database has only registered_country US for it
    assert (found.country, found.city, found.has_coordinates) == ("CN", None, False)
    assert geoip.lookup("8.8.8.8").has_coordinates is False  # not in the database at all


def test_without_a_city_database_nothing_is_located(config) -> None:
    plain = configured_geoip(config)
    assert plain.city is None
    found = plain.lookup(LONDON_IP)
    assert (found.country, found.city, found.latitude, found.longitude) == ("GB", None, None, None)
    store = Store("sqlite://")
    try:
        assert EventPipeline(config, store).geoip.city is None
    finally:
        store.dispose()


def test_answers_are_cached_per_address_and_the_city_database_asked_once(geoip: GeoIP) -> None:
    for _ in range(3):
        geoip.lookup(LONDON_IP)
    assert geoip.lookup.cache_info().hits == 2
    assert geoip.city.lookup.cache_info().misses == 1  # opened with cache_size=0: every call is a miss


# --- the pipeline and the store ---------------------------------------------------------------------

def _alert(seconds: float, src: str, dst: str, **fields) -> object:
    fields.setdefault("signature", "ET SCADA Modbus Write Multiple Registers from external host")
    fields.setdefault("sensor_severity", Severity.HIGH)
    return event_at(seconds, src_ip=src, dst_ip=dst, dst_port=502, proto="tcp", **fields)


def _rows(store: Store, table, *columns, order=None):
    with store.reader.connect() as conn:
        statement = select(*[table.c[name] for name in columns])
        return conn.execute(statement.order_by(*(order or [table.c[columns[0]]]))).all()


def test_ingested_events_and_incidents_carry_the_source_city(city_config, store: Store) -> None:
    pipeline = EventPipeline(city_config, store, clock=lambda: NOW_MS)  # the configured database, as in production
    assert pipeline.geoip.city is not None and pipeline.geoip.city.path == str(city_config.folder / "GeoLite2-City.mmdb")
    result = ingest(pipeline, store, [
        _alert(1, LONDON_IP, PLC), _alert(2, LONDON_IP, PLC), _alert(3, TOKYO_IP, RTU6),
        _alert(4, REGISTERED_IP, PLC), _alert(5, HISTORIAN, PLC), _alert(6, UNNAMED_IP, PLC),
    ])
    assert result.accepted == 6
    stored = {(r.src_ip, r.ts): r for r in _rows(store, events, "src_ip", "ts", "src_country", "src_city", "src_lat",
                                                   "src_lon", "incident_id")}
    by_ip = {ip: r for (ip, _ts), r in stored.items()}
    assert (by_ip[LONDON_IP].src_country, by_ip[LONDON_IP].src_city, by_ip[LONDON_IP].src_lat,
            by_ip[LONDON_IP].src_lon) == ("GB", "London", *LONDON_AT)
    assert (by_ip[TOKYO_IP].src_country, by_ip[TOKYO_IP].src_city, by_ip[TOKYO_IP].src_lat,
            by_ip[TOKYO_IP].src_lon) == ("JP", "Tokyo", *TOKYO_AT)
    assert (by_ip[UNNAMED_IP].src_city, by_ip[UNNAMED_IP].src_lat, by_ip[UNNAMED_IP].src_lon) == (None, *UNNAMED_AT)
    assert (by_ip[REGISTERED_IP].src_country, by_ip[REGISTERED_IP].src_city, by_ip[REGISTERED_IP].src_lat) == (
        "CN", None, None)
    assert (by_ip[HISTORIAN].src_country, by_ip[HISTORIAN].src_city, by_ip[HISTORIAN].src_lat) == (None, None, None)

    located = {r.src_ip: r for r in _rows(store, incidents, "src_ip", "event_count", "src_country", "src_city",
                                          "src_lat", "src_lon")}
    assert (located[LONDON_IP].event_count, located[LONDON_IP].src_city, located[LONDON_IP].src_lat,
            located[LONDON_IP].src_lon) == (2, "London", *LONDON_AT)
    assert (located[TOKYO_IP].src_country, located[TOKYO_IP].src_city) == ("JP", "Tokyo")
    assert (located[REGISTERED_IP].src_country, located[REGISTERED_IP].src_city, located[REGISTERED_IP].src_lat) == (
        "CN", None, None)

    # The map's counts: per site x place over minute, 10-minute and hour blocks (T0 starts all three),
    # only for located sources; the plain rollups count every event.
    places = _rows(store, place_rollups, "src_country", "src_city", "src_lat", "src_lon", "site", "events", "severity",
                   "span", "start")
    start = int(T0.timestamp() * 1000)
    assert {(r.src_country, r.src_city, r.src_lat, r.src_lon, r.site, r.events, r.span, r.start) for r in places} == {
        row + (span, start) for span in PAIR_SPANS for row in (
            ("GB", "London", *LONDON_AT, "plant-a", 2), ("JP", "Tokyo", *TOKYO_AT, "plant-a", 1),
            ("SE", "", *UNNAMED_AT, "plant-a", 1))}
    with store.reader.connect() as conn:
        assert conn.execute(select(func.sum(rollups.c.events))).scalar() == 6
        worst = conn.execute(select(func.max(events.c.severity)).where(events.c.src_ip == LONDON_IP)).scalar()
    assert {r.src_city: r.severity for r in places}["London"] == worst


def test_a_later_batch_adds_to_the_place_counts_and_keeps_the_incident_place(city_config, store: Store) -> None:
    ingest(EventPipeline(city_config, store, clock=lambda: NOW_MS), store, [_alert(1, LONDON_IP, PLC)])
    # A new process (nothing cached): the incident is read back from the store and updated.
    ingest(EventPipeline(city_config, store, clock=lambda: NOW_MS), store,
           [_alert(20, LONDON_IP, PLC, sensor_severity=Severity.CRITICAL)])
    [incident] = _rows(store, incidents, "event_count", "src_country", "src_city", "src_lat", "src_lon")
    assert tuple(incident) == (2, "GB", "London", *LONDON_AT)
    places = _rows(store, place_rollups, "span", "events", "severity", "src_city")
    with store.reader.connect() as conn:
        worst = conn.execute(select(func.max(events.c.severity))).scalar()
    assert sorted(tuple(r) for r in places) == [(span, 2, worst, "London") for span in sorted(PAIR_SPANS)]


def test_without_a_city_database_events_have_no_place_and_no_place_rollups(pipeline: EventPipeline,
                                                                           store: Store) -> None:
    assert pipeline.geoip.city is None
    ingest(pipeline, store, [_alert(1, LONDON_IP, PLC), _alert(2, TOKYO_IP, RTU6)])
    assert {tuple(r) for r in _rows(store, events, "src_country", "src_city", "src_lat", "src_lon")} == {
        ("GB", None, None, None), ("US", None, None, None)}
    assert _rows(store, place_rollups, "events") == []
    assert {tuple(r) for r in _rows(store, incidents, "src_city", "src_lat")} == {(None, None)}


def test_an_unusable_city_database_is_left_out_with_a_warning(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "config"
    write_config(folder)
    (folder / "settings.yaml").write_text(SETTINGS + "geoip_city_database: missing/GeoLite2-City.mmdb\n")
    config = load_config(folder)
    assert [p.field for p in config.problems] == ["geoip_city_database"]
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest"):
        geoip = configured_geoip(config)
    assert geoip.city is None and geoip.lookup(LONDON_IP).country == "GB"
    assert "no such file" in caplog.text


# --- the runtime: the ingest command builds the pipeline with the configured database -----------------

def test_the_ingest_command_stores_source_cities(city_config, tmp_path: Path, capsys) -> None:
    from runtime.cli import main

    log = tmp_path / "eve.json"
    lines = []
    for n, src in enumerate((LONDON_IP, TOKYO_IP, "10.9.9.9")):
        lines.append(json.dumps({
            "timestamp": f"2026-11-22T10:00:0{n}.000000+0000", "event_type": "alert", "src_ip": src, "src_port": 4444,
            "dest_ip": PLC, "dest_port": 502, "proto": "TCP",
            "alert": {"signature_id": 9100001 + n, "signature": "ET SCADA Modbus write", "category": "x", "severity": 1},
        }))
    log.write_text("\n".join(lines) + "\n")
    data = tmp_path / "data"
    assert main(["ingest", "--format", "suricata-eve", str(log), "--json", "--config", str(city_config.folder),
                 "--data", str(data)], create_app=lambda runtime: None) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 3
    store = Store.open(data)
    try:
        found = {r.src_ip: tuple(r)[1:] for r in _rows(store, events, "src_ip", "src_city", "src_lat", "src_lon")}
        assert found == {LONDON_IP: ("London", *LONDON_AT), TOKYO_IP: ("Tokyo", *TOKYO_AT),
                         "10.9.9.9": (None, None, None)}
        assert {r.src_city for r in _rows(store, incidents, "src_city")} == {"London", "Tokyo", None}
    finally:
        store.dispose()


# --- an older store ---------------------------------------------------------------------------------

def test_an_older_store_gains_the_place_columns_and_table(city_config, tmp_path: Path) -> None:
    data = tmp_path / "old"
    Store.open(data).dispose()
    database = sqlite3.connect(data / "watchfloor.db")
    for table in ("events", "incidents"):  # what a release before city GeoIP wrote
        for column in ("src_city", "src_lat", "src_lon"):
            database.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    database.execute("DROP TABLE place_rollups")
    database.commit()
    database.close()

    store = Store.open(data)
    try:
        ingest(EventPipeline(city_config, store, clock=lambda: NOW_MS), store, [_alert(1, LONDON_IP, PLC)])
        assert [tuple(r) for r in _rows(store, events, "src_city", "src_lat", "src_lon")] == [("London", *LONDON_AT)]
        assert [tuple(r) for r in _rows(store, incidents, "src_city")] == [("London",)]
        assert [r.events for r in _rows(store, place_rollups, "events")] == [1] * len(PAIR_SPANS)
    finally:
        store.dispose()
