"""store.queries over a real SQLite store: what was stored comes back, typed, filtered and paged."""
import json

import pandas as pd
import pytest

from storefill import (
    DAY, HOUR, MIN, NOW, add, event, feed_runs, incident, incident_log, incidents, indicators, rollup, rollups,
    sightings, source_state,
)
from store import queries
from store.queries import IncidentFilters
from store.queries import incidents as incident_queries
from store.queries import wall as wall_queries


def dtypes(df):
    return {c: str(t) for c, t in df.dtypes.items()}


# --- empty store: typed, honest -----------------------------------------------------------------

def test_empty_store_gives_typed_empty_results(store, config):
    page = queries.incidents_page(store)
    assert page.total == 0 and not page.total_capped and list(page.rows.columns) == list(queries.INCIDENT_COLUMNS)
    assert dtypes(page.rows)["last_seen"] == "datetime64[ms, UTC]" and dtypes(page.rows)["event_count"] == "int64"
    assert queries.incident_by_id(store, 1) is None and queries.incident_by_id(store, "x") is None
    ev = queries.events_for_incident(store, 1)
    assert ev.empty and dtypes(ev)["ts"] == "datetime64[ms, UTC]" and dtypes(ev)["dst_port"] == "Int64"
    assert queries.indicators_by_ids(store, []).columns.tolist() == list(queries.INDICATOR_COLUMNS)
    assert queries.incident_log(store, 1).empty
    assert queries.latest_event_time(store) is None
    assert queries.data_as_of(store) == queries.DataAsOf(None, None, None)
    assert queries.recent_incidents(store).empty


