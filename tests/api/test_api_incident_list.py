"""GET /api/incidents: filters, sorting, paging with next/prev links, capped totals, 400s."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import insert
from storefill import DAY, HOUR, MIN, NOW, add, incident

from store.queries import COUNT_CAP
from store.schema import incidents

#   id  severity    status          site     sector     country  last seen   title
ROWS = [
    incident(1, severity=4, status="new", site="plant-a", sector="energy", src_country="CN",
             last_seen=NOW - 5 * MIN, title="Modbus write to turbine PLC", assignee="alice"),
    incident(2, severity=3, status="acknowledged", site="water-b", sector="water", src_country="RU",
             last_seen=NOW - 30 * MIN, title="ET SCAN SSH brute force"),
    incident(3, severity=2, status="new", site="plant-a", sector="energy", src_country="CN",
             last_seen=NOW - 3 * HOUR, title="ET SCAN Telnet"),
    incident(4, severity=1, status="resolved", site="port-c", sector="transport", src_country="US",
             last_seen=NOW - 2 * DAY, title="ET POLICY DNS"),
    incident(5, severity=0, status="false_positive", site="water-b", sector="water", src_country="NL",
             last_seen=NOW - 10 * DAY, title="ET INFO ping"),
    incident(6, severity=3, status="investigating", site="port-c", sector="transport", src_country="IR",
             last_seen=NOW - HOUR, title="ET EXPLOIT VPN"),
    incident(7, severity=4, status="resolved", site="plant-a", sector="energy", src_country="KP",
             last_seen=NOW - 25 * HOUR, title="ET CNC beacon"),
]
NEWEST_FIRST = [1, 2, 6, 3, 7, 4, 5]


@pytest.fixture
def filled(client, store, clock):
    clock.ms = NOW
    add(store, incidents, ROWS)
    return client


def ids(client, query: str) -> list[int]:
    response = client.get(f"/api/incidents{query}")
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def test_default_list_is_newest_first_with_iso_times_and_severity_words(filled):
    response = filled.get("/api/incidents")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert [i["id"] for i in body["items"]] == NEWEST_FIRST
    assert (body["page"], body["page_size"], body["total"], body["total_capped"]) == (1, 50, 7, False)
    assert body["next"] is None and body["prev"] is None
    assert body["generated_at"] == "2027-01-15T08:00:00Z"
    first = body["items"][0]
    assert first == {
        "id": 1, "title": "Modbus write to turbine PLC", "severity": "critical", "score": 50, "status": "new",
        "assignee": "alice", "site": "plant-a", "sector": "energy", "src_ip": "203.0.113.5", "src_country": "CN",
        "signature": "Modbus write to turbine PLC", "category": None, "event_count": 1,
        "first_seen": "2027-01-15T07:54:00Z", "last_seen": "2027-01-15T07:55:00Z",
        "url": "http://localhost/api/incidents/1",
    }
    assert body["items"][1]["assignee"] is None
    assert {i["severity"] for i in body["items"]} == {"critical", "high", "medium", "low", "info"}


@pytest.mark.parametrize(("query", "expected"), [
    ("?severity=high,critical", [1, 2, 6, 7]),
    ("?severity=high&severity=CRITICAL", [1, 2, 6, 7]),
    ("?status=new,acknowledged", [1, 2, 3]),
    ("?status=open", [1, 2, 6, 3]),
    ("?site=plant-a", [1, 3, 7]),
    ("?sector=water", [2, 5]),
    ("?country=cn", [1, 3]),
    ("?q=scan", [2, 3]),
    ("?q=%236", [6]),
    ("?since=24h", [1, 2, 6, 3]),
    ("?since=2027-01-14T08:00:00Z", [1, 2, 6, 3]),
    ("?since=2027-01-15T14:00:00%2B07:00", [1, 2, 6]),   # +07:00 percent-encoded
    ("?since=2027-01-15T14:00:00+07:00", [1, 2, 6]),     # ... and as a browser/curl leaves it
    ("?since=2027-01-15T07:00:00", [1, 2, 6]),           # no offset: UTC
    ("?until=2027-01-15T06:00:00Z", [3, 7, 4, 5]),
    ("?since=3d&until=1d", [7, 4]),
    ("?severity=critical&status=open", [1]),
    ("?sort=severity", [5, 4, 3, 6, 2, 7, 1]),
    ("?sort=-severity", [1, 7, 2, 6, 3, 4, 5]),
    ("?sort=id", [1, 2, 3, 4, 5, 6, 7]),
    ("?sort=first_seen", list(reversed(NEWEST_FIRST))),
])
def test_filters_and_sorting(filled, query, expected):
    assert ids(filled, query) == expected


def test_paging_follows_next_and_prev_links_and_keeps_the_filters(filled):
    seen: list[int] = []
    url = "/api/incidents?since=30d&page_size=3"
    pages = []
    while url:
        body = filled.get(url).get_json()
        pages.append(body)
        seen += [i["id"] for i in body["items"]]
        if body["next"]:
            parts = urlsplit(body["next"])
            assert parts.scheme == "http" and parts.path == "/api/incidents"
            assert parse_qs(parts.query) == {"since": ["30d"], "page_size": ["3"], "page": [str(body["page"] + 1)]}
            url = f"{parts.path}?{parts.query}"
        else:
            url = None
    assert seen == NEWEST_FIRST
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert [p["page"] for p in pages] == [1, 2, 3]
    assert all(p["total"] == 7 and p["total_capped"] is False for p in pages)
    assert pages[0]["prev"] is None
    assert parse_qs(urlsplit(pages[2]["prev"]).query)["page"] == ["2"]
    past_the_end = filled.get("/api/incidents?page=9&page_size=3").get_json()
    assert past_the_end["items"] == [] and past_the_end["next"] is None and past_the_end["total"] == 7


def test_a_broad_match_reports_a_capped_total_and_still_finds_the_last_page(client, store, clock):
    clock.ms = NOW
    rows = [incident(i, last_seen=NOW - i * 1000) for i in range(1, COUNT_CAP + 6)]
    with store.writer.begin() as conn:
        conn.execute(insert(incidents), rows)
    first = client.get("/api/incidents?page_size=500").get_json()
    assert first["total"] is None and first["total_capped"] is True
    assert len(first["items"]) == 500 and first["items"][0]["id"] == 1
    assert parse_qs(urlsplit(first["next"]).query)["page"] == ["2"]
    second = client.get("/api/incidents?page_size=500&page=2").get_json()
    assert second["items"][-1]["id"] == 1000
    assert parse_qs(urlsplit(second["next"]).query)["page"] == ["3"]   # found by looking one row ahead
    last = client.get("/api/incidents?page_size=500&page=3").get_json()
    assert [i["id"] for i in last["items"]] == [1001, 1002, 1003, 1004, 1005]
    assert last["next"] is None and last["total_capped"] is True


@pytest.mark.parametrize(("query", "parameter", "allowed_has"), [
    ("?severity=urgent", "severity", "critical"),
    ("?severity=high,bad", "severity", "info"),
    ("?status=closed", "status", "false_positive"),
    ("?status=closed", "status", "open"),
    ("?page=0", "page", None),
    ("?page=two", "page", None),
    ("?page_size=501", "page_size", None),
    ("?page_size=0", "page_size", None),
    ("?sort=colour", "sort", "-last_seen"),
    ("?since=yesterday", "since", None),
    ("?until=2027-13-01", "until", None),
    ("?since=1h&until=2h", "until", None),
    ("?country=CHN", "country", None),
    ("?sevrity=high", "sevrity", "severity"),
    ("?page=1&page=2", "page", None),
])
def test_bad_parameters_are_400_naming_the_parameter(filled, query, parameter, allowed_has):
    response = filled.get(f"/api/incidents{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == parameter
    assert parameter in body["error"]
    if allowed_has is not None:
        assert allowed_has in body["allowed"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_page_size_500_is_accepted(filled):
    body = filled.get("/api/incidents?page_size=500").get_json()
    assert body["page_size"] == 500 and len(body["items"]) == 7
