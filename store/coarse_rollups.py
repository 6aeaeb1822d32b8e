"""Coarse rollups: the per-minute ``rollups`` summed again so the wall reads hundreds of rows, not millions.

At 10 M events a day ``rollups`` holds ~1,400 rows a minute (severity x site x sector x source
country), ~2 M rows for 24 h; summing them on every wall refresh took seconds. Two tables derived
from it, written by ``events_write.upsert_rollups`` in the same transaction as the minute rows (so
they always agree), answer the wall's two questions. Both keep each count at several spans (a row
covers ``[start, start + span)``, ``start`` aligned to its span, UTC):

* ``rollups_severity`` — events per severity over 1 and 15 minutes (``SEVERITY_SPANS``): the KPI
  sparkline and hour-over-hour trend (minutes), the 24 h timeline (its 15-minute buckets).
* ``rollups_pairs`` — events and worst severity per source country x site over 1, 5 and 15
  minutes and 1 hour (``PAIR_SPANS``): the attack map.

``tiles`` cuts a window into the longest aligned blocks that fit. The map's window is "the last 60
minutes", never whole hours, so an hourly table alone would leave every minute of it to the edges;
with 15- and 5-minute blocks it is at most 10 blocks and single minutes wherever it starts (~4,500
rows at 10 M events a day instead of ~85,000). The sum over those rows is exactly the sum over the
minutes: counts add and "worst" takes the maximum, so no row ever has to be subtracted.

``rebuild`` fills both tables from ``rollups`` (a store written before they existed: see
``ensure``, run by ``store.db.create_or_upgrade``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, literal_column, select

from store.schema import rollups, rollups_pairs, rollups_severity, schema_info

MINUTE_MS = 60_000
FIVE_MINUTES_MS = 300_000
HOUR_MS = 3_600_000
QUARTER_MS = 900_000
#: The spans kept in ``rollups_pairs`` and ``rollups_severity``, longest first; each divides the one
#: before it, and the last is a minute.
PAIR_SPANS: tuple[int, ...] = (HOUR_MS, QUARTER_MS, FIVE_MINUTES_MS, MINUTE_MS)
SEVERITY_SPANS: tuple[int, ...] = (QUARTER_MS, MINUTE_MS)
#: ``schema_info`` key set (in the same transaction) once the coarse tables hold every minute row.
MARKER_KEY = "coarse_rollups"
MARKER_VALUE = "1"

RollupKey = tuple[int, int, str, str, str]  # (minute, severity, site, sector, src_country)


def floor(ms: int, span: int) -> int:
    return ms - ms % span  # Python's % floors, so this is right for times before 1970 too


def add_count(totals: dict[Any, list[int]], key: Any, events: int, severity: int) -> None:
    """Add ``events`` to ``totals[key]`` (``[events, worst severity]``), keeping the worst severity."""
    found = totals.get(key)
    if found is None:
        totals[key] = [events, severity]
    else:
        found[0] += events
        if severity > found[1]:
            found[1] = severity


def coarse_counts(counts: Mapping[RollupKey, int]) -> tuple[dict[tuple[int, int, int], int],
                                                          dict[tuple[int, int, str, str], list[int]]]:
    """The minute counts of one batch summed per ``(span, start, severity)`` → events and per
    ``(span, start, src_country, site)`` → ``[events, worst severity]``."""
    by_severity: dict[tuple[int, int, int], int] = {}
    by_minute_pair: dict[tuple[int, str, str], list[int]] = {}
    for (minute, level, site, _sector, country), n in counts.items():
        for span in SEVERITY_SPANS:
            key = (span, floor(minute, span), level)
            by_severity[key] = by_severity.get(key, 0) + n
        add_count(by_minute_pair, (minute, country or "", site or ""), n, level)  # '' = unknown, as in ``rollups``
    pairs: dict[tuple[int, int, str, str], list[int]] = {}
    for (minute, country, site), (n, worst) in by_minute_pair.items():
        for span in PAIR_SPANS:
            add_count(pairs, (span, floor(minute, span), country, site), n, worst)
    return by_severity, pairs


_UPSERT_SEVERITY = (
    "INSERT INTO rollups_severity (span, start, severity, events) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (span, start, severity) DO UPDATE SET events = events + excluded.events"
)
_UPSERT_PAIRS = (
    "INSERT INTO rollups_pairs (span, start, src_country, site, events, severity) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (span, start, src_country, site) DO UPDATE SET events = events + excluded.events, "
    "severity = max(severity, excluded.severity)"
)


def upsert(conn: Connection, counts: Mapping[RollupKey, int]) -> None:
    """Add one batch's minute counts (the ones just added to ``rollups``) to the coarse tables."""
    if not counts:
        return
    by_severity, pairs = coarse_counts(counts)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_UPSERT_SEVERITY, [(*key, n) for key, n in by_severity.items()])
        conn.exec_driver_sql(_UPSERT_PAIRS, [(*key, n, worst) for key, (n, worst) in pairs.items()])
        return
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    # Sorted, so two collectors upserting overlapping keys take their row locks in the same order.
    r = rollups_severity.c
    statement = pg_insert(rollups_severity)
    statement = statement.on_conflict_do_update(
        index_elements=[r.span, r.start, r.severity], set_={"events": r.events + statement.excluded.events},
    )
    conn.execute(statement, [{"span": span, "start": start, "severity": level, "events": n}
                             for (span, start, level), n in sorted(by_severity.items())])
    p = rollups_pairs.c
    statement = pg_insert(rollups_pairs)
    statement = statement.on_conflict_do_update(
        index_elements=[p.span, p.start, p.src_country, p.site],
        set_={"events": p.events + statement.excluded.events,
              "severity": func.greatest(p.severity, statement.excluded.severity)},
    )
    conn.execute(statement, [
        {"span": span, "start": start, "src_country": country, "site": site, "events": n, "severity": worst}
        for (span, start, country, site), (n, worst) in sorted(pairs.items())
    ])


