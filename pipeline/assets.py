"""Asset lookup: which of our sites, zones and assets an IP address belongs to (``config/assets.yaml``).

Zones: longest-prefix match over every zone network of every site, so an overlapping, more specific
network wins (a /24 OT cell carved out of a /16 IT range). The index holds, per IP version and prefix
length, a dict from the network's integer to its zone; a lookup masks the address for each length,
longest first: a handful of dict probes whatever the number of networks. Should two sites declare
the same network, the first in the file keeps it.

Assets: exact match on the asset's IP. An asset's zone is the one it names, else the zone its IP
falls in.

Results are cached per address (sensors repeat the same addresses) and bounded by ``CACHE_SIZE``.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from settings.inventory import Inventory

CACHE_SIZE = 16384  # addresses remembered (the pipeline also caches per address pair); bounded for memory


@dataclass(frozen=True, slots=True)
class ZoneHit:
    site: str
    zone: str
    zone_kind: str          # IT, OT, DMZ
    sector: str
    site_criticality: int


@dataclass(frozen=True, slots=True)
class AssetHit:
    asset_id: str
    name: str
    site: str
    zone: str | None
    zone_kind: str | None
    sector: str
    criticality: int | None
    vendor: str | None
    product: str | None
    version: str | None


class Location:
    """Where one address sits in the inventory: its zone (if any) and the asset at that IP (if any).

    The asset's site and zone win over the zone the address falls in. Derived fields are plain
    attributes, computed once per address: the pipeline reads them for every event. Compared and
    hashed by identity: the index hands out one object per address and the score memo keys on it.
    """

    __slots__ = ("zone", "asset", "site", "zone_kind", "zone_name", "sector", "known")

    def __init__(self, zone: ZoneHit | None, asset: AssetHit | None) -> None:
        self.zone = zone
        self.asset = asset
        self.site = asset.site if asset else (zone.site if zone else None)
        self.zone_kind = (asset.zone_kind if asset and asset.zone_kind else (zone.zone_kind if zone else None))
        self.zone_name = (asset.zone if asset and asset.zone else (zone.zone if zone else None))
        self.sector = asset.sector if asset else (zone.sector if zone else None)
        self.known = zone is not None or asset is not None

    def __repr__(self) -> str:
        return f"Location(site={self.site!r}, zone={self.zone_name!r}, kind={self.zone_kind!r}, " \
               f"asset={self.asset.asset_id if self.asset else None!r})"


OUTSIDE = Location(None, None)


class AssetIndex:
    """Longest-prefix zone match and exact asset match, built once from the inventory."""

    def __init__(self, inventory: Inventory, cache_size: int = CACHE_SIZE) -> None:
        # {version: {prefix length: {network int: ZoneHit}}} and the lengths present, longest first.
        self._zones: dict[int, dict[int, dict[int, ZoneHit]]] = {4: {}, 6: {}}
        self._assets: dict[str, AssetHit] = {}
        self.site_criticality: dict[str, int] = {}
        self.assets_by_id: dict[str, AssetHit] = {}
        self._bits = {4: 32, 6: 128}
        for site in inventory.sites:
            self.site_criticality[site.id] = site.criticality
            for zone in site.zones:
                hit = ZoneHit(site.id, zone.name, zone.kind, site.sector, site.criticality)
                for text in zone.networks:
                    network = ipaddress.ip_network(text, strict=False)
                    by_length = self._zones[network.version].setdefault(network.prefixlen, {})
                    by_length.setdefault(int(network.network_address), hit)
        self._lengths = {version: sorted(tables, reverse=True) for version, tables in self._zones.items()}
        for site in inventory.sites:
            kinds = {zone.name: zone.kind for zone in site.zones}
            for asset in site.assets:
                if asset.ip is None:
                    continue
                zone_name = asset.zone
                zone_kind = kinds.get(zone_name) if zone_name else None
                if zone_name is None:
                    found = self._zone(ipaddress.ip_address(asset.ip))
                    if found is not None and found.site == site.id:
                        zone_name, zone_kind = found.zone, found.zone_kind
                entry = AssetHit(asset.id, asset.name, site.id, zone_name, zone_kind, site.sector,
                                 asset.criticality, asset.vendor, asset.product, asset.version)
                self._assets.setdefault(asset.ip, entry)
                self.assets_by_id[asset.id] = entry
        self._cache: dict[str, Location] = {}
        self._cache_size = cache_size

    def locate(self, ip: str | None) -> Location:
        """Zone and asset of an address; ``OUTSIDE`` when it is none of ours or not an address."""
        if not ip:
            return OUTSIDE
        found = self._cache.get(ip)
        if found is not None:
            return found
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return OUTSIDE
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        zone = self._zone(address)
        asset = self._assets.get(str(address))
        location = Location(zone, asset) if (zone or asset) else OUTSIDE
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # crude but bounded; a full cache means a scan, and a scan moves on
        self._cache[ip] = location
        return location

    def _zone(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ZoneHit | None:
        version = address.version
        value = int(address)
        bits = self._bits[version]
        tables = self._zones[version]
        for length in self._lengths[version]:
            mask = ((1 << length) - 1) << (bits - length)
            hit = tables[length].get(value & mask)
            if hit is not None:
                return hit
        return None
