"""The runner's circuit breaker, proven through real runs against a failing loopback server."""
from __future__ import annotations

from datetime import timedelta

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from collectors.runner import BREAKER_AFTER_FAILURES
from conftest import Floor, make_source
from store.db import to_ms


class Flaky:
    """A feed server that fails until told to recover."""

    def __init__(self, httpserver: HTTPServer, status: int = 500, headers: dict[str, str] | None = None):
        self.failing, self.status, self.headers = True, status, headers or {}
        httpserver.expect_request("/list.txt").respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        if self.failing:
            return Response("down for maintenance", status=self.status, headers=self.headers)
        return Response("8.8.8.8\n9.9.9.9\n", content_type="text/plain")


def source(httpserver: HTTPServer) -> object:
    return make_source(id="flaky", format="lines", schedule={"every": "1h"},
                       source={"type": "http", "url": httpserver.url_for("/list.txt"), "retries": 0})


def test_breaker_opens_after_repeated_failures_and_closes_on_recovery(floor: Floor, httpserver: HTTPServer) -> None:
    server = Flaky(httpserver)
    feed = source(httpserver)
    server.failing = False
    assert floor.run(feed).outcome == "ok"
    before = floor.sightings("flaky")
    server.failing = True

    for attempt in range(1, BREAKER_AFTER_FAILURES + 1):
        assert floor.run(feed).outcome == "failed"
        assert floor.state("flaky").consecutive_failures == attempt
    requests_so_far = len(httpserver.log)

    skipped = floor.run(feed)
    assert skipped.outcome == "skipped"
    assert f"circuit breaker open after {BREAKER_AFTER_FAILURES} failures in a row" in skipped.error
    assert "next try after" in skipped.error
    assert len(httpserver.log) == requests_so_far  # an open breaker sends nothing to the provider
    assert floor.last_run("flaky").outcome == "skipped"
    assert floor.sightings("flaky") == before and len(floor.active("flaky")) == 2

    # Still failing once the breaker lets a try through: it opens again, for twice as long.
    floor.advance(hours=1)
    assert floor.run(feed).outcome == "failed"
    reopened = floor.state("flaky")
    assert reopened.breaker_open_until >= to_ms(floor.now + timedelta(hours=1, minutes=58))
    assert floor.run(feed).outcome == "skipped"

    server.failing = False
    floor.advance(hours=2)
    recovered = floor.run(feed)
    assert recovered.outcome == "unchanged"  # same bytes as the last good run
    state = floor.state("flaky")
    assert (state.consecutive_failures, state.breaker_open_until, state.last_outcome) == (0, None, "unchanged")
    assert floor.run(feed).outcome == "unchanged"  # closed: runs go through again


def test_a_long_retry_after_is_honoured_from_the_first_failure(floor: Floor, httpserver: HTTPServer) -> None:
    Flaky(httpserver, status=429, headers={"Retry-After": str(6 * 3600)})
    feed = source(httpserver)
    assert floor.run(feed).outcome == "failed"
    state = floor.state("flaky")
    assert state.breaker_open_until >= to_ms(floor.now + timedelta(hours=5, minutes=58))
    assert "Retry-After" in state.last_error
    floor.advance(hours=3)
    waiting = floor.run(feed)
    assert waiting.outcome == "skipped" and "asked us to wait" in waiting.error
    floor.advance(hours=3, minutes=1)
    assert floor.run(feed).outcome == "failed", "after the wait the feed is tried again"


def test_other_feeds_run_while_one_breaker_is_open(floor: Floor, httpserver: HTTPServer) -> None:
    Flaky(httpserver)
    httpserver.expect_request("/good.txt").respond_with_data("1.1.1.1\n")
    feed = source(httpserver)
    for _ in range(BREAKER_AFTER_FAILURES):
        floor.run(feed)
    assert floor.run(feed).outcome == "skipped"
    good = make_source(id="good", format="lines", source={"type": "http", "url": httpserver.url_for("/good.txt")})
    assert floor.run(good).outcome == "ok"
