"""The read side for panels: the only place the UI reads the store from.

The contract, for every function here:

* it takes the ``Store`` (and reads through ``store.reader``) plus plain parameters: ``now_ms``
  (epoch milliseconds, UTC, injected so nothing depends on the wall clock), filters, paging;
* it builds its SQL from SQLAlchemy Core expressions, so every value is a bound parameter;
* it returns a DataFrame with a fixed column list and dtypes (empty but typed when there is no
  data; times as ``datetime64[ms, UTC]``, severities as their words) or a small frozen dataclass;
* it never writes. Officer actions go through ``store.events_write``.

The wall reads the event counts kept at ingest (``rollups``, per minute x severity x site x sector x
source country, through the coarse tables of ``store.coarse_rollups``), never the raw ``events``
table, except for index-only look-ups such as the newest event time.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Connection, case, func, literal, or_, select, union_all

from store import coarse_rollups, incident_search
from store.db import Store, from_ms, loads
from store.freshness import source_freshness
from store.records import SEVERITY_LABELS, Severity
from store.schema import events, feed_runs, incidents, indicators, rollups, sightings, source_state
from store.schema import incident_log as log_table
from store.schema import place_rollups
from store.schema import rollups_pairs, rollups_severity

if TYPE_CHECKING:
    from settings.inventory import Inventory
    from settings.loader import Config
    from settings.sources import SourceConfig

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
OPEN_STATUSES: tuple[str, ...] = ("new", "acknowledged", "investigating")
STATUSES: tuple[str, ...] = ("new", "acknowledged", "investigating", "resolved", "false_positive")
#: Counting every match of a broad filter over a million incidents is the slow part of a page;
#: past this many the list says "1,000+" instead.
COUNT_CAP = 1_000
MAX_PAGE_SIZE = 500
#: The drill-down lists at most this many events of one incident (newest first).
EVENTS_CAP = 5_000


# --- typed frames ------------------------------------------------------------------------------

def _empty_like(kind: str) -> str:
    return {"time": "datetime64[ms, UTC]", "int": "int64", "Int": "Int64", "float": "float64",
            "str": "str", "bool": "bool", "object": "object"}[kind]


def _frame(rows: Iterable[Sequence[Any]], spec: dict[str, str]) -> pd.DataFrame:
    """Rows → DataFrame with exactly ``spec``'s columns and dtypes (``time`` = epoch ms → UTC)."""
    rows = list(rows)
    columns = list(zip(*rows)) if rows else [()] * len(spec)
    data: dict[str, Any] = {}
    for (name, kind), values in zip(spec.items(), columns):
        if kind == "time":
            ms = np.array([np.nan if v is None else v for v in values], dtype="float64").astype("datetime64[ms]")
            data[name] = pd.Series(pd.DatetimeIndex(ms).tz_localize("UTC"))
        else:
            data[name] = pd.Series(list(values), dtype=_empty_like(kind))
    return pd.DataFrame(data, columns=list(spec), copy=False)


_LABELS: dict[int, str] = {int(s): s.label for s in Severity}


def _label(level: int | None) -> str:
    if level is None:
        return ""
    try:
        return Severity(int(level)).label
    except ValueError:
        return "unknown"


def _level(label: str) -> int:
    return int(Severity.from_label(label))


# --- wall: KPIs, timeline, map, latest incidents ---------------------------------------------------

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


def _capped_count(conn: Connection, conds: Sequence[Any], cap: int) -> int:
    inner = select(literal(1)).select_from(incidents).where(*conds).limit(cap).subquery()
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


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


# --- incidents -------------------------------------------------------------------------------------

INCIDENT_COLUMNS = {
    "id": "int", "title": "str", "severity": "str", "status": "str", "assignee": "str", "site": "str",
    "sector": "str", "src_ip": "str", "src_country": "str", "signature": "str", "category": "str",
    "event_count": "int", "score": "int", "first_seen": "time", "last_seen": "time",
}
_INCIDENT_SELECT = [incidents.c[name] for name in INCIDENT_COLUMNS]
SORTABLE = ("last_seen", "first_seen", "severity", "score", "event_count", "status", "site", "id", "title")


