"""``source.type: csaf`` against the real CISA CSAF fixtures, served in place over loopback.

The provider folder is ``/csaf/OT/white/``. Its ``changes.csv`` is either the real CISA listing
(``changes_OT_white.csv``, 40 lines of which one advisory is among the fixtures) or one written
here in CISA's own layout for the six OT advisories in ``shared/fixtures/csaf`` (their change time
is their ``current_release_date``; ICSA-24-284-06's line is the real one). Advisories and the one
real ``.sha512`` are served from the fixture folder, whatever year folder they are asked under.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from collectors.transports import csaf_provider
from conftest import Floor, make_source
from store.schema import advisories
from store.writes import get_cursor

UTC = timezone.utc
FOLDER = "/csaf/OT/white/"
PREFIX = "csaf_files/OT/white/"
SOURCE_ID = "cisa-csaf"

# fixture -> its line's change time, newest first as CISA writes changes.csv
OT_ADVISORIES = {
    "icsa-24-284-06.json": "2024-10-08T00:00:00.000000Z",
    "icsa-24-135-03.json": "2024-05-14T06:00:00.000000Z",
    "icsa-24-067-01.json": "2024-05-02T06:00:00.000000Z",
    "icsa-24-051-02.json": "2024-02-20T07:00:00.000000Z",
    "icsa-23-269-05.json": "2023-09-26T06:00:00.000000Z",
    "icsa-17-180-01a.json": "2017-07-11T00:00:00.000000Z",
}
IN_TIME_ORDER = list(reversed(OT_ADVISORIES))

# Read off the fixtures by hand: one row per (advisory, CVE, vendor, product).
SINEC = ("Siemens", "Siemens SINEC Security Monitor")
ICSNPP = ("CISA", "Industrial Control Systems Network Protocol Parsers (ICSNPP) - Ethercat Zeek Plugin")
BENTLY = ("Baker Hughes - Bently Nevada", "Bently Nevada 3500 Rack (TDI Firmware)")
ROWS = {
    "ICSA-24-284-06": [(cve, *SINEC) for cve in ("CVE-2024-47553", "CVE-2024-47562", "CVE-2024-47563",
                                                  "CVE-2024-47565")],
    "ICSA-24-135-03": [("CVE-2024-0912", "Johnson Controls", "Software House C\u25cfCURE 9000")],
    "ICSA-24-067-01": [("CVE-2024-2197", "Chirp Systems", "Chirp Access app (Android and iOS)")],
    "ICSA-24-051-02": [(cve, *ICSNPP) for cve in ("CVE-2023-7242", "CVE-2023-7243", "CVE-2023-7244")],
    "ICSA-23-269-05": [(cve, *BENTLY) for cve in ("CVE-2023-34437", "CVE-2023-34441", "CVE-2023-36857")],
    "ICSA-17-180-01A": [("CVE-2017-5689", "Siemens", "SINUMERIK Panel Control Unit (PCU)")],
}


def tracking_id(fixture: str) -> str:
    return fixture.removesuffix(".json").upper()


def listed(fixture: str) -> str:
    """The path CISA's listing gives a fixture: from its repository root, under the year."""
    return f"20{fixture.split('-')[1]}/{fixture}"


def listing_line(fixture: str, stamp: str | None = None) -> str:
    return f"{PREFIX}{listed(fixture)},{stamp or OT_ADVISORIES[fixture]}\n"


def expected_rows(*advisory_ids: str) -> Counter[tuple[str, str, str, str]]:
    return Counter((advisory_id, *row) for advisory_id in advisory_ids for row in ROWS[advisory_id])