def test_empty_wall_queries_are_zero_filled(store, config):
    kpis = queries.wall_kpis(store, NOW)
    assert kpis.open_by_severity == {"critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0}
    assert (kpis.events_last_hour, kpis.events_prev_hour, kpis.latest_event_ms) == (0, 0, None)
    assert len(kpis.per_minute) == 60 and kpis.per_minute["events"].sum() == 0
    tl = queries.timeline_24h(store, NOW)
    assert len(tl) == 96 * 5 and tl["events"].sum() == 0
    assert tl["severity"].head(5).tolist() == ["critical", "high", "medium", "low", "info"]
    amap = queries.attack_map(store, config.inventory, NOW)
    assert amap.arcs.empty and list(amap.arcs.columns) == list(queries.ARC_COLUMNS)
    assert amap.sites["site"].tolist() == ["plant-a", "water-b", "port-c"]
    assert amap.sites["severity"].tolist() == ["", "", ""] and amap.total_events == 0


# --- wall ------------------------------------------------------------------------------------------

def test_wall_kpis_count_open_incidents_and_events_from_rollups(store):
    add(store, incidents, [incident(1, severity=4), incident(2, severity=4, status="acknowledged"),
                           incident(3, severity=3, status="investigating"), incident(4, severity=4, status="resolved"),
                           incident(5, severity=0, status="false_positive"), incident(6, severity=1)])
    add(store, rollups, [rollup(NOW - 5 * MIN, 2, 7), rollup(NOW - 5 * MIN, 4, 3, country="RU"),
                         rollup(NOW - 30 * MIN, 1, 5), rollup(NOW - 90 * MIN, 1, 11), rollup(NOW - 3 * HOUR, 1, 100)])
    add(store, incident_log.metadata.tables["events"], [event(1, ts=NOW - 61_000)])
    kpis = queries.wall_kpis(store, NOW)
    assert kpis.open_by_severity == {"critical": 2, "high": 1, "medium": 0, "low": 1, "info": 0}
    assert kpis.open_total == 4 and not kpis.open_capped("critical")
    assert (kpis.events_last_hour, kpis.events_prev_hour) == (15, 11)
    per = kpis.per_minute.set_index("minute")["events"]
    assert per[pd.Timestamp(NOW - 5 * MIN - (NOW - 5 * MIN) % MIN, unit="ms", tz="UTC")] == 10
    assert kpis.latest_event_ms == NOW - 61_000


def test_open_counts_are_capped(store, monkeypatch):
    monkeypatch.setattr(wall_queries, "OPEN_COUNT_CAP", 3)
    add(store, incidents, [incident(i, severity=4) for i in range(1, 6)])
    kpis = queries.wall_kpis(store, NOW)
    assert kpis.open_by_severity["critical"] == 3 and kpis.open_capped("critical")


def test_timeline_buckets_by_severity_within_24_hours(store):
    add(store, rollups, [rollup(NOW - 2 * MIN, 4, 2), rollup(NOW - 3 * MIN, 4, 3, site="water-b"),
                         rollup(NOW - 3 * MIN, 0, 9), rollup(NOW - 23 * HOUR, 2, 4), rollup(NOW - 25 * HOUR, 2, 1000)])
    tl = queries.timeline_24h(store, NOW, bucket_minutes=15)
    assert tl["events"].sum() == 18  # the 25 h old minute is outside
    assert tl["bucket"].max() == pd.Timestamp(NOW, unit="ms", tz="UTC")  # the current, partial bucket
    recent = pd.Timestamp(NOW - 15 * MIN, unit="ms", tz="UTC")  # NOW is on a 15-minute boundary
    last = tl[tl["bucket"] == recent].set_index("severity")["events"]
    assert (last["critical"], last["info"], last["high"]) == (5, 9, 0)
    assert str(tl["bucket"].dtype) == "datetime64[ms, UTC]"


def test_attack_map_arcs_sites_and_what_it_cannot_draw(store, config):
    add(store, rollups, [rollup(NOW - 5 * MIN, 2, 10, "plant-a", "CN"), rollup(NOW - 6 * MIN, 4, 1, "plant-a", "CN"),
                         rollup(NOW - 7 * MIN, 1, 5, "water-b", "RU"), rollup(NOW - 8 * MIN, 1, 3, "plant-a", ""),
                         rollup(NOW - 9 * MIN, 3, 4, "", "US"), rollup(NOW - 9 * MIN, 3, 2, "elsewhere", "US"),
                         rollup(NOW - 3 * HOUR, 4, 99, "port-c", "KP")])
    add(store, incidents, [incident(1, severity=3, site="plant-a"), incident(2, severity=4, site="plant-a",
                                                                             status="resolved"),
                           incident(3, severity=4, site="water-b", last_seen=NOW - 2 * DAY),
                           incident(4, severity=1, site="water-b")])
    amap = queries.attack_map(store, config.inventory, NOW, hours=1)
    arcs = amap.arcs.set_index(["src_country", "site"])
    assert arcs.loc[("CN", "plant-a"), "events"] == 11 and arcs.loc[("CN", "plant-a"), "severity"] == "critical"
    assert arcs.loc[("RU", "water-b"), "severity"] == "low" and len(arcs) == 2
    assert (amap.total_events, amap.unknown_origin_events, amap.unplaced_events) == (25, 3, 6)
    sites = amap.sites.set_index("site")
    # worst *open* incident active in the last 24 h: resolved and old ones do not count
    assert sites.loc["plant-a", "severity"] == "high" and sites.loc["plant-a", "open_incidents"] == 1
    assert sites.loc["water-b", "severity"] == "low" and sites.loc["port-c", "severity"] == ""
    assert sites.loc["plant-a", "events"] == 14


def test_recent_incidents_are_open_and_severe_newest_first(store):
    add(store, incidents, [incident(1, severity=4, last_seen=NOW - 3 * MIN), incident(2, severity=3, last_seen=NOW - MIN),
                           incident(3, severity=2, last_seen=NOW), incident(4, severity=4, status="resolved")])
    assert queries.recent_incidents(store, "high", 5)["id"].tolist() == [2, 1]


# --- incident list ------------------------------------------------------------------------------

@pytest.fixture
def listed(store):
    add(store, incidents, [
        incident(1, severity=4, site="plant-a", sector="energy", src_country="CN", last_seen=NOW - 1 * MIN,
                 title="ET SCADA Modbus Write"),
        incident(2, severity=3, site="water-b", sector="water", src_country="RU", last_seen=NOW - 2 * MIN,
                 status="acknowledged", title="ET EXPLOIT log4j 100%_done"),
        incident(3, severity=2, site="plant-a", sector="energy", src_country="US", last_seen=NOW - 2 * DAY,
                 status="resolved", src_ip=None, sources=json.dumps(["198.51.100.7", "198.51.100.8"])),
        incident(4, severity=1, site="port-c", sector="transport", src_country="CN", last_seen=NOW - 3 * MIN),
        incident(5, severity=4, site="port-c", sector="transport", src_country="KP", last_seen=NOW - 10 * DAY,
                 status="false_positive"),
    ])
    return store


def ids(page):
    return page.rows["id"].tolist()


def test_incident_list_default_is_newest_activity_first(listed):
    page = queries.incidents_page(listed)
    assert ids(page) == [1, 2, 4, 3, 5] and page.total == 5 and page.pages == 1
    assert page.rows.loc[0, "severity"] == "critical" and page.rows.loc[1, "status"] == "acknowledged"


@pytest.mark.parametrize("flt, expected", [
    (IncidentFilters(severity=("critical",)), [1, 5]),
    (IncidentFilters(status=queries.OPEN_STATUSES), [1, 2, 4]),
    (IncidentFilters(site="plant-a"), [1, 3]),
    (IncidentFilters(sector="transport"), [4, 5]),
    (IncidentFilters(country="cn"), [1, 4]),
    (IncidentFilters(since_ms=NOW - DAY), [1, 2, 4]),
    (IncidentFilters(until_ms=NOW - DAY), [3, 5]),
    (IncidentFilters(text="modbus"), [1]),
    (IncidentFilters(text="198.51.100.8"), [3]),
    (IncidentFilters(text="#4"), [4]),
    (IncidentFilters(text="100%_"), [2]),
    (IncidentFilters(text="%"), [2]),
    (IncidentFilters(text="x' OR '1'='1"), []),
    (IncidentFilters(severity=("critical", "high"), status=("new", "acknowledged"), sector="energy"), [1]),
])
def test_incident_filters(listed, flt, expected):
    page = queries.incidents_page(listed, flt)
    assert ids(page) == expected and page.total == len(expected)


def test_incident_sorts(listed):
    assert ids(queries.incidents_page(listed, sort="-severity")) == [1, 5, 2, 3, 4]
    assert ids(queries.incidents_page(listed, sort="last_seen")) == [5, 3, 4, 2, 1]
    with pytest.raises(ValueError):
        queries.incidents_page(listed, sort="raw; drop table incidents")


def test_incident_paging_and_capped_total(store, monkeypatch):
    add(store, incidents, [incident(i, severity=i % 5, last_seen=NOW - i * MIN) for i in range(1, 24)])
    page = queries.incidents_page(store, page=2, page_size=10)
    assert ids(page) == [21, 22, 23] and page.total == 23 and page.pages == 3
    # past COUNT_CAP matches the list stops counting and pages along the index instead
    monkeypatch.setattr(incident_queries, "COUNT_CAP", 5)
    broad = queries.incidents_page(store, page=1, page_size=4)
    assert broad.total_capped and broad.total == 5 and ids(broad) == [5, 6, 7, 8]
    worst = queries.incidents_page(store, sort="-severity", page=0, page_size=6)
    assert worst.rows["severity"].tolist() == ["critical"] * 4 + ["high"] * 2
    assert ids(worst) == [4, 9, 14, 19, 3, 8]
    deep = queries.incidents_page(store, sort="-severity", page=3, page_size=6)
    # 4 critical + 5 high + 5 medium + 5 low + 4 info: offset 18 is the last low, then the info ones
    assert ids(deep) == [21, 5, 10, 15, 20] and deep.rows["severity"].tolist() == ["low"] + ["info"] * 4


# --- drill-down -----------------------------------------------------------------------------------

def test_incident_by_id_decodes_json(store):
    explain = [{"name": "indicator_hit", "points": 32, "why": "matches"}, {"name": "ot_target", "points": 15, "why": "OT"}]
    add(store, incidents, [incident(7, severity=4, score=92, score_explain=json.dumps(explain), indicator_ids="[3, 9]",
                                    targets=json.dumps([{"ip": "10.1.0.5", "site": "plant-a"}]),
                                    techniques='["T0855"]', assignee="nok")])
    inc = queries.incident_by_id(store, "7")
    assert (inc.id, inc.severity, inc.score, inc.assignee) == (7, "critical", 92, "nok")
    assert inc.score_explain == explain and inc.indicator_ids == [3, 9] and inc.techniques == ["T0855"]
    assert inc.targets[0]["ip"] == "10.1.0.5" and inc.first_seen.tzinfo is not None


def test_events_for_incident_newest_first_paged_and_capped(store, monkeypatch):
    add(store, incidents, [incident(1)])
    add(store, incidents.metadata.tables["events"],
        [event(i, ts=NOW - (10 - i) * MIN, incident_id=1) for i in range(1, 10)] + [event(50, ts=NOW, incident_id=2)])
    first = queries.events_for_incident(store, 1, page=0, page_size=4)
    assert first["id"].tolist() == [9, 8, 7, 6] and first["severity"].tolist()[0] == "medium"
    assert first["dst_port"].tolist()[0] == 502
    assert queries.events_for_incident(store, 1, page=2, page_size=4)["id"].tolist() == [1]
    monkeypatch.setattr(incident_queries, "EVENTS_CAP", 5)
    assert queries.events_for_incident(store, 1, page=1, page_size=4)["id"].tolist() == [5]
    assert queries.events_for_incident(store, 1, page=2, page_size=4).empty


def test_event_by_id_pretty_prints_raw_json(store):
    add(store, incidents.metadata.tables["events"],
        [event(1, ts=NOW, raw='{"a":1,"b":[2]}', score_explain='[{"name":"x","points":5,"why":"y"}]',
               indicator_ids="[4]"), event(2, ts=NOW, raw="<13>not json")])
    one = queries.event_by_id(store, 1)
    assert one.raw_pretty() == '{\n  "a": 1,\n  "b": [\n    2\n  ]\n}' and one.indicator_ids == [4]
    assert one.fields["severity"] == "medium" and one.score_explain[0]["points"] == 5
    assert queries.event_by_id(store, 2).raw_pretty() == "<13>not json"
    assert queries.event_by_id(store, 3) is None


def test_indicators_by_ids_with_their_sightings(store):
    add(store, indicators, [{"id": 3, "type": "ipv4", "value": "203.0.113.5", "first_seen": NOW - DAY,
                             "last_seen": NOW, "updated_at": NOW},
                            {"id": 4, "type": "domain", "value": "bad.example", "first_seen": NOW, "last_seen": NOW,
                             "updated_at": NOW}])
    add(store, sightings, [
        {"indicator_id": 3, "source_id": "feed-1", "first_seen": NOW - DAY, "last_seen": NOW, "confidence": 80,
         "tlp": "amber", "tags": '["botnet", "ssh"]', "malware": "Mirai"},
        {"indicator_id": 3, "source_id": "feed-2", "first_seen": NOW - DAY, "last_seen": NOW - HOUR, "confidence": 40,
         "tlp": "clear", "expired_at": NOW},
    ])
    df = queries.indicators_by_ids(store, [3, 4, 99])
    assert df["source_id"].fillna("").tolist() == ["feed-1", "feed-2", ""]
    first = df.iloc[0]
    assert (first["value"], first["confidence"], first["tlp"], first["tags"], first["expired"]) == (
        "203.0.113.5", 80, "amber", "botnet, ssh", False)
    assert bool(df.iloc[1]["expired"]) and not bool(df.iloc[2]["expired"])


def test_incident_log_newest_first(store):
    add(store, incident_log, [{"incident_id": 1, "at": NOW - MIN, "actor": "a", "action": "status", "detail": "{}"},
                              {"incident_id": 1, "at": NOW, "actor": "b", "action": "note", "detail": '{"text":"x"}'},
                              {"incident_id": 2, "at": NOW, "actor": "c", "action": "note", "detail": None}])
    log = queries.incident_log(store, 1)
    assert log["actor"].tolist() == ["b", "a"] and log["action"].tolist() == ["note", "status"]


# --- freshness, sources, runs ----------------------------------------------------------------------

def test_source_health_every_configured_source(store, config):
    add(store, source_state, [
        {"source_id": "ids-1", "last_attempt_at": NOW - 1000, "last_success_at": NOW - 1000, "last_outcome": "ok",
         "consecutive_failures": 0, "newest_record_at": NOW - 20 * MIN},
        {"source_id": "feed-1", "last_attempt_at": NOW - 60_000, "last_success_at": NOW - 5 * HOUR,
         "last_outcome": "failed", "last_error": "HTTP 503", "consecutive_failures": 4, "last_record_count": 120},
    ])
    add(store, incidents.metadata.tables["events"], [event(1, ts=NOW - 2 * MIN, sensor="ids-1")])
    df = queries.source_health(store, config, NOW).set_index("id")
    assert list(df.reset_index().columns) == list(queries.SOURCE_HEALTH_COLUMNS)
    # the sensor's newest *event* (2 min, newer than its state's 20 min) decides: late at 1 min cadence
    assert (df.loc["ids-1", "kind"], df.loc["ids-1", "state"], df.loc["ids-1", "age_s"]) == ("sensor", "late", 120.0)
    assert (df.loc["feed-1", "kind"], df.loc["feed-1", "state"]) == ("feed", "failed")
    assert df.loc["feed-1", "last_error"] == "HTTP 503" and df.loc["feed-1", "records"] == 120
    assert df.loc["feed-1", "as_of"] == pd.Timestamp(NOW - 5 * HOUR, unit="ms", tz="UTC")


def test_source_health_never_seen_and_disabled(store, tmp_path):
    from storefill import make_config, source

    cfg = make_config(tmp_path, [source("quiet"), source("off", enabled=False, demo=True)])
    df = queries.source_health(store, cfg, NOW, is_sensor=lambda s: False).set_index("id")
    assert df["state"].tolist() == ["never-seen", "never-seen"]
    assert df.loc["off", "enabled"] == False and df.loc["off", "demo"] == True  # noqa: E712


def test_feeds_overview_shows_last_finished_run_and_a_running_one(store, config):
    add(store, feed_runs, [
        {"source_id": "feed-1", "started_at": NOW - HOUR, "finished_at": NOW - HOUR + 5000, "outcome": "ok",
         "parsed": 10, "rejected": 2, "new": 3, "updated": 7, "expired": 1, "flags": '["only 10 records"]',
         "rejected_samples": '[{"reason": "bad ip", "location": "line 4", "sample": "999.1.1.1"}]'},
        {"source_id": "feed-1", "started_at": NOW - 10_000, "outcome": "running"},
        {"source_id": "feed-1", "started_at": NOW - 2 * HOUR, "finished_at": NOW - 2 * HOUR, "outcome": "failed",
         "error": "timeout"},
    ])
    df = queries.feeds_overview(store, config, NOW).set_index("id")
    row = df.loc["feed-1"]
    assert (row["run_outcome"], row["parsed"], row["rejected"], row["new"], row["expired"]) == ("ok", 10, 2, 3, 1)
    assert row["flags"] == ["only 10 records"] and row["rejected_samples"][0]["sample"] == "999.1.1.1"
    assert row["running_since"] == pd.Timestamp(NOW - 10_000, unit="ms", tz="UTC")
    assert pd.isna(df.loc["ids-1", "run_id"]) and df.loc["ids-1", "flags"] == []


def test_data_as_of(store):
    add(store, rollups, [rollup(NOW - 3 * MIN, 1, 1)])
    add(store, incidents.metadata.tables["events"], [event(1, ts=NOW - 150_000)])
    add(store, source_state, [{"source_id": "x", "last_success_at": NOW - 5000, "consecutive_failures": 0}])
    assert queries.data_as_of(store) == queries.DataAsOf(NOW - 150_000, NOW - 3 * MIN, NOW - 5000)
