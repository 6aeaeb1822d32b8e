"""Run one sensor-log source once: tail, drop folder or single file → line parser → event pipeline.

Every batch of lines is parsed, handed to ``EventPipeline.ingest`` and committed together with the
cursors that cover it, in one write transaction: a crash at any point re-reads at most the
uncommitted batch, and the pipeline's content-hash dedupe turns any re-read into duplicates,
never into a second copy. A run takes what is available now, bounded by ``MAX_BATCHES_PER_RUN``
and ``MAX_RUN_SECONDS`` so one busy source never holds the scheduler thread, and returns; the
scheduler calls it again a few seconds later. Nothing raises out of ``run_sensor``: a crash
becomes a failed run, and whatever was committed before it stays.

Transports:

* ``tail``       a growing file or glob followed across rotation (``collectors.tailer``).
* ``directory``  a drop folder for air-gapped sites: each file matching ``pattern`` is read once,
                 when it has stopped changing (same size and mtime as the previous run saw) and its
                 name is not a temporary one; then it is moved to ``done/`` if the folder is
                 writable, else remembered as done in its cursor.
* ``file``       one file read once per content: read to its end when stable, read again only
                 when it grows or is replaced by other content.
"""
from __future__ import annotations

import glob
import logging
import os
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.runner import CollectContext
from collectors.sensors import LineParser, registry
from collectors.tailer import MAX_LINE_BYTES, TailBatch, Tailer, TailOptions
from collectors.transports import resolve_path
from settings.sources import DirectorySource, FileSource, SourceConfig, TailSource
from store import writes
from store.db import to_ms
from store.records import Event, Rejected
from store.writes import RunSummary

log = logging.getLogger(__name__)

MAX_BATCHES_PER_RUN = 40
MAX_RUN_SECONDS = 15.0
REJECT_SAMPLES = 20
SAMPLE_CHARS = 300
DONE_FOLDER = "done"
# Names a file carries while it is still being copied in (rsync, WinSCP, browsers, our own convention).
UNFINISHED_SUFFIXES = (".part", ".tmp", ".partial", ".filepart", ".crdownload", ".swp")
ONCE_BATCH_LINES = 5000
ONCE_BATCH_BYTES = 4 * 1024 * 1024
LOOKS_CURSOR = "once:looks"
STARTED_CURSOR = "tail:started"


def run_sensor(ctx: CollectContext, source: SourceConfig) -> RunSummary:
    """Run one sensor source once. Never raises: every outcome, a crash included, is a ``feed_runs`` row."""
    summary = RunSummary()
    try:
        with ctx.store.writer.begin() as conn:
            run_id = writes.start_run(conn, source.id, to_ms(ctx.clock()))
            saved = writes.all_cursors(conn, source.id)
    except Exception as exc:  # the store itself is unavailable: nothing to record it in
        log.exception("source %s: cannot start a run", source.id)
        summary.outcome, summary.error = "failed", f"cannot open the store: {exc!r}"
        return summary
    try:
        _SensorRun(ctx, source, summary).run(saved)
    except Exception as exc:  # a bug or a store error must not stop the scheduler; say it loudly
        log.exception("source %s: sensor run crashed", source.id)
        summary.outcome = "failed"
        summary.error = f"internal error: {exc!r}"
    try:
        with ctx.store.writer.begin() as conn:
            writes.finish_run(conn, run_id, source.id, summary, to_ms(ctx.clock()), summary.parsed)
    except Exception:
        log.exception("source %s: cannot record the end of run %s", source.id, run_id)
    return summary


_PIPELINE_LOCK = threading.Lock()


def event_pipeline(ctx: CollectContext) -> Any:
    """The ``EventPipeline`` of this context, built once on first use (it loads GeoIP, assets, scoring).

    Kept on the context because the pipeline is meant to live as long as the process; sensor jobs
    run on two scheduler threads, so it is built under a lock and ``ingest`` calls are serialised
    by ``ingest_lock`` (SQLite serialises the writes anyway; this keeps PostgreSQL honest too).
    """
    with _PIPELINE_LOCK:
        pipeline = ctx.__dict__.get("_event_pipeline")
        if pipeline is None:
            from pipeline.ingest import EventPipeline

            pipeline = EventPipeline(ctx.config, ctx.store)
            ctx.__dict__["_event_pipeline"] = pipeline
            ctx.__dict__["_event_pipeline_lock"] = threading.Lock()
    return pipeline


def feed_stored(ctx: CollectContext) -> None:
    """A feed run of this process stored indicators or advisories: the next sensor batch matches them.

    Without it the pipeline would notice only at its next periodic check, and events ingested in
    between (a demo backfill, a burst) would miss indicators that were already in the store.
    """
    pipeline = ctx.__dict__.get("_event_pipeline")
    if pipeline is not None:
        pipeline.indicators.check_soon()
        pipeline.exposure.check_soon()


