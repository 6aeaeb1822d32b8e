"""The coarse rollups the wall reads: kept equal to the minute ``rollups`` by the ingest, and read back
into exactly what summing the minute rows gives, for windows that start and end anywhere in an hour."""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from storefill import DAY, HOUR, MIN, NOW, add, incident, incidents, rollup, rollups

from pipeline.ingest import EventPipeline
from store import coarse_rollups, queries
from store.coarse_rollups import PAIR_SPANS, SEVERITY_SPANS, tiles
from store.queries import wall as wall_queries
from store.records import Event, Severity
from store.schema import rollups_pairs, rollups_severity

PUBLIC = ["45.33.32.156", "185.220.101.1", "8.8.8.8", "1.1.1.1", "203.0.113.9"]  # the last: no country (TEST-NET)
TARGETS = ["10.1.0.5", "10.1.7.7", "10.2.0.9", "10.3.0.4", "192.0.2.55"]           # plant-a x2, water-b, port-c, none


def coarse_from_minutes(conn):
    """What the coarse tables must hold, computed here from ``rollups`` (in Python, not with the
    module's own SQL)."""
    severity: dict[tuple[int, int, int], int] = {}
    pairs: dict[tuple[int, int, str, str], list[int]] = {}
    for minute, level, site, _sector, country, n in conn.execute(
            select(rollups.c.minute, rollups.c.severity, rollups.c.site, rollups.c.sector, rollups.c.src_country,
                   rollups.c.events)):
        for span in SEVERITY_SPANS:
            key = (span, minute - minute % span, level)
            severity[key] = severity.get(key, 0) + n
        for span in PAIR_SPANS:
            key = (span, minute - minute % span, country or "", site or "")
            total, worst = pairs.get(key, (0, -1))
            pairs[key] = [total + n, max(worst, level)]
    return severity, pairs


def coarse_as_stored(conn):
    severity = {(span, start, s): n for span, start, s, n in conn.execute(select(rollups_severity))}
    pairs = {(span, start, c, site): [n, worst]
             for span, start, c, site, n, worst in conn.execute(select(rollups_pairs))}
    return severity, pairs


# --- written with the minute rows ----------------------------------------------------------------------

def _event(ts_ms: int, src: str, dst: str, level: Severity | None, n: int) -> Event:
    return Event(ts=datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc), sensor="ids-1", kind="alert",
                 raw=f'{{"n": {n}}}', src_ip=src, dst_ip=dst, dst_port=502, proto="tcp",
                 signature="ET SCAN test", signature_id="1", sensor_severity=level)