class CsafFolder:
    """A provider folder over loopback: an editable ``changes.csv``, advisories from the fixtures."""

    def __init__(self, httpserver: HTTPServer, fixtures: Path):
        self.httpserver, self.fixtures = httpserver, fixtures
        self.listing = "".join(listing_line(name) for name in OT_ADVISORIES).encode()
        self.etag: str | None = None
        self.broken: dict[str, tuple[int, str]] = {}        # path under the folder -> (status, body)
        self.sha512: dict[str, bytes] = {}                  # advisory file name -> .sha512 body served instead
        httpserver.expect_request(re.compile(f"^{FOLDER}.*")).respond_with_handler(self.serve)

    @property
    def url(self) -> str:
        return self.httpserver.url_for(FOLDER)

    def serve(self, request: Request) -> Response:
        path = request.path.removeprefix(FOLDER)
        if path in self.broken:
            status, body = self.broken[path]
            return Response(body, status=status, content_type="text/html")
        if path == "changes.csv":
            if self.etag and request.headers.get("If-None-Match") == self.etag:
                return Response(status=304)
            return Response(self.listing, content_type="text/csv", headers={"ETag": self.etag} if self.etag else {})
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".sha512") and name.removesuffix(".sha512") in self.sha512:
            return Response(self.sha512[name.removesuffix(".sha512")], content_type="text/plain")
        file = self.fixtures / name
        if not file.is_file():
            return Response("<html><title>Page not found</title></html>", status=404, content_type="text/html")
        return Response(file.read_bytes(), content_type="application/json")

    def requests(self) -> list[str]:
        return [request.path.removeprefix(FOLDER) for request, _ in self.httpserver.log]

    def advisories_fetched(self) -> list[str]:
        return [path for path in self.requests() if path.endswith(".json")]

    def clear_log(self) -> None:
        self.httpserver.clear_log()


@pytest.fixture
def folder(httpserver: HTTPServer, shared_fixtures: Path) -> CsafFolder:
    return CsafFolder(httpserver, shared_fixtures / "csaf")


@pytest.fixture
def october(floor: Floor) -> Floor:
    """The floor's clock two days after the newest fixture advisory's change."""
    floor.now = datetime(2024, 10, 10, 12, 0, tzinfo=UTC)
    return floor


def csaf_source(url: str, **fields: Any) -> Any:
    source = {"type": "csaf", "url": url, "listing_prefix": PREFIX, **fields}
    return make_source(id=SOURCE_ID, format="csaf", source=source, lifecycle={"ttl": None},
                       schedule={"every": "6h", "min_interval": "1h"})


def stored(floor: Floor) -> Counter[tuple[str, str, str, str]]:
    query = select(advisories.c.advisory_id, advisories.c.cve, advisories.c.vendor, advisories.c.product)
    with floor.store.reader.connect() as conn:
        return Counter(tuple(row) for row in conn.execute(query.where(advisories.c.source_id == SOURCE_ID)))


def cursor(floor: Floor) -> dict[str, Any]:
    with floor.store.reader.connect() as conn:
        return get_cursor(conn, SOURCE_ID, "fetch")


# --- first run, nothing changed, something changed -----------------------------------------------

def test_first_run_stores_every_listed_advisory_then_nothing_changed_is_unchanged(october: Floor,
                                                                                   folder: CsafFolder) -> None:
    folder.etag = '"listing-1"'
    source = csaf_source(folder.url, initial_lookback="3650d")
    first = october.run(source)

    assert (first.outcome, first.parsed, first.new, first.rejected) == ("ok", 13, 13, 0)
    assert stored(october) == expected_rows(*ROWS)
    by_vendor = Counter(vendor for _, _, vendor, _ in stored(october).elements())
    assert by_vendor == {"Siemens": 5, "Baker Hughes - Bently Nevada": 3, "CISA": 3, "Chirp Systems": 1,
                         "Johnson Controls": 1}
    by_cve = Counter(cve for _, cve, _, _ in stored(october).elements())
    assert len(by_cve) == 13 and set(by_cve.values()) == {1}
    # Oldest first, each advisory followed by its checksum (only ICSA-24-051-02 has one, and it matches).
    assert folder.requests() == ["changes.csv"] + [p for name in IN_TIME_ORDER
                                                    for p in (listed(name), f"{listed(name)}.sha512")]
    saved = cursor(october)
    assert (saved["backlog"], saved["problems"], saved["failed"]) == (0, [], {})
    assert saved["since"] == "2024-10-08T00:00:00+00:00" and saved["done"] == {}
    assert first.sha256 == hashlib.sha256(folder.listing).hexdigest()

    folder.clear_log()
    second = october.run(source)
    assert (second.outcome, second.http_status, second.new) == ("unchanged", 304, 0)
    assert folder.requests() == ["changes.csv"]

    # A server that ignores the validators but sends the same listing: unchanged too, by its sha256.
    folder.etag = None
    folder.clear_log()
    third = october.run(source)
    assert (third.outcome, third.http_status) == ("unchanged", 200)
    assert folder.requests() == ["changes.csv"]
    assert stored(october) == expected_rows(*ROWS)


