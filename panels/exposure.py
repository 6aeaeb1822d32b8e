"""The exposure page (/exposure): which of our assets the collected advisories name, worst first.

* KPI tiles: assets exposed (of the assets that name a vendor and product), known-exploited
  findings, findings with a critical CVSS (>= 9.0), findings whose version is not confirmed.
* Filters: site, known-exploited only; pre-filled from the URL (``/exposure?site=<id>&kev=1``).
* A grid of the open findings (``store.queries.exposure_findings``): site, asset, vendor/product,
  version, CVE with a known-exploited badge, CVSS, version match (affected / not confirmed, the
  reason in the tooltip), affected versions, advisory, first found.
* "computed" time: when the findings were last recomputed (every 10 min and after each KEV/CSAF
  feed run), and what was checked against what.
* Honest empty states: "no advisories collected yet" (the feeds have not delivered: exposure is
  unknown, hatched) is not "no exposure found" (calm), nor "not computed yet".

Findings are computed by ``pipeline.exposure_findings``; this page only reads them. Refreshes on
the shell's interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import Input, Output, dcc, html

from panels import context, theme
from panels import ids as shared
from panels.components import asof_label, empty_state, fmt_time, tz_label
from pipeline.exposure_findings import RECOMPUTE_EVERY_MS
from settings.loader import Config
from store import queries

KEV_OPTIONS = {"all": "All findings", "kev": "Known exploited only"}
MATCH_WORDS = {"affected": "affected", "unknown": "not confirmed"}


class ids:  # noqa: N801
    ROOT = "exposure-root"
    SITE = "exposure-site"
    KEV = "exposure-kev"
    KPIS = "exposure-kpis"
    SUMMARY = "exposure-summary"
    ASOF = "exposure-asof"
    BASIS = "exposure-basis"
    EMPTY = "exposure-empty"
    GRID_BOX = "exposure-grid-box"
    GRID = "exposure-grid"


# --- selection ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    site: str | None = None
    known_exploited_only: bool = False

    @property
    def filtered(self) -> bool:
        return bool(self.site) or self.known_exploited_only


def selection_from_query(query: dict[str, Any], config: Config) -> Selection:
    """``site`` (a site id of the inventory) and ``kev`` (``1``/``true``/``yes``/``kev``); others dropped."""
    sites = {s.id for s in config.inventory.sites}
    site = query.get("site")
    kev = str(query.get("kev") or "").strip().lower() in ("1", "true", "yes", "kev", "on")
    return Selection(site=site if site in sites else None, known_exploited_only=kev)


def assets_checked(config: Config, site: str | None = None) -> int:
    """Inventory assets that name a vendor and a product (only those can be matched)."""
    return sum(1 for s in config.inventory.sites if site in (None, s.id)
               for a in s.assets if a.vendor and a.product)


# --- pure builders ------------------------------------------------------------------------------------

def cvss_level(score: float | None) -> str:
    """The CVSS v3 qualitative rating in watchfloor's five words (``""`` without a score)."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return ""
    if score >= queries.CRITICAL_CVSS:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low" if score > 0 else "info"


def _tile(label: str, value: str, note: str, level: str | None, zero: bool, id_: str) -> html.Div:
    css = "wf-kpi" + (f" wf-sev-{level}-kpi" if level else "") + (" wf-kpi-zero" if zero else "")
    unknown = {"color": theme.MUTED} if value == "—" else None
    return html.Div([html.Div(label, className="wf-kpi-label"), html.Div(value, className="wf-kpi-value", style=unknown),
                     html.Div(note, className="wf-kpi-delta")], className=css, id=id_)


def kpi_tiles(summary: queries.ExposureSummary, checked: int) -> list[html.Div]:
    """Four tiles. While exposure is unknown (no advisories, never computed) every value reads "—"
    in grey without a severity accent: unknown is neither zero nor an alarm."""
    known = summary.advisories > 0 and summary.computed_at_ms is not None
    findings = f"{summary.findings:,} open finding{'s' if summary.findings != 1 else ''}" if known else "not computed"
    tiles = (
        ("Assets exposed", summary.assets_exposed, f"of {checked:,} with vendor/product · {findings}", "high",
         "exposure-kpi-assets"),
        ("Known exploited", summary.known_exploited, "findings on the CISA KEV list", "critical", "exposure-kpi-kev"),
        ("Critical CVSS", summary.critical_cvss, f"findings with CVSS ≥ {queries.CRITICAL_CVSS:.1f}", "critical",
         "exposure-kpi-critical"),
        ("Version not confirmed", summary.unconfirmed, "findings to check against the asset", "medium",
         "exposure-kpi-unconfirmed"),
    )
    return [_tile(label, f"{n:,}" if known else "—", note, level if known else None, known and n == 0, id_)
            for label, n, note, level, id_ in tiles]


