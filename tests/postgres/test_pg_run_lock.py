"""A source run holds a PostgreSQL advisory lock: a second collector process never fetches it twice."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, select, text

from collectors.runner import CollectContext, run_source
from settings.inventory import Inventory
from settings.loader import AppSettings, Config
from settings.sources import SourceConfig
from store import run_lock
from store.db import Store
from store.schema import events, feed_runs, indicators

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def feed(httpserver: HTTPServer) -> SourceConfig:
    return SourceConfig.model_validate({
        "id": "locked-feed", "name": "Locked feed", "provider": "tests", "format": "lines", "terms": "test data",
        "schedule": {"every": "1h"},
        "source": {"type": "http", "url": httpserver.url_for("/list.txt"), "retries": 0}})


def sensor() -> SourceConfig:
    return SourceConfig.model_validate({
        "id": "locked-eve", "name": "Locked EVE", "provider": "tests", "format": "suricata-eve",
        "schedule": {"every": "5s"}, "source": {"type": "tail", "path": "eve.json", "start_at": "beginning"}})


def context(store: Store, data_dir: Path, *sources: SourceConfig) -> CollectContext:
    config = Config(data_dir, AppSettings(), Inventory(), list(sources))
    return CollectContext(store=store, config=config, data_dir=data_dir, clock=lambda: NOW)


def runs(store: Store, source_id: str) -> list:
    with store.reader.connect() as conn:
        return conn.execute(select(feed_runs).where(feed_runs.c.source_id == source_id)
                            .order_by(feed_runs.c.id)).all()


class OtherProcess:
    """Another collector's session, holding (or not) a source's run lock."""

    def __init__(self, url: str):
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT")
        self.conn = self.engine.connect()

    def lock(self, source_id: str) -> None:
        assert self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": run_lock.lock_key(source_id)}).scalar()

    def unlock(self, source_id: str) -> None:
        assert self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": run_lock.lock_key(source_id)}).scalar()

    def held_by_others(self) -> int:
        return self.conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")).scalar()

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


@pytest.fixture
def other(pg_empty: str) -> Iterator[OtherProcess]:
    process = OtherProcess(pg_empty)
    yield process
    process.close()


def test_lock_key_is_a_stable_signed_64_bit_number() -> None:
    key = run_lock.lock_key("abuse-feodo")
    assert key == run_lock.lock_key("abuse-feodo") != run_lock.lock_key("abuse-feodo2")
    assert -2**63 <= key < 2**63
    assert key == 6901265736431644168  # the same in every process and release: never change the hash


def test_a_feed_held_by_another_process_is_skipped_without_fetching(pg_store: Store, other: OtherProcess,
                                                                     httpserver: HTTPServer, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request("/list.txt").respond_with_data("185.220.101.1\n45.33.32.156\n", content_type="text/plain")
    source = feed(httpserver)
    ctx = context(pg_store, tmp_path, source)

    other.lock(source.id)
    with caplog.at_level("INFO", logger="collectors.runner"):
        skipped = run_source(ctx, source)
    assert skipped.outcome == "skipped"
    assert "another collector process is running this source" in skipped.error
    assert "another collector process" in caplog.text
    assert httpserver.log == []  # nothing was fetched
    [row] = runs(pg_store, source.id)
    assert row.outcome == "skipped" and row.finished_at is not None and "another collector" in row.error
    with pg_store.reader.connect() as conn:
        assert conn.execute(select(indicators)).all() == []

    other.unlock(source.id)
    done = run_source(ctx, source)
    assert done.outcome == "ok" and done.new == 2
    assert len(httpserver.log) == 1
    assert [r.outcome for r in runs(pg_store, source.id)] == ["skipped", "ok"]
    assert other.held_by_others() == 0  # released at the end of the run


def test_the_lock_is_held_for_the_whole_run(pg_store: Store, other: OtherProcess, httpserver: HTTPServer,
                                            tmp_path: Path) -> None:
    source = feed(httpserver)
    seen: list[int] = []

    def handler(_request):  # runs while the collector is fetching
        seen.append(other.held_by_others())
        from werkzeug import Response
        return Response("198.18.0.1\n", content_type="text/plain")

    httpserver.expect_request("/list.txt").respond_with_handler(handler)
    assert run_source(context(pg_store, tmp_path, source), source).outcome == "ok"
    assert seen == [1]
    assert other.held_by_others() == 0


def test_a_sensor_held_by_another_process_is_skipped_without_reading(pg_store: Store, other: OtherProcess,
                                                                     tmp_path: Path) -> None:
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tailing"))
    from eve_writer_proc import eve_line

    (tmp_path / "eve.json").write_text("".join(eve_line(n) + "\n" for n in range(3)))
    source = sensor()
    ctx = context(pg_store, tmp_path, source)
    other.lock(source.id)
    assert run_source(ctx, source).outcome == "skipped"
    with pg_store.reader.connect() as conn:
        assert conn.execute(select(events)).all() == []
    other.unlock(source.id)
    assert run_source(ctx, source).outcome in ("ok", "flagged")
    with pg_store.reader.connect() as conn:
        assert len(conn.execute(select(events)).all()) == 3
    assert [r.outcome for r in runs(pg_store, source.id)][0] == "skipped"


def test_sqlite_takes_no_lock(sqlite_store: Store) -> None:
    with run_lock.source_run_lock(sqlite_store.writer, "any") as held:
        assert held


def test_feed_runs_and_the_feeds_page_match_sqlite(pg_store: Store, sqlite_store: Store, httpserver: HTTPServer,
                                                   tmp_path: Path) -> None:
    from store import queries

    httpserver.expect_request("/list.txt").respond_with_data("185.220.101.1\n45.33.32.156\nnot an address\n",
                                                             content_type="text/plain")
    source = feed(httpserver)
    now_ms = int(NOW.timestamp() * 1000)
    pages = []
    for store in (pg_store, sqlite_store):
        ctx = context(store, tmp_path, source)
        first, second = run_source(ctx, source), run_source(ctx, source)
        assert (first.outcome, first.new, first.rejected, second.outcome) == ("ok", 2, 1, "unchanged")
        pages.append((queries.feeds_overview(store, ctx.config, now_ms + 60_000),
                      queries.source_health(store, ctx.config, now_ms + 60_000)))
    for pg_frame, lite_frame in zip(*pages):
        pd.testing.assert_frame_equal(pg_frame, lite_frame)
