"""One incident (/incidents/<incident_id>): what happened, why it is this severe, what to do.

* Summary: severity, status, assignee, first/last seen (display zone), events, score, site, source
  (address, country, and city with coordinates when a city GeoIP database located it).
* "Why": the score's named contributions (``score_explain``) as a table with bars.
* The matched indicator(s): value, feed, confidence, TLP, first/last seen.
* The target: site, zone and asset from the inventory, and the asset's open exposure findings
  (CVE, known-exploited badge, CVSS, version confirmed or not; ``queries.exposures_for_asset``).
* The events (newest first, paged in SQL and capped) and the raw record of the selected one.
* Officer actions (acknowledge, investigating, resolve, false positive, assign, note), written
  through ``store.events_write`` and shown at once in the audit log.

An unknown id gets a plain "no such incident" page, not an error.
"""
from __future__ import annotations

from datetime import tzinfo
from typing import Any

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import Input, Output, State, ctx as dash_ctx, dcc, html

from panels import context, exposure, theme
from panels.components import fmt_count, fmt_time, severity_chip, status_chip, tz_label
from panels.geo import country_name
from settings.loader import Config
from store import queries
from store.db import loads

EVENTS_PAGE = 200
ACTIONS = {  # button id suffix → (status, label)
    "acknowledged": "Acknowledge",
    "investigating": "Investigating",
    "resolved": "Resolve",
    "false_positive": "False positive",
}


class ids:  # noqa: N801
    ROOT = "incident-root"
    INCIDENT = "incident-id"
    HEADER = "incident-header"
    ACTION = "incident-action"  # dict id {"type": ACTION, "status": <status>}
    ASSIGNEE = "incident-assignee"
    ASSIGN = "incident-assign"
    NOTE = "incident-note"
    ADD_NOTE = "incident-add-note"
    FEEDBACK = "incident-feedback"
    LOG = "incident-log"
    EVENTS = "incident-events"
    RAW = "incident-raw"
    RAW_TITLE = "incident-raw-title"


# --- pieces ------------------------------------------------------------------------------------------

def render_header(inc: queries.IncidentDetail, config: Config, tz: tzinfo) -> html.Div:
    site = next((s for s in config.inventory.sites if s.id == inc.site), None)
    site_link = dcc.Link(site.name if site else (inc.site or "unknown site"), href=f"/incidents?site={inc.site}") \
        if inc.site else html.Span("no site")
    source = inc.src_ip or "unknown source"
    if inc.src_country:
        source += f" · {country_name(inc.src_country)} ({inc.src_country})"
    located = source_place(inc)
    if located:
        source += f" · {located}"

    def fact(label: str, value: Any) -> html.Div:
        return html.Div([html.Div(label, className="wf-fact-label"), html.Div(value, className="wf-fact-value")],
                        className="wf-fact")

    return html.Div(
        [
            html.Div([severity_chip(inc.severity, "wf-chip-lg"),
                      html.Span(f"#{inc.id}", className="wf-incident-id"),
                      html.H2(inc.title, className="wf-incident-title")], className="wf-incident-titlebar"),
            html.Div(
                [fact("Status", status_chip(inc.status)),
                 fact("Assignee", inc.assignee or "unassigned"),
                 fact("Score", f"{inc.score} / 100"),
                 fact("Events", fmt_count(inc.event_count)),
                 fact("First seen", fmt_time(inc.first_seen, tz, seconds=True)),
                 fact("Last seen", fmt_time(inc.last_seen, tz, seconds=True)),
                 fact("Site", site_link),
                 fact("Sector", inc.sector or "—"),
                 fact("Source", source)],
                className="wf-facts",
            ),
            html.Div(f"Times in {tz_label(tz)}", className="wf-card-sub"),
        ],
        className="wf-incident-header",
    )