@dataclass(frozen=True)
class IncidentFilters:
    """Filters of the incident list; empty means "any". Times are epoch ms, UTC: an incident
    matches the range when it was active in it (``last_seen >= since`` and ``first_seen < until``)."""

    severity: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    site: str | None = None
    sector: str | None = None
    country: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class IncidentPage:
    rows: pd.DataFrame
    total: int
    total_capped: bool
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


class _Where(NamedTuple):
    """The WHERE conditions of a filter; for a text search the trigram index can answer, also the
    candidate ids to read (``driver``, see ``incident_search.candidates``) and how many there are at
    most (``bound``), else ``None`` for both."""

    conds: list[Any]
    driver: Any = None
    bound: int | None = None


def _incident_conditions(f: IncidentFilters, conn: Connection) -> _Where:
    dialect = conn.dialect.name
    c = incidents.c
    conds: list[Any] = []
    if f.severity:
        conds.append(c.severity.in_(sorted({_level(s) for s in f.severity})))
    if f.status:
        conds.append(c.status.in_(sorted(set(f.status))))
    if f.site:
        conds.append(c.site == f.site)
    if f.sector:
        conds.append(c.sector == f.sector)
    if f.country:
        conds.append(c.src_country == f.country.upper())
    if f.since_ms is not None:
        conds.append(c.last_seen >= f.since_ms)
    if f.until_ms is not None:
        conds.append(c.first_seen < f.until_ms)
    text = (f.text or "").strip()
    if text:
        # SQLite's LIKE ignores ASCII case already and keeps the query index-friendly; elsewhere ILIKE.
        def has(col: Any) -> Any:
            return col.contains(text, autoescape=True) if dialect == "sqlite" else col.icontains(text, autoescape=True)

        # The title is the signature; ``sources`` lists every source address (``src_ip`` only the sole one).
        options = [has(c.title), has(c.sources)]
        wanted_id = int(text.lstrip("#")) if text.lstrip("#").isdigit() else None
        if wanted_id is not None:
            options.append(c.id == wanted_id)
        conds.append(or_(*options))
        # A selective text is looked up in the trigram index; the conditions above still decide among
        # its candidates, so the answer is the scan's (``store.incident_search``).
        count = incident_search.candidate_count(conn, text)
        if count is not None and count <= incident_search.MAX_CANDIDATES:
            return _Where(conds, incident_search.candidates(text, wanted_id), count + (wanted_id is not None))
    return _Where(conds)


