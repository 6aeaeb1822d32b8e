"""A store written before the coarse rollups and the incident search index existed: the first open of a
newer watchfloor fills them from what is stored, once, so the wall and the search are right at once."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import func, select

from store import coarse_rollups, incident_search, queries
from store.db import Store, create_or_upgrade
from store.events_write import upsert_rollups
from store.queries import IncidentFilters
from store.schema import rollups, rollups_pairs, rollups_severity, schema_info

NOW = 1_800_000_000_000  # on the hour
MIN = 60_000
HOUR = 3_600_000


def _older_store(folder: Path) -> None:
    """What an older release leaves: no coarse tables, no marker, no search index; rows it wrote."""
    Store.open(folder).dispose()
    db = sqlite3.connect(folder / "watchfloor.db")
    db.executescript(f"""
        DROP TABLE rollups_severity; DROP TABLE rollups_pairs;
        DELETE FROM schema_info WHERE key = '{coarse_rollups.MARKER_KEY}';
        DROP TRIGGER incidents_fts_insert; DROP TRIGGER incidents_fts_delete; DROP TRIGGER incidents_fts_update;
        DROP TABLE incidents_fts; DROP INDEX ix_incidents_title;
    """)
    minute_rows = [(NOW - k * 7 * MIN, k % 5, ("plant-a", "water-b", "")[k % 3], "energy", ("CN", "RU", "")[k % 2],
                    k + 1) for k in range(60)]  # 7 hours, windows and blocks cut everywhere
    db.executemany("INSERT INTO rollups (minute, severity, site, sector, src_country, events) VALUES (?,?,?,?,?,?)",
                   minute_rows)
    db.executemany("INSERT INTO incidents (id, group_key, title, sources, first_seen, last_seen, event_count, severity,"
                   " score, status, updated_at) VALUES (?,?,?,?,?,?,1,2,40,'new',?)",
                   [(i, f"k{i}", title, sources, NOW - i * MIN, NOW - i * MIN, NOW)
                    for i, (title, sources) in enumerate([("ET SCAN Potential SSH Scan", '["203.0.113.5"]'),
                                                          ("Modbus write from outside", '["198.51.100.7"]'),
                                                          ("ET EXPLOIT log4j attempt", None)], start=1)])
    db.commit()
    db.close()


def _coarse(conn):
    return (conn.execute(select(rollups_severity).order_by(*rollups_severity.primary_key)).all(),
            conn.execute(select(rollups_pairs).order_by(*rollups_pairs.primary_key)).all())


def test_first_open_fills_the_coarse_rollups_and_the_search_index_once(tmp_path: Path) -> None:
    _older_store(tmp_path)
    store = Store.open(tmp_path)
    with store.reader.connect() as conn:
        severity_rows, pair_rows = _coarse(conn)
        minute_total = conn.execute(select(func.sum(rollups.c.events))).scalar()
        by_minute = conn.execute(select(rollups.c.minute, func.sum(rollups.c.events)).group_by(rollups.c.minute)).all()
        marker = select(schema_info.c.value).where(schema_info.c.key == coarse_rollups.MARKER_KEY)
        assert conn.execute(marker).scalar() == coarse_rollups.MARKER_VALUE
        assert incident_search.usable(conn) and incident_search.candidate_count(conn, "modbus") == 1
    assert minute_total == sum(range(1, 61))
    for span in coarse_rollups.SEVERITY_SPANS:
        assert sum(row.events for row in severity_rows if row.span == span) == minute_total
    assert {row.start for row in severity_rows if row.span == MIN} == {m for m, _ in by_minute}
    for span in coarse_rollups.PAIR_SPANS:
        assert sum(row.events for row in pair_rows if row.span == span) == minute_total
    assert {row.span for row in pair_rows} == set(coarse_rollups.PAIR_SPANS)

    # The wall shows the stored events at once: the last hour and the one before, from the minute rows.
    kpis = queries.wall_kpis(store, NOW + 17 * MIN)
    with store.reader.connect() as conn:
        def minutes(first, last):
            return conn.execute(select(func.coalesce(func.sum(rollups.c.events), 0))
                                .where(rollups.c.minute >= first, rollups.c.minute <= last)).scalar()
        last = NOW + 17 * MIN
        assert kpis.events_last_hour == minutes(last - 59 * MIN, last) > 0
        assert kpis.events_prev_hour == minutes(last - 119 * MIN, last - 60 * MIN) > 0
    assert queries.incidents_page(store, IncidentFilters(text="LOG4J")).rows["id"].tolist() == [3]
    assert queries.incidents_page(store, IncidentFilters(text="198.51.100")).rows["id"].tolist() == [2]

    # Opening again changes nothing (no second copy of the counts), and later batches add on top.
    create_or_upgrade(store.writer)
    store.dispose()
    store = Store.open(tmp_path)
    with store.reader.connect() as conn:
        assert _coarse(conn) == (severity_rows, pair_rows)
    with store.writer.begin() as conn:
        upsert_rollups(conn, {(NOW - 7 * MIN, 1, "water-b", "water", "RU"): 5})
    with store.reader.connect() as conn:
        again = _coarse(conn)
    assert sum(row.events for row in again[0] if row.span == MIN) == minute_total + 5
    assert sum(row.events for row in again[1] if row.span == HOUR) == minute_total + 5
    store.dispose()


def test_a_rebuild_interrupted_before_its_commit_leaves_no_marker(tmp_path: Path) -> None:
    _older_store(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'watchfloor.db'}")
    from store.schema import metadata

    metadata.create_all(store.writer)
    try:
        with store.writer.begin() as conn:
            assert coarse_rollups.ensure(conn) is True
            raise RuntimeError("killed mid-upgrade")
    except RuntimeError:
        pass
    with store.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rollups_severity)).scalar() == 0
        assert conn.execute(select(schema_info.c.value).where(schema_info.c.key == coarse_rollups.MARKER_KEY)).first() \
            is None
    create_or_upgrade(store.writer)  # the next start does it
    with store.reader.connect() as conn:
        assert conn.execute(select(func.sum(rollups_severity.c.events))
                            .where(rollups_severity.c.span == MIN)).scalar() == sum(range(1, 61))
    store.dispose()


def test_a_search_index_of_another_layout_is_replaced_and_rebuilt(tmp_path: Path) -> None:
    _older_store(tmp_path)
    db = sqlite3.connect(tmp_path / "watchfloor.db")  # e.g. one that also indexed the titles
    db.execute("CREATE VIRTUAL TABLE incidents_fts USING fts5(title, sources, content='incidents', "
               "content_rowid='id', tokenize='trigram')")
    db.close()
    store = Store.open(tmp_path)
    with store.writer.begin() as conn:
        assert incident_search.ensure(conn, available=True) == "present"
        layout = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'incidents_fts'").scalar()
    assert "fts5(sources," in layout
    assert queries.incidents_page(store, IncidentFilters(text="203.0.113")).rows["id"].tolist() == [1]
    assert queries.incidents_page(store, IncidentFilters(text="modbus WRITE")).rows["id"].tolist() == [2]
    store.dispose()