def test_ingest_keeps_the_coarse_tables_equal_to_sums_of_the_minute_rows(store, config):
    """A real ingest over three hours: several sites, countries and severities, duplicates inside a
    batch, a replayed batch, a batch that overlaps one already stored, and late events."""
    pipeline = EventPipeline(config, store, clock=lambda: NOW)
    rnd = random.Random(5)
    levels = [None, Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
    start = NOW - 3 * HOUR + 17 * MIN  # not on an hour, so the 5- and 15-minute and hour blocks split
    stored = [_event(start + rnd.randrange(3 * HOUR - 20 * MIN), rnd.choice(PUBLIC + ["10.9.9.9"]),
                     rnd.choice(TARGETS), rnd.choice(levels), n) for n in range(600)]
    batches = [stored[:250], stored[200:450] + stored[200:220], stored[450:]]  # overlap + in-batch duplicates
    accepted = 0
    for batch in batches:
        with store.writer.begin() as conn:
            accepted += pipeline.ingest(conn, batch, NOW).accepted
    with store.writer.begin() as conn:  # the whole first batch again: a replayed file
        assert pipeline.ingest(conn, batches[0], NOW).accepted == 0
    late = [_event(NOW - 5 * HOUR + k * 7 * MIN, PUBLIC[k % 3], TARGETS[k % 4], Severity.HIGH, 1000 + k)
            for k in range(12)]
    with store.writer.begin() as conn:
        accepted += pipeline.ingest(conn, late, NOW).accepted

    with store.reader.connect() as conn:
        assert conn.execute(select(func.sum(rollups.c.events))).scalar() == accepted == 612
        expected = coarse_from_minutes(conn)
        stored_coarse = coarse_as_stored(conn)
        sites = {site for (_span, _start, _c, site) in stored_coarse[1]}
        countries = {c for (_span, _start, c, _site) in stored_coarse[1]}
    assert stored_coarse == expected
    # the data really spans what the test is about
    assert {"plant-a", "water-b", "port-c", ""} <= sites and {"US", "DE", ""} <= countries
    assert len({level for (_span, _start, level) in expected[0]}) >= 4
    assert sum(n for (span, *_), (n, _w) in stored_coarse[1].items() if span == HOUR) == 612


def test_rebuild_gives_what_the_upserts_gave(store):
    add(store, rollups, [rollup(NOW - k * 7 * MIN, k % 5, k + 1, site=("plant-a", "water-b", "")[k % 3],
                                country=("CN", "RU", "")[k % 2]) for k in range(40)])
    with store.reader.connect() as conn:
        upserted = coarse_as_stored(conn)
    with store.writer.begin() as conn:
        coarse_rollups.rebuild(conn)
    with store.reader.connect() as conn:
        assert coarse_as_stored(conn) == upserted == coarse_from_minutes(conn)


# --- read back exactly -------------------------------------------------------------------------------------

def old_severity_buckets(conn, first, last, bucket_ms=MIN):
    """The wall's reader as it was: a sum over the minute rows."""
    r = rollups.c
    bucket = (r.minute // bucket_ms) * bucket_ms if bucket_ms != MIN else r.minute
    return [(int(m), int(s), int(n)) for m, s, n in conn.execute(
        select(bucket, r.severity, func.sum(r.events)).where(r.minute >= first, r.minute <= last)
        .group_by(bucket, r.severity))]


def old_country_site_pairs(conn, first, last):
    r = rollups.c
    return [(c or "", s or "", int(n), int(lv)) for c, s, n, lv in conn.execute(
        select(r.src_country, r.site, func.sum(r.events), func.max(r.severity))
        .where(r.minute >= first, r.minute <= last).group_by(r.src_country, r.site))]


@pytest.fixture
def busy(store):
    """Minute rows over 30 hours (a few minutes in the future too, as a fast sensor clock gives),
    written in several overlapping batches like successive ingests."""
    rnd = random.Random(11)
    first = NOW - 30 * HOUR
    for _batch in range(6):
        add(store, rollups, [
            rollup(first + rnd.randrange(30 * HOUR + 10 * MIN) // MIN * MIN, rnd.randrange(5), rnd.randrange(1, 50),
                   site=rnd.choice(["plant-a", "water-b", "port-c", "", "elsewhere"]),
                   country=rnd.choice(["CN", "RU", "US", "KP", ""]))
            for _ in range(400)])
    return store


NOWS = [NOW, NOW + 1, NOW + 23 * MIN + 45_000, NOW + 59 * MIN + 59_999, NOW - 7 * MIN, NOW + 10 * MIN,
        NOW - 3 * HOUR - 31 * MIN - 1]


@pytest.mark.parametrize("now", NOWS)
def test_readers_equal_the_minute_sums_for_windows_cut_anywhere(busy, now):
    last = now - now % MIN
    windows = [(last - 59 * MIN, last), (last - 119 * MIN, last), (last - 24 * HOUR + MIN, last),
               (last - 150 * MIN, last - 13 * MIN), (last, last), (last - 9 * MIN, last - MIN),
               (now - HOUR - 1, now + 1), (last + MIN, last)]  # the last one is empty
    with busy.reader.connect() as conn:
        for first, end in windows:
            assert sorted(queries._country_site_pairs(conn, first, end)) == \
                sorted(old_country_site_pairs(conn, first, end)), (first, end)
            for bucket in (MIN, 5 * MIN, 15 * MIN, 30 * MIN, HOUR, 7 * MIN):
                assert sorted(queries._severity_buckets(conn, first, end, bucket)) == \
                    sorted(old_severity_buckets(conn, first, end, bucket)), (first, end, bucket)


@pytest.mark.parametrize("now", NOWS)
def test_wall_panels_are_the_same_as_from_the_minute_rows(busy, config, now, monkeypatch):
    add(busy, incidents, [incident(1, severity=4, site="plant-a", last_seen=now - 5 * MIN),
                          incident(2, severity=2, site="water-b", last_seen=now - DAY // 2)])

    def panels():
        return (queries.wall_kpis(busy, now), queries.timeline_24h(busy, now),
                queries.timeline_24h(busy, now, bucket_minutes=60, hours=30),
                queries.attack_map(busy, config.inventory, now), queries.attack_map(busy, config.inventory, now, 2.5))

    new = panels()
    # the wall's queries call the readers of the module they live in
    monkeypatch.setattr(wall_queries, "_severity_buckets", old_severity_buckets)
    monkeypatch.setattr(wall_queries, "_country_site_pairs", old_country_site_pairs)
    old = panels()
    assert new[0].open_by_severity == old[0].open_by_severity
    assert (new[0].events_last_hour, new[0].events_prev_hour) == (old[0].events_last_hour, old[0].events_prev_hour)
    assert new[0].per_minute.equals(old[0].per_minute)
    assert new[1].equals(old[1]) and new[2].equals(old[2])
    for amap_new, amap_old in zip(new[3:], old[3:]):
        assert amap_new.arcs.equals(amap_old.arcs) and amap_new.sites.equals(amap_old.sites)
        assert (amap_new.total_events, amap_new.unplaced_events, amap_new.unknown_origin_events) == \
            (amap_old.total_events, amap_old.unplaced_events, amap_old.unknown_origin_events)
    assert new[0].events_last_hour + new[0].events_prev_hour > 0 and new[3].total_events > 0  # not vacuous


@pytest.mark.parametrize("spans", [PAIR_SPANS, SEVERITY_SPANS, (MIN,)])
def test_tiles_cover_every_minute_of_a_window_once_with_few_rows(spans):
    rnd = random.Random(3)
    for _ in range(400):
        first = NOW + rnd.randrange(-3 * DAY, 3 * DAY)
        last = first + rnd.randrange(-5 * MIN, 30 * HOUR)
        expected = set(range(-(-first // MIN) * MIN, last - last % MIN + 1, MIN))
        covered: list[int] = []
        counts = {span: 0 for span in spans}
        for span, lo, hi in tiles(first, last, spans):
            assert lo % span == 0 and hi % span == 0 and lo <= hi
            for start in range(lo, hi + 1, span):
                covered += range(start, start + span, MIN)
                counts[span] += 1
        assert sorted(covered) == sorted(expected)  # each minute exactly once
        if spans == PAIR_SPANS:
            assert counts[MIN] <= 8 and counts[5 * MIN] <= 4 and counts[15 * MIN] <= 6
        elif spans == SEVERITY_SPANS:
            assert counts[MIN] <= 28
