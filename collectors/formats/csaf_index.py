"""The listings a CSAF provider publishes beside its advisories (``index.txt``, ``changes.csv``).

Helpers for the transport, not a format (no ``FORMAT``): it reads a listing to know which
advisory files to fetch, then hands each file to ``csaf.parse``.

``index.txt``: one advisory path a line, relative to the provider's folder::

    csaf_files/OT/white/2024/icsma-24-254-01.json

``changes.csv``: ``path,timestamp`` a line, newest first, no header::

    csaf_files/OT/white/2024/icsma-24-254-01.json,2024-09-10T06:00:00.000000Z

Paths are checked before anyone builds a URL from them: relative, ending ``.json``, without
``..``, ``\\`` or a scheme. A line that fails is left out and described in ``problems`` (when
given); a listing that is an HTML page raises ``FormatError``.
"""
from __future__ import annotations

import csv
from datetime import datetime
from pathlib import PurePosixPath

from collectors.formats.common import check_start, parse_time
from settings.sources import TimeField

_ISO = TimeField(field="timestamp", format="iso")


def parse_index(data: bytes, problems: list[str] | None = None) -> list[str]:
    """The advisory paths of an ``index.txt``, in file order."""
    paths: list[str] = []
    for lineno, line in _lines(data, "index.txt"):
        reason = _bad_path(line)
        if reason:
            _note(problems, f"line {lineno}: {reason}")
        else:
            paths.append(line)
    return paths


def parse_changes(data: bytes, problems: list[str] | None = None) -> list[tuple[str, datetime]]:
    """``(path, changed at)`` of a ``changes.csv``, in file order."""
    changes: list[tuple[str, datetime]] = []
    for lineno, line in _lines(data, "changes.csv"):
        fields = next(csv.reader([line]), [])
        try:
            if len(fields) != 2:
                raise ValueError(f"expected 'path,timestamp', got {len(fields)} field(s)")
            stamp = parse_time(fields[1], _ISO)
            if stamp is None:
                raise ValueError("empty timestamp")
        except (ValueError, csv.Error) as exc:
            _note(problems, f"line {lineno}: {exc}")
            continue
        reason = _bad_path(fields[0])
        if reason:
            _note(problems, f"line {lineno}: {reason}")
        else:
            changes.append((fields[0], stamp))
    return changes


def changed_since(data: bytes, since: datetime | None, problems: list[str] | None = None) -> list[str]:
    """Paths changed after ``since`` (all when ``None``), oldest first, each once."""
    changes = [(path, stamp) for path, stamp in parse_changes(data, problems) if since is None or stamp > since]
    latest: dict[str, datetime] = {}
    for path, stamp in changes:
        latest[path] = max(stamp, latest.get(path, stamp))
    return sorted(latest, key=lambda path: (latest[path], path))


def _lines(data: bytes, name: str) -> list[tuple[int, str]]:
    check_start(data[:64], name)
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _bad_path(path: str) -> str | None:
    pure = PurePosixPath(path)
    if "://" in path or "\\" in path or pure.is_absolute() or ".." in pure.parts:
        return f"unsafe path {path[:80]!r}"
    if pure.suffix != ".json":
        return f"not a .json advisory path: {path[:80]!r}"
    return None


def _note(problems: list[str] | None, text: str) -> None:
    if problems is not None:
        problems.append(text)