def source_place(inc: queries.IncidentDetail) -> str:
    """``"London (51.5142, -0.0931)"``: the source's city and coordinates, or ``""`` when not located."""
    if inc.src_lat is None or inc.src_lon is None:
        return ""
    where = f"{inc.src_lat:.4f}, {inc.src_lon:.4f}"
    return f"{inc.src_city} ({where})" if inc.src_city else where


def render_score(inc: queries.IncidentDetail) -> Any:
    parts = [p for p in inc.score_explain if isinstance(p, dict)]
    if not parts:
        return html.Div("No score breakdown was recorded for this incident.", className="wf-muted")
    top = max((abs(float(p.get("points") or 0)) for p in parts), default=1) or 1
    rows = []
    for p in sorted(parts, key=lambda p: -float(p.get("points") or 0)):
        points = float(p.get("points") or 0)
        rows.append(html.Tr([
            html.Td(str(p.get("name", "")), className="wf-score-name"),
            html.Td(html.Div(html.Div(className="wf-score-bar" + (" wf-score-neg" if points < 0 else ""),
                                      style={"width": f"{100 * abs(points) / top:.0f}%"}), className="wf-score-track")),
            html.Td(f"{points:+g}", className="wf-num wf-score-points"),
            html.Td(str(p.get("why", "")), className="wf-score-why"),
        ]))
    rows.append(html.Tr([html.Td("score", className="wf-score-name"), html.Td(""),
                         html.Td(str(inc.score), className="wf-num wf-score-points"),
                         html.Td(f"→ {inc.severity}", className="wf-score-why")], className="wf-score-total"))
    return html.Table(html.Tbody(rows), className="table wf-score-table")


def render_indicators(df: pd.DataFrame, config: Config, tz: tzinfo) -> Any:
    if df.empty:
        return html.Div("No threat-intel indicator matched this incident.", className="wf-muted")
    names = {s.id: s.name for s in config.sources}
    head = html.Thead(html.Tr([html.Th(h) for h in ("Indicator", "Feed", "Confidence", "TLP", "First seen",
                                                      "Last seen", "Context")]))
    body = []
    for r in df.itertuples():
        feed = names.get(r.source_id, r.source_id) if isinstance(r.source_id, str) else "—"
        tlp = r.tlp if isinstance(r.tlp, str) and r.tlp else "—"
        context_bits = [b for b in (r.malware, r.tags, r.description) if isinstance(b, str) and b]
        body.append(html.Tr([
            html.Td([html.Span(r.type, className="wf-ioc-type"), html.Code(r.value)]),
            html.Td([feed, html.Span(" (expired)", className="wf-muted") if r.expired else None]),
            html.Td("—" if pd.isna(r.confidence) else f"{int(r.confidence)}"),
            html.Td(html.Span(f"TLP:{tlp.upper()}", className=f"wf-tlp wf-tlp-{tlp.replace('+', '-')}")),
            html.Td(fmt_time(r.first_seen, tz)), html.Td(fmt_time(r.last_seen, tz)),
            html.Td(" · ".join(context_bits)[:200]),
        ]))
    return html.Table([head, html.Tbody(body)], className="table wf-table")


def target_of(newest: pd.DataFrame) -> tuple[str | None, str | None]:
    """The zone and asset hit, as the newest event of the incident records them."""
    if not len(newest):
        return None, None
    first = newest.iloc[0]
    return (first["zone"] if isinstance(first["zone"], str) else None,
            first["asset"] if isinstance(first["asset"], str) else None)


EXPOSURES_SHOWN = 6


