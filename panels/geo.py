"""Country centroids for the attack map, from the same offline topojson plotly.js draws.

The ``countries`` of plotly's ``world_50m.json`` carry ``id`` = ISO 3166-1 alpha-3 and
``properties.ct`` = ``[lon, lat]``; sources carry alpha-2 (``src_country``), mapped with
``pycountry``. The table is read once, on first use (never at import), and kept: it is
reference geometry, not data.
"""
from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

TOPOJSON_DIR = Path(__file__).resolve().parents[1] / "assets" / "vendor" / "topojson"
# world_50m has the small states (Singapore, Hong Kong, Bahrain, Malta ...) that world_110m lacks.
CENTROID_FILES = ("world_50m.json", "world_110m.json")


@cache
def country_centroids(folder: str = str(TOPOJSON_DIR)) -> dict[str, tuple[float, float]]:
    """ISO alpha-2 → ``(lat, lon)``; empty (with a warning) when the map assets are missing."""
    import pycountry

    by_iso3: dict[str, tuple[float, float]] = {}
    for name in reversed(CENTROID_FILES):
        path = Path(folder) / name
        if not path.is_file():
            continue
        topo = json.loads(path.read_text(encoding="utf-8"))
        for geometry in topo.get("objects", {}).get("countries", {}).get("geometries", []):
            iso3 = geometry.get("id")
            ct = (geometry.get("properties") or {}).get("ct")
            if iso3 and ct and len(ct) == 2:
                by_iso3[str(iso3)] = (float(ct[1]), float(ct[0]))
    if not by_iso3:
        log.warning("no country geometry under %s: run tools/fetch_assets.py; the map draws no arcs", folder)
        return {}
    table = {c.alpha_2: by_iso3[c.alpha_3] for c in pycountry.countries if c.alpha_3 in by_iso3}
    if "XKX" in by_iso3:  # Kosovo: user-assigned code, not in ISO 3166
        table["XK"] = by_iso3["XKX"]
    return table


@cache
def country_name(iso2: str) -> str:
    import pycountry

    found = pycountry.countries.get(alpha_2=iso2.upper()) if iso2 else None
    if found is None:
        return iso2 or "unknown"
    return getattr(found, "common_name", None) or found.name
