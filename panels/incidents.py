"""The incident list (/incidents): every incident, filtered, sorted and paged in SQL.

Filters (severity, status, site, sector, source country, time range, text) are pre-filled from
the URL query string, so the wall's marks link straight to a filtered list
(``/incidents?site=mwa-bang-khen``, ``?severity=critical&status=new,acknowledged``). Paging is
server-side (``queries.incidents_page``); the grid shows one page. Clicking a row opens
``/incidents/<id>``. The list refreshes itself on the shell's interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import Input, Output, State, ctx as dash_ctx, dcc, html

from panels import context, theme
from panels import ids as shared
from panels.components import asof_label, fmt_time, tz_label
from settings.inventory import SECTORS
from settings.loader import Config
from store import queries
from store.records import SEVERITY_LABELS

PAGE_SIZE = 50
RANGES: dict[str, int | None] = {"1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000,
                                 "30d": 30 * 86_400_000, "all": None}
RANGE_LABELS = {"1h": "Last hour", "24h": "Last 24 h", "7d": "Last 7 days", "30d": "Last 30 days", "all": "Any time"}
# Only orders the store's indexes serve fast at a million incidents (see queries.incidents_page).
SORTS = {"-last_seen": "Newest activity", "-severity": "Most severe", "last_seen": "Oldest activity"}
STATUS_LABELS = {s: s.replace("_", " ") for s in queries.STATUSES}


class ids:  # noqa: N801
    ROOT = "incidents-root"
    SEVERITY = "incidents-severity"
    STATUS = "incidents-status"
    SITE = "incidents-site"
    SECTOR = "incidents-sector"
    COUNTRY = "incidents-country"
    RANGE = "incidents-range"
    TEXT = "incidents-text"
    SORT = "incidents-sort"
    GRID = "incidents-grid"
    SUMMARY = "incidents-summary"
    ASOF = "incidents-asof"
    PAGE = "incidents-page"
    PREV = "incidents-prev"
    NEXT = "incidents-next"
    PAGE_LABEL = "incidents-page-label"


# --- URL and filters ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What the filter controls hold (also what the URL query string can pre-fill)."""

    severity: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    site: str | None = None
    sector: str | None = None
    country: str | None = None
    range: str = "all"
    text: str = ""
    sort: str = "-last_seen"

    def filters(self, now_ms: int) -> queries.IncidentFilters:
        span = RANGES.get(self.range)
        return queries.IncidentFilters(
            severity=self.severity, status=self.status, site=self.site or None, sector=self.sector or None,
            country=self.country or None, since_ms=None if span is None else now_ms - span,
            text=self.text.strip() or None,
        )


