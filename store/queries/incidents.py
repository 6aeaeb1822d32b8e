"""The incident reads: the filtered, sorted and paged list (text search included), the wall's
latest incidents, and one incident in detail with its events, audit log and matched indicators."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import Connection, func, literal, or_, select

from store import incident_search
from store.db import Store, from_ms, loads
from store.queries.common import OPEN_STATUSES, _as_list, _frame, _label, _level
from store.records import Severity
from store.schema import events, incidents, indicators, sightings
from store.schema import incident_log as log_table

#: Counting every match of a broad filter over a million incidents is the slow part of a page;
#: past this many the list says "1,000+" instead.
COUNT_CAP = 1_000
MAX_PAGE_SIZE = 500
#: The drill-down lists at most this many events of one incident (newest first).
EVENTS_CAP = 5_000


def _capped_count(conn: Connection, conds: Sequence[Any], cap: int) -> int:
    inner = select(literal(1)).select_from(incidents).where(*conds).limit(cap).subquery()
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


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


# --- one incident: detail, events, indicators, audit log ------------------------------------------

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