def incidents_page(store: Store, filters: IncidentFilters = IncidentFilters(), sort: str = "-last_seen",
                   page: int = 0, page_size: int = 50) -> IncidentPage:
    """One page of the incident list, filtered and sorted in SQL.

    ``sort`` is a column of ``SORTABLE``, prefixed with ``-`` for descending (default: newest
    activity first); ties break on id. ``total`` stops counting at ``COUNT_CAP``
    (``total_capped`` then says the real number is larger).

    Two steps keep every filter fast: first the matching ids (and sort keys) are read with
    ``LIMIT COUNT_CAP + 1`` in whatever order the best index for the filter gives. When the
    filter is selective (that many or fewer matches) those ids are the whole answer: they are
    sorted here and the page is fetched by primary key, so a rare match never walks the sort
    index row by row. When it is broad, matches are dense and the sort index finds a page at once.
    A text search answered from the trigram index has at most ``incident_search.MAX_CANDIDATES``
    matches: all of them are read in the first step (by id), so it never walks the sort index.
    """
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    page = max(0, int(page))
    descending = sort.startswith("-")
    key = sort.lstrip("-+")
    if key not in SORTABLE:
        raise ValueError(f"cannot sort incidents by {key!r}; choose from {', '.join(SORTABLE)}")
    order_col = incidents.c[key]
    if key == "severity":  # worst first, then newest activity, the way a duty officer reads a queue
        order = [order_col.desc() if descending else order_col.asc(), incidents.c.last_seen.desc(), incidents.c.id.desc()]
    else:
        order = [order_col.desc(), incidents.c.id.desc()] if descending else [order_col.asc(), incidents.c.id.asc()]
    with store.reader.connect() as conn:
        where = _incident_conditions(filters, conn)
        conds = where.conds
        # One more than can match, so that fewer keys than the limit means "these are all the matches".
        key_limit = max(COUNT_CAP, where.bound or 0) + 1
        tie = incidents.c.last_seen if key == "severity" else incidents.c.id
        keys_query = select(incidents.c.id, order_col, tie)
        if where.driver is not None:  # a selective text search: read only its candidates, by id
            keys_query = keys_query.select_from(incident_search.driven_by(where.driver, incidents))
        keys = conn.execute(keys_query.where(*conds).limit(key_limit)).all()
        if len(keys) < key_limit:
            # None sorts last either way, then the key, then (severity only) newest activity, then id
            ranked = sorted(keys, key=lambda r: ((r[1] is None) != descending, r[1] if r[1] is not None else 0,
                                                 r[2] or 0, r[0]), reverse=descending)
            wanted = [r[0] for r in ranked[page * page_size:(page + 1) * page_size]]
            position = {incident_id: i for i, incident_id in enumerate(wanted)}
            rows = sorted(conn.execute(select(*_INCIDENT_SELECT).where(incidents.c.id.in_(wanted))).all(),
                          key=lambda r: position[r[0]]) if wanted else []
        elif key == "severity" and descending:
            rows = _most_severe_page(conn, conds, filters, page * page_size, page_size)
        else:
            rows = conn.execute(
                select(*_INCIDENT_SELECT).where(*conds).order_by(*order).limit(page_size).offset(page * page_size)
            ).all()
    capped = len(keys) > COUNT_CAP
    return IncidentPage(_incident_frame(rows), min(len(keys), COUNT_CAP), capped, page, page_size)


def _most_severe_page(conn: Connection, conds: list[Any], filters: IncidentFilters, offset: int,
                      size: int) -> list[Any]:
    """A page of a broad match sorted worst first, then newest: one severity at a time, each read
    newest first along the ``last_seen`` index (five short walks instead of sorting every match)."""
    levels = sorted({_level(s) for s in filters.severity} if filters.severity else {int(s) for s in Severity},
                    reverse=True)
    rows: list[Any] = []
    for level in levels:
        level_conds = [*conds, incidents.c.severity == level]
        found = _capped_count(conn, level_conds, COUNT_CAP + 1)
        if found > COUNT_CAP and offset >= COUNT_CAP:
            found = _capped_count(conn, level_conds, 1 << 62)  # deep paging: count this level exactly
        if offset >= found:
            offset -= found
            continue
        rows += conn.execute(
            select(*_INCIDENT_SELECT).where(*level_conds)
            .order_by(incidents.c.last_seen.desc(), incidents.c.id.desc()).limit(size - len(rows)).offset(offset)
        ).all()
        offset = 0
        if len(rows) >= size:
            break
    return rows


def _incident_frame(rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    sev = list(INCIDENT_COLUMNS).index("severity")
    fixed = []
    for row in rows:
        row = list(row)
        row[sev] = _label(row[sev])
        fixed.append(row)
    return _frame(fixed, INCIDENT_COLUMNS)


def recent_incidents(store: Store, min_severity: str = "high", limit: int = 8) -> pd.DataFrame:
    """The newest open incidents at ``min_severity`` or worse (the wall's "latest" list)."""
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(*_INCIDENT_SELECT)
            .where(incidents.c.status.in_(OPEN_STATUSES), incidents.c.severity >= _level(min_severity))
            .order_by(incidents.c.last_seen.desc(), incidents.c.id.desc())
            .limit(limit)
        ).all()
    return _incident_frame(rows)


