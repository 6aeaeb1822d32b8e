"""APScheduler jobs: one per enabled source, plus indicator expiry, exposure findings and the demo writer.

Every job runs ``runner.run_source``, which never raises, with ``max_instances=1`` and coalescing,
so a slow feed never runs twice at once and a backlog of missed runs collapses into one. Feeds
and sensors get separate thread pools so a hanging feed download never delays the sensors.

Exposure findings (``pipeline.exposure_findings``: advisories matched to the inventory) are
recomputed every ``EXPOSURE_EVERY`` and right after each successful run of a KEV or CSAF source.
"""
from __future__ import annotations

import logging
from datetime import timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from collectors import registry as formats
from collectors.runner import CollectContext, run_source
from collectors.sensor_runner import feed_stored
from pipeline.exposure_findings import RECOMPUTE_EVERY_MS, Counts, recompute_exposures
from settings.sources import SourceConfig
from store import writes
from store.db import to_ms

log = logging.getLogger(__name__)

EXPIRY_EVERY = timedelta(minutes=10)
DEMO_EVERY = timedelta(seconds=5)
START_STAGGER = timedelta(seconds=2)
EXPOSURE_EVERY = timedelta(milliseconds=RECOMPUTE_EVERY_MS)
#: Formats whose runs change the advisories, after which exposure findings are recomputed at once.
ADVISORY_FORMATS = frozenset({"kev", "csaf"})


def build_scheduler(ctx: CollectContext, *, blocking: bool = False) -> BaseScheduler:
    scheduler_class = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = scheduler_class(
        executors={"feeds": ThreadPoolExecutor(4), "sensors": ThreadPoolExecutor(2), "default": ThreadPoolExecutor(1)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
        timezone=timezone.utc,
    )
    now = ctx.clock()
    demo = demo_writer(ctx)
    if demo is not None:
        scheduler.add_job(demo.tick, IntervalTrigger(seconds=DEMO_EVERY.total_seconds()), id="demo-writer",
                          name="demo writer", next_run_time=now)
    for position, source in enumerate(_ordered(ctx.config.enabled_sources)):
        executor = "sensors" if formats.is_sensor_format(source.format) else "feeds"
        scheduler.add_job(run_scheduled, _trigger(source), args=(ctx, source), id=f"source:{source.id}",
                          name=source.name, executor=executor,
                          next_run_time=now + START_STAGGER * (position + 1))
    scheduler.add_job(expire_indicators, IntervalTrigger(seconds=EXPIRY_EVERY.total_seconds()), args=(ctx,),
                      id="expire-indicators", name="indicator expiry")
    # Once soon after start (advisories stored by an earlier process), then every EXPOSURE_EVERY.
    scheduler.add_job(recompute_exposures_job, IntervalTrigger(seconds=EXPOSURE_EVERY.total_seconds()), args=(ctx,),
                      id="recompute-exposures", name="exposure findings",
                      next_run_time=now + START_STAGGER * (len(ctx.config.enabled_sources) + 1))
    return scheduler


def _ordered(sources: list[SourceConfig]) -> list[SourceConfig]:
    """Demo sources first (their local blocklist before their sensor, so the demo's history is matched
    against it), then sensors, so a new install shows data before slow feeds have answered."""
    def key(s: SourceConfig) -> tuple[bool, bool, str]:
        sensor = formats.is_sensor_format(s.format)
        return (not s.demo, sensor if s.demo else not sensor, s.id)
    return sorted(sources, key=key)


def _trigger(source: SourceConfig) -> IntervalTrigger | CronTrigger:
    schedule = source.schedule
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=timezone.utc)
    # Jitter may only delay a run, never bring it closer than the provider's floor.
    headroom = max(schedule.every - schedule.min_interval, timedelta(0))
    jitter = min(schedule.jitter, headroom).total_seconds()
    return IntervalTrigger(seconds=schedule.every.total_seconds(), jitter=int(jitter) or None)


def run_scheduled(ctx: CollectContext, source: SourceConfig) -> None:
    """A scheduled run, skipped when the last attempt is closer than ``min_interval`` (cron, restarts)."""
    with ctx.store.reader.connect() as conn:
        state = writes.source_state_row(conn, source.id)
    now = to_ms(ctx.clock())
    floor_ms = int(source.schedule.min_interval.total_seconds() * 1000)
    if state is not None and state.last_attempt_at and now - state.last_attempt_at < floor_ms:
        log.info("source %s: skipped, last attempt less than min_interval ago", source.id)
        return
    summary = run_source(ctx, source)
    log.info("source %s: %s parsed=%s new=%s rejected=%s%s", source.id, summary.outcome, summary.parsed,
             summary.new, summary.rejected, f" error={summary.error}" if summary.error else "")
    if not formats.is_sensor_format(source.format) and summary.outcome in ("ok", "flagged"):
        feed_stored(ctx)  # new, changed or withdrawn indicators/advisories
    if source.format in ADVISORY_FORMATS and summary.outcome in ("ok", "flagged"):
        try:
            recompute_exposures_job(ctx)
        except SQLAlchemyError:  # the run itself is recorded; the periodic job tries again
            log.exception("source %s: recomputing exposure findings failed", source.id)


def recompute_exposures_job(ctx: CollectContext) -> Counts:
    """Match the stored advisories against the inventory again (``pipeline.exposure_findings``)."""
    return recompute_exposures(ctx.store, ctx.config.inventory, to_ms(ctx.clock()))


def expire_indicators(ctx: CollectContext) -> int:
    with ctx.store.writer.begin() as conn:
        expired = writes.expire_by_ttl(conn, to_ms(ctx.clock()))
    if expired:
        feed_stored(ctx)
    return expired


def demo_writer(ctx: CollectContext):
    """The demo writer when a ``demo: true`` source is enabled, else ``None``."""
    if not ctx.config.demo_enabled:
        return None
    from collectors.demo import DemoWriter

    return DemoWriter(ctx.config, ctx.data_dir)
