"""The look of watchfloor, in one place: colours, fonts, the Plotly template, graph config.

Built for a 1920x1080 wall display read from across the room: near-black background,
high-contrast text, large type. ``assets/watchfloor.css`` uses the same colours (as CSS
variables, ``--wf-*``); ``tests/panels/test_theme.py`` checks that the two agree.

Importing this module only defines names: plotly is imported lazily by the functions that
need it, and nothing is registered until ``register_template()`` is called.

Usage::

    from panels import theme
    theme.register_template(set_default=True)      # once, in app.py
    fig = go.Figure(..., layout={"template": theme.TEMPLATE_NAME})
    dcc.Graph(figure=fig, config=theme.GRAPH_CONFIG)
    dag.AgGrid(..., dashGridOptions={"theme": theme.AG_GRID_THEME})
    html.Span("critical", className=theme.severity_class("critical"))

Panel titles belong in the card header (``.wf-card-title``), not in the figure: the template
puts a figure's legend top-right, level with where a figure title would go, and a narrow
panel has no room for both.
"""

from __future__ import annotations

import json
from typing import Any

# --------------------------------------------------------------------------------------
# Surfaces and text (keep in sync with the --wf-* variables in assets/watchfloor.css)
# --------------------------------------------------------------------------------------
BG = "#0a0d12"  # page background, near-black with a blue tint
SURFACE = "#121821"  # cards and graph paper
RAISED = "#1a2230"  # header bar, grid header, hover labels
BORDER = "#2a3444"
GRID = "#222b38"  # plot gridlines: visible, not loud
TEXT = "#eef2f7"  # body text: ~17:1 on BG
MUTED = "#a3afc2"  # labels, captions: ~8.5:1 on BG
ACCENT = "#38bdf8"  # selection, links, neutral highlights (not a severity colour)
DEMO = "#c026d3"  # the DEMO badge: a hue no severity or state uses

FONT_SANS = "Inter, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
FONT_MONO = "'JetBrains Mono', 'DejaVu Sans Mono', Consolas, monospace"

# --------------------------------------------------------------------------------------
# Severity: five levels, everywhere the same words and colours (DESIGN.md section 5).
# Hue *and* lightness differ step by step (red, orange, amber, blue, grey), so the order
# survives red-green colour blindness; chips always carry the word as well.
# --------------------------------------------------------------------------------------
SEVERITY_LEVELS: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
SEVERITY_COLORS: dict[str, str] = {
    "critical": "#ff2d55",
    "high": "#ff7a1a",
    "medium": "#ffe14d",
    "low": "#4ea8ff",
    "info": "#8e99ab",
}
#: Text colour on a filled chip of each severity (WCAG contrast >= 4.5:1). The fills are
#: bright so that marks pop on near-black, hence dark text on every chip.
SEVERITY_TEXT_COLORS: dict[str, str] = {
    "critical": "#0a0d12",
    "high": "#0a0d12",
    "medium": "#0a0d12",
    "low": "#0a0d12",
    "info": "#0a0d12",
}

# --------------------------------------------------------------------------------------
# Source health (DESIGN.md section 6): live, late, stale, failed, never-seen.
# --------------------------------------------------------------------------------------
SOURCE_STATES: tuple[str, ...] = ("live", "late", "stale", "failed", "never-seen")
STATE_COLORS: dict[str, str] = {
    "live": "#3ee6c0",  # teal-green: further from red than pure green for deutan eyes
    "late": "#ffe14d",
    "stale": "#ff7a1a",
    "failed": "#ff2d55",
    "never-seen": "#8e99ab",
}
STATE_TEXT_COLORS: dict[str, str] = {
    "live": "#0a0d12",
    "late": "#0a0d12",
    "stale": "#0a0d12",
    "failed": "#0a0d12",
    "never-seen": "#0a0d12",
}

#: Categorical series that are not severities (sectors, feeds...): avoids the severity hues
#: so a colour never suggests a severity it does not mean.
COLORWAY: tuple[str, ...] = (
    "#38bdf8", "#a78bfa", "#2dd4bf", "#f472b6", "#a3e635", "#818cf8", "#22d3ee", "#e879f9",
)
#: Sequential scale for intensity (heatmaps, choropleths): dark surface -> blue -> amber -> red.
SEQUENTIAL_SCALE: tuple[tuple[float, str], ...] = (
    (0.0, "#16202e"), (0.25, "#1f4f8a"), (0.5, "#4ea8ff"), (0.75, "#ffe14d"), (1.0, "#ff2d55"),
)

TEMPLATE_NAME = "watchfloor"

#: Where plotly.js finds its base maps (tools/fetch_assets.py extracts them there). plotly.js
#: requests ``topojsonURL + "<scope>_<resolution>m.json"`` (adding a "/" if missing), e.g.
#: ``/assets/vendor/topojson/world_110m.json``. Its default is the CDN ``https://cdn.plot.ly/un/``.
TOPOJSON_URL = "/assets/vendor/topojson/"

