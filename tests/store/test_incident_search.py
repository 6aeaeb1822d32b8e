"""Free-text search of the incident list through the FTS5 trigram index: the same answers as the LIKE
scan (ASCII case ignored, any substring, wildcard and quote characters literal), kept current by every
write, and a correct fallback when the index cannot serve a search."""
from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import delete, select, update
from storefill import NOW, add, incident, incidents

from store import incident_search, queries
from store.db import create_or_upgrade
from store.events_write import INCIDENT_UPDATE_FIELDS, set_incident_status, update_incident_rows
from store.queries import IncidentFilters
from store.queries import incidents as incident_queries

TITLES = [
    "ET SCAN Potential SSH Scan",
    "ET EXPLOIT Apache log4j RCE Attempt (CVE-2021-44228)",
    "ET POLICY 100% discount_code in URL",
    "ET WEB \"quoted\" 'single' path C:\\Windows\\system32 /etc/passwd",
    "SCADA Modbus write * ^ NEAR AND OR NOT: col:1 {x} [y] -z +w",
    "Détection Écriture PLC — ÉCRITURE",
    "การโจมตี Modbus จากภายนอก 🚨",
    "Plain 50 percent discount in url",
    "ET SCAN scan scan",
    "mixed CaSe LoG4J probe",
]
SOURCES = [["203.0.113.5"], ["198.51.100.7", "203.0.113.50"], ["2001:db8::1"], None, ["10.1.0.5"],
           ["192.0.2.1"], ["45.33.32.156"], ["8.8.8.8"], ["203.0.113.5", "185.220.101.1"], ["1.2.3.4"]]
NEEDLES = [
    "log4j", "LOG4J", "Log4", "scan", "SCAN SCAN", "100%", "0% d", "discount_code", "t_c", "%", "_", "%_",
    '"quoted"', '"', 'WEB "quoted', "'single'", "C:\\Windows", "\\", "/etc/", "//", "* ^", "NEAR AND", "col:1",
    "{x} [y]", "écriture", "ÉCRITURE", "Écriture", "détection", "Modbus", "โจมตี", "🚨", "203.0.113.5", "113.5",
    "3.5", "2001:db8", "in url", "IN URL", "no-such-thing", "cve-2021", "(CVE", "ab", "Mo", "5", "é",
    "  padded scan  ", "#3", "3", "#10",
]


def ascii_fold(text: str) -> str:
    return "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in text)


def expected_ids(rows: list[dict], needle: str) -> set[int]:
    """SQLite LIKE as documented: a substring match that ignores the case of ASCII letters only."""
    needle = needle.strip()
    found = {r["id"] for r in rows
             if ascii_fold(needle) in ascii_fold(r["title"]) or ascii_fold(needle) in ascii_fold(r["sources"] or "")}
    if needle.lstrip("#").isdigit():
        found |= {r["id"] for r in rows if r["id"] == int(needle.lstrip("#"))}
    return found


def search(store, needle: str, **filters) -> list[int]:
    page = queries.incidents_page(store, IncidentFilters(text=needle, **filters), page_size=500)
    return page.rows["id"].tolist()


@pytest.fixture
def corpus(store):
    rows = [incident(i + 1, title=t, src_ip=None, sources=json.dumps(s) if s else None, last_seen=NOW - i * 60_000)
            for i, (t, s) in enumerate(zip(TITLES, SOURCES))]
    add(store, incidents, rows)
    return rows


def test_this_sqlite_has_the_trigram_tokenizer_and_the_store_uses_it(store):
    assert sqlite3.sqlite_version_info >= (3, 34)
    assert incident_search.trigram_available(store.writer)
    with store.reader.connect() as conn:
        assert incident_search.usable(conn)


@pytest.mark.parametrize("needle", NEEDLES)
def test_search_answers_what_the_like_scan_answers(store, corpus, needle):
    got = search(store, needle)
    assert set(got) == expected_ids(corpus, needle)
    assert len(got) == len(set(got))
    with store.reader.connect() as conn:
        candidates = incident_search.candidate_count(conn, needle.strip())
    if len(needle.strip()) >= incident_search.MIN_CHARS:
        assert candidates is not None and candidates >= len(expected_ids(corpus, needle) - {3, 10})  # index used
    else:
        assert candidates is None  # too short for a trigram: the scan


def test_the_index_path_and_the_scan_give_the_same_pages(store, corpus, monkeypatch):
    indexed = {n: queries.incidents_page(store, IncidentFilters(text=n), sort="title") for n in NEEDLES}
    monkeypatch.setattr(incident_search, "MAX_CANDIDATES", -1)  # every search is "broad": the scan
    for needle, page in indexed.items():
        scanned = queries.incidents_page(store, IncidentFilters(text=needle), sort="title")
        assert page.rows.equals(scanned.rows) and page.total == scanned.total, needle


def test_non_ascii_case_is_told_apart_as_like_does(store, corpus):
    # Titles are matched by LIKE itself (on the distinct titles): É and é differ, as in the scan.
    with store.reader.connect() as conn:
        assert incident_search.candidate_count(conn, "écriture") == 0
    assert search(store, "écriture") == []
    assert search(store, "Écriture") == [6] and search(store, "ÉCRITURE") == [6]
    # The trigram index of the sources folds É to é, LIKE does not: LIKE decides among the candidates.
    sources = json.dumps(["HÔTE-ÉCOLE.example"], ensure_ascii=False)  # stored as written, not \u-escaped
    add(store, incidents, [incident(50, title="plain", sources=sources)])
    with store.reader.connect() as conn:
        assert incident_search.candidate_count(conn, "hôte-école") == 1
    assert search(store, "hôte-école") == [] and search(store, "hÔTE-ÉCOLE") == [50]


