"""Freshness, a first-class signal: whether each source is delivering, in one pure function.

A source is in one of five states (DESIGN.md section 6), shown with the same words and colours
on the wall and the feeds page:

``live``        its data is younger than ``cadence × late_factor``
``late``        older than that, younger than ``cadence × stale_factor`` (or ``health.stale_after``)
``stale``       older still: the screen must not pass it off as current
``failed``      its last run failed; the age shown is that of its last good data
``never-seen``  no data has ever come from it

What "its data" means depends on the kind of source:

* a **feed** (threat intel, advisories) is fresh when it was *fetched* successfully recently: a
  blocklist that did not change is still current, so the age is that of the last successful run;
* a **sensor** (a log tailer) is fresh only when *events* arrive: a tailer that runs fine but sees
  no new lines is late, then stale. "No events" is not "all clear", so the age is that of the
  newest event, whatever the runs say.

Everything here is a pure function of its arguments (``now_ms`` included), so every branch is
unit-tested without a clock.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

LIVE, LATE, STALE, FAILED, NEVER_SEEN = "live", "late", "stale", "failed", "never-seen"
STATES: tuple[str, ...] = (LIVE, LATE, STALE, FAILED, NEVER_SEEN)
#: Worst first: the order the feeds page lists sources in, so broken ones are on top.
STATE_RANK: dict[str, int] = {FAILED: 0, STALE: 1, LATE: 2, NEVER_SEEN: 3, LIVE: 4}
#: States in which a sensor is not delivering anything the wall can trust.
NOT_DELIVERING: frozenset[str] = frozenset({STALE, FAILED, NEVER_SEEN})


@dataclass(frozen=True)
class Freshness:
    """The state of one source and what it was judged on.

    ``as_of_ms`` is the time of the data the state rests on (last good fetch for a feed, newest
    event for a sensor); ``age_ms`` is ``now - as_of`` (never negative), both ``None`` when
    never seen. ``reason`` says it in plain words for a tooltip or the feeds page.
    """

    state: str
    as_of_ms: int | None
    age_ms: int | None
    reason: str


def human_age(ms: int | None) -> str:
    """``ms`` as a short duration: ``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``; ``—`` for ``None``."""
    if ms is None:
        return "—"
    seconds = max(0, ms) // 1000
    if seconds < 90:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def source_freshness(
    *,
    is_sensor: bool,
    last_success_ms: int | None,
    last_outcome: str | None,
    consecutive_failures: int,
    newest_record_ms: int | None,
    cadence: timedelta,
    late_factor: float,
    stale_factor: float,
    now_ms: int,
    stale_after: timedelta | None = None,
) -> Freshness:
    """Derive one source's state (see the module docstring for the rules).

    ``cadence`` is ``SourceConfig.cadence``; ``stale_after`` is the source's optional
    ``health.stale_after``, which replaces ``cadence × stale_factor`` when given.
    """
    cadence_ms = max(1, int(cadence.total_seconds() * 1000))
    late_ms = cadence_ms * late_factor
    stale_ms = stale_after.total_seconds() * 1000 if stale_after is not None else cadence_ms * stale_factor
    stale_ms = max(stale_ms, late_ms)
    basis = newest_record_ms if is_sensor else last_success_ms
    age = None if basis is None else max(0, now_ms - basis)
    what = "newest event" if is_sensor else "last successful fetch"

    if last_outcome == "failed":
        times = f"{consecutive_failures} times in a row" if consecutive_failures > 1 else "on its last run"
        if basis is None:
            return Freshness(FAILED, None, None, f"failed {times}; no good data yet")
        return Freshness(FAILED, basis, age, f"failed {times}; {what} {human_age(age)} ago")
    if basis is None:
        if is_sensor and last_success_ms is not None:
            return Freshness(NEVER_SEEN, None, None, "running, but no event has arrived yet")
        return Freshness(NEVER_SEEN, None, None, "no data has ever arrived")
    assert age is not None
    if age <= late_ms:
        return Freshness(LIVE, basis, age, f"{what} {human_age(age)} ago")
    expected = f"expected every {human_age(cadence_ms)}"
    if age <= stale_ms:
        return Freshness(LATE, basis, age, f"{what} {human_age(age)} ago ({expected})")
    return Freshness(STALE, basis, age, f"{what} {human_age(age)} ago ({expected})")


def no_data_alarm(
    *,
    latest_event_ms: int | None,
    sensor_states: Iterable[str],
    now_ms: int,
    no_data_after: timedelta,
) -> str | None:
    """The text of the wall's can't-miss banner, or ``None`` when the floor is receiving data.

    It fires when no event has arrived for longer than ``no_data_after``, when no event ever
    arrived, when no sensor is enabled, or when every enabled sensor is stale, failed or
    never seen (``sensor_states`` holds the states of the *enabled* sensors).
    """
    states = list(sensor_states)
    limit_ms = int(no_data_after.total_seconds() * 1000)
    if not states:
        return "No sensor is enabled: this screen cannot show attacks"
    if latest_event_ms is None:
        return "No event has ever arrived: this screen is not showing live data"
    age = now_ms - latest_event_ms
    if age > limit_ms:
        return f"No events for {human_age(age)}: this screen is not showing live data"
    if all(state in NOT_DELIVERING for state in states):
        label = "The sensor is" if len(states) == 1 else f"All {len(states)} sensors are"
        return f"{label} stale or failed: this screen is not showing live data"
    return None
