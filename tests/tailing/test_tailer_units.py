"""Unit tests of ``collectors.tailer`` on real files: each rotation style, identity, bounds, restarts.

``Run`` plays the part of the sensor runner without a store: it builds a fresh ``Tailer`` from
the saved cursors each time (as every scheduler run does), keeps every line it is given and
saves the cursors each batch hands out, so a test can restart "the process" at any point.
"""
from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from tailing_kit import eve_line

from collectors.tailer import FileState, Tailer, TailOptions, iter_file_lines
from store.records import Rejected

NOW = 1_795_000_000_000


class Run:
    """Saved cursors plus everything read so far, across any number of tailer instances."""

    def __init__(self, *patterns: Path, **options: Any):
        self.patterns = [str(p) for p in patterns]
        self.options = TailOptions(**options)
        self.cursors: dict[str, Any] = {}
        self.lines: list[str] = []
        self.where: list[tuple[str, int]] = []
        self.rejected: list[Rejected] = []
        self.batches = 0

    def once(self, *, max_batches: int = 1000, now: int = NOW, first_run: bool = False) -> list[str]:
        """One run: scan and read up to ``max_batches`` batches; returns the lines read by this run."""
        options = self.options if not first_run else TailOptions(**{**vars(self.options), "first_run": True})
        tailer = Tailer(self.patterns, self.cursors, options, now_ms=now)
        tailer.scan()
        got: list[str] = []
        for count, batch in enumerate(tailer.batches()):
            if count >= max_batches:
                break
            self._save(batch.cursors)
            got += [text for _, text in batch.lines]
            self.where += [(os.path.basename(batch.path), number) for number, _ in batch.lines]
            self.rejected += batch.rejected
            self.batches += 1
        self._save(tailer.pending_cursors())
        assert not tailer.errors, tailer.errors
        self.lines += got
        return got

    def _save(self, cursors: dict[str, Any]) -> None:
        for key, value in cursors.items():
            if value is None:
                self.cursors.pop(key, None)
            else:
                self.cursors[key] = value

    def states(self) -> list[FileState]:
        return [FileState.from_cursor(k[5:], v) for k, v in self.cursors.items() if k.startswith("file:")]


def write(path: Path, *texts: str, mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as handle:
        handle.write("".join(texts))


def numbered(start: int, stop: int, prefix: str = "line") -> list[str]:
    return [f"{prefix} {n:06d} " + "x" * 40 for n in range(start, stop)]


def lines_text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    write(log, "first\nsecond half", mode="w")
    run = Run(log)
    assert run.once() == ["first"]
    assert run.states()[0].offset == len("first\n")   # the partial line is not consumed
    assert run.once() == []
    write(log, "-written\nthird\n")
    assert run.once() == ["second half-written", "third"]
    assert run.where == [("eve.json", 1), ("eve.json", 2), ("eve.json", 3)]


def test_rename_rotation_drains_the_old_file_found_by_inode(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 100)), mode="w")
    run = Run(log, batch_lines=30)                 # the bare name: eve.json.1 is not in the glob
    run.once(max_batches=2)                        # part-way through
    os.rename(log, tmp_path / "eve.json.1")
    write(tmp_path / "eve.json.1", lines_text(numbered(100, 120)))   # the daemon writes on until its HUP
    write(log, lines_text(numbered(120, 150)), mode="w")
    run.once()
    assert run.lines == numbered(0, 150)
    assert {s.path for s in run.states()} == {str(tmp_path / "eve.json.1"), str(log)}


def test_file_rotated_twice_between_runs_is_found_as_a_sibling(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 10)), mode="w")
    run = Run(log)
    run.once(first_run=True)
    os.rename(log, tmp_path / "eve.json.1")
    write(log, lines_text(numbered(10, 20)), mode="w")        # born and rotated away unseen
    os.rename(tmp_path / "eve.json.1", tmp_path / "eve.json.2")
    os.rename(log, tmp_path / "eve.json.1")
    write(log, lines_text(numbered(20, 30)), mode="w")
    run.once()
    assert sorted(run.lines) == numbered(0, 30) and len(run.lines) == 30


def test_rotated_history_present_on_the_first_run_is_not_read(tmp_path: Path) -> None:
    write(tmp_path / "eve.json.1", lines_text(numbered(0, 10, "old")), mode="w")
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 5)), mode="w")
    run = Run(log)
    assert run.once(first_run=True) == numbered(0, 5)
    write(tmp_path / "eve.json.1", lines_text(numbered(10, 12, "old")))   # history growing later is read
    assert run.once() == numbered(10, 12, "old")


