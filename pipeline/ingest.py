"""The event pipeline: dedupe → GeoIP → asset lookup → indicator match → ATT&CK → score → correlate → store.

``EventPipeline.ingest`` runs inside the caller's write transaction (the caller commits its file
cursor in the same one), so a batch is stored whole or not at all. Per batch it issues a fixed
handful of statements whatever its size: the dedupe lookup, the incident candidates, one
executemany each for new incidents, incident updates, events and rollups.

Dedupe: by ``Event.content_hash`` within the batch, and by ``(ts, content_hash)`` against the store
(the same raw line always parses to the same ts; see ``store/schema.py``), before anything is
counted, so a replayed file never inserts an event twice nor inflates an incident's count.

Speed (``bench/bench_ingest.py``, ``docs/pipeline.md`` "Performance notes"): rows are lists in
``events_write.EVENT_COLUMNS`` order handed to the driver's executemany; what an event takes from its
addresses (GeoIP, inventory, address indicators, target choice) is computed once per address pair;
scores and their JSON are memoised; the cyclic GC is paused for the batch (``gc_paused``).

Which events make incidents (``config/scoring.yaml`` ``incidents``): the kinds listed (alerts,
anomalies, drops, notices, intel hits), any indicator hit, and anything scoring at ``min_level``
(default medium) or above. The rest (a plain DNS query, a flow) is stored, scored and counted in
the rollups but opens no incident: otherwise every DNS lookup inside an OT zone would page someone.

The target of an event (``site``, ``sector``, ``zone``, ``asset``) is the destination when it is in
the inventory, else the source when that is (our asset talking out, e.g. beaconing), else nothing.
``src_site``/``src_zone`` say where an internal source sits (IT→OT detection).

Source location: with a city database configured (``geoip_city_database``, opened by
``configured_geoip``) a located source gets ``src_city``/``src_lat``/``src_lon`` on its event, and the
batch also counts events per minute × site × source place (``events_write.upsert_place_rollups``) for
the map. Both come from the per-address cache, and without a city database nothing is done per event.
"""
from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import Connection

from pipeline.assets import OUTSIDE, AssetIndex, Location
from pipeline.attack import AttackTagger, load_map
from pipeline.correlate import Correlator
from pipeline.encode import encode as _encode, to_json as _json
from pipeline.exposure import KevExposure
from pipeline.exposure_findings import alias_keys
from pipeline.geoip import GeoInfo, GeoIP
from pipeline.indicators import Hit, IndicatorMatch, IndicatorMatcher
from pipeline.scoring import Scorer, load_scoring
from settings.loader import Config, ConfigError, city_database_path
from settings.scoring import ScoringConfig
from store import events_write, run_lock
from store.db import Store, now_ms as wall_clock_ms, to_ms
from store.records import Event, Severity, content_hash

MINUTE_MS = 60_000
MEMO_SIZE = 16384
PAIR_CACHE_SIZE = 16384     # (source, destination) enrichments kept (~8 MB when full)
ADDRESS_CACHE_SIZE = 16384  # per-address GeoIP + location + indicator hits, shared by the pairs

log = logging.getLogger(__name__)


def configured_geoip(config: Config) -> GeoIP:
    """The GeoIP of this configuration: the embedded country + ASN data, plus the city database of
    ``geoip_city_database`` when one is set. A city database that cannot be opened is left out with a
    warning (``load_config`` has already listed it as a problem): events still get their country."""
    path = city_database_path(config.folder, config.settings)
    if path is None:
        return GeoIP()
    from pipeline.geoip_city import CityDatabase, CityDatabaseError

    try:
        # No cache of its own: ``GeoIP`` caches the combined answer per address.
        city = CityDatabase.open(path, cache_size=0)
    except CityDatabaseError as exc:
        log.warning("geoip_city_database: %s; sources get country and ASN only", exc)
        return GeoIP()
    log.info("GeoIP: city database %s (%s)", city.path, city.database_type)
    return GeoIP(city=city)




