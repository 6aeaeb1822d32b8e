"""The event pipeline: dedupe → GeoIP → asset lookup → indicator match → ATT&CK → score → correlate → store.

``EventPipeline.ingest`` runs inside the caller's write transaction (the caller commits its file
cursor in the same one), so a batch is stored whole or not at all. Per batch it issues a fixed
handful of statements whatever its size: the dedupe lookup, the incident candidates, one
executemany each for new incidents, incident updates, events and rollups.

Dedupe: by ``Event.content_hash`` within the batch and against the store, before anything is
counted, so a replayed file never inserts an event twice nor inflates an incident's count.

Which events make incidents (``config/scoring.yaml`` ``incidents``): the kinds listed (alerts,
anomalies, drops, notices, intel hits), any indicator hit, and anything scoring at ``min_level``
(default medium) or above. The rest (a plain DNS query, a flow) is stored, scored and counted in
the rollups but opens no incident: otherwise every DNS lookup inside an OT zone would page someone.

The target of an event (``site``, ``sector``, ``zone``, ``asset``) is the destination when it is in
the inventory, else the source when that is (our asset talking out, e.g. beaconing), else nothing.
``src_site``/``src_zone`` say where an internal source sits (IT→OT detection).
"""
from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from pipeline.assets import AssetIndex
from pipeline.attack import AttackTagger, load_map
from pipeline.correlate import Correlator
from pipeline.encode import to_json as _json
from pipeline.exposure import KevExposure
from pipeline.geoip import GeoIP
from pipeline.indicators import IndicatorMatcher
from pipeline.scoring import Scorer, load_scoring
from settings.loader import Config, ConfigError
from settings.scoring import ScoringConfig
from store import events_write
from store.db import Store, now_ms as wall_clock_ms, to_ms
from store.records import Event, Severity

MINUTE_MS = 60_000
MEMO_SIZE = 16384
# Keys the correlator reads from an event row and that are not columns; dropped before the insert.
_TRANSIENT = ("target_is_dst", "_techniques", "_indicator_ids", "_key")


@dataclass
class IngestResult:
    accepted: int
    duplicates: int
    incidents_new: int
    incidents_updated: int
    newest_ts: int | None


