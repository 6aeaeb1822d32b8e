"""Write side of the store for collectors: runs, source state, cursors, indicators, advisories.

Every function takes an open connection inside the caller's transaction, so a collector can write
its records and the cursor that covers them in one commit.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, tuple_, update

from store.db import dumps, loads, to_ms
from store.records import Advisory, Indicator
from store.schema import advisories, cursors, feed_runs, indicators, sightings, source_state, techniques

CHUNK = 400
TLP_RANK = {"clear": 0, "white": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- cursors -------------------------------------------------------------------------------------

def get_cursor(conn: Connection, source_id: str, key: str, default: Any = None) -> Any:
    row = conn.execute(
        select(cursors.c.value).where(cursors.c.source_id == source_id, cursors.c.key == key)
    ).first()
    return loads(row.value) if row else default


def all_cursors(conn: Connection, source_id: str) -> dict[str, Any]:
    rows = conn.execute(select(cursors.c.key, cursors.c.value).where(cursors.c.source_id == source_id))
    return {row.key: loads(row.value) for row in rows}


def set_cursor(conn: Connection, source_id: str, key: str, value: Any, now: int) -> None:
    text = dumps(value) or "null"
    changed = conn.execute(
        update(cursors).where(cursors.c.source_id == source_id, cursors.c.key == key)
        .values(value=text, updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(insert(cursors).values(source_id=source_id, key=key, value=text, updated_at=now))


def delete_cursor(conn: Connection, source_id: str, key: str) -> None:
    conn.execute(cursors.delete().where(cursors.c.source_id == source_id, cursors.c.key == key))


# --- runs and source state -----------------------------------------------------------------------

def start_run(conn: Connection, source_id: str, now: int) -> int:
    run_id = conn.execute(
        insert(feed_runs).values(source_id=source_id, started_at=now, outcome="running")
    ).inserted_primary_key[0]
    return int(run_id)


@dataclass
class RunSummary:
    """What one run of one source did; written to ``feed_runs`` and printed by the CLI."""

    outcome: str = "ok"            # ok, unchanged, flagged, failed
    http_status: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    parsed: int = 0
    rejected: int = 0
    filtered: int = 0
    skipped: int = 0
    not_matchable: int = 0
    new: int = 0
    updated: int = 0
    expired: int = 0
    duplicates: int = 0
    newest_record_at: int | None = None
    flags: list[str] | None = None
    error: str | None = None
    rejected_samples: list[dict[str, str]] | None = None

    def as_row(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        row["flags"] = dumps(self.flags)
        row["rejected_samples"] = dumps(self.rejected_samples)
        return row


def finish_run(conn: Connection, run_id: int, source_id: str, summary: RunSummary, now: int,
               record_count: int | None = None) -> None:
    conn.execute(update(feed_runs).where(feed_runs.c.id == run_id).values(finished_at=now, **summary.as_row()))
    state = conn.execute(select(source_state).where(source_state.c.source_id == source_id)).first()
    failed = summary.outcome == "failed"
    values: dict[str, Any] = {
        "last_attempt_at": now,
        "last_outcome": summary.outcome,
        "last_error": summary.error,
        "consecutive_failures": ((state.consecutive_failures if state else 0) + 1) if failed else 0,
    }
    if not failed:
        values["last_success_at"] = now
        if record_count is not None:
            values["last_record_count"] = record_count
    if summary.newest_record_at is not None:
        previous = state.newest_record_at if state else None
        values["newest_record_at"] = max(summary.newest_record_at, previous or 0)
    if state is None:
        conn.execute(insert(source_state).values(source_id=source_id, **values))
    else:
        conn.execute(update(source_state).where(source_state.c.source_id == source_id).values(**values))


def open_breaker(conn: Connection, source_id: str, until: int | None) -> None:
    conn.execute(update(source_state).where(source_state.c.source_id == source_id).values(breaker_open_until=until))


def source_state_row(conn: Connection, source_id: str) -> Any:
    return conn.execute(select(source_state).where(source_state.c.source_id == source_id)).first()


# --- indicators ----------------------------------------------------------------------------------

@dataclass
class UpsertCounts:
    new: int = 0
    updated: int = 0
    expired: int = 0


def upsert_indicators(conn: Connection, source_id: str, records: Sequence[Indicator], *, run_id: int,
                      now: int, ttl_ms: int | None, detect: bool) -> UpsertCounts:
    """Upsert on (type, value) and keep one sighting per source; a re-run never duplicates.

    ``new`` counts sightings this source did not have active before (first time or re-activated);
    ``updated`` counts ones it already had. Revoked records expire their sighting.
    """
    counts = UpsertCounts()
    unique: dict[tuple[str, str], Indicator] = {}
    for record in records:
        unique[(record.type, record.value)] = record
    keys = list(unique)
    for chunk in _chunks(keys):
        ids = _indicator_ids(conn, chunk)
        missing = [k for k in chunk if k not in ids and not unique[k].revoked]
        if missing:
            conn.execute(_insert_new(conn, indicators, ("type", "value")), [
                {"type": t, "value": v, "matchable": unique[(t, v)].matchable,
                 "first_seen": _seen(unique[(t, v)].first_seen, now), "last_seen": _seen(unique[(t, v)].last_seen, now),
                 "updated_at": now}
                for t, v in missing
            ])
            ids.update(_indicator_ids(conn, missing))
        existing = {
            row.indicator_id: row for row in conn.execute(
                select(sightings.c.indicator_id, sightings.c.expired_at, sightings.c.first_seen)
                .where(sightings.c.source_id == source_id, sightings.c.indicator_id.in_([ids[k] for k in chunk if k in ids]))
            )
        }
        inserts, updates = [], []
        for key in chunk:
            if key not in ids:
                continue  # revoked and never seen: nothing to expire
            record, indicator_id = unique[key], ids[key]
            row = _sighting_row(record, indicator_id, source_id, run_id, now, ttl_ms, detect)
            previous = existing.get(indicator_id)
            if previous is None:
                if record.revoked:
                    continue
                inserts.append(row)
                counts.new += 1
            else:
                row["first_seen"] = min(previous.first_seen, row["first_seen"])
                updates.append(row)
                if record.revoked:
                    counts.expired += previous.expired_at is None
                elif previous.expired_at is None:
                    counts.updated += 1
                else:
                    counts.new += 1
        if inserts:
            conn.execute(insert(sightings), inserts)
        for row in updates:
            conn.execute(
                update(sightings)
                .where(sightings.c.indicator_id == row["indicator_id"], sightings.c.source_id == source_id)
                .values({k: v for k, v in row.items() if k not in ("indicator_id", "source_id")})
            )
        touched = [ids[k] for k in chunk if k in ids and not unique[k].revoked]
        if touched:
            conn.execute(update(indicators).where(indicators.c.id.in_(touched)).values(updated_at=now))
    return counts


def _insert_new(conn: Connection, table: Any, unique: tuple[str, ...]) -> Any:
    """An ``INSERT`` that leaves rows already there alone on PostgreSQL: there, several collector
    processes may write at once, and another feed may have just stored the same indicator (SQLite
    serialises writers, so the look-up before the insert is enough)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=list(unique))
    return insert(table)


