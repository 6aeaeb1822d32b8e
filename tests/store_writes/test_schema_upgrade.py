"""An older store gains the columns a newer watchfloor added, and keeps its rows."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import select

from store.db import Store, create_or_upgrade
from store.schema import feed_runs


def test_missing_columns_are_added_and_rows_kept(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.dispose()
    database = sqlite3.connect(tmp_path / "watchfloor.db")
    database.execute("INSERT INTO feed_runs (source_id, started_at, outcome, parsed, rejected, filtered, skipped,"
                     " not_matchable, new, updated, expired, duplicates) VALUES ('old', 1, 'ok', 5, 0, 0, 0, 0, 5, 0, 0, 0)")
    database.commit()
    # What an older release wrote: the same table without the newer columns.
    database.execute("ALTER TABLE feed_runs DROP COLUMN skipped")
    database.execute("ALTER TABLE feed_runs DROP COLUMN flags")
    database.commit()
    database.close()

    upgraded = Store.open(tmp_path)
    create_or_upgrade(upgraded.writer)  # twice is harmless
    with upgraded.reader.connect() as conn:
        row = conn.execute(select(feed_runs.c.source_id, feed_runs.c.parsed, feed_runs.c.skipped, feed_runs.c.flags)).one()
    assert (row.source_id, row.parsed, row.skipped, row.flags) == ("old", 5, 0, None)
