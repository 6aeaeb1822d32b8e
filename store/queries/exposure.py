"""Exposure reads: advisories matched to the inventory (written by ``pipeline/exposure_findings.py``),
as the findings list, one asset's findings and the exposure page's summary."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select

from store.db import Store, loads
from store.queries.common import _as_list, _frame
from store.schema import advisories as _advisories
from store.schema import cursors as _cursors
from store.schema import exposures as _exposures

#: CVSS base score from which a finding counts as critical (the CVSS v3 "critical" rating).
CRITICAL_CVSS = 9.0
#: The exposure page lists at most this many findings (most urgent first).
EXPOSURE_CAP = 5_000

EXPOSURE_COLUMNS = {
    "id": "int", "site_id": "str", "asset_id": "str", "vuln_key": "str", "cve": "str", "known_exploited": "bool",
    "cvss": "float", "version_match": "str", "version_note": "str", "asset_version": "str", "vendor": "str",
    "product": "str", "advisory_versions": "object", "advisory_id": "str", "source_id": "str", "title": "str",
    "url": "str", "advisories": "object", "first_found": "time", "last_confirmed": "time", "resolved_at": "time",
    "resolved_reason": "str",
}


def _exposure_conditions(site: str | None, known_exploited_only: bool, include_resolved: bool = False) -> list[Any]:
    e = _exposures.c
    conds: list[Any] = [] if include_resolved else [e.resolved_at.is_(None)]
    if site:
        conds.append(e.site_id == site)
    if known_exploited_only:
        conds.append(e.known_exploited.is_(True))
    return conds


def _exposure_frame(rows: Iterable[Any]) -> pd.DataFrame:
    out = []
    for r in rows:
        m = r._mapping
        out.append(tuple(
            [str(v) for v in _as_list(loads(m[name], []))] if name in ("advisory_versions", "advisories")
            else bool(m[name]) if name == "known_exploited" else m[name]
            for name in EXPOSURE_COLUMNS))
    return _frame(out, EXPOSURE_COLUMNS)


def exposure_findings(store: Store, *, site: str | None = None, known_exploited_only: bool = False,
                      include_resolved: bool = False, limit: int = EXPOSURE_CAP) -> pd.DataFrame:
    """Open exposure findings (``EXPOSURE_COLUMNS``), most urgent first: known-exploited, then the
    highest CVSS, then site, asset and CVE. ``advisory_versions`` and ``advisories`` are lists."""
    e = _exposures.c
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(*[e[name] for name in EXPOSURE_COLUMNS])
            .where(*_exposure_conditions(site, known_exploited_only, include_resolved))
            .order_by(e.known_exploited.desc(), e.cvss.is_(None), e.cvss.desc(), e.site_id, e.asset_id, e.vuln_key)
            .limit(max(1, int(limit)))
        ).all()
    return _exposure_frame(rows)


def exposures_for_asset(store: Store, asset_id: str | None) -> pd.DataFrame:
    """The open findings of one asset (``EXPOSURE_COLUMNS``), known-exploited and highest CVSS first."""
    if not asset_id:
        return _frame([], EXPOSURE_COLUMNS)
    e = _exposures.c
    with store.reader.connect() as conn:
        rows = conn.execute(
            select(*[e[name] for name in EXPOSURE_COLUMNS])
            .where(e.asset_id == asset_id, e.resolved_at.is_(None))
            .order_by(e.known_exploited.desc(), e.cvss.is_(None), e.cvss.desc(), e.vuln_key)
        ).all()
    return _exposure_frame(rows)


@dataclass(frozen=True)
class ExposureSummary:
    """The exposure page's KPIs under its filters, and what they rest on.

    ``findings``/``assets_exposed``/``known_exploited``/``critical_cvss``/``unconfirmed``: open
    findings under the filters (``critical_cvss``: CVSS >= ``CRITICAL_CVSS``; ``unconfirmed``:
    version not confirmed). ``advisories_by_source``: stored advisory rows per source, whatever the
    filters (empty: no advisory feed has delivered yet). ``computed_at_ms`` and ``last_run``: the
    last recompute (``None``: never ran), as ``pipeline.exposure_findings`` records it.
    """

    findings: int
    assets_exposed: int
    known_exploited: int
    critical_cvss: int
    unconfirmed: int
    advisories_by_source: dict[str, int]
    computed_at_ms: int | None
    last_run: dict[str, Any] = field(default_factory=dict)

    @property
    def advisories(self) -> int:
        return sum(self.advisories_by_source.values())


def exposure_summary(store: Store, *, site: str | None = None, known_exploited_only: bool = False) -> ExposureSummary:
    e = _exposures.c
    conds = _exposure_conditions(site, known_exploited_only)
    with store.reader.connect() as conn:
        counts = conn.execute(
            select(func.count(), func.count(func.distinct(e.asset_id)),
                   func.coalesce(func.sum(case((e.known_exploited.is_(True), 1), else_=0)), 0),
                   func.coalesce(func.sum(case((e.cvss >= CRITICAL_CVSS, 1), else_=0)), 0),
                   func.coalesce(func.sum(case((e.version_match != "affected", 1), else_=0)), 0))
            .where(*conds)
        ).one()
        by_source = {r.source_id: int(r.n) for r in conn.execute(
            select(_advisories.c.source_id, func.count().label("n")).group_by(_advisories.c.source_id)
            .order_by(_advisories.c.source_id))}
        run_text = conn.execute(select(_cursors.c.value).where(_cursors.c.source_id == "exposures",
                                                               _cursors.c.key == "recompute")).scalar()
    run = loads(run_text, {}) if run_text else {}
    run = run if isinstance(run, dict) else {}
    at = run.get("at")
    return ExposureSummary(int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3]), int(counts[4]), by_source,
                           int(at) if isinstance(at, (int, float)) else None, run)