def empty_message(summary: queries.ExposureSummary, checked: int, sel: Selection) -> tuple[str, bool] | None:
    """``(message, nodata)`` when the grid has nothing to show, else ``None``. ``nodata``: we do not
    know (hatched look), as opposed to "we looked and found nothing" (calm look)."""
    if summary.advisories == 0:
        return ("No advisories collected yet — the CISA KEV / ICS advisories feeds have not run, "
                "so exposure is unknown. Check the Feeds page.", True)
    if summary.computed_at_ms is None:
        return (f"{summary.advisories:,} advisories collected, exposure not computed yet: it is recomputed "
                f"every {RECOMPUTE_EVERY_MS // 60_000} min and after each advisory feed run.", True)
    if assets_checked_total(summary, checked) == 0:
        return ("No asset in config/assets.yaml names a vendor and a product: there is nothing to match "
                "advisories against.", True)
    if summary.findings == 0 and sel.filtered:
        return ("No finding matches these filters.", False)
    if summary.findings == 0:
        return (f"No exposure found: none of the {summary.advisories:,} advisories names one of the "
                f"{checked:,} assets at an affected version.", False)
    return None


def assets_checked_total(summary: queries.ExposureSummary, checked: int) -> int:
    """Assets checked by the last recompute (whole inventory), else the configured count."""
    recorded = summary.last_run.get("assets")
    return int(recorded) if isinstance(recorded, int) else checked


def basis_text(summary: queries.ExposureSummary, config: Config) -> str:
    """What the findings rest on: advisory rows per source, against how many assets."""
    if not summary.advisories_by_source:
        return "no advisory stored"
    names = {s.id: s.name for s in config.sources}
    parts = [f"{n:,} from {names.get(source, source)}" for source, n in summary.advisories_by_source.items()]
    checked = summary.last_run.get("assets")
    against = f" against {checked:,} assets" if isinstance(checked, int) else ""
    return "Advisory rows checked: " + " · ".join(parts) + against


