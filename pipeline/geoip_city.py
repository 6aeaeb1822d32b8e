"""Optional city-level GeoIP: coordinates of an address from a MaxMind-format city database (``.mmdb``).

The bundled ``geoip2fast`` data (``pipeline/geoip.py``) gives country and ASN but no coordinates. An
operator who has a city database can set ``geoip_city_database: /path/to/file.mmdb`` in settings.yaml
(GitHub issue 5); this module reads it with MaxMind's own ``maxminddb`` reader, fully offline.

Accepted layouts (all share the GeoIP2 City record shape ``country.iso_code``, ``city.names.en``,
``location.{latitude,longitude,accuracy_radius}``):

* MaxMind GeoLite2-City, GeoIP2-City (and its regional editions), GeoIP2-Enterprise;
* DB-IP "IP to City Lite" (``DBIP-City-Lite``) and DB-IP's MaxMind-compatible city/location editions.

A Country or ASN database is refused when opened (``metadata().database_type``), not discovered later as
"no coordinates anywhere". Every failure to open is a ``CityDatabaseError`` whose text is
``<path>: <reason>``, ready for ``settings.yaml: geoip_city_database: <reason>``.

Special-purpose addresses (private, loopback, documentation, ...) are never looked up: they are classified
by ``pipeline.geoip.special_scope`` and answer ``None``, like an address the database does not know.

Thread safety: ``maxminddb``'s reader (C extension or pure Python, both over ``mmap``) is safe for
concurrent lookups, and ``functools.lru_cache`` is too, so one ``CityDatabase`` serves every thread.
"""
from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Self

import maxminddb

from pipeline.geoip import special_scope

# -- parameters ------------------------------------------------------------------------------------

CACHE_SIZE = 16384  # distinct addresses remembered per instance; sensors repeat the same few thousand
NAME_LANGUAGE = "en"  # city names in English: the wall and the exports are in English
# Substrings of ``metadata().database_type`` (lower-cased) that mean "has city and location records".
# GeoIP2-Enterprise and DB-IP's "(compat=Enterprise)" editions hold the City fields as a superset.
CITY_TYPE_MARKERS = ("city", "enterprise")
OPEN_MODE = maxminddb.MODE_AUTO  # C extension over mmap when installed, else pure Python over mmap


class CityDatabaseError(Exception):
    """A city database that cannot be used: ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CityInfo:
    """What a city database says about an address; any field may be ``None`` (not in the record)."""

    country: str | None = None           # ISO 3166-1 alpha-2, upper case
    city: str | None = None              # English name
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius: int | None = None   # km, MaxMind only (DB-IP Lite has none)

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class CityDatabase:
    """An open city database with a per-instance LRU cache; build it with ``CityDatabase.open(path)``."""

    def __init__(self, reader: Any, path: str, database_type: str, cache_size: int = CACHE_SIZE) -> None:
        self._reader = reader
        self.path = path
        self.database_type = database_type
        self._ipv4_only = reader.metadata().ip_version == 4
        # Per instance, not module-level: a reopened (updated) file must not answer from the old cache.
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup)

    @classmethod
    def open(cls, path: str | os.PathLike[str], cache_size: int = CACHE_SIZE) -> CityDatabase:
        """Open and check ``path``; raises ``CityDatabaseError`` naming the path and the reason."""
        name = os.path.expanduser(os.fspath(path))
        # Checked before maxminddb so the operator reads a plain reason, not a C-extension message.
        if not os.path.exists(name):
            raise CityDatabaseError(name, "no such file")
        if os.path.isdir(name):
            raise CityDatabaseError(name, "is a directory, not an .mmdb file")
        if not os.access(name, os.R_OK):
            raise CityDatabaseError(name, "not readable (permission denied)")
        try:
            reader = maxminddb.open_database(name, mode=OPEN_MODE)
        except maxminddb.InvalidDatabaseError:
            # maxminddb's own text repeats the path and adds nothing else.
            raise CityDatabaseError(name, "not a MaxMind DB (.mmdb) file") from None
        except (OSError, ValueError) as exc:  # empty file (mmap of 0 bytes), I/O error, ...
            raise CityDatabaseError(name, f"cannot be read ({exc})") from None
        try:
            database_type = str(reader.metadata().database_type or "")
        except Exception as exc:  # noqa: BLE001 - odd metadata: refuse the file, never crash the check
            reader.close()
            raise CityDatabaseError(name, f"unreadable metadata ({exc})") from None
        if not any(marker in database_type.lower() for marker in CITY_TYPE_MARKERS):
            reader.close()
            raise CityDatabaseError(
                name,
                f"not a city database (type {database_type or 'unknown'!r}; "
                "use GeoLite2-City, GeoIP2-City or DB-IP City Lite)",
            )
        return cls(reader, name, database_type, cache_size)

    def _lookup(self, ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> CityInfo | None:
        try:
            address = ip if not isinstance(ip, str) else ipaddress.ip_address(ip)
        except ValueError:
            return None
        if special_scope(address) is not None:
            return None  # ours or nobody's: no location, and no lookup spent on it
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:a.b.c.d is the IPv4 host, located as such
        if self._ipv4_only and address.version == 6:
            return None  # maxminddb raises ValueError for IPv6 in an IPv4-only tree; it just is not there
        record = self._reader.get(address)
        if not isinstance(record, dict):
            return None
        return _city_info(record)

    def close(self) -> None:
        self._reader.close()
        self.lookup.cache_clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _city_info(record: dict[str, Any]) -> CityInfo:
    """The fields of a GeoIP2-City-shaped record; any missing or malformed key becomes ``None``."""
    # ``country`` is where the address is used; ``registered_country`` (the owner's registration)
    # is the only one present for some anycast / satellite networks, better than nothing there.
    country = _iso2(_get(record, "country", "iso_code")) or _iso2(_get(record, "registered_country", "iso_code"))
    city = _get(record, "city", "names", NAME_LANGUAGE)
    latitude = _coordinate(_get(record, "location", "latitude"), 90.0)
    longitude = _coordinate(_get(record, "location", "longitude"), 180.0)
    if latitude is None or longitude is None:
        latitude = longitude = None  # half a point cannot be drawn
    radius = _get(record, "location", "accuracy_radius")
    return CityInfo(
        country=country,
        city=city if isinstance(city, str) and city else None,
        latitude=latitude,
        longitude=longitude,
        accuracy_radius=radius if isinstance(radius, int) and not isinstance(radius, bool) and radius >= 0 else None,
    )


def _get(record: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def _iso2(code: Any) -> str | None:
    return code.upper() if isinstance(code, str) and len(code) == 2 and code.isalpha() else None


def _coordinate(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and -limit <= value <= limit else None
