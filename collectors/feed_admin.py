"""Admin helpers behind ``app.py feeds``: list sources with their health, dry-run a source file."""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collectors import registry as formats
from collectors import transports
from collectors.transports import FetchContext, FetchError
from settings.loader import load_source_file


@dataclass
class TestReport:
    file: str
    source_id: str | None = None
    format: str | None = None
    records: int = 0
    rejected: int = 0
    filtered: int = 0
    not_matchable: int = 0
    bytes: int | None = None
    http_status: int | None = None
    errors: list[str] = field(default_factory=list)
    first_records: list[dict[str, Any]] = field(default_factory=list)
    rejected_samples: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_text(self) -> str:
        lines = [f"{self.file}: source {self.source_id or '?'} format {self.format or '?'}"]
        if self.http_status is not None or self.bytes is not None:
            lines.append(f"  fetched: status {self.http_status if self.http_status is not None else '-'}, "
                         f"{self.bytes if self.bytes is not None else '?'} bytes")
        lines.append(f"  records {self.records}, rejected {self.rejected}, filtered {self.filtered}, "
                     f"not matchable {self.not_matchable}")
        for record in self.first_records:
            lines.append("  • " + json.dumps(record, default=str, ensure_ascii=False)[:240])
        for sample in self.rejected_samples:
            lines.append(f"  ✗ {sample['where']}: {sample['reason']}")
        for error in self.errors:
            lines.append(f"  error: {error}")
        lines.append("  nothing was written (dry run)")
        return "\n".join(lines)


def _record_dict(record: Any) -> dict[str, Any]:
    data = asdict(record) if is_dataclass(record) else dict(record.__dict__)
    data.pop("raw", None)
    return {k: v for k, v in data.items() if v not in (None, (), [], {}, "")}


def test_source_file(path: Path, data_dir: Path, *, show: int = 5) -> TestReport:
    """Fetch, parse and map one source file without writing anything to the store."""
    report = TestReport(file=str(path))
    source, problems = load_source_file(path)
    if source is None:
        report.errors = [str(p) for p in problems]
        return report
    report.source_id, report.format = source.id, source.format
    module = formats.format_module(source.format)
    if formats.is_sensor_format(source.format):
        report.errors.append("sensor sources are tested with `app.py ingest --format ... FILE` on a sample log")
        return report
    # A scratch data folder keeps drop-folder or cursor side effects away from the real one.
    with tempfile.TemporaryDirectory(prefix="watchfloor-feed-test-") as scratch:
        ctx = FetchContext(data_dir=data_dir if source.source.type == "file" else Path(scratch),
                           now=lambda: datetime.now(timezone.utc))
        try:
            fetched = transports.registry()[source.source.type].fetch(source, {}, ctx)
        except FetchError as exc:
            report.errors.append(str(exc))
            report.http_status = exc.http_status
            return report
        report.http_status, report.bytes = fetched.http_status, fetched.bytes
        options = module.Options.model_validate(source.options)
        try:
            for payload in fetched.payloads:
                for record in module.parse(payload.stream, source, options):
                    kind = type(record).__name__
                    if kind == "Rejected":
                        if record.reason.startswith("filtered:"):
                            report.filtered += 1
                            continue
                        report.rejected += 1
                        if len(report.rejected_samples) < show:
                            report.rejected_samples.append(
                                {"where": f"{payload.name} {record.location}".strip(), "reason": record.reason})
                        continue
                    report.records += 1
                    report.not_matchable += getattr(record, "matchable", True) is False
                    if len(report.first_records) < show:
                        report.first_records.append(_record_dict(record))
        except Exception as exc:  # FormatError and friends: the admin needs the words, not a traceback
            report.errors.append(f"payload rejected: {exc}")
        finally:
            fetched.close()
    return report


def list_sources(runtime: Any) -> list[dict[str, Any]]:
    """Every configured source with its freshness state and last run, as plain JSON-ready values."""
    from store.queries import source_health

    frame = source_health(runtime.store, runtime.config, int(runtime.clock().timestamp() * 1000))
    rows = []
    for record in frame.to_dict("records"):
        rows.append({key: _plain(value) for key, value in record.items()})
    return rows


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "isoformat"):
        return None if str(value) == "NaT" else value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def format_source_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no sources configured"
    header = f"{'source':34} {'kind':6} {'state':10} {'last attempt (UTC)':19} {'outcome':9} {'records':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        attempt = (row.get("last_attempt") or "never")[:19].replace("T", " ")
        records = row.get("records")
        enabled = "" if row.get("enabled") else "  (disabled)"
        lines.append(f"{row['id'][:34]:34} {row['kind']:6} {row['state']:10} {attempt:19} "
                     f"{row.get('last_outcome') or '-':9} {records if records is not None else '-':>8}{enabled}")
        if row.get("last_error"):
            lines.append(f"{'':34} error: {str(row['last_error']).splitlines()[0][:150]}")
    return "\n".join(lines)
