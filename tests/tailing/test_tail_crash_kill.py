"""Crash test: a real collector process is killed with SIGKILL again and again while a real writer
appends and rotates; after one clean run at the end, every line is stored exactly once.

The collector commits each batch's events and the file cursors that cover them in one transaction,
so a kill either loses the whole uncommitted batch (re-read by the next process) or nothing.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from tailing_kit import (
    COLLECTOR, SOURCE_ID, WAIT_SECONDS, assert_exactly_once, finish_writer, make_env, run_until_idle,
    start_writer, tail_source, wait_for,
)

from store.schema import feed_runs

LINES = 20_000
ROTATE_EVERY = 4_000
MIN_KILLS = 12
WRITER_PAUSE = 0.05    # per 200 lines: the writer appends for a few seconds, the kills land meanwhile
SEED = int(os.environ.get("WATCHFLOOR_CRASH_SEED", "20261122"))


def test_sigkilled_collector_loses_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    ctx, source = make_env(tmp_path, tail_source("logs/eve.json", batch_lines=400))
    writer = start_writer(logs / "eve.json", LINES, style="gzip", rotate_every=ROTATE_EVERY, pause=WRITER_PAUSE)
    stderr_path = tmp_path / "collector.err"
    kills = 0
    runs_seen = 0
    try:
        while kills < MIN_KILLS or writer.poll() is None:
            assert kills < 200, "the writer never finished"
            progress = tmp_path / f"progress-{kills}"
            with open(stderr_path, "ab") as stderr:
                collector = subprocess.Popen(
                    [sys.executable, str(COLLECTOR), str(ctx.config.folder), str(ctx.data_dir), SOURCE_ID, str(progress)],
                    stdout=subprocess.DEVNULL, stderr=stderr,
                )
            try:
                # Alive and working (a run finished), then killed at a random moment of a later run.
                wait_for(lambda: progress.exists() or collector.poll() is not None, "the collector's first run")
                assert collector.poll() is None, stderr_path.read_text()
                wait_for(lambda: rng.random() < 0.25 or collector.poll() is not None, "a random moment", WAIT_SECONDS)
            finally:
                collector.send_signal(signal.SIGKILL)
                collector.wait(timeout=WAIT_SECONDS)
            runs_seen += int(progress.read_text() or 0) if progress.exists() else 0
            kills += 1
    finally:
        if writer.poll() is None:
            writer.kill()
    finish_writer(writer)

    assert "failed run" not in stderr_path.read_text(), stderr_path.read_text()
    final = run_until_idle(ctx, source)
    assert_exactly_once(ctx, range(LINES))
    assert sum(r.rejected for r in final) == 0
    with ctx.store.reader.connect() as conn:
        rejected = conn.execute(select(func.coalesce(func.sum(feed_runs.c.rejected), 0))).scalar_one()
        interrupted = conn.execute(select(func.count()).where(feed_runs.c.outcome == "running")).scalar_one()
    assert rejected == 0
    assert kills >= MIN_KILLS and runs_seen >= kills
    assert interrupted >= 1  # at least one kill landed inside a run, not between two