def test_a_new_line_in_changes_csv_fetches_only_that_advisory(october: Floor, folder: CsafFolder) -> None:
    newest = "icsa-24-284-06.json"
    folder.listing = "".join(listing_line(name) for name in OT_ADVISORIES if name != newest).encode()
    source = csaf_source(folder.url, initial_lookback="3650d")
    assert october.run(source).parsed == 9

    folder.listing = listing_line(newest).encode() + folder.listing
    folder.clear_log()
    added = october.run(source)
    assert (added.outcome, added.parsed, added.new, added.updated) == ("ok", 4, 4, 0)
    assert folder.requests() == ["changes.csv", listed(newest), f"{listed(newest)}.sha512"]
    assert stored(october) == expected_rows(*ROWS)

    # CISA updates an advisory: a newer line for the same file brings that version in, and only it.
    updated = "icsa-24-067-01.json"
    folder.listing = listing_line(updated, "2024-10-09T18:00:00.000000Z").encode() + folder.listing
    folder.clear_log()
    again = october.run(source)
    assert (again.outcome, again.parsed, again.new, again.updated) == ("ok", 1, 0, 1)
    assert folder.advisories_fetched() == [listed(updated)]


def test_the_first_run_looks_back_initial_lookback_only(october: Floor, folder: CsafFolder) -> None:
    source = csaf_source(folder.url)             # initial_lookback defaults to 365d: since 2023-10-11 12:00
    first = october.run(source)
    assert (first.outcome, first.parsed) == ("ok", 9)
    assert folder.advisories_fetched() == [listed(name) for name in IN_TIME_ORDER[2:]]
    assert stored(october) == expected_rows("ICSA-24-284-06", "ICSA-24-135-03", "ICSA-24-067-01", "ICSA-24-051-02")

    # The advisories before the lookback are out of scope for good, not a backlog.
    folder.clear_log()
    assert october.run(source).outcome == "unchanged"
    assert folder.requests() == ["changes.csv"]


# --- the cap -------------------------------------------------------------------------------------

def test_a_capped_first_run_takes_the_newest_and_the_rest_come_next_runs(october: Floor,
                                                                        folder: CsafFolder) -> None:
    folder.etag = '"listing-1"'
    source = csaf_source(folder.url, initial_lookback="3650d", max_advisories_per_run=2)

    first = october.run(source)
    assert (first.outcome, first.parsed) == ("ok", 5)
    # The two newest, stored in time order.
    assert folder.advisories_fetched() == [listed("icsa-24-135-03.json"), listed("icsa-24-284-06.json")]
    assert cursor(october)["backlog"] == 4

    waves = [IN_TIME_ORDER[2:4], IN_TIME_ORDER[0:2]]
    for wave in waves:
        folder.clear_log()
        run = october.run(source)
        assert run.outcome == "ok"
        assert folder.advisories_fetched() == [listed(name) for name in wave]
        # Work is left over: the listing is fetched whole, a 304 would hide it.
        listing_request = folder.httpserver.log[0][0]
        assert "If-None-Match" not in listing_request.headers
    assert cursor(october)["backlog"] == 0
    assert stored(october) == expected_rows(*ROWS)

    folder.clear_log()
    last = october.run(source)
    assert (last.outcome, last.http_status) == ("unchanged", 304)
    assert folder.requests() == ["changes.csv"]