def _split(value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return tuple(v for v in (str(i).strip().lower() for i in items) if v in allowed)


def selection_from_query(query: dict[str, Any], config: Config) -> Selection:
    """URL query parameters (``severity``, ``status`` comma-separated; ``site``, ``sector``,
    ``country``, ``range``, ``q``, ``sort``) → a valid ``Selection``; unknown values are dropped."""
    sites = {s.id for s in config.inventory.sites}
    site = query.get("site")
    sector = query.get("sector")
    country = str(query.get("country") or "").strip().upper()
    status_value = query.get("status")
    if isinstance(status_value, str) and status_value.strip().lower() == "open":
        status_value = ",".join(queries.OPEN_STATUSES)
    return Selection(
        severity=_split(query.get("severity"), SEVERITY_LABELS),
        status=_split(status_value, queries.STATUSES),
        site=site if site in sites else None,
        sector=sector if sector in SECTORS else None,
        country=country if len(country) == 2 and country.isalpha() else None,
        range=query.get("range") if query.get("range") in RANGES else "all",
        text=str(query.get("q") or "")[:200],
        sort=query.get("sort") if query.get("sort") in SORTS else "-last_seen",
    )


def next_page(triggered: Any, page: int | None, pages: int | None = None) -> int:
    """The page to show after ``triggered`` fired: prev/next step, anything else keeps the page
    on a refresh tick and goes back to the first page when a filter changed."""
    page = page or 0
    if triggered == ids.PREV:
        return max(0, page - 1)
    if triggered == ids.NEXT:
        return page + 1 if pages is None else min(page + 1, max(0, pages - 1))
    if triggered == shared.REFRESH:
        return page
    return 0


# --- grid ------------------------------------------------------------------------------------------

COLUMN_DEFS: list[dict[str, Any]] = [
    {"field": "severity", "headerName": "Severity", "width": 130, "cellStyle": theme.severity_cell_style()},
    {"field": "status", "headerName": "Status", "width": 130},
    {"field": "title", "headerName": "Incident", "flex": 1, "minWidth": 360, "tooltipField": "title"},
    {"field": "site_name", "headerName": "Site", "width": 250, "tooltipField": "site_name"},
    {"field": "sector", "headerName": "Sector", "width": 120},
    {"field": "source", "headerName": "Source", "width": 210},
    {"field": "events", "headerName": "Events", "width": 110, "type": "rightAligned"},
    {"field": "first_seen", "headerName": "First seen", "width": 190},
    {"field": "last_seen", "headerName": "Last seen", "width": 190},
    {"field": "score", "headerName": "Score", "width": 100, "type": "rightAligned"},
]


def grid_rows(page: pd.DataFrame, config: Config, tz: tzinfo) -> list[dict[str, Any]]:
    """One page of ``queries.INCIDENT_COLUMNS`` → grid rows (display strings, display zone)."""
    names = {s.id: s.name for s in config.inventory.sites}
    rows = []
    for r in page.itertuples():
        site = r.site if isinstance(r.site, str) else ""
        country = r.src_country if isinstance(r.src_country, str) else ""
        src = r.src_ip if isinstance(r.src_ip, str) else ""
        rows.append({
            "id": str(r.id), "severity": r.severity, "status": STATUS_LABELS.get(r.status, r.status),
            "title": r.title, "site": site, "site_name": names.get(site, site or "—"),
            "sector": r.sector if isinstance(r.sector, str) else "", "source": f"{src} · {country}" if country else src,
            "events": f"{int(r.event_count):,}", "first_seen": fmt_time(r.first_seen, tz),
            "last_seen": fmt_time(r.last_seen, tz), "score": int(r.score),
        })
    return rows


def _summary(result: queries.IncidentPage) -> str:
    if result.total == 0:
        return "No incidents match these filters"
    first = result.page * result.page_size + 1
    last = first + len(result.rows) - 1
    total = f"{result.total:,}+" if result.total_capped else f"{result.total:,}"
    return f"{first:,}–{last:,} of {total} incidents"


def render_page(ctx: context.AppContext, sel: Selection, page: int, now_ms: int) -> dict[str, Any]:
    result = queries.incidents_page(ctx.store, sel.filters(now_ms), sort=sel.sort, page=page, page_size=PAGE_SIZE)
    if result.rows.empty and page > 0 and result.total > 0:
        page = max(0, result.pages - 1)
        result = queries.incidents_page(ctx.store, sel.filters(now_ms), sort=sel.sort, page=page,
                                        page_size=PAGE_SIZE)
    limit = int(ctx.config.settings.no_data_banner_after.total_seconds() * 1000)
    pages = f"{result.pages:,}+" if result.total_capped else f"{result.pages:,}"
    return {
        ids.GRID: grid_rows(result.rows, ctx.config, ctx.tz),
        ids.SUMMARY: _summary(result),
        ids.PAGE: page,
        ids.PAGE_LABEL: f"Page {page + 1:,} of {pages}",
        ids.PREV: page == 0,
        ids.NEXT: (page + 1) * PAGE_SIZE >= result.total and not result.total_capped,
        ids.ASOF: asof_label(now_ms, now_ms, ctx.tz, limit, prefix="as of"),
    }


# --- layout --------------------------------------------------------------------------------------------

def _filters(sel: Selection, config: Config) -> html.Div:
    site_options = [{"label": s.name, "value": s.id} for s in sorted(config.inventory.sites, key=lambda s: s.name)]

    def field(label: str, control: Any) -> html.Div:
        return html.Div([html.Label(label, className="wf-filter-label"), control], className="wf-filter")

    return html.Div(
        [
            field("Severity", dcc.Dropdown(id=ids.SEVERITY, options=[{"label": s, "value": s} for s in SEVERITY_LABELS],
                                           value=list(sel.severity), multi=True, placeholder="any")),
            field("Status", dcc.Dropdown(id=ids.STATUS, options=[{"label": v, "value": k} for k, v in STATUS_LABELS.items()],
                                         value=list(sel.status), multi=True, placeholder="any")),
            field("Site", dcc.Dropdown(id=ids.SITE, options=site_options, value=sel.site, placeholder="any site")),
            field("Sector", dcc.Dropdown(id=ids.SECTOR, options=[{"label": s, "value": s} for s in SECTORS],
                                         value=sel.sector, placeholder="any")),
            field("Source country", dcc.Input(id=ids.COUNTRY, value=sel.country or "", placeholder="e.g. CN",
                                              maxLength=2, debounce=True, className="form-control wf-input-cc")),
            field("Active", dcc.Dropdown(id=ids.RANGE, options=[{"label": v, "value": k} for k, v in RANGE_LABELS.items()],
                                         value=sel.range, clearable=False)),
            field("Search", dcc.Input(id=ids.TEXT, value=sel.text, placeholder="title, IP, signature, #id",
                                      debounce=True, type="search", className="form-control")),
            field("Sort", dcc.Dropdown(id=ids.SORT, options=[{"label": v, "value": k} for k, v in SORTS.items()],
                                       value=sel.sort, clearable=False)),
        ],
        className="wf-filters",
    )


def frame(sel: Selection, config: Config, tz: tzinfo, out: dict[str, Any]) -> html.Div:
    return html.Div(
        [
            html.Div(
                [html.H2("Incidents", className="wf-page-title"),
                 html.Span(out.get(ids.SUMMARY), id=ids.SUMMARY, className="wf-page-summary"),
                 html.Span(f"times in {tz_label(tz)}", className="wf-card-sub"),
                 html.Span(out.get(ids.ASOF), id=ids.ASOF, className="wf-page-asof")],
                className="wf-page-head",
            ),
            _filters(sel, config),
            dag.AgGrid(
                id=ids.GRID, columnDefs=COLUMN_DEFS, rowData=out.get(ids.GRID, []),
                defaultColDef={"sortable": False, "resizable": True, "suppressMovable": True},
                getRowId="params.data.id",
                dashGridOptions={"theme": theme.AG_GRID_THEME, "tooltipShowDelay": 300, "domLayout": "normal",
                                 "localeText": {"noRowsToShow": "No incidents match these filters"},
                                 "rowStyle": {"cursor": "pointer"}, "suppressCellFocus": True},
                className="wf-grid wf-incidents-grid", style={"height": "calc(100vh - 330px)", "minHeight": "420px"},
            ),
            html.Div(
                [html.Button("‹ Previous", id=ids.PREV, className="btn btn-outline-light",
                             disabled=out.get(ids.PREV, True)),
                 html.Span(out.get(ids.PAGE_LABEL), id=ids.PAGE_LABEL, className="wf-page-label"),
                 html.Button("Next ›", id=ids.NEXT, className="btn btn-outline-light",
                             disabled=out.get(ids.NEXT, True))],
                className="wf-pager",
            ),
            dcc.Store(id=ids.PAGE, data=out.get(ids.PAGE, 0)),
        ],
        id=ids.ROOT, className="wf-page wf-incidents",
    )


def layout(**query: Any) -> html.Div:
    ctx = context.current()
    sel = selection_from_query(query, ctx.config)
    return frame(sel, ctx.config, ctx.tz, render_page(ctx, sel, 0, ctx.now_ms()))


def skeleton(config: Config | None = None) -> html.Div:
    from datetime import timezone

    if config is None:
        from panels.shell import skeleton_config

        config = skeleton_config()
    return frame(Selection(), config, timezone.utc, {})


_OUTPUTS = (ids.GRID, ids.SUMMARY, ids.PAGE, ids.PAGE_LABEL, ids.PREV, ids.NEXT, ids.ASOF)
_PROPS = {ids.GRID: "rowData", ids.PAGE: "data", ids.PREV: "disabled", ids.NEXT: "disabled"}


@dash.callback(
    [Output(i, _PROPS.get(i, "children")) for i in _OUTPUTS],
    Input(ids.SEVERITY, "value"), Input(ids.STATUS, "value"), Input(ids.SITE, "value"), Input(ids.SECTOR, "value"),
    Input(ids.COUNTRY, "value"), Input(ids.RANGE, "value"), Input(ids.TEXT, "value"), Input(ids.SORT, "value"),
    Input(ids.PREV, "n_clicks"), Input(ids.NEXT, "n_clicks"), Input(shared.REFRESH, "n_intervals"),
    State(ids.PAGE, "data"),
    prevent_initial_call=True,
)
def update_incidents(severity: list[str] | None, status: list[str] | None, site: str | None, sector: str | None,
                     country: str | None, range_: str | None, text: str | None, sort: str | None,
                     _prev: int | None, _next: int | None, _n: int | None, page: int | None) -> list[Any]:
    ctx = context.current()
    sel = selection_from_query(
        {"severity": severity or [], "status": status or [], "site": site, "sector": sector, "country": country,
         "range": range_, "q": text, "sort": sort}, ctx.config)
    out = render_page(ctx, sel, next_page(dash_ctx.triggered_id, page), ctx.now_ms())
    return [out[i] for i in _OUTPUTS]


def row_click_target(cell: dict[str, Any] | None) -> str | None:
    row_id = (cell or {}).get("rowId")
    return f"/incidents/{row_id}" if row_id not in (None, "") and str(row_id).isdigit() else None


@dash.callback(Output(shared.URL, "href", allow_duplicate=True), Input(ids.GRID, "cellClicked"),
               prevent_initial_call=True)
def on_row_click(cell: dict[str, Any] | None) -> str:
    target = row_click_target(cell)
    if target is None:
        raise dash.exceptions.PreventUpdate
    return target
