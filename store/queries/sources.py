"""Freshness reads: the newest event, how fresh the store is (``data_as_of``), every source's
health and the feeds page's overview of each source's last run."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import pandas as pd
from sqlalchemy import Connection, func, select

from store.db import Store, loads
from store.freshness import source_freshness
from store.queries.common import _frame
from store.schema import events, feed_runs, rollups, source_state

if TYPE_CHECKING:
    from settings.loader import Config
    from settings.sources import SourceConfig


def _latest_event(conn: Connection) -> int | None:
    value = conn.execute(select(func.max(events.c.ts))).scalar()
    return int(value) if value is not None else None


def latest_event_time(store: Store) -> int | None:
    """Epoch ms of the newest stored event (an index look-up), ``None`` when there is none."""
    with store.reader.connect() as conn:
        return _latest_event(conn)


@dataclass(frozen=True)
class DataAsOf:
    """How fresh the store is: the newest event, the newest rollup minute, the newest successful run."""

    latest_event_ms: int | None
    latest_rollup_ms: int | None
    latest_success_ms: int | None


def data_as_of(store: Store) -> DataAsOf:
    with store.reader.connect() as conn:
        latest = _latest_event(conn)
        rollup = conn.execute(select(func.max(rollups.c.minute))).scalar()
        success = conn.execute(select(func.max(source_state.c.last_success_at))).scalar()
    return DataAsOf(latest, int(rollup) if rollup is not None else None, int(success) if success is not None else None)


SOURCE_HEALTH_COLUMNS = {
    "id": "str", "name": "str", "provider": "str", "kind": "str", "format": "str", "enabled": "bool",
    "demo": "bool", "state": "str", "reason": "str", "as_of": "time", "age_s": "float", "cadence_s": "float",
    "last_success": "time", "last_attempt": "time", "last_outcome": "str", "last_error": "str",
    "consecutive_failures": "int", "records": "Int", "newest_record": "time",
}


def _default_is_sensor(source: SourceConfig) -> bool:
    # Which formats are sensor logs is the collectors' knowledge; imported late so the store
    # package itself stays free of collector imports.
    from collectors.registry import is_sensor_format

    return is_sensor_format(source.format)


def source_health(store: Store, config: Config, now_ms: int,
                  is_sensor: Callable[[SourceConfig], bool] | None = None) -> pd.DataFrame:
    """Every configured source (enabled or not) with its freshness state, in config order."""
    is_sensor = is_sensor or _default_is_sensor
    settings = config.settings
    kinds = {s.id: is_sensor(s) for s in config.sources}
    with store.reader.connect() as conn:
        states = {r.source_id: r for r in conn.execute(select(source_state)).all()}
        newest_event = {
            sid: conn.execute(select(func.max(events.c.ts)).where(events.c.sensor == sid)).scalar()
            for sid, sensor in kinds.items() if sensor
        }
    rows = []
    for source in config.sources:
        st = states.get(source.id)
        sensor = kinds[source.id]
        newest = st.newest_record_at if st else None
        if sensor and newest_event.get(source.id) is not None:
            newest = max(int(newest_event[source.id]), newest or 0)
        fresh = source_freshness(
            is_sensor=sensor, last_success_ms=st.last_success_at if st else None,
            last_outcome=st.last_outcome if st else None,
            consecutive_failures=st.consecutive_failures if st else 0, newest_record_ms=newest,
            cadence=source.cadence, late_factor=settings.late_factor, stale_factor=settings.stale_factor,
            now_ms=now_ms, stale_after=source.health.stale_after,
        )
        rows.append((
            source.id, source.name, source.provider, "sensor" if sensor else "feed", source.format, source.enabled,
            source.demo, fresh.state, fresh.reason, fresh.as_of_ms,
            None if fresh.age_ms is None else fresh.age_ms / 1000, source.cadence.total_seconds(),
            st.last_success_at if st else None, st.last_attempt_at if st else None,
            (st.last_outcome or "") if st else "", (st.last_error or "") if st else "",
            st.consecutive_failures if st else 0, st.last_record_count if st else None, newest,
        ))
    df = _frame(rows, SOURCE_HEALTH_COLUMNS)
    df["last_error"] = df["last_error"].fillna("")
    return df


LAST_RUN_COLUMNS = {
    "run_id": "Int", "run_started": "time", "run_finished": "time", "run_outcome": "str", "http_status": "Int",
    "parsed": "Int", "rejected": "Int", "filtered": "Int", "new": "Int", "updated": "Int", "expired": "Int",
    "duplicates": "Int", "flags": "object", "run_error": "str", "rejected_samples": "object", "running_since": "time",
}


def feeds_overview(store: Store, config: Config, now_ms: int,
                   is_sensor: Callable[[SourceConfig], bool] | None = None) -> pd.DataFrame:
    """``source_health`` plus each source's last finished run (counts, flags, error, rejected
    samples) and, when one is in progress, when it started. One row per configured source."""
    health = source_health(store, config, now_ms, is_sensor)
    f = feed_runs.c
    cols = [f.id, f.started_at, f.finished_at, f.outcome, f.http_status, f.parsed, f.rejected, f.filtered,
            f.new, f.updated, f.expired, f.duplicates, f.flags, f.error, f.rejected_samples]
    rows = []
    with store.reader.connect() as conn:
        for source in config.sources:
            last = conn.execute(
                select(*cols).where(f.source_id == source.id, f.outcome != "running")
                .order_by(f.started_at.desc(), f.id.desc()).limit(1)
            ).first()
            running = conn.execute(
                select(func.max(f.started_at)).where(f.source_id == source.id, f.outcome == "running",
                                                     f.started_at >= (last.started_at if last else 0))
            ).scalar()
            if last is None:
                rows.append((None,) * 12 + ([], "", [], running))
                continue
            rows.append((*last[:12], loads(last.flags, []) or [], last.error or "",
                         loads(last.rejected_samples, []) or [], running))
    runs = _frame(rows, LAST_RUN_COLUMNS)
    return pd.concat([health.reset_index(drop=True), runs.reset_index(drop=True)], axis=1)
