"""Correlation: group incident-worthy events into incidents by key and time window.

Key: the values of ``settings.incidents.group_by`` (default signature + src_ip + site) of the event
row, hashed to 40 hex characters (``incidents.group_key``). The key includes the field names, so a
changed ``group_by`` starts new incidents instead of mixing two groupings.

Window: an event joins an incident of its key when it lies within ``window`` of the incident's
[first_seen, last_seen] span (so a late, out-of-order event still joins). Several open candidates:
the one seen last wins.

Closed incidents:

* ``resolved``: with ``reopen_resolved: true`` an event within the window reopens it (status back to
  ``new``, an ``incident_log`` entry by actor ``pipeline``), because the attack the officer closed is
  evidently still going on; with ``false`` it starts a new incident.
* ``false_positive``: never joined, never reopened: a new event makes a new incident, so an officer's
  "false positive" call never hides a later, real attack behind a closed record.

Per batch: one query reads the candidates' versions (id, key, status, count, ``updated_at``) for all
of the batch's keys; incidents cached from earlier batches are used when their version is unchanged,
the rest are loaded whole in a second query (often empty). Keys are independent, so events are
grouped by key and each key's events applied in time order in memory; then new incidents are inserted (one executemany) and touched ones updated (one
executemany). Rows travel as lists in ``events_write`` column order, not dicts: at tens of thousands
of events a second the dicts and their conversions were a large share of the batch.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from pipeline.encode import to_json as dumps
from settings.app_settings import IncidentRules
from store import events_write
from store.db import loads

MAX_SOURCES = 20
MAX_TARGETS = 20
MAX_INDICATORS = 100
CACHE_SIZE = 10_000  # decoded incidents kept between batches (~10-20 MB), checked against the store before use
KEY_MEMO_SIZE = 20_000
_JSON_FIELDS = ("sources", "targets", "techniques", "indicator_ids")
_SOURCES, _TARGETS, _TECHNIQUES, _INDICATORS = 1, 2, 4, 8
_OPEN = frozenset(events_write.OPEN_STATUSES)
_BY_TS = itemgetter(0)  # ``changed`` bits: JSON to re-encode

_COL = {name: index for index, name in enumerate(events_write.EVENT_COLUMNS)}
TS, SEVERITY, SCORE, EXPLAIN = _COL["ts"], _COL["severity"], _COL["score"], _COL["score_explain"]
SRC_IP, DST_IP, SRC_COUNTRY = _COL["src_ip"], _COL["dst_ip"], _COL["src_country"]
SRC_CITY, SRC_LAT, SRC_LON = _COL["src_city"], _COL["src_lat"], _COL["src_lon"]
SITE, SECTOR, ASSET, ZONE = _COL["site"], _COL["sector"], _COL["asset"], _COL["zone"]
SIGNATURE, SIGNATURE_ID, CATEGORY, KIND = _COL["signature"], _COL["signature_id"], _COL["category"], _COL["kind"]
INCIDENT_ID = _COL["incident_id"]

#: One incident-worthy event of a batch: its row (a list in ``EVENT_COLUMNS`` order, ``incident_id``
#: set here), whether the target is the destination, its technique ids and its indicator ids.
Member = tuple[list[Any], bool, tuple[str, ...], list[int]]


class IncidentState:
    """One incident while a batch is applied to it (compared and hashed by identity)."""

    __slots__ = (
        "id", "group_key", "status", "title", "signature", "signature_id", "category", "first_seen", "last_seen",
        "event_count", "severity", "score", "score_explain", "src_ip", "src_country", "src_city", "src_lat",
        "src_lon", "site", "sector", "sources", "targets", "techniques", "indicator_ids", "target_ips", "touched",
        "reopened_from", "stored_json", "decoded", "changed", "updated_at",
    )

    def __init__(self, id: int | None, group_key: str, status: str, title: str, signature: str | None,
                 signature_id: str | None, category: str | None, first_seen: int, last_seen: int,
                 event_count: int = 0, severity: int = 0, score: int = 0, score_explain: str | None = None,
                 src_ip: str | None = None, src_country: str | None = None, site: str | None = None,
                 sector: str | None = None, stored_json: list[str | None] | None = None,
                 updated_at: int | None = None, src_city: str | None = None, src_lat: float | None = None,
                 src_lon: float | None = None) -> None:
        self.id = id
        self.group_key = group_key
        self.status = status
        self.title = title
        self.signature = signature
        self.signature_id = signature_id
        self.category = category
        self.first_seen = first_seen
        self.last_seen = last_seen
        self.event_count = event_count
        self.severity = severity
        self.score = score
        self.score_explain = score_explain
        self.src_ip = src_ip
        self.src_country = src_country
        self.src_city = src_city  # where the source that gave ``src_country`` is (with a city database)
        self.src_lat = src_lat
        self.src_lon = src_lon
        self.site = site
        self.sector = sector
        self.touched = False
        self.reopened_from: str | None = None
        self.changed = 0
        self.updated_at = updated_at
        # JSON columns as loaded (sources, targets, techniques, indicator_ids), decoded only when an
        # event joins, re-encoded only when they changed: most candidates' lists never change.
        self.stored_json: list[str | None] = stored_json or [None, None, None, None]
        self.decoded = stored_json is None
        self.sources: list[str] = []
        self.targets: list[dict[str, Any]] = []
        self.techniques: set[str] = set()
        self.indicator_ids: set[int] = set()
        self.target_ips: set[str] = set()

    @property
    def version(self) -> tuple[Any, ...]:
        """What the cache compares with the stored row: any write by anyone changes one of these."""
        return (self.group_key, self.updated_at, self.event_count, self.status)

    @classmethod
    def from_row(cls, row: Any) -> "IncidentState":
        return cls(
            id=row.id, group_key=row.group_key, status=row.status, title=row.title, signature=row.signature,
            signature_id=row.signature_id, category=row.category, first_seen=row.first_seen,
            last_seen=row.last_seen, event_count=row.event_count, severity=row.severity, score=row.score,
            score_explain=row.score_explain, src_ip=row.src_ip, src_country=row.src_country, site=row.site,
            sector=row.sector, stored_json=[getattr(row, name) for name in _JSON_FIELDS],
            updated_at=row.updated_at, src_city=row.src_city, src_lat=row.src_lat, src_lon=row.src_lon,
        )

    def _decode(self) -> None:
        sources, targets, techniques, indicator_ids = self.stored_json
        self.decoded = True
        self.sources = loads(sources, [])
        self.targets = loads(targets, [])
        self.techniques = set(loads(techniques, []))
        self.indicator_ids = set(loads(indicator_ids, []))
        self.target_ips = {t.get("ip") for t in self.targets}

    def distance(self, ts: int) -> int:
        """How far ``ts`` lies outside the incident's span (0 inside it)."""
        if ts < self.first_seen:
            return self.first_seen - ts
        return max(0, ts - self.last_seen)

    def add(self, row: list[Any], target_is_dst: bool, techniques: tuple[str, ...], indicator_ids: list[int]) -> None:
        if not self.decoded:
            self._decode()
        ts = row[TS]
        if ts < self.first_seen:
            self.first_seen = ts
        if ts > self.last_seen:
            self.last_seen = ts
        self.event_count += 1
        if row[SEVERITY] > self.severity:
            self.severity = row[SEVERITY]
        score = row[SCORE]
        if score > self.score or self.score_explain is None:
            self.score = max(self.score, score)
            self.score_explain = row[EXPLAIN]
        src_ip = row[SRC_IP]
        sources = self.sources
        if src_ip and src_ip not in sources and len(sources) < MAX_SOURCES:
            sources.append(src_ip)
            self.changed |= _SOURCES
        # The representative source is the only one, when there is only one.
        self.src_ip = sources[0] if len(sources) == 1 else None
        if not self.src_country:  # the first source with a country gives it, and its place with it
            self.src_country = row[SRC_COUNTRY]
            self.src_city, self.src_lat, self.src_lon = row[SRC_CITY], row[SRC_LAT], row[SRC_LON]
        self.site = self.site or row[SITE]
        self.sector = self.sector or row[SECTOR]
        target_ip = row[DST_IP] if target_is_dst else src_ip
        if target_ip and len(self.targets) < MAX_TARGETS and target_ip not in self.target_ips:
            self.targets.append({"ip": target_ip, "site": row[SITE], "asset": row[ASSET], "zone": row[ZONE]})
            self.target_ips.add(target_ip)
            self.changed |= _TARGETS
        if techniques and not self.techniques.issuperset(techniques):
            self.techniques.update(techniques)
            self.changed |= _TECHNIQUES
        if indicator_ids:
            known = self.indicator_ids
            for indicator_id in indicator_ids:
                if len(known) >= MAX_INDICATORS:
                    break
                if indicator_id not in known:
                    known.add(indicator_id)
                    self.changed |= _INDICATORS
        self.touched = True

    def _json_columns(self) -> list[str | None]:
        """``sources, targets, techniques, indicator_ids`` as JSON, re-encoded only where changed."""
        stored, changed = self.stored_json, self.changed
        if changed:
            if changed & _SOURCES:
                stored[0] = dumps(self.sources)
            if changed & _TARGETS:
                stored[1] = dumps(self.targets)
            if changed & _TECHNIQUES:
                stored[2] = dumps(sorted(self.techniques))
            if changed & _INDICATORS:
                stored[3] = dumps(sorted(self.indicator_ids))
            self.changed = 0
        return stored

    def written(self, now_ms: int) -> None:
        """The batch stored this state: it now equals the row, so it can be cached and reused."""
        self.updated_at = now_ms
        self.touched = False
        self.reopened_from = None

    def insert_row(self, now_ms: int) -> list[Any]:
        """A list in ``events_write.INCIDENT_COLUMNS`` order (``id`` filled in by the insert)."""
        sources, targets, techniques, indicator_ids = self._json_columns()
        return [
            None, self.group_key, self.title, self.signature, self.signature_id, self.category, self.src_ip,
            self.src_country, self.src_city, self.src_lat, self.src_lon, self.site, self.sector, self.first_seen,
            self.last_seen, self.event_count, self.severity, self.score, self.score_explain, self.status, targets,
            sources, techniques, indicator_ids, now_ms,
        ]

    def update_row(self, now_ms: int) -> tuple[Any, ...]:
        """``(*events_write.INCIDENT_UPDATE_FIELDS, id)``."""
        sources, targets, techniques, indicator_ids = self._json_columns()
        return (
            self.status, self.first_seen, self.last_seen, self.event_count, self.severity, self.score,
            self.score_explain, self.src_ip, self.src_country, self.src_city, self.src_lat, self.src_lon, self.site,
            self.sector, targets, sources, techniques, indicator_ids, now_ms, self.id,
        )