def render_exposures(findings: pd.DataFrame, site_id: str | None, config: Config | None = None) -> Any:
    """The asset's open exposure findings (``queries.exposures_for_asset``): CVE, a known-exploited
    badge, CVSS and whether the version is confirmed; the rest on the exposure page."""
    if findings.empty:
        return html.Div("Exposure: no open finding for this asset (advisories matched to the inventory).",
                        className="wf-muted wf-target-exposure")
    names = {s.id: ("CISA KEV" if s.format == "kev" else s.name) for s in (config.sources if config else [])}
    items = []
    for r in findings.head(EXPOSURES_SHOWN).itertuples():
        # a KEV entry's id is its CVE: name the catalogue instead
        advisory = names.get(r.source_id, r.source_id) if r.advisory_id == r.cve else r.advisory_id
        cvss = None if pd.isna(r.cvss) else float(r.cvss)
        level = exposure.cvss_level(cvss)
        items.append(html.Li([
            html.Code(r.cve or r.advisory_id),
            html.Span("known exploited", className=theme.severity_class("critical"),
                      title="Listed in the CISA Known Exploited Vulnerabilities catalogue") if r.known_exploited else None,
            html.Span(f"CVSS {cvss:.1f}" if cvss is not None else "CVSS —",
                      className=f"wf-sev-text-{level}" if level else "wf-muted"),
            html.Span("affected version" if r.version_match == "affected" else "version not confirmed",
                      className="wf-muted", title=r.version_note if isinstance(r.version_note, str) else None),
            html.Span(advisory, className="wf-muted", title=r.title if isinstance(r.title, str) else None),
        ], style={"display": "flex", "gap": "10px", "alignItems": "center", "flexWrap": "wrap", "margin": "4px 0"}))
    more = len(findings) - EXPOSURES_SHOWN
    href = "/exposure" + (f"?site={site_id}" if site_id else "")
    return html.Div([
        html.Div(f"Exposure: {len(findings):,} open finding{'s' if len(findings) != 1 else ''} on this asset",
                 style={"marginTop": "8px", "fontWeight": 700}),
        html.Ul(items, style={"listStyle": "none", "padding": 0, "margin": 0}),
        dcc.Link(f"and {more:,} more on the exposure page" if more > 0 else "All findings of this site →", href=href),
    ], className="wf-target-exposure")


def render_target(inc: queries.IncidentDetail, newest: pd.DataFrame, config: Config,
                  findings: pd.DataFrame | None = None) -> Any:
    """Site, zone and asset hit; with ``findings`` (the asset's open exposure findings), those too."""
    site = next((s for s in config.inventory.sites if s.id == inc.site), None)
    zone_name, asset_id = target_of(newest)
    lines: list[Any] = []
    if site is None:
        lines.append(html.Div(f"Site {inc.site!r} is not in the inventory" if inc.site else
                              "The target is not in the inventory.", className="wf-muted"))
    else:
        lines.append(html.Div([html.B(site.name), f" · {site.sector} · {site.city or site.country} · "
                               f"criticality {site.criticality}/5"]))
        zone = next((z for z in site.zones if z.name == zone_name), None)
        if zone_name:
            lines.append(html.Div(f"Zone: {zone_name}" + (f" ({zone.kind})" if zone else "")))
        asset = next((a for a in site.assets if a.id == asset_id), None)
        if asset is not None:
            what = " ".join(x for x in (asset.vendor, asset.product, asset.version) if x)
            lines.append(html.Div([f"Asset: {asset.name} ", html.Code(asset.ip or ""),
                                   f" · {what}" if what else "",
                                   f" · criticality {asset.criticality}/5" if asset.criticality else ""]))
        elif asset_id:
            lines.append(html.Div(f"Asset: {asset_id}"))
        if asset_id and findings is not None:
            lines.append(render_exposures(findings, site.id, config))
    for target in inc.targets[:5]:
        if isinstance(target, dict):
            lines.append(html.Div(" · ".join(f"{k}: {v}" for k, v in target.items() if v not in (None, "")),
                                  className="wf-muted"))
    return html.Div(lines, className="wf-target")


