"""tools/fetch_assets.py: vendor CSS, fonts and map geometry are present, local-only, and
served by Dash the way the app expects.

The module fixture runs the (idempotent) setup step: instant when `make assets` already ran,
otherwise it fetches from the npm registry.
"""
from __future__ import annotations

import importlib.util
import json
import re
import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"

_spec = importlib.util.spec_from_file_location("fetch_assets", ROOT / "tools" / "fetch_assets.py")
fa = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fetch_assets", fa)
_spec.loader.exec_module(fa)

VENDOR = fa.DEFAULT_VENDOR_DIR


@pytest.fixture(scope="module")
def vendor() -> Path:
    fa.ensure(VENDOR, log=lambda _msg: None)
    return VENDOR


def _no_remote(css: str) -> list[str]:
    """Independent of fa.remote_refs: anything http(s) or protocol-relative outside comments
    and data: URIs."""
    body = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    body = re.sub(r"""url\(\s*(['"]?)data:.*?\1\s*\)""", "url()", body, flags=re.S | re.I)
    hits = re.findall(r"https?://[^\s)'\"]*", body, flags=re.I)
    hits += re.findall(r"""url\(\s*['"]?//[^)]*\)""", body, flags=re.I)
    hits += re.findall(r"@import[^;]*", body, flags=re.I)
    return hits


# ---------------------------------------------------------------- installed files
def test_files_exist(vendor):
    for rel in (fa.BOOTSTRAP_CSS, fa.FONTS_CSS, f"{fa.TOPOJSON_DIR}/world_110m.json",
                f"{fa.TOPOJSON_DIR}/world_50m.json", fa.STAMP_NAME):
        path = vendor / rel
        assert path.is_file() and path.stat().st_size > 0, rel
    assert len(list((vendor / fa.TOPOJSON_DIR).glob("*.json"))) == 18
    licences = {p.name for p in (vendor / fa.LICENSES_DIR).iterdir()}
    assert {"bootswatch-LICENSE.txt", "inter-LICENSE.txt", "jetbrains-mono-LICENSE.txt",
            "plotly.js-LICENSE.txt"} <= licences
    assert fa.is_up_to_date(vendor)


def test_vendor_css_makes_no_remote_requests(vendor):
    for css_path in sorted(ASSETS.rglob("*.css")):
        css = css_path.read_text(encoding="utf-8")
        assert _no_remote(css) == [], css_path
        assert fa.remote_refs(css) == [], css_path


def test_bootstrap_css_is_offline_and_layered(vendor):
    css = (vendor / fa.BOOTSTRAP_CSS).read_text(encoding="utf-8")
    assert css.startswith('@charset "UTF-8";')
    assert "fonts.googleapis.com" not in css
    assert "sourceMappingURL" not in css
    assert "@layer bootstrap{" in css and css.rstrip().endswith("}")
    assert len(css) > 150_000, "the whole minified sheet survived, not just its first line"
    for needle in (".btn{", ".card{", ".badge{", ".navbar{", ".alert{"):
        assert needle in css, needle


def test_font_css_points_at_installed_woff2(vendor):
    css = (vendor / fa.FONTS_CSS).read_text(encoding="utf-8")
    urls = fa.local_urls(css)
    assert urls, "no font files referenced"
    for url in urls:
        assert url.startswith(f"{fa.FONTS_DIR}/") and url.endswith(".woff2"), url
        font = vendor / url  # relative to the CSS file: /assets/vendor/fonts/...
        assert font.is_file(), url
        assert font.read_bytes()[:4] == b"wOF2", url
    families = set(re.findall(r"font-family:'([^']+)'", css))
    assert families == {"Inter", "JetBrains Mono"}
    from panels import theme

    assert theme.FONT_SANS.startswith("Inter")
    assert theme.FONT_MONO.startswith("'JetBrains Mono'")
    for family, (_version, weights) in (("Inter", fa.FONT_PACKAGES["@fontsource/inter"]),
                                        ("JetBrains Mono", fa.FONT_PACKAGES["@fontsource/jetbrains-mono"])):
        for w in weights:
            assert f"font-family:'{family}';font-style:normal;font-display:swap;font-weight:{w};" in css


@pytest.mark.parametrize("name", ["world_110m.json", "world_50m.json"])
def test_world_topojson(vendor, name):
    topo = json.loads((vendor / fa.TOPOJSON_DIR / name).read_text(encoding="utf-8"))
    assert topo["type"] == "Topology"
    assert "countries" in topo["objects"]
    countries = topo["objects"]["countries"]
    assert countries["type"] == "GeometryCollection"
    assert len(countries["geometries"]) > 150
    assert topo["arcs"] and "transform" in topo


def test_topojson_matches_installed_plotly(vendor):
    stamp = fa.read_stamp(vendor)
    from plotly.offline import get_plotlyjs_version

    assert stamp["spec"]["plotly.js"] == get_plotlyjs_version()


