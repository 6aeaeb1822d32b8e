"""GET /api/incidents/<id> with a city GeoIP database configured: the source's city and coordinates."""
from __future__ import annotations

from pathlib import Path

import pytest
from apitestkit import FEEDS, SETTINGS_YAML
from citydb_testkit import LONDON_AT, LONDON_IP, write_city_db
from pipeline_testkit import NOW_MS, event_at, ingest, write_config
from sqlalchemy import select

from pipeline.ingest import EventPipeline
from store.records import Severity
from store.schema import incidents


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """The API tests' configuration folder, with a city database next to settings.yaml."""
    folder = tmp_path / "config"
    folder.mkdir()
    write_city_db(folder / "GeoLite2-City.mmdb")
    write_config(folder, settings_yaml=SETTINGS_YAML + "geoip_city_database: GeoLite2-City.mmdb\n")
    (folder / "feeds").mkdir()
    for name, text in FEEDS.items():
        (folder / "feeds" / name).write_text(text)
    return folder


def test_incident_detail_has_the_source_city_and_coordinates(client, store, config):
    pipeline = EventPipeline(config, store, clock=lambda: NOW_MS)
    alert = {"signature": "ET SCADA Modbus write from external host", "sensor_severity": Severity.HIGH,
             "dst_ip": "10.2.0.10", "dst_port": 502, "proto": "tcp"}
    ingest(pipeline, store, [event_at(10, src_ip=LONDON_IP, **alert), event_at(20, src_ip="45.33.32.156", **alert)])
    with store.reader.connect() as conn:
        ids = {row.src_ip: row.id for row in conn.execute(select(incidents.c.src_ip, incidents.c.id))}

    body = client.get(f"/api/incidents/{ids[LONDON_IP]}").get_json()
    assert (body["src_country"], body["src_city"], body["src_lat"], body["src_lon"]) == ("GB", "London", *LONDON_AT)
    [event] = body["events"]
    assert (event["src_city"], event["src_lat"], event["src_lon"]) == ("London", *LONDON_AT)

    unlocated = client.get(f"/api/incidents/{ids['45.33.32.156']}").get_json()
    assert unlocated["src_country"] == "US"
    assert (unlocated["src_city"], unlocated["src_lat"], unlocated["src_lon"]) == (None, None, None)
    assert (unlocated["events"][0]["src_city"], unlocated["events"][0]["src_lat"]) == (None, None)
