"""Offline GeoIP: country and ASN of an IP address, with special-purpose ranges named, not located.

Data: the database bundled with the ``geoip2fast`` PyPI package (no request leaves the server).
The default file ``geoip2fast-asn-ipv6.dat.gz`` gives country and ASN for IPv4 and IPv6. geoip2fast
itself holds it as Python lists of Python integers: about 110 MB per process. Here it is unpickled
once, in a short-lived child process, into flat arrays (``CompactDatabase``: about 25 MB, the same
answers, checked against geoip2fast in ``tests/pipeline/test_pipeline_geoip.py``); the collector
process never holds the lists. ``WATCHFLOOR_GEOIP_COMPACT=0`` (or a child that cannot run) falls back
to geoip2fast in process. ``WATCHFLOOR_GEOIP_DATA_FILE=geoip2fast-ipv6.dat.gz`` selects country only
(ASN is then empty), which is rarely worth it now.

Special ranges come from ``ipaddress`` first, because the embedded database does not flag all of them
(RFC 5737 / 3849 documentation ranges are "not found", ``::1`` comes back as ``0.0.0.0/8``):
``private`` (RFC 1918, fc00::/7), ``loopback``, ``link-local``, ``multicast``, ``cgnat`` (100.64/10),
``documentation``, ``unspecified`` and ``reserved`` (240/4, broadcast, benchmarking ...). Such an
address has no country: it is ours or nobody's, never a foreign attacker's.

City and coordinates: ``GeoIP(city=...)`` takes an open city database (``pipeline.geoip_city``, a
MaxMind-format ``.mmdb`` configured as ``settings.geoip_city_database``; ``pipeline.ingest.configured_geoip``
opens it). A global address the city database places gets ``city``, ``latitude``, ``longitude`` and
``accuracy_km``, and the city database's country with them (so a point and its country always agree);
the ASN still comes from the embedded database. Special ranges are never looked up there. Without a city
database nothing is looked up twice and those fields stay ``None``.
"""
from __future__ import annotations

import bisect
import ipaddress
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
from array import array
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

GEOIP_DATA_FILE = os.environ.get("WATCHFLOOR_GEOIP_DATA_FILE", "geoip2fast-asn-ipv6.dat.gz")
GEOIP_COMPACT = os.environ.get("WATCHFLOOR_GEOIP_COMPACT", "1").strip().lower() not in ("0", "false", "no", "off")
CACHE_SIZE = 16384  # distinct addresses remembered (~3 MB); sensors repeat the same few thousand

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_DOCUMENTATION = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20",
))
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))

GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class GeoInfo:
    """Where an address is: ``scope`` is ``global`` or the special range it belongs to."""

    scope: str
    country: str | None = None
    asn: str | None = None
    # From the city database, when one is configured and places the address (never for special ranges).
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_km: int | None = None

    @property
    def is_global(self) -> bool:
        return self.scope == GLOBAL

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


INVALID = GeoInfo("invalid")


