"""The command line as an admin uses it: real processes, a real store, real loopback servers."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from store.db import Store, database_url
from store.schema import events, exposures, feed_runs, indicators

ROOT = Path(__file__).resolve().parents[2]


def app_py(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def count(data: Path, table, *where) -> int:
    store = Store(database_url(data))
    try:
        with store.reader.connect() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
    finally:
        store.dispose()


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target, ignore=shutil.ignore_patterns("feeds"))
    (target / "feeds").mkdir()
    for demo in (ROOT / "config" / "feeds").glob("demo-*.yaml"):
        shutil.copy(demo, target / "feeds" / demo.name)
    text = (target / "settings.yaml").read_text().replace("backfill: 24h", "backfill: 30m")
    (target / "settings.yaml").write_text(text)
    return target


def feed_file(folder: Path, url: str, name: str = "et.yaml", source_id: str = "et-test") -> Path:
    path = folder / name
    path.write_text(f"""\
id: {source_id}
name: ET compromised IPs (test copy)
source: {{type: http, url: "{url}", timeout: 5s, retries: 0}}
schedule: {{every: 1h}}
format: lines
""")
    return path


def test_feeds_test_is_a_dry_run_with_counts(tmp_path: Path, httpserver: HTTPServer, shared_fixtures: Path) -> None:
    body = (shared_fixtures / "feeds" / "emergingthreats_compromised-ips.txt").read_bytes()
    httpserver.expect_request("/compromised-ips.txt").respond_with_data(body, content_type="text/plain")
    path = feed_file(tmp_path, httpserver.url_for("/compromised-ips.txt"))
    result = app_py("feeds", "test", str(path), "--json", "--data", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = sum(1 for line in body.decode().splitlines() if line.strip() and not line.startswith("#"))
    assert report["records"] == expected and report["rejected"] == 0 and report["not_matchable"] == 0
    assert report["errors"] == [] and len(report["first_records"]) == 5
    assert not (tmp_path / "data" / "watchfloor.db").exists(), "a dry run writes nothing, not even a store"


def test_feeds_test_reports_a_broken_feed(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone.txt").respond_with_data("nope", status=404)
    path = feed_file(tmp_path, httpserver.url_for("/gone.txt"))
    result = app_py("feeds", "test", str(path), "--json", "--data", str(tmp_path / "data"))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["records"] == 0 and "404" in report["errors"][0]


def test_collect_once_feeds_run_and_list(tmp_path: Path, demo_config: Path, httpserver: HTTPServer,
                                          shared_fixtures: Path) -> None:
    body = (shared_fixtures / "feeds" / "emergingthreats_compromised-ips.txt").read_bytes()
    httpserver.expect_request("/compromised-ips.txt").respond_with_data(body)
    feed_file(demo_config / "feeds", httpserver.url_for("/compromised-ips.txt"))
    data = tmp_path / "data"
    once = app_py("collect", "--once", "--config", str(demo_config), "--data", str(data))
    assert once.returncode == 0, once.stdout + once.stderr
    lines = {line.split()[0]: line for line in once.stdout.splitlines()
             if line and not line.startswith((" ", "demo writer", "exposure findings"))}
    assert "exposure findings" in once.stdout
    assert set(lines) == {"demo-sensor", "demo-blocklist", "demo-kev", "et-test"}
    assert all(" ok " in line for line in lines.values()), once.stdout
    assert count(data, events) > 0 and count(data, indicators) > 0
    assert count(data, exposures) == 5, "the demo catalogue's findings on the example inventory"

    rerun = app_py("feeds", "run", "et-test", "--config", str(demo_config), "--data", str(data))
    assert rerun.returncode == 0 and "et-test" in rerun.stdout
    assert count(data, feed_runs, feed_runs.c.source_id == "et-test") == 2

    listing = app_py("feeds", "list", "--json", "--config", str(demo_config), "--data", str(data))
    rows = {row["id"]: row for row in json.loads(listing.stdout)}
    assert rows["et-test"]["state"] == "live" and rows["et-test"]["last_outcome"] in ("ok", "unchanged")
    assert rows["demo-sensor"]["kind"] == "sensor"

    missing = app_py("feeds", "run", "no-such-feed", "--config", str(demo_config), "--data", str(data))
    assert missing.returncode == 2 and "no source with id 'no-such-feed'" in missing.stderr


def test_ingest_reports_bad_lines_by_file_and_line(tmp_path: Path, demo_config: Path) -> None:
    log = tmp_path / "eve.json"
    good = ('{"timestamp":"2026-11-20T10:00:00.000000+0700","event_type":"alert","src_ip":"198.51.100.7",'
            '"src_port":4444,"dest_ip":"10.11.2.10","dest_port":502,"proto":"TCP","alert":{"signature_id":1,'
            '"signature":"test","category":"x","severity":1}}')
    log.write_text(good + "\n" + '{"timestamp": broken\n' + good.replace('"signature_id":1', '"signature_id":2') + "\n")
    data = tmp_path / "data"
    first = app_py("ingest", "--format", "suricata-eve", str(log), "--json", "--config", str(demo_config), "--data", str(data))
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["accepted"], report["rejected"], report["duplicates"]) == (2, 1, 0)
    assert report["rejects"][0]["line"] == 2 and report["rejects"][0]["file"].endswith("eve.json")
    again = json.loads(app_py("ingest", "--format", "suricata-eve", str(log), "--json",
                              "--config", str(demo_config), "--data", str(data)).stdout)
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    assert count(data, events) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else "exited"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {limit} s")


@pytest.mark.parametrize("how", ["gunicorn", "serve --no-collect"])
def test_web_only_processes_serve_without_collecting(tmp_path: Path, demo_config: Path, how: str) -> None:
    data = tmp_path / "data"
    port = free_port()
    env = {**os.environ, "WATCHFLOOR_CONFIG": str(demo_config), "WATCHFLOOR_DATA": str(data)}
    if how == "gunicorn":
        command = [str(Path(sys.executable).parent / "gunicorn"), "--no-control-socket", "-w", "2",
                   "-b", f"127.0.0.1:{port}", "app:server"]
    else:
        env["WATCHFLOOR_PORT"] = str(port)
        command = [sys.executable, "app.py", "serve", "--no-collect"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/wall", process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=10) as response:
            assert response.status == 200
        time.sleep(3)  # long enough for a scheduler's first jobs (they start within 2 s) to have run
        assert count(data, feed_runs) == 0, "a web-only process never collects"
        assert not (data / "demo" / "eve.json").exists()
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_serving_process_freezes_its_startup_heap(tmp_path: Path, demo_config: Path) -> None:
    # What gunicorn does with ``app:server``: build the app, then the start-up objects are frozen
    # (out of the cyclic collector's full passes) and the serving process can still collect.
    env = {**os.environ, "WATCHFLOOR_CONFIG": str(demo_config), "WATCHFLOOR_DATA": str(tmp_path / "data")}
    probe = ("import gc, app\nbefore = gc.get_freeze_count()\napp.server\n"
             "print(before, gc.get_freeze_count(), gc.isenabled())")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    before, frozen, enabled = done.stdout.split()
    assert before == "0" and int(frozen) > 100_000 and enabled == "True"