@dataclass(frozen=True)
class IncidentDetail:
    """One incident with its JSON fields decoded (``score_explain``: ``[{name, points, why}]``)."""

    id: int
    title: str
    severity: str
    score: int
    status: str
    assignee: str | None
    site: str | None
    sector: str | None
    src_ip: str | None
    src_country: str | None
    signature: str | None
    signature_id: str | None
    category: str | None
    first_seen: datetime
    last_seen: datetime
    event_count: int
    updated_at: datetime
    # Where the source of ``src_country`` is, when a city GeoIP database located it.
    src_city: str | None = None
    src_lat: float | None = None
    src_lon: float | None = None
    score_explain: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)
    techniques: list[Any] = field(default_factory=list)
    indicator_ids: list[int] = field(default_factory=list)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    return [value]


def incident_by_id(store: Store, incident_id: int | str) -> IncidentDetail | None:
    try:
        key = int(str(incident_id).strip())
    except ValueError:
        return None
    with store.reader.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == key)).first()
    if row is None:
        return None
    m = row._mapping
    return IncidentDetail(
        id=m["id"], title=m["title"], severity=_label(m["severity"]), score=int(m["score"]), status=m["status"],
        assignee=m["assignee"], site=m["site"], sector=m["sector"], src_ip=m["src_ip"],
        src_country=m["src_country"], signature=m["signature"], signature_id=m["signature_id"],
        category=m["category"], first_seen=from_ms(m["first_seen"]), last_seen=from_ms(m["last_seen"]),
        event_count=int(m["event_count"]), updated_at=from_ms(m["updated_at"]),
        src_city=m["src_city"], src_lat=m["src_lat"], src_lon=m["src_lon"],
        score_explain=_as_list(loads(m["score_explain"], [])), targets=_as_list(loads(m["targets"], [])),
        sources=_as_list(loads(m["sources"], [])), techniques=_as_list(loads(m["techniques"], [])),
        indicator_ids=[int(i) for i in _as_list(loads(m["indicator_ids"], [])) if str(i).isdigit()],
    )


EVENT_COLUMNS = {
    "id": "int", "ts": "time", "sensor": "str", "kind": "str", "severity": "str", "score": "int",
    "signature": "str", "src_ip": "str", "src_port": "Int", "dst_ip": "str", "dst_port": "Int", "proto": "str",
    "app_proto": "str", "action": "str", "site": "str", "zone": "str", "asset": "str", "src_country": "str",
    "ics_function": "str",
}


def events_for_incident(store: Store, incident_id: int, page: int = 0, page_size: int = 100) -> pd.DataFrame:
    """The events of one incident, newest first, one page at a time; never past ``EVENTS_CAP``."""
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    offset = max(0, int(page)) * page_size
    if offset >= EVENTS_CAP:
        return _frame([], EVENT_COLUMNS)
    limit = min(page_size, EVENTS_CAP - offset)
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(*[events.c[name] for name in EVENT_COLUMNS])
            .where(events.c.incident_id == int(incident_id))
            .order_by(events.c.ts.desc(), events.c.id.desc())
            .limit(limit).offset(offset)
        ).all()
    sev = list(EVENT_COLUMNS).index("severity")
    return _frame(([*r[:sev], _label(r[sev]), *r[sev + 1:]] for r in rows), EVENT_COLUMNS)


@dataclass(frozen=True)
class EventDetail:
    """One event as stored: its flat fields, the raw record and the decoded JSON columns."""

    id: int
    ts: datetime
    fields: dict[str, Any]
    raw: str
    score_explain: list[dict[str, Any]]
    indicator_ids: list[int]

    def raw_pretty(self) -> str:
        """The raw record indented when it is JSON, as stored otherwise."""
        import json

        try:
            return json.dumps(json.loads(self.raw), indent=2, ensure_ascii=False, sort_keys=False)
        except (ValueError, TypeError):
            return self.raw