def render_log(log: pd.DataFrame, tz: tzinfo) -> Any:
    if log.empty:
        return html.Div("No action yet.", className="wf-muted")
    items = []
    for r in log.itertuples():
        detail = loads(r.detail, {}) if isinstance(r.detail, str) else {}
        if r.action == "status":
            text = f"status {str(detail.get('from', '?')).replace('_', ' ')} → {str(detail.get('to', '?')).replace('_', ' ')}"
            if detail.get("note"):
                text += f": {detail['note']}"
        elif r.action == "assign":
            text = f"assigned to {detail.get('to') or 'nobody'}" + (f" (was {detail['from']})" if detail.get("from") else "")
        elif r.action == "note":
            text = f"note: {detail.get('text', '')}"
        else:
            text = f"{r.action}: " + ", ".join(f"{k}={v}" for k, v in detail.items()) if detail else r.action
        items.append(html.Li([html.Span(fmt_time(r.at, tz, seconds=True), className="wf-log-time"),
                              html.Span(r.actor, className="wf-log-actor"), html.Span(text, className="wf-log-text")]))
    return html.Ul(items, className="wf-log")


EVENT_COLUMN_DEFS: list[dict[str, Any]] = [
    {"field": "time", "headerName": "Time", "width": 190},
    {"field": "severity", "headerName": "Severity", "width": 120, "cellStyle": theme.severity_cell_style()},
    {"field": "signature", "headerName": "Signature", "flex": 1, "minWidth": 300, "tooltipField": "signature"},
    {"field": "flow", "headerName": "Source → destination", "width": 330},
    {"field": "proto", "headerName": "Proto", "width": 110},
    {"field": "asset", "headerName": "Asset / zone", "width": 210},
    {"field": "action", "headerName": "Action", "width": 110},
    {"field": "score", "headerName": "Score", "width": 95, "type": "rightAligned"},
]


def event_rows(df: pd.DataFrame, tz: tzinfo) -> list[dict[str, Any]]:
    def s(v: Any) -> str:
        return v if isinstance(v, str) else ""

    def port(v: Any) -> str:
        return "" if pd.isna(v) else f":{int(v)}"

    return [{
        "id": str(r.id), "time": fmt_time(r.ts, tz, seconds=True), "severity": r.severity,
        "signature": s(r.signature) or s(r.kind), "flow": f"{s(r.src_ip)}{port(r.src_port)} → {s(r.dst_ip)}{port(r.dst_port)}",
        "proto": "/".join(x for x in (s(r.proto), s(r.app_proto)) if x), "asset": " / ".join(x for x in (s(r.asset), s(r.zone)) if x),
        "action": s(r.action), "score": int(r.score),
    } for r in df.itertuples()]


def render_raw(detail: queries.EventDetail | None, tz: tzinfo) -> tuple[str, str]:
    if detail is None:
        return "Raw event", "Select an event to see its raw record."
    title = f"Raw event #{detail.id} · {fmt_time(detail.ts, tz, seconds=True)} · sensor {detail.fields.get('sensor', '')}"
    return title, detail.raw_pretty()


# --- layout -------------------------------------------------------------------------------------------

def _card(title: str, body: Any, **kwargs: Any) -> html.Section:
    return html.Section([html.Div(html.H2(title, className="wf-card-title"), className="wf-card-header"), body],
                        className="wf-card " + kwargs.pop("className", ""), **kwargs)


def _actions(inc: queries.IncidentDetail) -> html.Div:
    return html.Div(
        [
            html.Div([html.Button(label, id={"type": ids.ACTION, "status": status},
                                  className=f"btn wf-action wf-action-{status}")
                      for status, label in ACTIONS.items()], className="wf-action-row"),
            html.Div([dcc.Input(id=ids.ASSIGNEE, value=inc.assignee or "", placeholder="assign to (name or team)",
                                className="form-control", maxLength=128),
                      html.Button("Assign", id=ids.ASSIGN, className="btn btn-outline-light")],
                     className="wf-action-row wf-action-inline"),
            html.Div([dcc.Textarea(id=ids.NOTE, value="", placeholder="add a note for the log",
                                   className="form-control wf-note", maxLength=8000),
                      html.Button("Add note", id=ids.ADD_NOTE, className="btn btn-outline-light")],
                     className="wf-action-row wf-action-inline"),
            html.Div(id=ids.FEEDBACK, className="wf-feedback", role="status"),
        ],
        className="wf-actions",
    )


