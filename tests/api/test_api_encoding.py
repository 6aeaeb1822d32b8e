"""The API's pure parts: time formatting and parsing, raw records, and the health rule."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from werkzeug.datastructures import MultiDict

from api import encode, params
from api.params import ParamError
from api.routes import health_status

NOW = 1_800_000_000_000  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(("value", "expected"), [
    (NOW, "2027-01-15T08:00:00Z"),
    (NOW + 123, "2027-01-15T08:00:00.123Z"),
    (datetime(2026, 11, 22, 13, 0, tzinfo=timezone(timedelta(hours=7))), "2026-11-22T06:00:00Z"),
    (pd.Timestamp(NOW + 5, unit="ms", tz="UTC"), "2027-01-15T08:00:00.005Z"),
    (None, None), (pd.NaT, None), (float("nan"), None),
])
def test_times_are_written_as_iso_8601_utc(value, expected):
    assert encode.iso(value) == expected


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        encode.iso(datetime(2026, 11, 22, 6, 0))


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW), ("24h", NOW - 86_400_000), ("7d", NOW - 7 * 86_400_000), ("30m", NOW - 1_800_000),
    ("90s", NOW - 90_000), ("2w", NOW - 14 * 86_400_000), ("1.5h", NOW - 5_400_000), ("15min", NOW - 900_000),
    ("2027-01-15T08:00:00Z", NOW), ("2027-01-15T08:00:00", NOW), ("2027-01-15T15:00:00+07:00", NOW),
    ("2027-01-15T15:00:00 07:00", NOW), ("2027-01-15 08:00:00.250Z", NOW + 250), ("2027-01-15", NOW - 8 * 3_600_000),
])
def test_times_are_read_as_iso_8601_or_an_age(text, expected):
    assert params.parse_time("since", text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "h", "-1h", "2027-02-30", "1y", "99999999999999d"])
def test_an_unreadable_time_names_its_parameter(text):
    with pytest.raises(ParamError) as caught:
        params.parse_time("until", text, NOW)
    assert caught.value.parameter == "until" and "until" in caught.value.message


def test_choices_are_case_insensitive_deduplicated_and_expand_aliases():
    args = MultiDict([("status", "New,open"), ("status", "resolved")])
    assert params.choices(args, "status", ("new", "acknowledged", "investigating", "resolved"),
                          {"open": ("new", "acknowledged", "investigating")}) == (
        "new", "acknowledged", "investigating", "resolved")


@pytest.mark.parametrize(("raw", "value", "kind"), [
    ('{"a": 1}', {"a": 1}, "json"), ("[1, 2]", [1, 2], "json"), ('  {"a": [true, null]}', {"a": [True, None]}, "json"),
    ("{not json", "{not json", "text"), ("42", "42", "text"), ('"quoted"', '"quoted"', "text"),
    ("CEF:0|Vendor|Product|1|100|Port scan|5|src=10.0.0.1", "CEF:0|Vendor|Product|1|100|Port scan|5|src=10.0.0.1",
     "text"),
])
def test_a_raw_record_is_parsed_only_when_it_is_a_json_object_or_array(raw, value, kind):
    assert encode.json_or_text(raw) == (value, kind)


def test_frames_become_plain_json_values():
    frame = pd.DataFrame({"n": pd.Series([1, None], dtype="Int64"), "s": pd.Series(["x", None], dtype="str"),
                          "t": pd.to_datetime(pd.Series([NOW, None], dtype="float64"), unit="ms", utc=True),
                          "b": [True, False]})
    assert encode.rows(frame) == [{"n": 1, "s": "x", "t": "2027-01-15T08:00:00Z", "b": True},
                                  {"n": None, "s": None, "t": None, "b": False}]
    assert encode.dumps(encode.rows(frame)).startswith('[{"n":1,')


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"store_ok": False, "alarm": None, "enabled_states": ["live"], "config_problems": 0}, "down"),
    ({"store_ok": True, "alarm": "No events for 11 min", "enabled_states": ["live"], "config_problems": 0}, "down"),
    ({"store_ok": True, "alarm": None, "enabled_states": ["live", "failed"], "config_problems": 0}, "degraded"),
    ({"store_ok": True, "alarm": None, "enabled_states": ["live", "stale"], "config_problems": 0}, "degraded"),
    ({"store_ok": True, "alarm": None, "enabled_states": ["live", "never-seen"], "config_problems": 0}, "degraded"),
    ({"store_ok": True, "alarm": None, "enabled_states": ["live"], "config_problems": 2}, "degraded"),
    ({"store_ok": True, "alarm": None, "enabled_states": ["live", "late"], "config_problems": 0}, "ok"),
])
def test_the_health_rule(kwargs, expected):
    status, reasons = health_status(**kwargs)
    assert status == expected
    assert (reasons == []) == (expected == "ok")
