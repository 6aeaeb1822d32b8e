"""GET /api/sources and GET /api/health: freshness states, the monitoring status and its HTTP code."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from apitestkit import record_run
from pipeline_testkit import NOW_MS, event_at, ingest

from app import create_app
from panels.context import AppContext
from pipeline.ingest import EventPipeline
from runtime.context import Runtime
from store.db import Store
from store.records import Severity

MIN = 60_000
ISO_NOW = "2026-11-22T11:00:00Z"


def sensor_event(store, config, at_ms: int) -> None:
    """One alert from the enabled sensor ids-1, through the real pipeline."""
    pipeline = EventPipeline(config, store, clock=lambda: NOW_MS)
    seconds = (at_ms - (NOW_MS - 3_600_000)) / 1000  # event_at counts from T0 = NOW_MS - 1 h
    ingest(pipeline, store, [event_at(seconds, sensor="ids-1", src_ip="45.33.32.156", dst_ip="10.1.0.30",
                                      signature="ET SCAN probe", sensor_severity=Severity.MEDIUM)])


@pytest.fixture
def healthy(client, store, config):
    """The sensor's newest event 30 s ago, the feed fetched 10 min ago: every enabled source live."""
    sensor_event(store, config, NOW_MS - 30_000)
    record_run(store, "ids-1", NOW_MS - 5_000)
    record_run(store, "feed-1", NOW_MS - 10 * MIN, records=1234)
    return client


def test_sources_lists_every_configured_source_with_its_state(healthy, store):
    record_run(store, "feed-1", NOW_MS - 4 * MIN, outcome="failed", error="HTTP 503 from the feed host")
    record_run(store, "feed-1", NOW_MS - 2 * MIN, outcome="failed", error="HTTP 503 from the feed host")
    response = healthy.get("/api/sources")
    assert response.status_code == 200
    body = response.get_json()
    assert body["generated_at"] == ISO_NOW and body["total"] == 3
    by_id = {s["id"]: s for s in body["items"]}
    assert [s["id"] for s in body["items"]] == ["feed-1", "ids-1", "old-feed"]  # config order

    feed = by_id["feed-1"]
    assert {k: feed[k] for k in ("name", "provider", "kind", "format", "enabled", "demo", "state", "last_outcome",
                                 "last_error", "consecutive_failures", "records")} == {
        "name": "Test blocklist", "provider": "test", "kind": "feed", "format": "lines", "enabled": True,
        "demo": False, "state": "failed", "last_outcome": "failed", "last_error": "HTTP 503 from the feed host",
        "consecutive_failures": 2, "records": 1234}
    assert "failed 2 times" in feed["reason"]
    assert feed["last_success"] == feed["as_of"] == "2026-11-22T10:50:00Z"
    assert feed["last_attempt"] == "2026-11-22T10:58:00Z"
    assert feed["age_seconds"] == 600 and feed["cadence_seconds"] == 3600

    sensor = by_id["ids-1"]
    assert (sensor["kind"], sensor["format"], sensor["state"]) == ("sensor", "suricata-eve", "live")
    assert sensor["as_of"] == sensor["newest_record"] == "2026-11-22T10:59:30Z"
    assert sensor["last_outcome"] == "ok" and sensor["last_error"] is None

    retired = by_id["old-feed"]
    assert (retired["enabled"], retired["state"]) == (False, "never-seen")
    assert all(retired[k] is None for k in ("as_of", "age_seconds", "last_success", "last_attempt", "last_outcome",
                                            "last_error", "records", "newest_record"))


@pytest.mark.parametrize(("query", "expected"), [
    ("?state=failed", ["feed-1"]), ("?state=live,never-seen", ["ids-1", "old-feed"]), ("?kind=sensor", ["ids-1"]),
    ("?kind=feed&enabled=true", ["feed-1"]), ("?enabled=false", ["old-feed"]),
])
def test_sources_filters(healthy, store, query, expected):
    record_run(store, "feed-1", NOW_MS - MIN, outcome="failed", error="timeout")
    assert [s["id"] for s in healthy.get(f"/api/sources{query}").get_json()["items"]] == expected