#: dcc.Graph ``config`` for every graph.
GRAPH_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "topojsonURL": TOPOJSON_URL,
    "responsive": True,
    "scrollZoom": False,
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
}
#: For the wall: no modebar (nobody hovers a TV); clicks still reach callbacks.
WALL_GRAPH_CONFIG: dict[str, Any] = {**GRAPH_CONFIG, "displayModeBar": False}


def graph_config(topojson_url: str | None = None, *, wall: bool = False) -> dict[str, Any]:
    """A fresh graph config; pass ``app.get_asset_url("vendor/topojson/")`` when the app is
    served under a path prefix (``url_base_pathname``/``requests_pathname_prefix``)."""
    cfg = dict(WALL_GRAPH_CONFIG if wall else GRAPH_CONFIG)
    if topojson_url:
        cfg["topojsonURL"] = topojson_url if topojson_url.endswith("/") else topojson_url + "/"
    return cfg


# --------------------------------------------------------------------------------------
# Helpers for components
# --------------------------------------------------------------------------------------
def _norm(value: str) -> str:
    return str(value).strip().lower().replace("_", "-").replace(" ", "-")


def severity_class(level: str) -> str:
    """CSS class of a severity chip (``wf-sev-critical``...; unknown -> ``wf-sev-unknown``)."""
    key = _norm(level)
    return f"wf-sev-{key}" if key in SEVERITY_COLORS else "wf-sev-unknown"


def state_class(state: str) -> str:
    """CSS class of a source-health chip (``wf-state-live``...; unknown -> ``wf-state-unknown``)."""
    key = _norm(state)
    return f"wf-state-{key}" if key in STATE_COLORS else "wf-state-unknown"


def severity_badge_style(level: str) -> dict[str, str]:
    """Inline style for a severity badge, for places where a CSS class cannot be used
    (dbc.Badge ``style``, AG Grid cell styles). Unknown levels get a dashed neutral badge,
    never the ``info`` look: an unexpected value must not pass for a calm one."""
    key = _norm(level)
    base = {
        "display": "inline-block",
        "minWidth": "6.5em",
        "padding": "0.2em 0.6em",
        "borderRadius": "0.35em",
        "fontWeight": "700",
        "letterSpacing": "0.06em",
        "textTransform": "uppercase",
        "textAlign": "center",
        "lineHeight": "1.2",
    }
    if key not in SEVERITY_COLORS:
        return {**base, "backgroundColor": "transparent", "color": TEXT,
                "border": f"2px dashed {MUTED}"}
    color = SEVERITY_COLORS[key]
    return {**base, "backgroundColor": color, "color": SEVERITY_TEXT_COLORS[key],
            "border": f"2px solid {color}"}


def severity_badge_props(level: str) -> dict[str, Any]:
    """Keyword arguments for ``dbc.Badge``: ``dbc.Badge(level, **severity_badge_props(level))``.
    (dbc.Badge's default ``color="secondary"`` adds ``.bg-secondary``, whose ``!important``
    background would beat the inline style, so the colour goes through ``color``.)"""
    style = severity_badge_style(level)
    return {"color": style["backgroundColor"], "style": style}


def severity_cell_style() -> dict[str, Any]:
    """dash-ag-grid ``cellStyle`` for a column holding severity words: coloured bold text."""
    return {
        "styleConditions": [
            {"condition": f"params.value === {json.dumps(level)}",
             "style": {"color": SEVERITY_COLORS[level], "fontWeight": "700"}}
            for level in SEVERITY_LEVELS
        ]
    }


# --------------------------------------------------------------------------------------
# AG Grid (dash-ag-grid 35 = AG Grid 35, Theming API). CSS classes such as
# "ag-theme-alpine-dark" do nothing any more; the theme is a JS object given in
# dashGridOptions["theme"]. dash-ag-grid evaluates {"function": "..."} strings with
# themeQuartz/themeAlpine/themeBalham/themeMaterial and the whole `agGrid` namespace in scope.
# --------------------------------------------------------------------------------------
AG_GRID_PARAMS: dict[str, Any] = {
    "backgroundColor": SURFACE,
    "foregroundColor": TEXT,
    "textColor": TEXT,
    "accentColor": ACCENT,
    "borderColor": BORDER,
    "chromeBackgroundColor": RAISED,
    "headerBackgroundColor": RAISED,
    "headerTextColor": MUTED,
    "headerFontWeight": 700,
    "oddRowBackgroundColor": "#151c27",
    "rowHoverColor": "#223047",
    "selectedRowBackgroundColor": "#1d3a5c",
    "fontFamily": FONT_SANS,
    "fontSize": 17,
    "headerFontSize": 15,
    "rowHeight": 44,
    "headerHeight": 46,
    "spacing": 7,
    "wrapperBorderRadius": 8,
    "browserColorScheme": "dark",
}
AG_GRID_THEME: dict[str, str] = {
    "function": "themeQuartz.withPart(agGrid.colorSchemeDark).withParams("
    + json.dumps(AG_GRID_PARAMS)
    + ")"
}


