"""Indicator upsert on (type, value) with per-source sightings; expiry by absence, TTL and revocation."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from store import writes
from store.db import Store
from store.records import Indicator
from store.schema import indicators, sightings

T0 = 1_700_000_000_000


def ind(value: str, feed: str = "f1", **kw) -> Indicator:
    return Indicator(type="ipv4", value=value, feed=feed, **kw)


def upsert(store: Store, source: str, records: list[Indicator], run_id: int, now: int, ttl_ms: int | None = None):
    with store.writer.begin() as conn:
        return writes.upsert_indicators(conn, source, records, run_id=run_id, now=now, ttl_ms=ttl_ms, detect=True)


def active(store: Store, source: str) -> set[str]:
    with store.reader.connect() as conn:
        rows = conn.execute(select(indicators.c.value).join(sightings, sightings.c.indicator_id == indicators.c.id)
                            .where(sightings.c.source_id == source, sightings.c.expired_at.is_(None)))
        return {r.value for r in rows}


def test_rerun_never_duplicates_and_counts_new_vs_updated(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    first = upsert(store, "f1", [ind("192.0.2.1"), ind("192.0.2.2"), ind("192.0.2.2")], run_id=1, now=T0)
    assert (first.new, first.updated) == (2, 0)
    second = upsert(store, "f1", [ind("192.0.2.1"), ind("192.0.2.3")], run_id=2, now=T0 + 1000)
    assert (second.new, second.updated) == (1, 1)
    with store.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(indicators)).scalar() == 3
        assert conn.execute(select(func.count()).select_from(sightings)).scalar() == 3


def test_two_feeds_share_one_indicator_with_own_sightings(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    seen = datetime(2026, 1, 2, tzinfo=timezone.utc)
    upsert(store, "f1", [ind("192.0.2.9", confidence=90, first_seen=seen)], run_id=1, now=T0)
    upsert(store, "f2", [ind("192.0.2.9", feed="f2", confidence=40, tlp="amber")], run_id=2, now=T0)
    with store.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(indicators)).scalar() == 1
        rows = {r.source_id: r for r in conn.execute(select(sightings))}
    assert rows["f1"].confidence == 90 and rows["f1"].first_seen == int(seen.timestamp() * 1000)
    assert rows["f2"].confidence == 40 and rows["f2"].tlp == "amber"


def test_absent_and_ttl_and_revoked_expire(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    upsert(store, "f1", [ind("192.0.2.1"), ind("192.0.2.2")], run_id=1, now=T0, ttl_ms=60_000)
    upsert(store, "f1", [ind("192.0.2.1")], run_id=2, now=T0 + 10, ttl_ms=60_000)
    with store.writer.begin() as conn:
        assert writes.expire_absent(conn, "f1", 2, T0 + 20) == 1
    assert active(store, "f1") == {"192.0.2.1"}
    counts = upsert(store, "f1", [ind("192.0.2.2")], run_id=3, now=T0 + 30)
    assert counts.new == 1, "a re-listed indicator counts as new again"
    revoked = upsert(store, "f1", [ind("192.0.2.2", revoked=True)], run_id=4, now=T0 + 40)
    assert revoked.expired == 1 and active(store, "f1") == {"192.0.2.1"}
    with store.writer.begin() as conn:
        assert writes.expire_by_ttl(conn, T0 + 120_000) == 1
    assert active(store, "f1") == set()


def test_cursor_round_trip(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    with store.writer.begin() as conn:
        writes.set_cursor(conn, "s", "fetch", {"etag": "\"abc\""}, T0)
        writes.set_cursor(conn, "s", "fetch", {"etag": "\"def\""}, T0 + 1)
    with store.reader.connect() as conn:
        assert writes.get_cursor(conn, "s", "fetch") == {"etag": "\"def\""}
        assert writes.all_cursors(conn, "s") == {"fetch": {"etag": "\"def\""}}
