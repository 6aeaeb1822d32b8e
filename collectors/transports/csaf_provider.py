"""``source.type: csaf``: a CSAF 2.0 provider's distribution folder, read advisory by advisory.

The folder (CSAF 2.0 section 7.1, directory-based distribution) holds ``changes.csv``
(``path,changed-at`` a line, newest first), the advisories, and beside each advisory, when the
provider publishes one, a ``<file>.sha512``. Listed paths are relative to the folder, less
``listing_prefix`` (CISA writes them from its repository root: ``csaf_files/OT/white/2024/…``);
``csaf_index`` has already refused unsafe ones (``..``, absolute, a URL). A run:

1. fetches ``changes.csv`` with the saved ETag / Last-Modified: a 304, or the same sha256 as last
   time, while nothing is left over from earlier runs, is an ``unchanged`` run;
2. picks the changes still due: newer than the cursor's watermark ``since`` (first run: newer than
   now - ``initial_lookback``) and not yet fetched in that version;
3. takes the newest ``max_advisories_per_run`` of them, so a first run shows this month's
   advisories at once, and fetches them oldest first, each capped at ``max_bytes``;
4. with ``verify_checksums``, checks each against its ``.sha512``: none published (404, or an HTML
   "not found" page in its place) is fine, a hash that differs rejects the advisory;
5. hands each advisory to ``format: csaf`` as one payload. The fetch is incremental
   (``complete_snapshot=False``): an advisory no longer listed is not expired.

The cursor (saved by the runner in the transaction that stores the advisories it covers)::

    {"url": ..., "etag": ..., "last_modified": ..., "sha256": <of changes.csv>,
     "since": "2025-03-01T12:00:00+00:00",      # every change up to here is handled
     "done": {path: changed-at},                  # changes after ``since`` already fetched
     "failed": {path: {"changed": ..., "reason": ..., "attempts": n}},
     "backlog": 3,                                # changes still due after this run
     "problems": ["2024/icsa-24-051-02.json: ..."]}  # the last run's per-advisory problems

One timestamp would not do: a capped run that took the newest advisories leaves older ones behind
it, and a rejected advisory must not hold back those after it. ``since`` moves only up to the
oldest change still due, so nothing is skipped, and ``done`` holds only what lies above it.
While ``backlog`` is not zero the listing is fetched without validators, since a 304 would hide
the work left to do.

Per-advisory problems do not fail the run, so one withdrawn advisory cannot hide every other one
from a CERT: a 404 or other 4xx, an HTML page, an advisory over ``max_bytes``, a checksum mismatch
or a file that is not a CSAF document at all (which ``format: csaf`` would refuse as a whole) is
named in ``problems`` and logged, the advisory is not stored, and it is tried again on the next
runs, ``GIVE_UP_AFTER`` times at most (a new line for it in ``changes.csv`` starts over).
A failure of the provider itself (timeout, 5xx, 429) stops the run where it is: what was fetched
is stored, the cursor covers exactly that and the next run continues; when nothing was fetched the
run fails. A ``changes.csv`` that cannot be fetched or read fails the run.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import quote

from collectors.formats.common import FormatError
from collectors.formats.csaf_index import parse_changes
from collectors.transports import FetchContext, Fetched, FetchError, Payload
from collectors.transports import secrets
from collectors.transports.http import RETRY_STATUSES, HttpClient, digest, fetch_document
from settings.sources import SourceConfig

log = logging.getLogger(__name__)

TYPE = "csaf"

LISTING = "changes.csv"
LISTING_MAX_BYTES = 32 * 1024**2   # CISA's OT listing since 2017 is a few hundred KB
CONNECT_TIMEOUT = 10.0             # seconds; the config's ``timeout`` is the read timeout
RETRIES = 3
GIVE_UP_AFTER = 5                  # runs an advisory is tried before it is left out (until listed anew)
PROBLEMS_KEPT = 50                 # problem lines kept in the cursor and logged; the rest are counted
SHA512_HEX = re.compile(r"[0-9a-fA-F]{128}")


class AdvisoryRejected(Exception):
    """This advisory cannot be stored as served (missing, over the cap, checksum); ``str`` names it and why."""


@dataclass
class Progress:
    """What the cursor knows: the watermark, what was fetched above it, and what failed."""

    since: datetime | None
    done: dict[str, datetime] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, cursor: dict[str, Any], first_since: datetime | None) -> "Progress":
        if not cursor:
            return cls(first_since)
        since = cursor.get("since")
        return cls(datetime.fromisoformat(since) if since else None,
                   {path: datetime.fromisoformat(stamp) for path, stamp in (cursor.get("done") or {}).items()},
                   dict(cursor.get("failed") or {}))

    def attempts(self, path: str, stamp: datetime) -> int:
        """Failed tries of this version of the advisory (a newer line in the listing starts over)."""
        failure = self.failed.get(path)
        return failure["attempts"] if failure and datetime.fromisoformat(failure["changed"]) >= stamp else 0

    def handled(self, path: str, stamp: datetime) -> bool:
        if self.since is not None and stamp <= self.since:
            return True
        if path in self.done and self.done[path] >= stamp:
            return True
        return self.attempts(path, stamp) >= GIVE_UP_AFTER

    def fetched(self, path: str, stamp: datetime) -> None:
        self.done[path] = stamp
        self.failed.pop(path, None)

    def fail(self, path: str, stamp: datetime, reason: str) -> int:
        attempts = self.attempts(path, stamp) + 1
        self.failed[path] = {"changed": stamp.isoformat(), "reason": reason, "attempts": attempts}
        return attempts

    def settle(self, latest: dict[str, datetime]) -> int:
        """Raise ``since`` to just below the oldest change still due, forget what it covers; the backlog."""
        due = sorted(stamp for path, stamp in latest.items() if not self.handled(path, stamp))
        covered = [stamp for stamp in latest.values() if not due or stamp < due[0]]
        if covered and (self.since is None or max(covered) > self.since):
            self.since = max(covered)
        # Entries under the watermark, or for advisories no longer listed, say nothing the watermark does not.
        self.done = {p: s for p, s in self.done.items()
                     if p in latest and (self.since is None or s > self.since)}
        self.failed = {p: f for p, f in self.failed.items()
                       if p in latest and (self.since is None or datetime.fromisoformat(f["changed"]) > self.since)}
        return len(due)

    def as_cursor(self) -> dict[str, Any]:
        return {"since": self.since.isoformat() if self.since else None,
                "done": {path: stamp.isoformat() for path, stamp in sorted(self.done.items())},
                "failed": dict(sorted(self.failed.items()))}


def latest_changes(data: bytes, problems: list[str]) -> dict[str, datetime]:
    """Each listed path with its newest change time; a malformed or unsafe line is left out and noted."""
    malformed: list[str] = []
    try:
        changes = parse_changes(data, malformed)
    except FormatError as exc:
        raise FetchError(f"{LISTING} is not a CSAF changes listing: {exc}") from None
    if malformed and not changes:
        raise FetchError(f"{LISTING} lists no usable advisory ({len(malformed)} malformed lines, e.g. {malformed[0]})")
    problems.extend(f"{LISTING} {problem}; left out" for problem in malformed)
    latest: dict[str, datetime] = {}
    for path, stamp in changes:
        latest[path] = max(stamp, latest.get(path, stamp))
    return latest


def due_now(progress: Progress, latest: dict[str, datetime], cap: int) -> list[tuple[datetime, str]]:
    """The newest ``cap`` changes still due, oldest first (the order they are stored in)."""
    due = sorted((stamp, path) for path, stamp in latest.items() if not progress.handled(path, stamp))
    return due[-cap:]


def relative_path(path: str, prefix: str) -> str:
    """A listed path relative to the folder URL (CISA writes it from its repository root)."""
    return path[len(prefix):] if prefix and path.startswith(prefix) else path


def published_sha512(client: HttpClient, url: str, name: str) -> str | None:
    """The provider's SHA-512 of an advisory, or ``None`` when it publishes none."""
    try:
        result = fetch_document(client, url + ".sha512", name=f"{name}.sha512", expected="a SHA-512 checksum")
    except FetchError as exc:
        # 404/410: no checksum for this file. 200 here is an HTML page in its place (a site's "not found"
        # page; CSAF makes checksums optional): no checksum either. Anything else is for a later run.
        if exc.http_status in (200, 404, 410):
            return None
        raise
    assert result.body is not None
    try:
        words = result.body.read(4096).decode("ascii", "replace").split()
    finally:
        result.close()
    if not words or not SHA512_HEX.fullmatch(words[0]):
        raise AdvisoryRejected(f"{name}: its .sha512 does not hold a SHA-512 hash "
                               f"(starts {' '.join(words)[:40]!r}); cannot verify it")
    if len(words) > 1 and PurePosixPath(words[1].lstrip("*")).name != PurePosixPath(name).name:
        raise AdvisoryRejected(f"{name}: its .sha512 is for another file ({words[1][:80]!r})")
    return words[0].lower()


