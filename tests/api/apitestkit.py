"""Helpers for the read-API tests (not tests): the config folder's files, a movable clock, run records."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from pipeline_testkit import write_config

from store.db import Store
from store.writes import RunSummary, finish_run, start_run

SETTINGS_YAML = """
no_data_banner_after: 10m
incidents: {group_by: [signature, src_ip, site], window: 1h}
"""

FEEDS = {
    "ids-1.yaml": """
id: ids-1
name: Backbone IDS
provider: test
source: {type: tail, path: ids-1.json}
schedule: {every: 5s}
format: suricata-eve
health: {max_age: 1m}
""",
    "feed-1.yaml": """
id: feed-1
name: Test blocklist
provider: test
tlp: amber
confidence: 90
source: {type: file, path: feed-1.txt}
schedule: {every: 1h}
format: lines
""",
    "old-feed.yaml": """
id: old-feed
name: Retired feed
provider: test
enabled: false
source: {type: file, path: old.txt}
schedule: {every: 1h}
format: lines
""",
}


def write_api_config(folder: Path) -> Path:
    """The pipeline tests' inventory with ``SETTINGS_YAML`` and the ``FEEDS`` sources, in ``folder``."""
    write_config(folder, settings_yaml=SETTINGS_YAML)
    (folder / "feeds").mkdir()
    for name, text in FEEDS.items():
        (folder / "feeds" / name).write_text(text)
    return folder


class Clock:
    """A fixed clock the test can move; returns an aware ``datetime`` like ``Runtime.clock``."""

    def __init__(self, ms: int):
        self.ms = ms

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, tz=timezone.utc)


def record_run(store: Store, source_id: str, at_ms: int, outcome: str = "ok", error: str | None = None,
               records: int | None = None) -> None:
    """One finished collection run, through the collectors' own bookkeeping."""
    with store.writer.begin() as conn:
        run_id = start_run(conn, source_id, at_ms - 1000)
        finish_run(conn, run_id, source_id, RunSummary(outcome=outcome, error=error), at_ms, record_count=records)