# --- checksums -----------------------------------------------------------------------------------

def test_a_checksum_mismatch_rejects_that_advisory_and_it_is_tried_again(october: Floor, folder: CsafFolder,
                                                                        shared_fixtures: Path) -> None:
    target = "icsa-24-051-02.json"
    real = (shared_fixtures / "csaf" / f"{target}.sha512").read_bytes()
    other = hashlib.sha512((shared_fixtures / "csaf" / "icsa-24-067-01.json").read_bytes()).hexdigest()
    folder.sha512[target] = f"{other}  {target}\n".encode()
    source = csaf_source(folder.url, initial_lookback="3650d")

    first = october.run(source)
    assert (first.outcome, first.parsed) == ("flagged", 10)
    assert stored(october) == expected_rows(*(a for a in ROWS if a != "ICSA-24-051-02"))
    saved = cursor(october)
    assert saved["problems"] == [
        f"{listed(target)}: SHA-512 mismatch: the advisory hashes to {real[:16].decode()}…, its .sha512 says "
        f"{other[:16]}… (changed in transit, or published inconsistently); not stored, tried again next run "
        f"(attempt 1 of {csaf_provider.GIVE_UP_AFTER})"]
    assert list(saved["failed"]) == [PREFIX + listed(target)] and saved["backlog"] == 1
    # The watermark stays below the rejected advisory, so nothing after it is lost either.
    assert saved["since"] == "2023-09-26T06:00:00+00:00"

    folder.clear_log()
    second = october.run(source)
    assert (second.outcome, second.parsed) == ("flagged", 0)
    assert folder.requests() == ["changes.csv", listed(target), f"{listed(target)}.sha512"]
    assert "attempt 2 of" in cursor(october)["problems"][0]

    folder.sha512.clear()                     # the provider fixes it: the real checksum matches
    folder.clear_log()
    fixed = october.run(source)
    assert (fixed.outcome, fixed.parsed, fixed.new) == ("ok", 3, 3)
    assert folder.advisories_fetched() == [listed(target)]
    assert stored(october) == expected_rows(*ROWS)
    saved = cursor(october)
    assert (saved["problems"], saved["failed"], saved["backlog"]) == ([], {}, 0)
    assert october.run(source).outcome == "unchanged"


def test_without_verify_checksums_no_sha512_is_asked_for(october: Floor, folder: CsafFolder) -> None:
    folder.sha512["icsa-24-051-02.json"] = b"0" * 128 + b"  icsa-24-051-02.json\n"
    run = october.run(csaf_source(folder.url, initial_lookback="3650d", verify_checksums=False))
    assert (run.outcome, run.parsed) == ("ok", 13)
    assert not [path for path in folder.requests() if path.endswith(".sha512")]


def test_a_checksum_file_for_another_file_or_without_a_hash_rejects(october: Floor, folder: CsafFolder,
                                                                   shared_fixtures: Path) -> None:
    real = (shared_fixtures / "csaf" / "icsa-24-051-02.json.sha512").read_bytes()
    folder.sha512["icsa-24-051-02.json"] = real.replace(b"icsa-24-051-02.json", b"icsa-24-051-03.json")
    folder.sha512["icsa-24-067-01.json"] = b"sha512 not published yet\n"
    october.run(csaf_source(folder.url, initial_lookback="3650d"))
    problems = cursor(october)["problems"]
    assert problems[0].startswith(f"{listed('icsa-24-051-02.json')}: its .sha512 is for another file "
                                  "('icsa-24-051-03.json')")
    assert problems[1].startswith(f"{listed('icsa-24-067-01.json')}: its .sha512 does not hold a SHA-512 hash")
    assert stored(october) == expected_rows("ICSA-24-284-06", "ICSA-24-135-03", "ICSA-23-269-05",
                                            "ICSA-17-180-01A")


