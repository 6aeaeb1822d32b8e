"""Opening the store: one SQLAlchemy engine per process, SQLite in WAL mode by default.

``WATCHFLOOR_DATABASE_URL`` (or ``database_url`` in settings) selects another database, e.g.
``postgresql+psycopg://user@host/watchfloor``; the same Core code runs on both.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, literal, select
from sqlalchemy.pool import NullPool, QueuePool

from store import coarse_rollups, incident_search
from store.schema import SCHEMA_VERSION, metadata, schema_info

SQLITE_BUSY_TIMEOUT_MS = 15000
READER_POOL_SIZE = 4


def database_url(data_dir: Path, configured: str | None = None) -> str:
    url = os.environ.get("WATCHFLOOR_DATABASE_URL") or configured
    if url:
        return url
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / 'watchfloor.db').resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the last commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, *, for_writing: bool = True) -> Engine:
    if url.startswith("sqlite"):
        if for_writing:
            # Short-lived connections: every process and thread opens its own, so none holds a lock for long.
            engine = create_engine(url, poolclass=NullPool, connect_args={"check_same_thread": False})
        else:
            # Readers keep a few connections: a wall refresh runs six queries, and opening a SQLite
            # connection (with its pragmas) each time was ~0.45 ms apiece. A pooled connection holds
            # no read transaction while idle (it is rolled back on return), so WAL checkpoints proceed.
            engine = create_engine(url, poolclass=QueuePool, pool_size=READER_POOL_SIZE, max_overflow=8,
                                   connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "connect", lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None))
        # Writers take the write lock at BEGIN, so two writers queue on busy_timeout instead of failing
        # on a lock upgrade; readers begin deferred and never wait for a writer in WAL mode.
        begin_sql = "BEGIN IMMEDIATE" if for_writing else "BEGIN"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin_sql))
        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """The engines of one process: ``writer`` for collectors and officer actions, ``reader`` for panels."""

    def __init__(self, url: str):
        self.url = url
        self.writer = make_engine(url, for_writing=True)
        self.reader = make_engine(url, for_writing=False) if url.startswith("sqlite") else self.writer

    @classmethod
    def open(cls, data_dir: Path, configured_url: str | None = None) -> "Store":
        store = cls(database_url(data_dir, configured_url))
        create_or_upgrade(store.writer)
        return store

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()


def create_or_upgrade(engine: Engine) -> None:
    """Create missing tables, add missing columns, record the schema version (idempotent).

    Upgrades are additive: a column added to ``store.schema`` appears in an existing store at the
    next start, so an older data folder keeps working. Nothing is ever dropped or retyped here.

    Derived data is brought up to date in the same transaction as the version check: the coarse
    rollups are filled from ``rollups`` once (``coarse_rollups.ensure``), and on SQLite the incident
    search index is created, or rebuilt when its triggers were missing (``incident_search.ensure``).
    Both are one-off costs of the first start after an upgrade (seconds at millions of rows).
    """
    metadata.create_all(engine)
    _add_missing_columns(engine)
    trigram = incident_search.trigram_available(engine)
    with engine.begin() as conn:
        row = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "version")).first()
        if row is None:
            conn.execute(insert(schema_info).values(key="version", value=str(SCHEMA_VERSION)))
        elif int(row.value) > SCHEMA_VERSION:
            raise RuntimeError(
                f"the store was written by a newer watchfloor (schema {row.value} > {SCHEMA_VERSION}); upgrade first"
            )
        coarse_rollups.ensure(conn)
        incident_search.ensure(conn, trigram)


def _add_missing_columns(engine: Engine) -> None:
    existing_tables = set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if table.name not in existing_tables:
                continue
            present = {column["name"] for column in inspect(conn).get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                default = column.default.arg if column.default is not None and column.default.is_scalar else None
                # The default as this dialect's literal: 1/0 for a SQLite boolean, true/false on PostgreSQL
                # (which refuses an integer default for a boolean column), strings quoted and escaped.
                clause = f" NOT NULL DEFAULT {_literal(default, column, engine)}" \
                    if default is not None and not column.nullable else ""
                conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}')


def _literal(value: Any, column: Any, engine: Engine) -> str:
    return str(literal(value, column.type).compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: watchfloor keeps every time in UTC")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def dumps(value: Any) -> str | None:
    if value is None or value == [] or value == {} or value == ():
        return None
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def loads(text: str | None, default: Any = None) -> Any:
    if not text:
        return default
    return json.loads(text)
