"""``source.type: directory``: each new or changed file in a drop folder is ingested once."""
from __future__ import annotations

import gzip
import os
from datetime import timedelta
from pathlib import Path

from conftest import START, Floor, make_source


def drop(folder: Path, name: str, data: bytes, age: timedelta = timedelta(hours=1)) -> Path:
    """Write a file as if copied in ``age`` before the floor's clock (the settle rule reads mtime)."""
    path = folder / name
    path.write_bytes(data)
    stamp = (START - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def folder_source(folder: Path, pattern: str = "*.txt") -> object:
    return make_source(id="drop", format="lines", source={"type": "directory", "path": str(folder), "pattern": pattern})


def test_new_and_changed_files_are_read_once(floor: Floor, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    drop(folder, "a.txt", b"8.8.8.8\n")
    drop(folder, "b.txt", b"9.9.9.9\n")
    source = folder_source(folder)

    first = floor.run(source)
    assert (first.outcome, first.new) == ("ok", 2)
    assert floor.run(source).outcome == "unchanged"

    drop(folder, "b.txt", b"9.9.9.9\n1.1.1.1\n")
    drop(folder, "c.txt", b"4.4.4.4\n")
    third = floor.run(source)
    assert (third.outcome, third.new, third.updated) == ("ok", 2, 1)  # 1.1.1.1 and 4.4.4.4 new; b's 9.9.9.9 again

    (folder / "a.txt").unlink()
    assert floor.run(source).outcome == "unchanged"
    # Incremental: a file that disappears does not expire what it brought.
    assert floor.active("drop") == {("ipv4", ip) for ip in ("8.8.8.8", "9.9.9.9", "1.1.1.1", "4.4.4.4")}


def test_files_still_arriving_wait_for_the_next_run(floor: Floor, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    drop(folder, "list.txt.part", b"1.0.0.1\n")
    drop(folder, ".hidden.txt", b"1.0.0.2\n")
    drop(folder, "fresh.txt", b"1.0.0.3\n", age=timedelta(seconds=-30))  # written after the floor's clock
    source = folder_source(folder, "*")

    assert floor.run(source).outcome == "unchanged"
    floor.advance(minutes=5)
    second = floor.run(source)
    assert (second.outcome, second.new) == ("ok", 1)
    assert floor.active("drop") == {("ipv4", "1.0.0.3")}


def test_gzip_files_are_decompressed(floor: Floor, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    drop(folder, "list.txt.gz", gzip.compress(b"5.5.5.5\n6.6.6.6\n"))
    summary = floor.run(folder_source(folder, "*.gz"))
    assert (summary.outcome, summary.new) == ("ok", 2)


def test_a_missing_folder_is_a_failed_run(floor: Floor, tmp_path: Path) -> None:
    floor.run(folder_source(tmp_path / "nowhere"))
    run = floor.last_run("drop")
    assert run.outcome == "failed" and "drop folder not found" in run.error


def test_a_relative_path_is_under_the_data_folder(floor: Floor) -> None:
    folder = floor.data_dir / "drops"
    folder.mkdir()
    drop(folder, "x.txt", b"7.7.7.7\n")
    summary = floor.run(make_source(id="drop", format="lines", source={"type": "directory", "path": "drops"}))
    assert (summary.outcome, summary.new) == ("ok", 1)
