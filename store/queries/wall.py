"""The wall's reads: the KPI tiles, the 24-hour timeline, the attack map and the located sources.

All of them read the event counts kept at ingest through the two shared rollup readers
(``_severity_buckets``, ``_country_site_pairs``), never the raw ``events`` table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import BigInteger, Connection, case, func, literal, select, union_all

from store import coarse_rollups
from store.db import Store
from store.queries.common import (
    _LABELS,
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    OPEN_STATUSES,
    _frame,
    _label,
    _level,
)
from store.records import SEVERITY_LABELS, Severity
from store.schema import events, incidents, place_rollups, rollups_pairs, rollups_severity

if TYPE_CHECKING:
    from settings.inventory import Inventory

PER_MINUTE_COLUMNS = {"minute": "time", "events": "int"}


#: The wall counts open incidents up to this many per severity and then says "10,000+": an
#: exact count of a large open set is a scan of it on every refresh, and tells the floor nothing more.
OPEN_COUNT_CAP = 10_000


@dataclass(frozen=True)
class WallKpis:
    """The KPI tiles: open incidents per severity (all five words, zeros included; a count equal
    to ``OPEN_COUNT_CAP`` means "at least"), events in the last 60 minutes and the 60 before (for
    the trend arrow), and a zero-filled per-minute series."""

    open_by_severity: dict[str, int]
    events_last_hour: int
    events_prev_hour: int
    per_minute: pd.DataFrame
    latest_event_ms: int | None
    now_ms: int

    @property
    def open_total(self) -> int:
        return sum(self.open_by_severity.values())

    def open_capped(self, label: str) -> bool:
        return self.open_by_severity.get(label, 0) >= OPEN_COUNT_CAP



def _minute_floor(ms: int) -> int:
    return ms - ms % MINUTE_MS


# The two readers of the event counts: every wall query goes through one of them. They read the
# coarse rollups (``store.coarse_rollups``), which sum ``rollups`` again per severity and per source
# country x site over aligned blocks of several spans, and give exactly what summing the minute rows
# over the same minutes gives.

def _severity_buckets(conn: Connection, first_minute: int, last_minute: int,
                      bucket_ms: int = MINUTE_MS) -> list[tuple[int, int, int]]:
    """``(bucket start, severity, events)`` over the minutes ``[first_minute, last_minute]``,
    ``bucket_ms`` a multiple of a minute; only buckets with events. Blocks whose span divides
    ``bucket_ms`` each fall in one bucket, so the window is read in the longest of those."""
    r = rollups_severity.c
    spans = [span for span in coarse_rollups.SEVERITY_SPANS if bucket_ms % span == 0]
    parts = [select(r.start, r.severity, r.events).where(r.span == span, r.start >= lo, r.start <= hi)
             for span, lo, hi in coarse_rollups.tiles(first_minute, last_minute, spans)]
    if not parts:
        return []
    blocks = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    bucket = (blocks.c.start // bucket_ms) * bucket_ms if bucket_ms != MINUTE_MS else blocks.c.start
    rows = conn.execute(
        select(bucket, blocks.c.severity, func.sum(blocks.c.events)).group_by(bucket, blocks.c.severity)
    ).all()
    return [(int(m), int(s), int(n or 0)) for m, s, n in rows]


def _country_site_pairs(conn: Connection, first_minute: int, last_minute: int) -> list[tuple[str, str, int, int]]:
    """``(src_country, site, events, worst severity)`` over ``[first_minute, last_minute]``: the
    window cut into aligned hours, 15- and 5-minute blocks and edge minutes (``coarse_rollups.tiles``)."""
    p = rollups_pairs.c
    parts = [select(p.src_country, p.site, p.events, p.severity).where(p.span == span, p.start >= lo, p.start <= hi)
             for span, lo, hi in coarse_rollups.tiles(first_minute, last_minute)]
    if not parts:
        return []
    blocks = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    rows = conn.execute(
        select(blocks.c.src_country, blocks.c.site, func.sum(blocks.c.events), func.max(blocks.c.severity))
        .group_by(blocks.c.src_country, blocks.c.site)
    ).all()
    return [(c or "", s or "", int(n or 0), int(lv)) for c, s, n, lv in rows]


def _open_counts_statement() -> Any:
    """The capped count of open incidents at each severity (``SEVERITY_LABELS`` order) and the newest
    event time, in one statement: each count stops at ``:cap`` entries of the status/severity index."""
    from sqlalchemy import bindparam

    def capped(label: str) -> Any:
        inner = (select(literal(1)).select_from(incidents)
                 .where(incidents.c.status.in_(OPEN_STATUSES), incidents.c.severity == _level(label))
                 .limit(bindparam("cap", type_=BigInteger)).subquery())
        return select(func.count()).select_from(inner).scalar_subquery()

    return select(*[capped(label) for label in SEVERITY_LABELS], select(func.max(events.c.ts)).scalar_subquery())


# Built once: only the cap changes between refreshes (a bound parameter), so it is compiled once.
_OPEN_COUNTS = _open_counts_statement()


def wall_kpis(store: Store, now_ms: int) -> WallKpis:
    last_minute = _minute_floor(now_ms)
    hour_start = last_minute - 59 * MINUTE_MS
    prev_start = hour_start - HOUR_MS
    with store.reader.connect() as conn:
        *open_counts, latest = conn.execute(_OPEN_COUNTS, {"cap": OPEN_COUNT_CAP}).one()
        by_label = {label: int(n) for label, n in zip(SEVERITY_LABELS, open_counts)}
        latest = int(latest) if latest is not None else None
        minute_rows = _severity_buckets(conn, prev_start, last_minute)
    counts: dict[int, int] = {}
    for minute, _severity, n in minute_rows:
        counts[minute] = counts.get(minute, 0) + n
    minutes = range(hour_start, last_minute + 1, MINUTE_MS)
    per_minute = _frame(((m, counts.get(m, 0)) for m in minutes), PER_MINUTE_COLUMNS)
    prev = sum(n for m, n in counts.items() if m < hour_start)
    return WallKpis(by_label, int(per_minute["events"].sum()), prev, per_minute, latest, now_ms)


TIMELINE_COLUMNS = {"bucket": "time", "severity": "str", "events": "int"}


def timeline_24h(store: Store, now_ms: int, bucket_minutes: int = 15, hours: int = 24) -> pd.DataFrame:
    """Events per bucket and severity over the last ``hours``, zero-filled: every bucket appears
    with all five severities (critical first), so an empty day is a flat line, not a gap."""
    bucket_ms = bucket_minutes * MINUTE_MS
    last_bucket = now_ms - now_ms % bucket_ms
    first_bucket = last_bucket - (hours * HOUR_MS // bucket_ms - 1) * bucket_ms
    with store.reader.connect() as conn:
        rows = _severity_buckets(conn, first_bucket, _minute_floor(now_ms), bucket_ms)
    counts: dict[tuple[int, str], int] = {}
    for bucket, level, n in rows:
        key = (bucket, _LABELS.get(level, "unknown"))
        counts[key] = counts.get(key, 0) + n
    grid = ((b, label, counts.get((b, label), 0))
            for b in range(first_bucket, last_bucket + 1, bucket_ms) for label in SEVERITY_LABELS)
    return _frame(grid, TIMELINE_COLUMNS)


ARC_COLUMNS = {"src_country": "str", "site": "str", "events": "int", "severity": "str"}
SITE_COLUMNS = {"site": "str", "name": "str", "sector": "str", "city": "str", "lat": "float", "lon": "float",
                "criticality": "int", "severity": "str", "open_incidents": "int", "events": "int"}


@dataclass(frozen=True)
class AttackMap:
    """Where attacks come from and which of our sites they hit.

    ``arcs``: source country → site with the event count and worst severity in the window, only
    for sites of the inventory and known countries. ``sites``: every inventory site with the
    worst *open* incident active in the last 24 h (``severity`` is ``""`` when it has none) and
    its events in the window (``open_incidents`` counts up to ``SITE_OPEN_CAP``). The events the map cannot draw are counted, not dropped silently:
    ``unplaced_events`` hit targets outside the inventory, ``unknown_origin_events`` came from
    addresses without a country (internal, or not in the GeoIP database).
    """

    arcs: pd.DataFrame
    sites: pd.DataFrame
    since_ms: int
    until_ms: int
    total_events: int
    unplaced_events: int
    unknown_origin_events: int


#: Open incidents per site are counted up to this (hover text only).
SITE_OPEN_CAP = 100


def _site_open_statement() -> Any:
    """Worst severity and capped count of one site's open incidents active since ``:since``:
    one probe per severity, worst first, each stopping at its first match along the
    ``(site, last_seen)`` index (a busy site hits at once; a quiet one has few rows)."""
    from sqlalchemy import bindparam

    base = [incidents.c.site == bindparam("site"), incidents.c.last_seen >= bindparam("since"),
            incidents.c.status.in_(OPEN_STATUSES)]
    whens = [(select(literal(1)).where(*base, incidents.c.severity == level).exists(), level)
             for level in sorted((int(s) for s in Severity), reverse=True)]
    capped = select(literal(1)).select_from(incidents).where(*base).limit(SITE_OPEN_CAP).subquery()
    return select(case(*whens, else_=None), select(func.count()).select_from(capped).scalar_subquery())


# Built once: the statement is fixed and only its parameters change, so SQLAlchemy compiles it once.
_SITE_OPEN = _site_open_statement()


def _sites_open(conn: Connection, site_ids: list[str], since_ms: int) -> dict[str, tuple[int | None, int]]:
    found = {}
    for site in site_ids:
        worst, count = conn.execute(_SITE_OPEN, {"site": site, "since": since_ms}).one()
        found[site] = (None if worst is None else int(worst), int(count))
    return found


def attack_map(store: Store, inventory: Inventory, now_ms: int, hours: float = 1.0) -> AttackMap:
    since = _minute_floor(now_ms - int(hours * HOUR_MS)) + MINUTE_MS
    site_ids = {s.id for s in inventory.sites}
    with store.reader.connect() as conn:
        pair_rows = _country_site_pairs(conn, since, _minute_floor(now_ms))
        open_by_site = _sites_open(conn, [s.id for s in inventory.sites], now_ms - DAY_MS)
    arcs: dict[tuple[str, str], list[int]] = {}
    site_events: dict[str, int] = {}
    total = unplaced = unknown_origin = 0
    for country, site, count, level in pair_rows:
        total += count
        if not site or site not in site_ids:
            unplaced += count
            continue
        site_events[site] = site_events.get(site, 0) + count
        if not country:
            unknown_origin += count
            continue
        current = arcs.setdefault((country.upper(), site), [0, -1])
        current[0] += count
        current[1] = max(current[1], level)
    arc_frame = _frame(
        sorted(((c, s, n, _label(lv)) for (c, s), (n, lv) in arcs.items()), key=lambda r: (-r[2], r[0], r[1])),
        ARC_COLUMNS,
    )
    site_frame = _frame(
        ((s.id, s.name, s.sector, s.city or "", s.lat, s.lon, s.criticality, _label(open_by_site[s.id][0]),
          open_by_site[s.id][1], site_events.get(s.id, 0)) for s in inventory.sites),
        SITE_COLUMNS,
    )
    return AttackMap(arc_frame, site_frame, since, now_ms, total, unplaced, unknown_origin)


PLACE_COLUMNS = {"src_country": "str", "src_city": "str", "lat": "float", "lon": "float", "site": "str",
                 "events": "int", "severity": "str"}
#: ``source_places`` returns at most this many (place, site) pairs: what the map can draw.
PLACE_LIMIT = 120


def source_places(store: Store, inventory: Inventory, now_ms: int, hours: float = 1.0,
                  limit: int = PLACE_LIMIT) -> pd.DataFrame:
    """Located sources → our sites over the same window as ``attack_map``: country, city (``""`` when the
    database names none), coordinates, site, events and worst severity, the ``limit`` biggest first.

    Read from ``place_rollups``, which only a city GeoIP database fills: without one this is empty and
    the map places every source at its country. The window is cut into the same aligned blocks as the
    arcs' (``coarse_rollups.tiles``), so a place's count is part of its (country, site) arc's; what is
    not returned here is what the map still draws from the country."""
    since = _minute_floor(now_ms - int(hours * HOUR_MS)) + MINUTE_MS
    site_ids = [s.id for s in inventory.sites]
    if not site_ids or limit <= 0:
        return _frame([], PLACE_COLUMNS)
    p = place_rollups.c
    place = (p.src_country, p.src_city, p.src_lat, p.src_lon, p.site)
    parts = [select(*place, p.events, p.severity).where(p.span == span, p.start >= lo, p.start <= hi)
             for span, lo, hi in coarse_rollups.tiles(since, _minute_floor(now_ms))]
    if not parts:
        return _frame([], PLACE_COLUMNS)
    b = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery().c
    total = func.sum(b.events)
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(b.src_country, b.src_city, b.src_lat, b.src_lon, b.site, total, func.max(b.severity))
            .where(b.site.in_(site_ids))
            .group_by(b.src_country, b.src_city, b.src_lat, b.src_lon, b.site)
            .order_by(total.desc(), b.src_country, b.src_city, b.site)
            .limit(limit)
        ).all()
    return _frame(((c or "", city or "", float(lat), float(lon), site, int(n or 0), _label(lv))
                   for c, city, lat, lon, site, n, lv in rows), PLACE_COLUMNS)
