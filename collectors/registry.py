"""One lookup for every format name, whether it is a feed format or a sensor log format."""
from __future__ import annotations

from functools import cache
from types import ModuleType

from collectors import formats, sensors


@cache
def _all_formats() -> dict[str, ModuleType]:
    return {**formats.registry(), **sensors.registry()}


def format_module(name: str) -> ModuleType | None:
    return _all_formats().get(name)


def known_formats() -> list[str]:
    return sorted(_all_formats())


@cache
def _sensor_formats() -> frozenset[str]:
    return frozenset(sensors.registry())


def is_sensor_format(name: str) -> bool:
    # Cached like ``_all_formats``: the wall asks this for every source on every refresh, and
    # ``sensors.registry`` walks the package folder each time (~0.1 ms a source).
    return name in _sensor_formats()
