"""The coordinator: run one source once, turn every failure into a recorded run, keep the last good data.

Feed sources: transport → format parser → indicator/advisory upsert, all records and the fetch
cursor committed together; a failed, empty or suspiciously small run never expires what the
last good run stored. Sensor sources are handed to ``collectors.sensor_runner``.
"""
from __future__ import annotations

import logging
import traceback
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from collectors import registry as formats
from collectors import transports
from collectors.formats.common import FormatError
from collectors.transports import FetchContext, FetchError
from collectors.transports.secrets import redact
from settings.loader import Config
from settings.sources import SourceConfig
from store import run_lock, writes
from store.db import Store, now_ms, to_ms
from store.records import Advisory, Indicator, Rejected
from store.writes import RunSummary

log = logging.getLogger(__name__)

WRITE_CHUNK = 5000
REJECT_SAMPLES = 20
BREAKER_AFTER_FAILURES = 5
BREAKER_MAX_OPEN = timedelta(hours=24)


@dataclass
class CollectContext:
    store: Store
    config: Config
    data_dir: Path
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))

    def fetch_context(self) -> FetchContext:
        return FetchContext(data_dir=self.data_dir, now=self.clock)


def run_source(ctx: CollectContext, source: SourceConfig) -> RunSummary:
    """Run one source once. Never raises: every outcome, crash included, becomes a ``feed_runs`` row.

    On PostgreSQL the run holds the source's advisory lock (``store.run_lock``): when another
    collector process is running the same source, this run is recorded as skipped and fetches nothing.
    """
    with ExitStack() as stack:
        try:
            held = stack.enter_context(run_lock.source_run_lock(ctx.store.writer, source.id))
        except Exception as exc:  # the store is unreachable: nothing to record it in, never raise into the scheduler
            log.exception("source %s: cannot take the run lock", source.id)
            return RunSummary(outcome="failed", error=f"cannot take the run lock: {exc!r}")
        if not held:
            return _skip_locked(ctx, source)
        if formats.is_sensor_format(source.format):
            from collectors.sensor_runner import run_sensor

            return run_sensor(ctx, source)
        return run_feed(ctx, source)


def _skip_locked(ctx: CollectContext, source: SourceConfig) -> RunSummary:
    summary = RunSummary(outcome="skipped", error="another collector process is running this source")
    log.info("source %s: skipped, %s", source.id, summary.error)
    with ctx.store.writer.begin() as conn:
        run_id = writes.start_run(conn, source.id, to_ms(ctx.clock()))
    _finish(ctx, run_id, source, summary, None)
    return summary


def run_feed(ctx: CollectContext, source: SourceConfig) -> RunSummary:
    started = to_ms(ctx.clock())
    with ctx.store.writer.begin() as conn:
        run_id = writes.start_run(conn, source.id, started)
        cursor = writes.get_cursor(conn, source.id, "fetch", {}) or {}
        state = writes.source_state_row(conn, source.id)
    summary = RunSummary()
    record_count: int | None = None
    if state is not None and state.breaker_open_until and state.breaker_open_until > started:
        summary.outcome = "skipped"
        reason = (f"circuit breaker open after {state.consecutive_failures} failures in a row"
                  if state.consecutive_failures >= BREAKER_AFTER_FAILURES else "the provider asked us to wait (Retry-After)")
        summary.error = (f"{reason}; "
                         f"next try after {datetime.fromtimestamp(state.breaker_open_until / 1000, timezone.utc):%Y-%m-%d %H:%M} UTC")
        _finish(ctx, run_id, source, summary, None)
        return summary
    try:
        transport = transports.registry()[source.source.type]
        fetched = transport.fetch(source, cursor, ctx.fetch_context())
    except FetchError as exc:
        summary.outcome, summary.error = "failed", str(exc)
        summary.http_status, summary.bytes = exc.http_status, exc.bytes_read
        _finish(ctx, run_id, source, summary, None, retry_after=exc.retry_after)
        return summary
    except Exception as exc:  # a transport bug must not stop the scheduler; record it loudly
        log.exception("source %s: transport crashed", source.id)
        summary.outcome, summary.error = "failed", f"internal error in transport: {exc!r}"
        _finish(ctx, run_id, source, summary, None, trace=traceback.format_exc())
        return summary
    summary.http_status, summary.bytes, summary.sha256 = fetched.http_status, fetched.bytes, fetched.sha256
    try:
        if fetched.not_modified:
            summary.outcome = "unchanged"
            record_count = state.last_record_count if state is not None else None
            now = to_ms(ctx.clock())
            with ctx.store.writer.begin() as conn:
                writes.extend_ttl(conn, source.id, now, _ttl_ms(source))
                writes.set_cursor(conn, source.id, "fetch", fetched.cursor, now)
        else:
            record_count = _parse_and_store(ctx, source, run_id, fetched, summary)
    except FormatError as exc:
        summary.outcome, summary.error = "failed", f"payload rejected: {exc}"
        record_count = None
    except Exception as exc:
        log.exception("source %s: parse/store crashed", source.id)
        summary.outcome, summary.error = "failed", f"internal error while parsing: {exc!r}"
        record_count = None
    finally:
        fetched.close()
    _finish(ctx, run_id, source, summary, record_count)
    return summary


