"""Indicator matching: an in-memory index of the store's active indicators, probed with dict lookups.

Built from every indicator that is ``matchable`` and has a sighting with ``expired_at IS NULL AND
detect`` (``store.writes``). Per indicator the index keeps its id, the best confidence any active
feed gave it and the feeds that name it.

* ``ipv4``/``ipv6``  exact address (canonical text)
* ``cidr``           per IP version and prefix length, a dict of network integer → hits; an address
                     is masked for each length present (every matching block counts, not only the
                     most specific: two feeds listing a /24 and a /16 are two pieces of evidence)
* ``domain``         the name and each parent (``a.b.evil.example`` also tries ``b.evil.example``,
                     ``evil.example``): a listed domain covers its subdomains
* ``url``            exact, after the same canonical form the collectors write (scheme and host lower
                     case, default port dropped); a sensor URL without a scheme (Suricata's
                     ``host/path``) is tried as ``http://`` and ``https://``
* ``md5``/``sha1``/``sha256``  the event's ``file_hash``, lower case
* ``ja3``            the event's ``ja3``

``IndicatorMatcher.refresh`` rebuilds only when the store's indicator generation changed
(``max(indicators.updated_at)``, indicator count, sighting counts, ``max(expired_at)``), and checks that
at most every ``REFRESH_CHECK_MS``; an unchanged store costs one small query per interval.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from store.records import Event
from store.schema import indicators, sightings

REFRESH_CHECK_MS = 10_000
MATCHED_TYPES = ("ipv4", "ipv6", "cidr", "domain", "url", "md5", "sha1", "sha256", "ja3")
CACHE_SIZE = 16384  # addresses remembered (the pipeline also caches per address pair); bounded for memory
DEFAULT_PORTS = {"http": ":80", "https": ":443", "ftp": ":21"}
_BITS = {4: 32, 6: 128}


@dataclass(frozen=True, slots=True)
class Hit:
    """One indicator: its id, best active confidence (``None`` when no feed gave one), feeds naming it."""

    indicator_id: int
    type: str
    value: str
    confidence: int | None
    feeds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IndicatorMatch:
    """Every indicator an event matched, with the field each matched on."""

    hits: tuple[tuple[str, Hit], ...]   # (event field, hit)

    @property
    def ids(self) -> list[int]:
        return sorted({hit.indicator_id for _, hit in self.hits})

    def best_confidence(self, default: int) -> int:
        return max((hit.confidence if hit.confidence is not None else default) for _, hit in self.hits)

    @property
    def feeds(self) -> list[str]:
        return sorted({feed for _, hit in self.hits for feed in hit.feeds})

    def best(self, default: int) -> tuple[str, Hit]:
        return max(self.hits, key=lambda fh: fh[1].confidence if fh[1].confidence is not None else default)


class IndicatorIndex:
    """The lookup structures; immutable once built."""

    def __init__(self, hits: Iterable[Hit]) -> None:
        self.ips: dict[str, Hit] = {}
        self.cidrs: dict[int, dict[int, dict[int, list[Hit]]]] = {4: {}, 6: {}}
        self.domains: dict[str, Hit] = {}
        self.urls: dict[str, Hit] = {}
        self.hashes: dict[str, Hit] = {}
        self.ja3: dict[str, Hit] = {}
        self.size = 0
        for hit in hits:
            self.size += 1
            kind, value = hit.type, hit.value
            if kind in ("ipv4", "ipv6"):
                self.ips[_canonical_ip(value) or value] = hit
            elif kind == "cidr":
                try:
                    network = ipaddress.ip_network(value, strict=False)
                except ValueError:
                    continue
                by_length = self.cidrs[network.version].setdefault(network.prefixlen, {})
                by_length.setdefault(int(network.network_address), []).append(hit)
            elif kind == "domain":
                self.domains[value.lower().rstrip(".")] = hit
            elif kind == "url":
                self.urls[_canonical_url(value)] = hit
            elif kind in ("md5", "sha1", "sha256"):
                self.hashes[value.lower()] = hit
            elif kind == "ja3":
                self.ja3[value.lower()] = hit
        self._lengths = {v: sorted(t, reverse=True) for v, t in self.cidrs.items()}
        self._ip_cache: dict[str, tuple[Hit, ...]] = {}
        self._domain_cache: dict[str, tuple[Hit, ...]] = {}

    def match_ip(self, ip: str) -> tuple[Hit, ...]:
        found = self._ip_cache.get(ip)
        if found is not None:
            return found
        hits: list[Hit] = []
        exact = self.ips.get(ip)
        if exact is not None:
            hits.append(exact)
        if self._lengths[4] or self._lengths[6]:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                address = None
            if address is not None:
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                    address = address.ipv4_mapped
                value, bits, tables = int(address), _BITS[address.version], self.cidrs[address.version]
                for length in self._lengths[address.version]:
                    block = tables[length].get(value & (((1 << length) - 1) << (bits - length)))
                    if block:
                        hits.extend(block)
        result = tuple(hits)
        _remember(self._ip_cache, ip, result)
        return result

    def match_domain(self, domain: str) -> tuple[Hit, ...]:
        found = self._domain_cache.get(domain)
        if found is not None:
            return found
        name = domain.lower().rstrip(".")
        hits = []
        while name:
            hit = self.domains.get(name)
            if hit is not None:
                hits.append(hit)
            _, _, name = name.partition(".")
        result = tuple(hits)
        _remember(self._domain_cache, domain, result)
        return result

    def match_url(self, url: str) -> Hit | None:
        if "://" in url:
            return self.urls.get(_canonical_url(url))
        return self.urls.get(_canonical_url("http://" + url)) or self.urls.get(_canonical_url("https://" + url))

    def match(self, event: Event) -> IndicatorMatch | None:
        """All indicators the event's addresses, domain, URL, file hash and JA3 match; ``None`` when none."""
        if not self.size:
            return None
        found = self.match_addresses(event.src_ip, event.dst_ip) + self.match_application(event)
        return IndicatorMatch(found) if found else None

    def match_addresses(self, src_ip: str | None, dst_ip: str | None) -> tuple[tuple[str, Hit], ...]:
        """``(field, hit)`` for the source, then the destination address (the pipeline caches this per pair)."""
        if not (self.ips or self._lengths[4] or self._lengths[6]):
            return ()
        found: tuple[tuple[str, Hit], ...] = ()
        if src_ip:
            found = tuple(("src_ip", hit) for hit in self.match_ip(src_ip))
        if dst_ip:
            found += tuple(("dst_ip", hit) for hit in self.match_ip(dst_ip))
        return found

    def match_application(self, event: Event) -> tuple[tuple[str, Hit], ...]:
        """``(field, hit)`` for the domain, URL, file hash and JA3, in that order; ``()`` for most events."""
        if not (event.domain or event.url or event.file_hash or event.ja3):
            return ()
        found: list[tuple[str, Hit]] = []
        if event.domain and self.domains:
            found.extend(("domain", hit) for hit in self.match_domain(event.domain))
        if event.url and self.urls:
            hit = self.match_url(event.url)
            if hit is not None:
                found.append(("url", hit))
        if event.file_hash and self.hashes:
            hit = self.hashes.get(event.file_hash.lower())
            if hit is not None:
                found.append(("file_hash", hit))
        if event.ja3 and self.ja3:
            hit = self.ja3.get(event.ja3.lower())
            if hit is not None:
                found.append(("ja3", hit))
        return tuple(found)