def event_by_id(store: Store, event_id: int | str) -> EventDetail | None:
    try:
        key = int(str(event_id))
    except ValueError:
        return None
    with store.reader.connect() as conn:
        row = conn.execute(select(events).where(events.c.id == key)).first()
    if row is None:
        return None
    return _event_detail(row)


def _event_detail(row: Any) -> EventDetail:
    m = dict(row._mapping)
    raw = m.pop("raw")
    explain = _as_list(loads(m.pop("score_explain"), []))
    ids = [int(i) for i in _as_list(loads(m.pop("indicator_ids"), [])) if str(i).isdigit()]
    m["severity"] = _label(m["severity"])
    return EventDetail(int(m["id"]), from_ms(m["ts"]), m, raw, explain, ids)


def incident_events(store: Store, incident_id: int, limit: int = 100) -> list[EventDetail]:
    """The newest ``limit`` events of one incident with every stored field and the raw record,
    newest first (the read API's incident detail); never more than ``EVENTS_CAP``, none for ``limit <= 0``.

    ``fields`` holds the columns as stored (times as epoch ms, ``techniques``/``extra`` as JSON
    text, ``sensor_severity`` as its integer), as ``event_by_id`` gives them."""
    limit = min(int(limit), EVENTS_CAP)
    if limit <= 0:
        return []
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(events).where(events.c.incident_id == int(incident_id))
            .order_by(events.c.ts.desc(), events.c.id.desc()).limit(limit)
        ).all()
    return [_event_detail(row) for row in rows]


INDICATOR_COLUMNS = {
    "indicator_id": "int", "type": "str", "value": "str", "source_id": "str", "confidence": "Int", "tlp": "str",
    "first_seen": "time", "last_seen": "time", "expired": "bool", "tags": "str", "malware": "str",
    "description": "str",
}


def indicators_by_ids(store: Store, indicator_ids: Iterable[int]) -> pd.DataFrame:
    """The indicators an event or incident matched, one row per feed that lists it."""
    ids = sorted({int(i) for i in indicator_ids})
    if not ids:
        return _frame([], INDICATOR_COLUMNS)
    s, i = sightings.c, indicators.c
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(i.id, i.type, i.value, s.source_id, s.confidence, s.tlp, s.first_seen, s.last_seen,
                   s.expired_at.is_not(None), s.tags, s.malware, s.description)
            .select_from(indicators.outerjoin(sightings, s.indicator_id == i.id))
            .where(i.id.in_(ids))
            .order_by(i.id, s.confidence.desc(), s.source_id)
        ).all()
    fixed = []
    for r in rows:
        r = list(r)
        tags = loads(r[9], [])
        r[9] = ", ".join(map(str, tags)) if isinstance(tags, list) else str(tags or "")
        r[8] = bool(r[8]) if r[3] is not None else False
        fixed.append(r)
    return _frame(fixed, INDICATOR_COLUMNS)


LOG_COLUMNS = {"id": "int", "at": "time", "actor": "str", "action": "str", "detail": "str"}


def incident_log(store: Store, incident_id: int) -> pd.DataFrame:
    """The audit trail of one incident, newest first."""
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(log_table.c.id, log_table.c.at, log_table.c.actor, log_table.c.action,
                   log_table.c.detail)
            .where(log_table.c.incident_id == int(incident_id))
            .order_by(log_table.c.at.desc(), log_table.c.id.desc())
        ).all()
    return _frame(rows, LOG_COLUMNS)


# --- freshness: newest data, source health, feed runs ---------------------------------------------

def _latest_event(conn: Connection) -> int | None:
    value = conn.execute(select(func.max(events.c.ts))).scalar()
    return int(value) if value is not None else None


def latest_event_time(store: Store) -> int | None:
    """Epoch ms of the newest stored event (an index look-up), ``None`` when there is none."""
    with store.reader.connect() as conn:
        return _latest_event(conn)


