"""Officer actions on incidents: status changes, assignment, notes, each written to the audit log."""
from __future__ import annotations

import pytest
from pipeline_testkit import NOW_MS, event_at, ingest
from sqlalchemy import select

from store.db import loads
from store.events_write import (
    IncidentNotFound, add_incident_note, assign_incident, incident_log_entries, set_incident_status,
)
from store.records import Severity
from store.schema import incidents


@pytest.fixture
def incident_id(pipeline, store) -> int:
    ingest(pipeline, store, [event_at(0, src_ip="45.33.32.156", dst_ip="192.0.2.1", signature="ET SCAN x",
                                      sensor_severity=Severity.MEDIUM)])
    with store.reader.connect() as conn:
        return conn.execute(select(incidents.c.id)).scalar_one()


def current(store, incident_id):
    with store.reader.connect() as conn:
        return conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()


def test_status_assignment_and_notes_are_applied_and_logged(store, incident_id):
    with store.writer.begin() as conn:
        set_incident_status(conn, incident_id, "acknowledged", "duty-officer", NOW_MS + 1)
        assign_incident(conn, incident_id, "analyst-2", "duty-officer", NOW_MS + 2)
        add_incident_note(conn, incident_id, "Scanner known to Shodan; blocked at edge.", "analyst-2", NOW_MS + 3)
        set_incident_status(conn, incident_id, "resolved", "analyst-2", NOW_MS + 4, note="blocked")
    row = current(store, incident_id)
    assert (row.status, row.assignee, row.updated_at) == ("resolved", "analyst-2", NOW_MS + 4)
    with store.reader.connect() as conn:
        log = incident_log_entries(conn, incident_id)
    assert [(e.at, e.actor, e.action, loads(e.detail)) for e in log] == [
        (NOW_MS + 1, "duty-officer", "status", {"from": "new", "to": "acknowledged"}),
        (NOW_MS + 2, "duty-officer", "assign", {"from": None, "to": "analyst-2"}),
        (NOW_MS + 3, "analyst-2", "note", {"text": "Scanner known to Shodan; blocked at edge."}),
        (NOW_MS + 4, "analyst-2", "status", {"from": "acknowledged", "to": "resolved", "note": "blocked"}),
    ]


def test_invalid_actions_raise_and_leave_no_trace(store, incident_id):
    with store.writer.begin() as conn:
        with pytest.raises(ValueError, match="unknown status"):
            set_incident_status(conn, incident_id, "closed", "officer", NOW_MS)
        with pytest.raises(ValueError, match="already new"):
            set_incident_status(conn, incident_id, "new", "officer", NOW_MS)
        with pytest.raises(ValueError, match="actor"):
            assign_incident(conn, incident_id, "x", " ", NOW_MS)
        with pytest.raises(ValueError, match="empty"):
            add_incident_note(conn, incident_id, "   ", "officer", NOW_MS)
        with pytest.raises(IncidentNotFound):
            set_incident_status(conn, incident_id + 99, "resolved", "officer", NOW_MS)
        set_incident_status(conn, incident_id, "false_positive", "officer", NOW_MS)
        with pytest.raises(ValueError, match="reopened"):
            set_incident_status(conn, incident_id, "resolved", "officer", NOW_MS)
    with store.reader.connect() as conn:
        assert [e.action for e in incident_log_entries(conn, incident_id)] == ["status"]


def test_a_closed_incident_can_be_reopened_and_unassigned(store, incident_id):
    with store.writer.begin() as conn:
        assign_incident(conn, incident_id, "analyst-1", "lead", NOW_MS)
        set_incident_status(conn, incident_id, "RESOLVED", "lead", NOW_MS + 1)
        set_incident_status(conn, incident_id, "investigating", "lead", NOW_MS + 2)
        assign_incident(conn, incident_id, None, "lead", NOW_MS + 3)
    row = current(store, incident_id)
    assert (row.status, row.assignee) == ("investigating", None)
