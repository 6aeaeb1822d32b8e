"""panels.theme: one look, readable on a wall, colour-blind aware, and in step with the CSS."""
from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from panels import theme

ROOT = Path(__file__).resolve().parents[2]
CSS = (ROOT / "assets" / "watchfloor.css").read_text(encoding="utf-8")
HEX = re.compile(r"^#[0-9a-f]{6}$")


# ---------------------------------------------------------------- colour maths (test-only)
def _lin(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _rgb(h: str) -> list[float]:
    return [int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)]


def luminance(h: str) -> float:
    r, g, b = (_lin(c) for c in _rgb(h))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# Machado, Oliveira & Fernandes (2009), severity 1.0, linear RGB.
CVD = {
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}


def _lab(lin_rgb: list[float]) -> tuple[float, float, float]:
    r, g, b = (min(max(c, 0.0), 1.0) for c in lin_rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def delta_e(a: str, b: str, vision: str | None = None) -> float:
    def lin(h: str) -> list[float]:
        c = [_lin(v) for v in _rgb(h)]
        if vision:
            m = CVD[vision]
            c = [sum(m[i][j] * c[j] for j in range(3)) for i in range(3)]
        return c

    return math.dist(_lab(lin(a)), _lab(lin(b)))


# ---------------------------------------------------------------- import hygiene
def test_import_has_no_side_effects():
    code = (
        "import sys; import panels.theme as t; "
        "assert 'plotly' not in sys.modules, 'plotly imported at import time'; "
        "import plotly.io as pio; "
        "assert t.TEMPLATE_NAME not in pio.templates, 'template registered at import time'; "
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------- template
def test_register_template_is_idempotent_and_named_watchfloor():
    import plotly.graph_objects as go
    import plotly.io as pio

    first = theme.register_template()
    second = theme.register_template()
    assert theme.TEMPLATE_NAME == "watchfloor"
    assert "watchfloor" in pio.templates
    assert first is second is pio.templates["watchfloor"]

    fig = go.Figure(go.Bar(x=[1], y=[1]), layout={"template": "watchfloor"})
    layout = fig.layout.template.layout
    assert layout.paper_bgcolor == theme.SURFACE
    assert layout.plot_bgcolor == theme.SURFACE
    assert layout.font.family.startswith("Inter")
    assert layout.font.size >= 16, "wall legibility"
    assert layout.font.color == theme.TEXT
    assert layout.xaxis.gridcolor == theme.GRID
    assert layout.geo.bgcolor == theme.SURFACE
    assert list(layout.colorway) == list(theme.COLORWAY)


def test_register_template_set_default():
    import plotly.io as pio

    before = pio.templates.default
    try:
        theme.register_template(set_default=True)
        assert pio.templates.default == "watchfloor"
    finally:
        pio.templates.default = before


def test_colorway_avoids_severity_hues():
    for series, sev in itertools.product(theme.COLORWAY, theme.SEVERITY_COLORS.values()):
        assert delta_e(series, sev) > 10, (series, sev)


# ---------------------------------------------------------------- severity
def test_severity_levels_cover_the_five_words_in_order():
    assert theme.SEVERITY_LEVELS == ("critical", "high", "medium", "low", "info")
    assert set(theme.SEVERITY_COLORS) == set(theme.SEVERITY_LEVELS)
    assert set(theme.SEVERITY_TEXT_COLORS) == set(theme.SEVERITY_LEVELS)
    for color in list(theme.SEVERITY_COLORS.values()) + list(theme.SEVERITY_TEXT_COLORS.values()):
        assert HEX.match(color), color


@pytest.mark.parametrize("vision", [None, *CVD])
def test_severity_colours_are_distinct_also_for_colour_blind_eyes(vision):
    colours = list(theme.SEVERITY_COLORS.items())
    assert len({c for _, c in colours}) == len(colours)
    for (a, ca), (b, cb) in itertools.combinations(colours, 2):
        assert delta_e(ca, cb, vision) >= 18, f"{a}/{b} too close ({vision or 'normal vision'})"


def test_severity_colours_readable_on_near_black():
    assert luminance(theme.BG) < 0.01, "near-black background"
    assert contrast(theme.TEXT, theme.BG) >= 12
    assert contrast(theme.MUTED, theme.SURFACE) >= 7
    for level, color in theme.SEVERITY_COLORS.items():
        assert contrast(color, theme.BG) >= 4.5, level
        assert contrast(color, theme.SURFACE) >= 4.5, level
        assert contrast(theme.SEVERITY_TEXT_COLORS[level], color) >= 4.5, level


def test_severity_order_is_carried_by_lightness_too():
    # critical/high/medium get brighter as they get less severe, so the order survives
    # without hue; low and info are cool and grey, far from the warm three.
    lum = [luminance(theme.SEVERITY_COLORS[x]) for x in ("critical", "high", "medium")]
    assert lum == sorted(lum)


def test_severity_badge_style():
    for level in theme.SEVERITY_LEVELS:
        style = theme.severity_badge_style(level)
        assert style["backgroundColor"] == theme.SEVERITY_COLORS[level]
        assert style["color"] == theme.SEVERITY_TEXT_COLORS[level]
        assert style["textTransform"] == "uppercase"
    assert theme.severity_badge_style(" CRITICAL ") == theme.severity_badge_style("critical")
    unknown = theme.severity_badge_style("bogus")
    assert unknown["backgroundColor"] not in theme.SEVERITY_COLORS.values()
    assert "dashed" in unknown["border"]
    props = theme.severity_badge_props("high")
    assert props["color"] == theme.SEVERITY_COLORS["high"]
    assert props["style"]["backgroundColor"] == theme.SEVERITY_COLORS["high"]


def test_severity_cell_style_covers_every_level():
    conditions = theme.severity_cell_style()["styleConditions"]
    assert [c["style"]["color"] for c in conditions] == [theme.SEVERITY_COLORS[x] for x in theme.SEVERITY_LEVELS]
    for cond, level in zip(conditions, theme.SEVERITY_LEVELS):
        assert cond["condition"] == f'params.value === "{level}"'


def test_css_classes():
    assert theme.severity_class("critical") == "wf-sev-critical"
    assert theme.severity_class("High") == "wf-sev-high"
    assert theme.severity_class("nope") == "wf-sev-unknown"
    assert theme.state_class("never_seen") == "wf-state-never-seen"
    assert theme.state_class("NEVER SEEN") == "wf-state-never-seen"
    assert theme.state_class("?") == "wf-state-unknown"


# ---------------------------------------------------------------- source health
def test_state_colours():
    assert theme.SOURCE_STATES == ("live", "late", "stale", "failed", "never-seen")
    assert set(theme.STATE_COLORS) == set(theme.SOURCE_STATES) == set(theme.STATE_TEXT_COLORS)
    assert len(set(theme.STATE_COLORS.values())) == len(theme.STATE_COLORS)
    for state, color in theme.STATE_COLORS.items():
        assert HEX.match(color)
        assert contrast(color, theme.BG) >= 4.5, state
        assert contrast(theme.STATE_TEXT_COLORS[state], color) >= 4.5, state
    # "live" must never be mistaken for "failed", whatever the viewer's colour vision
    for vision in [None, *CVD]:
        assert delta_e(theme.STATE_COLORS["live"], theme.STATE_COLORS["failed"], vision) >= 30


# ---------------------------------------------------------------- graph config
def test_graph_config_points_at_local_topojson():
    cfg = theme.GRAPH_CONFIG
    assert cfg["displaylogo"] is False
    url = cfg["topojsonURL"]
    assert url.startswith("/") and not url.startswith("//"), "a path on our own server"
    assert "://" not in url
    assert url.endswith("/"), "plotly.js appends '<scope>_<res>m.json'"
    assert url == "/assets/vendor/topojson/"
    # the folder tools/fetch_assets.py fills
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import fetch_assets
    finally:
        sys.path.remove(str(ROOT / "tools"))
    vendor = fetch_assets.DEFAULT_VENDOR_DIR.relative_to(ROOT / "assets").as_posix()
    assert url == f"/assets/{vendor}/{fetch_assets.TOPOJSON_DIR}/"
    assert theme.WALL_GRAPH_CONFIG["topojsonURL"] == url
    assert theme.WALL_GRAPH_CONFIG["displayModeBar"] is False


def test_graph_config_with_prefix():
    cfg = theme.graph_config("/soc/assets/vendor/topojson")
    assert cfg["topojsonURL"] == "/soc/assets/vendor/topojson/"
    assert cfg is not theme.GRAPH_CONFIG and theme.GRAPH_CONFIG["topojsonURL"] == "/assets/vendor/topojson/"
    assert theme.graph_config(wall=True)["displayModeBar"] is False


# ---------------------------------------------------------------- AG Grid
def test_ag_grid_theme_is_a_dash_function_string_with_our_params():
    fn = theme.AG_GRID_THEME["function"]
    assert fn.startswith("themeQuartz.withPart(agGrid.colorSchemeDark).withParams(")
    params = json.loads(fn[fn.index(".withParams(") + len(".withParams("):-1])
    assert params == theme.AG_GRID_PARAMS
    assert params["backgroundColor"] == theme.SURFACE
    assert params["foregroundColor"] == theme.TEXT
    assert params["fontFamily"].startswith("Inter")
    assert params["fontSize"] >= 16


# ---------------------------------------------------------------- CSS agreement
def _css_var(name: str) -> str:
    m = re.search(rf"--{re.escape(name)}:\s*(#[0-9a-fA-F]{{6}})\s*;", CSS)
    assert m, f"--{name} missing from assets/watchfloor.css"
    return m.group(1).lower()


def test_css_variables_match_theme():
    for name, value in [("wf-bg", theme.BG), ("wf-surface", theme.SURFACE), ("wf-raised", theme.RAISED),
                        ("wf-border", theme.BORDER), ("wf-text", theme.TEXT), ("wf-muted", theme.MUTED),
                        ("wf-accent", theme.ACCENT), ("wf-demo", theme.DEMO)]:
        assert _css_var(name) == value, name
    for level, color in theme.SEVERITY_COLORS.items():
        assert _css_var(f"wf-sev-{level}") == color, level
    for state, color in theme.STATE_COLORS.items():
        assert _css_var(f"wf-state-{state}") == color, state


def test_css_defines_the_classes_panels_use():
    classes = set(re.findall(r"\.(wf-[a-z0-9-]+)", CSS))
    required = {"wf-demo-badge", "wf-banner-stale", "wf-header", "wf-kpi", "wf-kpi-value", "wf-card",
                "wf-asof", "wf-empty-noevents", "wf-empty-nodata", "wf-sev-unknown", "wf-state-unknown"}
    required |= {theme.severity_class(x) for x in theme.SEVERITY_LEVELS}
    required |= {theme.state_class(x) for x in theme.SOURCE_STATES}
    assert required <= classes, sorted(required - classes)


def test_css_makes_no_remote_requests():
    body = re.sub(r"/\*.*?\*/", "", CSS, flags=re.S)
    assert "@import" not in body
    assert not re.search(r"https?://|url\(\s*['\"]?//", body)
    assert "!important" not in body, "loses to Bootstrap's layered !important; see the file header"