@dataclass(frozen=True)
class DataAsOf:
    """How fresh the store is: the newest event, the newest rollup minute, the newest successful run."""

    latest_event_ms: int | None
    latest_rollup_ms: int | None
    latest_success_ms: int | None


def data_as_of(store: Store) -> DataAsOf:
    with store.reader.connect() as conn:
        latest = _latest_event(conn)
        rollup = conn.execute(select(func.max(rollups.c.minute))).scalar()
        success = conn.execute(select(func.max(source_state.c.last_success_at))).scalar()
    return DataAsOf(latest, int(rollup) if rollup is not None else None, int(success) if success is not None else None)


SOURCE_HEALTH_COLUMNS = {
    "id": "str", "name": "str", "provider": "str", "kind": "str", "format": "str", "enabled": "bool",
    "demo": "bool", "state": "str", "reason": "str", "as_of": "time", "age_s": "float", "cadence_s": "float",
    "last_success": "time", "last_attempt": "time", "last_outcome": "str", "last_error": "str",
    "consecutive_failures": "int", "records": "Int", "newest_record": "time",
}


def _default_is_sensor(source: SourceConfig) -> bool:
    # Which formats are sensor logs is the collectors' knowledge; imported late so the store
    # package itself stays free of collector imports.
    from collectors.registry import is_sensor_format

    return is_sensor_format(source.format)


def source_health(store: Store, config: Config, now_ms: int,
                  is_sensor: Callable[[SourceConfig], bool] | None = None) -> pd.DataFrame:
    """Every configured source (enabled or not) with its freshness state, in config order."""
    is_sensor = is_sensor or _default_is_sensor
    settings = config.settings
    kinds = {s.id: is_sensor(s) for s in config.sources}
    with store.reader.connect() as conn:
        states = {r.source_id: r for r in conn.execute(select(source_state)).all()}
        newest_event = {
            sid: conn.execute(select(func.max(events.c.ts)).where(events.c.sensor == sid)).scalar()
            for sid, sensor in kinds.items() if sensor
        }
    rows = []
    for source in config.sources:
        st = states.get(source.id)
        sensor = kinds[source.id]
        newest = st.newest_record_at if st else None
        if sensor and newest_event.get(source.id) is not None:
            newest = max(int(newest_event[source.id]), newest or 0)
        fresh = source_freshness(
            is_sensor=sensor, last_success_ms=st.last_success_at if st else None,
            last_outcome=st.last_outcome if st else None,
            consecutive_failures=st.consecutive_failures if st else 0, newest_record_ms=newest,
            cadence=source.cadence, late_factor=settings.late_factor, stale_factor=settings.stale_factor,
            now_ms=now_ms, stale_after=source.health.stale_after,
        )
        rows.append((
            source.id, source.name, source.provider, "sensor" if sensor else "feed", source.format, source.enabled,
            source.demo, fresh.state, fresh.reason, fresh.as_of_ms,
            None if fresh.age_ms is None else fresh.age_ms / 1000, source.cadence.total_seconds(),
            st.last_success_at if st else None, st.last_attempt_at if st else None,
            (st.last_outcome or "") if st else "", (st.last_error or "") if st else "",
            st.consecutive_failures if st else 0, st.last_record_count if st else None, newest,
        ))
    df = _frame(rows, SOURCE_HEALTH_COLUMNS)
    df["last_error"] = df["last_error"].fillna("")
    return df


LAST_RUN_COLUMNS = {
    "run_id": "Int", "run_started": "time", "run_finished": "time", "run_outcome": "str", "http_status": "Int",
    "parsed": "Int", "rejected": "Int", "filtered": "Int", "new": "Int", "updated": "Int", "expired": "Int",
    "duplicates": "Int", "flags": "object", "run_error": "str", "rejected_samples": "object", "running_since": "time",
}


