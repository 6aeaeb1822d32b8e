"""The API's edges: the index, unknown paths, methods, and errors that never leak a stack trace."""
from __future__ import annotations

import logging

import pytest

from store import queries


def test_the_index_lists_the_endpoints(client):
    for path in ("/api", "/api/"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "application/json"
        paths = [e["path"] for e in response.get_json()["endpoints"]]
        assert paths == ["/api/incidents", "/api/incidents/<id>", "/api/sources", "/api/health"]


@pytest.mark.parametrize("path", ["/api/nope", "/api/incidents/1/events", "/api/v2/incidents", "/api/health/"])
def test_unknown_api_paths_are_json_404_not_the_dashboard(client, path):
    response = client.get(path)
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert "no such API path" in response.get_json()["error"]
    assert "<html" not in response.get_data(as_text=True).lower()


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_api_is_read_only(client, method):
    response = getattr(client, method)("/api/incidents", json={"status": "resolved"})
    assert response.status_code == 405 and response.mimetype == "application/json"
    assert response.headers["Allow"] == "GET, HEAD"
    assert "read-only" in response.get_json()["error"]


def test_the_dashboard_pages_are_left_alone(client):
    response = client.get("/wall")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert client.get("/incidents/12345").mimetype == "text/html"


def test_an_unexpected_error_is_a_short_json_500_and_the_trace_goes_to_the_log(client, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("boom in /srv/secret/path")

    assert client.get("/api/").status_code == 200  # Dash's one-time setup done before the patch
    monkeypatch.setattr(queries, "source_health", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/sources")
    assert response.status_code == 500 and response.mimetype == "application/json"
    text = response.get_data(as_text=True)
    assert "boom" not in text and "Traceback" not in text and "secret" not in text
    assert response.get_json() == {"error": "internal error while answering this request; "
                                            "the server log has the details"}
    assert any(r.exc_info and "boom in /srv/secret/path" in str(r.exc_info[1]) for r in caplog.records)
