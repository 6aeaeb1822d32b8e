"""``source.type: taxii`` against a real TAXII 2.1 server: medallion, started by the test on loopback.

medallion (memory backend, HTTP Basic auth) runs as a subprocess on a free 127.0.0.1 port with a
temporary config and data file, as in ``shared/research/stack_probe.md`` §6. Each test writes its
own collection with real STIX indicators from the ``stix/`` fixtures through the TAXII API, then
collects it through the runner into a real store.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from taxii2client.v21 import Collection

from collectors.transports import FetchContext, FetchError
from collectors.transports import taxii
from conftest import Floor, make_source

USER, PASSWORD = "watchfloor", "medallion-Pa55"
COLLECTIONS = {name: f"91a7b528-80eb-42ed-a74d-c6fbd5a2{index:04d}" for index, name in
               enumerate(("incremental", "paging", "lookback", "errors", "single"))}
STARTUP_SECONDS = 20


def indicators_of(fixture: Path) -> list[dict[str, Any]]:
    return [o for o in json.loads(fixture.read_text())["objects"] if o["type"] == "indicator"]


@pytest.fixture(scope="module")
def medallion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("medallion")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    base = f"http://127.0.0.1:{port}"
    (folder / "config.json").write_text(json.dumps({
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": str(folder / "data.json")},
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": 100},
    }))
    (folder / "data.json").write_text(json.dumps({
        "/discovery": {"title": "watchfloor test TAXII server", "default": f"{base}/api1/",
                       "api_roots": [f"{base}/api1/"]},
        "api1": {
            "information": {"title": "test root", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 9765625},
            "status": [],
            "collections": [{"id": cid, "title": name, "can_read": True, "can_write": True,
                             "media_types": ["application/stix+json;version=2.1"], "objects": [], "manifest": []}
                            for name, cid in COLLECTIONS.items()],
        },
    }))
    log = (folder / "medallion.log").open("wb")
    process = subprocess.Popen([str(Path(sys.executable).with_name("medallion")), "--host", "127.0.0.1",
                                "--port", str(port), str(folder / "config.json")],
                               cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if requests.get(f"{base}/taxii2/", auth=(USER, PASSWORD), timeout=1,
                                headers={"Accept": "application/taxii+json;version=2.1"}).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"medallion did not start: {(folder / 'medallion.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"{base}/api1/collections/"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def collection_url(medallion: str, name: str) -> str:
    return f"{medallion}{COLLECTIONS[name]}/"


def records_in(objects: list[dict[str, Any]]) -> int:
    """How many records the stix21 format makes of these objects (an OR pattern gives several)."""
    import io

    from collectors.formats import stix21
    source = taxii_source("http://unused.invalid/")
    bundle = io.BytesIO(json.dumps({"type": "bundle", "id": "bundle--x", "objects": objects}).encode())
    return sum(1 for r in stix21.parse(bundle, source, stix21.Options()) if type(r).__name__ == "Indicator")


def publish(url: str, objects: list[dict[str, Any]]) -> None:
    """Add objects through the TAXII API, as a producer would."""
    status = Collection(url, user=USER, password=PASSWORD).add_objects({"objects": objects})
    assert status.status == "complete" and status.success_count == len(objects), status.failures


def taxii_source(url: str, **fields: Any) -> Any:
    return make_source(id="taxii-feed", format="stix21", source={
        "type": "taxii", "url": url, "initial_lookback": "3650d",
        "auth": {"type": "basic", "username": USER, "password": "${ENV:WF_TEST_TAXII_PASSWORD}"}, **fields})


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_TEST_TAXII_PASSWORD", PASSWORD)


@pytest.fixture
def real_clock(floor: Floor) -> Floor:
    # medallion stamps date_added with the real time, so the floor's clock follows it here.
    floor.now = datetime.now(timezone.utc)
    return floor


def test_incremental_collection(medallion: str, real_clock: Floor, shared_fixtures: Path) -> None:
    floor = real_clock
    url = collection_url(medallion, "incremental")
    apt1 = indicators_of(shared_fixtures / "stix/oasis-apt1.json")
    poison_ivy = indicators_of(shared_fixtures / "stix/oasis-poisonivy.json")
    publish(url, apt1)
    source = taxii_source(url)

    first = floor.run(source)
    assert (first.outcome, first.parsed, first.rejected) == ("ok", records_in(apt1), 0)
    stored = floor.active("taxii-feed")
    assert len(stored) == records_in(apt1) == len(apt1)

    second = floor.run(source)
    assert (second.outcome, second.new, second.parsed) == ("unchanged", 0, 0)

    publish(url, poison_ivy)
    third = floor.run(source)
    assert (third.outcome, third.parsed) == ("ok", records_in(poison_ivy))
    assert records_in(poison_ivy) > len(poison_ivy)  # several hashes per Poison Ivy pattern
    assert third.new == len(floor.active("taxii-feed")) - len(stored)
    assert stored <= floor.active("taxii-feed")  # incremental: what the last page lacked is not expired

    assert floor.run(source).outcome == "unchanged"


def test_paging_gives_the_same_total(medallion: str, real_clock: Floor, shared_fixtures: Path) -> None:
    url = collection_url(medallion, "paging")
    objects = (indicators_of(shared_fixtures / "stix/oasis-apt1.json")
               + indicators_of(shared_fixtures / "stix/oasis-poisonivy.json"))
    publish(url, objects)
    ctx = FetchContext(data_dir=real_clock.data_dir, now=real_clock.clock)

    paged = taxii.fetch(taxii_source(url, page_size=5), {}, ctx)
    whole = taxii.fetch(taxii_source(url, page_size=100), {}, ctx)
    try:
        counts = [len(json.load(p.stream)["objects"]) for p in paged.payloads]
        assert counts == [5] * 7 + [2]
        assert len(whole.payloads) == 1
        assert paged.cursor == whole.cursor and paged.complete_snapshot is False
    finally:
        paged.close()
        whole.close()

    summary = real_clock.run(taxii_source(url, page_size=5))
    assert (summary.outcome, summary.parsed) == ("ok", records_in(objects))


def test_first_run_looks_back_only_initial_lookback(medallion: str, real_clock: Floor, shared_fixtures: Path) -> None:
    url = collection_url(medallion, "lookback")
    publish(url, indicators_of(shared_fixtures / "stix/oasis-indicators-for-C2-with-COA.json"))
    real_clock.advance(days=2)
    summary = real_clock.run(taxii_source(url, initial_lookback="1d"))
    assert summary.outcome == "unchanged"  # everything was added more than a day before the clock


def test_a_single_object_page_moves_the_cursor(medallion: str, real_clock: Floor, shared_fixtures: Path) -> None:
    url = collection_url(medallion, "single")
    publish(url, indicators_of(shared_fixtures / "stix/oasisdoc-indicator-for-malicious-url.json"))
    source = taxii_source(url)
    assert real_clock.run(source).parsed == 1
    assert real_clock.run(source).outcome == "unchanged"


def test_wrong_credentials_fail_in_plain_words(medallion: str, floor: Floor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_TEST_TAXII_PASSWORD", "wrong-password-123")
    floor.run(taxii_source(collection_url(medallion, "errors")))
    run = floor.last_run("taxii-feed")
    assert run.outcome == "failed" and run.http_status == 401
    assert "HTTP 401 Unauthorized: the feed needs credentials" in run.error
    assert "wrong-password-123" not in run.error


def test_an_unknown_collection(medallion: str, floor: Floor) -> None:
    floor.run(taxii_source(medallion + "00000000-0000-0000-0000-000000000000/"))
    run = floor.last_run("taxii-feed")
    assert run.outcome == "failed" and "no such collection" in run.error


def test_a_server_that_is_down(floor: Floor, closed_port: int, pacing: list[float]) -> None:
    floor.run(taxii_source(f"http://127.0.0.1:{closed_port}/api1/collections/x/"))
    run = floor.last_run("taxii-feed")
    assert run.outcome == "failed" and "connection refused" in run.error and "gave up after 4 tries" in run.error
    assert pacing == [2.0, 4.0, 8.0]


def test_initial_cursor_is_the_lookback(tmp_path: Path) -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert taxii._stix_time(now - timedelta(days=30)) == "2026-01-30T12:00:00.000Z"
    assert taxii._newest("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000001Z") == "2026-01-01T00:00:00.000001Z"
    assert taxii._newest("2026-01-02T00:00:00Z", "garbage") == "2026-01-02T00:00:00Z"
    with pytest.raises(FetchError):
        raise FetchError("contract")
