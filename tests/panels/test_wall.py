"""The wall: figure builders, the component tree, and its callbacks called directly."""
import json
from datetime import timezone
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go
from dash import html

from storefill import DAY, MIN, NOW, add, event, incident, incidents, rollup, rollups, source_state
from panels import theme, wall
from treeutil import find, text_of
from store import queries

BKK = ZoneInfo("Asia/Bangkok")


def validated(fig: go.Figure) -> go.Figure:
    """Re-build with plotly's full validation: the builders skip it for speed, the tests do not."""
    return go.Figure(fig.to_dict())


# --- timeline ---------------------------------------------------------------------------------

def timeline_frame(counts: dict[str, int]) -> pd.DataFrame:
    rows = [(NOW - 15 * MIN, level, counts.get(level, 0)) for level in theme.SEVERITY_LEVELS]
    rows += [(NOW, level, 0) for level in theme.SEVERITY_LEVELS]
    return queries._frame(rows, queries.TIMELINE_COLUMNS)


def test_timeline_one_trace_per_severity_in_order_with_theme_colours():
    fig = validated(wall.build_timeline_figure(timeline_frame({"critical": 3, "info": 40}), BKK))
    assert [t.name for t in fig.data] == ["critical", "high", "medium", "low", "info"]
    assert [t.marker.color for t in fig.data] == [theme.SEVERITY_COLORS[s] for s in theme.SEVERITY_LEVELS]
    assert fig.layout.barmode == "stack" and not fig.layout.annotations
    # x is the wall-clock time in the display zone (07:45 UTC → 14:45 Bangkok)
    assert fig.data[0].x[0] == "2027-01-15 14:45" and list(fig.data[0].y) == [3, 0]


def test_timeline_empty_states_differ():
    calm = wall.build_timeline_figure(timeline_frame({}), timezone.utc)
    assert calm.layout.meta["empty"] == "noevents" and calm.layout.annotations[0].text == "No events in the last 24 h"
    loud = wall.build_timeline_figure(timeline_frame({}), timezone.utc, empty_message="No data: sensors silent since 09:00",
                                      nodata=True)
    assert loud.layout.meta == {"empty": "nodata", "message": "No data: sensors silent since 09:00"}
    assert loud.layout.annotations[0].font.color == theme.STATE_COLORS["stale"]
    validated(loud)


# --- map --------------------------------------------------------------------------------------------

def sites_frame():
    rows = [("plant-a", "Alpha Power Plant", "energy", "", 13.7, 100.5, 5, "critical", 3, 40),
            ("port-c", "Charlie Seaport", "transport", "", 13.9, 100.7, 4, "", 0, 0),
            ("north", "Northern Substation", "energy", "", 18.8, 98.9, 3, "low", 1, 2)]
    return queries._frame(rows, queries.SITE_COLUMNS)


CENTROIDS = {"CN": (36.6, 103.9), "RU": (61.7, 99.2), "US": (39.5, -99.1)}


def test_map_traces_colours_and_click_targets():
    arcs = queries._frame([("CN", "plant-a", 100, "critical"), ("RU", "plant-a", 4, "low"), ("US", "north", 1, "high"),
                           ("ZZ", "plant-a", 9, "high"), ("CN", "nowhere", 5, "high")], queries.ARC_COLUMNS)
    fig = validated(wall.build_map_figure(arcs, sites_frame(), CENTROIDS))
    names = [t.name for t in fig.data]
    assert names == ["arcs low", "arcs high", "arcs critical", "source countries", "sites", "sites inset"]
    by_name = {t.name: t for t in fig.data}
    assert by_name["arcs critical"].line.color == theme.SEVERITY_COLORS["critical"]
    assert by_name["arcs critical"].line.width > by_name["arcs low"].line.width  # width grows with events
    assert list(by_name["arcs critical"].customdata) == ["site:plant-a", "site:plant-a", None]
    # unknown country (no centroid) and a site outside the inventory are not drawn
    assert list(by_name["source countries"].customdata) == ["country:CN", "country:RU", "country:US"]
    inset = by_name["sites inset"]
    assert inset.geo == "geo2" and list(inset.marker.color) == [theme.SEVERITY_COLORS["critical"], wall.NO_INCIDENT_COLOR,
                                                                  theme.SEVERITY_COLORS["low"]]
    assert list(inset.customdata) == ["site:plant-a", "site:port-c", "site:north"]
    assert fig.layout.geo.projection.type == "natural earth" and fig.layout.geo2.projection.type == "mercator"
    assert not fig.layout.annotations


