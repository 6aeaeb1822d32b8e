"""Threat-intel and advisory formats: one module per format, each turning a payload into records.

A format module declares, at module level:

* ``FORMAT``   the name used in source configs (``"lines"``, ``"csv"``, ``"json"``, ``"stix21"`` ...)
* ``KIND``     ``"indicators"`` or ``"advisories"``: what its records are
* ``Options``  a ``settings.base.StrictModel`` of its knobs (the source YAML's ``options:``)
* ``parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Record]``

``parse`` reads a binary stream (never the network: fetching is the transport's job) and yields
``Indicator`` / ``Advisory`` records and a ``Rejected`` for every row it cannot use. It must
stream: a large payload is never read whole into memory when the format allows it.
Shared mapping helpers (field lookup, time parsing, indicator typing and normalisation) live in
``collectors.formats.common``.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def registry() -> dict[str, ModuleType]:
    """Every format module in this package, by its ``FORMAT`` name."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "FORMAT", None)
        if name:
            found[name] = module
    return found
