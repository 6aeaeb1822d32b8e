"""``source.type: misp``: a MISP feed directory (``manifest.json`` plus one ``<uuid>.json`` per event).

Like MISP itself (Feed.php ``getNewEventUuids``), an event is fetched when it is new or its
``timestamp`` in the manifest moved; the cursor keeps each event's timestamp, so an event added
to the feed with an old timestamp is still picked up (a single "max timestamp" would skip it).
The manifest is fetched with its ETag (``If-None-Match``, as MISP does): a 304 is an ``unchanged``
run. Each event file is one payload for the ``misp`` format. The cursor only moves when the run
commits (the runner saves it in the same transaction as the records), so a failed run re-reads.

A first run can be bounded (``initial_lookback``, ``max_events``): events older than the lookback
are marked read without being fetched (a later timestamp change still brings them in), and a run
fetches at most ``max_events`` of the events due, the newest; the rest stay due for the next run.
Without them the first run reads every event listed (MISP #5649: millions of attributes a day).

A missing or broken event file fails the run and names the event: silent partial loss is the
complaint users have about MISP (#11117). ``file://`` base URLs read a feed copied to an
air-gapped site, with the same size caps.
"""
from __future__ import annotations

import logging
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from collectors.transports import FetchContext, Fetched, FetchError, Payload
from collectors.transports import secrets
from collectors.transports.http import CHUNK, SPOOL_IN_MEMORY, HttpClient, fetch_document
from collectors.formats.common import FormatError
from collectors.formats.misp import manifest_events
from settings.sources import SourceConfig

log = logging.getLogger(__name__)

TYPE = "misp"

MANIFEST = "manifest.json"
CONNECT_TIMEOUT = 10.0     # seconds; the config's ``timeout`` is the read timeout
RETRIES = 3
PROBLEMS_LOGGED = 5        # malformed manifest entries logged per run; the rest are counted


def select_events(manifest: bytes, seen: dict[str, int]) -> tuple[list[tuple[str, int]], set[str]]:
    """Events that are new or whose manifest timestamp moved (oldest first), and every event listed.

    Parsing and validation are the ``misp`` format's ``manifest_events`` (event ids must be UUIDs,
    since they become part of a URL or a file path); a malformed entry is left out and logged.
    """
    problems: list[str] = []
    try:
        listed = manifest_events(manifest, None, problems)
    except FormatError as exc:
        raise FetchError(f"{MANIFEST} is not a MISP feed manifest: {exc}") from None
    for problem in problems[:PROBLEMS_LOGGED]:
        log.warning("MISP feed manifest: %s", secrets.redact(problem))
    if problems and not listed:
        raise FetchError(f"{MANIFEST} lists no usable event ({len(problems)} malformed entries, e.g. {problems[0]})")
    chosen = [(event_id, stamp) for event_id, stamp in listed
              if event_id not in seen or stamp > seen[event_id]]
    return chosen, {event_id for event_id, _ in listed}


class _Reader:
    """Reads files of the feed by name, over HTTP(S) or from a local folder."""

    def get(self, name: str, etag: str | None = None) -> tuple[IO[bytes] | None, dict[str, str], int]:
        raise NotImplementedError


class _HttpReader(_Reader):
    def __init__(self, base: str, client: HttpClient):
        self.base, self.client = base, client

    def get(self, name: str, etag: str | None = None) -> tuple[IO[bytes] | None, dict[str, str], int]:
        result = fetch_document(self.client, self.base + name, name=name, expected="MISP JSON",
                                extra_headers={"If-None-Match": etag} if etag else None)
        return result.body, dict(result.headers), result.wire_bytes


class _FileReader(_Reader):
    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = folder, max_bytes

    def get(self, name: str, etag: str | None = None) -> tuple[IO[bytes] | None, dict[str, str], int]:
        path = self.folder / name
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise FetchError(f"{name} is {size} bytes, over max_bytes {self.max_bytes}")
            spool: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    spool.write(chunk)
        except FileNotFoundError:
            raise FetchError(f"{name} not found in the feed folder {self.folder}") from None
        except OSError as exc:
            raise FetchError(f"cannot read {path}: {exc.strerror}") from None
        spool.seek(0)
        return spool, {}, size


def _reader(source: SourceConfig, ctx: FetchContext, base: str) -> _Reader:
    cfg = source.source
    if base.startswith("file://"):
        return _FileReader(Path(unquote(urlsplit(base).path)), cfg.max_bytes)
    if not base.startswith(("http://", "https://")):
        raise FetchError(f"the MISP feed URL must start with http://, https:// or file://, got {base[:40]!r}")
    client = HttpClient(source, ctx, max_bytes=cfg.max_bytes, connect_timeout=CONNECT_TIMEOUT,
                        read_timeout=cfg.timeout.total_seconds(), retries=RETRIES, headers=cfg.headers)
    return _HttpReader(base, client)


def _read_all(stream: IO[bytes]) -> bytes:
    # The manifest is small (an index, already capped at max_bytes) and the helper takes bytes.
    try:
        return stream.read()
    finally:
        stream.close()


def fetch(source: SourceConfig, cursor: dict[str, Any], ctx: FetchContext) -> Fetched:
    cfg = source.source
    base = (secrets.resolve(cfg.url, "source.url") or "").rstrip("/") + "/"
    same_feed = cursor.get("url") == cfg.url
    seen: dict[str, int] = dict(cursor.get("events") or {}) if same_feed else {}
    reader = _reader(source, ctx, base)
    manifest_body, headers, manifest_bytes = reader.get(MANIFEST, cursor.get("etag") if same_feed else None)
    if manifest_body is None:
        return Fetched(payloads=[], not_modified=True, http_status=304, cursor=dict(cursor), complete_snapshot=False)
    selected, listed = select_events(_read_all(manifest_body), seen)
    if not same_feed and cfg.initial_lookback is not None:
        # First run: what is older than the lookback counts as read, so no later run fetches it either.
        floor = (ctx.now() - cfg.initial_lookback).timestamp()
        seen.update((event_id, stamp) for event_id, stamp in selected if stamp < floor)
        selected = [(event_id, stamp) for event_id, stamp in selected if stamp >= floor]
    if cfg.max_events is not None:
        # The newest first; the older ones are not marked read, so the next run continues with them.
        selected = selected[-cfg.max_events:]
    payloads: list[Payload] = []
    total = manifest_bytes
    try:
        for event_id, _stamp in selected:
            try:
                body, _headers, size = reader.get(f"{event_id}.json")
            except FetchError as exc:
                raise FetchError(secrets.redact(f"event {event_id} listed in {MANIFEST} could not be fetched: {exc}"),
                                 http_status=exc.http_status, retry_after=exc.retry_after) from None
            assert body is not None
            total += size
            payloads.append(Payload(body, f"{event_id}.json"))
    except FetchError:
        for payload in payloads:
            payload.stream.close()
        raise
    # Events the provider removed from the manifest are forgotten, so the cursor cannot grow forever.
    events = {key: value for key, value in seen.items() if key in listed}
    events.update(dict(selected))
    new_cursor: dict[str, Any] = {"url": cfg.url, "events": events,
                                  "max_timestamp": max(events.values(), default=0)}
    etag = headers.get("ETag") or headers.get("etag")
    if etag:
        new_cursor["etag"] = etag
    status = 200 if isinstance(reader, _HttpReader) else None
    if not payloads:
        return Fetched(payloads=[], not_modified=True, http_status=status, bytes=total, cursor=new_cursor,
                       complete_snapshot=False)
    return Fetched(payloads=payloads, http_status=status, bytes=total, cursor=new_cursor, complete_snapshot=False)
