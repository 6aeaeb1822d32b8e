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

Per batch: one query loads every candidate incident of the batch's keys, events are assigned in
time order in memory, then new incidents are inserted (one executemany with RETURNING) and touched
ones updated (one executemany).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from settings.app_settings import IncidentRules
from store import events_write
from pipeline.encode import to_json as dumps
from store.db import loads

MAX_SOURCES = 20
MAX_TARGETS = 20
MAX_INDICATORS = 100
CACHE_SIZE = 20_000  # decoded incidents kept between batches, checked against the store before use
_JSON_FIELDS = ("sources", "targets", "techniques", "indicator_ids")


@dataclass(eq=False)  # identity, not field equality: two incidents may look alike
class IncidentState:
    """One incident while a batch is applied to it."""

    id: int | None
    group_key: str
    status: str
    title: str
    signature: str | None
    signature_id: str | None
    category: str | None
    first_seen: int
    last_seen: int
    event_count: int = 0
    severity: int = 0
    score: int = 0
    score_explain: str | None = None
    src_ip: str | None = None
    src_country: str | None = None
    site: str | None = None
    sector: str | None = None
    sources: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    techniques: set[str] = field(default_factory=set)
    indicator_ids: set[int] = field(default_factory=set)
    touched: bool = False
    reopened_from: str | None = None
    # JSON columns as loaded, decoded only when an event joins, re-encoded only when they changed:
    # a batch loads many candidates and most of their lists never change.
    stored_json: dict[str, str | None] = field(default_factory=dict)
    decoded: bool = True
    changed: set[str] = field(default_factory=set)
    target_ips: set[str] = field(default_factory=set)
    updated_at: int | None = None

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
            sector=row.sector, stored_json={name: getattr(row, name) for name in _JSON_FIELDS}, decoded=False,
            updated_at=row.updated_at,
        )

    def _decode(self) -> None:
        stored, self.decoded = self.stored_json, True
        self.sources = loads(stored.get("sources"), [])
        self.targets = loads(stored.get("targets"), [])
        self.techniques = set(loads(stored.get("techniques"), []))
        self.indicator_ids = set(loads(stored.get("indicator_ids"), []))
        self.target_ips = {t.get("ip") for t in self.targets}

    def distance(self, ts: int) -> int:
        """How far ``ts`` lies outside the incident's span (0 inside it)."""
        if ts < self.first_seen:
            return self.first_seen - ts
        return max(0, ts - self.last_seen)

    def add(self, row: dict[str, Any]) -> None:
        if not self.decoded:
            self._decode()
        ts = row["ts"]
        self.first_seen = min(self.first_seen, ts)
        self.last_seen = max(self.last_seen, ts)
        self.event_count += 1
        self.severity = max(self.severity, row["severity"])
        if row["score"] > self.score or self.score_explain is None:
            self.score = max(self.score, row["score"])
            self.score_explain = row["score_explain"]
        src_ip = row["src_ip"]
        if src_ip and src_ip not in self.sources and len(self.sources) < MAX_SOURCES:
            self.sources.append(src_ip)
            self.changed.add("sources")
        # The representative source is the only one, when there is only one.
        self.src_ip = self.sources[0] if len(self.sources) == 1 else None
        self.src_country = self.src_country or row["src_country"]
        self.site = self.site or row["site"]
        self.sector = self.sector or row["sector"]
        target_ip = row["dst_ip"] if row["target_is_dst"] else row["src_ip"]
        if target_ip and len(self.targets) < MAX_TARGETS and target_ip not in self.target_ips:
            self.targets.append({"ip": target_ip, "site": row["site"], "asset": row["asset"], "zone": row["zone"]})
            self.target_ips.add(target_ip)
            self.changed.add("targets")
        techniques = row["_techniques"]
        if techniques and not self.techniques.issuperset(techniques):
            self.techniques.update(techniques)
            self.changed.add("techniques")
        for indicator_id in row["_indicator_ids"]:
            if len(self.indicator_ids) >= MAX_INDICATORS:
                break
            if indicator_id not in self.indicator_ids:
                self.indicator_ids.add(indicator_id)
                self.changed.add("indicator_ids")
        self.touched = True

    def _json(self, name: str, value: Any) -> str | None:
        if name in self.changed:
            self.stored_json[name] = dumps(value)
        return self.stored_json.get(name)

    def written(self, now_ms: int) -> None:
        """The batch stored this state: it now equals the row, so it can be cached and reused."""
        self.updated_at = now_ms
        self.touched = False
        self.reopened_from = None
        self.changed.clear()

    def as_row(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id, "group_key": self.group_key, "title": self.title, "signature": self.signature,
            "signature_id": self.signature_id, "category": self.category, "src_ip": self.src_ip,
            "src_country": self.src_country, "site": self.site, "sector": self.sector,
            "first_seen": self.first_seen, "last_seen": self.last_seen, "event_count": self.event_count,
            "severity": self.severity, "score": self.score, "score_explain": self.score_explain,
            "status": self.status, "targets": self._json("targets", self.targets),
            "sources": self._json("sources", self.sources),
            "techniques": self._json("techniques", sorted(self.techniques)),
            "indicator_ids": self._json("indicator_ids", sorted(self.indicator_ids)),
            "updated_at": now_ms,
        }