def _indicator_ids(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    if not keys:
        return {}
    rows = conn.execute(
        select(indicators.c.id, indicators.c.type, indicators.c.value)
        .where(tuple_(indicators.c.type, indicators.c.value).in_(list(keys)))
    )
    return {(row.type, row.value): row.id for row in rows}


def _seen(moment: Any, now: int) -> int:
    return to_ms(moment) if moment is not None else now


def _sighting_row(record: Indicator, indicator_id: int, source_id: str, run_id: int, now: int,
                  ttl_ms: int | None, detect: bool) -> dict[str, Any]:
    return {
        "indicator_id": indicator_id,
        "source_id": source_id,
        "first_seen": _seen(record.first_seen, now),
        "last_seen": _seen(record.last_seen or record.first_seen, now),
        "confidence": record.confidence,
        "tlp": record.tlp,
        "tags": dumps(list(record.tags)),
        "malware": record.malware,
        "port": record.port,
        "description": record.description,
        "detect": detect and record.matchable,
        "last_run_id": run_id,
        "expires_at": now + ttl_ms if ttl_ms else None,
        "expired_at": now if record.revoked else None,
        "expired_reason": "revoked" if record.revoked else None,
        "raw": record.raw[:4000] if record.raw else None,
    }


def extend_ttl(conn: Connection, source_id: str, now: int, ttl_ms: int | None) -> None:
    """An unchanged feed still lists everything it listed: its sightings stay alive."""
    if ttl_ms:
        conn.execute(update(sightings).where(sightings.c.source_id == source_id, sightings.c.expired_at.is_(None))
                     .values(expires_at=now + ttl_ms))


def expire_absent(conn: Connection, source_id: str, run_id: int, now: int) -> int:
    """A full snapshot feed dropped these: expire the sightings this run did not see."""
    return conn.execute(
        update(sightings)
        .where(sightings.c.source_id == source_id, sightings.c.expired_at.is_(None),
               sightings.c.last_run_id != run_id)
        .values(expired_at=now, expired_reason="absent")
    ).rowcount


def expire_by_ttl(conn: Connection, now: int, source_id: str | None = None) -> int:
    condition = and_(sightings.c.expired_at.is_(None), sightings.c.expires_at.is_not(None),
                     sightings.c.expires_at < now)
    if source_id is not None:
        condition = and_(condition, sightings.c.source_id == source_id)
    return conn.execute(update(sightings).where(condition).values(expired_at=now, expired_reason="ttl")).rowcount


# --- advisories and techniques ---------------------------------------------------------------------

def upsert_advisories(conn: Connection, source_id: str, records: Sequence[Advisory], *, run_id: int) -> UpsertCounts:
    """Insert or update a run's advisories by ``(advisory_id, cve, vendor, product)``, in two bulk statements.

    A KEV or CSAF run carries tens of thousands of rows; one ``UPDATE`` probe per row took seconds.
    A key repeated within the run counts once as new (or updated) and then as updated, last one wins.
    """
    counts = UpsertCounts()
    existing = {tuple(row) for row in conn.execute(
        select(advisories.c.advisory_id, advisories.c.cve, advisories.c.vendor, advisories.c.product)
        .where(advisories.c.source_id == source_id))}
    latest: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for record in records:
        key = (record.advisory_id, record.cve or "", record.vendor or "", record.product or "")
        if key in latest or key in existing:
            counts.updated += 1
        else:
            counts.new += 1
        latest[key] = {
            "versions": dumps(list(record.versions)), "title": record.title, "cvss": record.cvss,
            "published": to_ms(record.published) if record.published else None,
            "updated": to_ms(record.updated) if record.updated else None,
            "known_exploited": record.known_exploited, "url": record.url,
            "raw": record.raw[:8000] if record.raw else None, "last_run_id": run_id,
        }
    fresh = [{"source_id": source_id, "advisory_id": k[0], "cve": k[1], "vendor": k[2], "product": k[3], **v}
             for k, v in latest.items() if k not in existing]
    known = [{"k_advisory_id": k[0], "k_cve": k[1], "k_vendor": k[2], "k_product": k[3], **v}
             for k, v in latest.items() if k in existing]
    if fresh:
        conn.execute(insert(advisories), fresh)
    if known:
        conn.execute(update(advisories).where(
            advisories.c.source_id == source_id, advisories.c.advisory_id == bindparam("k_advisory_id"),
            advisories.c.cve == bindparam("k_cve"), advisories.c.vendor == bindparam("k_vendor"),
            advisories.c.product == bindparam("k_product"),
        ).values({name: bindparam(name) for name in _ADVISORY_VALUES}), known)
    return counts


_ADVISORY_VALUES = ("versions", "title", "cvss", "published", "updated", "known_exploited", "url", "raw",
                    "last_run_id")


def upsert_techniques(conn: Connection, source_id: str, records: Sequence[Any]) -> UpsertCounts:
    counts = UpsertCounts()
    for record in records:
        values = {"name": record.name, "tactics": dumps(list(record.tactics)), "url": record.url,
                  "source_id": source_id}
        if conn.execute(update(techniques).where(techniques.c.id == record.id).values(**values)).rowcount:
            counts.updated += 1
        else:
            conn.execute(insert(techniques).values(id=record.id, **values))
            counts.new += 1
    return counts
