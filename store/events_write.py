"""Write side of the store for events, incidents, rollups and the duty officer's incident actions.

Every function takes an open connection and runs inside the caller's transaction, so a batch of
events, the incidents it touches, its rollups and the file cursor that covers it commit together.

Officer actions (``set_incident_status``, ``assign_incident``, ``add_incident_note``) append to the
append-only ``incident_log``: who did what to which incident, when, and from what to what.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, bindparam, func, insert, select, tuple_, update

from store import coarse_rollups
from store.db import dumps
from store.schema import events, incident_log, incidents, place_rollups, rollups

CHUNK = 500  # bound parameters per IN (...) query: well below SQLite's limit

STATUSES = ("new", "acknowledged", "investigating", "resolved", "false_positive")
OPEN_STATUSES = ("new", "acknowledged", "investigating")
CLOSED_STATUSES = ("resolved", "false_positive")
# Minimal rules: any status may move to any other, except that a closed incident can only be
# reopened (to new / acknowledged / investigating), and a no-op change is refused so the audit log
# never records a change that did not happen.
PIPELINE_ACTOR = "pipeline"
MAX_NOTE_CHARS = 8000
MAX_ACTOR_CHARS = 128


# --- ingest ------------------------------------------------------------------------------------

#: The columns of an ``events`` row as the pipeline builds it (a list in this order, ``id`` left to the store).
EVENT_COLUMNS: tuple[str, ...] = (
    "ts", "sensor", "kind", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "app_proto", "signature_id",
    "signature", "category", "sensor_severity", "severity", "score", "score_explain", "action", "domain", "url",
    "file_hash", "ja3", "ics_function", "site", "sector", "zone", "zone_kind", "asset", "src_site", "src_zone",
    "src_zone_kind", "src_scope", "src_country", "src_asn", "src_city", "src_lat", "src_lon", "dst_country",
    "indicator_ids", "techniques", "incident_id", "extra", "raw", "content_hash", "ingested_at",
)
_INSERT_EVENTS = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})")


def _fetchall(conn: Connection, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Plain tuples from the DB-API cursor of this connection (inside its transaction): SQLAlchemy's
    result rows, fetched one at a time, cost more than the SQLite queries the ingest path runs."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchall()
    finally:
        cursor.close()


def newest_event_ts(conn: Connection) -> int | None:
    """``max(events.ts)``: one look-up at the end of the ``(ts, content_hash)`` index."""
    return conn.execute(select(func.max(events.c.ts))).scalar()


def existing_keys(conn: Connection, keys: Sequence[tuple[int, str]]) -> set[str]:
    """The content hashes among ``(ts, content_hash)`` pairs that the store already holds.

    One query per ``CHUNK`` pairs. On SQLite the pairs are joined as a ``VALUES`` list, which the
    planner probes into the ``(ts, content_hash)`` index one seek per pair (a row-value ``IN`` would
    scan the table); a store created before that index still answers through its hash index.
    """
    found: set[str] = set()
    if conn.dialect.name == "sqlite":
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            sql = (f"WITH k(ts, h) AS (VALUES {', '.join('(?, ?)' for _ in chunk)}) "
                   "SELECT e.content_hash FROM k JOIN events AS e ON e.ts = k.ts AND e.content_hash = k.h")
            found.update(row[0] for row in _fetchall(conn, sql, tuple(v for pair in chunk for v in pair)))
        return found
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        found.update(conn.execute(
            select(events.c.content_hash).where(tuple_(events.c.ts, events.c.content_hash).in_(chunk))).scalars())
    return found


def insert_event_rows(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """One executemany of rows given as sequences in ``EVENT_COLUMNS`` order (the pipeline's fast path)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        # The DB-API cursor of this connection, inside its transaction: it takes the pipeline's lists
        # as they are (SQLAlchemy's ``exec_driver_sql`` wants tuples, a copy of every row).
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(_INSERT_EVENTS, rows)
        finally:
            cursor.close()
        return
    conn.execute(insert(events), [dict(zip(EVENT_COLUMNS, row)) for row in rows])


def existing_hashes(conn: Connection, hashes: Sequence[str]) -> set[str]:
    """The content hashes among ``hashes`` that the store already holds (one query per ``CHUNK``)."""
    found: set[str] = set()
    for start in range(0, len(hashes), CHUNK):
        chunk = hashes[start:start + CHUNK]
        found.update(conn.execute(select(events.c.content_hash).where(events.c.content_hash.in_(chunk))).scalars())
    return found


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """One executemany for the batch; every row must carry the same keys (columns of ``events``)."""
    _insert_many(conn, events, rows)


def _insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Executemany of rows that share their keys.

    On SQLite the rows go straight to the driver's ``executemany`` as tuples: SQLAlchemy's per-row
    parameter processing costs more than SQLite's own insert of a 45-column row (measured 1.7×).
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), list(rows))
        return
    columns = tuple(rows[0])
    prepared = _prepared.get((table.name, columns))
    if prepared is None:
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"not columns of {table.name}: {unknown}")
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        prepared = _prepared[(table.name, columns)] = (sql, _tuple_getter(columns))
    sql, as_tuple = prepared
    conn.exec_driver_sql(sql, list(map(as_tuple, rows)))