def fetch_advisory(client: HttpClient, url: str, name: str, verify: bool) -> tuple[IO[bytes], int]:
    """One advisory, size-capped and (when asked and published) checked against its ``.sha512``."""
    try:
        result = fetch_document(client, url, name=name, expected="CSAF JSON")
    except FetchError as exc:
        if exc.http_status in (404, 410):
            raise AdvisoryRejected(f"{name}: listed in {LISTING} but the server has no such file "
                                   f"(HTTP {exc.http_status})") from None
        if is_item_problem(exc):
            raise AdvisoryRejected(about(name, exc)) from None
        raise
    assert result.body is not None
    body, size = result.body, result.wire_bytes
    try:
        expected = published_sha512(client, url, name) if verify else None
        if expected is not None:
            actual = digest(body, "sha512")
            if actual != expected:
                raise AdvisoryRejected(
                    f"{name}: SHA-512 mismatch: the advisory hashes to {actual[:16]}…, its .sha512 says "
                    f"{expected[:16]}… (changed in transit, or published inconsistently)")
        check_document(body, name)
    except FetchError as exc:
        body.close()
        if is_item_problem(exc):
            words = about(f"{name}.sha512", exc, bare=True)
            raise AdvisoryRejected(f"{name}: its .sha512 could not be fetched: {words}") from None
        raise
    except AdvisoryRejected:
        body.close()
        raise
    return body, size