def _make_room(cache: dict, size: int) -> None:
    """Bound a cache: when full, forget the half inserted first (dicts keep insertion order). Cheaper
    than an LRU on every hit, and unlike clearing it keeps what a scan is still working through."""
    if len(cache) >= size:
        for key in list(islice(cache, size // 2)):
            del cache[key]


_SENSOR_LEVEL: dict[Any, int | None] = {None: None, **{level: int(level) for level in Severity}}
# Scores that name the source address (IT→OT from outside the inventory) are memoised with this mark
# in place of the address, and the address is written into the memoised JSON per event.
_SRC_MARK = "\x00source\x00"
_SRC_MARK_JSON = _encode(_SRC_MARK)[1:-1]
_NO_ADDRESS: tuple[Any, Location, tuple] = (None, OUTSIDE, ())


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch (parse + ingest), then restore it.

    A batch allocates tens of thousands of small acyclic objects (events, dicts, rows); meanwhile the
    collector would walk every live container again and again, the pipeline's caches included
    (measured: a third of the batch time). Nothing in a batch makes cycles, so pausing is safe; what
    the batch leaves behind is collected after it as usual.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class _Pair:
    """Everything an event's enrichment takes from its two addresses, computed once per pair.

    ``columns`` are the row's ``site`` … ``dst_country`` values in ``events_write.EVENT_COLUMNS``
    order (they are contiguous there); ``score_part`` is the pair's share of the score memo key.
    ``rollup`` is ``(site, sector, src_country)``, with the source's place
    ``(city, lat, lon)`` as a fourth item when a city database located it and the target is a site.
    """

    __slots__ = ("columns", "target", "src", "target_is_dst", "ip_hits", "score_part", "rollup", "src_text")

    def __init__(self, columns: tuple[Any, ...], target: Location, src: Location, target_is_dst: bool,
                 ip_hits: tuple[tuple[str, Hit], ...], score_part: tuple[Any, ...], rollup: tuple[str, str, str],
                 src_text: str | None):
        self.src_text = src_text
        self.columns = columns
        self.target = target
        self.src = src
        self.target_is_dst = target_is_dst
        self.ip_hits = ip_hits
        self.score_part = score_part
        self.rollup = rollup


_COL = {name: index for index, name in enumerate(events_write.EVENT_COLUMNS)}
_PAIR_FIRST, _PAIR_LAST = _COL["site"], _COL["dst_country"]
assert events_write.EVENT_COLUMNS[_PAIR_FIRST:_PAIR_LAST + 1] == (
    "site", "sector", "zone", "zone_kind", "asset", "src_site", "src_zone", "src_zone_kind", "src_scope",
    "src_country", "src_asn", "src_city", "src_lat", "src_lon", "dst_country")


@dataclass
class IngestResult:
    accepted: int
    duplicates: int
    incidents_new: int
    incidents_updated: int
    newest_ts: int | None


class EventPipeline:
    """Built once per process from the configuration; ``ingest`` is called once per batch."""

    def __init__(self, config: Config, store: Store, *, clock: Callable[[], int] | None = None,
                 scoring: ScoringConfig | None = None, geoip: GeoIP | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock or wall_clock_ms
        problems = []
        if scoring is None:
            scoring, found = load_scoring(config.folder)
            problems += found
        attack_map, found = load_map(config.folder)
        problems += found
        if problems:
            raise ConfigError(problems)  # a typo in the weights must not silently score with defaults
        self.scorer = Scorer(scoring)
        self.policy = scoring.incidents
        self.incident_kinds = frozenset(scoring.incidents.kinds)
        self.incident_min_level = Severity.from_label(scoring.incidents.min_level)
        # ``geoip`` for tests and tools; by default the configuration's (with its city database, if any).
        self.geoip = geoip if geoip is not None else configured_geoip(config)
        self._placing = self.geoip.city is not None
        self.assets = AssetIndex(config.inventory)
        self.indicators = IndicatorMatcher()
        self.exposure = KevExposure(self.assets.assets_by_id.values(),
                                    aliases=alias_keys(config.inventory.vendor_aliases))
        self.attack = AttackTagger(attack_map)
        self.correlator = Correlator(config.settings.incidents)
        # Events repeat the same few scores, technique sets and address pairs: all memoised.
        self._scores: dict[tuple, tuple] = {}
        self._techniques_json: dict[tuple[str, ...], str | None] = {}
        self._pairs: dict[tuple[str | None, str | None], _Pair] = {}
        self._addresses: dict[str, tuple[GeoInfo | None, Location, tuple[Hit, ...]]] = {}

    def refresh(self, conn: Connection, now_ms: int | None = None, *, force: bool = False) -> None:
        """Pick up indicator and advisory changes (cheap when nothing changed or not yet due).

        ``now_ms`` defaults to the injected clock; ``force`` rebuilds at once (e.g. after a feed run).
        """
        now_ms = self.clock() if now_ms is None else now_ms
        changed = self.indicators.refresh(conn, now_ms, force=force)
        changed = self.exposure.refresh(conn, now_ms, force=force) or changed
        if changed:
            self._scores.clear()  # memoised scores name indicators and known-exploited CVEs
            self._pairs.clear()   # cached pairs and addresses hold their address indicator hits
            self._addresses.clear()

    def ingest(self, conn: Connection, events: Sequence[Event], now_ms: int) -> IngestResult:
        """Dedupe, enrich, score, correlate and store one batch inside the caller's transaction.

        ``now_ms`` is the ingest time (``ingested_at``, incident ``updated_at``, refresh cadence).
        """
        if not events:
            return IngestResult(0, 0, 0, 0, None)
        with gc_paused():  # callers that parse the batch should pause it around the parsing too
            return self._ingest(conn, events, now_ms)

    def _ingest(self, conn: Connection, events: Sequence[Event], now_ms: int) -> IngestResult:
        run_lock.serialise_ingest(conn)  # PostgreSQL: one ingesting process at a time, as on SQLite
        self.refresh(conn, now_ms)

        # Identity: (ts, content hash). The same raw line always parses to the same ts, so a stored
        # duplicate has the batch event's ts; only events no newer than the newest stored one can be
        # duplicates, and a batch past it (a tail keeping up) needs no look-up at all.
        stamps = [to_ms(event.ts) for event in events]
        newest, oldest = max(stamps), min(stamps)
        unique: dict[str, tuple[Event, int]] = {}
        for event, ts in zip(events, stamps):
            unique.setdefault(content_hash(event.sensor, event.raw), (event, ts))
        known: set[str] = set()
        stored_newest = events_write.newest_event_ts(conn)
        if stored_newest is not None and oldest <= stored_newest:
            known = events_write.existing_keys(
                conn, [(ts, h) for h, (_, ts) in unique.items() if ts <= stored_newest])

        rows: list[list[Any]] = []
        members: list[tuple[list[Any], bool, tuple[str, ...], list[int]]] = []
        rollup: dict[tuple[int, int, tuple[str, str, str]], int] = {}
        pairs, scores, techniques_json = self._pairs, self._scores, self._techniques_json
        index = self.indicators.index
        # Domain, URL, hash and JA3 indicators are looked up only when the index has any of them.
        application = bool(index.domains or index.urls or index.hashes or index.ja3)
        techniques_of = self.attack.techniques
        incident_kinds = self.incident_kinds
        sensor_level = _SENSOR_LEVEL
        for h, (event, ts) in unique.items():
            if h in known:
                continue
            src_ip, dst_ip = event.src_ip, event.dst_ip
            pair = pairs.get((src_ip, dst_ip))
            if pair is None:
                pair = self._pair(src_ip, dst_ip)
            hits = pair.ip_hits
            if application and (event.domain or event.url or event.file_hash or event.ja3):
                hits = hits + index.match_application(event)
            score_key = (event.sensor_severity, hits, pair.score_part, event.ics_function)
            memo = scores.get(score_key)
            if memo is None:
                memo = self._score(event, pair, hits, score_key)
            level, points, explain, indicator_ids, indicator_json, worthy, marked = memo
            if marked:
                explain = explain.replace(_SRC_MARK_JSON, pair.src_text)
            techniques = techniques_of(event)
            tech_json = techniques_json.get(techniques, "")
            if tech_json == "":
                if len(techniques_json) >= MEMO_SIZE:
                    techniques_json.clear()
                tech_json = techniques_json[techniques] = _json(list(techniques))
            extra = event.extra
            row = [
                ts, event.sensor, event.kind, src_ip, event.src_port, dst_ip, event.dst_port, event.proto,
                event.app_proto, event.signature_id, event.signature, event.category,
                sensor_level[event.sensor_severity], level, points, explain, event.action, event.domain,
                event.url, event.file_hash, event.ja3, event.ics_function, *pair.columns, indicator_json,
                tech_json, None, _encode(extra) if extra else None, event.raw, h, now_ms,
            ]
            rows.append(row)
            if worthy or event.kind in incident_kinds:
                members.append((row, pair.target_is_dst, techniques, indicator_ids))
            where = (ts - ts % MINUTE_MS, level, pair.rollup)
            rollup[where] = rollup.get(where, 0) + 1

        correlation = self.correlator.assign(conn, members, now_ms)
        events_write.insert_event_rows(conn, rows)
        if self._placing:  # per distinct rollup key, not per event
            rollup = self._place_rollups(conn, rollup)
        events_write.upsert_rollups(conn, {(minute, level, *where): n for (minute, level, where), n in rollup.items()})
        return IngestResult(
            accepted=len(rows), duplicates=len(events) - len(rows), incidents_new=correlation.new,
            incidents_updated=correlation.updated, newest_ts=newest,
        )

    def _pair(self, src_ip: str | None, dst_ip: str | None) -> _Pair:
        """GeoIP, inventory location, target choice and address indicator hits of one address pair."""
        src_geo, src_loc, src_hits = self._address(src_ip) if src_ip else _NO_ADDRESS
        dst_geo, dst_loc, dst_hits = self._address(dst_ip) if dst_ip else _NO_ADDRESS
        if dst_loc.known or not src_loc.known:
            target, target_is_dst = dst_loc, True
        else:
            target, target_is_dst = src_loc, False
        asset = target.asset
        src_country = src_geo.country if src_geo else None
        src_lat = src_geo.latitude if src_geo else None
        columns = (
            target.site, target.sector, target.zone_name, target.zone_kind, asset.asset_id if asset else None,
            src_loc.site, src_loc.zone_name, src_loc.zone_kind,
            src_geo.scope if src_geo else None, src_country, src_geo.asn if src_geo else None,
            src_geo.city if src_lat is not None else None, src_lat, src_geo.longitude if src_lat is not None else None,
            dst_geo.country if dst_geo else None,
        )
        # The score is a function of the pair's locations alone; the source address only matters when
        # it is named in an IT→OT reason, and then only in the text (see ``_SRC_MARK``).
        outside_into_ot = target_is_dst and src_loc.zone is None and target.zone_kind == "OT"
        score_part = (target, src_loc, target_is_dst, outside_into_ot)
        src_text = _encode(src_ip or "an unknown source")[1:-1] if outside_into_ot else None
        ip_hits: tuple[tuple[str, Hit], ...] = ()
        if src_hits or dst_hits:  # the order ``IndicatorIndex.match`` gives: source first
            ip_hits = tuple(("src_ip", hit) for hit in src_hits) + tuple(("dst_ip", hit) for hit in dst_hits)
        rollup: tuple[Any, ...] = (target.site or "", target.sector or "", src_country or "")
        if src_lat is not None and target.site:  # only a city database gives coordinates
            rollup += ((src_geo.city or "", src_lat, src_geo.longitude),)
        pair = _Pair(columns, target, src_loc, target_is_dst, ip_hits, score_part, rollup, src_text)
        _make_room(self._pairs, PAIR_CACHE_SIZE)
        self._pairs[(src_ip, dst_ip)] = pair
        return pair

    @staticmethod
    def _place_rollups(conn: Connection,
                       rollup: dict[tuple[int, int, tuple], int]) -> dict[tuple[int, int, tuple], int]:
        """Write the per-place counts of a batch (keys whose ``where`` carries a place) and give back the
        counts by ``(minute, level, (site, sector, src_country))`` for ``upsert_rollups``."""
        plain: dict[tuple[int, int, tuple], int] = {}
        places: dict[tuple[int, str, str, str, float, float], list[int]] = {}
        for (minute, level, where), n in rollup.items():
            if len(where) == 3:
                plain[(minute, level, where)] = plain.get((minute, level, where), 0) + n
                continue
            site, sector, country, (city, lat, lon) = where
            key = (minute, level, (site, sector, country))
            plain[key] = plain.get(key, 0) + n
            counted = places.get((minute, site, country, city, lat, lon))
            if counted is None:
                places[(minute, site, country, city, lat, lon)] = [n, level]
            else:
                counted[0] += n
                counted[1] = max(counted[1], level)
        events_write.upsert_place_rollups(conn, {key: (n, level) for key, (n, level) in places.items()})
        return plain

    def _address(self, ip: str) -> tuple[GeoInfo | None, Location, tuple[Hit, ...]]:
        """GeoIP, inventory location and indicator hits of one address (cached: pairs share addresses)."""
        found = self._addresses.get(ip)
        if found is None:
            index = self.indicators.index
            found = (self.geoip.lookup(ip), self.assets.locate(ip), index.match_ip(ip) if index.size else ())
            _make_room(self._addresses, ADDRESS_CACHE_SIZE)
            self._addresses[ip] = found
        return found

    def _score(self, event: Event, pair: _Pair, hits: tuple[tuple[str, Hit], ...], key: tuple) -> tuple:
        """Score, its JSON, the indicator ids and whether the level or hits alone make it incident-worthy."""
        match = IndicatorMatch(hits) if hits else None
        asset = pair.target.asset
        score = self.scorer.score(
            sensor_severity=event.sensor_severity, match=match, target=pair.target, src=pair.src,
            src_ip=_SRC_MARK if pair.src_text is not None else event.src_ip, target_is_dst=pair.target_is_dst,
            ics_function=event.ics_function,
            known_exploited=self.exposure.for_asset(asset.asset_id) if asset else (),
        )
        indicator_ids = match.ids if match else []
        worthy = score.level >= self.incident_min_level or (match is not None and self.policy.on_indicator_hit)
        if len(self._scores) >= MEMO_SIZE:
            self._scores.clear()
        explain = _json(score.explain())
        marked = explain is not None and _SRC_MARK_JSON in explain
        memo = self._scores[key] = (int(score.level), score.points, explain, indicator_ids,
                                    _json(indicator_ids), worthy, marked)
        return memo
