"""Helpers for the tailing tests: a real config folder and store, the writer process, counting lines.

Everything is real: the source is a YAML file loaded by ``settings.loader``, the store is a SQLite
file, the pipeline is ``pipeline.ingest.EventPipeline`` (through ``run_sensor``), and the writer
and the crash-test collector are separate Python processes.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from collectors.runner import CollectContext
from collectors.sensor_runner import run_sensor
from settings.loader import load_config
from settings.sources import SourceConfig
from store.db import Store
from store.schema import events
from store.writes import RunSummary

HERE = Path(__file__).resolve().parent
WRITER = HERE / "eve_writer_proc.py"
COLLECTOR = HERE / "collector_proc.py"
SOURCE_ID = "eve-test"
WAIT_SECONDS = 180.0          # generous: the machine may be busy; loops end as soon as the condition holds
MAX_IDLE_RUNS = 400

sys.path.insert(0, str(HERE))
from eve_writer_proc import eve_line  # noqa: E402,F401  (re-exported for the tests)


def tail_source(path: str, **transport: Any) -> dict[str, Any]:
    return {
        "id": SOURCE_ID, "name": "EVE under test", "format": "suricata-eve",
        "source": {"type": "tail", "path": path, **transport},
        "schedule": {"every": "5s"},
    }


def make_env(root: Path, source: dict[str, Any]) -> tuple[CollectContext, SourceConfig]:
    """A config folder holding this one source, and a store in ``root/data``."""
    config_dir = root / "config"
    (config_dir / "feeds").mkdir(parents=True, exist_ok=True)
    (config_dir / "feeds" / f"{source['id']}.yaml").write_text(yaml.safe_dump(source), encoding="utf-8")
    config = load_config(config_dir)
    assert not config.problems, config.problems
    data_dir = root / "data"
    data_dir.mkdir(exist_ok=True)
    store = Store.open(data_dir)
    return CollectContext(store=store, config=config, data_dir=data_dir), config.source(source["id"])


def stored_sequences(ctx: CollectContext, sensor: str = SOURCE_ID) -> Counter[int]:
    """Sequence number → how many times it is stored."""
    with ctx.store.reader.connect() as conn:
        rows = conn.execute(select(events.c.signature_id).where(events.c.sensor == sensor))
        return Counter(int(row.signature_id) for row in rows)


def assert_exactly_once(ctx: CollectContext, expected: range) -> None:
    stored = stored_sequences(ctx)
    missing = sorted(set(expected) - set(stored))
    repeated = sorted(seq for seq, count in stored.items() if count > 1)
    unexpected = sorted(set(stored) - set(expected))
    assert not missing, f"{len(missing)} lines never stored, first {missing[:10]}"
    assert not repeated, f"{len(repeated)} lines stored more than once, first {repeated[:10]}"
    assert not unexpected, f"stored lines nobody wrote: {unexpected[:10]}"
    assert sum(stored.values()) == len(expected)


def run_until_idle(ctx: CollectContext, source: SourceConfig, runs: list[RunSummary] | None = None) -> list[RunSummary]:
    """Run the source until a run finds nothing new, twice in a row (bounded)."""
    runs = [] if runs is None else runs
    quiet = 0
    for _ in range(MAX_IDLE_RUNS):
        summary = run_sensor(ctx, source)
        runs.append(summary)
        assert summary.outcome != "failed", summary.error
        quiet = quiet + 1 if summary.parsed == 0 and summary.rejected == 0 else 0
        if quiet >= 2:
            return runs
    raise AssertionError(f"still reading after {MAX_IDLE_RUNS} runs")


def start_writer(path: Path, count: int, *, style: str = "none", rotate_every: int = 0, start: int = 0,
                 sync: Path | None = None, pause: float | None = None) -> subprocess.Popen:
    command = [sys.executable, str(WRITER), str(path), "--count", str(count), "--start", str(start),
               "--style", style, "--rotate-every", str(rotate_every)]
    if pause is not None:
        command += ["--pause", str(pause)]
    if sync is not None:
        sync.mkdir(parents=True, exist_ok=True)
        command += ["--sync", str(sync)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def acknowledge(sync: Path) -> None:
    """The collector has had a turn: let a waiting writer go on to its rotation."""
    for want in sync.glob("want-*"):
        ack = sync / ("ack-" + want.name.removeprefix("want-"))
        if not ack.exists():
            ack.write_text("")


def finish_writer(writer: subprocess.Popen) -> None:
    _, err = writer.communicate(timeout=WAIT_SECONDS)
    assert writer.returncode == 0, err.decode()


def collect_while(ctx: CollectContext, source: SourceConfig, busy: Callable[[], bool],
                  runs: list[RunSummary], sync: Path | None = None) -> None:
    """Call run_sensor over and over while ``busy()`` (the writer is running), bounded by WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while busy():
        assert time.monotonic() < deadline, "the writer did not finish in time"
        summary = run_sensor(ctx, source)
        assert summary.outcome != "failed", summary.error
        runs.append(summary)
        if sync is not None:
            acknowledge(sync)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