def _tuple_getter(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(columns) == 1:  # itemgetter of one key returns the bare value, not a 1-tuple
        name = columns[0]
        return lambda row: (row[name],)
    return itemgetter(*columns)


_prepared: dict[tuple[str, tuple[str, ...]], tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]] = {}


class IncidentHead(NamedTuple):
    id: int
    group_key: str
    status: str
    event_count: int
    updated_at: int


def load_incident_heads(conn: Connection, keys: Sequence[str], since_ms: int) -> list[Any]:
    """``id, group_key, status, event_count, updated_at`` of the incidents of these group keys whose
    ``last_seen`` is at or after ``since_ms`` (open or closed): what the correlator checks its cache with."""
    found: list[Any] = []
    if conn.dialect.name == "sqlite":  # plain SQL: SQLAlchemy's expanding IN and Row objects cost more than the query
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            found.extend(map(IncidentHead._make, _fetchall(
                conn, "SELECT id, group_key, status, event_count, updated_at FROM incidents "
                f"WHERE group_key IN ({', '.join('?' * len(chunk))}) AND last_seen >= ?", (*chunk, since_ms))))
        return found
    columns = (incidents.c.id, incidents.c.group_key, incidents.c.status, incidents.c.event_count,
               incidents.c.updated_at)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        found.extend(conn.execute(
            select(*columns).where(incidents.c.group_key.in_(chunk), incidents.c.last_seen >= since_ms)
        ).all())
    return found


def load_incidents(conn: Connection, ids: Sequence[int]) -> list[Any]:
    """Whole incident rows by id."""
    found: list[Any] = []
    for start in range(0, len(ids), CHUNK):
        found.extend(conn.execute(select(incidents).where(incidents.c.id.in_(ids[start:start + CHUNK]))).all())
    return found


def insert_incidents(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert many incidents and return their ids in the order of ``rows``."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        # SQLite runs INSERT ... RETURNING one row at a time when the order must be kept; the ingest
        # transaction holds the database's only write lock (BEGIN IMMEDIATE), so numbering the rows
        # from max(id) is safe and lets one executemany insert them all.
        first = (conn.execute(select(func.max(incidents.c.id))).scalar() or 0) + 1
        ids = list(range(first, first + len(rows)))
        _insert_many(conn, incidents, [{**row, "id": new_id} for row, new_id in zip(rows, ids)])
        return ids
    result = conn.execute(
        insert(incidents).returning(incidents.c.id, sort_by_parameter_order=True), list(rows)
    )
    return [row[0] for row in result]


#: The columns of a new incident row as the correlator builds it (``id`` first; ``assignee`` left empty).
INCIDENT_COLUMNS: tuple[str, ...] = (
    "id", "group_key", "title", "signature", "signature_id", "category", "src_ip", "src_country", "src_city",
    "src_lat", "src_lon", "site", "sector", "first_seen", "last_seen", "event_count", "severity", "score",
    "score_explain", "status", "targets", "sources", "techniques", "indicator_ids", "updated_at",
)


def insert_incident_rows(conn: Connection, rows: Sequence[list[Any]]) -> list[int]:
    """Insert new incidents given as lists in ``INCIDENT_COLUMNS`` order (``id`` ignored) and return their ids.

    SQLite: numbered from ``max(id)`` under the ingest transaction's write lock (see ``insert_incidents``),
    one executemany of tuples.
    """
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        first = (conn.execute(select(func.max(incidents.c.id))).scalar() or 0) + 1
        for offset, row in enumerate(rows):
            row[0] = first + offset
        conn.exec_driver_sql(_INSERT_INCIDENTS, list(map(tuple, rows)))
        return list(range(first, first + len(rows)))
    return insert_incidents(conn, [dict(zip(INCIDENT_COLUMNS[1:], row[1:])) for row in rows])


_INSERT_INCIDENTS = (f"INSERT INTO incidents ({', '.join(INCIDENT_COLUMNS)}) "
                     f"VALUES ({', '.join('?' * len(INCIDENT_COLUMNS))})")


INCIDENT_UPDATE_FIELDS = (
    "status", "first_seen", "last_seen", "event_count", "severity", "score", "score_explain", "src_ip",
    "src_country", "src_city", "src_lat", "src_lon", "site", "sector", "targets", "sources", "techniques",
    "indicator_ids", "updated_at",
)


def update_incidents(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Executemany update keyed on ``id``; each row carries ``id`` and every ``INCIDENT_UPDATE_FIELDS``."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        sql = (f"UPDATE incidents SET {', '.join(f'{name} = ?' for name in INCIDENT_UPDATE_FIELDS)} "
               "WHERE id = ?")
        conn.exec_driver_sql(sql, list(map(_update_tuple, rows)))
        return
    statement = (
        update(incidents).where(incidents.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in INCIDENT_UPDATE_FIELDS})
    )
    conn.execute(statement, [{f"b_{k}": row[k] for k in ("id", *INCIDENT_UPDATE_FIELDS)} for row in rows])


