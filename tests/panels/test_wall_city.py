"""Source cities on the pages: the map's builder, the wall over a store filled through the real pipeline
with a real city ``.mmdb``, and the incident page's source line."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import plotly.graph_objects as go
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))

from citydb_testkit import LONDON_AT, LONDON_IP, TOKYO_AT, TOKYO_IP, write_city_db  # noqa: E402
from storefill import MIN, NOW, make_config  # noqa: E402
from treeutil import find, text_of  # noqa: E402

from panels import incident_detail, wall  # noqa: E402
from pipeline.ingest import EventPipeline  # noqa: E402
from store import queries  # noqa: E402
from store.records import Event, Severity  # noqa: E402

CENTROIDS = {"GB": (54.1, -2.9), "JP": (36.6, 138.0), "CN": (36.6, 103.9)}
PLC = "10.1.0.5"  # storefill's plant-a, OT zone, asset plc-1


def sites_frame():
    rows = [("plant-a", "Alpha Power Plant", "energy", "", 13.7, 100.5, 5, "critical", 3, 40),
            ("north", "Northern Substation", "energy", "", 18.8, 98.9, 3, "low", 1, 2)]
    return queries._frame(rows, queries.SITE_COLUMNS)


def arcs_frame(rows):
    return queries._frame(rows, queries.ARC_COLUMNS)


def places_frame(rows):
    return queries._frame(rows, queries.PLACE_COLUMNS)


def traces(fig: go.Figure) -> dict[str, go.Scattergeo]:
    return {t.name: t for t in go.Figure(fig.to_dict()).data}  # full plotly validation


def arc_starts(fig: go.Figure) -> dict[tuple[float, float], str]:
    """Where each arc starts → its hover text."""
    starts = {}
    for trace in fig.data:
        if trace.name.startswith("arcs "):
            for i in range(0, len(trace.lat), 3):
                starts[(trace.lat[i], trace.lon[i])] = trace.text[i]
    return starts


# --- the builder ------------------------------------------------------------------------------------

def test_a_located_source_starts_at_its_city_and_the_rest_of_its_country_at_the_centroid():
    arcs = arcs_frame([("GB", "plant-a", 10, "critical"), ("CN", "north", 3, "low")])
    places = places_frame([("GB", "London", *LONDON_AT, "plant-a", 6, "critical")])
    fig = wall.build_map_figure(arcs, sites_frame(), CENTROIDS, places=places)
    by_name = traces(fig)
    cities = by_name["source cities"]
    assert (list(cities.lat), list(cities.lon)) == ([LONDON_AT[0]], [LONDON_AT[1]])
    assert list(cities.text) == ["London, United Kingdom: 6 events"] and list(cities.customdata) == ["country:GB"]
    starts = arc_starts(fig)
    assert starts[LONDON_AT] == "London, United Kingdom → Alpha Power Plant<br>6 events · worst critical"
    # 4 of the 10 GB events were not placed by city: they still start at the country's centroid
    assert starts[CENTROIDS["GB"]] == "United Kingdom → Alpha Power Plant<br>4 events · worst critical"
    assert starts[CENTROIDS["CN"]].startswith("China → Northern Substation")
    countries = by_name["source countries"]
    assert list(countries.customdata) == ["country:GB", "country:CN"]
    assert list(countries.text) == ["United Kingdom: 4 events", "China: 3 events"]


def test_fully_located_sources_draw_nothing_at_the_country_centroid():
    arcs = arcs_frame([("GB", "plant-a", 6, "high"), ("JP", "plant-a", 2, "medium")])
    places = places_frame([("GB", "London", *LONDON_AT, "plant-a", 6, "high"),
                           ("JP", "Tokyo", *TOKYO_AT, "plant-a", 2, "medium")])
    fig = wall.build_map_figure(arcs, sites_frame(), CENTROIDS, places=places)
    by_name = traces(fig)
    assert "source countries" not in by_name
    assert set(arc_starts(fig)) == {LONDON_AT, TOKYO_AT}
    assert list(zip(by_name["source cities"].lat, by_name["source cities"].lon)) == [LONDON_AT, TOKYO_AT]
    # without places the same arcs start at the centroids, as before
    plain = wall.build_map_figure(arcs, sites_frame(), CENTROIDS)
    assert set(arc_starts(plain)) == {CENTROIDS["GB"], CENTROIDS["JP"]} and "source cities" not in traces(plain)


def test_cities_and_countries_share_the_arc_cap(monkeypatch):
    monkeypatch.setattr(wall, "MAX_ARCS", 2)
    arcs = arcs_frame([("GB", "plant-a", 50, "high"), ("CN", "plant-a", 30, "high"), ("JP", "north", 1, "low")])
    places = places_frame([("GB", "London", *LONDON_AT, "plant-a", 45, "high"),
                           ("JP", "Tokyo", *TOKYO_AT, "north", 1, "low")])
    fig = wall.build_map_figure(arcs, sites_frame(), CENTROIDS, places=places)
    # the biggest two: London (45) and China (30); GB's rest (5) and Tokyo (1) are left out
    assert set(arc_starts(fig)) == {LONDON_AT, CENTROIDS["CN"]}
    assert sum(len(t.lat) // 3 for t in fig.data if t.name.startswith("arcs ")) == 2


# --- the wall and the incident page over the real pipeline ------------------------------------------

@pytest.fixture
def config(tmp_path):
    path = write_city_db(tmp_path / "GeoLite2-City.mmdb")
    return make_config(tmp_path, geoip_city_database=str(path))


@pytest.fixture
def filled(store, config):
    pipeline = EventPipeline(config, store, clock=lambda: NOW)
    assert pipeline.geoip.city is not None

    def alert(minutes_ago: int, src: str, n: int) -> Event:
        return Event(ts=datetime.fromtimestamp((NOW - minutes_ago * MIN) / 1000, timezone.utc), sensor="ids-1",
                     kind="alert", src_ip=src, dst_ip=PLC, dst_port=502, proto="tcp",
                     signature="ET SCADA Modbus Write Multiple Registers from external host",
                     sensor_severity=Severity.HIGH, raw=f"line {n}")

    with store.writer.begin() as conn:
        pipeline.ingest(conn, [alert(5, LONDON_IP, 1), alert(4, LONDON_IP, 2), alert(3, TOKYO_IP, 3),
                               alert(2, "45.33.32.156", 4)], NOW)
    with store.reader.connect() as conn:
        from sqlalchemy import select

        from store.schema import incidents
        return {row.src_ip: row.id for row in conn.execute(select(incidents.c.src_ip, incidents.c.id))}


def test_the_wall_draws_sources_at_their_cities(flask_app, config, filled):
    ctx = flask_app.config["WATCHFLOOR"]
    data = wall.load_wall(ctx, NOW)
    assert [(r["src_country"], r["src_city"], r["lat"], r["lon"], r["site"], r["events"])
            for r in data.places.to_dict("records")] == [("GB", "London", *LONDON_AT, "plant-a", 2),
                                                         ("JP", "Tokyo", *TOKYO_AT, "plant-a", 1)]
    out = wall.render_wall(data, config, timezone.utc)
    figure = out[wall.ids.MAP]
    by_name = {t["name"]: t for t in figure["data"]}
    assert list(zip(by_name["source cities"]["lat"], by_name["source cities"]["lon"])) == [LONDON_AT, TOKYO_AT]
    # the US scanner is not in the city database: it starts at the US centroid
    assert by_name["source countries"]["customdata"] == ["country:US"]
    assert "drawn from their city" in text_of(out[wall.ids.MAP_NOTE])
    assert len(json.dumps(figure)) < 200_000


def test_the_incident_page_and_query_show_the_source_city(flask_app, filled):
    found = queries.incident_by_id(flask_app.config["WATCHFLOOR"].store, filled[LONDON_IP])
    assert (found.src_country, found.src_city, found.src_lat, found.src_lon) == ("GB", "London", *LONDON_AT)
    header = text_of(find(incident_detail.layout(incident_id=str(filled[LONDON_IP])), incident_detail.ids.HEADER))
    assert '"81.2.69.142 · United Kingdom (GB) · London (51.5142, -0.0931)"' in header
    unlocated = text_of(find(incident_detail.layout(incident_id=str(filled["45.33.32.156"])),
                             incident_detail.ids.HEADER))
    assert '"45.33.32.156 · United States (US)"' in unlocated  # no place: nothing after the country


def test_the_places_cover_exactly_the_arcs_window(store, config):
    """Events over 70 minutes: the map's hour (cut into minute, 10-minute and hour blocks) counts the same
    events for the city as for its country's arc, and none from before the hour."""
    pipeline = EventPipeline(config, store, clock=lambda: NOW)
    minutes_ago = (70, 61, 60, 59, 47, 33, 10, 9, 1, 0)
    batch = [Event(ts=datetime.fromtimestamp((NOW - m * MIN - 1000) / 1000, timezone.utc), sensor="ids-1",
                   kind="alert", src_ip=LONDON_IP, dst_ip=PLC, dst_port=502, proto="tcp", signature="scan",
                   sensor_severity=Severity.LOW, raw=f"minute {m}") for m in minutes_ago]
    with store.writer.begin() as conn:
        pipeline.ingest(conn, batch, NOW)
    amap = queries.attack_map(store, config.inventory, NOW, hours=1)
    places = queries.source_places(store, config.inventory, NOW, hours=1)
    [arc] = amap.arcs.to_dict("records")
    [place] = places.to_dict("records")
    assert (arc["src_country"], place["src_city"]) == ("GB", "London")
    # the window is the minutes [NOW - 59 min, NOW]; an event 59 min + 1 s ago is in the minute before it
    assert place["events"] == arc["events"] == sum(1 for m in minutes_ago if m < 59) == 6
