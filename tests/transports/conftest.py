"""Fixtures for transport tests: loopback servers, a real store, and no real sleeping.

* ``pacing`` (autouse): politeness spacing off and every wait recorded instead of slept, so
  Retry-After and backoff are asserted from the recorded waits, never from the wall clock;
* ``httpserver`` (pytest-httpserver) bound to 127.0.0.1;
* ``raw_server``: a tiny socket server for what a well-behaved HTTP server will not do (cut a
  body short, stall past the read timeout);
* ``closed_port``: a loopback port nobody listens on;
* ``floor``: a real SQLite store in ``tmp_path`` with helpers to build sources, run them through
  ``collectors.runner.run_source`` and read back runs, indicators and sightings.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from collectors import politeness
from collectors.runner import CollectContext, run_source
from collectors.transports import http as http_transport
from settings.app_settings import AppSettings
from settings.inventory import Inventory
from settings.loader import Config
from settings.sources import SourceConfig
from store.db import Store
from store.schema import feed_runs, indicators, sightings, source_state
from store.writes import RunSummary

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


@pytest.fixture(autouse=True)
def pacing() -> Iterator[list[float]]:
    waits: list[float] = []
    previous = politeness.configure(min_spacing=0.0, per_host={}, sleep=waits.append, max_total_wait=120.0)
    politeness.forget_hosts()
    yield waits
    politeness.restore(previous)
    politeness.forget_hosts()
    http_transport.close_sessions()


class RawServer:
    """A loopback TCP server answering every connection with ``handler(conn, request_bytes)``."""

    def __init__(self, handler: Callable[[socket.socket, bytes], None]):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.requests.append(data)
                self.handler(conn, data)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket, bytes], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Callable[[socket.socket, bytes], None]) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def make_source(**fields: Any) -> SourceConfig:
    """A source config with sensible test defaults; ``fields`` override (nested dicts replace)."""
    data: dict[str, Any] = {
        "id": "test-feed", "name": "Test feed", "provider": "tests", "schedule": {"every": "1h"},
        "format": "lines", "terms": "test data",
    }
    data.update(fields)
    return SourceConfig.model_validate(data)


class Floor:
    """A real store plus a controllable clock, running sources the way the scheduler does."""

    def __init__(self, tmp_path: Path):
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir()
        self.store = Store.open(self.data_dir)
        self.now = START
        self.sources: list[SourceConfig] = []

    def clock(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def run(self, source: SourceConfig) -> RunSummary:
        if all(s.id != source.id for s in self.sources):
            self.sources.append(source)
        config = Config(self.data_dir, AppSettings(), Inventory(), list(self.sources))
        ctx = CollectContext(store=self.store, config=config, data_dir=self.data_dir, clock=self.clock)
        summary = run_source(ctx, source)
        self.advance(minutes=1)
        return summary

    def runs(self, source_id: str) -> list[Any]:
        with self.store.reader.connect() as conn:
            return list(conn.execute(select(feed_runs).where(feed_runs.c.source_id == source_id)
                                     .order_by(feed_runs.c.id)))

    def last_run(self, source_id: str) -> Any:
        return self.runs(source_id)[-1]

    def state(self, source_id: str) -> Any:
        with self.store.reader.connect() as conn:
            return conn.execute(select(source_state).where(source_state.c.source_id == source_id)).first()

    def sightings(self, source_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        """(type, value) -> the sighting row of this source, for before/after comparisons."""
        query = (select(indicators.c.type, indicators.c.value, sightings)
                 .join(sightings, sightings.c.indicator_id == indicators.c.id)
                 .where(sightings.c.source_id == source_id))
        with self.store.reader.connect() as conn:
            return {(row.type, row.value): dict(row._mapping) for row in conn.execute(query)}

    def active(self, source_id: str) -> set[tuple[str, str]]:
        return {key for key, row in self.sightings(source_id).items() if row["expired_at"] is None}

    def close(self) -> None:
        self.store.dispose()


@pytest.fixture
def floor(tmp_path: Path) -> Iterator[Floor]:
    watch = Floor(tmp_path)
    yield watch
    watch.close()