# --- missing advisories, provider trouble --------------------------------------------------------

def test_the_real_listing_names_each_missing_advisory_and_stores_the_one_served(
        floor: Floor, folder: CsafFolder, shared_fixtures: Path) -> None:
    """CISA's real changes.csv: 40 lines, of which only ICSA-24-284-06 is among the fixtures."""
    folder.listing = (shared_fixtures / "csaf" / "changes_OT_white.csv").read_bytes()
    floor.now = datetime(2024, 10, 25, 12, 0, tzinfo=UTC)
    source = csaf_source(folder.url)

    first = floor.run(source)
    assert (first.outcome, first.parsed, first.new) == ("flagged", 4, 4)
    assert stored(floor) == expected_rows("ICSA-24-284-06")
    lines = folder.listing.decode().splitlines()
    missing = {line.split(",")[0].removeprefix(PREFIX) for line in lines} - {listed("icsa-24-284-06.json")}
    assert len(missing) == 39
    problems = cursor(floor)["problems"]
    assert {p.split(": ", 1)[0] for p in problems} == missing
    assert all(p.split(": ", 1)[1] == "listed in changes.csv but the server has no such file (HTTP 404); "
               f"not stored, tried again next run (attempt 1 of {csaf_provider.GIVE_UP_AFTER})" for p in problems)

    # Retried on each run, then given up until the listing names them anew.
    for attempt in range(2, csaf_provider.GIVE_UP_AFTER + 1):
        folder.clear_log()
        run = floor.run(source)
        assert (run.outcome, run.parsed) == ("flagged", 0)
        assert sorted(folder.advisories_fetched()) == sorted(missing)
    assert all("tried 5 times, given up until changes.csv lists it anew" in p for p in cursor(floor)["problems"])
    assert (cursor(floor)["backlog"], cursor(floor)["failed"]) == (0, {})

    folder.clear_log()
    assert floor.run(source).outcome == "unchanged"
    assert folder.requests() == ["changes.csv"]


def test_an_advisory_published_after_its_listing_line_comes_in_next_run(october: Floor, folder: CsafFolder) -> None:
    late = listed("icsa-24-067-01.json")
    folder.broken[late] = (404, "<html><title>Page not found</title></html>")
    source = csaf_source(folder.url, initial_lookback="3650d")
    assert october.run(source).parsed == 12
    assert cursor(october)["problems"][0].startswith(f"{late}: listed in changes.csv but the server has no such file")

    folder.broken.clear()
    folder.clear_log()
    run = october.run(source)
    assert (run.outcome, run.parsed, run.new) == ("ok", 1, 1)
    assert folder.advisories_fetched() == [late]
    assert stored(october) == expected_rows(*ROWS)


def test_an_advisory_over_max_bytes_is_rejected_by_name(october: Floor, folder: CsafFolder) -> None:
    run = october.run(csaf_source(folder.url, initial_lookback="3650d", max_bytes="12KiB"))
    assert (run.outcome, run.parsed) == ("flagged", 3)        # 17-180-01a, 24-067-01, 24-135-03 are under 12 KiB
    problems = cursor(october)["problems"]
    assert [p.split(": ", 1)[0] for p in problems] == [listed(n) for n in
                                                       ("icsa-23-269-05.json", "icsa-24-051-02.json",
                                                        "icsa-24-284-06.json")]
    assert "response exceeded max_bytes 12288 (Content-Length 14439); not downloaded" in problems[0]