_update_tuple = itemgetter(*INCIDENT_UPDATE_FIELDS, "id")
_UPDATE_INCIDENTS = f"UPDATE incidents SET {', '.join(f'{name} = ?' for name in INCIDENT_UPDATE_FIELDS)} WHERE id = ?"


_SOURCES_AT = INCIDENT_UPDATE_FIELDS.index("sources")
_UPDATE_INCIDENTS_SAME_SOURCES = (
    f"UPDATE incidents SET {', '.join(f'{name} = ?' for name in INCIDENT_UPDATE_FIELDS if name != 'sources')} "
    "WHERE id = ?")


def update_incident_rows(conn: Connection, rows: Sequence[Sequence[Any]], *, sources_changed: bool = True) -> None:
    """Executemany update of rows given as ``(*INCIDENT_UPDATE_FIELDS, id)`` sequences.

    ``sources_changed=False`` (the caller knows no row's ``sources`` changed): ``sources`` is left
    out of the statement, so SQLite's ``AFTER UPDATE OF ... sources`` trigger of the incident search
    index (``store.incident_search``) does not run for these rows at all."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        if sources_changed:
            conn.exec_driver_sql(_UPDATE_INCIDENTS, rows)
        else:
            conn.exec_driver_sql(_UPDATE_INCIDENTS_SAME_SOURCES,
                                 [(*row[:_SOURCES_AT], *row[_SOURCES_AT + 1:]) for row in rows])
        return
    update_incidents(conn, [{"id": row[-1], **dict(zip(INCIDENT_UPDATE_FIELDS, row))} for row in rows])


def append_log(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    """Append audit entries: each has ``incident_id``, ``at``, ``actor``, ``action`` and ``detail`` (a dict)."""
    if entries:
        conn.execute(insert(incident_log), [
            {"incident_id": e["incident_id"], "at": e["at"], "actor": e["actor"], "action": e["action"],
             "detail": dumps(e.get("detail"))}
            for e in entries
        ])


def upsert_rollups(conn: Connection, counts: Mapping[tuple[int, int, str, str, str], int]) -> None:
    """Add per-minute counts keyed ``(minute, severity, site, sector, src_country)``; '' means unknown.

    The coarse rollups the wall reads (``store.coarse_rollups``) get the same counts in the same
    transaction, after the minute rows (the order ``coarse_rollups.ensure`` relies on)."""
    if not counts:
        return
    _upsert_minute_rollups(conn, counts)
    coarse_rollups.upsert(conn, counts)


def _upsert_minute_rollups(conn: Connection, counts: Mapping[tuple[int, int, str, str, str], int]) -> None:
    dialect = conn.dialect.name
    if dialect == "sqlite":  # the driver's executemany of tuples: no per-row parameter processing
        conn.exec_driver_sql(_UPSERT_ROLLUPS, [(*key, n) for key, n in counts.items()])
        return
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(rollups)
    statement = statement.on_conflict_do_update(
        index_elements=[rollups.c.minute, rollups.c.severity, rollups.c.site, rollups.c.sector, rollups.c.src_country],
        set_={"events": rollups.c.events + statement.excluded.events},
    )
    conn.execute(statement, [
        {"minute": m, "severity": s, "site": site, "sector": sector, "src_country": country, "events": n}
        for (m, s, site, sector, country), n in counts.items()
    ])


_UPSERT_ROLLUPS = (
    "INSERT INTO rollups (minute, severity, site, sector, src_country, events) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (minute, severity, site, sector, src_country) DO UPDATE SET events = events + excluded.events"
)


def upsert_place_rollups(conn: Connection,
                         counts: Mapping[tuple[int, str, str, str, float, float], tuple[int, int]]) -> None:
    """Add per-minute counts of located sources, keyed ``(minute, site, src_country, src_city, src_lat,
    src_lon)`` with ``(events, worst severity)`` ('' means unknown country or city), to ``place_rollups``
    at every span of ``coarse_rollups.PAIR_SPANS``."""
    if not counts:
        return
    blocks: dict[tuple[Any, ...], list[int]] = {}
    for (minute, *place), (n, level) in counts.items():
        for span in coarse_rollups.PAIR_SPANS:
            coarse_rollups.add_count(blocks, (span, coarse_rollups.floor(minute, span), *place), n, level)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_UPSERT_PLACES, [(*key, n, level) for key, (n, level) in blocks.items()])
        return
    from sqlalchemy.dialects.postgresql import insert as dialect_insert

    statement = dialect_insert(place_rollups)
    statement = statement.on_conflict_do_update(
        index_elements=[place_rollups.c[name] for name in _PLACE_KEY],
        set_={"events": place_rollups.c.events + statement.excluded.events,
              "severity": func.greatest(place_rollups.c.severity, statement.excluded.severity)},
    )
    # Sorted, so two collectors upserting overlapping keys take their row locks in the same order.
    conn.execute(statement, [{**dict(zip(_PLACE_KEY, key)), "events": n, "severity": level}
                             for key, (n, level) in sorted(blocks.items())])


_PLACE_KEY = ("span", "start", "site", "src_country", "src_city", "src_lat", "src_lon")
_UPSERT_PLACES = (
    f"INSERT INTO place_rollups ({', '.join(_PLACE_KEY)}, events, severity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT ({', '.join(_PLACE_KEY)}) DO UPDATE SET events = events + excluded.events, "
    "severity = max(severity, excluded.severity)"
)


# --- officer actions ---------------------------------------------------------------------------

class IncidentNotFound(LookupError):
    pass


def _incident(conn: Connection, incident_id: int) -> Any:
    row = conn.execute(
        select(incidents.c.id, incidents.c.status, incidents.c.assignee).where(incidents.c.id == incident_id)
    ).first()
    if row is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    return row


def _actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise ValueError("an action needs an actor (who did it)")
    return actor[:MAX_ACTOR_CHARS]


def check_transition(current: str, status: str) -> None:
    """Raise ``ValueError`` for an unknown status, a no-op, or a move between two closed states."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
    if status == current:
        raise ValueError(f"incident is already {status}")
    if current in CLOSED_STATUSES and status in CLOSED_STATUSES:
        raise ValueError(f"a {current} incident must be reopened before it can be marked {status}")


