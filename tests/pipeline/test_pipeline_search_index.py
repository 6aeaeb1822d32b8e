"""The pipeline's incident updates keep the search index current, and skip it when no source changed."""
from __future__ import annotations

from pathlib import Path

from pipeline_testkit import NOW_MS, event_at, ingest, write_config
from sqlalchemy import event as sa_event, select

from pipeline.ingest import EventPipeline
from store import incident_search, queries
from store.db import Store
from store.queries import IncidentFilters
from store.records import Severity
from store.schema import incidents

ALERT = {"signature": "ET SCAN Modbus probe", "signature_id": "2000001", "sensor_severity": Severity.MEDIUM,
         "dst_ip": "10.1.1.10", "dst_port": 502, "proto": "tcp"}


def found(store: Store, text: str) -> list[int]:
    return queries.incidents_page(store, IncidentFilters(text=text)).rows["id"].tolist()


def test_a_source_joining_an_incident_is_searchable_and_repeats_leave_sources_alone(tmp_path: Path) -> None:
    # Grouped without the source address, so one incident collects several sources.
    config = write_config(tmp_path / "config", "incidents: {group_by: [signature, site], window: 1h}\n")
    store = Store.open(tmp_path / "data")
    pipeline = EventPipeline(config, store, clock=lambda: NOW_MS)
    statements: list[str] = []
    sa_event.listen(store.writer, "before_cursor_execute",
                    lambda conn, cursor, sql, params, context, many: statements.append(sql))

    ingest(pipeline, store, [event_at(0, src_ip="185.220.101.4", **ALERT)])
    ingest(pipeline, store, [event_at(60, src_ip="45.155.205.99", **ALERT)])
    with store.reader.connect() as conn:
        assert incident_search.usable(conn)
    [incident_id] = found(store, "185.220.101.4")
    assert found(store, "45.155.205") == [incident_id]          # the joining source, through the index
    assert any("UPDATE incidents SET" in s and " sources = ?" in s for s in statements)

    statements.clear()
    ingest(pipeline, store, [event_at(120, src_ip="185.220.101.4", **ALERT)])   # a known source again
    updates = [s for s in statements if s.startswith("UPDATE incidents SET")]
    assert updates and all(" sources = ?" not in s for s in updates)
    with store.reader.connect() as conn:
        row = conn.execute(select(incidents.c.event_count, incidents.c.sources, incidents.c.last_seen)
                           .where(incidents.c.id == incident_id)).one()
    assert row.event_count == 3 and row.sources == '["185.220.101.4","45.155.205.99"]'
    assert found(store, "45.155.205") == [incident_id] and found(store, "185.220.101") == [incident_id]
