"""Offline GeoIP: country and ASN of an IP address, with special-purpose ranges named, not located.

Data: the database bundled with the ``geoip2fast`` PyPI package (no request leaves the server).
The default file ``geoip2fast-asn-ipv6.dat.gz`` gives country and ASN for IPv4 and IPv6; loading it
takes about 0.5 s and 120 MB of memory, once per process, on first use. Where memory is tight, set
``WATCHFLOOR_GEOIP_DATA_FILE=geoip2fast-ipv6.dat.gz`` (country only, about 60 MB; ASN is then empty).

Special ranges come from ``ipaddress`` first, because the embedded database does not flag all of them
(RFC 5737 / 3849 documentation ranges are "not found", ``::1`` comes back as ``0.0.0.0/8``):
``private`` (RFC 1918, fc00::/7), ``loopback``, ``link-local``, ``multicast``, ``cgnat`` (100.64/10),
``documentation``, ``unspecified`` and ``reserved`` (240/4, broadcast, benchmarking ...). Such an
address has no country: it is ours or nobody's, never a foreign attacker's.

A city-level MaxMind ``.mmdb`` (``settings.geoip_city_database``) is not read yet (see docs/pipeline.md).
"""
from __future__ import annotations

import ipaddress
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

GEOIP_DATA_FILE = os.environ.get("WATCHFLOOR_GEOIP_DATA_FILE", "geoip2fast-asn-ipv6.dat.gz")
CACHE_SIZE = 65536  # distinct addresses remembered; sensors repeat the same few thousand

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

    @property
    def is_global(self) -> bool:
        return self.scope == GLOBAL


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
    """The geoip2fast database, loaded once per process (0.5 s, ~120 MB) on first use."""
    global _database
    if _database is None:
        with _database_lock:
            if _database is None:
                from geoip2fast import GeoIP2Fast

                _database = GeoIP2Fast(geoip2fast_data_file=GEOIP_DATA_FILE)
    return _database


class GeoIP:
    """Looks addresses up with a per-instance LRU cache over the shared, lazily loaded database."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup)

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