# ---------------------------------------------------------------- Dash serves it as intended
def test_dash_includes_css_serves_files_and_auto_loads_no_vendor_js(vendor):
    from dash import Dash, html

    app = Dash(__name__, assets_folder=str(ASSETS))
    app.layout = html.Div("x")
    client = app.server.test_client()
    page = client.get("/").get_data(as_text=True)

    css_links = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    paths = [href.split("?")[0] for href in css_links]
    assert "/assets/watchfloor.css" in paths
    assert f"/assets/vendor/{fa.BOOTSTRAP_CSS}" in paths
    assert f"/assets/vendor/{fa.FONTS_CSS}" in paths
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert not [s for s in scripts if "/assets/vendor/" in s], "vendor JS must not be auto-included"
    assert "topojson" not in page and ".woff2" not in page
    assert not re.findall(r'(?:href|src)="(?:https?:)?//', page), "external CSS/JS in the page"

    for rel in (f"vendor/{fa.TOPOJSON_DIR}/world_110m.json", f"vendor/{fa.FONTS_CSS}",
                "vendor/" + fa.local_urls((vendor / fa.FONTS_CSS).read_text(encoding="utf-8"))[0]):
        resp = client.get(f"/assets/{rel}")
        assert resp.status_code == 200, rel
        resp.close()


# ---------------------------------------------------------------- idempotence
def test_second_run_is_a_no_op_without_npm(vendor, monkeypatch):
    def boom(*_a, **_k):
        raise AssertionError("npm must not run when the assets are up to date")

    monkeypatch.setattr(fa, "npm_pack", boom)
    messages: list[str] = []
    assert fa.ensure(VENDOR, log=messages.append) is False
    assert "up to date" in messages[0]
    assert fa.main(["--check"]) == 0


def test_stamp_detects_missing_or_changed_files(tmp_path):
    spec = {"format": 0, "x": 1}
    (tmp_path / "a.css").write_text("abc")
    (tmp_path / fa.STAMP_NAME).write_text(json.dumps({"spec": spec, "files": {"a.css": 3}}))
    assert fa.is_up_to_date(tmp_path, spec)
    assert not fa.is_up_to_date(tmp_path, {**spec, "x": 2}), "pin changed"
    (tmp_path / "a.css").write_text("abcd")
    assert not fa.is_up_to_date(tmp_path, spec), "size changed"
    (tmp_path / "a.css").unlink()
    assert not fa.is_up_to_date(tmp_path, spec), "file gone"
    assert not fa.is_up_to_date(tmp_path / "nowhere", spec)


# ---------------------------------------------------------------- CSS rewriting
MINIFIED = (
    '@charset "UTF-8";/*! Bootswatch (https://bootswatch.com) */'
    "@import url(https://fonts.googleapis.com/css2?family=Lato:ital,wght@0,400;0,700&display=swap);"
    ":root{--bs-blue:#375a7f}.x{background:url(\"data:image/svg+xml,%3csvg xmlns='http://www.w3.org/2000/svg'%3e\")}"
    ".y{color:red}\n/*# sourceMappingURL=bootstrap.min.css.map */"
)


def test_strip_remote_imports_keeps_the_rest_of_the_line():
    out = fa.strip_remote_imports(MINIFIED)
    assert "googleapis" not in out
    assert ":root{--bs-blue:#375a7f}" in out and ".y{color:red}" in out
    assert fa.remote_refs(MINIFIED) and not fa.remote_refs(out)


def test_offline_bootstrap_css_wraps_in_layer():
    out = fa.offline_bootstrap_css(MINIFIED)
    assert out.count("@charset") == 1 and out.startswith('@charset "UTF-8";')
    assert "@layer bootstrap{" in out and "sourceMappingURL" not in out
    assert ".y{color:red}" in out


@pytest.mark.parametrize("css", [
    "a{background:url(https://cdn.example/x.png)}",
    "a{background:url('//cdn.example/x.png')}",
    '@import "theme.css";',
    "@import url(local.css);",
    "@font-face{src:url(\"http://fonts.example/f.woff2\")}",
    "a{mask:image-set('https://cdn.example/m.png' 1x)}",
])
def test_remote_refs_flags(css):
    assert fa.remote_refs(css), css


@pytest.mark.parametrize("css", [
    "a{background:url(\"data:image/svg+xml,%3csvg xmlns='http://www.w3.org/2000/svg'%3e\")}",
    "/* see https://getbootstrap.com/ */a{color:red}",
    "@font-face{src:url(fonts/inter-latin-400-normal.woff2) format('woff2')}",
])
def test_remote_refs_allows(css):
    assert fa.remote_refs(css) == [], css


def test_font_face_css():
    css, files = fa.font_face_css("Inter", "inter", (400, 700), {"latin": "U+0000-00FF", "greek": "U+0370"},
                                  ("latin", "cyrillic"))
    assert files == ["inter-latin-400-normal.woff2", "inter-latin-700-normal.woff2"]
    assert "src:url(fonts/inter-latin-700-normal.woff2) format('woff2')" in css
    assert "unicode-range:U+0000-00FF" in css and "cyrillic" not in css
    assert ".woff)" not in css


# ---------------------------------------------------------------- failures name the package
def test_missing_npm_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(fa.shutil, "which", lambda _name: None)
    with pytest.raises(fa.FetchError, match=r"npm not found.*bootswatch@5\.3\.8"):
        fa.npm_pack("bootswatch", "5.3.8", tmp_path)


def test_failed_download_names_the_package(monkeypatch, tmp_path):
    fake = tmp_path / "npm"
    fake.write_text("#!/bin/sh\necho 'npm error code E404' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(fa.shutil, "which", lambda name: str(fake) if name == "npm" else None)
    with pytest.raises(fa.FetchError, match=r"(?s)npm pack @fontsource/inter@0\.0\.0 failed.*E404"):
        fa.npm_pack("@fontsource/inter", "0.0.0", tmp_path)
    assert fa.main(["--vendor-dir", str(tmp_path / "v"), "--force"]) == 1