def ingest_lock(ctx: CollectContext) -> threading.Lock:
    event_pipeline(ctx)
    return ctx.__dict__["_event_pipeline_lock"]


@dataclass
class _SensorRun:
    ctx: CollectContext
    source: SourceConfig
    summary: RunSummary
    parsers: dict[str, LineParser] = field(default_factory=dict)
    samples: list[dict[str, str]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def run(self, saved: dict[str, Any]) -> None:
        module = registry().get(self.source.format)
        if module is None:
            raise ValueError(f"{self.source.format!r} is not a sensor format")
        self.module = module
        self.options = module.Options.model_validate(self.source.options)
        self.pipeline = event_pipeline(self.ctx)
        transport = self.source.source
        now = to_ms(self.ctx.clock())
        extra_cursors: dict[str, Any] = {}
        mover: _DropFolder | None = None
        if isinstance(transport, TailSource):
            patterns = [str(resolve_path(transport.path, self.ctx.data_dir))]
            options = TailOptions(
                batch_lines=transport.batch_lines, batch_bytes=transport.batch_bytes,
                max_line_bytes=getattr(transport, "max_line_bytes", MAX_LINE_BYTES),
                read_gz=transport.read_rotated_gz,
                first_run=STARTED_CURSOR not in saved, start_at_end=transport.start_at == "end",
            )
            tailer = Tailer(patterns, saved, options, now_ms=now)
            if STARTED_CURSOR not in saved:
                extra_cursors[STARTED_CURSOR] = {"at": now}
        elif isinstance(transport, (DirectorySource, FileSource)):
            if isinstance(transport, DirectorySource):
                folder = resolve_path(transport.path, self.ctx.data_dir)
                patterns, mover = [str(folder / transport.pattern)], _DropFolder(folder)
            else:
                patterns = [str(resolve_path(transport.path, self.ctx.data_dir))]
            looks = _Looks(saved.get(LOOKS_CURSOR) or {}, check_names=mover is not None)
            options = TailOptions(batch_lines=ONCE_BATCH_LINES, batch_bytes=ONCE_BATCH_BYTES,
                                  max_line_bytes=getattr(transport, "max_line_bytes", MAX_LINE_BYTES),
                                  once=True, follow_outside_glob=False)
            tailer = Tailer(patterns, saved, options, now_ms=now, accept_new=looks.settled)
        else:
            raise ValueError(f"source type {transport.type!r} is not read by the sensor runner")

        tailer.scan()
        if mover is not None:
            mover.tidy(tailer)  # done files left behind by a crash between commit and move
        if isinstance(transport, (DirectorySource, FileSource)):
            new_looks = looks.record(patterns) or None
            if new_looks != saved.get(LOOKS_CURSOR):  # a quiet folder writes nothing
                extra_cursors[LOOKS_CURSOR] = new_looks
        deadline = time.monotonic() + MAX_RUN_SECONDS
        batches = 0
        with closing(tailer.batches()) as stream:  # closes the open file even when a batch fails
            for batch in stream:
                self._ingest(tailer, batch, extra_cursors)
                extra_cursors = {}
                if batch.finished and mover is not None:
                    mover.move(tailer, batch.key)
                batches += 1
                if batches >= MAX_BATCHES_PER_RUN or time.monotonic() > deadline:
                    log.info("source %s: %s batches this run; the rest waits for the next", self.source.id, batches)
                    break
        leftover = {**extra_cursors, **tailer.pending_cursors()}
        if leftover:
            with self.ctx.store.writer.begin() as conn:
                self._save_cursors(conn, leftover)

        if not tailer.matched_any and not tailer.states:
            self.flags.append(f"no file matches {', '.join(patterns)}")
        for error in tailer.errors[:5]:
            self.flags.append(f"cannot read {error}")
        if mover is not None and mover.error:
            self.flags.append(mover.error)
        self.summary.rejected_samples = self.samples or None
        self.summary.flags = self.flags or None
        # Unreadable files mean lines are being missed: that is a failure, even if other files were read.
        self.summary.outcome = "failed" if tailer.errors else ("flagged" if self.flags else "ok")
        if tailer.errors:
            self.summary.error = "; ".join(tailer.errors[:5])

    # -- one batch -------------------------------------------------------------------------------

    def _ingest(self, tailer: Tailer, batch: TailBatch, extra_cursors: dict[str, Any]) -> None:
        from pipeline.ingest import gc_paused

        # Parsing allocates an object or more per line; the cyclic collector would keep walking the
        # pipeline's caches meanwhile. Paused for the batch (parse + ingest), restored after it.
        with gc_paused():
            self._ingest_batch(tailer, batch, extra_cursors)

    def _ingest_batch(self, tailer: Tailer, batch: TailBatch, extra_cursors: dict[str, Any]) -> None:
        parser = self._parser(tailer, batch)
        events: list[Event] = []
        for number, text in batch.lines:
            result = parser(text)
            if result is None:
                continue
            if isinstance(result, Rejected):
                self._reject(f"{batch.path}:{number}", result)
            else:
                events.append(result)
        for rejected in batch.rejected:
            self._reject(rejected.location or batch.path, rejected)
        if batch.finished:
            finish = getattr(parser, "finish", None)  # owed rejections, e.g. an object never closed
            if finish is not None:
                for rejected in finish():
                    self._reject(f"{batch.path}:{batch.lines[-1][0] if batch.lines else '-'}", rejected)
            self.parsers.pop(batch.key, None)
        now = to_ms(self.ctx.clock())
        with ingest_lock(self.ctx), self.ctx.store.writer.begin() as conn:
            if events:
                result = self.pipeline.ingest(conn, events, now)
                self.summary.new += result.accepted
                self.summary.duplicates += result.duplicates
                if result.newest_ts is not None:
                    self.summary.newest_record_at = max(self.summary.newest_record_at or 0, result.newest_ts)
            self._save_cursors(conn, {**extra_cursors, **batch.cursors})
        self.summary.parsed += len(events)
        self.summary.bytes = (self.summary.bytes or 0) + batch.bytes

    def _parser(self, tailer: Tailer, batch: TailBatch) -> LineParser:
        parser = self.parsers.get(batch.key)
        if parser is None:
            parser = self.module.make_parser(self.source.id, self.options)
            if batch.opened_at > 0:
                # Resuming mid-file: the parser has not seen the header lines it keeps state from.
                for line in tailer.preamble(batch.key, parser.preamble, batch.opened_at):
                    parser(line)
            self.parsers[batch.key] = parser
        return parser

    def _reject(self, where: str, rejected: Rejected) -> None:
        self.summary.rejected += 1
        if len(self.samples) < REJECT_SAMPLES:
            self.samples.append({"where": where, "reason": rejected.reason, "sample": rejected.sample[:SAMPLE_CHARS]})

    def _save_cursors(self, conn: Any, cursors: dict[str, Any]) -> None:
        now = to_ms(self.ctx.clock())
        for key, value in cursors.items():
            if value is None:
                writes.delete_cursor(conn, self.source.id, key)
            else:
                writes.set_cursor(conn, self.source.id, key, value, now)


class _Looks:
    """Size and mtime of files not yet started, as the previous run saw them: unchanged means settled."""

    def __init__(self, previous: dict[str, Any], *, check_names: bool):
        self.previous = previous
        self.check_names = check_names  # a drop folder's temporary names; a configured file is taken as named

    def _temporary(self, path: str) -> bool:
        name = os.path.basename(path)
        return self.check_names and (name.startswith(".") or name.lower().endswith(UNFINISHED_SUFFIXES))

    @staticmethod
    def _look(path: str) -> list[int] | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        return [info.st_size, info.st_mtime_ns]

    def settled(self, path: str) -> bool:
        if self._temporary(path):
            return False
        look = self._look(path)
        return look is not None and self.previous.get(path) == look

    def record(self, patterns: list[str]) -> dict[str, list[int]]:
        """This run's looks at every candidate, to compare with on the next run."""
        looks: dict[str, list[int]] = {}
        for pattern in patterns:
            for path in glob.glob(pattern):
                if self._temporary(path) or not os.path.isfile(path):
                    continue
                look = self._look(path)
                if look is not None:
                    looks[path] = look
        return looks


class _DropFolder:
    """Moves fully ingested files to ``done/``; when it cannot, their cursor keeps them done."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.error: str | None = None

    def move(self, tailer: Tailer, key: str) -> None:
        state = tailer.states.get(key)
        if state is None or not state.done or not os.access(self.folder, os.W_OK):
            return  # read-only drop folder: the done state in the cursor is the record
        source = Path(state.path)
        target_dir = self.folder / DONE_FOLDER
        try:
            target_dir.mkdir(exist_ok=True)
            target = target_dir / source.name
            for number in range(1, 1000):  # never overwrite an earlier delivery of the same name
                if not target.exists():
                    break
                target = target_dir / f"{source.name}.{number}"
            os.rename(source, target)
        except OSError as exc:
            self.error = f"cannot move {source.name} to {DONE_FOLDER}/: {exc.strerror or exc}; kept as done in its cursor"
            return
        tailer.forget(key)

    def tidy(self, tailer: Tailer) -> None:
        for key, state in list(tailer.states.items()):
            if state.done and key in tailer.live:
                self.move(tailer, key)