# --------------------------------------------------------------------------------------
# Plotly template
# --------------------------------------------------------------------------------------
def template_layout() -> dict[str, Any]:
    """The template's layout as a plain dict (no plotly import)."""
    axis = {
        "gridcolor": GRID,
        "linecolor": BORDER,
        "zerolinecolor": BORDER,
        "tickcolor": BORDER,
        "tickfont": {"size": 16, "color": MUTED},
        "title": {"font": {"size": 17, "color": MUTED}, "standoff": 12},
        "automargin": True,
        "showline": True,
        "ticks": "outside",
        "ticklen": 4,
    }
    return {
        "paper_bgcolor": SURFACE,
        "plot_bgcolor": SURFACE,
        "font": {"family": FONT_SANS, "size": 17, "color": TEXT},
        "title": {"font": {"size": 22, "color": TEXT, "weight": 600}, "x": 0, "xanchor": "left",
                  "xref": "paper", "y": 1, "yanchor": "bottom", "yref": "paper", "pad": {"b": 8},
                  "automargin": True},
        "colorway": list(COLORWAY),
        "colorscale": {"sequential": [list(s) for s in SEQUENTIAL_SCALE]},
        "margin": {"l": 64, "r": 24, "t": 40, "b": 48},
        "xaxis": axis,
        "yaxis": axis,
        # Horizontal legend above the plot area, right-aligned (the title, if any, sits on
        # the left of the same band): never collides with an x-axis title, and a legend
        # outside the plot area pushes the top margin by itself.
        "legend": {"font": {"size": 16, "color": TEXT}, "bgcolor": "rgba(0,0,0,0)",
                   "orientation": "h", "x": 1, "xanchor": "right", "y": 1.01, "yanchor": "bottom",
                   "title": {"text": ""}},
        "hoverlabel": {"bgcolor": RAISED, "bordercolor": BORDER,
                       "font": {"family": FONT_SANS, "size": 17, "color": TEXT}},
        "geo": {
            "bgcolor": SURFACE,
            "showland": True, "landcolor": "#202a3a",
            "showocean": True, "oceancolor": SURFACE,
            "showlakes": True, "lakecolor": SURFACE,
            "showcountries": True, "countrycolor": "#425069", "countrywidth": 0.6,
            "showcoastlines": True, "coastlinecolor": "#4a5870", "coastlinewidth": 0.6,
            "showframe": False,
            "subunitcolor": "#2e3848",
            "projection": {"type": "natural earth"},
        },
        "coloraxis": {"colorbar": {"outlinewidth": 0, "tickfont": {"size": 15, "color": MUTED}}},
        "polar": {"bgcolor": SURFACE, "angularaxis": {"gridcolor": GRID, "linecolor": BORDER},
                  "radialaxis": {"gridcolor": GRID, "linecolor": BORDER}},
        "annotationdefaults": {"font": {"size": 16, "color": TEXT}},
    }


def template_data() -> dict[str, Any]:
    return {
        "bar": [{"marker": {"line": {"width": 0}}}],
        "scattergeo": [{"marker": {"line": {"width": 0}}}],
        "heatmap": [{"colorscale": [list(s) for s in SEQUENTIAL_SCALE], "showscale": False}],
        "choropleth": [{"colorscale": [list(s) for s in SEQUENTIAL_SCALE],
                        "marker": {"line": {"color": BORDER, "width": 0.5}}}],
        "pie": [{"marker": {"line": {"color": SURFACE, "width": 2}}, "sort": False}],
    }


def build_template():
    """A new ``plotly.graph_objects.layout.Template`` (not registered)."""
    import plotly.graph_objects as go

    return go.layout.Template(layout=template_layout(), data=template_data())


def register_template(set_default: bool = False):
    """Register the template as ``plotly.io.templates["watchfloor"]`` (idempotent) and
    return it. With ``set_default=True`` it also becomes ``plotly.io.templates.default``."""
    import plotly.io as pio

    if TEMPLATE_NAME not in pio.templates:
        pio.templates[TEMPLATE_NAME] = build_template()
    if set_default:
        pio.templates.default = TEMPLATE_NAME
    return pio.templates[TEMPLATE_NAME]


def severity_color_map() -> dict[str, str]:
    """For plotly express: ``color_discrete_map=theme.severity_color_map()``."""
    return dict(SEVERITY_COLORS)
