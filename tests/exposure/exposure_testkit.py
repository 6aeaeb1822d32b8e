"""Helpers for the exposure tests (not tests): a small inventory, the real KEV/CSAF fixtures stored as a
collector stores them, a store and a config, fixed times."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from collectors.formats import csaf, kev
from settings.app_settings import AppSettings
from settings.inventory import Inventory
from settings.loader import Config
from settings.sources import SourceConfig
from store.records import Advisory
from store.db import Store
from store.writes import upsert_advisories

NOW = 1_800_000_000_000  # 2027-01-15 08:00:00 UTC
MIN = 60_000
KEV_ID = "cisa-kev"
CSAF_ID = "cisa-ics-csaf"

#: Assets chosen against the fixtures: Siemens SINEC Security Monitor (CSAF ICSA-24-284-06, versions
#: "vers:all/<V4.9.0", four CVEs, CVSS up to 9.9), Siemens SIMATIC CP (KEV CVE-2016-8562, no versions),
#: AdminerEvo (CSAF VA-24-201-01, exact versions 4.8.2 / 4.8.3), Citrix NetScaler ADC (KEV, two CVEs).
INVENTORY_YAML = """
sites:
  - id: plant-a
    name: Alpha Power Plant
    sector: energy
    lat: 13.5
    lon: 100.9
    criticality: 5
    zones:
      - {name: control, kind: OT, networks: [10.1.0.0/16]}
    assets:
      - {id: sinec-old, name: Security monitor (old), ip: 10.1.0.5, zone: control, vendor: Siemens AG, product: SINEC Security Monitor, version: V4.8.1, criticality: 4}
      - {id: sinec-new, name: Security monitor (patched), ip: 10.1.0.6, zone: control, vendor: Siemens, product: SINEC Security Monitor, version: "4.9.0"}
      - {id: sinec-nover, name: Security monitor (unknown version), ip: 10.1.0.7, zone: control, vendor: Siemens, product: SINEC Security Monitor}
      - {id: cp-1543, name: Plant comms processor, ip: 10.1.0.8, zone: control, vendor: Siemens, product: SIMATIC CP 1543-1, version: V2.2, criticality: 5}
      - {id: hmi-plain, name: Plain HMI, ip: 10.1.0.9, zone: control, criticality: 3}
  - id: port-b
    name: Bravo Seaport
    sector: transport
    lat: 13.08
    lon: 100.88
    criticality: 4
    zones:
      - {name: dmz, kind: DMZ, networks: [198.51.100.0/26]}
    assets:
      - {id: adminer-new, name: DB admin (current), ip: 198.51.100.5, zone: dmz, vendor: AdminerEvo, product: AdminerEvo, version: "4.8.4"}
      - {id: adminer-old, name: DB admin (old), ip: 198.51.100.6, zone: dmz, vendor: AdminerEvo, product: AdminerEvo, version: "4.8.3"}
      - {id: citrix-gw, name: Remote access gateway, ip: 198.51.100.7, zone: dmz, vendor: "Citrix Systems, Inc.", product: NetScaler ADC, version: "13.1-49.15", criticality: 4}
"""


def inventory(text: str = INVENTORY_YAML) -> Inventory:
    return Inventory.model_validate(yaml.safe_load(text))


def source(id: str, fmt: str, path: str = "/dev/null") -> SourceConfig:
    return SourceConfig.model_validate({"id": id, "name": {"kev": "CISA KEV", "csaf": "CISA ICS advisories"}.get(fmt, id),
                                        "format": fmt, "source": {"type": "file", "path": path},
                                        "schedule": {"every": "12h"}})


def make_config(folder: Path, inv: Inventory | None = None) -> Config:
    return Config(folder=folder, settings=AppSettings.model_validate({"display_timezone": "Asia/Bangkok"}),
                  inventory=inv if inv is not None else inventory(),
                  sources=[source(KEV_ID, "kev"), source(CSAF_ID, "csaf")])


def kev_advisories(fixtures: Path) -> list[Advisory]:
    with (fixtures / "kev" / "known_exploited_vulnerabilities.json").open("rb") as payload:
        return [r for r in kev.parse(payload, source(KEV_ID, "kev"), kev.Options()) if isinstance(r, Advisory)]


def csaf_advisories(fixtures: Path) -> list[Advisory]:
    records: list[Advisory] = []
    for path in sorted((fixtures / "csaf").glob("*.json")):
        with path.open("rb") as payload:
            records += [r for r in csaf.parse(payload, source(CSAF_ID, "csaf"), csaf.Options()) if isinstance(r, Advisory)]
    return records


def store_advisories(store: Store, source_id: str, records: list[Advisory], run_id: int = 1) -> None:
    with store.writer.begin() as conn:
        upsert_advisories(conn, source_id, records, run_id=run_id)


def store_fixtures(store: Store, fixtures: Path) -> None:
    """The real KEV catalogue and every CSAF advisory of the fixtures, as the collectors store them."""
    store_advisories(store, KEV_ID, kev_advisories(fixtures), run_id=1)
    store_advisories(store, CSAF_ID, csaf_advisories(fixtures), run_id=2)


def open_findings(store: Store) -> dict[tuple[str, str], Any]:
    from sqlalchemy import select

    from store.schema import exposures

    with store.reader.connect() as conn:
        return {(r.asset_id, r.vuln_key): r for r in conn.execute(select(exposures).where(exposures.c.resolved_at.is_(None)))}


def all_findings(store: Store) -> dict[tuple[str, str], Any]:
    from sqlalchemy import select

    from store.schema import exposures

    with store.reader.connect() as conn:
        return {(r.asset_id, r.vuln_key): r for r in conn.execute(select(exposures))}


def find(component: Any, id_: str) -> Any:
    """The component with ``id_`` in a Dash tree (depth first), or None."""
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            found = find(child, id_)
            if found is not None:
                return found
    return None


def text_of(component: Any) -> str:
    """A component tree as Dash sends it, as readable JSON text."""
    import json

    from plotly.io.json import to_json_plotly

    return json.dumps(json.loads(to_json_plotly(component)), ensure_ascii=False)
