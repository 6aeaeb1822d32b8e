"""A real log writer for the tailing tests: appends numbered Suricata EVE alerts and rotates its file.

Run as a subprocess: ``python eve_writer_proc.py PATH --count N --rotate-every K --style STYLE``.
Every line carries its sequence number in ``alert.signature_id`` and ``flow_id``, so a test can
count exactly which lines reached the store. Rotation styles, like logrotate does them:

* ``rename``        shift eve.json.N → N+1, rename eve.json → eve.json.1, reopen eve.json
* ``copytruncate``  shift, copy eve.json → eve.json.1, truncate eve.json in place (the writer keeps its
                    O_APPEND descriptor, as daemons do, so it continues at offset 0)
* ``gzip``          shift (.N.gz), rename eve.json → eve.json.1, reopen, compress eve.json.1 →
                    eve.json.1.gz chunk by chunk (a half-written .gz is visible), delete eve.json.1

Rotated files are never deleted: every line written must end up in the store. Some lines are
written in two parts with a flush in between, so readers meet partial last lines.

With ``--sync DIR`` the writer makes sure a reader is part-way through the file at every other
rotation, whatever the speed of either: ``SYNC_LEAD`` lines before such a rotation it creates
``DIR/want-K`` and waits for ``DIR/ack-K`` (the test creates it after a collector run), then
writes those last lines and rotates. The other rotations race the reader freely.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
SPLIT_EVERY = 37      # every 37th line is written in two halves
PAUSE_EVERY = 200     # yield the CPU now and then so readers interleave with the writer
PAUSE_SECONDS = 0.002
SYNC_LEAD = 300       # lines written after the reader's turn and before the rotation
SYNC_TIMEOUT = 180.0


def eve_line(seq: int) -> str:
    stamp = (T0 + timedelta(milliseconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    record = {
        "timestamp": stamp, "flow_id": 1_000_000 + seq, "in_iface": "eth1", "event_type": "alert",
        "src_ip": "203.0.113.7", "src_port": 40000 + seq % 20000, "dest_ip": "10.2.0.10", "dest_port": 502,
        "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": seq, "rev": 1,
                  "signature": "WF tailing test alert", "category": "Test traffic", "severity": 2},
    }
    return json.dumps(record, separators=(",", ":"))


def _shift(path: Path) -> None:
    numbers = sorted((int(p.name[len(path.name) + 1:].split(".")[0]) for p in path.parent.glob(path.name + ".*")
                      if p.name[len(path.name) + 1:].split(".")[0].isdigit()), reverse=True)
    for number in numbers:
        for ext in ("", ".gz"):
            older = path.with_name(f"{path.name}.{number}{ext}")
            if older.exists():
                os.rename(older, path.with_name(f"{path.name}.{number + 1}{ext}"))


def _open(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def rotate(path: Path, fd: int, style: str) -> int:
    _shift(path)
    first = path.with_name(path.name + ".1")
    if style == "copytruncate":
        shutil.copyfile(path, first)
        os.truncate(path, 0)
        return fd
    os.close(fd)
    os.rename(path, first)
    fd = _open(path)
    if style == "gzip":
        with open(first, "rb") as plain, gzip.open(path.with_name(path.name + ".1.gz"), "wb") as packed:
            while chunk := plain.read(64 * 1024):
                packed.write(chunk)
                packed.flush()
        os.unlink(first)
    return fd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--rotate-every", type=int, default=0)
    parser.add_argument("--style", choices=("none", "rename", "copytruncate", "gzip"), default="none")
    parser.add_argument("--sync", type=Path)
    parser.add_argument("--pause", type=float, default=PAUSE_SECONDS, help=f"seconds slept every {PAUSE_EVERY} lines")
    args = parser.parse_args()
    fd = _open(args.path)
    for seq in range(args.start, args.start + args.count):
        data = (eve_line(seq) + "\n").encode()
        if seq % SPLIT_EVERY == 0:
            os.write(fd, data[:len(data) // 2])
            time.sleep(0)
            os.write(fd, data[len(data) // 2:])
        else:
            os.write(fd, data)
        if seq % PAUSE_EVERY == 0:
            time.sleep(args.pause)
        written = seq - args.start + 1
        rotation = written // args.rotate_every if args.rotate_every else 0
        if (args.sync and args.rotate_every and rotation % 2 == 0
                and written % args.rotate_every == args.rotate_every - SYNC_LEAD):
            _wait_for_reader(args.sync, rotation)
        if args.rotate_every and written % args.rotate_every == 0 and written < args.count:
            fd = rotate(args.path, fd, args.style)
    os.close(fd)


def _wait_for_reader(folder: Path, number: int) -> None:
    (folder / f"want-{number}").write_text("")
    deadline = time.monotonic() + SYNC_TIMEOUT
    while not (folder / f"ack-{number}").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no reader turn for rotation {number} within {SYNC_TIMEOUT} s")
        time.sleep(0.005)


if __name__ == "__main__":
    main()