def feeds_overview(store: Store, config: Config, now_ms: int,
                   is_sensor: Callable[[SourceConfig], bool] | None = None) -> pd.DataFrame:
    """``source_health`` plus each source's last finished run (counts, flags, error, rejected
    samples) and, when one is in progress, when it started. One row per configured source."""
    health = source_health(store, config, now_ms, is_sensor)
    f = feed_runs.c
    cols = [f.id, f.started_at, f.finished_at, f.outcome, f.http_status, f.parsed, f.rejected, f.filtered,
            f.new, f.updated, f.expired, f.duplicates, f.flags, f.error, f.rejected_samples]
    rows = []
    with store.reader.connect() as conn:
        for source in config.sources:
            last = conn.execute(
                select(*cols).where(f.source_id == source.id, f.outcome != "running")
                .order_by(f.started_at.desc(), f.id.desc()).limit(1)
            ).first()
            running = conn.execute(
                select(func.max(f.started_at)).where(f.source_id == source.id, f.outcome == "running",
                                                     f.started_at >= (last.started_at if last else 0))
            ).scalar()
            if last is None:
                rows.append((None,) * 12 + ([], "", [], running))
                continue
            rows.append((*last[:12], loads(last.flags, []) or [], last.error or "",
                         loads(last.rejected_samples, []) or [], running))
    runs = _frame(rows, LAST_RUN_COLUMNS)
    return pd.concat([health.reset_index(drop=True), runs.reset_index(drop=True)], axis=1)


__all__ = [
    "AttackMap", "DataAsOf", "EventDetail", "IncidentDetail", "IncidentFilters", "IncidentPage", "WallKpis",
    "attack_map", "data_as_of", "event_by_id", "events_for_incident", "feeds_overview", "incident_by_id",
    "incident_events", "incident_log", "incidents_page", "indicators_by_ids", "latest_event_time", "recent_incidents",
    "source_health", "timeline_24h", "wall_kpis", "OPEN_STATUSES", "STATUSES", "COUNT_CAP",
]


# --- exposure: advisories matched to the inventory (pipeline/exposure_findings.py) -------------------------
# Kept in one section at the end of the module; imports local to it so the section stands alone.

from store.schema import advisories as _advisories  # noqa: E402
from store.schema import cursors as _cursors  # noqa: E402
from store.schema import exposures as _exposures  # noqa: E402

#: CVSS base score from which a finding counts as critical (the CVSS v3 "critical" rating).
CRITICAL_CVSS = 9.0
#: The exposure page lists at most this many findings (most urgent first).
EXPOSURE_CAP = 5_000

EXPOSURE_COLUMNS = {
    "id": "int", "site_id": "str", "asset_id": "str", "vuln_key": "str", "cve": "str", "known_exploited": "bool",
    "cvss": "float", "version_match": "str", "version_note": "str", "asset_version": "str", "vendor": "str",
    "product": "str", "advisory_versions": "object", "advisory_id": "str", "source_id": "str", "title": "str",
    "url": "str", "advisories": "object", "first_found": "time", "last_confirmed": "time", "resolved_at": "time",
    "resolved_reason": "str",
}


def _exposure_conditions(site: str | None, known_exploited_only: bool, include_resolved: bool = False) -> list[Any]:
    e = _exposures.c
    conds: list[Any] = [] if include_resolved else [e.resolved_at.is_(None)]
    if site:
        conds.append(e.site_id == site)
    if known_exploited_only:
        conds.append(e.known_exploited.is_(True))
    return conds


def _exposure_frame(rows: Iterable[Any]) -> pd.DataFrame:
    out = []
    for r in rows:
        m = r._mapping
        out.append(tuple(
            [str(v) for v in _as_list(loads(m[name], []))] if name in ("advisory_versions", "advisories")
            else bool(m[name]) if name == "known_exploited" else m[name]
            for name in EXPOSURE_COLUMNS))
    return _frame(out, EXPOSURE_COLUMNS)


