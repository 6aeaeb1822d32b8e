"""Import sensor log files once: the backend of ``python app.py ingest --format FORMAT PATH... [--json]``.

For backfills and manual imports (a USB stick of old ``eve.json.*.gz`` from a substation). Each
file, plain or gzip (told by its magic bytes, not its name), is streamed in bounded batches
through the format's line parser and the same ``EventPipeline`` as the live collectors, one
transaction per batch. A malformed line is reported with its file, line number and reason and
never stops the rest; a file that cannot be opened is reported and the next one is read.
Importing the same file twice stores nothing new: the second import counts duplicates.

Imports keep no cursors and record no ``feed_runs`` row: they are not a source with a cadence, so
they must not make a silent feed look fresh.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.runner import CollectContext
from collectors.sensor_runner import event_pipeline, ingest_lock
from collectors.sensors import registry
from collectors.tailer import MAX_LINE_BYTES, TailOptions, iter_file_lines
from store.db import to_ms
from store.records import Event, Rejected

BATCH_LINES = 5000
BATCH_BYTES = 4 * 1024 * 1024
MAX_REJECT_DETAILS = 50
SAMPLE_CHARS = 200


@dataclass
class FileReport:
    path: str
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    bytes: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    """What an import did. ``skipped`` counts lines the parser deliberately passed over (headers,
    blank lines, ``stats`` records); ``rejected`` counts lines it could not use."""

    format: str
    sensor_id: str
    files: list[FileReport] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    incidents_new: int = 0
    incidents_updated: int = 0
    newest_ts: int | None = None
    seconds: float = 0.0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_files(self) -> int:
        return sum(1 for f in self.files if f.error)

    @property
    def exit_code(self) -> int:
        """0 when every file was read (rejected lines are reported, not fatal); 1 when a file was not."""
        return 1 if self.failed_files else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "sensor_id": self.sensor_id,
            "accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
            "skipped": self.skipped, "incidents_new": self.incidents_new,
            "incidents_updated": self.incidents_updated, "newest_ts": self.newest_ts,
            "seconds": round(self.seconds, 3), "failed_files": self.failed_files,
            "files": [vars(f).copy() for f in self.files],
            "reject_reasons": dict(self.reject_reasons.most_common()),
            "rejects": list(self.rejects),
        }


def ingest_paths(ctx: CollectContext, format_name: str, paths: Iterable[str | Path],
                 sensor_id: str = "manual-import", *, options: dict[str, Any] | None = None,
                 batch_lines: int = BATCH_LINES, batch_bytes: int = BATCH_BYTES,
                 max_line_bytes: int = MAX_LINE_BYTES) -> IngestReport:
    """Import every file (a folder stands for the files in it, sorted); raises ``ValueError`` for an
    unknown format or invalid options, before anything is read."""
    formats = registry()
    module = formats.get(format_name)
    if module is None:
        raise ValueError(f"unknown sensor format {format_name!r}; known: {', '.join(sorted(formats))}")
    parsed_options = module.Options.model_validate(options or {})
    pipeline = event_pipeline(ctx)
    tail_options = TailOptions(batch_lines=batch_lines, batch_bytes=batch_bytes, max_line_bytes=max_line_bytes)
    report = IngestReport(format=format_name, sensor_id=sensor_id)
    started = time.monotonic()
    for path in _expand(paths):
        file_report = FileReport(path=str(path))
        report.files.append(file_report)
        parser = module.make_parser(sensor_id, parsed_options)  # one per file: headers are per file
        try:
            for batch in iter_file_lines(path, tail_options):
                events: list[Event] = []
                for number, text in batch.lines:
                    result = parser(text)
                    if result is None:
                        file_report.skipped += 1
                    elif isinstance(result, Rejected):
                        _reject(report, file_report, number, result)
                    else:
                        events.append(result)
                for rejected in batch.rejected:
                    _reject(report, file_report, _line_of(rejected), rejected)
                if batch.finished:
                    for rejected in getattr(parser, "finish", lambda: [])():
                        _reject(report, file_report, batch.lines[-1][0] if batch.lines else None, rejected)
                file_report.lines += len(batch.lines)
                file_report.bytes += batch.bytes
                if events:
                    with ingest_lock(ctx), ctx.store.writer.begin() as conn:
                        result = pipeline.ingest(conn, events, to_ms(ctx.clock()))
                    file_report.accepted += result.accepted
                    file_report.duplicates += result.duplicates
                    report.incidents_new += result.incidents_new
                    report.incidents_updated += result.incidents_updated
                    if result.newest_ts is not None:
                        report.newest_ts = max(report.newest_ts or 0, result.newest_ts)
        except OSError as exc:
            file_report.error = exc.strerror or str(exc)
        report.accepted += file_report.accepted
        report.duplicates += file_report.duplicates
        report.skipped += file_report.skipped
    report.seconds = time.monotonic() - started
    return report


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            expanded += sorted(p for p in path.iterdir() if p.is_file())
        else:
            expanded.append(path)  # a missing file is reported by the read, with the system's words
    return expanded


def _line_of(rejected: Rejected) -> int | None:
    _, _, number = rejected.location.rpartition(":")
    return int(number) if number.isdigit() else None


def _reject(report: IngestReport, file_report: FileReport, line: int | None, rejected: Rejected) -> None:
    file_report.rejected += 1
    report.rejected += 1
    report.reject_reasons[_reason_kind(rejected.reason)] += 1
    if len(report.rejects) < MAX_REJECT_DETAILS:
        report.rejects.append({"file": file_report.path, "line": line, "reason": rejected.reason,
                               "sample": rejected.sample[:SAMPLE_CHARS]})


def _reason_kind(reason: str) -> str:
    """Group reasons that differ only in their detail: 'invalid JSON: Expecting value (column 3)' → 'invalid JSON'."""
    head, sep, _ = reason.partition(":")
    return head if sep else reason


def format_report(report: IngestReport) -> str:
    """The report as a person reads it at a terminal."""
    lines = [
        f"{report.format} import as sensor {report.sensor_id!r}: {len(report.files)} file(s) in {report.seconds:.1f} s",
        f"  stored {report.accepted} new event(s), {report.duplicates} duplicate(s) already stored, "
        f"{report.rejected} rejected line(s), {report.skipped} skipped line(s)",
    ]
    if report.incidents_new or report.incidents_updated:
        lines.append(f"  incidents: {report.incidents_new} new, {report.incidents_updated} updated")
    for item in report.files:
        status = f"ERROR {item.error}" if item.error else (
            f"{item.lines} lines: {item.accepted} new, {item.duplicates} duplicates, "
            f"{item.rejected} rejected, {item.skipped} skipped")
        lines.append(f"  {item.path}: {status}")
    if report.reject_reasons:
        lines.append("rejected lines by reason:")
        lines += [f"  {count:>7}  {reason}" for reason, count in report.reject_reasons.most_common()]
        shown = report.rejects[:20]
        lines.append(f"first {len(shown)} rejected line(s):")
        lines += [f"  {r['file']}:{r['line'] if r['line'] is not None else '?'}: {r['reason']}" for r in shown]
    return "\n".join(lines)

