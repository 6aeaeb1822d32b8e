"""A real writer process appends numbered EVE alerts and rotates; run_sensor reads meanwhile.

Afterwards every line written must be in the events table exactly once: counted by the sequence
number each line carries. Each rotation style runs with a glob that lists the rotated names
(``eve.json*``) and with the bare name (``eve.json``), where the tailer must find the renamed,
copied or compressed file beside the old name by its identity. At every other rotation the
writer waits until a collector run has read part of the file (so the rotated file must be
drained); the rotations in between race the collector (a file may be born and rotated away
between two runs).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from tailing_kit import (
    assert_exactly_once, collect_while, finish_writer, make_env, run_until_idle, start_writer, tail_source,
)

LINES = 12_000
ROTATE_EVERY = 2_500


@pytest.mark.parametrize("style", ["rename", "copytruncate", "gzip"])
@pytest.mark.parametrize("glob_rotated", [True, False], ids=["glob-rotated", "bare-name"])
def test_every_line_once_across_rotation(tmp_path: Path, style: str, glob_rotated: bool) -> None:
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    path = "logs/eve.json*" if glob_rotated else "logs/eve.json"
    ctx, source = make_env(tmp_path, tail_source(path, batch_lines=700))
    sync = tmp_path / "sync"
    writer = start_writer(logs / "eve.json", LINES, style=style, rotate_every=ROTATE_EVERY, sync=sync)
    runs = []
    collect_while(ctx, source, lambda: writer.poll() is None, runs, sync)
    finish_writer(writer)
    run_until_idle(ctx, source, runs)

    assert_exactly_once(ctx, range(LINES))
    assert sum(r.rejected for r in runs) == 0, [r.rejected_samples for r in runs if r.rejected]
    assert sum(r.new for r in runs) == LINES
    rotated = sorted(p.name for p in logs.iterdir())
    assert len(rotated) == 1 + (LINES - 1) // ROTATE_EVERY, rotated  # the writer really rotated
    assert len(list(sync.glob("ack-*"))) == LINES // ROTATE_EVERY // 2  # ... with a reader mid-file