assert events_write.INCIDENT_UPDATE_FIELDS == (
    "status", "first_seen", "last_seen", "event_count", "severity", "score", "score_explain", "src_ip",
    "src_country", "src_city", "src_lat", "src_lon", "site", "sector", "targets", "sources", "techniques",
    "indicator_ids", "updated_at")
assert events_write.INCIDENT_COLUMNS[6:11] == ("src_ip", "src_country", "src_city", "src_lat", "src_lon")


@dataclass
class CorrelationResult:
    new: int = 0
    updated: int = 0
    reopened: int = 0


def group_key(values: Sequence[Any], keys: Sequence[str]) -> str:
    """The incident key of an event whose ``keys`` fields hold ``values`` (names included in the hash)."""
    text = "\x1f".join(f"{name}={value or ''}" for name, value in zip(keys, values))
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def title_of(row: list[Any]) -> str:
    return row[SIGNATURE] or row[CATEGORY] or f"{row[KIND]} events"


class Correlator:
    def __init__(self, rules: IncidentRules) -> None:
        self.rules = rules
        self.window_ms = int(rules.window.total_seconds() * 1000)
        # Incidents a recent batch wrote, already decoded. A candidate is taken from here only when
        # its stored version (group key, updated_at, event_count, status) is unchanged, so officer
        # actions, other processes and rolled-back batches all force a reload.
        self._cache: dict[int, IncidentState] = {}
        # Group keys by the tuple of grouped values: hashing each event's values again is wasted work.
        self._keys_of = list(rules.group_by)
        positions = [_COL[name] for name in rules.group_by]
        getter = itemgetter(*positions)
        self._key_values = getter if len(positions) > 1 else (lambda row, _i=positions[0]: (row[_i],))
        self._keys: dict[Any, str] = {}

    def assign(self, conn: Connection, members: list[Member], now_ms: int) -> CorrelationResult:
        """Set ``incident_id`` on every member's row, creating/updating incidents as needed."""
        result = CorrelationResult()
        if not members:
            return result
        values_of, memo, names = self._key_values, self._keys, self._keys_of
        # Keys are independent, so each key's events are applied in time order, key after key.
        by_key: dict[str, list[tuple[int, Member]]] = {}
        since = None
        for member in members:
            row = member[0]
            values = values_of(row)
            key = memo.get(values)
            if key is None:
                if len(memo) >= KEY_MEMO_SIZE:
                    memo.clear()
                key = memo[values] = group_key(values, names)
            ts = row[TS]
            if since is None or ts < since:
                since = ts
            group = by_key.get(key)
            if group is None:
                by_key[key] = [(ts, member)]
            else:
                group.append((ts, member))
        candidates = self._candidates(conn, sorted(by_key), since - self.window_ms)

        created: list[IncidentState] = []
        touched: list[IncidentState] = []  # existing incidents this batch changed
        pick, by_ts = self._pick, _BY_TS
        for key, group in by_key.items():
            if len(group) > 1:
                group.sort(key=by_ts)  # stable: events of the same time keep their order
            states = candidates.get(key)
            if states is None:
                states = candidates[key] = []
            for ts, member in group:
                row = member[0]
                state = pick(states, ts) if states else None
                if state is None:
                    state = IncidentState(
                        id=None, group_key=key, status="new", title=title_of(row), signature=row[SIGNATURE],
                        signature_id=row[SIGNATURE_ID], category=row[CATEGORY], first_seen=ts, last_seen=ts,
                    )
                    states.append(state)
                    created.append(state)
                elif not state.touched and state.id is not None:
                    touched.append(state)
                state.add(row, member[1], member[2], member[3])
                row[INCIDENT_ID] = state  # replaced by the id once new incidents are numbered

        if created:
            ids = events_write.insert_incident_rows(conn, [s.insert_row(now_ms) for s in created])
            for state, new_id in zip(created, ids):
                state.id = new_id
            result.new = len(created)
        if touched:
            # Apart, so that the search index's update trigger (it watches ``sources``) fires only for
            # incidents that gained a source: most updates only move counts and times.
            new_sources = [s for s in touched if s.changed & _SOURCES]
            same_sources = [s for s in touched if not s.changed & _SOURCES]
            events_write.update_incident_rows(conn, [s.update_row(now_ms) for s in new_sources])
            events_write.update_incident_rows(conn, [s.update_row(now_ms) for s in same_sources],
                                              sources_changed=False)
            result.updated = len(touched)
        reopened = [s for s in touched if s.reopened_from]
        if reopened:
            events_write.append_log(conn, [
                {"incident_id": s.id, "at": now_ms, "actor": events_write.PIPELINE_ACTOR, "action": "reopened",
                 "detail": {"from": s.reopened_from, "to": s.status, "reason": "new event within the window"}}
                for s in reopened
            ])
            result.reopened = len(reopened)
        for group in by_key.values():
            for _, member in group:
                row = member[0]
                row[INCIDENT_ID] = row[INCIDENT_ID].id
        cache = self._cache
        if len(cache) + len(created) + len(touched) > CACHE_SIZE:
            cache.clear()
        for state in touched:
            state.written(now_ms)
            cache[state.id] = state
        for state in created:
            state.written(now_ms)
            cache[state.id] = state
        return result

    def _candidates(self, conn: Connection, keys: list[str], since: int) -> dict[str, list[IncidentState]]:
        """Incidents of these keys seen since ``since``: from the cache when unchanged, else loaded."""
        heads = events_write.load_incident_heads(conn, keys, since)
        cache = self._cache
        found: dict[int, IncidentState] = {}
        stale = []
        for head in heads:
            state = cache.get(head.id)
            if state is not None and state.version == (head.group_key, head.updated_at, head.event_count, head.status):
                found[head.id] = state
            else:
                stale.append(head.id)
        for row in events_write.load_incidents(conn, stale):
            found[row.id] = IncidentState.from_row(row)
        candidates: dict[str, list[IncidentState]] = {}
        for head in heads:
            candidates.setdefault(head.group_key, []).append(found[head.id])
        return candidates

    def _pick(self, states: list[IncidentState], ts: int) -> IncidentState | None:
        window = self.window_ms
        if len(states) == 1:  # the common case: one incident per key in reach, open and within the window
            only = states[0]
            if only.status in _OPEN and only.first_seen - window <= ts <= only.last_seen + window:
                return only
        best: IncidentState | None = None
        for state in states:
            if state.status in events_write.OPEN_STATUSES and state.distance(ts) <= window:
                if best is None or state.last_seen > best.last_seen:
                    best = state
        if best is not None or not self.rules.reopen_resolved:
            return best
        for state in states:
            if state.status == "resolved" and state.distance(ts) <= window:
                if best is None or state.last_seen > best.last_seen:
                    best = state
        if best is not None:
            best.reopened_from = best.status
            best.status = "new"
        return best
