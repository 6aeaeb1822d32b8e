"""The fault matrix: every way a feed fetch goes wrong, through the real runner and a real store.

Each case: a good run of the Feodo Tracker CSV (the real fixture, served over loopback HTTP),
then the faulty run. The fault must end as a recorded ``feed_runs`` row with a plain-words error
(or ``ok`` with rejected rows for malformed input), the indicators and sightings of the good run
must be exactly as they were and still active, and a second feed on the same floor must run fine.
"""
from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from conftest import Floor, RawServer, make_source

FEODO = "feeds/abusech_feodotracker_ipblocklist.csv"
ET = "feeds/emergingthreats_compromised-ips.txt"
FEODO_ROWS = 28
ET_ROWS = 100

FEODO_MAPPING = {
    "value": "dst_ip", "type": "ipv4", "port": "dst_port", "malware": "malware",
    "first_seen": {"field": "first_seen_utc", "format": "%Y-%m-%d %H:%M:%S"}, "last_seen": {"field": "last_online"},
}


def feodo_source(url: str, **http: Any) -> Any:
    return make_source(id="abusech-feodo", format="csv", mapping=FEODO_MAPPING,
                       source={"type": "http", "url": url, **http})


def et_source(url: str) -> Any:
    return make_source(id="et-compromised", format="lines", source={"type": "http", "url": url})


def serve_fixture(httpserver: HTTPServer, path: str, fixture: Path, content_type: str = "text/plain") -> str:
    httpserver.expect_request(path).respond_with_data(fixture.read_bytes(), content_type=content_type)
    return httpserver.url_for(path)


# --- the faults ----------------------------------------------------------------------------------
# Each builds the faulty URL and returns (url, http overrides, expected outcome, expected error words).

def stall(conn: socket.socket, _request: bytes) -> None:
    time.sleep(1.0)  # longer than the 0.3 s read timeout, short enough to keep the suite quick


def cut_short(conn: socket.socket, _request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n"
                 + b'"first_seen_utc","dst_ip"\n' * 4)


