"""The read API under ``/api/``: incidents, one incident, source health, and a health check.

A Flask blueprint on the Dash server (``app.server.register_blueprint(api.blueprint)`` in
``app.py``). It reads the store only through ``store.queries`` and the running app's
``AppContext`` (``panels.context.current()``), and it never writes: every route is GET (and HEAD).
The contract (documented with examples in ``docs/api.md``):

* JSON objects with fixed field names; times are ISO-8601 UTC (``2026-11-22T06:00:00Z``, with
  ``.123`` milliseconds when there are any); severities are the five words; missing is ``null``.
* A bad parameter is HTTP 400 ``{"error", "parameter", "allowed"?}``; an unknown incident or path
  under ``/api/`` is a JSON 404; a method other than GET/HEAD is a JSON 405. Errors never carry a
  stack trace: an unexpected one is logged on the server and answered with a short 500, a store
  that cannot be read with 503.
* ``/api/health`` answers 200 for ``ok`` and ``degraded`` and 503 for ``down`` (the rule is in
  ``health_status``), so a Nagios/Prometheus/Kubernetes check can use the status code alone.
"""
from __future__ import annotations

import functools
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from flask import Blueprint, Response, current_app, request, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from api import encode, params
from api.params import ParamError
from panels.context import AppContext, current
from store import queries
from store.freshness import STATES, no_data_alarm
from store.records import SEVERITY_LABELS, Severity

blueprint = Blueprint("api", __name__, url_prefix="/api")

MAX_PAGE_SIZE = queries.MAX_PAGE_SIZE
DEFAULT_PAGE_SIZE = 50
DEFAULT_EVENTS_LIMIT = 100
#: Source states that make ``/api/health`` say ``degraded`` when an enabled source is in one.
DEGRADED_STATES: tuple[str, ...] = ("failed", "stale", "never-seen")
OPEN_ALIAS = {"open": queries.OPEN_STATUSES}


def context() -> AppContext:
    """The running app's store, configuration and clock (``server.config["WATCHFLOOR"]``)."""
    return current()


@functools.lru_cache(maxsize=1)
def version() -> str:
    """watchfloor's version: the installed package's, else ``pyproject.toml``'s."""
    try:
        return metadata.version("watchfloor")
    except metadata.PackageNotFoundError:
        pass
    try:
        with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


# --- responses ---------------------------------------------------------------------------------------

def reply(body: Any, status: int = 200) -> Response:
    return Response(encode.dumps(body), status=status, mimetype="application/json")


def error(status: int, message: str, **extra: Any) -> Response:
    return reply({"error": message, **extra}, status)