def exposure_findings(store: Store, *, site: str | None = None, known_exploited_only: bool = False,
                      include_resolved: bool = False, limit: int = EXPOSURE_CAP) -> pd.DataFrame:
    """Open exposure findings (``EXPOSURE_COLUMNS``), most urgent first: known-exploited, then the
    highest CVSS, then site, asset and CVE. ``advisory_versions`` and ``advisories`` are lists."""
    e = _exposures.c
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(*[e[name] for name in EXPOSURE_COLUMNS])
            .where(*_exposure_conditions(site, known_exploited_only, include_resolved))
            .order_by(e.known_exploited.desc(), e.cvss.is_(None), e.cvss.desc(), e.site_id, e.asset_id, e.vuln_key)
            .limit(max(1, int(limit)))
        ).all()
    return _exposure_frame(rows)


def exposures_for_asset(store: Store, asset_id: str | None) -> pd.DataFrame:
    """The open findings of one asset (``EXPOSURE_COLUMNS``), known-exploited and highest CVSS first."""
    if not asset_id:
        return _frame([], EXPOSURE_COLUMNS)
    e = _exposures.c
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(*[e[name] for name in EXPOSURE_COLUMNS])
            .where(e.asset_id == asset_id, e.resolved_at.is_(None))
            .order_by(e.known_exploited.desc(), e.cvss.is_(None), e.cvss.desc(), e.vuln_key)
        ).all()
    return _exposure_frame(rows)


@dataclass(frozen=True)
class ExposureSummary:
    """The exposure page's KPIs under its filters, and what they rest on.

    ``findings``/``assets_exposed``/``known_exploited``/``critical_cvss``/``unconfirmed``: open
    findings under the filters (``critical_cvss``: CVSS >= ``CRITICAL_CVSS``; ``unconfirmed``:
    version not confirmed). ``advisories_by_source``: stored advisory rows per source, whatever the
    filters (empty: no advisory feed has delivered yet). ``computed_at_ms`` and ``last_run``: the
    last recompute (``None``: never ran), as ``pipeline.exposure_findings`` records it.
    """

    findings: int
    assets_exposed: int
    known_exploited: int
    critical_cvss: int
    unconfirmed: int
    advisories_by_source: dict[str, int]
    computed_at_ms: int | None
    last_run: dict[str, Any] = field(default_factory=dict)

    @property
    def advisories(self) -> int:
        return sum(self.advisories_by_source.values())


def exposure_summary(store: Store, *, site: str | None = None, known_exploited_only: bool = False) -> ExposureSummary:
    e = _exposures.c
    conds = _exposure_conditions(site, known_exploited_only)
    with store.reader.connect() as conn:
        counts = conn.execute(
            select(func.count(), func.count(func.distinct(e.asset_id)),
                   func.coalesce(func.sum(case((e.known_exploited.is_(True), 1), else_=0)), 0),
                   func.coalesce(func.sum(case((e.cvss >= CRITICAL_CVSS, 1), else_=0)), 0),
                   func.coalesce(func.sum(case((e.version_match != "affected", 1), else_=0)), 0))
            .where(*conds)
        ).one()
        by_source = {r.source_id: int(r.n) for r in conn.execute(
            select(_advisories.c.source_id, func.count().label("n")).group_by(_advisories.c.source_id)
            .order_by(_advisories.c.source_id))}
        run_text = conn.execute(select(_cursors.c.value).where(_cursors.c.source_id == "exposures",
                                                               _cursors.c.key == "recompute")).scalar()
    run = loads(run_text, {}) if run_text else {}
    run = run if isinstance(run, dict) else {}
    at = run.get("at")
    return ExposureSummary(int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3]), int(counts[4]), by_source,
                           int(at) if isinstance(at, (int, float)) else None, run)


__all__ += ["CRITICAL_CVSS", "EXPOSURE_CAP", "ExposureSummary", "exposure_findings", "exposure_summary",
            "exposures_for_asset"]
