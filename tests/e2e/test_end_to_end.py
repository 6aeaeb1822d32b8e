"""End to end: the real app in a temporary folder with the demo source, seen through headless Chromium.

The server is started exactly as a user starts it (``python app.py serve``), the demo writes EVE
lines, the real tailer, pipeline and store take them in, and the pages must show what the store
holds, with no request leaving 127.0.0.1 and no error in the browser console. Screenshots at
1920x1080 are saved under ``screenshots/`` (or ``$WATCHFLOOR_SCREENSHOTS``) and their paths printed.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import func, select

from store.db import Store, database_url
from store.schema import events, feed_runs, incident_log, incidents, rollups

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
STARTUP_LIMIT_S = 240
SCREENSHOTS = Path(os.environ.get("WATCHFLOOR_SCREENSHOTS", ROOT / "screenshots"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveApp:
    url: str
    store: Store
    log: Path

    def count(self, table, *where) -> int:
        with self.store.reader.connect() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def demo_only_config(target: Path) -> Path:
    """The shipped configuration with only the demo sources, and two hours of demo history."""
    shutil.copytree(ROOT / "config", target, ignore=shutil.ignore_patterns("feeds"))
    (target / "feeds").mkdir()
    for demo in (ROOT / "config" / "feeds").glob("demo-*.yaml"):
        shutil.copy(demo, target / "feeds" / demo.name)
    settings = yaml.safe_load((target / "settings.yaml").read_text())
    settings["demo"]["backfill"] = "2h"
    (target / "settings.yaml").write_text(yaml.safe_dump(settings))
    return target


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("e2e")
    config, data = demo_only_config(base / "config"), base / "data"
    port = free_port()
    log = base / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py", "serve", "--config", str(config), "--data", str(data), "--port", str(port)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    app = LiveApp(f"http://127.0.0.1:{port}", Store(database_url(data)), log)
    try:
        _wait_for_first_cycle(app, process)
        yield app
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        app.store.dispose()


def _wait_for_first_cycle(app: LiveApp, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with {process.returncode}:\n{app.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(app.url + "/wall", timeout=5) as response:
                up = response.status == 200
            ready = (up and app.count(events) > 0 and app.count(incidents) > 0
                     and app.count(feed_runs, feed_runs.c.source_id == "demo-blocklist", feed_runs.c.outcome == "ok") > 0
                     and app.count(feed_runs, feed_runs.c.source_id == "demo-sensor", feed_runs.c.outcome == "ok") > 1)
            if ready:
                return
        except (OSError, Exception) as exc:  # not up yet, or the store is still being created
            if isinstance(exc, AssertionError):
                raise
        time.sleep(1)
    raise AssertionError(f"no collection cycle within {STARTUP_LIMIT_S} s:\n{app.log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@dataclass
class Visit:
    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        outside = [u for u in self.requests if urlparse(u).hostname not in ("127.0.0.1",) and not u.startswith("data:")]
        assert outside == [], f"requests left the server: {outside}"
        assert self.console_errors == [], f"browser console errors: {self.console_errors}"

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path


def visit(browser: Browser, url: str) -> Visit:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    seen = Visit(page)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("console", lambda message: seen.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen.console_errors.append(str(error)))
    page.goto(url)
    return seen


def number(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def test_wall_shows_what_the_store_holds(live_app: LiveApp, browser: Browser) -> None:
    # The tile counts the 60 minutes up to the page's "now": compare within one clock minute only.
    minute = _current_minute()
    before = _events_last_hour(live_app, minute)
    wall = visit(browser, live_app.url + "/wall")
    page = wall.page
    for _attempt in range(3):
        page.wait_for_selector("#wall-kpi-events .wf-kpi-value", timeout=60_000)
        page.wait_for_selector("#wall-map .geo .layer path", state="attached", timeout=60_000)
        page.wait_for_selector("#wall-timeline .bars path, #wall-timeline .barlayer path", state="attached",
                               timeout=60_000)
        shown = number(page.inner_text("#wall-kpi-events .wf-kpi-value"))
        after = _events_last_hour(live_app, minute)
        if _current_minute() == minute:
            break
        minute = _current_minute()
        before = _events_last_hour(live_app, minute)
        page.reload()
    assert before <= shown <= after, "the events tile shows the store's count of the last hour"
    assert page.is_visible(".wf-demo-badge")
    assert page.get_attribute("#shell-nav-wall", "class").split().count("active") == 1
    health = page.inner_text("#wall-health")
    assert "Demo Suricata sensor" in health and "Demo compromised-hosts blocklist" in health
    # The map's geometry came from our own server, and it was drawn.
    assert any("/assets/vendor/topojson/world_" in u for u in wall.requests)
    assert page.locator("#wall-map .scattergeo").count() >= 1
    page.wait_for_timeout(1500)
    wall.screenshot("wall")
    wall.assert_clean()
    page.close()


def test_home_is_the_wall_with_its_nav_link_lit(live_app: LiveApp, browser: Browser) -> None:
    home = visit(browser, live_app.url + "/")
    page = home.page
    page.wait_for_selector("#wall-kpi-events .wf-kpi-value", timeout=60_000)
    page.wait_for_selector("#shell-nav-wall.active", timeout=30_000)
    assert "active" not in page.get_attribute("#shell-nav-incidents", "class").split()
    home.assert_clean()
    page.close()


def _current_minute() -> int:
    return int(time.time() // 60) * 60_000


def _events_last_hour(app: LiveApp, now_minute: int) -> int:
    with app.store.reader.connect() as conn:
        return conn.execute(select(func.coalesce(func.sum(rollups.c.events), 0))
                            .where(rollups.c.minute > now_minute - 60 * 60_000)).scalar_one()


def test_incident_list_and_drill_down(live_app: LiveApp, browser: Browser) -> None:
    listing = visit(browser, live_app.url + "/incidents")
    page = listing.page
    page.wait_for_selector("#incidents-grid .ag-row", timeout=60_000)
    rows = page.locator("#incidents-grid .ag-center-cols-container .ag-row")
    assert rows.count() > 0
    listing.screenshot("incidents")
    # Two clicks from the list: the first row opens its incident page.
    rows.first.locator(".ag-cell").first.click()
    page.wait_for_url(re.compile(r".*/incidents/\d+$"), timeout=30_000)
    incident_id = int(page.url.rsplit("/", 1)[1])
    with live_app.store.reader.connect() as conn:
        stored = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()
        raw = conn.execute(select(events.c.raw).where(events.c.incident_id == incident_id)
                           .order_by(events.c.ts.desc()).limit(1)).scalar_one()
    page.wait_for_selector("#incident-header", timeout=30_000)
    assert stored.title in page.inner_text("#incident-header")
    page.wait_for_selector("#incident-events .ag-row", timeout=30_000)
    signature_id = re.search(r'"signature_id":(\d+)', raw).group(1)
    page.wait_for_function(f"document.querySelector('#incident-raw') && "
                           f"document.querySelector('#incident-raw').innerText.includes('{signature_id}')",
                           timeout=30_000)
    listing.assert_clean()
    page.close()


def test_incident_page_with_indicator_match_and_officer_action(live_app: LiveApp, browser: Browser) -> None:
    with live_app.store.reader.connect() as conn:
        matched = conn.execute(select(incidents.c.id, incidents.c.status).where(
            incidents.c.indicator_ids.is_not(None), incidents.c.status == "new")
            .order_by(incidents.c.score.desc()).limit(1)).first()
    assert matched is not None, "demo attackers on the demo blocklist produce indicator matches"
    detail = visit(browser, f"{live_app.url}/incidents/{matched.id}")
    page = detail.page
    page.wait_for_selector("#incident-header", timeout=60_000)
    body = page.inner_text("body")
    assert "Demo compromised-hosts blocklist" in body, "the matched indicator's feed is named"
    page.click("#" + _dict_id({"type": "incident-action", "status": "acknowledged"}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with live_app.store.reader.connect() as conn:
            status = conn.execute(select(incidents.c.status).where(incidents.c.id == matched.id)).scalar_one()
        if status == "acknowledged":
            break
        time.sleep(0.5)
    assert status == "acknowledged"
    assert live_app.count(incident_log, incident_log.c.incident_id == matched.id) >= 1
    page.wait_for_timeout(1000)
    detail.screenshot("incident")
    detail.assert_clean()
    page.close()


def _dict_id(component_id: dict) -> str:
    """The DOM id Dash gives a dict id (JSON with sorted keys), escaped for a CSS selector."""
    import json

    text = json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return re.sub(r'([{}":,\[\]])', r"\\\1", text)


def test_feeds_page(live_app: LiveApp, browser: Browser) -> None:
    feeds = visit(browser, live_app.url + "/feeds")
    page = feeds.page
    page.wait_for_function("document.body.innerText.includes('Demo compromised-hosts blocklist')", timeout=60_000)
    feeds.screenshot("feeds")
    feeds.assert_clean()
    page.close()


def test_exposure_page_shows_the_demo_catalogue_findings(live_app: LiveApp, browser: Browser) -> None:
    exposure = visit(browser, live_app.url + "/exposure")
    page = exposure.page
    # The demo KEV file went through the real KEV parser and the exposure recompute.
    page.wait_for_function("document.body.innerText.includes('CVE-2023-4966')", timeout=60_000)
    body = page.inner_text("body")
    assert "CVE-2021-41773" in body and "Citrix" in body
    exposure.screenshot("exposure")
    exposure.assert_clean()
    page.close()
