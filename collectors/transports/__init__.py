"""Transports: how a feed's bytes arrive (HTTP, TAXII, MISP, a local file, a drop folder).

A transport module declares ``TYPE`` (the ``source.type`` it serves) and
``fetch(source: SourceConfig, cursor: dict, ctx: FetchContext) -> Fetched``. It never parses
records: it hands the runner size-capped, decompressed payload streams, and the cursor to save
when the run's records are committed (ETag/Last-Modified, TAXII ``added_after``, MISP event
timestamps). Failures raise ``FetchError`` with a message in plain words.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Callable
from datetime import datetime


@dataclass
class Payload:
    stream: IO[bytes]
    name: str


@dataclass
class Fetched:
    payloads: list[Payload]
    not_modified: bool = False
    http_status: int | None = None
    bytes: int = 0
    sha256: str | None = None
    cursor: dict[str, Any] = field(default_factory=dict)
    # A full snapshot lists everything the feed currently holds, so what is absent has been removed
    # (lifecycle.on_absent applies); an incremental fetch only lists what changed.
    complete_snapshot: bool = True
    # Problems with single items that did not fail the run (a withdrawn advisory, a bad checksum):
    # shown as flags on the run so an admin sees them.
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        for payload in self.payloads:
            payload.stream.close()


class FetchError(Exception):
    """The fetch failed; ``str(error)`` is what the admin reads on the feeds page."""

    def __init__(self, message: str, *, http_status: int | None = None, retry_after: float | None = None,
                 bytes_read: int | None = None):
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after
        self.bytes_read = bytes_read


@dataclass
class FetchContext:
    data_dir: Path
    now: Callable[[], datetime]
    user_agent: str = "watchfloor/0.1 (+https://github.com/watchfloor/watchfloor)"


def registry() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "TYPE", None)
        if name:
            found[name] = module
    return found


def resolve_path(path: str, data_dir: Path) -> Path:
    """Paths in source configs are relative to the data folder unless absolute."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else data_dir / candidate
