"""Helpers for the pipeline tests: a small inventory written to a real config folder, fixed times, ingest."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pipeline.ingest import EventPipeline, IngestResult
from settings.loader import Config, load_config
from store.db import Store
from store.records import Event

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
NOW_MS = int(T0.timestamp() * 1000) + 3_600_000  # ingest time: an hour after the first event

ASSETS_YAML = """
sites:
  - id: plant-a
    name: Plant A
    sector: energy
    lat: 13.5
    lon: 100.9
    criticality: 5
    zones:
      - {name: corporate, kind: IT, networks: [10.1.0.0/16, "2001:db8:a::/48"]}
      - {name: cell, kind: OT, networks: [10.1.5.0/24]}
      - {name: control, kind: OT, networks: [10.2.0.0/16, "2001:db8:a:ff::/64"]}
      - {name: dmz, kind: DMZ, networks: [192.0.2.0/28]}
    assets:
      - {id: a-plc, name: Turbine PLC, ip: 10.2.0.10, zone: control, vendor: Siemens, product: SIMATIC S7-1500, version: "2.9", criticality: 5}
      - {id: a-hmi, name: Cell HMI, ip: 10.1.5.20, criticality: 4}
      - {id: a-historian, name: Historian, ip: 10.1.0.30, zone: corporate, vendor: AVEVA, product: PI Server, criticality: 3}
      - {id: a-rtu6, name: IPv6 RTU, ip: "2001:db8:a:ff::10", zone: control, criticality: 4}
  - id: water-b
    name: Water B
    sector: water
    lat: 14.0
    lon: 100.5
    criticality: 3
    zones:
      - {name: office, kind: IT, networks: [10.3.0.0/16]}
      - {name: process, kind: OT, networks: [10.4.0.0/16]}
    assets:
      - {id: b-rtu, name: Pump RTU, ip: 10.4.0.8, zone: process, vendor: Schneider Electric, product: Modicon M340, criticality: 4}
  - id: rail-c
    name: Rail C
    sector: transport
    lat: 13.8
    lon: 100.5
    criticality: 4
    zones:
      - {name: public, kind: DMZ, networks: [198.51.100.0/26]}
      - {name: signalling, kind: OT, networks: [10.5.0.0/16]}
      - {name: jump-host, kind: IT, networks: [10.5.9.9/32]}
"""


def write_config(folder: Path, settings_yaml: str = "", assets_yaml: str = ASSETS_YAML,
                 scoring_yaml: str | None = None) -> Config:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.yaml").write_text(settings_yaml or "incidents: {group_by: [signature, src_ip, site], window: 1h}\n")
    (folder / "assets.yaml").write_text(assets_yaml)
    # The shipped ATT&CK map is part of what is under test; scoring uses the model defaults (which a
    # test pins to config/scoring.yaml) unless a test writes its own.
    shutil.copy(REPO / "config" / "attack_ics_map.yaml", folder / "attack_ics_map.yaml")
    if scoring_yaml is not None:
        (folder / "scoring.yaml").write_text(scoring_yaml)
    config = load_config(folder)
    assert config.problems == []
    return config


def ingest(pipeline: EventPipeline, store: Store, events: list[Event], now_ms: int = NOW_MS) -> IngestResult:
    """One batch in its own write transaction, as the tailer does it."""
    with store.writer.begin() as conn:
        return pipeline.ingest(conn, events, now_ms)


def event_at(seconds: float = 0, **fields: Any) -> Event:
    """An event ``seconds`` after ``T0``; ``raw`` defaults to a unique text so events do not dedupe."""
    fields.setdefault("sensor", "ids-1")
    fields.setdefault("kind", "alert")
    fields.setdefault("raw", f"event-{next(_COUNTER)}")
    return Event(ts=T0 + timedelta(seconds=seconds), **fields)


_COUNTER = iter(range(10**9))