def special_scope(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """The special-purpose range an address belongs to, or ``None`` for a routable public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in _CGNAT:
        return "cgnat"
    if any(address in net for net in _DOCUMENTATION):
        return "documentation"
    if any(address in net for net in _PRIVATE):
        return "private"
    if address.is_reserved or address.is_private or not address.is_global:
        return "reserved"  # 240/4, broadcast, 198.18/15, 192.0.0/24, 6to4 relays, ...
    return None


_database: Any = None
_database_lock = threading.Lock()


def _load_database() -> Any:
    """The database, loaded once per process on first use: compact (~20 MB) unless that fails."""
    global _database
    if _database is None:
        with _database_lock:
            if _database is None:
                loaded = None
                if GEOIP_COMPACT:
                    try:
                        loaded = CompactDatabase.from_child(GEOIP_DATA_FILE)
                    except Exception:  # noqa: BLE001 - no child process, odd file: geoip2fast as it comes
                        loaded = None
                if loaded is None:
                    from geoip2fast import GeoIP2Fast

                    loaded = GeoIP2Fast(geoip2fast_data_file=GEOIP_DATA_FILE)
                _database = loaded
    return _database


# -- the compact form ----------------------------------------------------------------------------

_MAX_IPV4 = 2 ** 32  # geoip2fast's MAX_IPv4: addresses up to it are sized as IPv4 networks
_NOT_FOUND = "--"    # geoip2fast's answer for private and unknown networks
_PRIVATE_IDS = 16    # geoip2fast: country ids below this are its reserved / private networks


class _Result(NamedTuple):
    country_code: str
    asn_name: str
    is_private: bool


class _Networks:
    """One sorted list of networks (first address, value id, prefix length) in flat arrays.

    First addresses below 2**32 sit in a ``uint32`` array; the rest (IPv6) in a bytes buffer of 16-byte
    big-endian integers searched with a small binary search, together one sorted sequence.
    """

    def __init__(self, low: array, high: bytes, ids: array, lengths: bytes) -> None:
        self.low, self.high, self.ids, self.lengths = low, high, ids, lengths
        self.n_low = len(low)
        self.n_high = len(high) // 16

    def _high(self, i: int) -> int:
        return int.from_bytes(self.high[16 * i:16 * i + 16], "big")

    def find(self, value: int) -> int:
        """Index of the last network whose first address is <= ``value`` (-1 when none)."""
        if value < _MAX_IPV4 or not self.n_high or value < self._high(0):
            return bisect.bisect_right(self.low, value) - 1 if value < _MAX_IPV4 else self.n_low - 1
        lo, hi = 0, self.n_high
        while lo < hi:
            mid = (lo + hi) // 2
            if value < self._high(mid):
                hi = mid
            else:
                lo = mid + 1
        return self.n_low + lo - 1

    def first(self, i: int) -> int:
        return self.low[i] if i < self.n_low else self._high(i - self.n_low)


class CompactDatabase:
    """geoip2fast's networks in flat arrays: ``lookup`` answers as ``GeoIP2Fast.lookup`` does.

    ``country_code`` (``--`` for private and unknown networks), ``asn_name`` ("" when none) and
    ``is_private``, with geoip2fast's own rules: a network covers ``2**(32 - len)`` addresses for an
    address up to 2**32, else ``2**(128 - len)``; the ASN table of a file with IPv6 always uses the
    IPv6 size.
    """

    def __init__(self, countries: _Networks, country_codes: list[str], asns: _Networks | None,
                 asn_names: list[str], asn_wide: bool) -> None:
        self.countries, self.country_codes = countries, country_codes
        self.asns, self.asn_names, self.asn_wide = asns, asn_names, asn_wide

    @classmethod
    def from_child(cls, data_file: str) -> "CompactDatabase":
        """Unpickle and flatten in a child process, so this process never holds geoip2fast's lists."""
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--compact", data_file],
                              capture_output=True, check=True, timeout=300)
        return cls.from_blob(done.stdout)

    @classmethod
    def from_blob(cls, blob: bytes) -> "CompactDatabase":
        parts = pickle.loads(blob)
        low = array("I")
        low.frombytes(parts["country_low"])
        ids = array("H")
        ids.frombytes(parts["country_ids"])
        countries = _Networks(low, parts["country_high"], ids, parts["country_lengths"])
        asns = None
        if parts["asn_ids"] is not None:
            asn_low = array("I")
            asn_low.frombytes(parts["asn_low"])
            asn_ids = array("I")
            asn_ids.frombytes(parts["asn_ids"])
            asns = _Networks(asn_low, parts["asn_high"], asn_ids, parts["asn_lengths"])
        names = parts["asn_names"].split("\x00") if parts["asn_names"] else []
        return cls(countries, parts["country_codes"], asns, names, parts["asn_wide"])

    @staticmethod
    def _value(ip: str) -> int:
        try:
            return struct.unpack(">L", socket.inet_aton(ip))[0]
        except OSError:
            return int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")

    def lookup(self, ip: str) -> _Result:
        try:
            value = self._value(ip)
        except (OSError, ValueError):
            return _Result("", "", False)
        nets = self.countries
        i = nets.find(value)
        if i < 0:
            return _Result("", "", False)
        bits = 32 if value <= _MAX_IPV4 else 128
        if value > nets.first(i) + 2 ** (bits - nets.lengths[i]) - 1:
            return _Result(_NOT_FOUND, "", False)
        country_id = nets.ids[i]
        private = country_id < _PRIVATE_IDS
        return _Result(_NOT_FOUND if private else self.country_codes[country_id], self._asn(value), private)

    def _asn(self, value: int) -> str:
        nets = self.asns
        if nets is None:
            return ""
        i = nets.find(value)
        if i < 0:
            return ""
        bits = 128 if self.asn_wide else 32
        if value > nets.first(i) + 2 ** (bits - nets.lengths[i]) - 1:
            return ""
        return self.asn_names[nets.ids[i]]


