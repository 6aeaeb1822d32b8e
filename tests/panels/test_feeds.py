"""The feeds page: every source, broken ones first, errors in plain words."""
from datetime import timedelta

from storefill import HOUR, NOW, add, feed_runs, make_config, sensor, source, source_state
from panels import feeds
from treeutil import find, text_of


def test_plain_error_words():
    assert "API key" in feeds.plain_error("401 Client Error", 401)
    assert "usually temporary" in feeds.plain_error("503 Server Error", 503)
    assert "timeout" in feeds.plain_error("ReadTimeout: read timed out")
    assert "resolved" in feeds.plain_error("Failed to resolve host: [Errno -3] Temporary failure in name resolution")
    assert feeds.plain_error(None) == "" and feeds.plain_error("weird thing\nsecond line") == "weird thing"


def test_schedule_words():
    assert feeds.schedule_text(timedelta(hours=6), None) == "every 6 h"
    assert feeds.schedule_text(timedelta(seconds=90), None) == "every 1 min 30 s"
    assert feeds.schedule_text(None, "0 */6 * * *") == "cron 0 */6 * * *"


def test_feeds_page_lists_every_source_worst_first(flask_app, tmp_path, store):
    cfg = make_config(tmp_path, [source("good", documentation="https://example.org/doc", terms="CC0"),
                                 source("broken"), sensor("ids-1", demo=True), source("off", enabled=False)])
    flask_app.config["WATCHFLOOR"].config = cfg
    add(store, source_state, [
        {"source_id": "good", "last_success_at": NOW - 60_000, "last_outcome": "ok", "consecutive_failures": 0},
        {"source_id": "broken", "last_success_at": NOW - 30 * HOUR, "last_outcome": "failed",
         "last_error": "404 Client Error: Not Found", "consecutive_failures": 5},
    ])
    add(store, feed_runs, [
        {"source_id": "broken", "started_at": NOW - 60_000, "finished_at": NOW - 59_000, "outcome": "failed",
         "http_status": 404, "error": "404 Client Error: Not Found for url"},
        {"source_id": "good", "started_at": NOW - 61_000, "finished_at": NOW - 60_000, "outcome": "flagged",
         "parsed": 12, "rejected": 1, "new": 2, "updated": 10, "flags": '["only 12 records, fewer than 100"]',
         "rejected_samples": '[{"reason": "not an IP", "location": "line 3", "sample": "hello"}]'},
    ])
    tree = feeds.layout()
    rows = find(tree, feeds.ids.TABLE).children
    order = [r.id["source"] for r in rows]
    assert order == ["broken", "ids-1", "good", "off"]  # failed, never-seen, live, then the disabled ones
    broken = text_of(rows[0])
    assert "wf-state-failed" in broken and "not found (HTTP 404)" in broken and "404 Client Error" in broken
    good = text_of(rows[2])
    assert "12" in good and "only 12 records" in good and "1 rejected sample" in good and "hello" in good
    assert "https://example.org/doc" in good and "terms: CC0" in good
    assert "DEMO" in text_of(rows[1]) and "disabled" in text_of(rows[3])
    summary = text_of(find(tree, feeds.ids.SUMMARY))
    assert "1 live" in summary and "1 failed" in summary and "1 disabled" in summary


def test_refresh_callback(flask_app):
    summary, table, asof = feeds.update_feeds(1)
    assert len(table) == 2 and "checked" in text_of(asof)
