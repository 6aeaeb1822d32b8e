"""The SQLite reader keeps its connections between queries, yet always sees what the writer committed."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, insert, select, text

from store.db import Store
from store.schema import schema_info


def test_reader_reuses_its_connection_and_sees_every_commit(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    rows = select(func.count()).select_from(schema_info)
    with store.reader.connect() as conn:
        before = conn.execute(rows).scalar_one()
        first = conn.connection.dbapi_connection
    with store.writer.begin() as conn:
        conn.execute(insert(schema_info).values(key="pool-test", value="1"))
    with store.reader.connect() as conn:
        assert conn.connection.dbapi_connection is first, "the pooled connection is reused"
        assert conn.execute(rows).scalar_one() == before + 1, "a reused connection reads the newest commit"
        # Returned to the pool, it holds no read transaction that would pin an old WAL snapshot.
    with store.reader.connect() as conn:
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() > 0   # pragmas still applied
    assert not first.in_transaction
    store.dispose()