COLUMN_DEFS: list[dict[str, Any]] = [
    {"field": "site_name", "headerName": "Site", "width": 210, "tooltipField": "site_name"},
    {"field": "asset", "headerName": "Asset", "width": 215, "tooltipField": "asset_tip"},
    {"field": "product", "headerName": "Vendor / product", "flex": 1, "minWidth": 200, "tooltipField": "product"},
    {"field": "version", "headerName": "Version", "width": 105},
    {"field": "cve", "headerName": "CVE", "width": 182, "tooltipField": "title",
     "cellStyle": {"styleConditions": [{"condition": "params.data.kev",
                                        "style": {"color": theme.SEVERITY_COLORS["critical"], "fontWeight": "700"}}]}},
    {"field": "kev_label", "headerName": "Exploited", "width": 122,
     "headerTooltip": "Known exploited: the CISA KEV catalogue lists this CVE",
     "cellStyle": {"styleConditions": [{"condition": "params.value === 'KEV'", "style": {
         "backgroundColor": theme.SEVERITY_COLORS["critical"], "color": theme.SEVERITY_TEXT_COLORS["critical"],
         "backgroundClip": "content-box", "fontWeight": "800", "letterSpacing": "0.08em", "textAlign": "center",
         "paddingTop": "8px", "paddingBottom": "8px", "lineHeight": "26px"}}],
         "defaultStyle": {"color": theme.MUTED, "textAlign": "center"}}},
    {"field": "cvss", "headerName": "CVSS", "width": 88, "type": "rightAligned",
     "valueFormatter": {"function": "params.value == null ? '—' : d3.format('.1f')(params.value)"},
     "cellStyle": {"styleConditions": [
         {"condition": f"params.data.cvss_level === '{level}'",
          "style": {"color": theme.SEVERITY_COLORS[level], "fontWeight": "700"}}
         for level in ("critical", "high", "medium", "low")]}},
    {"field": "match", "headerName": "Version match", "width": 158, "tooltipField": "match_note",
     "cellStyle": {"styleConditions": [
         {"condition": "params.value === 'affected'", "style": {"color": theme.SEVERITY_COLORS["high"],
                                                                 "fontWeight": "700"}},
         {"condition": "params.value !== 'affected'", "style": {"color": theme.MUTED, "fontStyle": "italic"}}]}},
    {"field": "affected_versions", "headerName": "Affected versions", "width": 165,
     "tooltipField": "affected_versions"},
    {"field": "advisory", "headerName": "Advisory", "width": 172, "tooltipField": "advisory_tip"},
    {"field": "first_found", "headerName": "First found", "width": 192},
]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def grid_rows(df: pd.DataFrame, config: Config, tz: tzinfo) -> list[dict[str, Any]]:
    """``queries.EXPOSURE_COLUMNS`` rows → grid rows: the asset as the inventory describes it, the
    advisory's words in tooltips, display strings in the display zone."""
    sites = {s.id: s for s in config.inventory.sites}
    assets = {a.id: a for s in config.inventory.sites for a in s.assets}
    sources = {s.id: ("CISA KEV" if s.format == "kev" else s.name) for s in config.sources}
    rows = []
    for r in df.itertuples():
        site = sites.get(r.site_id)
        asset = assets.get(r.asset_id)
        vendor = asset.vendor if asset and asset.vendor else _text(r.vendor)
        product = asset.product if asset and asset.product else _text(r.product)
        versions = list(r.advisory_versions) if isinstance(r.advisory_versions, list) else []
        cvss = None if pd.isna(r.cvss) else float(r.cvss)
        others = [a for a in (r.advisories if isinstance(r.advisories, list) else [])
                  if a != f"{r.source_id}:{r.advisory_id}"]
        rows.append({
            "id": str(r.id), "site": r.site_id, "site_name": site.name if site else r.site_id,
            "asset": asset.name if asset else r.asset_id, "asset_tip": f"{r.asset_id}" + (
                f" · {asset.ip}" if asset and asset.ip else ""),
            "product": f"{vendor} {product}".strip(), "version": _text(r.asset_version) or "—",
            "cve": _text(r.cve) or _text(r.advisory_id), "title": _text(r.title), "kev": bool(r.known_exploited),
            "kev_label": "KEV" if r.known_exploited else "—", "cvss": cvss, "cvss_level": cvss_level(cvss),
            "match": MATCH_WORDS.get(r.version_match, r.version_match), "match_note": _text(r.version_note),
            "affected_versions": ", ".join(versions) if versions else "not stated",
            # a KEV entry's id is its CVE: name the catalogue instead
            "advisory": sources.get(r.source_id, r.source_id) if r.advisory_id == r.cve else _text(r.advisory_id),
            "advisory_tip": " · ".join(x for x in (_text(r.advisory_id), _text(r.title), f"{_text(r.vendor)} {_text(r.product)}".strip(),
                                                   ("also " + ", ".join(others)) if others else "") if x),
            "first_found": fmt_time(r.first_found, tz),
        })
    return rows


def render(ctx: context.AppContext, sel: Selection, now_ms: int) -> dict[str, Any]:
    """Everything the page shows for ``sel``, keyed by component id."""
    summary = queries.exposure_summary(ctx.store, site=sel.site, known_exploited_only=sel.known_exploited_only)
    df = queries.exposure_findings(ctx.store, site=sel.site, known_exploited_only=sel.known_exploited_only)
    checked = assets_checked(ctx.config, sel.site)
    empty = empty_message(summary, checked, sel)
    shown = len(df)
    if empty is not None or summary.findings == 0:
        head = ""
    elif summary.findings > shown:
        head = f"{shown:,} most urgent of {summary.findings:,} open findings"
    else:
        head = f"{summary.findings:,} open finding{'s' if summary.findings != 1 else ''} on " \
               f"{summary.assets_exposed:,} asset{'s' if summary.assets_exposed != 1 else ''}"
    return {
        ids.KPIS: kpi_tiles(summary, checked),
        ids.SUMMARY: head,
        ids.ASOF: asof_label(summary.computed_at_ms, now_ms, ctx.tz, 2 * RECOMPUTE_EVERY_MS, prefix="computed"),
        ids.BASIS: basis_text(summary, ctx.config),
        ids.EMPTY: empty_state(empty[0], nodata=empty[1]) if empty else None,
        ids.GRID: grid_rows(df, ctx.config, ctx.tz),
        ids.GRID_BOX: {"display": "none"} if empty else {},
    }