@pytest.mark.parametrize("glob_rotated", [True, False])
def test_copytruncate_continues_in_the_copy_at_the_saved_offset(tmp_path: Path, glob_rotated: bool) -> None:
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 100)), mode="w")
    run = Run(tmp_path / ("eve.json*" if glob_rotated else "eve.json"), batch_lines=40)
    run.once(max_batches=1)                        # 40 read, 60 not yet
    shutil.copyfile(log, tmp_path / "eve.json.1")  # logrotate copytruncate
    os.truncate(log, 0)
    write(log, lines_text(numbered(100, 130)))
    run.once()
    assert run.lines.count(numbered(0, 1)[0]) == 1
    assert sorted(run.lines) == numbered(0, 130) and len(run.lines) == 130


def test_copy_seen_before_the_truncate_is_deferred_not_read_twice(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 100)), mode="w")
    run = Run(tmp_path / "eve.json*", batch_lines=40)
    run.once(max_batches=1)
    shutil.copyfile(log, tmp_path / "eve.json.1")  # the copy exists, the truncate has not happened yet
    run.once(max_batches=1)
    os.truncate(log, 0)
    write(log, lines_text(numbered(100, 110)))
    run.once()
    assert sorted(run.lines) == numbered(0, 110) and len(run.lines) == 110


@pytest.mark.parametrize("glob_rotated", [True, False])
def test_gzip_of_a_half_read_rotated_file_resumes_inside_the_gz(tmp_path: Path, glob_rotated: bool) -> None:
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 200)), mode="w")
    run = Run(tmp_path / ("eve.json*" if glob_rotated else "eve.json"), batch_lines=50)
    run.once(max_batches=1)
    os.rename(log, tmp_path / "eve.json.1")
    write(log, lines_text(numbered(200, 210)), mode="w")
    with open(tmp_path / "eve.json.1", "rb") as plain, gzip.open(tmp_path / "eve.json.1.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    os.unlink(tmp_path / "eve.json.1")
    run.once()
    assert sorted(run.lines) == numbered(0, 210) and len(run.lines) == 210
    gz_state = next(s for s in run.states() if s.gz)
    assert gz_state.done and gz_state.line == 200
    assert run.once() == []                        # read once: a done .gz is not opened again


def test_gz_in_the_glob_is_read_once_and_a_damaged_one_is_rejected(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "eve.json.2.gz", "wt") as packed:
        packed.write(lines_text(numbered(0, 20)) + "last line without newline")
    (tmp_path / "eve.json.3.gz").write_bytes(gzip.compress(b"ok\n" * 10)[:-12] + b"\x00" * 12)  # bad trailer
    os.utime(tmp_path / "eve.json.3.gz", (1, 1))
    run = Run(tmp_path / "eve.json*")
    run.once()
    assert run.lines[:21] == numbered(0, 20) + ["last line without newline"]
    assert [r.reason.split(":")[0] for r in run.rejected] == ["damaged gzip file"]
    assert run.once() == []
    assert all(s.done for s in run.states())


def test_read_rotated_gz_false_ignores_gz(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "eve.json.1.gz", "wt") as packed:
        packed.write("compressed\n")
    write(tmp_path / "eve.json", "plain\n", mode="w")
    assert Run(tmp_path / "eve.json*", read_gz=False).once() == ["plain"]


def test_inode_reuse_is_a_new_file_read_from_its_start(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "eve.json"
    write(log, lines_text(numbered(0, 50, "old")), mode="w")
    run = Run(log)
    run.once()
    old_inode = log.stat().st_ino
    log.unlink()
    # ext4 and most file systems hand a freed inode to the next file created; try a bounded number of times.
    for attempt in range(500):
        write(log, lines_text(numbered(0, 80, "new")), mode="w")
        if log.stat().st_ino == old_inode:
            break
        os.rename(log, folder / f"other-{attempt}")  # keep it: its inode must not be offered again
    else:
        pytest.fail("the file system never reused the inode (500 tries)")
    assert run.once() == numbered(0, 80, "new")   # not resumed at the old offset (line 50)


def test_same_inode_rewritten_longer_is_not_resumed_mid_file(tmp_path: Path) -> None:
    """The classic skip: the old offset lies inside the new content; the head tells them apart."""
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 30, "old")), mode="w")
    run = Run(log)
    run.once()
    inode = log.stat().st_ino
    with open(log, "r+", encoding="utf-8") as handle:   # same inode, other content, larger than before
        handle.truncate(0)
        handle.write(lines_text(numbered(0, 100, "new")))
    assert log.stat().st_ino == inode
    assert run.once() == numbered(0, 100, "new")


