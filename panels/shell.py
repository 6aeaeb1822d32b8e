"""The frame around every page: top bar, the can't-miss "no data" banner, refresh and routing.

* Top bar: the floor's title, a DEMO badge (loud) when any enabled source is demo data, the
  navigation (Wall / Incidents / Exposure / Feeds) and a live clock in the display time zone, labelled.
* The banner: shown on every page when no event has arrived for longer than
  ``settings.no_data_banner_after`` or when every enabled sensor is stale or failed
  (``store.freshness.no_data_alarm``); refreshed with the data.
* One ``dcc.Interval`` (``ids.REFRESH``, period ``settings.refresh_interval``) that every page's
  refresh callback listens to, a ``dcc.Location`` for navigating from callbacks, and
  ``dash.page_container``.

``app.layout = shell.layout`` (the function itself), so each page load is built fresh.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, clientside_callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from panels import context, ids
from panels.components import demo_badge, fmt_time, tz_label
from settings.loader import Config
from store import queries
from store.freshness import no_data_alarm


class shell_ids:  # noqa: N801 - the panel's own ids, named like the other panels' ``ids``
    HEADER = "shell-header"
    DEMO = "shell-demo-badge"
    NAV = "shell-nav"
    TZ_LABEL = "shell-tz-label"


NAV_LINKS = (("Wall", "/wall"), ("Incidents", "/incidents"), ("Exposure", "/exposure"), ("Feeds", "/feeds"))
# ``/`` shows the wall too (panels/home.py), so its link must light up there as well.
NAV_ALIASES = {"/": "/wall"}


def nav_link_id(href: str) -> str:
    return f"shell-nav{href.replace('/', '-')}"


def active_links(pathname: str | None) -> list[bool]:
    """Which navigation link is lit for ``pathname``: the page itself or anything under it."""
    path = NAV_ALIASES.get(pathname or "/", pathname or "/")
    return [path == href or path.startswith(href + "/") for _label, href in NAV_LINKS]


def alarm_text(ctx: context.AppContext, now_ms: int) -> str | None:
    """The banner's text now, or ``None`` (reads the newest event time and the sensors' states)."""
    try:
        health = queries.source_health(ctx.store, ctx.config, now_ms)
        latest = queries.latest_event_time(ctx.store)
    except SQLAlchemyError as exc:
        # The floor must say so when it cannot read its own store, not show an empty "all clear".
        return f"STORE UNREADABLE: {type(exc.orig or exc).__name__}; the data on screen cannot be trusted"
    sensors = health[(health["kind"] == "sensor") & health["enabled"]]
    return no_data_alarm(
        latest_event_ms=latest,
        sensor_states=sensors["state"].tolist(),
        now_ms=now_ms,
        no_data_after=ctx.config.settings.no_data_banner_after,
    )


def banner(text: str | None) -> html.Div | None:
    if not text:
        return None
    return html.Div(
        [html.Span(text), html.Small("Check the Feeds page: a silent sensor is not an all-clear",
                                     className="wf-banner-detail")],
        className="wf-banner-stale", role="alert",
    )


def header(config: Config, now_ms: int | None = None) -> html.Header:
    settings = config.settings
    tz = ZoneInfo(settings.display_timezone)
    tz_text = tz_label(tz)
    clock = fmt_time(now_ms, tz, seconds=True) if now_ms is not None else "--:--:--"
    return html.Header(
        [
            html.Div([html.H1(settings.title, className="wf-header-title"),
                      html.Div("watchfloor", className="wf-header-sub")], className="wf-header-brand"),
            demo_badge(id=shell_ids.DEMO) if config.demo_enabled else None,
            html.Div(className="wf-header-spacer"),
            dbc.Nav([dbc.NavLink(label, href=href, id=nav_link_id(href)) for label, href in NAV_LINKS],
                    id=shell_ids.NAV, className="wf-nav"),
            html.Div([html.Div(clock, id=ids.CLOCK, className="wf-clock"),
                      html.Div(tz_text, id=shell_ids.TZ_LABEL, className="wf-clock-tz")],
                     className="wf-clock-box"),
        ],
        id=shell_ids.HEADER, className="wf-header",
    )


def frame(config: Config, banner_text: str | None, page: Any, now_ms: int | None = None) -> html.Div:
    settings = config.settings
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            dcc.Interval(id=ids.REFRESH, interval=int(settings.refresh_interval.total_seconds() * 1000)),
            dcc.Interval(id=ids.CLOCK_TICK, interval=1000),
            dcc.Store(id=ids.DISPLAY_TZ, data=settings.display_timezone),
            header(config, now_ms),
            html.Div(banner(banner_text), id=ids.BANNER),
            html.Main(page, className="wf-main"),
        ],
        className="wf-app",
    )


def layout(**_kwargs: Any) -> html.Div:
    ctx = context.maybe_current()
    if ctx is None:  # Dash validates ``app.layout`` once when it is assigned, before any request
        return frame(skeleton_config(), None, dash.page_container)
    now = ctx.now_ms()
    return frame(ctx.config, alarm_text(ctx, now), dash.page_container, now)


def skeleton_config() -> Config:
    """An empty configuration, for building component trees without a running app."""
    from settings.app_settings import AppSettings
    from settings.inventory import Inventory

    return Config(folder=Path("."), settings=AppSettings(), inventory=Inventory(), sources=[])


def skeleton(config: Config | None = None) -> html.Div:
    """The shell's component tree without reading the store (for ``validation_layout``)."""
    return frame(config or skeleton_config(), None, html.Div())


@dash.callback(Output(ids.BANNER, "children"), Input(ids.REFRESH, "n_intervals"), prevent_initial_call=True)
def update_banner(_n: int | None) -> html.Div | None:
    ctx = context.current()
    return banner(alarm_text(ctx, ctx.now_ms()))


# The clock ticks in the browser: no server round trip every second.
clientside_callback(
    """
    function(_n, tz) {
        try {
            const parts = new Intl.DateTimeFormat('en-GB', {
                timeZone: tz || 'UTC', hourCycle: 'h23', year: 'numeric', month: '2-digit',
                day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit'
            }).formatToParts(new Date());
            const p = Object.fromEntries(parts.map(x => [x.type, x.value]));
            return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
        } catch (e) {
            return new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
        }
    }
    """,
    Output(ids.CLOCK, "children"),
    Input(ids.CLOCK_TICK, "n_intervals"),
    State(ids.DISPLAY_TZ, "data"),
)


@dash.callback([Output(nav_link_id(href), "active") for _label, href in NAV_LINKS], Input(ids.URL, "pathname"))
def light_nav(pathname: str | None) -> list[bool]:
    return active_links(pathname)