class EventPipeline:
    """Built once per process from the configuration; ``ingest`` is called once per batch."""

    def __init__(self, config: Config, store: Store, *, clock: Callable[[], int] | None = None,
                 scoring: ScoringConfig | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock or wall_clock_ms
        problems = []
        if scoring is None:
            scoring, found = load_scoring(config.folder)
            problems += found
        attack_map, found = load_map(config.folder)
        problems += found
        if problems:
            raise ConfigError(problems)  # a typo in the weights must not silently score with defaults
        self.scorer = Scorer(scoring)
        self.policy = scoring.incidents
        self.incident_kinds = frozenset(scoring.incidents.kinds)
        self.incident_min_level = Severity.from_label(scoring.incidents.min_level)
        self.geoip = GeoIP()
        self.assets = AssetIndex(config.inventory)
        self.indicators = IndicatorMatcher()
        self.exposure = KevExposure(self.assets.assets_by_id.values())
        self.attack = AttackTagger(attack_map)
        self.correlator = Correlator(config.settings.incidents)
        # Events repeat the same few scores and technique sets: their JSON is memoised.
        self._scores: dict[tuple, tuple] = {}
        self._techniques_json: dict[tuple[str, ...], str | None] = {}

    def refresh(self, conn: Connection, now_ms: int | None = None, *, force: bool = False) -> None:
        """Pick up indicator and advisory changes (cheap when nothing changed or not yet due).

        ``now_ms`` defaults to the injected clock; ``force`` rebuilds at once (e.g. after a feed run).
        """
        now_ms = self.clock() if now_ms is None else now_ms
        changed = self.indicators.refresh(conn, now_ms, force=force)
        changed = self.exposure.refresh(conn, now_ms, force=force) or changed
        if changed:
            self._scores.clear()  # memoised scores name indicators and known-exploited CVEs

    def ingest(self, conn: Connection, events: Sequence[Event], now_ms: int) -> IngestResult:
        """Dedupe, enrich, score, correlate and store one batch inside the caller's transaction.

        ``now_ms`` is the ingest time (``ingested_at``, incident ``updated_at``, refresh cadence).
        """
        if not events:
            return IngestResult(0, 0, 0, 0, None)
        # A batch allocates tens of thousands of small acyclic dicts and tuples; the cyclic garbage
        # collector would walk every live container again and again meanwhile (measured: a third of
        # the batch time). Nothing here makes cycles, so it is paused for the batch and restored.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._ingest(conn, events, now_ms)
        finally:
            if collecting:
                gc.enable()

    def _ingest(self, conn: Connection, events: Sequence[Event], now_ms: int) -> IngestResult:
        self.refresh(conn, now_ms)

        unique: dict[str, Event] = {}
        for event in events:
            unique.setdefault(event.content_hash, event)
        hashes = list(unique)
        known = events_write.existing_hashes(conn, hashes)
        newest = max(to_ms(e.ts) for e in events)

        rows = []
        incident_rows = []
        rollup: Counter[tuple[int, int, str, str, str]] = Counter()
        for content_hash in hashes:
            if content_hash in known:
                continue
            row = self._row(unique[content_hash], content_hash, now_ms)
            rows.append(row)
            if "_key" in row:
                incident_rows.append(row)
            ts = row["ts"]
            rollup[(ts - ts % MINUTE_MS, row["severity"], row["site"] or "", row["sector"] or "",
                    row["src_country"] or "")] += 1

        correlation = self.correlator.assign(conn, incident_rows, now_ms)
        for row in incident_rows:
            for key in _TRANSIENT:
                del row[key]
        events_write.insert_events(conn, rows)
        events_write.upsert_rollups(conn, rollup)
        return IngestResult(
            accepted=len(rows), duplicates=len(events) - len(rows), incidents_new=correlation.new,
            incidents_updated=correlation.updated, newest_ts=newest,
        )

    def _row(self, event: Event, content_hash: str, now_ms: int) -> dict:
        """Enrich and score one event into its ``events`` row (plus transient keys when incident-worthy)."""
        src_ip, dst_ip = event.src_ip, event.dst_ip
        src_geo = self.geoip.lookup(src_ip) if src_ip else None
        dst_geo = self.geoip.lookup(dst_ip) if dst_ip else None
        src_loc = self.assets.locate(src_ip)
        dst_loc = self.assets.locate(dst_ip)
        if dst_loc.known or not src_loc.known:
            target, target_is_dst = dst_loc, True
        else:
            target, target_is_dst = src_loc, False
        match = self.indicators.match(event)
        techniques = self.attack.techniques(event)
        asset = target.asset
        # The score is a function of these inputs alone; events repeat them, so it is memoised with
        # its JSON. The source address only matters when it is named in an IT→OT reason.
        outside_into_ot = target_is_dst and src_loc.zone is None and target.zone_kind == "OT"
        score_key = (event.sensor_severity, match.hits if match else None, target, src_loc, target_is_dst,
                     event.ics_function, src_ip if outside_into_ot else None)
        memo = self._scores.get(score_key)
        if memo is None:
            score = self.scorer.score(
                sensor_severity=event.sensor_severity, match=match, target=target, src=src_loc, src_ip=src_ip,
                target_is_dst=target_is_dst, ics_function=event.ics_function,
                known_exploited=self.exposure.for_asset(asset.asset_id) if asset else (),
            )
            if len(self._scores) >= MEMO_SIZE:
                self._scores.clear()
            memo = self._scores[score_key] = (score, _json(score.explain()))
        score, explain = memo
        indicator_ids = match.ids if match else []
        techniques_json = self._techniques_json.get(techniques, "")
        if techniques_json == "":
            techniques_json = self._techniques_json[techniques] = _json(list(techniques))
        row = {
            "ts": to_ms(event.ts), "sensor": event.sensor, "kind": event.kind,
            "src_ip": src_ip, "src_port": event.src_port, "dst_ip": dst_ip, "dst_port": event.dst_port,
            "proto": event.proto, "app_proto": event.app_proto, "signature_id": event.signature_id,
            "signature": event.signature, "category": event.category,
            "sensor_severity": int(event.sensor_severity) if event.sensor_severity is not None else None,
            "severity": int(score.level), "score": score.points, "score_explain": explain,
            "action": event.action, "domain": event.domain, "url": event.url, "file_hash": event.file_hash,
            "ja3": event.ja3, "ics_function": event.ics_function,
            "site": target.site, "sector": target.sector, "zone": target.zone_name, "zone_kind": target.zone_kind,
            "asset": asset.asset_id if asset else None,
            "src_site": src_loc.site, "src_zone": src_loc.zone_name, "src_zone_kind": src_loc.zone_kind,
            "src_scope": src_geo.scope if src_geo else None,
            "src_country": src_geo.country if src_geo else None, "src_asn": src_geo.asn if src_geo else None,
            "dst_country": dst_geo.country if dst_geo else None,
            "indicator_ids": _json(indicator_ids), "techniques": techniques_json,
            "incident_id": None, "extra": _json(event.extra), "raw": event.raw, "content_hash": content_hash,
            "ingested_at": now_ms,
        }
        if (event.kind in self.incident_kinds or score.level >= self.incident_min_level
                or (match is not None and self.policy.on_indicator_hit)):
            row["target_is_dst"] = target_is_dst
            row["_techniques"] = techniques
            row["_indicator_ids"] = indicator_ids
            row["_key"] = None  # set by the correlator
        return row