@pytest.mark.parametrize(("body", "reason"), [
    ('{"document": {"tracking": {"id": "ICSA-24-067-01"', "not valid JSON"),
    ('{"document": {"title": "no tracking"}, "vulnerabilities": []}', "not a CSAF document (no document.tracking.id)"),
])
def test_a_file_that_is_not_a_csaf_document_is_rejected_alone(october: Floor, folder: CsafFolder, body: str,
                                                              reason: str) -> None:
    """``format: csaf`` fails a whole run on such a file: caught here, it costs one advisory, not the feed."""
    broken = listed("icsa-24-067-01.json")
    folder.broken[broken] = (200, body)
    run = october.run(csaf_source(folder.url, initial_lookback="3650d", verify_checksums=False))
    assert (run.outcome, run.parsed) == ("flagged", 12)
    problem, = cursor(october)["problems"]
    assert problem.startswith(f"{broken}: {reason}")


def test_a_provider_failure_stops_the_run_and_the_next_run_continues(october: Floor, folder: CsafFolder,
                                                                    pacing: list[float]) -> None:
    stuck = listed("icsa-24-067-01.json")
    folder.broken[stuck] = (503, "<html><title>Service Unavailable</title></html>")
    source = csaf_source(folder.url, initial_lookback="3650d")

    first = october.run(source)
    assert (first.outcome, first.parsed) == ("flagged", 7)
    assert stored(october) == expected_rows("ICSA-17-180-01A", "ICSA-23-269-05", "ICSA-24-051-02")
    assert len(pacing) == 3                              # retried with backoff, never slept for real
    problem, = cursor(october)["problems"]
    assert problem.startswith(f"stopped at {stuck}: HTTP 503 Service Unavailable")
    assert problem.endswith("it and the advisories after it are fetched next run")
    assert cursor(october)["backlog"] == 3

    folder.broken.clear()
    folder.clear_log()
    second = october.run(source)
    assert (second.outcome, second.parsed) == ("ok", 6)
    assert folder.advisories_fetched() == [listed(name) for name in IN_TIME_ORDER[3:]]
    assert stored(october) == expected_rows(*ROWS)


def test_a_provider_failure_before_any_advisory_fails_the_run(october: Floor, folder: CsafFolder) -> None:
    oldest = listed("icsa-17-180-01a.json")
    folder.broken[oldest] = (500, "<html><title>Internal error</title></html>")
    source = csaf_source(folder.url, initial_lookback="3650d")
    october.run(source)
    run = october.last_run(SOURCE_ID)
    assert (run.outcome, run.http_status) == ("failed", 500)
    assert run.error.startswith(f"{oldest} listed in changes.csv could not be fetched: HTTP 500 Internal Server Error")
    assert stored(october) == Counter()

    folder.broken.clear()
    assert october.run(source).parsed == 13              # the failed run moved no cursor


@pytest.mark.parametrize(("status", "body", "message"), [
    (404, "<html><title>Not found</title></html>", "changes.csv: HTTP 404 Not Found"),
    (200, "<!DOCTYPE html><html><title>Maintenance</title></html>",
     "changes.csv: expected a CSAF changes.csv listing, got an HTML page (status 200)"),
])
def test_a_listing_that_cannot_be_read_fails_the_run(october: Floor, folder: CsafFolder, status: int, body: str,
                                                     message: str) -> None:
    folder.broken["changes.csv"] = (status, body)
    october.run(csaf_source(folder.url))
    run = october.last_run(SOURCE_ID)
    assert run.outcome == "failed" and run.error.startswith(message)


def test_unsafe_or_malformed_listing_lines_are_left_out_and_noted(october: Floor, folder: CsafFolder) -> None:
    folder.listing = (b"csaf_files/OT/white/../../../etc/passwd.json,2024-10-09T00:00:00.000000Z\n"
                      b"csaf_files/OT/white/2024/icsa-24-999-01.json,yesterday\n") + folder.listing
    run = october.run(csaf_source(folder.url, initial_lookback="3650d"))
    assert (run.outcome, run.parsed) == ("flagged", 13)
    assert all(".." not in path for path in folder.requests())
    problems = cursor(october)["problems"]
    assert [p.split(":")[0] for p in problems] == ["changes.csv line 1", "changes.csv line 2"]
    assert "unsafe path" in problems[0] and problems[0].endswith("; left out")


