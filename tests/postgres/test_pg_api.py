"""GET /api/incidents and /api/incidents/<id> served from PostgreSQL: the same answers as from SQLite."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apitestkit import Clock, write_api_config
from pipeline_testkit import NOW_MS, event_at, ingest

import api
from app import create_app
from pipeline.ingest import EventPipeline
from runtime.context import Runtime
from settings.loader import Config, load_config
from store.db import Store
from store.events_write import set_incident_status
from store.records import Severity

pytestmark = pytest.mark.usefixtures("dash_globals")  # the app serves requests (tests/conftest.py)

SCANNER = "45.33.32.156"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return write_api_config(tmp_path / "config")


@pytest.fixture
def config(config_dir: Path) -> Config:
    loaded = load_config(config_dir)
    assert loaded.problems == []
    return loaded


def fill(store: Store, config: Config) -> None:
    pipeline = EventPipeline(config, store, clock=lambda: NOW_MS)
    ingest(pipeline, store, EVENTS)
    with store.writer.begin() as conn:
        set_incident_status(conn, 2, "acknowledged", "alice", NOW_MS)


EVENTS = ([event_at(i, src_ip=SCANNER, dst_ip=f"192.0.2.{i + 1}", dst_port=502, proto="tcp",
                    signature="ET SCAN Suspicious inbound to Modbus port 502", sensor_severity=Severity.MEDIUM)
           for i in range(3)]
          + [event_at(60 + i, src_ip="92.63.197.153", dst_ip="10.5.9.9", dst_port=22, proto="tcp",
                      signature="ET SCAN Potential SSH Scan", sensor_severity=Severity.LOW) for i in range(2)]
          + [event_at(120, src_ip="10.2.0.10", dst_ip="185.220.101.1", dst_port=443, proto="tcp",
                      signature="ET CNC Feodo Tracker Reported CnC Server group 1", sensor_severity=Severity.HIGH)])


def client_for(config_dir: Path, config: Config, store: Store, data_dir: Path) -> Any:
    app = create_app(Runtime(config_dir, data_dir, config, store, clock=Clock(NOW_MS)))
    if "api" not in app.server.blueprints:
        app.server.register_blueprint(api.blueprint)
    return app.server.test_client()


QUERIES = ["", "?severity=high,critical", "?status=acknowledged", "?q=modbus", "?q=SSH%20scan", f"?q={SCANNER}",
           "?sort=severity", "?sort=-event_count&page_size=2", "?site=plant-a", "?page_size=1&page=2"]


def test_incident_list_and_detail_match_sqlite(pg_store: Store, sqlite_store: Store, config_dir: Path,
                                               config: Config, tmp_path: Path) -> None:
    fill(pg_store, config)
    fill(sqlite_store, config)
    pg = client_for(config_dir, config, pg_store, tmp_path / "pg-data")
    lite = client_for(config_dir, config, sqlite_store, tmp_path / "sqlite-data")
    for query in QUERIES:
        answer = pg.get(f"/api/incidents{query}")
        assert answer.status_code == 200, (query, answer.get_json())
        assert answer.get_json() == lite.get(f"/api/incidents{query}").get_json(), query
    assert len(pg.get("/api/incidents").get_json()["items"]) == 3
    assert [item["title"] for item in pg.get("/api/incidents?q=modbus").get_json()["items"]] \
        == ["ET SCAN Suspicious inbound to Modbus port 502"]
    for incident_id in (1, 2, 3):
        detail = pg.get(f"/api/incidents/{incident_id}")
        assert detail.status_code == 200
        assert detail.get_json() == lite.get(f"/api/incidents/{incident_id}").get_json()
    assert pg.get("/api/incidents/99").status_code == 404
