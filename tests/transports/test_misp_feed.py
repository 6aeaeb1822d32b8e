"""``source.type: misp`` against the real CrowdSec MISP feed fixture, served in place over loopback."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import Floor, make_source

FEED = "misp/crowdsec-feed"
EVENTS = ("6a10e5d8-f1cd-42b0-8240-a4650efd83d6", "8f09de10-6867-45c6-814d-3d91a33d3af7",
          "d177856e-6e46-44ee-8eb5-83ef1c7452c7")


class MispFeedServer:
    """Serves the fixture folder; the manifest can be edited in memory and the ETag toggled."""

    def __init__(self, httpserver: HTTPServer, folder: Path):
        self.httpserver, self.folder = httpserver, folder
        self.manifest = json.loads((folder / "manifest.json").read_text())
        self.etag: str | None = None
        self.broken: dict[str, tuple[int, str]] = {}
        httpserver.expect_request("/feed/manifest.json").respond_with_handler(self.serve_manifest)
        for event in EVENTS:
            httpserver.expect_request(f"/feed/{event}.json").respond_with_handler(self.serve_event)

    @property
    def url(self) -> str:
        return self.httpserver.url_for("/feed/")

    def serve_manifest(self, request: Request) -> Response:
        if self.etag and request.headers.get("If-None-Match") == self.etag:
            return Response(status=304)
        headers = {"ETag": self.etag} if self.etag else {}
        return Response(json.dumps(self.manifest), content_type="application/json", headers=headers)

    def serve_event(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        if name in self.broken:
            status, body = self.broken[name]
            return Response(body, status=status, content_type="text/html")
        return Response((self.folder / name).read_bytes(), content_type="application/json")

    def fetched(self) -> list[str]:
        return [request.path.rsplit("/", 1)[-1] for request, _ in self.httpserver.log]


@pytest.fixture
def feed(httpserver: HTTPServer, shared_fixtures: Path) -> MispFeedServer:
    return MispFeedServer(httpserver, shared_fixtures / FEED)


def misp_source(url: str, **fields: Any) -> Any:
    return make_source(id="crowdsec-misp", format="misp", source={"type": "misp", "url": url}, **fields)


def expected_ips(folder: Path, events: tuple[str, ...] = EVENTS) -> set[tuple[str, str]]:
    ips = set()
    for event in events:
        for attribute in json.loads((folder / f"{event}.json").read_text())["Event"]["Attribute"]:
            ips.add(("ipv4", attribute["value"]))
    return ips


def test_first_run_reads_every_event_then_only_what_changed(floor: Floor, feed: MispFeedServer,
                                                             shared_fixtures: Path) -> None:
    source = misp_source(feed.url)
    first = floor.run(source)
    assert first.outcome == "ok" and first.parsed == 45
    assert floor.active("crowdsec-misp") == expected_ips(shared_fixtures / FEED)
    assert sorted(feed.fetched()) == sorted(["manifest.json", *(f"{e}.json" for e in EVENTS)])

    feed.httpserver.clear_log()
    second = floor.run(source)
    assert second.outcome == "unchanged"
    assert feed.fetched() == ["manifest.json"]  # nothing new: no event file fetched

    feed.httpserver.clear_log()
    bumped = EVENTS[1]
    feed.manifest[bumped]["timestamp"] = str(int(feed.manifest[bumped]["timestamp"]) + 60)
    third = floor.run(source)
    assert (third.outcome, third.parsed) == ("ok", 15)
    assert feed.fetched() == ["manifest.json", f"{bumped}.json"]


def test_an_event_added_with_an_old_timestamp_is_still_read(floor: Floor, feed: MispFeedServer) -> None:
    """A max-timestamp cursor would skip it; the per-event cursor does not."""
    held_back = EVENTS[2]
    entry = feed.manifest.pop(held_back)
    source = misp_source(feed.url)
    assert floor.run(source).parsed == 30
    feed.manifest[held_back] = entry  # its timestamp is older than the newest already read
    feed.httpserver.clear_log()
    later = floor.run(source)
    assert (later.outcome, later.parsed) == ("ok", 15)
    assert feed.fetched() == ["manifest.json", f"{held_back}.json"]


def test_manifest_etag_gives_an_unchanged_run(floor: Floor, feed: MispFeedServer) -> None:
    feed.etag = '"manifest-1"'
    source = misp_source(feed.url)
    assert floor.run(source).outcome == "ok"
    second = floor.run(source)
    assert (second.outcome, second.http_status) == ("unchanged", 304)


def test_a_missing_event_fails_the_run_and_the_cursor_stays(floor: Floor, feed: MispFeedServer) -> None:
    feed.broken[f"{EVENTS[0]}.json"] = (404, "<html><body>Not here</body></html>")
    source = misp_source(feed.url)
    floor.run(source)
    run = floor.last_run("crowdsec-misp")
    assert run.outcome == "failed" and run.http_status == 404
    assert f"event {EVENTS[0]} listed in manifest.json could not be fetched" in run.error
    assert "HTTP 404 Not Found" in run.error
    assert floor.active("crowdsec-misp") == set()

    feed.broken.clear()
    retry = floor.run(source)
    assert (retry.outcome, retry.parsed) == ("ok", 45)  # nothing was marked read by the failed run


def test_an_html_page_instead_of_an_event_fails(floor: Floor, feed: MispFeedServer) -> None:
    feed.broken[f"{EVENTS[1]}.json"] = (200, "<!DOCTYPE html><html><title>Login</title></html>")
    floor.run(misp_source(feed.url))
    run = floor.last_run("crowdsec-misp")
    assert run.outcome == "failed"
    assert "expected MISP JSON, got an HTML page (status 200)" in run.error


def test_a_manifest_that_is_not_json_fails(floor: Floor, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/bad/manifest.json").respond_with_data("[1, 2", content_type="application/json")
    floor.run(misp_source(httpserver.url_for("/bad/")))
    run = floor.last_run("crowdsec-misp")
    assert run.outcome == "failed" and "manifest.json is not a MISP feed manifest" in run.error


def test_a_feed_copied_to_an_air_gapped_site_reads_from_file_urls(floor: Floor, shared_fixtures: Path) -> None:
    source = misp_source((shared_fixtures / FEED).as_uri())
    first = floor.run(source)
    assert (first.outcome, first.parsed) == ("ok", 45)
    assert floor.active("crowdsec-misp") == expected_ips(shared_fixtures / FEED)
    assert floor.run(source).outcome == "unchanged"


def test_the_cursor_forgets_events_the_provider_removed(floor: Floor, feed: MispFeedServer) -> None:
    from collectors.transports import misp_feed
    from store.writes import get_cursor

    source = misp_source(feed.url)
    floor.run(source)
    del feed.manifest[EVENTS[0]]
    feed.manifest[EVENTS[1]]["timestamp"] = str(int(feed.manifest[EVENTS[1]]["timestamp"]) + 1)
    floor.run(source)
    with floor.store.reader.connect() as conn:
        cursor = get_cursor(conn, "crowdsec-misp", "fetch")
    assert set(cursor["events"]) == set(EVENTS[1:])
    assert cursor["max_timestamp"] == max(cursor["events"].values())
    assert misp_feed.TYPE == "misp"