def test_a_changed_folder_url_starts_over(october: Floor, folder: CsafFolder) -> None:
    october.run(csaf_source(folder.url, initial_lookback="3650d"))
    # The same server under its other loopback name: a different URL to the transport.
    other = folder.url.replace("127.0.0.1", "localhost") if "127.0.0.1" in folder.url \
        else folder.url.replace("localhost", "127.0.0.1")
    assert other != folder.url
    moved = csaf_source(other, initial_lookback="3650d")
    folder.clear_log()
    run = october.run(moved)
    assert (run.outcome, run.parsed, run.new, run.updated) == ("ok", 13, 0, 13)


# --- the same first-run bound for MISP feeds (MispSource.initial_lookback, max_events) -------------

MISP_FEED = "misp/crowdsec-feed"
MISP_EVENTS = {"8f09de10-6867-45c6-814d-3d91a33d3af7": 1779109245, "d177856e-6e46-44ee-8eb5-83ef1c7452c7": 1779411630,
               "6a10e5d8-f1cd-42b0-8240-a4650efd83d6": 1779411638}


@pytest.fixture
def misp_folder(httpserver: HTTPServer, shared_fixtures: Path) -> Path:
    folder = shared_fixtures / MISP_FEED
    httpserver.expect_request(re.compile("^/misp/.*")).respond_with_handler(
        lambda request: Response((folder / request.path.removeprefix("/misp/")).read_bytes(),
                                 content_type="application/json"))
    return folder


def misp_fetched(httpserver: HTTPServer) -> list[str]:
    names = [request.path.removeprefix("/misp/").removesuffix(".json") for request, _ in httpserver.log]
    httpserver.clear_log()
    return [name for name in names if name != "manifest"]


def test_misp_first_run_skips_events_older_than_initial_lookback(floor: Floor, httpserver: HTTPServer,
                                                                misp_folder: Path) -> None:
    floor.now = datetime.fromtimestamp(1779411640, UTC)           # 10 s after the newest event
    source = make_source(id="misp-bounded", format="misp",
                         source={"type": "misp", "url": httpserver.url_for("/misp/"), "initial_lookback": "2d"})
    first = floor.run(source)
    assert (first.outcome, first.parsed) == ("ok", 30)
    oldest = "8f09de10-6867-45c6-814d-3d91a33d3af7"               # 3.5 days old: out of the first run's scope
    assert misp_fetched(httpserver) == [e for e in MISP_EVENTS if e != oldest]
    assert floor.run(source).outcome == "unchanged"                # marked read, not left as a backlog
    assert misp_fetched(httpserver) == []


def test_misp_max_events_takes_the_newest_then_the_rest_next_runs(floor: Floor, httpserver: HTTPServer,
                                                                  misp_folder: Path) -> None:
    source = make_source(id="misp-capped", format="misp",
                         source={"type": "misp", "url": httpserver.url_for("/misp/"), "max_events": 2})
    assert floor.run(source).parsed == 30
    assert misp_fetched(httpserver) == list(MISP_EVENTS)[1:]
    assert floor.run(source).parsed == 15
    assert misp_fetched(httpserver) == list(MISP_EVENTS)[:1]
    assert floor.run(source).outcome == "unchanged"


def test_problems_with_single_advisories_show_as_flags_on_the_run(shared_fixtures, folder, october) -> None:
    """A withdrawn advisory does not fail the run, but the run says so where the admin looks."""
    folder.sha512["icsa-24-051-02.json"] = b"0" * 128 + b"  icsa-24-051-02.json\n"
    run = october.run(csaf_source(folder.url, initial_lookback="3650d"))
    assert run.outcome == "flagged"
    assert any("icsa-24-051-02" in flag.lower() for flag in run.flags)
