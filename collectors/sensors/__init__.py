"""Sensor log formats: one module per format, each turning one log line into an ``Event``.

A format module declares, at module level:

* ``FORMAT``   the name used in source configs and ``app.py ingest --format`` (e.g. ``"suricata-eve"``)
* ``Options``  a ``settings.base.StrictModel`` of its options (the source YAML's ``options:`` mapping)
* ``make_parser(sensor: str, options: Options) -> LineParser``

A ``LineParser`` is called once per line (text without the trailing newline) and returns an
``Event``, a ``Rejected`` (bad line: counted, sampled, never raised) or ``None`` (a line that is
deliberately not an event: a header, a ``stats`` record, a blank line). Parsers may keep state
between lines (Zeek's ``#fields`` header, a pretty-printed JSON object spread over lines);
``LineParser.preamble(line)`` tells the tailer which leading lines of a file it must replay
after a restart so that state is rebuilt (Zeek headers); stateless parsers return ``False``.
A parser that buffers may also have ``finish() -> list[Rejected]``, called at the end of a file
(rotated away, or the end of a one-shot import) to report what never completed.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Protocol

from store.records import Event, Rejected


class LineParser(Protocol):
    def __call__(self, line: str) -> Event | Rejected | None: ...

    def preamble(self, line: str) -> bool: ...


def registry() -> dict[str, ModuleType]:
    """Every sensor format module in this package, by its ``FORMAT`` name."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "FORMAT", None)
        if name:
            found[name] = module
    return found