def rebuild(conn: Connection) -> None:
    """Recompute both coarse tables from ``rollups`` (inside the caller's transaction)."""
    conn.execute(delete(rollups_severity))
    conn.execute(delete(rollups_pairs))
    r = rollups.c
    empty = literal_column("''")  # in the SQL text too, for PostgreSQL's GROUP BY (see ``_span_start``)
    country, site = func.coalesce(r.src_country, empty), func.coalesce(r.site, empty)
    for span in SEVERITY_SPANS:
        s, start = _span_start(span)
        conn.execute(insert(rollups_severity).from_select(
            ["span", "start", "severity", "events"],
            select(s, start, r.severity, func.sum(r.events)).group_by(start, r.severity),
        ))
    for span in PAIR_SPANS:
        s, start = _span_start(span)
        conn.execute(insert(rollups_pairs).from_select(
            ["span", "start", "src_country", "site", "events", "severity"],
            select(s, start, country, site, func.sum(r.events), func.max(r.severity)).group_by(start, country, site),
        ))


def _span_start(span: int) -> tuple[Any, Any]:
    """The span as SQL text and the start of a minute row's block of that span.

    Spans are written into the SQL (our own integers): PostgreSQL only accepts a GROUP BY expression
    equal to the selected one, and two bound parameters are never "equal". ``((m % s) + s) % s`` is
    the floor modulo on both SQLite and PostgreSQL, whose ``%`` truncates."""
    s = literal_column(str(int(span)))
    minute = rollups.c.minute
    return s, minute - ((minute % s) + s) % s


def ensure(conn: Connection) -> bool:
    """Fill the coarse tables from ``rollups`` once: when the store has no ``MARKER_KEY`` yet (a new
    store, or one written before these tables existed). Returns whether it rebuilt. The marker is
    written in the same transaction as the rebuild, so a crash in between leaves neither."""
    marker = select(schema_info.c.value).where(schema_info.c.key == MARKER_KEY)
    if conn.execute(marker).first() is not None:
        return False
    if conn.dialect.name == "postgresql":
        # Collectors write ``rollups`` first and the coarse tables after it in one transaction; with
        # ``rollups`` locked against writers no batch can slip between the copy and the marker.
        conn.exec_driver_sql("LOCK TABLE rollups IN SHARE ROW EXCLUSIVE MODE")
        if conn.execute(marker).first() is not None:  # another process rebuilt while we waited
            return False
    rebuild(conn)
    conn.execute(insert(schema_info).values(key=MARKER_KEY, value=MARKER_VALUE))
    return True


def tiles(first_minute: int, last_minute: int, spans: Sequence[int] = PAIR_SPANS) -> list[tuple[int, int, int]]:
    """The minutes ``[first_minute, last_minute]`` (both included) as ``(span, first start, last
    start)`` ranges of aligned blocks of ``spans`` (longest first, each dividing the one before, the
    last a minute) that cover every minute of the window exactly once, the longest blocks that fit.
    Bounds that are not on a minute are rounded inwards (a minute row counts when its start lies in
    the window, as it does in ``rollups``)."""
    a = -(-first_minute // MINUTE_MS) * MINUTE_MS           # first minute start >= first_minute
    b = last_minute - last_minute % MINUTE_MS + MINUTE_MS   # end of the last minute <= last_minute
    out: list[tuple[int, int, int]] = []

    def cover(lo: int, hi: int, level: int) -> None:        # [lo, hi), both minute-aligned
        if lo >= hi:
            return
        span = spans[level]
        if level == len(spans) - 1:
            out.append((span, lo, hi - span))
            return
        inner_lo, inner_hi = -(-lo // span) * span, hi - hi % span
        if inner_lo >= inner_hi:
            cover(lo, hi, level + 1)
            return
        cover(lo, inner_lo, level + 1)
        out.append((span, inner_lo, inner_hi - span))
        cover(inner_hi, hi, level + 1)

    cover(a, b, 0)
    return out


__all__ = ["PAIR_SPANS", "SEVERITY_SPANS", "coarse_counts", "ensure", "rebuild", "tiles", "upsert"]