def chunked_flood(conn: socket.socket, _request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"1.2.3.4\n" * 512
    try:
        for _ in range(64):
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the client hung up once over max_bytes, as it should


def case_timeout(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    return raw(stall).url("/feodo.csv"), {"timeout": "0.3s", "retries": 0}, "failed", "read timeout"


def case_refused(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    return f"http://127.0.0.1:{port}/feodo.csv", {}, "failed", "connection refused"


def case_404(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    httpserver.expect_request("/moved.csv").respond_with_data("no such file", status=404)
    return (httpserver.url_for("/moved.csv"), {}, "failed",
            "HTTP 404 Not Found: the feed URL is wrong or the feed moved")


def case_429(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    httpserver.expect_request("/limited.csv").respond_with_data("slow down", status=429, headers={"Retry-After": "3600"})
    return (httpserver.url_for("/limited.csv"), {}, "failed",
            "HTTP 429 Too Many Requests: the provider is rate-limiting us")


def case_500(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    httpserver.expect_request("/broken.csv").respond_with_data("upstream database unavailable", status=500)
    return (httpserver.url_for("/broken.csv"), {}, "failed",
            "HTTP 500 Internal Server Error: the provider's server failed")


def case_truncated(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    return raw(cut_short).url("/feodo.csv"), {"retries": 1}, "failed", "truncated response"


def case_html(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    page = "<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body></html>"
    httpserver.expect_request("/html.csv").respond_with_data(page, content_type="text/html")
    return (httpserver.url_for("/html.csv"), {}, "failed",
            "expected csv data, got an HTML page (status 200)")


def case_oversized(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    httpserver.expect_request("/big.csv").respond_with_data((fixtures / FEODO).read_bytes() * 4)
    return httpserver.url_for("/big.csv"), {"max_bytes": 4000}, "failed", "response exceeded max_bytes 4000"


def case_oversized_chunked(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    return raw(chunked_flood).url("/big.csv"), {"max_bytes": 20000}, "failed", "response exceeded max_bytes 20000"


def case_gzip_bomb(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    bomb = gzip.compress(b"\0" * (32 * 1024**2), compresslevel=9)  # ~32 KB on the wire, 32 MiB inside
    assert len(bomb) < 50_000
    httpserver.expect_request("/bomb.csv.gz").respond_with_data(bomb, content_type="application/gzip")
    return (httpserver.url_for("/bomb.csv.gz"), {"max_decompressed_bytes": "1MiB"}, "failed",
            "decompressed data exceeded max_decompressed_bytes 1048576")


def case_changed_header(httpserver: HTTPServer, raw: Callable[..., RawServer], fixtures: Path, port: int) -> tuple:
    body = (fixtures / FEODO).read_bytes().replace(b'"dst_ip"', b'"ip_address"')
    httpserver.expect_request("/renamed.csv").respond_with_data(body, content_type="text/csv")
    return (httpserver.url_for("/renamed.csv"), {}, "failed",
            "payload rejected: the CSV header lacks mapped column(s) dst_ip")


FAULTS = {
    "timeout": case_timeout, "connection-refused": case_refused, "http-404": case_404, "http-429": case_429,
    "http-500": case_500, "truncated-body": case_truncated, "html-instead-of-csv": case_html,
    "oversized-body": case_oversized, "oversized-chunked-body": case_oversized_chunked,
    "gzip-bomb": case_gzip_bomb, "changed-csv-header": case_changed_header,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_keeps_last_good_data_and_spares_other_feeds(fault: str, floor: Floor, httpserver: HTTPServer,
                                                           raw_server: Callable[..., RawServer], closed_port: int,
                                                           shared_fixtures: Path) -> None:
    good_url = serve_fixture(httpserver, "/feodo.csv", shared_fixtures / FEODO, "text/csv")
    first = floor.run(feodo_source(good_url))
    assert (first.outcome, first.new, first.rejected) == ("ok", FEODO_ROWS, 0)
    before = floor.sightings("abusech-feodo")
    assert len(before) == FEODO_ROWS

    url, overrides, outcome, words = FAULTS[fault](httpserver, raw_server, shared_fixtures, closed_port)
    summary = floor.run(feodo_source(url, **overrides))

    run = floor.last_run("abusech-feodo")
    assert run.outcome == summary.outcome == outcome
    assert words in run.error, run.error
    assert "Traceback" not in run.error and "internal error" not in run.error
    # The last good data is exactly as it was, and still active.
    assert floor.sightings("abusech-feodo") == before
    assert len(floor.active("abusech-feodo")) == FEODO_ROWS
    state = floor.state("abusech-feodo")
    assert (state.last_outcome, state.consecutive_failures, state.last_record_count) == ("failed", 1, FEODO_ROWS)

    # Another feed on the same floor is not affected.
    other = floor.run(et_source(serve_fixture(httpserver, "/et.txt", shared_fixtures / ET)))
    assert (other.outcome, other.new, other.error) == ("ok", ET_ROWS, None)
    assert len(floor.active("et-compromised")) == ET_ROWS


def test_status_and_bytes_are_recorded_for_http_failures(floor: Floor, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone.csv").respond_with_data("retired", status=410)
    floor.run(feodo_source(httpserver.url_for("/gone.csv")))
    run = floor.last_run("abusech-feodo")
    assert run.http_status == 410
    assert "HTTP 410 Gone: the provider has retired this feed" in run.error
    assert "server said: retired" in run.error


def test_malformed_rows_are_counted_and_the_rest_stored(floor: Floor, httpserver: HTTPServer,
                                                        shared_fixtures: Path) -> None:
    good_url = serve_fixture(httpserver, "/feodo.csv", shared_fixtures / FEODO, "text/csv")
    assert floor.run(feodo_source(good_url)).new == FEODO_ROWS
    lines = (shared_fixtures / FEODO).read_bytes().split(b"\n")
    header_at = next(i for i, line in enumerate(lines) if line.startswith(b'"first_seen_utc"'))
    broken = list(lines)
    broken[header_at + 1] = b'"2023-05-23 17:51:44","999.9.135.73","1194","online","2024-04-01","Pikabot"'  # bad IP
    broken[header_at + 2] = b'"2024-02-08 19:20:49","85.239.243.155"'                                       # cut row
    broken[header_at + 3] = b'"not a date","5.6.7.8","1","online","2024-04-01","X"'                          # bad time
    httpserver.clear()
    httpserver.expect_request("/feodo.csv").respond_with_data(b"\n".join(broken), content_type="text/csv")

    summary = floor.run(feodo_source(good_url))

    run = floor.last_run("abusech-feodo")
    assert (run.outcome, run.rejected, run.parsed, run.error) == ("ok", 3, FEODO_ROWS - 3, None)
    assert "999.9.135.73" in run.rejected_samples and "row has 2 fields" in run.rejected_samples
    assert summary.updated == FEODO_ROWS - 3
    # Lifecycle default is on_absent: keep, so the three rows the broken file lost stay active.
    assert len(floor.active("abusech-feodo")) == FEODO_ROWS


def test_retry_after_is_honoured_then_the_fetch_succeeds(floor: Floor, httpserver: HTTPServer, pacing: list[float],
                                                          shared_fixtures: Path) -> None:
    httpserver.expect_ordered_request("/feodo.csv").respond_with_data("busy", status=503, headers={"Retry-After": "7"})
    httpserver.expect_ordered_request("/feodo.csv").respond_with_data("busy", status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request("/feodo.csv").respond_with_data((shared_fixtures / FEODO).read_bytes())

    summary = floor.run(feodo_source(httpserver.url_for("/feodo.csv")))

    assert (summary.outcome, summary.new) == ("ok", FEODO_ROWS)
    # First wait: the server's 7 s (longer than our 2 s step); second: our 4 s step (longer than its 1 s).
    assert pacing == [7.0, 4.0]


def test_a_flaky_connection_is_retried_with_exponential_backoff(floor: Floor, closed_port: int,
                                                                pacing: list[float]) -> None:
    floor.run(feodo_source(f"http://127.0.0.1:{closed_port}/x.csv", retries=3))
    run = floor.last_run("abusech-feodo")
    assert pacing == [2.0, 4.0, 8.0]
    assert "gave up after 4 tries" in run.error


def test_unchanged_feed_is_an_unchanged_run_with_an_etag_round_trip(floor: Floor, httpserver: HTTPServer,
                                                                     shared_fixtures: Path) -> None:
    body = (shared_fixtures / FEODO).read_bytes()
    etag = '"feodo-v1"'
    modified = "Thu, 04 Apr 2024 07:03:03 GMT"
    httpserver.expect_ordered_request("/feodo.csv").respond_with_data(
        body, headers={"ETag": etag, "Last-Modified": modified}, content_type="text/csv")
    httpserver.expect_ordered_request(
        "/feodo.csv", headers={"If-None-Match": etag, "If-Modified-Since": modified}).respond_with_data("", status=304)
    source = feodo_source(httpserver.url_for("/feodo.csv"))

    first = floor.run(source)
    second = floor.run(source)

    assert (first.outcome, first.new) == ("ok", FEODO_ROWS)
    assert (second.outcome, second.http_status, second.new, second.error) == ("unchanged", 304, 0, None)
    httpserver.check_assertions()
    user_agent = httpserver.log[0][0].headers["User-Agent"]
    assert user_agent.startswith("watchfloor/")
    assert floor.state("abusech-feodo").last_record_count == FEODO_ROWS
    assert len(floor.active("abusech-feodo")) == FEODO_ROWS


def test_same_bytes_without_validators_is_unchanged_too(floor: Floor, httpserver: HTTPServer,
                                                        shared_fixtures: Path) -> None:
    serve_fixture(httpserver, "/feodo.csv", shared_fixtures / FEODO, "text/csv")
    source = feodo_source(httpserver.url_for("/feodo.csv"))
    first, second = floor.run(source), floor.run(source)
    assert first.outcome == "ok" and second.outcome == "unchanged"
    assert first.sha256 == second.sha256 and len(first.sha256) == 64


def lines_source(url: str, **fields: Any) -> Any:
    return make_source(id="blocklist", format="lines", source={"type": "http", "url": url}, **fields)


def test_min_records_flags_the_run_and_expires_nothing(floor: Floor, httpserver: HTTPServer) -> None:
    ips = [f"8.8.{i}.{i}" for i in range(1, 11)]
    httpserver.expect_ordered_request("/list.txt").respond_with_data("\n".join(ips))
    httpserver.expect_ordered_request("/list.txt").respond_with_data("# the provider lost its data\n")
    source = lines_source(httpserver.url_for("/list.txt"), lifecycle={"on_absent": "expire"},
                          health={"min_records": 5})

    assert floor.run(source).outcome == "ok"
    flagged = floor.run(source)

    assert flagged.outcome == "flagged"
    assert "only 0 records, fewer than min_records 5" in flagged.flags[0]
    assert len(floor.active("blocklist")) == 10


def test_max_drop_pct_flags_the_run_and_expires_nothing(floor: Floor, httpserver: HTTPServer) -> None:
    ips = [f"9.9.{i}.{i}" for i in range(1, 21)]
    httpserver.expect_ordered_request("/list.txt").respond_with_data("\n".join(ips))
    httpserver.expect_ordered_request("/list.txt").respond_with_data("\n".join(ips[:4]))
    source = lines_source(httpserver.url_for("/list.txt"), lifecycle={"on_absent": "expire"},
                          health={"max_drop_pct": 50})

    floor.run(source)
    flagged = floor.run(source)

    assert flagged.outcome == "flagged" and flagged.expired == 0
    assert "80% fewer than the last run's 20" in flagged.flags[0]
    assert len(floor.active("blocklist")) == 20


def test_on_absent_expire_expires_what_the_next_good_run_lacks(floor: Floor, httpserver: HTTPServer) -> None:
    ips = [f"7.7.{i}.{i}" for i in range(1, 11)]
    httpserver.expect_ordered_request("/list.txt").respond_with_data("\n".join(ips))
    httpserver.expect_ordered_request("/list.txt").respond_with_data("\n".join(ips[:8]))
    source = lines_source(httpserver.url_for("/list.txt"), lifecycle={"on_absent": "expire"})

    floor.run(source)
    second = floor.run(source)

    assert (second.outcome, second.expired, second.updated) == ("ok", 2, 8)
    rows = floor.sightings("blocklist")
    gone = {key for key, row in rows.items() if row["expired_at"] is not None}
    assert gone == {("ipv4", "7.7.9.9"), ("ipv4", "7.7.10.10")}
    assert {rows[key]["expired_reason"] for key in gone} == {"absent"}


def test_a_secret_echoed_by_the_server_never_reaches_feed_runs(floor: Floor, httpserver: HTTPServer,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_TEST_FEED_PASSWORD", "s3cr3t-Pa55word")
    monkeypatch.setenv("WF_TEST_FEED_TOKEN", "tok-0123456789abcdef")

    def echo(request: Any) -> Response:
        # A careless server: its error page repeats the auth header and the query string.
        return Response(f"<html><body>denied for {request.headers.get('Authorization')} "
                        f"at {request.full_path}</body></html>", status=403, content_type="text/html")

    httpserver.expect_request("/private.csv").respond_with_handler(echo)
    source = make_source(id="private-feed", format="csv", mapping=FEODO_MAPPING, source={
        "type": "http", "url": httpserver.url_for("/private.csv") + "?key=${ENV:WF_TEST_FEED_TOKEN}",
        "auth": {"type": "basic", "username": "cert", "password": "${ENV:WF_TEST_FEED_PASSWORD}"}})

    floor.run(source)

    run = floor.last_run("private-feed")
    assert run.outcome == "failed" and run.http_status == 403
    assert "denied for Basic *** at /private.csv?key=***)" in run.error
    for secret in ("s3cr3t-Pa55word", "tok-0123456789abcdef", "Y2VydDpzM2NyM3QtUGE1NXdvcmQ="):
        assert secret not in run.error
    assert "s3cr3t" not in (floor.state("private-feed").last_error or "")


def test_a_missing_secret_names_the_variable(floor: Floor, httpserver: HTTPServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WF_TEST_UNSET_TOKEN", raising=False)
    source = make_source(id="keyed-feed", format="lines", source={
        "type": "http", "url": httpserver.url_for("/x.txt"),
        "auth": {"type": "header", "header": "Auth-Key", "value": "${ENV:WF_TEST_UNSET_TOKEN}"}})
    floor.run(source)
    run = floor.last_run("keyed-feed")
    assert run.outcome == "failed"
    assert "environment variable WF_TEST_UNSET_TOKEN is not set" in run.error
    assert len(httpserver.log) == 0  # nothing was sent without the credential
