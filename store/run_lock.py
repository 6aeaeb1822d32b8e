"""One run of a source at a time across collector processes (DESIGN §3).

With PostgreSQL several ``app.py collect`` processes may share one store; a source run holds a
session-level advisory lock, keyed by a stable 64-bit hash of the source id, on a dedicated
connection for as long as the run lasts. A process that finds the lock taken skips the run
instead of fetching the feed a second time. SQLite has a single collector: the lock is a no-op.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key (PostgreSQL ``bigint``) for ``name``; the same in every process."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_key(source_id: str) -> int:
    """The run lock key of one source."""
    return advisory_key(f"watchfloor.source:{source_id}")


INGEST_KEY = advisory_key("watchfloor.ingest")


def serialise_ingest(conn: Connection) -> None:
    """On PostgreSQL, wait until no other process is ingesting, then hold that until this transaction ends.

    Correlation reads the open incidents and then inserts or updates them, and the rollups are
    read-modify-write too: two sensor processes ingesting at once would open two incidents for one
    group key, or overwrite each other's counts. SQLite serialises writers already (``BEGIN
    IMMEDIATE``); this does the same on PostgreSQL for the ingest transaction only (fetching and
    parsing stay parallel)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INGEST_KEY})


@contextmanager
def source_run_lock(engine: Engine, source_id: str) -> Iterator[bool]:
    """Yield True while this process holds the run lock of ``source_id``, False if another one does."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(source_id)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
    except BaseException:
        conn.invalidate()
        conn.close()
        raise
    if not got:
        conn.close()
        yield False
        return
    try:
        yield True
    finally:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        except Exception:
            # Closing the session for good releases every lock it held.
            log.exception("source %s: cannot release the run lock; dropping its connection", source_id)
            conn.invalidate()
        conn.close()
