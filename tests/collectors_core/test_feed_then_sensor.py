"""A feed run in the collector makes the very next sensor batch match what it stored.

The pipeline checks the store for new indicators only every few seconds; when a feed of the same
process has just written some, waiting for that check would let a burst of events through unmatched.
The clock here stands still, so only the scheduler's hand-over can make the second batch match.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml
from sqlalchemy import select

from collectors import scheduler
from collectors.runner import CollectContext
from collectors.sensor_runner import run_sensor
from settings.loader import load_config
from store.db import Store
from store.schema import events

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tailing"))
from eve_writer_proc import eve_line as documentation_eve_line  # noqa: E402  (alerts from 203.0.113.7)

# A public address: feeds drop documentation ranges such as 203.0.113.0/24 as unmatchable.
ATTACKER = "185.220.101.47"


def eve_line(seq: int) -> str:
    return documentation_eve_line(seq).replace('"203.0.113.7"', f'"{ATTACKER}"')
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)  # after every eve_line timestamp


def write_sources(config_dir: Path) -> None:
    feeds = config_dir / "feeds"
    feeds.mkdir(parents=True)
    (feeds / "eve.yaml").write_text(yaml.safe_dump({
        "id": "eve", "name": "EVE", "format": "suricata-eve",
        "source": {"type": "tail", "path": "eve.json", "start_at": "beginning"}, "schedule": {"every": "5s"}}))
    (feeds / "list.yaml").write_text(yaml.safe_dump({
        "id": "list", "name": "Local blocklist", "format": "lines", "detect": True, "confidence": 80,
        "source": {"type": "file", "path": "list.txt"}, "schedule": {"every": "1m"}}))


def matched_sequences(ctx: CollectContext) -> dict[int, bool]:
    with ctx.store.reader.connect() as conn:
        rows = conn.execute(select(events.c.signature_id, events.c.indicator_ids))
        return {int(row.signature_id): row.indicator_ids is not None for row in rows}


def test_events_after_a_feed_run_match_its_indicators_at_once(tmp_path: Path) -> None:
    write_sources(tmp_path / "config")
    config = load_config(tmp_path / "config")
    assert not config.problems, config.problems
    data = tmp_path / "data"
    data.mkdir()
    ctx = CollectContext(store=Store.open(data), config=config, data_dir=data, clock=lambda: NOW)
    log = data / "eve.json"
    log.write_text("".join(eve_line(n) + "\n" for n in range(0, 3)))
    run_sensor(ctx, config.source("eve"))                       # the pipeline is built, nothing listed yet

    (data / "list.txt").write_text(ATTACKER + "\n")
    scheduler.run_scheduled(ctx, config.source("list"))
    with log.open("a") as out:
        out.write("".join(eve_line(n) + "\n" for n in range(3, 6)))
    run_sensor(ctx, config.source("eve"))

    assert matched_sequences(ctx) == {0: False, 1: False, 2: False, 3: True, 4: True, 5: True}


def test_demo_blocklist_is_collected_before_the_demo_sensor_and_sensors_before_feeds() -> None:
    from settings.sources import SourceConfig

    def src(id: str, fmt: str, demo: bool) -> SourceConfig:
        return SourceConfig.model_validate({"id": id, "name": id, "format": fmt, "demo": demo,
                                            "source": {"type": "file", "path": "x"}, "schedule": {"every": "1m"}})

    ordered = scheduler._ordered([src("feed", "lines", False), src("sensor", "suricata-eve", False),
                                  src("demo-sensor", "suricata-eve", True), src("demo-list", "lines", True)])
    assert [s.id for s in ordered] == ["demo-list", "demo-sensor", "sensor", "feed"]