def set_incident_status(conn: Connection, incident_id: int, status: str, actor: str, now_ms: int,
                        note: str | None = None) -> None:
    """Change the status (new, acknowledged, investigating, resolved, false_positive) and log it."""
    status = (status or "").strip().lower()
    actor = _actor(actor)
    row = _incident(conn, incident_id)
    check_transition(row.status, status)
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(status=status, updated_at=now_ms))
    detail: dict[str, Any] = {"from": row.status, "to": status}
    if note:
        detail["note"] = note[:MAX_NOTE_CHARS]
    append_log(conn, [{"incident_id": incident_id, "at": now_ms, "actor": actor, "action": "status", "detail": detail}])


def assign_incident(conn: Connection, incident_id: int, assignee: str | None, actor: str, now_ms: int) -> None:
    """Assign (or, with ``None`` / "", unassign) and log it."""
    actor = _actor(actor)
    assignee = (assignee or "").strip()[:MAX_ACTOR_CHARS] or None
    row = _incident(conn, incident_id)
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(assignee=assignee, updated_at=now_ms))
    append_log(conn, [{"incident_id": incident_id, "at": now_ms, "actor": actor, "action": "assign",
                       "detail": {"from": row.assignee, "to": assignee}}])


def add_incident_note(conn: Connection, incident_id: int, text: str, actor: str, now_ms: int) -> None:
    """Add a free-text note to the incident's log."""
    actor = _actor(actor)
    text = (text or "").strip()
    if not text:
        raise ValueError("a note cannot be empty")
    _incident(conn, incident_id)
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(updated_at=now_ms))
    append_log(conn, [{"incident_id": incident_id, "at": now_ms, "actor": actor, "action": "note",
                       "detail": {"text": text[:MAX_NOTE_CHARS]}}])


def incident_log_entries(conn: Connection, incident_id: int) -> list[Any]:
    """The incident's audit trail, oldest first (reads belong in query modules; kept here for tests and the CLI)."""
    return conn.execute(
        select(incident_log).where(incident_log.c.incident_id == incident_id).order_by(incident_log.c.at, incident_log.c.id)
    ).all()

