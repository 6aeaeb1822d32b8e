"""The wall (/wall and /): the one screen a watch floor keeps up, read from across the room.

On one 1920x1080 screen, without scrolling:

* KPI tiles: open incidents per severity (each a link to the filtered list) and events in the
  last hour with its per-minute trend;
* the attack map: sources → our sites in the last hour (arc width = events, colour = worst
  severity) on a Pacific-centred world, and an inset of the country with every site of the
  inventory coloured by its worst open incident. A source starts at its city when a city GeoIP
  database located it (``queries.source_places``), else at its country's centroid. Clicking a
  site or an arc opens ``/incidents?site=<id>``, a source point ``/incidents?country=<cc>``;
* the 24 h timeline, stacked by severity (critical at the bottom, colours from the theme);
* the newest open critical/high incidents (one click to each);
* the source-health strip: every enabled source as a chip with its state and age.

Every panel says "as of"; "no events" and "no data" look different. The data comes from
``store.queries`` (rollups, never raw events); ``load_wall`` gathers it, ``render_wall`` turns it
into components and figures, and one callback on the shell's refresh interval does both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from urllib.parse import urlencode

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from panels import context, theme
from panels import ids as shared
from panels.components import (
    as_figure, asof_label, card_header, empty_state, figure_spec, fmt_count, fmt_time, severity_chip, state_chip,
    utc_offset,
)
from panels.geo import country_centroids, country_name
from settings.loader import Config
from store import queries
from store.freshness import STATE_RANK, human_age

MAP_HOURS = 1
RECENT_LIMIT = 7
NO_INCIDENT_COLOR = "#5f6f88"
ATTACKER_COLOR = "#cbd5e1"
ARC_WIDTHS = (1.0, 2.0, 3.5, 6.0)
#: The map draws at most this many arcs (the biggest); the note under it counts the rest.
MAX_ARCS = 120
OPEN_QUERY = ",".join(queries.OPEN_STATUSES)


class ids:  # noqa: N801
    ROOT = "wall-root"
    KPIS = "wall-kpis"
    MAP = "wall-map"
    MAP_ASOF = "wall-map-asof"
    MAP_NOTE = "wall-map-note"
    TIMELINE = "wall-timeline"
    TIMELINE_ASOF = "wall-timeline-asof"
    RECENT = "wall-recent"
    RECENT_ASOF = "wall-recent-asof"
    HEALTH = "wall-health"
    HEALTH_ASOF = "wall-health-asof"


# --- data ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WallData:
    now_ms: int
    kpis: queries.WallKpis
    attack_map: queries.AttackMap
    places: pd.DataFrame  # ``queries.PLACE_COLUMNS``: located sources (empty without a city database)
    timeline: pd.DataFrame
    recent: pd.DataFrame
    health: pd.DataFrame
    alarm: str | None


def load_wall(ctx: context.AppContext, now_ms: int) -> WallData:
    """Every query the wall needs for one refresh."""
    from store.freshness import no_data_alarm

    kpis = queries.wall_kpis(ctx.store, now_ms)
    health = queries.source_health(ctx.store, ctx.config, now_ms)
    sensors = health[(health["kind"] == "sensor") & health["enabled"]]
    alarm = no_data_alarm(latest_event_ms=kpis.latest_event_ms, sensor_states=sensors["state"].tolist(),
                          now_ms=now_ms, no_data_after=ctx.config.settings.no_data_banner_after)
    return WallData(
        now_ms=now_ms,
        kpis=kpis,
        attack_map=queries.attack_map(ctx.store, ctx.config.inventory, now_ms, hours=MAP_HOURS),
        places=queries.source_places(ctx.store, ctx.config.inventory, now_ms, hours=MAP_HOURS, limit=MAX_ARCS),
        timeline=queries.timeline_24h(ctx.store, now_ms),
        recent=queries.recent_incidents(ctx.store, min_severity="high", limit=RECENT_LIMIT),
        health=health,
        alarm=alarm,
    )


def _silence(latest_ms: int | None, tz: tzinfo, now_ms: int) -> str:
    if latest_ms is None:
        return "No data: no event has ever arrived"
    return f"No data: sensors silent since {fmt_time(latest_ms, tz, date=now_ms - latest_ms > 86_400_000)}"


# --- figures -----------------------------------------------------------------------------------

ARC_OPACITY = {"critical": 0.9, "high": 0.8, "medium": 0.6, "low": 0.45, "info": 0.35}
LABEL_RADIUS_DEG = 0.8  # sites closer than this share one label on the inset ("Siriraj Hospital +5")
LABEL_CHARS = 22


def _arc_width(events: int, most: int) -> float:
    if most <= 1:
        return ARC_WIDTHS[0]
    share = math.sqrt(events / most)
    return ARC_WIDTHS[min(len(ARC_WIDTHS) - 1, int(share * len(ARC_WIDTHS)))]


def site_labels(sites: pd.DataFrame) -> list[str]:
    """One label per cluster of nearby sites, on its worst site (``"Siriraj Hospital +5"``); the
    others get ``""``. Sites with no open incident are labelled only when alone."""
    rank = {level: i for i, level in enumerate(theme.SEVERITY_LEVELS)}
    rows = sites.to_dict("records")
    order = sorted(range(len(rows)), key=lambda i: (rank.get(rows[i]["severity"], 9), -int(rows[i]["criticality"]),
                                                    rows[i]["name"]))
    anchors: list[list[Any]] = []  # [index, lat, lon, others]
    for i in order:
        lat, lon = float(rows[i]["lat"]), float(rows[i]["lon"])
        near = next((a for a in anchors if math.hypot(a[1] - lat, a[2] - lon) < LABEL_RADIUS_DEG), None)
        if near is None:
            anchors.append([i, lat, lon, 0])
        else:
            near[3] += 1
    labels = [""] * len(sites)
    for i, _lat, _lon, others in anchors:
        name = str(rows[i]["name"])
        if len(name) > LABEL_CHARS:
            cut = name[:LABEL_CHARS].rsplit(" ", 1)[0]
            name = cut + "…"
        labels[i] = name + (f" +{others}" if others else "")
    return labels


def build_map_figure(arcs: pd.DataFrame, sites: pd.DataFrame, centroids: dict[str, tuple[float, float]], *,
                     places: pd.DataFrame | None = None, empty_message: str | None = None, nodata: bool = False,
                     inset: dict[str, tuple[float, float]] | None = None) -> go.Figure:
    """The attack map (see ``map_spec``) as a ``go.Figure``."""
    return as_figure(map_spec(arcs, sites, centroids, places=places, empty_message=empty_message, nodata=nodata,
                              inset=inset))


def place_label(country: str, city: str, lat: float, lon: float) -> str:
    """``"London, United Kingdom"``; a place without a city name is its coordinates and country."""
    where = city if city else f"{lat:.2f}, {lon:.2f}"
    return f"{where}, {country_name(country)}" if country else where


def _segments(arcs: pd.DataFrame, places: pd.DataFrame | None, site_pos: dict[str, Any],
              centroids: dict[str, tuple[float, float]]) -> list[tuple[str, str, str, float, float, str, int, str]]:
    """What the map draws, biggest first, at most ``MAX_ARCS``: ``(kind, country, city, lat, lon, site,
    events, severity)`` with ``kind`` ``"city"`` (a located source, at its coordinates) or ``"country"``
    (the events of a country → site arc that no place accounts for, at the country's centroid)."""
    drawable = arcs[arcs["src_country"].isin(list(centroids)) & arcs["site"].isin(list(site_pos))]
    found: list[tuple[str, str, str, float, float, str, int, str]] = []
    if places is not None and len(places):
        located = places[places["site"].isin(list(site_pos))]
        placed: dict[tuple[str, str], int] = {}
        for country, city, lat, lon, site, events, severity in zip(
                located["src_country"].tolist(), located["src_city"].tolist(), located["lat"].tolist(),
                located["lon"].tolist(), located["site"].tolist(), located["events"].tolist(),
                located["severity"].tolist()):
            found.append(("city", country, city, lat, lon, site, events, severity))
            placed[(country, site)] = placed.get((country, site), 0) + events
        if placed:  # what is left of each arc once its located events are drawn from their cities
            rest = [n - placed.get(key, 0) for key, n in zip(zip(drawable["src_country"].tolist(),
                                                                 drawable["site"].tolist()),
                                                             drawable["events"].tolist())]
            drawable = drawable.assign(events=rest)
            drawable = drawable[drawable["events"] > 0]
    if len(drawable) > MAX_ARCS:
        drawable = drawable.nlargest(MAX_ARCS, "events", keep="first")
    for country, site, events, severity in zip(drawable["src_country"].tolist(), drawable["site"].tolist(),
                                               drawable["events"].tolist(), drawable["severity"].tolist()):
        lat, lon = centroids[country]
        found.append(("country", country, "", lat, lon, site, int(events), severity))
    if found and found[0][0] == "city":  # both kinds: the biggest of both (stable: ties keep their order)
        found.sort(key=lambda seg: -seg[6])
    return found[:MAX_ARCS]


def map_spec(arcs: pd.DataFrame, sites: pd.DataFrame, centroids: dict[str, tuple[float, float]], *,
             places: pd.DataFrame | None = None, empty_message: str | None = None, nodata: bool = False,
             inset: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """World (left, Pacific-centred) with arcs from the sources to our sites, and an inset (right)
    of the sites' country. ``arcs``: ``queries.ARC_COLUMNS``; ``sites``: ``queries.SITE_COLUMNS``;
    ``places``: ``queries.PLACE_COLUMNS``, sources a city GeoIP database located. A located source's
    arc starts at its city; the rest of a country's events start at the country's centroid.

    Traces, in drawing order: arcs (one trace per severity x width, info first so critical is
    on top; named ``arcs <severity>``), ``source countries``, ``source cities`` (only with places),
    ``sites`` (world) and ``sites inset``. The ``customdata`` of every clickable point is
    ``"site:<id>"`` or ``"country:<cc>"``.
    """
    site_rows = sites.to_dict("records")
    site_pos = {r["site"]: (r["lat"], r["lon"]) for r in site_rows}
    site_name = {r["site"]: r["name"] for r in site_rows}
    segments = _segments(arcs, places, site_pos, centroids)
    most = max((seg[6] for seg in segments), default=0)
    groups: dict[tuple[str, float], dict[str, list[Any]]] = {}
    by_country: dict[str, int] = {}
    by_city: dict[tuple[str, str, float, float], int] = {}
    for kind, country, city, lat0, lon0, site, events, severity in segments:
        lat1, lon1 = site_pos[site]
        g = groups.setdefault((severity, _arc_width(events, most)), {"lat": [], "lon": [], "text": [], "customdata": []})
        origin = place_label(country, city, lat0, lon0) if kind == "city" else country_name(country)
        text = f"{origin} → {site_name[site]}<br>{events:,} events · worst {severity}"
        g["lat"] += [lat0, lat1, None]
        g["lon"] += [lon0, lon1, None]
        g["text"] += [text, text, None]
        g["customdata"] += [f"site:{site}", f"site:{site}", None]
        if kind == "city":
            by_city[(country, city, lat0, lon0)] = by_city.get((country, city, lat0, lon0), 0) + events
        else:
            by_country[country] = by_country.get(country, 0) + events
    lat_range, lon_range = _inset_ranges(sites, inset)
    traces: list[dict[str, Any]] = []
    for level in reversed(theme.SEVERITY_LEVELS):  # info first: critical ends up on top
        for width in ARC_WIDTHS:
            g = groups.get((level, width))
            if g:
                traces.append({"type": "scattergeo", "geo": "geo", "mode": "lines", "name": f"arcs {level}",
                               "line": {"color": theme.SEVERITY_COLORS[level], "width": width},
                               "opacity": ARC_OPACITY[level], "hoverinfo": "text", **g})
    top = max([*by_country.values(), *by_city.values()], default=0)
    if by_country:
        countries = sorted(by_country.items(), key=lambda item: -item[1])
        traces.append({
            "type": "scattergeo", "geo": "geo", "mode": "markers", "name": "source countries",
            "lat": [centroids[c][0] for c, _ in countries], "lon": [centroids[c][1] for c, _ in countries],
            "marker": {"size": [round(6 + 16 * math.sqrt(n / top), 1) for _, n in countries], "color": ATTACKER_COLOR,
                       "opacity": 0.9, "line": {"color": theme.BG, "width": 1}},
            "text": [f"{country_name(c)}: {n:,} events" for c, n in countries],
            "customdata": [f"country:{c}" for c, _ in countries], "hoverinfo": "text",
        })
    if by_city:
        cities = sorted(by_city.items(), key=lambda item: -item[1])
        traces.append({
            "type": "scattergeo", "geo": "geo", "mode": "markers", "name": "source cities",
            "lat": [key[2] for key, _ in cities], "lon": [key[3] for key, _ in cities],
            "marker": {"size": [round(5 + 14 * math.sqrt(n / top), 1) for _, n in cities], "color": ATTACKER_COLOR,
                       "opacity": 0.9, "line": {"color": theme.BG, "width": 1}},
            "text": [f"{place_label(*key)}: {n:,} events" for key, n in cities],
            "customdata": [f"country:{key[0]}" if key[0] else None for key, _ in cities], "hoverinfo": "text",
        })
    if len(sites):
        colors = [theme.SEVERITY_COLORS.get(s, NO_INCIDENT_COLOR) for s in sites["severity"]]
        hover = [
            f"<b>{r['name']}</b> ({r['sector']})<br>"
            f"{r['open_incidents']:,}{'+' if r['open_incidents'] >= queries.SITE_OPEN_CAP else ''} open, "
            f"worst {r['severity'] or 'none'} (24 h)<br>{r['events']:,} events in the last {MAP_HOURS} h"
            for r in site_rows
        ]
        custom = [f"site:{s}" for s in sites["site"]]
        lat, lon = sites["lat"].tolist(), sites["lon"].tolist()
        traces.append({"type": "scattergeo", "geo": "geo", "mode": "markers", "name": "sites", "lat": lat, "lon": lon,
                       "marker": {"size": 8, "color": colors, "line": {"color": theme.TEXT, "width": 1}},
                       "text": hover, "customdata": custom, "hoverinfo": "text"})
        traces.append({"type": "scattergeo", "geo": "geo2", "mode": "markers+text", "name": "sites inset",
                       "lat": lat, "lon": lon,
                       "marker": {"size": [10 + 3 * int(c) for c in sites["criticality"]], "color": colors,
                                  "line": {"color": theme.TEXT, "width": 2}},
                       "text": site_labels(sites), "textposition": _label_sides(sites, lon_range),
                       "textfont": {"size": 15, "color": theme.TEXT}, "hovertext": hover, "hoverinfo": "text",
                       "customdata": custom})
    layout = {
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "showlegend": False,
        "clickmode": "event",
        "hoverlabel": {"font": {"size": 16}},
        "geo": {"domain": {"x": [0, 0.71], "y": [0, 1]},
                "projection": {"type": "natural earth", "rotation": {"lon": 100}},
                "lonaxis": {"range": [-80, 280]}, "lataxis": {"range": [-50, 80]}, "resolution": 110},
        "geo2": {"domain": {"x": [0.725, 1], "y": [0, 1]}, "projection": {"type": "mercator"},
                 "lataxis": {"range": list(lat_range)}, "lonaxis": {"range": list(lon_range)}, "resolution": 50,
                 "showcountries": True, "countrywidth": 1.2, "showframe": True, "framecolor": theme.BORDER},
        "uirevision": "wall-map",
    }
    return figure_spec(traces, layout, empty=empty_message, nodata=nodata)


def _inset_ranges(sites: pd.DataFrame,
                  inset: dict[str, tuple[float, float]] | None) -> tuple[tuple[float, float], tuple[float, float]]:
    if inset:
        return inset["lat"], inset["lon"]
    if not len(sites):
        return (5.0, 21.0), (96.0, 106.5)
    lat0, lat1 = float(sites["lat"].min()), float(sites["lat"].max())
    lon0, lon1 = float(sites["lon"].min()), float(sites["lon"].max())
    pad_lat = max(1.2, (lat1 - lat0) * 0.08)
    pad_lon = max(1.5, (lon1 - lon0) * 0.3)
    # more room on the right: labels of the western and central sites point that way
    return (round(lat0 - pad_lat, 2), round(lat1 + pad_lat, 2)), (round(lon0 - pad_lon, 2), round(lon1 + 2 * pad_lon, 2))


def _label_sides(sites: pd.DataFrame, lon_range: tuple[float, float]) -> list[str]:
    """Labels point inwards: right of sites in the western two thirds, left of the others."""
    split = lon_range[0] + (lon_range[1] - lon_range[0]) * 0.62
    return ["middle right" if lon < split else "middle left" for lon in sites["lon"].tolist()]


def build_timeline_figure(df: pd.DataFrame, tz: tzinfo, *, empty_message: str | None = None,
                          nodata: bool = False) -> go.Figure:
    """The 24 h timeline (see ``timeline_spec``) as a ``go.Figure``."""
    return as_figure(timeline_spec(df, tz, empty_message=empty_message, nodata=nodata))


def timeline_spec(df: pd.DataFrame, tz: tzinfo, *, empty_message: str | None = None,
                  nodata: bool = False) -> dict[str, Any]:
    """Stacked bars of events per bucket, one trace per severity in the order critical → info
    (critical at the bottom of each stack and first in the legend). ``df``: ``queries.TIMELINE_COLUMNS``.
    The x values are wall-clock times in ``tz`` (plotly would drop the offset anyway)."""
    local = df["bucket"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M")
    traces = []
    for level in theme.SEVERITY_LEVELS:
        mask = (df["severity"] == level).to_numpy()
        traces.append({
            "type": "bar", "name": level, "x": local[mask].tolist(), "y": df["events"][mask].tolist(),
            "marker": {"color": theme.SEVERITY_COLORS[level], "line": {"width": 0}},
            "hovertemplate": f"%{{x|%H:%M}} · {level}: %{{y:,}}<extra></extra>",
        })
    layout = {
        "barmode": "stack", "bargap": 0.08, "margin": {"l": 52, "r": 10, "t": 8, "b": 30}, "showlegend": False,
        "xaxis": {"type": "date", "tickformat": "%H:%M", "showgrid": False},
        "yaxis": {"rangemode": "tozero", "tickformat": "~s"},
        "uirevision": "wall-timeline",
    }
    total = int(df["events"].sum()) if len(df) else 0
    if not empty_message and total == 0:
        empty_message = "No events in the last 24 h"
    return figure_spec(traces, layout, empty=empty_message, nodata=nodata)


# --- components --------------------------------------------------------------------------------

def _kpi_tile(level: str, count: int, capped: bool = False) -> dcc.Link:
    href = "/incidents?" + urlencode({"severity": level, "status": OPEN_QUERY})
    value = f"{count:,}+" if capped else f"{count:,}"
    return dcc.Link(
        [html.Div(f"Open {level}", className="wf-kpi-label"),
         html.Div(value, className="wf-kpi-value"),
         html.Div("incidents", className="wf-kpi-delta")],
        href=href, id={"type": "wall-kpi", "severity": level},
        className=f"wf-kpi wf-sev-{level}-kpi wf-kpi-link" + (" wf-kpi-zero" if count == 0 else ""),
        title=f"Open {level} incidents: {'at least ' if capped else ''}{count:,}",
    )


def _sparkline(per_minute: pd.DataFrame) -> html.Div:
    """Events per minute as bars, drawn by one element: each bar is a background layer (one
    component instead of sixty, on a screen that redraws every few seconds)."""
    counts = per_minute["events"].tolist()
    n = len(counts)
    top = max(counts) if counts and max(counts) > 0 else 1
    bar = "linear-gradient(var(--wf-accent), var(--wf-accent))"
    width = 100 / max(n, 1) * 0.72
    style = {
        "backgroundImage": ", ".join([bar] * n),
        "backgroundSize": ", ".join(f"{width:.2f}% {max(3, round(100 * c / top))}%" for c in counts),
        "backgroundPosition": ", ".join(f"{100 * i / max(n - 1, 1):.2f}% 100%" for i in range(n)),
        "backgroundRepeat": "no-repeat",
    }
    return html.Div(className="wf-spark", style=style, title="events per minute, last 60 minutes")


def render_kpis(kpis: queries.WallKpis) -> list[Any]:
    tiles: list[Any] = [_kpi_tile(level, kpis.open_by_severity.get(level, 0), kpis.open_capped(level))
                        for level in theme.SEVERITY_LEVELS]
    now, prev = kpis.events_last_hour, kpis.events_prev_hour
    if prev > 0:
        change = (now - prev) / prev * 100
        arrow = "▲" if change > 0 else ("▼" if change < 0 else "■")
        delta = html.Div(f"{arrow} {abs(change):.0f}% vs previous hour",
                         className="wf-kpi-delta " + ("wf-up" if change > 0 else "wf-down" if change < 0 else ""))
    else:
        delta = html.Div("no events the hour before" if now else "", className="wf-kpi-delta")
    tiles.append(html.Div(
        [html.Div("Events · last hour", className="wf-kpi-label"),
         html.Div([html.Div(f"{now:,}", className="wf-kpi-value"), _sparkline(kpis.per_minute)],
                  className="wf-kpi-events-row"),
         delta],
        className="wf-kpi wf-kpi-events", id="wall-kpi-events",
    ))
    return tiles


def render_recent(recent: pd.DataFrame, config: Config, tz: tzinfo, now_ms: int) -> Any:
    if recent.empty:
        return empty_state("No open critical or high incidents")
    names = {s.id: s.name for s in config.inventory.sites}
    rows = []
    for r in recent.to_dict("records"):
        site = r["site"] if isinstance(r["site"], str) else ""
        src = r["src_ip"] if isinstance(r["src_ip"], str) else "several sources"
        country = f" ({r['src_country']})" if isinstance(r["src_country"], str) and r["src_country"] else ""
        rows.append(dcc.Link(
            [severity_chip(r["severity"]),
             html.Div([html.Div(r["title"], className="wf-recent-title"),
                       html.Div(f"{names.get(site, site or 'unknown site')} · {src}{country}", className="wf-recent-sub")],
                      className="wf-recent-text"),
             html.Div([html.Div(fmt_time(r["last_seen"], tz, date=False), className="wf-recent-time"),
                       html.Div(f"{r['event_count']:,} ev", className="wf-recent-sub")], className="wf-recent-right")],
            href=f"/incidents/{r['id']}", className="wf-recent-row",
            id={"type": "wall-recent", "incident": int(r["id"])},
        ))
    return rows


MAX_SOURCE_CHIPS = 6


def render_health(health: pd.DataFrame) -> Any:
    """Counts per state, then the enabled sources as chips, worst first (at most
    ``MAX_SOURCE_CHIPS``; the rest are counted and one click away on the feeds page)."""
    enabled = health[health["enabled"]]
    if enabled.empty:
        return empty_state("No source is enabled: nothing feeds this screen", nodata=True)
    ordered = enabled.assign(rank=enabled["state"].map(STATE_RANK).fillna(9)).sort_values(["rank", "name"])
    counts = ordered["state"].value_counts()
    summary = [state_chip(state, f"{int(counts[state])} {state}") for state in sorted(counts.index, key=STATE_RANK.get)]
    chips: list[Any] = [html.Div(summary, className="wf-health-summary")]
    records = ordered.to_dict("records")
    for r in records[:MAX_SOURCE_CHIPS]:
        age = "never" if pd.isna(r["age_s"]) else human_age(int(r["age_s"] * 1000))
        chips.append(dcc.Link(
            [html.Span(className=f"wf-src-dot wf-src-dot-{r['state']}"), html.Span(r["name"], className="wf-src-name"),
             html.Span(age, className="wf-src-age")],
            href="/feeds", className=f"wf-src wf-src-{r['state']}",
            title=f"{r['name']} ({r['kind']}): {r['state']}, {r['reason']}", id={"type": "wall-source", "source": r["id"]},
        ))
    if len(records) > MAX_SOURCE_CHIPS:
        chips.append(dcc.Link(f"+{len(records) - MAX_SOURCE_CHIPS} more", href="/feeds", className="wf-src wf-src-more"))
    return chips


def _map_note(amap: queries.AttackMap, places: pd.DataFrame | None = None) -> list[Any]:
    """Under the map: the top source countries, and what the map could not draw."""
    parts: list[Any] = []
    if len(amap.arcs):
        top = amap.arcs.groupby("src_country", observed=True)["events"].sum().sort_values(ascending=False).head(5)
        parts.append(html.Span("Top sources: ", className="wf-note-label"))
        parts.append(" · ".join(f"{country_name(c)} {n:,}" for c, n in top.items()))
        parts.append(html.Br())
    extra = [f"{fmt_count(amap.total_events)} events in the last {MAP_HOURS} h"]
    if places is not None and len(places):
        extra.append(f"{fmt_count(int(places['events'].sum()))} drawn from their city")
    if amap.unknown_origin_events:
        extra.append(f"{amap.unknown_origin_events:,} from unknown origin (internal or no GeoIP)")
    if amap.unplaced_events:
        extra.append(f"{amap.unplaced_events:,} to targets outside the inventory")
    if len(amap.arcs) > MAX_ARCS:
        extra.append(f"{len(amap.arcs) - MAX_ARCS:,} smaller arcs not drawn")
    parts.append(html.Span(" · ".join(extra), className="wf-muted"))
    return parts


def render_wall(data: WallData, config: Config, tz: tzinfo) -> dict[str, Any]:
    """Every output of the wall for one refresh, keyed by component id (a pure function of the data)."""
    limit_ms = int(config.settings.no_data_banner_after.total_seconds() * 1000)
    latest = data.kpis.latest_event_ms
    amap = data.attack_map
    nodata = data.alarm is not None
    map_empty = None
    if amap.total_events == 0:
        map_empty = _silence(latest, tz, data.now_ms) if nodata else f"No events in the last {MAP_HOURS} h"
    timeline_empty = _silence(latest, tz, data.now_ms) if nodata and int(data.timeline["events"].sum()) == 0 else None
    return {
        ids.KPIS: render_kpis(data.kpis),
        ids.MAP: map_spec(amap.arcs, amap.sites, country_centroids(), places=data.places, empty_message=map_empty,
                          nodata=nodata and map_empty is not None),
        ids.MAP_ASOF: asof_label(latest, data.now_ms, tz, limit_ms),
        ids.MAP_NOTE: _map_note(amap, data.places),
        ids.TIMELINE: timeline_spec(data.timeline, tz, empty_message=timeline_empty,
                                    nodata=timeline_empty is not None),
        ids.TIMELINE_ASOF: asof_label(latest, data.now_ms, tz, limit_ms),
        ids.RECENT: render_recent(data.recent, config, tz, data.now_ms),
        ids.RECENT_ASOF: asof_label(data.now_ms, data.now_ms, tz, limit_ms, prefix="checked"),
        ids.HEALTH: render_health(data.health),
        ids.HEALTH_ASOF: asof_label(data.now_ms, data.now_ms, tz, limit_ms, prefix="checked"),
    }


# --- layout and callbacks -------------------------------------------------------------------------

def _severity_legend() -> html.Div:
    return html.Div([html.Span([html.Span(className="wf-legend-dot", style={"background": theme.SEVERITY_COLORS[s]}),
                                s], className="wf-legend-item") for s in theme.SEVERITY_LEVELS],
                    className="wf-legend")


def _legend() -> html.Div:
    return html.Div(
        [html.Span("Sites: worst open incident", className="wf-legend-label"),
         *[html.Span(className="wf-legend-dot", style={"background": theme.SEVERITY_COLORS[s]}, title=s)
           for s in theme.SEVERITY_LEVELS],
         html.Span(className="wf-legend-dot", style={"background": NO_INCIDENT_COLOR}, title="none"),
         html.Span("· arcs: last hour, width = events", className="wf-legend-label")],
        className="wf-legend",
    )


def frame(out: dict[str, Any], tz: tzinfo) -> html.Div:
    """The wall's tree around the outputs of ``render_wall`` (or placeholders)."""
    graph_style = {"height": "100%", "width": "100%"}
    return html.Div(
        [
            html.Div(out.get(ids.KPIS), id=ids.KPIS, className="wf-wall-kpis"),
            html.Div(
                [
                    html.Section(
                        [card_header("Attacks on our sites", _legend(),
                                     asof=html.Span(out.get(ids.MAP_ASOF), id=ids.MAP_ASOF)),
                         dcc.Graph(id=ids.MAP, figure=out.get(ids.MAP) or {}, config=theme.graph_config(wall=True),
                                   style=graph_style, className="wf-wall-graph"),
                         html.Div(out.get(ids.MAP_NOTE), id=ids.MAP_NOTE, className="wf-card-note")],
                        className="wf-card wf-wall-map",
                    ),
                    html.Div(
                        [
                            html.Section(
                                [card_header("Events · last 24 h",
                                             asof=html.Span(out.get(ids.TIMELINE_ASOF), id=ids.TIMELINE_ASOF)),
                                 dcc.Graph(id=ids.TIMELINE, figure=out.get(ids.TIMELINE) or {},
                                           config=theme.graph_config(wall=True), style=graph_style,
                                           className="wf-wall-graph"),
                                 html.Div([_severity_legend(), html.Span(utc_offset(tz), className="wf-card-sub")],
                                          className="wf-card-foot")],
                                className="wf-card wf-wall-timeline",
                            ),
                            html.Section(
                                [card_header("Newest open critical & high",
                                             asof=html.Span(out.get(ids.RECENT_ASOF), id=ids.RECENT_ASOF)),
                                 html.Div(out.get(ids.RECENT), id=ids.RECENT, className="wf-recent")],
                                className="wf-card wf-wall-recent",
                            ),
                        ],
                        className="wf-wall-side",
                    ),
                ],
                className="wf-wall-main",
            ),
            html.Section(
                [html.Div([html.H2("Sources", className="wf-card-title"),
                           html.Span(out.get(ids.HEALTH_ASOF), id=ids.HEALTH_ASOF)], className="wf-health-head"),
                 html.Div(out.get(ids.HEALTH), id=ids.HEALTH, className="wf-health-chips")],
                className="wf-card wf-wall-health",
            ),
        ],
        id=ids.ROOT, className="wf-wall",
    )


def layout(**_kwargs: Any) -> html.Div:
    ctx = context.current()
    now = ctx.now_ms()
    return frame(render_wall(load_wall(ctx, now), ctx.config, ctx.tz), ctx.tz)


def skeleton() -> html.Div:
    from datetime import timezone

    return frame({}, timezone.utc)


_OUTPUT_IDS = (ids.KPIS, ids.MAP, ids.MAP_ASOF, ids.MAP_NOTE, ids.TIMELINE, ids.TIMELINE_ASOF, ids.RECENT,
               ids.RECENT_ASOF, ids.HEALTH, ids.HEALTH_ASOF)


def _prop(component_id: str) -> str:
    return "figure" if component_id in (ids.MAP, ids.TIMELINE) else "children"


@dash.callback([Output(i, _prop(i)) for i in _OUTPUT_IDS], Input(shared.REFRESH, "n_intervals"),
               prevent_initial_call=True)
def update_wall(_n: int | None) -> list[Any]:
    ctx = context.current()
    out = render_wall(load_wall(ctx, ctx.now_ms()), ctx.config, ctx.tz)
    return [out[i] for i in _OUTPUT_IDS]


def map_click_target(click_data: dict[str, Any] | None) -> str | None:
    """Where a click on the map leads: a site → its incidents, a country → incidents from it."""
    for point in (click_data or {}).get("points", []):
        custom = point.get("customdata")
        if isinstance(custom, list):
            custom = custom[0] if custom else None
        if isinstance(custom, str) and ":" in custom:
            kind, value = custom.split(":", 1)
            if kind == "site" and value:
                return "/incidents?" + urlencode({"site": value})
            if kind == "country" and value:
                return "/incidents?" + urlencode({"country": value})
    return None


@dash.callback(Output(shared.URL, "href", allow_duplicate=True), Input(ids.MAP, "clickData"),
               prevent_initial_call=True)
def on_map_click(click_data: dict[str, Any] | None) -> str:
    target = map_click_target(click_data)
    if target is None:
        raise dash.exceptions.PreventUpdate
    return target
