"""The store's tables (SQLAlchemy Core): the only shared state of watchfloor.

Times are stored as integer milliseconds since the epoch, UTC (``*_at``, ``ts``, ``first_seen``,
``last_seen``, ``minute``): compact, index-friendly and the same on SQLite and PostgreSQL.
Severities are stored as the integer of ``store.records.Severity`` (0 info … 4 critical).
JSON-valued columns hold compact JSON text.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, Column, Float, Index, Integer, MetaData, SmallInteger, String, Table, Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 1

metadata = MetaData()

schema_info = Table(
    "schema_info", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("sensor", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("src_ip", String(64)),
    Column("src_port", Integer),
    Column("dst_ip", String(64)),
    Column("dst_port", Integer),
    Column("proto", String(16)),
    Column("app_proto", String(32)),
    Column("signature_id", String(128)),
    Column("signature", Text),
    Column("category", Text),
    Column("sensor_severity", SmallInteger),
    Column("severity", SmallInteger, nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("score_explain", Text),
    Column("action", String(32)),
    Column("domain", Text),
    Column("url", Text),
    Column("file_hash", String(128)),
    Column("ja3", String(64)),
    Column("ics_function", String(64)),
    Column("site", String(64)),
    Column("sector", String(32)),
    Column("zone", String(64)),
    Column("zone_kind", String(8)),
    Column("asset", String(64)),
    Column("src_site", String(64)),
    Column("src_zone", String(64)),
    Column("src_zone_kind", String(8)),
    Column("src_scope", String(16)),
    Column("src_country", String(2)),
    Column("src_asn", String(128)),
    Column("src_city", String(128)),  # src_city/lat/lon: only with a city GeoIP database
    Column("src_lat", Float),
    Column("src_lon", Float),
    Column("dst_country", String(2)),
    Column("indicator_ids", Text),
    Column("techniques", Text),
    Column("incident_id", Integer),
    Column("extra", Text),
    Column("raw", Text, nullable=False),
    Column("content_hash", String(32), nullable=False),
    Column("ingested_at", BigInteger, nullable=False),
)
# Indexes on ``events`` are paid on every insert, so each one is there for a reader and keyed so that
# inserts land at the right edge of the B-tree (events arrive roughly in time order):
# * identity: an event is (ts, content_hash). The same raw line from the same sensor always parses to
#   the same ts, so this is as unique as the hash alone, and the pipeline's dedupe looks pairs up here.
#   Keyed by the hash alone, every insert hit a random leaf (measured: half the insert rate at 200 k
#   rows, worse as the table outgrows the page cache). Its leading ``ts`` also serves ``max(ts)`` and
#   time ranges, so no separate ``ts`` index is kept.
# * the drill-down of one incident, newest first (``queries.events_for_incident``): only the events
#   that belong to an incident are indexed.
# * the newest event per sensor (``queries.source_health``).
Index("uq_events_ts_hash", events.c.ts, events.c.content_hash, unique=True)
Index("ix_events_incident_ts", events.c.incident_id, events.c.ts,
      sqlite_where=events.c.incident_id.isnot(None), postgresql_where=events.c.incident_id.isnot(None))
Index("ix_events_sensor_ts", events.c.sensor, events.c.ts)

indicators = Table(
    "indicators", metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("matchable", Boolean, nullable=False, default=True),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("type", "value", name="uq_indicators_type_value"),
)

sightings = Table(
    "indicator_sightings", metadata,
    Column("indicator_id", Integer, primary_key=True),
    Column("source_id", String(64), primary_key=True),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("confidence", SmallInteger),
    Column("tlp", String(16)),
    Column("tags", Text),
    Column("malware", Text),
    Column("port", Integer),
    Column("description", Text),
    Column("detect", Boolean, nullable=False, default=True),
    Column("last_run_id", Integer),
    Column("expires_at", BigInteger),
    Column("expired_at", BigInteger),
    Column("expired_reason", String(32)),
    Column("raw", Text),
)
Index("ix_sightings_source", sightings.c.source_id, sightings.c.expired_at)

advisories = Table(
    "advisories", metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", String(64), nullable=False),
    Column("advisory_id", String(128), nullable=False),
    Column("cve", String(32), nullable=False, default=""),
    Column("vendor", Text, nullable=False, default=""),
    Column("product", Text, nullable=False, default=""),
    Column("versions", Text),
    Column("title", Text),
    Column("cvss", Float),
    Column("published", BigInteger),
    Column("updated", BigInteger),
    Column("known_exploited", Boolean, nullable=False, default=False),
    Column("url", Text),
    Column("raw", Text),
    Column("last_run_id", Integer),
    UniqueConstraint("source_id", "advisory_id", "cve", "vendor", "product", name="uq_advisories"),
)

techniques = Table(
    "attack_techniques", metadata,
    Column("id", String(16), primary_key=True),
    Column("name", Text, nullable=False),
    Column("tactics", Text),
    Column("url", Text),
    Column("source_id", String(64)),
)

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True),
    Column("group_key", String(40), nullable=False),
    Column("title", Text, nullable=False),
    Column("signature", Text),
    Column("signature_id", String(128)),
    Column("category", Text),
    Column("src_ip", String(64)),
    Column("src_country", String(2)),
    Column("src_city", String(128)),  # where the source of ``src_country`` is, with a city database
    Column("src_lat", Float),
    Column("src_lon", Float),
    Column("site", String(64)),
    Column("sector", String(32)),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("score_explain", Text),
    Column("status", String(16), nullable=False, default="new"),
    Column("assignee", String(128)),
    Column("targets", Text),
    Column("sources", Text),
    Column("techniques", Text),
    Column("indicator_ids", Text),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_incidents_key_last", incidents.c.group_key, incidents.c.last_seen)
Index("ix_incidents_last_seen", incidents.c.last_seen)
Index("ix_incidents_status_sev", incidents.c.status, incidents.c.severity, incidents.c.last_seen)
Index("ix_incidents_site", incidents.c.site, incidents.c.last_seen)

incident_log = Table(
    "incident_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text),
)
Index("ix_incident_log_incident", incident_log.c.incident_id, incident_log.c.at)

feed_runs = Table(
    "feed_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", String(64), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("outcome", String(16), nullable=False),
    Column("http_status", Integer),
    Column("bytes", BigInteger),
    Column("sha256", String(64)),
    Column("parsed", Integer, nullable=False, default=0),
    Column("rejected", Integer, nullable=False, default=0),
    Column("filtered", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("not_matchable", Integer, nullable=False, default=0),
    Column("new", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("expired", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    Column("newest_record_at", BigInteger),
    Column("flags", Text),
    Column("error", Text),
    Column("rejected_samples", Text),
)
Index("ix_feed_runs_source_started", feed_runs.c.source_id, feed_runs.c.started_at)

source_state = Table(
    "source_state", metadata,
    Column("source_id", String(64), primary_key=True),
    Column("last_attempt_at", BigInteger),
    Column("last_success_at", BigInteger),
    Column("last_outcome", String(16)),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("breaker_open_until", BigInteger),
    Column("last_record_count", Integer),
    Column("newest_record_at", BigInteger),
)

cursors = Table(
    "cursors", metadata,
    Column("source_id", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

rollups = Table(
    "rollups", metadata,
    Column("minute", BigInteger, primary_key=True),
    Column("severity", SmallInteger, primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("sector", String(32), primary_key=True),
    Column("src_country", String(2), primary_key=True),
    Column("events", Integer, nullable=False),
)

# Where the sources are, for the attack map: events and worst severity per site x source place
# (country, city, coordinates), kept like ``rollups_pairs`` at the spans of
# ``coarse_rollups.PAIR_SPANS`` (``start`` aligned to ``span``) so an hour's window reads a few blocks.
# Written only for sources a city GeoIP database located (``pipeline.ingest``; empty without one);
# '' means no country or no city name. Read by ``queries.source_places``.
place_rollups = Table(
    "place_rollups", metadata,
    Column("span", Integer, primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("src_country", String(2), primary_key=True),
    Column("src_city", String(128), primary_key=True),
    Column("src_lat", Float, primary_key=True),
    Column("src_lon", Float, primary_key=True),
    Column("events", Integer, nullable=False),
    Column("severity", SmallInteger, nullable=False),
    sqlite_with_rowid=False,
)

# --- coarse rollups (store/coarse_rollups.py) -------------------------------------------------------
# ``rollups`` summed again, upserted in the same transaction as it, so the wall sums hundreds of rows
# instead of millions: events per severity over aligned blocks of 1 and 15 minutes, and events + worst
# severity per source country x site over aligned blocks of 1, 5 and 15 minutes and 1 hour (``span``,
# ms; ``start`` aligned to it, UTC). Clustered on their keys (WITHOUT ROWID on SQLite): a time range is
# one contiguous read.
rollups_severity = Table(
    "rollups_severity", metadata,
    Column("span", Integer, primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("severity", SmallInteger, primary_key=True),
    Column("events", Integer, nullable=False),
    sqlite_with_rowid=False,
)

rollups_pairs = Table(
    "rollups_pairs", metadata,
    Column("span", Integer, primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("src_country", String(2), primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("events", Integer, nullable=False),
    Column("severity", SmallInteger, nullable=False),
    sqlite_with_rowid=False,
)

# --- exposure findings (pipeline/exposure_findings.py) -------------------------------------------------
# One row per (asset, vulnerability): an inventory asset whose vendor/product an advisory names, at a
# version the advisory's ranges include (``version_match`` affected) or cannot rule out (unknown).
# ``vuln_key`` is the CVE, or ``source_id:advisory_id`` for an advisory that names none. The advisory
# columns describe the advisory that decided the version verdict (a versioned CSAF product before a
# version-less KEV entry); ``advisories`` lists every advisory naming the vulnerability for the asset.
# A finding whose advisory or asset disappears, or whose version is no longer affected, is resolved
# (``resolved_at``, ``resolved_reason``), never deleted; it reopens (``first_found`` = the reopening)
# if it matches again. Recomputed whole, in one transaction, by ``recompute_exposures``.
exposures = Table(
    "exposures", metadata,
    Column("id", Integer, primary_key=True),
    Column("asset_id", String(64), nullable=False),
    Column("site_id", String(64), nullable=False),
    Column("vuln_key", String(200), nullable=False),
    Column("cve", String(32), nullable=False, default=""),
    Column("advisory_id", String(128), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("vendor", Text, nullable=False, default=""),
    Column("product", Text, nullable=False, default=""),
    Column("asset_version", String(128)),
    Column("advisory_versions", Text),
    Column("version_match", String(16), nullable=False),
    Column("version_note", Text),
    Column("known_exploited", Boolean, nullable=False, default=False),
    Column("cvss", Float),
    Column("title", Text),
    Column("url", Text),
    Column("advisories", Text),
    Column("first_found", BigInteger, nullable=False),
    Column("last_confirmed", BigInteger, nullable=False),
    Column("resolved_at", BigInteger),
    Column("resolved_reason", String(64)),
    UniqueConstraint("asset_id", "vuln_key", name="uq_exposures_asset_vuln"),
)
Index("ix_exposures_open_site", exposures.c.resolved_at, exposures.c.site_id)