def _split(firsts: list[int]) -> tuple[bytes, bytes]:
    cut = bisect.bisect_left(firsts, _MAX_IPV4)
    return array("I", firsts[:cut]).tobytes(), b"".join(v.to_bytes(16, "big") for v in firsts[cut:])


def compact_blob(data_file: str) -> bytes:
    """The child's work: geoip2fast's pickled lists → flat arrays, pickled for the parent."""
    import gzip

    path = data_file
    if not os.path.isabs(path) and not os.path.exists(path):
        import geoip2fast

        path = os.path.join(os.path.dirname(geoip2fast.__file__), data_file)
    with gzip.open(path, "rb") as handle:
        version, info, _total, database = pickle.load(handle)
    if version not in (120, 121) or not info.get("country") or info.get("city"):
        raise ValueError(f"{data_file}: not a geoip2fast country database (version {version})")
    database = list(database)
    del _total
    # Each list is converted, then dropped, so the child's peak stays near the unpickled size.
    if info.get("asn"):
        names_at, asn_names_at, firsts_at, asn_firsts_at, ids_at, asn_ids_at, lengths_at, asn_lengths_at = (
            2, 3, 4, 5, 6, 7, 8, 9)
    else:
        names_at, firsts_at, ids_at, lengths_at = 1, 2, 3, 4
        asn_names_at = asn_firsts_at = asn_ids_at = asn_lengths_at = None
    index = database[0]

    def take(at: int) -> Any:
        value, database[at] = database[at], None
        return value

    def flat(at: int) -> list[int]:
        return [v for chunk in take(at) for v in chunk]

    parts: dict[str, Any] = {"asn_wide": index[-1] > _MAX_IPV4}  # geoip2fast's ``self.ipv6``
    parts["country_low"], parts["country_high"] = _split(flat(firsts_at))
    parts["country_ids"] = array("H", flat(ids_at)).tobytes()
    parts["country_lengths"] = bytes(flat(lengths_at))
    parts["country_codes"] = [item.split(":")[0] for item in take(names_at)]
    parts.update(asn_low=None, asn_high=None, asn_ids=None, asn_lengths=None, asn_names="")
    if asn_firsts_at is not None:
        parts["asn_low"], parts["asn_high"] = _split(flat(asn_firsts_at))
        parts["asn_ids"] = array("I", flat(asn_ids_at)).tobytes()
        parts["asn_lengths"] = bytes(flat(asn_lengths_at))
        parts["asn_names"] = "\x00".join(take(asn_names_at))
    return pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)


class GeoIP:
    """Looks addresses up with a per-instance LRU cache over the shared, lazily loaded database.

    ``city``: an open ``pipeline.geoip_city.CityDatabase`` (anything with ``lookup(ip) -> CityInfo | None``)
    adds city and coordinates; its answers are cached here with the rest, so open it with
    ``cache_size=0`` to avoid a second cache of the same addresses.
    """

    def __init__(self, cache_size: int = CACHE_SIZE, city: Any = None) -> None:
        self.city = city
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup if city is None else self._lookup_city)

    def _lookup_city(self, ip: str) -> GeoInfo:
        found = self._lookup(ip)
        if found.scope != GLOBAL:
            return found  # private, reserved, invalid ...: ours or nobody's, never placed on a map
        place = self.city.lookup(ip)
        if place is None or not place.has_coordinates:
            return found
        return GeoInfo(GLOBAL, place.country or found.country, found.asn, place.city, place.latitude,
                       place.longitude, place.accuracy_radius)

    @staticmethod
    def _lookup(ip: str) -> GeoInfo:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return INVALID
        scope = special_scope(address)
        if scope is not None:
            return GeoInfo(scope)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            ip = str(address.ipv4_mapped)
        result = _load_database().lookup(ip)
        code = result.country_code
        # geoip2fast answers "--" for private or unknown networks and "" for errors: no country then.
        country = code if isinstance(code, str) and len(code) == 2 and code.isalpha() else None
        asn = result.asn_name or None
        if result.is_private:
            return GeoInfo("reserved")
        return GeoInfo(GLOBAL, country.upper() if country else None, asn)


if __name__ == "__main__" and sys.argv[1:2] == ["--compact"]:
    sys.stdout.buffer.write(compact_blob(sys.argv[2]))