def test_same_first_kilobyte_different_file_is_not_taken_for_the_old_one(tmp_path: Path) -> None:
    """Vector #25079: equal heads. The anchor (bytes before the offset) keeps the new file from being skipped."""
    header = lines_text([f"#header line {n} " + "h" * 60 for n in range(20)])   # > 1 KiB shared prefix
    log = tmp_path / "eve.json"
    write(log, header + lines_text(numbered(0, 40, "first")), mode="w")
    run = Run(tmp_path / "eve.json*")
    run.once()
    os.unlink(log)
    write(tmp_path / "eve.json.1", header + lines_text(numbered(0, 60, "second")), mode="w")  # new inode
    got = run.once()
    assert got[-60:] == numbered(0, 60, "second") and len(got) == 80


def test_overlong_line_is_rejected_with_its_line_number_and_skipped_unbuffered(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    write(log, "short one\n", "y" * 5000, mode="w")        # the long line is still being written
    run = Run(log, max_line_bytes=1000, batch_bytes=2000)
    assert run.once() == ["short one"]
    assert [(r.location, r.reason) for r in run.rejected] == [
        (f"{log}:2", "line longer than 1000 bytes: skipped to its end")]
    assert run.states()[0].skip                                  # the skip survives a restart
    write(log, "z" * 3000 + "\nafter\n")
    assert run.once() == ["after"]
    assert run.where[-1] == ("eve.json", 3)
    assert len(run.rejected) == 1


def test_undecodable_bytes_reach_the_parser_as_replacement_characters(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    log.write_bytes(b'{"a":"caf\xe9"}\r\nnext\n')
    assert Run(log).once() == ['{"a":"caf\ufffd"}', "next"]


def test_batches_are_bounded_by_lines_and_bytes(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 1000)), mode="w")
    tailer = Tailer([str(log)], {}, TailOptions(batch_lines=100, batch_bytes=2000), now_ms=NOW)
    tailer.scan()
    sizes = [(len(b.lines), b.bytes) for b in tailer.batches()]
    assert sum(n for n, _ in sizes) == 1000
    assert all(n <= 100 and size <= 2000 + 60 for n, size in sizes)   # at most one line over the byte bound
    tailer = Tailer([str(log)], {}, TailOptions(batch_lines=100, batch_bytes=10**9), now_ms=NOW)
    tailer.scan()
    assert [len(b.lines) for b in tailer.batches()] == [100] * 10


def test_restart_from_saved_state_resumes_exactly(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    lines = [eve_line(n) for n in range(3000)]
    write(log, lines_text(lines[:1700]) + lines[1700][:50], mode="w")
    run = Run(log, batch_lines=97, batch_bytes=20_000)
    for _ in range(6):                         # a fresh tailer from the cursors each time: a restart
        run.once(max_batches=3)
    write(log, lines[1700][50:] + "\n" + lines_text(lines[1701:]))
    for _ in range(100):
        if not run.once(max_batches=3):
            break
    assert run.lines == lines
    assert [n for _, n in run.where] == list(range(1, 3001))


def test_start_at_end_skips_what_is_there_and_counts_its_lines(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    write(log, lines_text(numbered(0, 25)) + "partial", mode="w")
    run = Run(log, start_at_end=True)
    assert run.once(first_run=True) == []
    write(log, " end\nnew\n")
    assert run.once() == ["partial end", "new"]
    assert run.where == [("eve.json", 26), ("eve.json", 27)]


def test_vanished_file_state_is_forgotten_after_its_ttl(tmp_path: Path) -> None:
    log = tmp_path / "eve.json"
    write(log, "a\n", mode="w")
    run = Run(log, orphan_ttl_ms=1000)
    run.once()
    log.unlink()
    run.once(now=NOW + 10)
    assert run.states()[0].gone == NOW + 10
    run.once(now=NOW + 2000)
    assert run.states() == []


def test_import_reader_streams_plain_and_gzip_by_magic(tmp_path: Path) -> None:
    packed = tmp_path / "export.log"               # gzip content under a name without .gz
    packed.write_bytes(gzip.compress(lines_text(numbered(0, 30)).encode() + b"tail"))
    batches = list(iter_file_lines(packed, TailOptions(batch_lines=7)))
    assert [t for b in batches for _, t in b.lines] == numbered(0, 30) + ["tail"]
    assert batches[-1].finished and max(len(b.lines) for b in batches) == 7
