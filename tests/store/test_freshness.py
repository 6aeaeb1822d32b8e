"""store.freshness: every branch of the source state and of the no-data alarm, with injected times."""
from datetime import timedelta

from store.freshness import FAILED, LATE, LIVE, NEVER_SEEN, STALE, human_age, no_data_alarm, source_freshness

NOW = 1_800_000_000_000
S = 1000
HOUR = timedelta(hours=1)


def fresh(**kw):
    args = dict(is_sensor=False, last_success_ms=None, last_outcome=None, consecutive_failures=0,
                newest_record_ms=None, cadence=HOUR, late_factor=1.5, stale_factor=4.0, now_ms=NOW)
    args.update(kw)
    return source_freshness(**args)


def test_feed_never_run_is_never_seen():
    f = fresh()
    assert (f.state, f.as_of_ms, f.age_ms) == (NEVER_SEEN, None, None)
    assert "ever arrived" in f.reason


def test_feed_live_up_to_cadence_times_late_factor():
    assert fresh(last_success_ms=NOW - 5400 * S, last_outcome="ok").state == LIVE  # exactly 1.5 h
    f = fresh(last_success_ms=NOW - 600 * S, last_outcome="unchanged")
    assert (f.state, f.as_of_ms, f.age_ms) == (LIVE, NOW - 600 * S, 600 * S)


def test_feed_late_then_stale():
    assert fresh(last_success_ms=NOW - 5401 * S, last_outcome="ok").state == LATE
    assert fresh(last_success_ms=NOW - 4 * 3600 * S, last_outcome="ok").state == LATE
    stale = fresh(last_success_ms=NOW - 4 * 3600 * S - 1, last_outcome="ok")
    assert stale.state == STALE
    assert "expected every 60 min" in stale.reason


def test_stale_after_overrides_stale_factor():
    f = fresh(last_success_ms=NOW - 2 * 3600 * S, last_outcome="ok", stale_after=timedelta(hours=2) - timedelta(seconds=1))
    assert f.state == STALE
    # never earlier than "late": a stale_after shorter than the late limit is raised to it
    assert fresh(last_success_ms=NOW - 3600 * S, last_outcome="ok", stale_after=timedelta(minutes=1)).state == LIVE


def test_failed_feed_keeps_the_age_of_its_last_good_data():
    f = fresh(last_success_ms=NOW - 3 * 3600 * S, last_outcome="failed", consecutive_failures=3)
    assert (f.state, f.as_of_ms, f.age_ms) == (FAILED, NOW - 3 * 3600 * S, 3 * 3600 * S)
    assert "3 times in a row" in f.reason and "3 h 00 min ago" in f.reason


def test_failed_without_any_good_data():
    f = fresh(last_outcome="failed", consecutive_failures=1)
    assert (f.state, f.as_of_ms) == (FAILED, None)
    assert "on its last run" in f.reason and "no good data" in f.reason


def test_sensor_is_judged_on_its_newest_event_not_on_its_runs():
    # the tailer ran a second ago and is fine, but no new line for 10 minutes: stale at cadence 1 min
    f = fresh(is_sensor=True, last_success_ms=NOW - S, last_outcome="ok", newest_record_ms=NOW - 600 * S,
              cadence=timedelta(minutes=1))
    assert f.state == STALE and "newest event" in f.reason
    assert fresh(is_sensor=True, last_success_ms=NOW - S, last_outcome="ok", newest_record_ms=NOW - 120 * S,
                 cadence=timedelta(minutes=1)).state == LATE
    assert fresh(is_sensor=True, last_success_ms=NOW - S, last_outcome="ok", newest_record_ms=NOW - 30 * S,
                 cadence=timedelta(minutes=1)).state == LIVE


def test_sensor_running_without_events_is_never_seen():
    f = fresh(is_sensor=True, last_success_ms=NOW - S, last_outcome="ok")
    assert f.state == NEVER_SEEN and "running" in f.reason


def test_failed_sensor_with_older_events():
    f = fresh(is_sensor=True, last_outcome="failed", consecutive_failures=2, newest_record_ms=NOW - 60 * S)
    assert (f.state, f.age_ms) == (FAILED, 60 * S)


def test_future_timestamps_count_as_age_zero():
    f = fresh(last_success_ms=NOW + 60 * S, last_outcome="ok")
    assert (f.state, f.age_ms) == (LIVE, 0)


def test_human_age():
    assert [human_age(v) for v in (None, 0, 45 * S, 89 * S, 90 * S, 3 * 3600 * S + 5 * 60 * S, 50 * 3600 * S)] == [
        "—", "0 s", "45 s", "89 s", "1 min", "3 h 05 min", "2 d 2 h"]


ALARM = dict(now_ms=NOW, no_data_after=timedelta(minutes=10))


def test_alarm_quiet_when_events_arrive_and_a_sensor_delivers():
    assert no_data_alarm(latest_event_ms=NOW - 60 * S, sensor_states=["live", "stale"], **ALARM) is None
    assert no_data_alarm(latest_event_ms=NOW - 600 * S, sensor_states=["late"], **ALARM) is None


def test_alarm_when_no_event_for_too_long():
    text = no_data_alarm(latest_event_ms=NOW - 601 * S, sensor_states=["live"], **ALARM)
    assert text.startswith("No events for 10 min")


def test_alarm_when_nothing_ever_arrived_or_no_sensor():
    assert "ever arrived" in no_data_alarm(latest_event_ms=None, sensor_states=["never-seen"], **ALARM)
    assert "No sensor is enabled" in no_data_alarm(latest_event_ms=NOW, sensor_states=[], **ALARM)


def test_alarm_when_every_sensor_is_stale_or_failed():
    assert no_data_alarm(latest_event_ms=NOW - S, sensor_states=["stale", "failed"], **ALARM).startswith(
        "All 2 sensors are stale or failed")
    assert no_data_alarm(latest_event_ms=NOW - S, sensor_states=["failed"], **ALARM).startswith("The sensor is")