def not_found(incident_id: Any) -> html.Div:
    return html.Div(
        [html.H2("No such incident", className="wf-page-title"),
         html.P(f"There is no incident #{incident_id} in the store. It may have been mistyped, or the store "
                "was reset."),
         dcc.Link("← Back to the incident list", href="/incidents")],
        id=ids.ROOT, className="wf-page wf-notfound",
    )


def frame(inc: queries.IncidentDetail, ctx: context.AppContext) -> html.Div:
    store, config, tz = ctx.store, ctx.config, ctx.tz
    newest = queries.events_for_incident(store, inc.id, page=0, page_size=EVENTS_PAGE)
    selected = queries.event_by_id(store, int(newest.iloc[0]["id"])) if len(newest) else None
    ioc_ids = set(inc.indicator_ids) | (set(selected.indicator_ids) if selected else set())
    raw_title, raw_text = render_raw(selected, tz)
    shown = f"newest {len(newest):,} of {inc.event_count:,}" if inc.event_count > len(newest) else f"{len(newest):,}"
    return html.Div(
        [
            dcc.Store(id=ids.INCIDENT, data=inc.id),
            html.Div(dcc.Link("← Incidents", href="/incidents"), className="wf-back"),
            html.Div(render_header(inc, config, tz), id=ids.HEADER),
            html.Div(
                [
                    html.Div(
                        [_card(f"Why it is {inc.severity}", render_score(inc)),
                         _card("Matched indicators", render_indicators(queries.indicators_by_ids(store, ioc_ids), config, tz)),
                         _card("Target", render_target(inc, newest, config,
                                                       queries.exposures_for_asset(store, target_of(newest)[1])))],
                        className="wf-detail-left",
                    ),
                    html.Div(
                        [_card("Actions", _actions(inc)),
                         _card("Audit log", html.Div(render_log(queries.incident_log(store, inc.id), tz), id=ids.LOG))],
                        className="wf-detail-right",
                    ),
                ],
                className="wf-detail-grid",
            ),
            _card(f"Events ({shown})", html.Div([
                dag.AgGrid(
                    id=ids.EVENTS, columnDefs=EVENT_COLUMN_DEFS, rowData=event_rows(newest, tz),
                    getRowId="params.data.id",
                    defaultColDef={"sortable": False, "resizable": True},
                    dashGridOptions={"theme": theme.AG_GRID_THEME, "rowSelection": {"mode": "singleRow",
                                     "checkboxes": False, "enableClickSelection": True},
                                     "localeText": {"noRowsToShow": "No events are linked to this incident"},
                                     "rowStyle": {"cursor": "pointer"}},
                    className="wf-grid", style={"height": "360px"},
                ),
                html.H3(raw_title, id=ids.RAW_TITLE, className="wf-raw-title"),
                html.Pre(raw_text, id=ids.RAW, className="wf-raw"),
            ])),
        ],
        id=ids.ROOT, className="wf-page wf-incident",
    )


def layout(incident_id: str | None = None, **_kwargs: Any) -> html.Div:
    if incident_id is None:
        # Only Dash calls it so: with no arguments, once, to collect every page's ids for validation.
        return skeleton()
    ctx = context.current()
    inc = queries.incident_by_id(ctx.store, incident_id)
    if inc is None:
        return not_found(incident_id)
    return frame(inc, ctx)