# --- layout ---------------------------------------------------------------------------------------------

def _filters(sel: Selection, config: Config) -> html.Div:
    site_options = [{"label": s.name, "value": s.id} for s in sorted(config.inventory.sites, key=lambda s: s.name)]

    def field(label: str, control: Any) -> html.Div:
        return html.Div([html.Label(label, className="wf-filter-label"), control], className="wf-filter")

    return html.Div(
        [field("Site", dcc.Dropdown(id=ids.SITE, options=site_options, value=sel.site, placeholder="any site")),
         field("Known exploited", dcc.Dropdown(id=ids.KEV, options=[{"label": v, "value": k} for k, v in KEV_OPTIONS.items()],
                                               value="kev" if sel.known_exploited_only else "all", clearable=False))],
        className="wf-filters", style={"gridTemplateColumns": "minmax(0, 340px) minmax(0, 260px)"},
    )


def frame(sel: Selection, config: Config, tz: tzinfo, out: dict[str, Any]) -> html.Div:
    return html.Div(
        [
            html.Div(
                [html.H2("Exposure", className="wf-page-title"),
                 html.Span(out.get(ids.SUMMARY), id=ids.SUMMARY, className="wf-page-summary"),
                 html.Span(f"times in {tz_label(tz)}", className="wf-card-sub"),
                 html.Span(out.get(ids.ASOF), id=ids.ASOF, className="wf-page-asof")],
                className="wf-page-head",
            ),
            html.Div(out.get(ids.KPIS), id=ids.KPIS, className="wf-grid-row",
                     style={"gridTemplateColumns": "repeat(4, minmax(0, 1fr))"}),
            html.Div([_filters(sel, config),
                      html.Div(out.get(ids.BASIS), id=ids.BASIS, className="wf-card-sub",
                               style={"alignSelf": "end", "paddingBottom": "14px"})],
                     style={"display": "flex", "gap": "24px", "alignItems": "flex-end", "flexWrap": "wrap"}),
            html.Div(out.get(ids.EMPTY), id=ids.EMPTY),
            html.Div(
                dag.AgGrid(
                    id=ids.GRID, columnDefs=COLUMN_DEFS, rowData=out.get(ids.GRID, []),
                    defaultColDef={"sortable": True, "resizable": True, "suppressMovable": True},
                    getRowId="params.data.id",
                    dashGridOptions={"theme": theme.AG_GRID_THEME, "tooltipShowDelay": 300,
                                     "localeText": {"noRowsToShow": "No exposure finding"},
                                     "suppressCellFocus": True},
                    className="wf-grid wf-exposure-grid",
                    style={"height": "calc(100vh - 420px)", "minHeight": "360px"},
                ),
                id=ids.GRID_BOX, style=out.get(ids.GRID_BOX, {}),
            ),
        ],
        id=ids.ROOT, className="wf-page wf-exposure",
    )


def layout(**query: Any) -> html.Div:
    ctx = context.current()
    sel = selection_from_query(query, ctx.config)
    return frame(sel, ctx.config, ctx.tz, render(ctx, sel, ctx.now_ms()))


def skeleton(config: Config | None = None) -> html.Div:
    """Every id the callbacks use, without reading the store (for ``validation_layout``)."""
    from datetime import timezone

    if config is None:
        from panels.shell import skeleton_config

        config = skeleton_config()
    return frame(Selection(), config, timezone.utc, {})


_OUTPUTS = (ids.KPIS, ids.SUMMARY, ids.ASOF, ids.BASIS, ids.EMPTY, ids.GRID, ids.GRID_BOX)
_PROPS = {ids.GRID: "rowData", ids.GRID_BOX: "style"}


@dash.callback([Output(i, _PROPS.get(i, "children")) for i in _OUTPUTS],
               Input(ids.SITE, "value"), Input(ids.KEV, "value"), Input(shared.REFRESH, "n_intervals"),
               prevent_initial_call=True)
def update_exposure(site: str | None, kev: str | None, _n: int | None) -> list[Any]:
    ctx = context.current()
    sel = selection_from_query({"site": site, "kev": kev}, ctx.config)
    out = render(ctx, sel, ctx.now_ms())
    return [out[i] for i in _OUTPUTS]