@blueprint.after_request
def _no_caching(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _is_api_path() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


@blueprint.app_errorhandler(404)
def _not_found(exc: HTTPException) -> Response | HTTPException:
    if not _is_api_path():
        return exc  # the rest of the server keeps its own 404
    return error(404, f"no such API path: {request.path}; see /api/ for the endpoints")


@blueprint.app_errorhandler(405)
def _method_not_allowed(exc: HTTPException) -> Response | HTTPException:
    if not _is_api_path():
        return exc
    response = error(405, f"{request.method} is not allowed: the API is read-only (GET)")
    response.headers["Allow"] = "GET, HEAD"
    return response


@blueprint.errorhandler(ParamError)
def _bad_parameter(exc: ParamError) -> Response:
    return reply(exc.body(), 400)


@blueprint.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    """Anything raised while answering an API request (Dash's first-request hooks included):
    JSON, no stack trace; the trace goes to the server log."""
    if isinstance(exc, HTTPException):
        return error(exc.code or 500, exc.description or exc.name)
    if isinstance(exc, SQLAlchemyError):
        current_app.logger.warning("api %s: the store cannot be read: %s", request.path, store_error(exc))
        if request.endpoint == "api.health":
            return _health_reply(_down_body(context_or_none(), store_error(exc)))
        return error(503, "the store cannot be read right now; see /api/health")
    current_app.logger.exception("api %s failed", request.path)
    return error(500, "internal error while answering this request; the server log has the details")


def store_error(exc: BaseException) -> str:
    """A one-line description of a database error, without SQL, parameters or a trace."""
    original = getattr(exc, "orig", None) or exc
    first_line = (str(original).strip().splitlines() or [""])[0]
    return f"error: {type(original).__name__}: {first_line}"[:240]


def context_or_none() -> AppContext | None:
    try:
        return context()
    except (RuntimeError, TypeError):
        return None


# --- index and unknown paths -------------------------------------------------------------------------

ENDPOINTS = (
    ("/api/incidents", "incidents, filtered and paged"),
    ("/api/incidents/<id>", "one incident with its score breakdown, indicators, events and log"),
    ("/api/sources", "every configured source and its freshness state"),
    ("/api/health", "one status for monitoring: 200 ok/degraded, 503 down"),
)


@blueprint.get("")
@blueprint.get("/")
def index() -> Response:
    params.reject_unknown(request.args, ())
    return reply({"version": version(), "docs": "docs/api.md",
                  "endpoints": [{"path": path, "what": what} for path, what in ENDPOINTS]})


@blueprint.get("/<path:rest>")
def unknown(rest: str) -> Response:
    # Without this, Dash's catch-all route would answer /api/typo with the dashboard's HTML.
    return error(404, f"no such API path: /api/{rest}; see /api/ for the endpoints")


# --- incidents ---------------------------------------------------------------------------------------

INCIDENT_PARAMS = ("since", "until", "severity", "status", "site", "sector", "country", "q", "sort", "page",
                   "page_size")
INCIDENT_ITEM_FIELDS = ("id", "title", "severity", "score", "status", "assignee", "site", "sector", "src_ip",
                        "src_country", "signature", "category", "event_count", "first_seen", "last_seen")
SORT_CHOICES = tuple(f"{prefix}{key}" for key in queries.SORTABLE for prefix in ("-", ""))


def incident_filters(args: Any, now_ms: int) -> queries.IncidentFilters:
    since = params.time(args, "since", now_ms)
    until = params.time(args, "until", now_ms)
    if since is not None and until is not None and since >= until:
        raise ParamError("until", f"until ({encode.iso(until)}) must be after since ({encode.iso(since)})")
    country = params.text(args, "country", 2)
    if country is not None and not (len(country) == 2 and country.isalpha()):
        raise ParamError("country", f"country must be a two-letter ISO code like CN, not {country!r}")
    return queries.IncidentFilters(
        severity=params.choices(args, "severity", SEVERITY_LABELS),
        status=params.choices(args, "status", queries.STATUSES, OPEN_ALIAS),
        site=params.text(args, "site", 64), sector=params.text(args, "sector", 32),
        country=country.upper() if country else None,
        since_ms=since, until_ms=until, text=params.text(args, "q", 200),
    )


def sort_key(args: Any) -> str:
    sort = params.one(args, "sort") or "-last_seen"
    if sort.lstrip("+") not in SORT_CHOICES:
        raise ParamError("sort", f"sort {sort!r} is not a sort order: use a field, prefixed with - for descending",
                         SORT_CHOICES)
    return sort.lstrip("+")


def page_link(page: int | None) -> str | None:
    """This request's URL (absolute) with ``page`` replaced; ``None`` for no page."""
    if page is None:
        return None
    pairs = [(k, v) for k, v in request.args.items(multi=True) if k != "page"] + [("page", str(page))]
    return f"{url_for('api.incidents', _external=True)}?{urlencode(pairs)}"


def incident_url(incident_id: int) -> str:
    return url_for("api.incident", incident_id=incident_id, _external=True)


@blueprint.get("/incidents")
def incidents() -> Response:
    args = request.args
    params.reject_unknown(args, INCIDENT_PARAMS)
    ctx = context()
    now = ctx.now_ms()
    filters = incident_filters(args, now)
    sort = sort_key(args)
    page = params.integer(args, "page", 1, 1, 10_000_000)
    page_size = params.integer(args, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)

    found = queries.incidents_page(ctx.store, filters, sort, page - 1, page_size)
    items = encode.rows(found.rows, INCIDENT_ITEM_FIELDS)
    for item in items:
        item["url"] = incident_url(item["id"])
    end = page * page_size  # rows up to the end of this page
    if not found.total_capped:
        has_next = end < found.total
    elif end < queries.COUNT_CAP:
        has_next = True  # more than COUNT_CAP match, and this page ends before that
    else:  # past the counted part: look one row ahead
        has_next = len(items) == page_size and not queries.incidents_page(
            ctx.store, filters, sort, end, 1).rows.empty
    return reply({
        "items": items,
        "page": page,
        "page_size": page_size,
        "total": None if found.total_capped else found.total,
        "total_capped": found.total_capped,
        "next": page_link(page + 1 if has_next else None),
        "prev": page_link(page - 1 if page > 1 else None),
        "generated_at": encode.iso(now),
    })


# --- one incident ------------------------------------------------------------------------------------

DETAIL_PARAMS = ("events_limit",)
EVENT_FIELDS = ("id", "ts", "sensor", "kind", "severity", "score", "sensor_severity", "signature_id",
                "signature", "category", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "app_proto",
                "action", "domain", "url", "file_hash", "ja3", "ics_function", "site", "sector", "zone",
                "zone_kind", "asset", "src_site", "src_zone", "src_zone_kind", "src_scope", "src_country",
                "src_asn", "src_city", "src_lat", "src_lon", "dst_country", "incident_id", "techniques", "extra",
                "ingested_at")
_EVENT_TIMES = ("ts", "ingested_at")
_EVENT_JSON = {"techniques": [], "extra": {}}


def breakdown(parts: list[Any]) -> list[dict[str, Any]]:
    """The score's named contributions, each exactly ``{name, points, why}``."""
    fixed = []
    for part in parts:
        if isinstance(part, dict):
            fixed.append({"name": part.get("name"), "points": part.get("points"), "why": part.get("why")})
    return fixed


def severity_word(level: Any) -> str | None:
    if level is None:
        return None
    try:
        return Severity(int(level)).label
    except (TypeError, ValueError):
        return None


def event_json(detail: queries.EventDetail) -> dict[str, Any]:
    fields = detail.fields
    out: dict[str, Any] = {}
    for name in EVENT_FIELDS:
        value = fields.get(name)
        if name in _EVENT_TIMES:
            value = encode.iso(value)
        elif name in _EVENT_JSON:
            value = encode.decoded(value, _EVENT_JSON[name])
        elif name == "sensor_severity":
            value = severity_word(value)
        out[name] = encode.plain(value)
    out["score_breakdown"] = breakdown(detail.score_explain)
    out["indicator_ids"] = list(detail.indicator_ids)
    out["raw"], out["raw_format"] = encode.json_or_text(detail.raw)
    return out


def indicators_json(frame: pd.DataFrame, ctx: AppContext) -> list[dict[str, Any]]:
    out = []
    for row in encode.rows(frame):
        feed = row["source_id"]
        source = ctx.config.source(feed) if feed else None
        tags = row["tags"]
        out.append({
            "id": row["indicator_id"], "type": row["type"], "value": row["value"],
            "feed": feed, "feed_name": source.name if source else None,
            "confidence": row["confidence"], "tlp": row["tlp"],
            "first_seen": row["first_seen"], "last_seen": row["last_seen"], "expired": row["expired"],
            "tags": [t for t in tags.split(", ") if t] if tags else [],
            "malware": encode.blank_to_none(row["malware"]), "description": encode.blank_to_none(row["description"]),
        })
    return out


def log_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in encode.rows(frame):
        row["detail"] = encode.decoded(row["detail"], None)
        out.append(row)
    return out


@blueprint.get("/incidents/<incident_id>")
def incident(incident_id: str) -> Response:
    args = request.args
    params.reject_unknown(args, DETAIL_PARAMS)
    limit = params.integer(args, "events_limit", DEFAULT_EVENTS_LIMIT, 0, queries.EVENTS_CAP)
    ctx = context()
    found = queries.incident_by_id(ctx.store, incident_id)
    if found is None:
        return error(404, f"no incident with id {incident_id!r}", parameter="id")
    events = queries.incident_events(ctx.store, found.id, limit)
    body = {
        "id": found.id, "title": found.title, "severity": found.severity, "score": found.score,
        "score_breakdown": breakdown(found.score_explain),
        "status": found.status, "assignee": found.assignee,
        "site": found.site, "sector": found.sector, "src_ip": found.src_ip, "src_country": found.src_country,
        "src_city": found.src_city, "src_lat": found.src_lat, "src_lon": found.src_lon,
        "signature": found.signature, "signature_id": found.signature_id, "category": found.category,
        "first_seen": encode.iso(found.first_seen), "last_seen": encode.iso(found.last_seen),
        "updated_at": encode.iso(found.updated_at), "event_count": found.event_count,
        "targets": encode.plain(found.targets), "sources": encode.plain(found.sources),
        "techniques": encode.plain(found.techniques),
        "indicators": indicators_json(queries.indicators_by_ids(ctx.store, found.indicator_ids), ctx),
        "events": [event_json(e) for e in events],
        "events_limit": limit,
        "events_truncated": len(events) < found.event_count,
        "log": log_json(queries.incident_log(ctx.store, found.id)),
        "url": incident_url(found.id),
        "ui_url": f"{request.url_root.rstrip('/')}/incidents/{found.id}",
    }
    return reply(body)


# --- sources -----------------------------------------------------------------------------------------

SOURCE_PARAMS = ("state", "kind", "enabled")
SOURCE_FIELDS = ("id", "name", "provider", "kind", "format", "enabled", "demo", "state", "reason", "as_of",
                 "age_seconds", "cadence_seconds", "last_success", "last_attempt", "last_outcome", "last_error",
                 "consecutive_failures", "records", "newest_record")
_SOURCE_COLUMNS = {"age_seconds": "age_s", "cadence_seconds": "cadence_s"}


def sources_json(health: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in encode.rows(health):
        item = {name: row[_SOURCE_COLUMNS.get(name, name)] for name in SOURCE_FIELDS}
        item["last_outcome"] = encode.blank_to_none(item["last_outcome"])
        item["last_error"] = encode.blank_to_none(item["last_error"])
        out.append(item)
    return out


@blueprint.get("/sources")
def sources() -> Response:
    args = request.args
    params.reject_unknown(args, SOURCE_PARAMS)
    states = params.choices(args, "state", STATES)
    kinds = params.choices(args, "kind", ("feed", "sensor"))
    enabled = params.boolean(args, "enabled")
    ctx = context()
    now = ctx.now_ms()
    health = queries.source_health(ctx.store, ctx.config, now)
    items = [s for s in sources_json(health)
             if (not states or s["state"] in states) and (not kinds or s["kind"] in kinds)
             and (enabled is None or s["enabled"] == enabled)]
    return reply({"items": items, "total": len(items), "generated_at": encode.iso(now)})


# --- health ------------------------------------------------------------------------------------------

def health_status(*, store_ok: bool, alarm: str | None, enabled_states: list[str], config_problems: int
                  ) -> tuple[str, list[str]]:
    """``down`` when the store cannot be read or the wall's no-data alarm is on; ``degraded`` when
    an enabled source is failed, stale or never seen, or the configuration has problems; else ``ok``.
    Returns the status and the reasons for it (empty when ``ok``)."""
    reasons: list[str] = []
    if not store_ok:
        return "down", ["the store cannot be read"]
    if alarm:
        return "down", [alarm]
    for state in DEGRADED_STATES:
        n = enabled_states.count(state)
        if n:
            reasons.append(f"{n} enabled source{'s' if n > 1 else ''} {state}")
    if config_problems:
        reasons.append(f"{config_problems} configuration problem{'s' if config_problems > 1 else ''}")
    return ("degraded" if reasons else "ok"), reasons


def _down_body(ctx: AppContext | None, store_text: str) -> dict[str, Any]:
    status, reasons = health_status(store_ok=False, alarm=None, enabled_states=[], config_problems=0)
    return {
        "status": status, "reasons": reasons, "store": store_text, "newest_event": None, "no_data_alarm": None,
        "alarm": None, "sources": None, "demo": ctx.config.demo_enabled if ctx else None, "version": version(),
        "generated_at": encode.iso(ctx.now_ms()) if ctx else None,
    }


def _health_reply(body: dict[str, Any]) -> Response:
    return reply(body, 503 if body["status"] == "down" else 200)


@blueprint.get("/health")
def health() -> Response:
    params.reject_unknown(request.args, ())
    ctx = context()
    now = ctx.now_ms()
    try:
        latest = queries.latest_event_time(ctx.store)
        frame = queries.source_health(ctx.store, ctx.config, now)
    except SQLAlchemyError as exc:
        current_app.logger.warning("api health: the store cannot be read: %s", store_error(exc))
        return _health_reply(_down_body(ctx, store_error(exc)))
    enabled = frame[frame["enabled"]]
    sensors = enabled[enabled["kind"] == "sensor"]
    alarm = no_data_alarm(latest_event_ms=latest, sensor_states=sensors["state"].tolist(), now_ms=now,
                          no_data_after=ctx.config.settings.no_data_banner_after)
    states = enabled["state"].tolist()
    status, reasons = health_status(store_ok=True, alarm=alarm, enabled_states=states,
                                    config_problems=len(ctx.config.problems))
    return _health_reply({
        "status": status,
        "reasons": reasons,
        "store": "ok",
        "newest_event": encode.iso(latest),
        "no_data_alarm": alarm is not None,
        "alarm": alarm,
        "sources": {state: states.count(state) for state in STATES},
        "demo": ctx.config.demo_enabled,
        "version": version(),
        "generated_at": encode.iso(now),
    })


__all__ = ["blueprint", "health_status", "version"]
