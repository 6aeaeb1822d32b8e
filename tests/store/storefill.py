"""Test helpers (not tests): a real SQLite store in a temp folder, a small config, and row inserters.

Rows go in through SQLAlchemy Core inserts on ``store.writer``, as the pipeline would leave them;
rollups through ``events_write.upsert_rollups``, which also keeps the coarse rollups the wall reads.
Times are fixed epoch milliseconds (``NOW``), never the wall clock.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from settings.app_settings import AppSettings
from settings.inventory import Inventory
from settings.loader import Config
from settings.sources import SourceConfig
from store.db import Store
from store.events_write import upsert_rollups
from store.schema import (
    events, feed_runs, incident_log, incidents, indicators, rollups, sightings, source_state,
)

NOW = 1_800_000_000_000  # 2027-01-15 08:00:00 UTC
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000

SITES = [
    {"id": "plant-a", "name": "Alpha Power Plant", "sector": "energy", "city": "Bangkok", "lat": 13.7, "lon": 100.5,
     "criticality": 5, "zones": [{"name": "ot", "kind": "OT", "networks": ["10.1.0.0/16"]}],
     "assets": [{"id": "plc-1", "name": "Turbine PLC", "ip": "10.1.0.5", "zone": "ot", "vendor": "Siemens",
                 "product": "S7-1500", "criticality": 5}]},
    {"id": "water-b", "name": "Bravo Water Works", "sector": "water", "city": "Khon Kaen", "lat": 16.4, "lon": 102.8,
     "criticality": 3, "zones": [{"name": "it", "kind": "IT", "networks": ["10.2.0.0/16"]}]},
    {"id": "port-c", "name": "Charlie Seaport", "sector": "transport", "lat": 13.08, "lon": 100.88,
     "criticality": 4, "zones": [{"name": "it", "kind": "IT", "networks": ["10.3.0.0/16"]}]},
]


def source(id: str, *, format: str = "lines", every: str = "1h", demo: bool = False, enabled: bool = True,
           transport: dict[str, Any] | None = None, **extra: Any) -> SourceConfig:
    data = {"id": id, "name": f"Source {id}", "provider": "test", "format": format, "demo": demo, "enabled": enabled,
            "source": transport or {"type": "file", "path": f"{id}.txt"}, "schedule": {"every": every}, **extra}
    return SourceConfig.model_validate(data)


def sensor(id: str, **kw: Any) -> SourceConfig:
    return source(id, format="suricata-eve", every="5s", transport={"type": "tail", "path": f"{id}.json"},
                  health={"max_age": "1m"}, **kw)


def make_config(tmp: Path, sources: list[SourceConfig] | None = None, **settings: Any) -> Config:
    base = {"display_timezone": "Asia/Bangkok", "no_data_banner_after": "10m"}
    return Config(folder=tmp, settings=AppSettings.model_validate({**base, **settings}),
                  inventory=Inventory.model_validate({"sites": SITES}),
                  sources=sources if sources is not None else [sensor("ids-1"), source("feed-1")])


def make_store(tmp: Path) -> Store:
    return Store.open(tmp)


def add(store: Store, table: Any, rows: list[dict[str, Any]]) -> None:
    with store.writer.begin() as conn:
        if table is rollups:  # the way the pipeline writes them, so the coarse rollups follow
            counts: dict[tuple[int, int, str, str, str], int] = {}
            for r in rows:
                key = (r["minute"], r["severity"], r["site"], r["sector"], r["src_country"])
                counts[key] = counts.get(key, 0) + r["events"]
            upsert_rollups(conn, counts)
            return
        for row in rows:  # one by one: rows may set different columns
            conn.execute(insert(table).values(**row))


def incident(id: int, *, severity: int = 2, status: str = "new", site: str | None = "plant-a",
             sector: str | None = "energy", last_seen: int = NOW - MIN, first_seen: int | None = None,
             title: str = "ET SCAN Potential SSH Scan", src_ip: str | None = "203.0.113.5",
             src_country: str | None = "CN", score: int = 50, event_count: int = 1, **extra: Any) -> dict[str, Any]:
    row = {
        "id": id, "group_key": f"k{id}", "title": title, "signature": title, "src_ip": src_ip,
        "src_country": src_country, "site": site, "sector": sector,
        "first_seen": first_seen if first_seen is not None else last_seen - MIN, "last_seen": last_seen,
        "event_count": event_count, "severity": severity, "score": score, "status": status,
        "updated_at": last_seen, "sources": json.dumps([src_ip]) if src_ip else None,
    }
    row.update(extra)
    return row


def event(id: int, *, ts: int, sensor: str = "ids-1", incident_id: int | None = None, severity: int = 2,
          raw: str | None = None, **extra: Any) -> dict[str, Any]:
    row = {"id": id, "ts": ts, "sensor": sensor, "kind": "alert", "severity": severity, "score": 40,
           "raw": raw if raw is not None else json.dumps({"event_type": "alert", "n": id}),
           "content_hash": f"h{id}", "ingested_at": ts, "incident_id": incident_id, "src_ip": "203.0.113.5",
           "dst_ip": "10.1.0.5", "src_port": 4444, "dst_port": 502, "proto": "tcp", "signature": "sig"}
    row.update(extra)
    return row


def rollup(minute: int, severity: int, events_: int, site: str = "plant-a", country: str = "CN",
           sector: str = "energy") -> dict[str, Any]:
    return {"minute": minute - minute % MIN, "severity": severity, "site": site, "sector": sector,
            "src_country": country, "events": events_}


__all__ = ["NOW", "MIN", "HOUR", "DAY", "make_config", "make_store", "add", "incident", "event", "rollup", "source",
           "sensor", "events", "feed_runs", "incident_log", "incidents", "indicators", "rollups", "sightings",
           "source_state"]