def _ttl_ms(source: SourceConfig) -> int | None:
    return int(source.lifecycle.ttl.total_seconds() * 1000) if source.lifecycle.ttl else None


def _parse_and_store(ctx: CollectContext, source: SourceConfig, run_id: int, fetched: Any,
                     summary: RunSummary) -> int:
    module = formats.format_module(source.format)
    options = module.Options.model_validate(source.options)
    now = to_ms(ctx.clock())
    ttl_ms = _ttl_ms(source)
    samples: list[dict[str, str]] = []
    indicators: list[Indicator] = []
    advisories: list[Advisory] = []
    others: list[Any] = []
    counted = 0
    # One transaction: the records and the cursor that covers them land together or not at all.
    with ctx.store.writer.begin() as conn:
        def flush() -> None:
            if indicators:
                counts = writes.upsert_indicators(conn, source.id, indicators, run_id=run_id, now=now,
                                                  ttl_ms=ttl_ms, detect=source.detect)
                summary.new += counts.new
                summary.updated += counts.updated
                summary.expired += counts.expired
                indicators.clear()
            if advisories:
                counts = writes.upsert_advisories(conn, source.id, advisories, run_id=run_id)
                summary.new += counts.new
                summary.updated += counts.updated
                advisories.clear()
            if others:
                counts = writes.upsert_techniques(conn, source.id, others)
                summary.new += counts.new
                summary.updated += counts.updated
                others.clear()

        for payload in fetched.payloads:
            for record in module.parse(payload.stream, source, options):
                if isinstance(record, Rejected):
                    if record.reason.startswith("filtered:"):
                        summary.filtered += 1
                        continue
                    if record.reason.startswith("skipped:"):
                        summary.skipped += 1
                        continue
                    summary.rejected += 1
                    if len(samples) < REJECT_SAMPLES:
                        samples.append({"where": f"{payload.name} {record.location}".strip(),
                                        "reason": record.reason, "sample": record.sample})
                    continue
                summary.parsed += 1
                counted += 1
                if isinstance(record, Indicator):
                    summary.not_matchable += not record.matchable
                    indicators.append(record)
                elif isinstance(record, Advisory):
                    advisories.append(record)
                else:
                    others.append(record)
                if len(indicators) + len(advisories) + len(others) >= WRITE_CHUNK:
                    flush()
        flush()
        summary.rejected_samples = samples or None
        summary.flags = (_health_flags(source, counted, conn, complete_snapshot=fetched.complete_snapshot) or []) \
            + fetched.notes or None
        summary.outcome = "flagged" if summary.flags else "ok"
        # A suspicious run keeps what the last good run stored: no expiry on its word.
        if fetched.complete_snapshot and source.lifecycle.on_absent == "expire" and not summary.flags:
            summary.expired += writes.expire_absent(conn, source.id, run_id, now)
        summary.expired += writes.expire_by_ttl(conn, now, source.id)
        writes.set_cursor(conn, source.id, "fetch", fetched.cursor, now)
    return counted


def _health_flags(source: SourceConfig, count: int, conn: Any, *, complete_snapshot: bool) -> list[str] | None:
    flags = []
    if count < source.health.min_records:
        flags.append(f"only {count} records, fewer than min_records {source.health.min_records}")
    state = writes.source_state_row(conn, source.id)
    previous = state.last_record_count if state is not None else None
    # An incremental fetch (TAXII, MISP, drop folder) lists only what changed: a small run is normal.
    if complete_snapshot and previous and count < previous * (1 - source.health.max_drop_pct / 100):
        drop = 100 * (previous - count) / previous
        flags.append(f"{count} records, {drop:.0f}% fewer than the last run's {previous} "
                     f"(max_drop_pct {source.health.max_drop_pct:g})")
    return flags or None


def _finish(ctx: CollectContext, run_id: int, source: SourceConfig, summary: RunSummary,
            record_count: int | None, *, retry_after: float | None = None, trace: str | None = None) -> None:
    if trace:
        summary.error = f"{summary.error}\n{trace[-2000:]}"
    if summary.error:
        summary.error = redact(summary.error)
    now = to_ms(ctx.clock())
    with ctx.store.writer.begin() as conn:
        if summary.outcome == "skipped":
            conn.execute(writes.update(writes.feed_runs).where(writes.feed_runs.c.id == run_id)
                         .values(finished_at=now, **summary.as_row()))
            return
        writes.finish_run(conn, run_id, source.id, summary, now, record_count)
        state = writes.source_state_row(conn, source.id)
        if summary.outcome == "failed" and state.consecutive_failures >= BREAKER_AFTER_FAILURES:
            backoff = source.cadence * 2 ** (state.consecutive_failures - BREAKER_AFTER_FAILURES)
            backoff = min(backoff, BREAKER_MAX_OPEN)
            if retry_after:
                backoff = max(backoff, timedelta(seconds=retry_after))
            writes.open_breaker(conn, source.id, now + int(backoff.total_seconds() * 1000))
        elif summary.outcome == "failed" and retry_after:
            # The provider said when to come back: honour it even before the breaker would open.
            writes.open_breaker(conn, source.id, now + int(retry_after * 1000))
        elif summary.outcome != "failed":
            writes.open_breaker(conn, source.id, None)
