"""The read side for panels: the only place the UI reads the store from.

The contract, for every function here:

* it takes the ``Store`` (and reads through ``store.reader``) plus plain parameters: ``now_ms``
  (epoch milliseconds, UTC, injected so nothing depends on the wall clock), filters, paging;
* it builds its SQL from SQLAlchemy Core expressions, so every value is a bound parameter;
* it returns a DataFrame with a fixed column list and dtypes (empty but typed when there is no
  data; times as ``datetime64[ms, UTC]``, severities as their words) or a small frozen dataclass;
* it never writes. Officer actions go through ``store.events_write``.

The wall reads the event counts kept at ingest (``rollups``, per minute x severity x site x sector x
source country, through the coarse tables of ``store.coarse_rollups``), never the raw ``events``
table, except for index-only look-ups such as the newest event time.

The functions live in one module per concern, all re-exported here (import them from
``store.queries``):

* ``common``: time units, the incident statuses, the typed frames (``_frame``) and severity words;
* ``wall``: the KPI tiles, the 24-hour timeline, the attack map, located sources, and the two readers
  of the event counts every wall query goes through (``_severity_buckets``, ``_country_site_pairs``);
* ``incidents``: the incident list (filters, sorting, paging, text search), the wall's latest
  incidents, one incident in detail, its events, audit log and indicators;
* ``sources``: the newest event, ``data_as_of``, source health and the feeds overview;
* ``exposure``: advisories matched to the inventory (findings, one asset's, the summary).
"""
from __future__ import annotations

from store.queries.common import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    OPEN_STATUSES,
    STATUSES,
    _frame,
    _label,
    _level,
)
from store.queries.exposure import (
    CRITICAL_CVSS,
    EXPOSURE_CAP,
    EXPOSURE_COLUMNS,
    ExposureSummary,
    exposure_findings,
    exposure_summary,
    exposures_for_asset,
)
from store.queries.incidents import (
    COUNT_CAP,
    EVENT_COLUMNS,
    EVENTS_CAP,
    INCIDENT_COLUMNS,
    INDICATOR_COLUMNS,
    LOG_COLUMNS,
    MAX_PAGE_SIZE,
    SORTABLE,
    EventDetail,
    IncidentDetail,
    IncidentFilters,
    IncidentPage,
    _incident_conditions,
    event_by_id,
    events_for_incident,
    incident_by_id,
    incident_events,
    incident_log,
    incidents_page,
    indicators_by_ids,
    recent_incidents,
)
from store.queries.sources import (
    LAST_RUN_COLUMNS,
    SOURCE_HEALTH_COLUMNS,
    DataAsOf,
    data_as_of,
    feeds_overview,
    latest_event_time,
    source_health,
)
from store.queries.wall import (
    ARC_COLUMNS,
    OPEN_COUNT_CAP,
    PER_MINUTE_COLUMNS,
    PLACE_COLUMNS,
    PLACE_LIMIT,
    SITE_COLUMNS,
    SITE_OPEN_CAP,
    TIMELINE_COLUMNS,
    AttackMap,
    WallKpis,
    _country_site_pairs,
    _minute_floor,
    _severity_buckets,
    attack_map,
    source_places,
    timeline_24h,
    wall_kpis,
)

__all__ = [
    "AttackMap", "DataAsOf", "EventDetail", "IncidentDetail", "IncidentFilters", "IncidentPage", "WallKpis",
    "attack_map", "data_as_of", "event_by_id", "events_for_incident", "feeds_overview", "incident_by_id",
    "incident_events", "incident_log", "incidents_page", "indicators_by_ids", "latest_event_time", "recent_incidents",
    "source_health", "timeline_24h", "wall_kpis", "OPEN_STATUSES", "STATUSES", "COUNT_CAP",
    "CRITICAL_CVSS", "EXPOSURE_CAP", "ExposureSummary", "exposure_findings", "exposure_summary", "exposures_for_asset",
]