def check_document(body: IO[bytes], name: str) -> None:
    """Reject what ``format: csaf`` would refuse as a whole: a broken file would fail every run, not one advisory."""
    try:
        document = json.loads(body.read().removeprefix(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError) as exc:
        raise AdvisoryRejected(f"{name}: not valid JSON ({str(exc)[:120]})") from None
    finally:
        body.seek(0)
    head = document.get("document") if isinstance(document, dict) else None
    tracking = head.get("tracking") if isinstance(head, dict) else None
    if not isinstance(tracking, dict) or not isinstance(tracking.get("id"), str):
        raise AdvisoryRejected(f"{name}: not a CSAF document (no document.tracking.id)")


def about(name: str, exc: FetchError, *, bare: bool = False) -> str:
    """The error's words with the file named once in front (or not at all with ``bare``)."""
    text = str(exc).removeprefix(f"{name}: ")
    return text if bare else f"{name}: {text}"


def is_item_problem(exc: FetchError) -> bool:
    """A problem with this one file (4xx, HTML, over the cap), not with the provider (network, 5xx, 429)."""
    status = exc.http_status
    return status is not None and status < 500 and status not in RETRY_STATUSES


def fetch(source: SourceConfig, cursor: dict[str, Any], ctx: FetchContext) -> Fetched:
    cfg = source.source
    base = secrets.resolve(cfg.url, "source.url") or ""
    same_folder = cursor.get("url") == cfg.url
    first_since = ctx.now() - cfg.initial_lookback if cfg.initial_lookback is not None else None
    progress = Progress.load(cursor if same_folder else {}, first_since)
    backlog = int(cursor.get("backlog") or 0) if same_folder else 0

    def client(max_bytes: int) -> HttpClient:
        return HttpClient(source, ctx, max_bytes=max_bytes, connect_timeout=CONNECT_TIMEOUT,
                          read_timeout=cfg.timeout.total_seconds(), retries=RETRIES, headers=cfg.headers)

    conditional: dict[str, str] = {}
    if same_folder and not backlog:
        if cursor.get("etag"):
            conditional["If-None-Match"] = cursor["etag"]
        if cursor.get("last_modified"):
            conditional["If-Modified-Since"] = cursor["last_modified"]
    listing = fetch_document(client(LISTING_MAX_BYTES), base + LISTING, name=LISTING,
                             expected="a CSAF changes.csv listing", extra_headers=conditional)
    if listing.body is None:
        return Fetched(payloads=[], not_modified=True, http_status=304, cursor=dict(cursor), complete_snapshot=False)
    try:
        sha256 = digest(listing.body)
        data = listing.body.read()
    finally:
        listing.close()
    new_cursor: dict[str, Any] = {"url": cfg.url, "sha256": sha256}
    for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
        if listing.headers.get(header):
            new_cursor[key] = listing.headers[header]
    if same_folder and not backlog and cursor.get("sha256") == sha256:
        # The server ignored our validators but sent the same listing: nothing new, nothing left over.
        kept = {key: value for key, value in cursor.items() if key not in new_cursor}
        return Fetched(payloads=[], not_modified=True, http_status=listing.status, bytes=listing.wire_bytes,
                       sha256=sha256, cursor={**kept, **new_cursor}, complete_snapshot=False)

    problems: list[str] = []
    latest = latest_changes(data, problems)
    advisories = client(cfg.max_bytes)
    payloads: list[Payload] = []
    total = listing.wire_bytes
    try:
        for stamp, path in due_now(progress, latest, cfg.max_advisories_per_run):
            name = relative_path(path, cfg.listing_prefix)
            url = base + quote(name, safe="/")
            try:
                body, size = fetch_advisory(advisories, url, name, cfg.verify_checksums)
            except AdvisoryRejected as exc:
                attempts = progress.fail(path, stamp, str(exc))
                problems.append(f"{exc}; " + (f"tried {attempts} times, given up until {LISTING} lists it anew"
                                              if attempts >= GIVE_UP_AFTER else
                                              f"not stored, tried again next run (attempt {attempts} of {GIVE_UP_AFTER})"))
                continue
            except FetchError as exc:
                words = about(name, exc, bare=True)
                if not payloads:
                    raise FetchError(secrets.redact(f"{name} listed in {LISTING} could not be fetched: {words}"),
                                     http_status=exc.http_status, retry_after=exc.retry_after) from None
                # The provider is struggling: keep what arrived, the cursor stops here, the next run goes on.
                problems.append(f"stopped at {name}: {words}; it and the advisories after it are fetched next run")
                break
            total += size
            payloads.append(Payload(body, name))
            progress.fetched(path, stamp)
    except BaseException:
        for payload in payloads:
            payload.stream.close()
        raise

    backlog = progress.settle(latest)
    for problem in problems[:PROBLEMS_KEPT]:
        log.warning("source %s: %s", source.id, secrets.redact(problem))
    if len(problems) > PROBLEMS_KEPT:
        problems = problems[:PROBLEMS_KEPT] + [f"... and {len(problems) - PROBLEMS_KEPT} more"]
    new_cursor.update(progress.as_cursor(), backlog=backlog, problems=[secrets.redact(p) for p in problems])
    return Fetched(payloads=payloads, not_modified=not payloads and not problems, http_status=listing.status,
                   bytes=total, sha256=sha256, cursor=new_cursor, complete_snapshot=False,
                   notes=[secrets.redact(p) for p in problems])