def skeleton() -> html.Div:
    """Every id the callbacks use, without data (for ``validation_layout``)."""
    return html.Div([
        dcc.Store(id=ids.INCIDENT), html.Div(id=ids.HEADER),
        *[html.Button(id={"type": ids.ACTION, "status": s}) for s in ACTIONS],
        dcc.Input(id=ids.ASSIGNEE), html.Button(id=ids.ASSIGN), dcc.Textarea(id=ids.NOTE), html.Button(id=ids.ADD_NOTE),
        html.Div(id=ids.FEEDBACK), html.Div(id=ids.LOG), dag.AgGrid(id=ids.EVENTS), html.H3(id=ids.RAW_TITLE),
        html.Pre(id=ids.RAW),
    ])


# --- callbacks ------------------------------------------------------------------------------------

def perform_action(ctx: context.AppContext, incident_id: int, triggered: Any, assignee: str | None,
                   note: str | None, actor: str) -> tuple[bool, str]:
    """Run one officer action through ``store.events_write``; ``(ok, message)`` for the page."""
    from store import events_write

    now = ctx.now_ms()
    try:
        with ctx.store.writer.begin() as conn:
            if isinstance(triggered, dict) and triggered.get("type") == ids.ACTION:
                status = str(triggered.get("status"))
                events_write.set_incident_status(conn, incident_id, status, actor, now, note=(note or "").strip() or None)
                message = f"Marked {status.replace('_', ' ')}" + (" with the note" if (note or "").strip() else "")
            elif triggered == ids.ASSIGN:
                events_write.assign_incident(conn, incident_id, assignee, actor, now)
                message = f"Assigned to {assignee.strip()}" if (assignee or "").strip() else "Unassigned"
            elif triggered == ids.ADD_NOTE:
                events_write.add_incident_note(conn, incident_id, note or "", actor, now)
                message = "Note added"
            else:
                return False, ""
    except events_write.IncidentNotFound:
        return False, f"Incident #{incident_id} no longer exists"
    except ValueError as exc:  # a refused change (no-op, closed → closed, empty note): say why
        return False, str(exc).capitalize()
    return True, message


@dash.callback(
    Output(ids.HEADER, "children"), Output(ids.LOG, "children"), Output(ids.FEEDBACK, "children"),
    Output(ids.NOTE, "value"),
    Input({"type": ids.ACTION, "status": dash.ALL}, "n_clicks"), Input(ids.ASSIGN, "n_clicks"),
    Input(ids.ADD_NOTE, "n_clicks"),
    State(ids.INCIDENT, "data"), State(ids.ASSIGNEE, "value"), State(ids.NOTE, "value"),
    prevent_initial_call=True,
)
def on_action(_status_clicks: list[int | None], _assign: int | None, _note: int | None, incident_id: int,
              assignee: str | None, note: str | None) -> tuple[Any, Any, Any, Any]:
    triggered = dash_ctx.triggered_id
    if triggered is None or not any(t.get("value") for t in dash_ctx.triggered):
        raise dash.exceptions.PreventUpdate
    ctx = context.current()
    ok, message = perform_action(ctx, int(incident_id), triggered, assignee, note, context.current_actor())
    inc = queries.incident_by_id(ctx.store, incident_id)
    header = render_header(inc, ctx.config, ctx.tz) if inc else dash.no_update
    feedback = html.Span(message, className="wf-feedback-ok" if ok else "wf-feedback-error")
    return header, render_log(queries.incident_log(ctx.store, int(incident_id)), ctx.tz), feedback, \
        ("" if ok and note else dash.no_update)


@dash.callback(Output(ids.RAW_TITLE, "children"), Output(ids.RAW, "children"), Input(ids.EVENTS, "cellClicked"),
               prevent_initial_call=True)
def on_event_click(cell: dict[str, Any] | None) -> tuple[str, str]:
    row_id = (cell or {}).get("rowId")
    if row_id in (None, ""):
        raise dash.exceptions.PreventUpdate
    ctx = context.current()
    return render_raw(queries.event_by_id(ctx.store, row_id), ctx.tz)