@dataclass
class CorrelationResult:
    new: int = 0
    updated: int = 0
    reopened: int = 0


def _without_id(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("id", None)
    return row


def group_key(row: dict[str, Any], keys: list[str]) -> str:
    text = "\x1f".join(f"{name}={row.get(name) or ''}" for name in keys)
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def title_of(row: dict[str, Any]) -> str:
    return row["signature"] or row["category"] or f"{row['kind']} events"


class Correlator:
    def __init__(self, rules: IncidentRules) -> None:
        self.rules = rules
        self.window_ms = int(rules.window.total_seconds() * 1000)
        # Incidents a recent batch wrote, already decoded. A candidate is taken from here only when
        # its stored version (group key, updated_at, event_count, status) is unchanged, so officer
        # actions, other processes and rolled-back batches all force a reload.
        self._cache: dict[int, IncidentState] = {}
        # Group keys by the tuple of grouped values: hashing each event's values again is wasted work.
        getter = itemgetter(*rules.group_by)
        self._key_values: Callable[[dict[str, Any]], Any] = getter
        self._keys: dict[Any, str] = {}

    def assign(self, conn: Connection, rows: list[dict[str, Any]], now_ms: int) -> CorrelationResult:
        """Set ``incident_id`` on every row (all incident-worthy), creating/updating incidents as needed."""
        result = CorrelationResult()
        if not rows:
            return result
        values_of, memo = self._key_values, self._keys
        for row in rows:
            values = values_of(row)
            key = memo.get(values)
            if key is None:
                if len(memo) >= CACHE_SIZE:
                    memo.clear()
                key = memo[values] = group_key(row, self.rules.group_by)
            row["_key"] = key
        since = min(row["ts"] for row in rows) - self.window_ms
        candidates = self._candidates(conn, sorted({r["_key"] for r in rows}), since)

        created: list[IncidentState] = []
        members: list[tuple[dict[str, Any], IncidentState]] = []
        for row in sorted(rows, key=lambda r: r["ts"]):
            ts, states = row["ts"], candidates.setdefault(row["_key"], [])
            state = self._pick(states, ts)
            if state is None:
                state = IncidentState(
                    id=None, group_key=row["_key"], status="new", title=title_of(row), signature=row["signature"],
                    signature_id=row["signature_id"], category=row["category"], first_seen=ts, last_seen=ts,
                )
                states.append(state)
                created.append(state)
            state.add(row)
            members.append((row, state))

        # Existing incidents this batch touched (the new ones have no id yet).
        touched = [s for states in candidates.values() for s in states if s.touched and s.id is not None]
        if created:
            ids = events_write.insert_incidents(conn, [_without_id(s.as_row(now_ms)) for s in created])
            for state, new_id in zip(created, ids):
                state.id = new_id
            result.new = len(created)
        if touched:
            events_write.update_incidents(conn, [s.as_row(now_ms) for s in touched])
            result.updated = len(touched)
        reopened = [s for s in touched if s.reopened_from]
        if reopened:
            events_write.append_log(conn, [
                {"incident_id": s.id, "at": now_ms, "actor": events_write.PIPELINE_ACTOR, "action": "reopened",
                 "detail": {"from": s.reopened_from, "to": s.status, "reason": "new event within the window"}}
                for s in reopened
            ])
            result.reopened = len(reopened)
        for row, state in members:
            row["incident_id"] = state.id
        if len(self._cache) + len(created) > CACHE_SIZE:
            self._cache.clear()
        for state in (*touched, *created):
            state.written(now_ms)
            self._cache[state.id] = state
        return result

    def _candidates(self, conn: Connection, keys: list[str], since: int) -> dict[str, list[IncidentState]]:
        """Incidents of these keys seen since ``since``: from the cache when unchanged, else loaded."""
        heads = events_write.load_incident_heads(conn, keys, since)
        cached: dict[int, IncidentState] = {}
        stale = []
        for head in heads:
            state = self._cache.get(head.id)
            if state is not None and state.version == (head.group_key, head.updated_at, head.event_count, head.status):
                cached[head.id] = state
            else:
                stale.append(head.id)
        for row in events_write.load_incidents(conn, stale):
            cached[row.id] = IncidentState.from_row(row)
        candidates: dict[str, list[IncidentState]] = {}
        for head in heads:
            candidates.setdefault(head.group_key, []).append(cached[head.id])
        return candidates

    def _pick(self, states: list[IncidentState], ts: int) -> IncidentState | None:
        window = self.window_ms
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
