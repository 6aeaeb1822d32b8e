"""``run_sensor`` end to end: real config, real SQLite store, the real parsers and EventPipeline.

Tail specifics (rejects, Zeek headers after a restart, start_at, run records, a store failure),
the drop folder (settle, temporary names, done/, the cursor fallback) and the single file source.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from tailing_kit import (
    SOURCE_ID, assert_exactly_once, eve_line, make_env, run_until_idle, stored_sequences, tail_source,
)

from collectors.sensor_runner import MAX_BATCHES_PER_RUN, run_sensor
from store.db import create_or_upgrade
from store.schema import events, feed_runs, source_state
from store.writes import all_cursors


def eve_lines(start: int, stop: int) -> str:
    return "".join(eve_line(n) + "\n" for n in range(start, stop))


def drop_source(pattern: str = "*.json*") -> dict[str, Any]:
    return {"id": SOURCE_ID, "name": "drop folder", "format": "suricata-eve",
            "source": {"type": "directory", "path": "drop", "pattern": pattern}, "schedule": {"every": "10s"}}


def runs_table(ctx) -> list[Any]:
    with ctx.store.reader.connect() as conn:
        return list(conn.execute(select(feed_runs).where(feed_runs.c.source_id == SOURCE_ID).order_by(feed_runs.c.id)))


# -- tail --------------------------------------------------------------------------------------------


def test_rejected_lines_are_counted_and_sampled_with_file_and_line(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, tail_source("eve.json"))
    log = ctx.data_dir / "eve.json"
    bad = ["not json at all", '{"event_type":"alert","timestamp":"yesterday"}', '{"broken": ']
    text_part = eve_lines(0, 3) + "\n".join(bad) + "\n" + eve_lines(3, 6)
    log.write_bytes(text_part.encode() + b"\xff\xfe not UTF-8\n")   # undecodable: the parser decides
    summary = run_sensor(ctx, source)
    assert (summary.outcome, summary.parsed, summary.new, summary.rejected) == ("ok", 6, 6, 4)
    assert [s["where"] for s in summary.rejected_samples] == [f"{log}:{n}" for n in (4, 5, 6, 10)]
    assert summary.rejected_samples[0]["reason"] == "not a JSON object"
    assert summary.rejected_samples[1]["reason"].startswith("unparseable timestamp")
    assert summary.rejected_samples[2]["reason"].startswith("invalid JSON")
    [row] = runs_table(ctx)
    assert (row.outcome, row.parsed, row.rejected, row.new, row.duplicates) == ("ok", 6, 4, 6, 0)
    assert json.loads(row.rejected_samples)[3]["where"] == f"{log}:10"


def test_rejected_samples_are_capped(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, tail_source("eve.json"))
    (ctx.data_dir / "eve.json").write_text("nonsense\n" * 100 + eve_lines(0, 5))
    summary = run_sensor(ctx, source)
    assert (summary.rejected, summary.new, len(summary.rejected_samples)) == (100, 5, 20)


def test_run_is_recorded_with_counts_and_newest_event_time(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, tail_source("eve.json"))
    (ctx.data_dir / "eve.json").write_text(eve_lines(0, 50))
    first = run_sensor(ctx, source)
    second = run_sensor(ctx, source)
    assert (first.parsed, first.new, second.parsed) == (50, 50, 0)
    rows = runs_table(ctx)
    assert [r.outcome for r in rows] == ["ok", "ok"] and rows[0].finished_at >= rows[0].started_at
    with ctx.store.reader.connect() as conn:
        state = conn.execute(select(source_state).where(source_state.c.source_id == SOURCE_ID)).one()
        stored_newest = conn.execute(select(func.max(events.c.ts))).scalar_one()
    assert state.newest_record_at == stored_newest == first.newest_record_at == rows[0].newest_record_at


def test_zeek_tsv_resumed_by_a_new_run_replays_the_header(tmp_path: Path) -> None:
    header = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tconn",
              "#open\t2024-03-01-10-00-00", "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto",
              "#types\ttime\tstring\taddr\tport\taddr\tport\tenum"]

    def rows(start: int, stop: int) -> str:
        return "".join(f"1709287200.{n:06d}\tC{n}\t203.0.113.9\t{10000 + n}\t10.2.0.10\t502\ttcp\n"
                       for n in range(start, stop))

    source_dict = tail_source("zeek/conn.log")
    source_dict["format"] = "zeek"
    ctx, source = make_env(tmp_path, source_dict)
    (ctx.data_dir / "zeek").mkdir()
    log = ctx.data_dir / "zeek" / "conn.log"
    log.write_text("\n".join(header) + "\n" + rows(0, 40))
    assert run_sensor(ctx, source).new == 40
    with open(log, "a") as handle:
        handle.write(rows(40, 100))
    summary = run_sensor(ctx, source)              # a new parser: it only knows the columns via the preamble
    assert (summary.new, summary.rejected) == (60, 0), summary.rejected_samples
    with ctx.store.reader.connect() as conn:
        ports = sorted(conn.execute(select(events.c.src_port).where(events.c.sensor == SOURCE_ID)).scalars())
    assert ports == list(range(10000, 10100))


def test_start_at_end_reads_only_what_comes_after_the_first_run(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, tail_source("eve.json", start_at="end"))
    log = ctx.data_dir / "eve.json"
    log.write_text(eve_lines(0, 30))
    assert run_sensor(ctx, source).parsed == 0
    with open(log, "a") as handle:
        handle.write(eve_lines(30, 45))
    assert run_sensor(ctx, source).parsed == 15
    assert sorted(stored_sequences(ctx)) == list(range(30, 45))


def test_a_run_is_bounded_and_the_next_run_continues(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, tail_source("eve.json", batch_lines=10))
    count = 10 * MAX_BATCHES_PER_RUN + 25
    (ctx.data_dir / "eve.json").write_text(eve_lines(0, count))
    first = run_sensor(ctx, source)
    assert first.parsed == 10 * MAX_BATCHES_PER_RUN
    run_until_idle(ctx, source)
    assert_exactly_once(ctx, range(count))


def test_no_matching_file_is_flagged_not_silent(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, tail_source("missing/eve.json"))
    summary = run_sensor(ctx, source)
    assert summary.outcome == "flagged"
    assert summary.flags == [f"no file matches {ctx.data_dir / 'missing' / 'eve.json'}"]


def test_store_failure_is_a_failed_run_and_the_lines_are_read_again_after_repair(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, tail_source("eve.json", batch_lines=20))
    log = ctx.data_dir / "eve.json"
    log.write_text(eve_lines(0, 20))
    assert run_sensor(ctx, source).new == 20
    with open(log, "a") as handle:
        handle.write(eve_lines(20, 50))
    with ctx.store.writer.begin() as conn:
        conn.execute(text("DROP TABLE rollups"))      # the pipeline's write fails inside the batch transaction
    summary = run_sensor(ctx, source)                # must not raise
    assert summary.outcome == "failed" and "rollups" in summary.error
    assert runs_table(ctx)[-1].outcome == "failed"
    assert sorted(stored_sequences(ctx)) == list(range(20))   # the failed batch left nothing behind
    create_or_upgrade(ctx.store.writer)              # repaired: the cursor did not move, so nothing is lost
    run_until_idle(ctx, source)
    assert_exactly_once(ctx, range(50))


# -- drop folder ---------------------------------------------------------------------------------------


def test_drop_folder_ingests_settled_files_once_and_moves_them_to_done(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, drop_source())
    drop = ctx.data_dir / "drop"
    drop.mkdir()
    (drop / "a.json").write_text(eve_lines(0, 30))
    with gzip.open(drop / "b.json.gz", "wt") as packed:
        packed.write(eve_lines(30, 50))
    (drop / "c.json.part").write_text(eve_lines(50, 60))       # still being copied in
    (drop / ".d.json").write_text(eve_lines(60, 70))           # rsync's hidden temporary name
    assert run_sensor(ctx, source).parsed == 0                  # first look: not yet known to be settled
    summary = run_sensor(ctx, source)
    assert (summary.outcome, summary.parsed, summary.new) == ("ok", 50, 50)
    assert sorted(p.name for p in (drop / "done").iterdir()) == ["a.json", "b.json.gz"]
    assert sorted(p.name for p in drop.iterdir()) == [".d.json", "c.json.part", "done"]
    os.rename(drop / "c.json.part", drop / "c.json")            # the copy finished
    run_until_idle(ctx, source)
    assert sorted(stored_sequences(ctx)) == list(range(60))
    with ctx.store.reader.connect() as conn:
        assert [k for k in all_cursors(conn, SOURCE_ID) if k.startswith("file:")] == []  # moved: nothing to remember


def test_drop_folder_waits_while_a_file_is_still_growing(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, drop_source())
    drop = ctx.data_dir / "drop"
    drop.mkdir()
    growing = drop / "big.json"
    growing.write_text(eve_lines(0, 10))
    run_sensor(ctx, source)
    with open(growing, "a") as handle:
        handle.write(eve_lines(10, 20))
    assert run_sensor(ctx, source).parsed == 0                  # size changed between two looks
    assert run_sensor(ctx, source).parsed == 20
    assert sorted(stored_sequences(ctx)) == list(range(20))


def test_drop_folder_that_cannot_take_done_keeps_done_files_in_cursors(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, drop_source())
    drop = ctx.data_dir / "drop"
    drop.mkdir()
    (drop / "done").write_text("a file where the done/ folder would go")   # the move cannot happen
    (drop / "a.json").write_text(eve_lines(0, 15))
    run_sensor(ctx, source)
    summary = run_sensor(ctx, source)
    assert summary.parsed == 15 and summary.outcome == "flagged"
    assert "kept as done in its cursor" in summary.flags[0]
    assert (drop / "a.json").exists()
    for _ in range(3):                                          # never read again
        assert run_sensor(ctx, source).parsed == 0
    with ctx.store.reader.connect() as conn:
        [state] = [v for k, v in all_cursors(conn, SOURCE_ID).items() if k.startswith("file:")]
    assert state["done"] and state["line"] == 15
    (drop / "a.json").unlink()                                 # the operator clears the folder
    run_sensor(ctx, source)
    with ctx.store.reader.connect() as conn:
        assert [k for k in all_cursors(conn, SOURCE_ID) if k.startswith("file:")] == []


def test_the_same_file_dropped_again_gives_duplicates_not_new_events(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, drop_source())
    drop = ctx.data_dir / "drop"
    drop.mkdir()
    (drop / "a.json").write_text(eve_lines(0, 25))
    run_until_idle(ctx, source)
    (drop / "again.json").write_text(eve_lines(0, 25))
    runs = run_until_idle(ctx, source)
    assert sum(r.duplicates for r in runs) == 25 and sum(r.new for r in runs) == 0
    assert_exactly_once(ctx, range(25))


# -- single file -----------------------------------------------------------------------------------------


def test_file_source_reads_each_content_once(tmp_path: Path) -> None:
    ctx, source = make_env(tmp_path, {**drop_source(), "source": {"type": "file", "path": "export.json"}})
    export = ctx.data_dir / "export.json"
    export.write_text(eve_lines(0, 10) + eve_line(10))          # no final newline: the file is complete
    run_until_idle(ctx, source)
    assert sorted(stored_sequences(ctx)) == list(range(11))
    replacement = ctx.data_dir / "export.new"
    replacement.write_text(eve_lines(100, 110))
    os.replace(replacement, export)                              # a new delivery under the same name
    run_until_idle(ctx, source)
    assert sorted(stored_sequences(ctx)) == list(range(11)) + list(range(100, 110))