EMPTY_INDEX = IndicatorIndex(())


def load_hits(conn: Connection) -> list[Hit]:
    """Every matchable indicator with an active detecting sighting, with its best confidence and feeds."""
    rows = conn.execute(
        select(indicators.c.id, indicators.c.type, indicators.c.value, sightings.c.source_id,
               sightings.c.confidence)
        .join(sightings, sightings.c.indicator_id == indicators.c.id)
        .where(sightings.c.expired_at.is_(None), sightings.c.detect.is_(True), indicators.c.matchable.is_(True),
               indicators.c.type.in_(MATCHED_TYPES))
    )
    merged: dict[int, list[Any]] = {}
    for row in rows:
        entry = merged.get(row.id)
        if entry is None:
            merged[row.id] = [row.type, row.value, row.confidence, {row.source_id}]
            continue
        if row.confidence is not None and (entry[2] is None or row.confidence > entry[2]):
            entry[2] = row.confidence
        entry[3].add(row.source_id)
    return [Hit(i, t, v, c, tuple(sorted(f))) for i, (t, v, c, f) in merged.items()]


def generation(conn: Connection) -> tuple[Any, ...]:
    """A cheap signature that changes whenever the set of active indicators or their confidence can have."""
    ind = conn.execute(select(func.max(indicators.c.updated_at), func.count())).one()
    sig = conn.execute(
        select(func.count(), func.count(sightings.c.expired_at), func.max(sightings.c.expired_at))
    ).one()
    return (*tuple(ind), *tuple(sig))


class IndicatorMatcher:
    """Holds the current index and rebuilds it when the store's indicators changed."""

    def __init__(self, check_every_ms: int = REFRESH_CHECK_MS) -> None:
        self.index: IndicatorIndex = EMPTY_INDEX
        self.check_every_ms = check_every_ms
        self._generation: tuple[Any, ...] | None = None
        self._checked_at: int | None = None

    def check_soon(self) -> None:
        """Make the next ``refresh`` look at the store whatever the interval (a feed run just wrote)."""
        self._checked_at = None

    def refresh(self, conn: Connection, now_ms: int, *, force: bool = False) -> bool:
        """Rebuild when due and changed; returns whether it rebuilt."""
        if not force and self._checked_at is not None and now_ms - self._checked_at < self.check_every_ms:
            return False
        self._checked_at = now_ms
        current = generation(conn)
        if not force and current == self._generation:
            return False
        self.index = IndicatorIndex(load_hits(conn))
        self._generation = current
        return True

    def match(self, event: Event) -> IndicatorMatch | None:
        return self.index.match(event)


def _remember(cache: dict[str, tuple[Hit, ...]], key: str, value: tuple[Hit, ...]) -> None:
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _canonical_ip(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _canonical_url(url: str) -> str:
    """Scheme and host lower case, default port and fragment dropped, empty path → ``/``; the rest as is.

    The same rules as ``collectors.formats.values`` writes indicator URLs with, kept cheap for events.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    scheme = scheme.lower()
    rest = rest.split("#", 1)[0]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    host, tail = rest[:cut].lower(), rest[cut:]
    default = DEFAULT_PORTS.get(scheme)
    if default and host.endswith(default):
        host = host[: -len(default)]
    if not tail.startswith("/") and scheme in ("http", "https"):
        tail = "/" + tail
    return f"{scheme}://{host}{tail}"