@pytest.mark.parametrize(("query", "parameter"), [("?state=dead", "state"), ("?kind=tap", "kind"),
                                                  ("?enabled=maybe", "enabled"), ("?id=feed-1", "id")])
def test_sources_bad_parameters_are_400(healthy, query, parameter):
    response = healthy.get(f"/api/sources{query}")
    assert response.status_code == 400 and response.get_json()["parameter"] == parameter


def project_version() -> str:
    with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def test_health_ok_when_the_store_reads_and_every_enabled_source_is_live(healthy):
    response = healthy.get("/api/health")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok", "reasons": [], "store": "ok", "newest_event": "2026-11-22T10:59:30Z",
        "no_data_alarm": False, "alarm": None,
        "sources": {"live": 2, "late": 0, "stale": 0, "failed": 0, "never-seen": 0},  # enabled sources only
        "demo": False, "version": project_version(), "generated_at": ISO_NOW,
    }


def test_health_is_degraded_but_200_when_an_enabled_feed_fails(healthy, store):
    record_run(store, "feed-1", NOW_MS - MIN, outcome="failed", error="HTTP 500")
    response = healthy.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["no_data_alarm"] is False
    assert body["sources"] == {"live": 1, "late": 0, "stale": 0, "failed": 1, "never-seen": 0}
    assert body["reasons"] == ["1 enabled source failed"]


def test_health_follows_the_walls_no_data_alarm(healthy, clock):
    clock.ms = NOW_MS + 2 * MIN  # newest event 2.5 min old: the sensor (cadence 1 min) is late, not stale
    response = healthy.get("/api/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok" and response.get_json()["sources"]["late"] == 1

    clock.ms = NOW_MS + 5 * MIN  # 5.5 min: every enabled sensor is stale → the wall's banner is on
    response = healthy.get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down" and body["no_data_alarm"] is True and body["store"] == "ok"
    assert body["alarm"].startswith("The sensor is stale") and body["sources"]["stale"] == 1

    clock.ms = NOW_MS + 11 * MIN  # 11.5 min > no_data_banner_after (10m)
    response = healthy.get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down" and body["no_data_alarm"] is True
    assert body["alarm"].startswith("No events for 11 min") and body["reasons"] == [body["alarm"]]
    assert body["newest_event"] == "2026-11-22T10:59:30Z"


def test_health_is_down_503_when_no_event_ever_arrived(client):
    response = client.get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down" and body["no_data_alarm"] is True and body["newest_event"] is None
    assert "No event has ever arrived" in body["alarm"]
    assert body["sources"] == {"live": 0, "late": 0, "stale": 0, "failed": 0, "never-seen": 2}


def test_health_is_down_503_when_the_store_cannot_be_read(tmp_path, config_dir, config, clock):
    broken = Store(f"sqlite:///{tmp_path / 'no-such-folder' / 'watchfloor.db'}")
    app = create_app(Runtime(config_dir, tmp_path, config, broken, clock=clock))
    if "api" not in app.server.blueprints:
        import api
        app.server.register_blueprint(api.blueprint)
    client = app.server.test_client()
    for _ in range(2):  # the first request also runs Dash's one-time setup, which reads the store too
        response = client.get("/api/health")
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "down" and body["store"].startswith("error: OperationalError")
        assert body["sources"] is None and body["no_data_alarm"] is None
        assert "Traceback" not in response.get_data(as_text=True) and "SELECT" not in body["store"]
    response = client.get("/api/incidents")
    assert response.status_code == 503 and "store" in response.get_json()["error"]


def test_health_notices_a_store_that_breaks_while_running(healthy, dash_app, config, tmp_path, clock):
    assert healthy.get("/api/health").status_code == 200
    broken = Store(f"sqlite:///{tmp_path / 'gone' / 'watchfloor.db'}")
    dash_app.server.config["WATCHFLOOR"] = AppContext(broken, config, tmp_path, clock=clock)
    response = healthy.get("/api/health")
    assert response.status_code == 503 and response.get_json()["store"].startswith("error:")
    assert healthy.head("/api/health").status_code == 503
