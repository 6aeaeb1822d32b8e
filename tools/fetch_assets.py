"""Install the third-party browser assets watchfloor serves into ``assets/vendor/``.

Watchfloor runs in air-gapped SOCs, so the UI must never ask a CDN for anything. This
setup step fetches, with ``npm pack`` from the npm registry only, and rewrites for offline use:

* ``00-bootstrap.min.css``: a bootswatch dark theme, Google Fonts ``@import`` removed,
  source-map comment removed, and the whole sheet wrapped in ``@layer bootstrap {...}`` so
  that the app's own unlayered CSS (``assets/watchfloor.css``) always wins, whatever order
  Dash puts the ``<link>`` tags in (Dash lists files in ``assets/`` itself *before* files in
  sub-folders such as ``assets/vendor/``).
* ``01-fonts.css`` + ``fonts/*.woff2``: Inter (UI text, KPI numerals) and JetBrains Mono
  (IPs, hashes, clocks) from @fontsource, woff2 only, for the weights and subsets below;
  ``url()`` paths are relative, so they resolve to ``/assets/vendor/fonts/...`` (and still
  work under a ``url_base_pathname`` prefix).
* ``topojson/*.json``: the 18 base-map files embedded in plotly.js's
  ``dist/plotly-geo-assets.js``, for the plotly.js version that the installed ``plotly``
  Python package bundles, extracted with ``tools/extract_topojson.js`` (node). Point
  ``dcc.Graph(config={"topojsonURL": ...})`` at ``/assets/vendor/topojson/``.
* ``licenses/``: the licence file of every package used.

Idempotent: a stamp file (``assets/vendor/.fetch_assets.json``) records what was installed;
when it matches the pins below and every listed file is present with its recorded size, the
script only says so (no npm, no network). ``--force`` reinstalls, ``--check`` reports
without installing (exit status 1 when an install is needed).

Usage::

    .venv/bin/python tools/fetch_assets.py [--force | --check] [--vendor-dir DIR] [-v]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# --------------------------------------------------------------------------------------
# Pins: the one place to change what is installed.
# --------------------------------------------------------------------------------------
BOOTSWATCH_VERSION = "5.3.8"
#: darkly: white text (#fff) on dark grey, calm muted component colours. watchfloor.css then
#: darkens the page to near-black. (cyborg's grey #adafae body text reads worse at distance;
#: slate is grey-on-grey.)
BOOTSWATCH_THEME = "darkly"
#: npm package -> (version, weights). Only the normal (non-italic) style is installed.
FONT_PACKAGES: dict[str, tuple[str, tuple[int, ...]]] = {
    "@fontsource/inter": ("5.3.0", (400, 500, 600, 700, 800)),
    "@fontsource/jetbrains-mono": ("5.3.0", (400, 600)),
}
#: Unicode subsets installed per weight. The browser downloads a subset only when the page
#: contains characters in its unicode-range, so extra subsets cost disk, not bandwidth.
FONT_SUBSETS: tuple[str, ...] = ("latin", "latin-ext", "cyrillic", "greek")
#: plotly.js is pinned at run time to the version bundled by the plotly Python package
#: (plotly.offline.get_plotlyjs_version()), so map geometry always matches the plotting code.
PLOTLYJS_PACKAGE = "plotly.js"

#: Bump when the layout or content of the output changes, to force a reinstall.
FORMAT_VERSION = 1

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENDOR_DIR = REPO_ROOT / "assets" / "vendor"
EXTRACT_SCRIPT = Path(__file__).resolve().with_name("extract_topojson.js")

STAMP_NAME = ".fetch_assets.json"
LOCK_NAME = ".fetch_assets.lock"
BOOTSTRAP_CSS = "00-bootstrap.min.css"
FONTS_CSS = "01-fonts.css"
FONTS_DIR = "fonts"
TOPOJSON_DIR = "topojson"
LICENSES_DIR = "licenses"
#: Everything this script owns inside the vendor folder (replaced as a whole on install).
MANAGED_NAMES = (BOOTSTRAP_CSS, FONTS_CSS, FONTS_DIR, TOPOJSON_DIR, LICENSES_DIR, STAMP_NAME)
#: Topojson files that must be present (plotly.js asks for "<scope>_<resolution>m.json").
REQUIRED_TOPOJSON = ("world_110m.json", "world_50m.json")

NPM_TIMEOUT_S = 300
NODE_TIMEOUT_S = 120


class FetchError(RuntimeError):
    """A setup step failed; the message names the package or tool involved."""


# --------------------------------------------------------------------------------------
# What should be installed
# --------------------------------------------------------------------------------------
def plotlyjs_version() -> str:
    """The plotly.js version bundled with the installed plotly Python package."""
    try:
        from plotly.offline import get_plotlyjs_version
    except ImportError as exc:  # pragma: no cover - plotly is a hard dependency
        raise FetchError(f"cannot import plotly to read its plotly.js version: {exc}") from exc
    return get_plotlyjs_version()


def desired_spec() -> dict:
    """Everything that determines the output; compared with the stamp file."""
    return {
        "format": FORMAT_VERSION,
        "bootswatch": {"version": BOOTSWATCH_VERSION, "theme": BOOTSWATCH_THEME},
        "fonts": {
            name: {"version": version, "weights": list(weights)}
            for name, (version, weights) in sorted(FONT_PACKAGES.items())
        },
        "font_subsets": list(FONT_SUBSETS),
        "plotly.js": plotlyjs_version(),
    }


def read_stamp(vendor_dir: Path) -> dict | None:
    try:
        return json.loads((vendor_dir / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_up_to_date(vendor_dir: Path, spec: dict | None = None) -> bool:
    """True when the stamp matches ``spec`` and every recorded file has its recorded size."""
    stamp = read_stamp(vendor_dir)
    if not stamp or stamp.get("spec") != (spec if spec is not None else desired_spec()):
        return False
    files = stamp.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, size in files.items():
        try:
            if (vendor_dir / rel).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------------------
# CSS checks and rewrites (pure functions, unit-tested)
# --------------------------------------------------------------------------------------
_COMMENT_RE = re.compile(r"/\*.*?\*/", re.S)
_URL_RE = re.compile(r"""url\(\s*(?P<q>['"]?)(?P<url>.*?)(?P=q)\s*\)""", re.S | re.I)
_REMOTE_IMPORT_RE = re.compile(
    r"""@import\s+(?:url\(\s*['"]?(?:https?:)?//[^)]*\)|['"](?:https?:)?//[^'"]*['"])[^;]*;?""",
    re.I,
)
_SOURCEMAP_RE = re.compile(r"/\*#\s*sourceMappingURL=[^*]*\*/\s*")
_CHARSET_RE = re.compile(r"""^\s*@charset\s+["'][^"']*["']\s*;""", re.I)


def strip_remote_imports(css: str) -> str:
    """Remove ``@import`` rules that point at another host (e.g. Google Fonts).

    Works on minified one-line CSS: only the rule itself is removed, not the line.
    """
    return _REMOTE_IMPORT_RE.sub("", css)


def strip_sourcemap(css: str) -> str:
    return _SOURCEMAP_RE.sub("", css)


def remote_refs(css: str) -> list[str]:
    """Every reference in ``css`` that would make a browser contact another host.

    Comments are ignored and ``data:`` URIs are ignored (their SVG ``xmlns`` is not a
    request). Anything else that carries a scheme or starts with ``//`` is reported, as is
    any ``@import`` at all (a local import chain is not how this project loads CSS) and any
    bare ``http(s)://`` left outside a ``url()``.
    """
    body = _COMMENT_RE.sub("", css)
    found: list[str] = []
    for m in _URL_RE.finditer(body):
        url = m.group("url").strip()
        if url.lower().startswith("data:"):
            continue
        if url.startswith("//") or re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):
            found.append(f"url({url})")
    found.extend(m.group(0) for m in re.finditer(r"@import[^;]*;?", body, re.I))
    rest = _URL_RE.sub("", body)
    found.extend(re.findall(r"https?://[^\s'\")]+", rest, re.I))
    return found


def local_urls(css: str) -> list[str]:
    """Relative ``url()`` targets in ``css`` (not data: URIs, comments ignored)."""
    body = _COMMENT_RE.sub("", css)
    out = []
    for m in _URL_RE.finditer(body):
        url = m.group("url").strip()
        if url.lower().startswith("data:") or url.startswith("//"):
            continue
        if not re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):
            out.append(url)
    return out


def offline_bootstrap_css(css: str) -> str:
    """Bootswatch CSS made safe offline and wrapped in ``@layer bootstrap``."""
    css = strip_sourcemap(strip_remote_imports(css))
    css = _CHARSET_RE.sub("", css, count=1).lstrip()
    wrapped = (
        '@charset "UTF-8";\n'
        f"/* Bootswatch {BOOTSWATCH_THEME} {BOOTSWATCH_VERSION}, installed by tools/fetch_assets.py:"
        " Google Fonts import removed, wrapped in a cascade layer so the app's own CSS wins. */\n"
        f"@layer bootstrap{{{css}}}\n"
    )
    left = remote_refs(wrapped)
    if left:
        raise FetchError(f"bootswatch@{BOOTSWATCH_VERSION}: remote references left in CSS: {left[:5]}")
    return wrapped


def font_face_css(family: str, font_id: str, weights: tuple[int, ...], ranges: dict[str, str],
                  subsets: tuple[str, ...], fonts_dir: str = FONTS_DIR) -> tuple[str, list[str]]:
    """@font-face rules (woff2 only, relative URLs) and the list of woff2 files they use."""
    rules, files = [], []
    for weight in weights:
        for subset in subsets:
            if subset not in ranges:
                continue
            name = f"{font_id}-{subset}-{weight}-normal.woff2"
            files.append(name)
            rules.append(
                "@font-face{"
                f"font-family:'{family}';font-style:normal;font-display:swap;font-weight:{weight};"
                f"src:url({fonts_dir}/{name}) format('woff2');"
                f"unicode-range:{ranges[subset]}}}"
            )
    return "\n".join(rules) + "\n", files


# --------------------------------------------------------------------------------------
# npm / node
# --------------------------------------------------------------------------------------
def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise FetchError(f"{name} not found on PATH (needed to fetch {package}); install Node.js 18+ and npm")
    return path


def npm_pack(package: str, version: str, dest: Path) -> Path:
    """``npm pack package@version`` into ``dest``; returns the tarball path."""
    npm = _tool("npm", f"{package}@{version}")
    spec = f"{package}@{version}"
    try:
        proc = subprocess.run(
            [npm, "pack", spec, "--json", "--pack-destination", str(dest)],
            cwd=dest, capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
            env={**os.environ, "npm_config_fund": "false", "npm_config_audit": "false",
                 "npm_config_update_notifier": "false"},
        )
    except subprocess.TimeoutExpired as exc:
        raise FetchError(f"npm pack {spec} timed out after {NPM_TIMEOUT_S}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise FetchError(f"npm pack {spec} failed (exit {proc.returncode}):\n{tail}")
    try:
        filename = json.loads(proc.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        tgzs = sorted(dest.glob("*.tgz"), key=lambda p: p.stat().st_mtime)
        if not tgzs:
            raise FetchError(f"npm pack {spec}: no tarball produced") from None
        return tgzs[-1]
    path = dest / Path(filename).name
    if not path.is_file():
        raise FetchError(f"npm pack {spec}: expected tarball {path.name} not found")
    return path


def _read_members(tgz: Path, package: str, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """Regular-file members of an npm tarball whose path (minus ``package/``) passes ``wanted``."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                rel = member.name.split("/", 1)[1] if "/" in member.name else member.name
                if wanted(rel):
                    fh = tar.extractfile(member)
                    if fh is not None:
                        out[rel] = fh.read()
    except (OSError, tarfile.TarError) as exc:
        raise FetchError(f"{package}: cannot read tarball {tgz.name}: {exc}") from exc
    return out


def _need(members: dict[str, bytes], rel: str, package: str) -> bytes:
    try:
        return members[rel]
    except KeyError:
        raise FetchError(f"{package}: {rel} missing from the npm package") from None


# --------------------------------------------------------------------------------------
# Builders (write into a staging folder)
# --------------------------------------------------------------------------------------
def build_bootstrap(tmp: Path, stage: Path) -> None:
    pkg = "bootswatch"
    tgz = npm_pack(pkg, BOOTSWATCH_VERSION, tmp)
    css_rel = f"dist/{BOOTSWATCH_THEME}/bootstrap.min.css"
    members = _read_members(tgz, pkg, lambda rel: rel in (css_rel, "LICENSE"))
    css = _need(members, css_rel, f"{pkg}@{BOOTSWATCH_VERSION}").decode("utf-8")
    (stage / BOOTSTRAP_CSS).write_text(offline_bootstrap_css(css), encoding="utf-8")
    (stage / LICENSES_DIR / "bootswatch-LICENSE.txt").write_bytes(
        _need(members, "LICENSE", f"{pkg}@{BOOTSWATCH_VERSION}"))


def build_fonts(tmp: Path, stage: Path) -> None:
    chunks = ["/* Fonts installed by tools/fetch_assets.py from @fontsource (SIL OFL 1.1, see licenses/). */\n"]
    for package, (version, weights) in sorted(FONT_PACKAGES.items()):
        label = f"{package}@{version}"
        tgz = npm_pack(package, version, tmp)
        members = _read_members(
            tgz, label,
            lambda rel: rel in ("metadata.json", "unicode.json", "LICENSE")
            or (rel.startswith("files/") and rel.endswith("-normal.woff2")),
        )
        try:
            meta = json.loads(_need(members, "metadata.json", label))
            ranges = json.loads(_need(members, "unicode.json", label))
            family, font_id = meta["family"], meta["id"]
        except (ValueError, KeyError) as exc:
            raise FetchError(f"{label}: unexpected metadata.json/unicode.json: {exc}") from exc
        missing_w = [w for w in weights if w not in meta.get("weights", [])]
        if missing_w:
            raise FetchError(f"{label}: weights {missing_w} not available (has {meta.get('weights')})")
        css, files = font_face_css(family, font_id, weights, ranges, FONT_SUBSETS)
        for name in files:
            (stage / FONTS_DIR / name).write_bytes(_need(members, f"files/{name}", label))
        chunks.append(f"/* {family}: {label}, weights {', '.join(map(str, weights))} */\n{css}")
        (stage / LICENSES_DIR / f"{font_id}-LICENSE.txt").write_bytes(_need(members, "LICENSE", label))
    text = "".join(chunks)
    left = remote_refs(text)
    if left:
        raise FetchError(f"fonts CSS has remote references: {left[:5]}")
    (stage / FONTS_CSS).write_text(text, encoding="utf-8")


def build_topojson(tmp: Path, stage: Path, version: str) -> None:
    label = f"{PLOTLYJS_PACKAGE}@{version}"
    node = _tool("node", label)
    if not EXTRACT_SCRIPT.is_file():
        raise FetchError(f"{EXTRACT_SCRIPT} is missing (needed to extract topojson from {label})")
    tgz = npm_pack(PLOTLYJS_PACKAGE, version, tmp)
    bundle_rel = "dist/plotly-geo-assets.js"
    members = _read_members(tgz, label, lambda rel: rel in (bundle_rel, "LICENSE"))
    bundle = tmp / "plotly-geo-assets.js"
    bundle.write_bytes(_need(members, bundle_rel, label))
    out_dir = stage / TOPOJSON_DIR
    try:
        proc = subprocess.run([node, str(EXTRACT_SCRIPT), str(bundle), str(out_dir), version],
                              capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise FetchError(f"{label}: topojson extraction timed out") from exc
    if proc.returncode != 0:
        raise FetchError(f"{label}: topojson extraction failed: {proc.stderr.strip()[-800:]}")
    for name in REQUIRED_TOPOJSON:
        if not (out_dir / name).is_file():
            raise FetchError(f"{label}: {name} not found in {bundle_rel}")
    (stage / LICENSES_DIR / "plotly.js-LICENSE.txt").write_bytes(_need(members, "LICENSE", label))


# --------------------------------------------------------------------------------------
# Install
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(vendor_dir: Path) -> Iterator[None]:
    vendor_dir.mkdir(parents=True, exist_ok=True)
    with open(vendor_dir / LOCK_NAME, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _file_sizes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size
            for p in sorted(root.rglob("*")) if p.is_file()}


def install(vendor_dir: Path, spec: dict) -> dict[str, int]:
    """Fetch and build everything into a staging folder, then swap it into ``vendor_dir``."""
    with tempfile.TemporaryDirectory(prefix="wf-fetch-assets-") as tmp_s:
        tmp = Path(tmp_s)
        stage = tmp / "stage"
        for sub in (FONTS_DIR, TOPOJSON_DIR, LICENSES_DIR):
            (stage / sub).mkdir(parents=True)
        build_bootstrap(tmp, stage)
        build_fonts(tmp, stage)
        build_topojson(tmp, stage, spec["plotly.js"])
        files = _file_sizes(stage)

        (vendor_dir / STAMP_NAME).unlink(missing_ok=True)  # incomplete until the stamp is back
        for name in MANAGED_NAMES:
            target = vendor_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        for entry in sorted(stage.iterdir()):
            shutil.move(str(entry), str(vendor_dir / entry.name))
    stamp = {"spec": spec, "files": files,
             "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp_stamp = vendor_dir / (STAMP_NAME + ".tmp")
    tmp_stamp.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp_stamp, vendor_dir / STAMP_NAME)
    return files


def ensure(vendor_dir: Path = DEFAULT_VENDOR_DIR, force: bool = False,
           log: Callable[[str], None] = print, verbose: bool = False) -> bool:
    """Install the assets unless already up to date. Returns True when it installed."""
    vendor_dir = Path(vendor_dir)
    spec = desired_spec()
    if not force and is_up_to_date(vendor_dir, spec):
        log(f"fetch_assets: {_display(vendor_dir)} is up to date ({_summary(spec)})")
        return False
    with _locked(vendor_dir):
        if not force and is_up_to_date(vendor_dir, spec):  # another process just did it
            log(f"fetch_assets: {_display(vendor_dir)} is up to date ({_summary(spec)})")
            return False
        t0 = time.monotonic()
        files = install(vendor_dir, spec)
    log(f"fetch_assets: installed into {_display(vendor_dir)} in {time.monotonic() - t0:.1f}s "
        f"({_summary(spec)})")
    for line in _report(files, verbose):
        log("  " + line)
    return True


def _summary(spec: dict) -> str:
    fonts = ", ".join(f"{n}@{v['version']}" for n, v in spec["fonts"].items())
    return (f"bootswatch@{spec['bootswatch']['version']} {spec['bootswatch']['theme']}, {fonts}, "
            f"plotly.js@{spec['plotly.js']} topojson")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _report(files: dict[str, int], verbose: bool) -> list[str]:
    lines, groups = [], {}
    for rel, size in files.items():
        head = rel.split("/", 1)[0] if "/" in rel else None
        if head and not verbose:
            count, total = groups.get(head, (0, 0))
            groups[head] = (count + 1, total + size)
        else:
            lines.append(f"{rel:<44} {_human(size):>10}")
    for head, (count, total) in sorted(groups.items()):
        extra = ""
        if head == TOPOJSON_DIR:
            extra = "  (" + ", ".join(f"{n} {_human(files[f'{head}/{n}'])}" for n in REQUIRED_TOPOJSON) + ")"
        lines.append(f"{head + '/ (' + str(count) + ' files)':<44} {_human(total):>10}{extra}")
    lines.append(f"{'total':<44} {_human(sum(files.values())):>10}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true", help="reinstall even if up to date")
    mode.add_argument("--check", action="store_true",
                      help="only report; exit 1 if an install is needed (no network)")
    parser.add_argument("--vendor-dir", type=Path, default=DEFAULT_VENDOR_DIR,
                        help=f"target folder (default: {DEFAULT_VENDOR_DIR})")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every installed file")
    args = parser.parse_args(argv)
    try:
        if args.check:
            ok = is_up_to_date(args.vendor_dir)
            print(f"fetch_assets: {_display(args.vendor_dir)} "
                  f"{'is up to date' if ok else 'needs an install (run tools/fetch_assets.py)'}")
            return 0 if ok else 1
        ensure(args.vendor_dir, force=args.force, verbose=args.verbose)
    except FetchError as exc:
        print(f"fetch_assets: ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