def test_map_empty_state_and_arc_cap(monkeypatch):
    empty = wall.build_map_figure(queries._frame([], queries.ARC_COLUMNS), sites_frame(), CENTROIDS,
                                  empty_message="No events in the last 1 h")
    assert [t.name for t in empty.data] == ["sites", "sites inset"]
    assert empty.layout.meta["empty"] == "noevents"
    monkeypatch.setattr(wall, "MAX_ARCS", 1)
    arcs = queries._frame([("CN", "plant-a", 100, "critical"), ("RU", "plant-a", 4, "low")], queries.ARC_COLUMNS)
    capped = wall.build_map_figure(arcs, sites_frame(), CENTROIDS)
    assert [t.name for t in capped.data if t.name.startswith("arcs")] == ["arcs critical"]


def test_site_labels_one_per_cluster_on_the_worst_site():
    assert wall.site_labels(sites_frame()) == ["Alpha Power Plant +1", "", "Northern Substation"]


def test_map_click_target():
    assert wall.map_click_target({"points": [{"customdata": "site:plant-a"}]}) == "/incidents?site=plant-a"
    assert wall.map_click_target({"points": [{"customdata": ["country:CN"]}]}) == "/incidents?country=CN"
    assert wall.map_click_target({"points": [{"lat": 1}]}) is None and wall.map_click_target(None) is None


# --- tree and callback --------------------------------------------------------------------------------

def fill(store):
    add(store, incidents, [incident(1, severity=4, title="Modbus write to turbine PLC"), incident(2, severity=1)])
    add(store, rollups, [rollup(NOW - 5 * MIN, 4, 12), rollup(NOW - 5 * MIN, 1, 30, site="water-b", country="RU")])
    add(store, incidents.metadata.tables["events"], [event(1, ts=NOW - 30_000)])
    add(store, source_state, [{"source_id": "ids-1", "last_success_at": NOW - 1000, "last_outcome": "ok",
                               "consecutive_failures": 0, "newest_record_at": NOW - 30_000}])


def test_layout_renders_every_panel_with_data(flask_app, store):
    fill(store)
    tree = wall.layout()
    for id_ in (wall.ids.KPIS, wall.ids.MAP, wall.ids.TIMELINE, wall.ids.RECENT, wall.ids.HEALTH, wall.ids.MAP_ASOF):
        assert find(tree, id_) is not None, id_
    kpis = text_of(find(tree, wall.ids.KPIS))
    assert "Open critical" in kpis and "severity=critical" in kpis and "status=new%2Cacknowledged%2Cinvestigating" in kpis
    assert '"42"' in kpis  # events in the last hour
    recent = text_of(find(tree, wall.ids.RECENT))
    assert "Modbus write to turbine PLC" in recent and "/incidents/1" in recent
    assert "as of 14:59:30" in text_of(find(tree, wall.ids.MAP_ASOF))  # Bangkok time, 30 s before NOW
    health = text_of(find(tree, wall.ids.HEALTH))
    assert "Source ids-1" in health and "wf-src-dot-live" in health


def test_empty_store_says_no_data_not_all_clear(flask_app):
    out = wall.render_wall(wall.load_wall(flask_app.config["WATCHFLOOR"], NOW), flask_app.config["WATCHFLOOR"].config,
                           BKK)
    assert out[wall.ids.MAP]["layout"]["meta"] == {"empty": "nodata", "message": "No data: no event has ever arrived"}
    assert out[wall.ids.TIMELINE]["layout"]["meta"]["empty"] == "nodata"
    assert "no data yet" in text_of(out[wall.ids.MAP_ASOF])


def test_quiet_hour_with_live_sensor_says_no_events(flask_app, store):
    # the sensor delivers (an event 30 s ago) but nothing reached our sites in the last hour
    add(store, incidents.metadata.tables["events"], [event(1, ts=NOW - 30_000)])
    add(store, rollups, [rollup(NOW - 3 * DAY // 2, 2, 5)])  # nothing in the last hour
    out = wall.render_wall(wall.load_wall(flask_app.config["WATCHFLOOR"], NOW), flask_app.config["WATCHFLOOR"].config,
                           BKK)
    assert out[wall.ids.MAP]["layout"]["meta"] == {"empty": "noevents", "message": "No events in the last 1 h"}


def test_refresh_callback_returns_every_output(flask_app, store):
    fill(store)
    outputs = wall.update_wall(3)
    assert len(outputs) == len(wall._OUTPUT_IDS)
    figure = outputs[wall._OUTPUT_IDS.index(wall.ids.MAP)]
    assert {t["name"] for t in figure["data"]} >= {"arcs critical", "sites", "sites inset"}
    json.dumps(figure)  # plain data, as Dash will send it


def test_on_map_click_navigates(flask_app):
    assert wall.on_map_click({"points": [{"customdata": "site:water-b"}]}) == "/incidents?site=water-b"


def test_render_health_lists_enabled_sources_worst_first(store, config):
    add(store, source_state, [{"source_id": "feed-1", "last_outcome": "failed", "consecutive_failures": 2}])
    chips = wall.render_health(queries.source_health(store, config, NOW))
    text = text_of(html.Div(chips))
    assert text.index("Source feed-1") < text.index("Source ids-1")
    assert "1 failed" in text and "1 never-seen" in text