def test_search_combines_with_the_other_filters(store, corpus):
    add(store, incidents, [incident(20, title="ET SCAN Potential SSH Scan", site="water-b", severity=4,
                                    status="acknowledged")])
    assert search(store, "ssh scan") == [1, 20]
    assert search(store, "ssh scan", site="water-b") == [20]
    assert search(store, "SSH", severity=("critical",), status=("acknowledged",)) == [20]
    assert search(store, "ssh scan", status=("resolved",)) == []


def test_a_broad_search_is_paged_and_capped_like_the_scan(store, monkeypatch):
    add(store, incidents, [incident(i, title=f"Modbus write {i}", last_seen=NOW - i * 1000) for i in range(1, 26)])
    monkeypatch.setattr(incident_queries, "COUNT_CAP", 10)
    first = queries.incidents_page(store, IncidentFilters(text="modbus WRITE"), page_size=10)
    second = queries.incidents_page(store, IncidentFilters(text="modbus WRITE"), page=2, page_size=10)
    assert (first.total, first.total_capped) == (10, True)
    assert first.rows["id"].tolist() == list(range(1, 11)) and second.rows["id"].tolist() == list(range(21, 26))
    monkeypatch.setattr(incident_search, "MAX_CANDIDATES", 5)  # now too broad for the index: the scan
    again = queries.incidents_page(store, IncidentFilters(text="modbus WRITE"), page=2, page_size=10)
    assert again.rows.equals(second.rows) and again.total_capped


def test_every_write_keeps_the_index_current(store, corpus):
    row = {name: None for name in INCIDENT_UPDATE_FIELDS}
    row.update(status="new", first_seen=NOW, last_seen=NOW, event_count=2, severity=2, score=40,
               sources=json.dumps(["203.0.113.5", "198.18.7.7"]), updated_at=NOW)
    with store.writer.begin() as conn:
        # the pipeline's update: a new source address on incident 1
        update_incident_rows(conn, [tuple(row[name] for name in INCIDENT_UPDATE_FIELDS) + (1,)])
        conn.execute(update(incidents).where(incidents.c.id == 2).values(title="renamed Zeek notice"))
        conn.execute(delete(incidents).where(incidents.c.id == 9))
        set_incident_status(conn, 4, "acknowledged", "officer", NOW)  # does not touch the text
    assert search(store, "198.18.7") == [1]
    assert search(store, "log4j") == [10] and search(store, "zeek NOTICE") == [2]
    assert search(store, "scan scan") == [] and search(store, "quoted") == [4]
    add(store, incidents, [incident(30, title="brand new log4j probe")])
    assert search(store, "LOG4J") == [30, 10]  # newest activity first


def test_without_its_triggers_the_index_is_not_used_and_an_upgrade_rebuilds_it(store, corpus):
    # What a process whose SQLite lacks FTS5/trigram leaves: ``ensure`` dropped the triggers so that its
    # writes to incidents work; the index then misses those writes.
    with store.writer.begin() as conn:
        assert incident_search.ensure(conn, available=False) == "unavailable"
    add(store, incidents, [incident(40, title="written while unindexed: Triton SIS")])
    with store.reader.connect() as conn:
        assert not incident_search.usable(conn) and incident_search.candidate_count(conn, "triton") is None
    assert search(store, "TRITON sis") == [40]  # the scan still answers
    create_or_upgrade(store.writer)  # the next open with a capable SQLite
    with store.reader.connect() as conn:
        assert incident_search.usable(conn) and incident_search.candidate_count(conn, "triton") == 1
    assert search(store, "TRITON sis") == [40] and search(store, "log4j") == [2, 10]
    with store.writer.begin() as conn:
        assert incident_search.ensure(conn, available=True) == "present"


@pytest.mark.parametrize("filters", [{"status": ("new",)}, {"site": "plant-a"}, {"severity": ("medium",)}, {}])
def test_the_search_reads_candidates_by_id_never_scans_incidents(store, corpus, filters):
    # No ANALYZE statistics (the app never runs it): the plan must still start from the index.
    with store.reader.connect() as conn:
        where = queries._incident_conditions(IncidentFilters(text="log4j", **filters), conn)
        statement = (select(incidents.c.id).select_from(incident_search.driven_by(where.driver, incidents))
                     .where(*where.conds))
        sql = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert where.bound == 2
    # the candidates: titles along the title index, addresses from the trigram index ...
    assert "SEARCH incidents USING COVERING INDEX ix_incidents_title (title=?)" in plan
    assert any(step.startswith("SCAN incidents_fts VIRTUAL TABLE") for step in plan)
    # ... then drive the query: each read by primary key, no incident scanned
    assert plan[-2:] == ["SCAN candidates", "SEARCH incidents USING INTEGER PRIMARY KEY (rowid=?)"]
    assert not any(step.startswith("SCAN incidents") and "VIRTUAL" not in step for step in plan)
