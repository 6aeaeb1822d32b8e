"""Exposure findings: which inventory assets the collected advisories (CISA KEV, CSAF ICS advisories) name.

Every advisory row (one per advisory, CVE, vendor, product; ``store.schema.advisories``) is matched
against every asset of ``config/assets.yaml`` that has a vendor and a product:

1. **Vendor**: equal after ``vendor_key`` (case, spaces and punctuation folded, company suffixes
   such as Inc., Corp., Corporation, Ltd., GmbH, AG, Systems dropped): "Siemens AG" is "Siemens",
   "Citrix Systems, Inc." is "Citrix", but "Schneider" is not "Schneider Electric". An advisory without a vendor (a CSAF product known
   only by its full name) matches when the asset's vendor is written in the product name.
2. **Product**: ``products_match``: equal after ``normalise_name``, or one contains the other as
   whole words ("SIMATIC S7-1500" matches "SIMATIC S7-1500 CPU family"; "S7-150" does not match
   "S7-1500").
3. **Version** (``pipeline.versions.check_version``): affected, not_affected (no finding) or
   unknown ("version not confirmed": the asset has no version, the advisory names none, as every
   KEV entry, or either cannot be read).

Findings are kept per (asset, vulnerability): the CVE, or the advisory id when it names none. Several
advisories naming one CVE for one asset are one finding: the most specific decides (a CSAF product
whose version range includes the asset, before a version-less KEV entry), and a version-less entry
does not keep a finding alive when a versioned advisory for the same CVE puts the asset outside its
ranges. ``known_exploited`` is true when any KEV entry names the CVE (whatever product it names) or
the advisory says so itself.

``recompute_exposures`` rewrites the ``exposures`` table from the advisories and the inventory in one
write transaction: new findings are inserted, present ones confirmed, vanished ones resolved with a
reason (never deleted), and the run is recorded in the ``cursors`` table (``exposures``/``recompute``)
so the page can say "as of". It is idempotent: a second run with nothing changed only moves
``last_confirmed``.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, bindparam, insert, or_, select, text, update

from pipeline.versions import (
    AFFECTED, BASIS_ALL, BASIS_NO_ADVISORY_VERSIONS, NOT_AFFECTED, UNKNOWN, VersionCheck, check_version,
)
from store.db import dumps, loads
from store.schema import advisories, exposures
from store.writes import set_cursor

if TYPE_CHECKING:
    from settings.inventory import Inventory
    from store.db import Store

log = logging.getLogger(__name__)

#: The ``cursors`` row where each recompute records when it ran and what it saw (``store.queries``
#: ``exposure_summary`` reads it by the same name).
RECOMPUTE_CURSOR = ("exposures", "recompute")
#: How often the collectors recompute findings (besides after every KEV/CSAF feed run).
RECOMPUTE_EVERY_MS = 10 * 60_000
#: PostgreSQL transaction lock taken by a recompute, so two collector processes never interleave.
PG_LOCK_KEY = 0x77660E01

RESOLVED_ASSET = "asset removed from the inventory"
RESOLVED_ADVISORY = "advisory withdrawn"
RESOLVED_NO_MATCH = "no longer matches"  # vendor/product renamed, or the version left the ranges


# --- names -------------------------------------------------------------------------------------------

_NOT_WORD = re.compile(r"[\W_]+")
#: Company-form words dropped from the end of a vendor name, repeatedly ("Citrix Systems, Inc." is
#: "Citrix", "Foo Co., Ltd." is "Foo"). Words that tell two companies apart ("Electric", "Energy") stay.
COMPANY_SUFFIXES = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "llc", "llp", "lp",
    "gmbh", "mbh", "ag", "se", "sa", "sas", "spa", "srl", "plc", "bv", "nv", "oy", "oyj", "ab", "as", "asa",
    "kg", "kk", "pty", "pte", "bhd", "sdn", "systems", "technologies", "international", "holdings", "group",
})


def normalise_name(value: str | None) -> str:
    """Case-folded words: punctuation, dashes, underscores and runs of spaces become one space
    (``"SIMATIC S7-1500"`` → ``"simatic s7 1500"``; ``"C●CURE"`` → ``"c cure"``)."""
    text = unicodedata.normalize("NFKC", value or "").casefold()
    return " ".join(_NOT_WORD.sub(" ", text).split())


def vendor_key(value: str | None, aliases: Mapping[str, str] | None = None) -> str:
    """``normalise_name`` without trailing company forms: ``"Rockwell Automation, Inc."`` →
    ``"rockwell automation"``, ``"Siemens AG"`` → ``"siemens"`` (a name that is only a suffix stays);
    then, with ``aliases`` (``alias_keys``), another name of the vendor becomes its own key."""
    words = normalise_name(value).split()
    while len(words) > 1 and words[-1] in COMPANY_SUFFIXES:
        words.pop()
    key = " ".join(words)
    return aliases.get(key, key) if aliases else key


def alias_keys(vendor_aliases: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``inventory.vendor_aliases`` as ``{vendor_key(alias): vendor_key(vendor)}``."""
    return {vendor_key(alias): vendor_key(vendor) for vendor, aliases in vendor_aliases.items() for alias in aliases}


def _contains_words(outer: str, inner: str) -> bool:
    return f" {inner} " in f" {outer} "


def products_match(asset_product: str | None, advisory_product: str | None) -> bool:
    """Equal after ``normalise_name``, or one contains the other as whole words."""
    return _names_match(normalise_name(asset_product), normalise_name(advisory_product))


def _names_match(a: str, b: str) -> bool:
    return bool(a and b) and (a == b or _contains_words(b, a) or _contains_words(a, b))


def vendors_match(asset_vendor: str | None, advisory_vendor: str | None, advisory_product: str | None,
                  aliases: Mapping[str, str] | None = None) -> bool:
    """Equal ``vendor_key``; an advisory without a vendor matches when its product names the vendor."""
    mine = vendor_key(asset_vendor, aliases)
    if not mine:
        return False
    theirs = vendor_key(advisory_vendor, aliases)
    if theirs:
        return mine == theirs
    return _contains_words(normalise_name(advisory_product), mine)


# --- inputs ------------------------------------------------------------------------------------------

class AssetLike(Protocol):
    """What matching needs of an asset (``AssetRef`` here, ``pipeline.assets.AssetHit`` in scoring)."""

    asset_id: str
    site: str
    vendor: str | None
    product: str | None
    version: str | None


@dataclass(frozen=True, slots=True)
class AssetRef:
    asset_id: str
    site: str
    name: str
    vendor: str | None
    product: str | None
    version: str | None


def inventory_assets(inventory: Inventory) -> list[AssetRef]:
    """Every asset of the inventory that names a vendor and a product (the first of a repeated id)."""
    found: dict[str, AssetRef] = {}
    for site in inventory.sites:
        for asset in site.assets:
            if asset.vendor and asset.product and asset.id not in found:
                found[asset.id] = AssetRef(asset.id, site.id, asset.name, asset.vendor, asset.product, asset.version)
    return list(found.values())


@dataclass(frozen=True, slots=True)
class AdvisoryRow:
    """One stored advisory row, as matching reads it (``versions`` decoded)."""

    source_id: str
    advisory_id: str
    cve: str
    vendor: str
    product: str
    versions: tuple[str, ...] = ()
    cvss: float | None = None
    known_exploited: bool = False
    title: str | None = None
    url: str | None = None

    @property
    def vuln_key(self) -> str:
        return self.cve or f"{self.source_id}:{self.advisory_id}"


_ADVISORY_COLUMNS = (advisories.c.source_id, advisories.c.advisory_id, advisories.c.cve, advisories.c.vendor,
                     advisories.c.product, advisories.c.versions, advisories.c.cvss, advisories.c.known_exploited,
                     advisories.c.title, advisories.c.url)


def _row(r: Any) -> AdvisoryRow:
    versions = loads(r.versions, [])
    return AdvisoryRow(r.source_id, r.advisory_id, r.cve or "", r.vendor or "", r.product or "",
                       tuple(str(v) for v in versions) if isinstance(versions, list) else (), r.cvss,
                       bool(r.known_exploited), r.title, r.url)


def load_advisories(conn: Connection, *, known_exploited_only: bool = False) -> list[AdvisoryRow]:
    """Every stored advisory row; with ``known_exploited_only``, the rows of known-exploited CVEs
    (every row naming a CVE some KEV entry names, so their versions still count) and the rows
    flagged known-exploited themselves."""
    query = select(*_ADVISORY_COLUMNS)
    if known_exploited_only:
        known = advisories.c.known_exploited.is_(True)
        kev_cves = select(advisories.c.cve).where(known, advisories.c.cve != "")
        query = query.where(or_(known, advisories.c.cve.in_(kev_cves)))
    return [_row(r) for r in conn.execute(query.order_by(advisories.c.id))]


# --- matching ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Finding:
    """One exposure: an asset, a vulnerability, the advisory that decided it and the version verdict."""

    asset_id: str
    site_id: str
    vuln_key: str
    cve: str
    advisory_id: str
    source_id: str
    vendor: str
    product: str
    asset_version: str | None
    advisory_versions: tuple[str, ...]
    version_match: str          # affected | unknown
    version_note: str
    known_exploited: bool
    cvss: float | None
    title: str | None
    url: str | None
    advisories: tuple[str, ...]  # "source_id:advisory_id" of every advisory naming it for this asset

    def row(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id, "site_id": self.site_id, "vuln_key": self.vuln_key, "cve": self.cve,
            "advisory_id": self.advisory_id, "source_id": self.source_id, "vendor": self.vendor,
            "product": self.product, "asset_version": self.asset_version,
            "advisory_versions": dumps(list(self.advisory_versions)), "version_match": self.version_match,
            "version_note": self.version_note, "known_exploited": self.known_exploited, "cvss": self.cvss,
            "title": self.title, "url": self.url, "advisories": dumps(list(self.advisories)),
        }


def _specificity(check: VersionCheck) -> int:
    """Lower is more specific: a range that includes the asset, then "all versions", then a
    versioned advisory that could not decide, then an advisory without versions."""
    if check.match == AFFECTED:
        return 1 if check.basis == BASIS_ALL else 0
    return 3 if check.basis == BASIS_NO_ADVISORY_VERSIONS else 2


def _decide(checks: list[tuple[AdvisoryRow, VersionCheck]]) -> tuple[AdvisoryRow, VersionCheck] | None:
    """The advisory that decides one (asset, vulnerability), or ``None`` when it is not a finding."""
    live = [c for c in checks if c[1].match != NOT_AFFECTED]
    if not live:
        return None
    if all(c[1].match == UNKNOWN for c in live) and len(live) < len(checks) \
            and all(c[1].basis == BASIS_NO_ADVISORY_VERSIONS for c in live):
        return None  # a versioned advisory rules the asset out; a version-less one cannot rule it in
    return min(live, key=lambda c: (_specificity(c[1]), -(c[0].cvss or 0.0), c[0].source_id, c[0].advisory_id,
                                    c[0].product))


def match_findings(assets: Iterable[AssetLike], rows: Sequence[AdvisoryRow],
                   aliases: Mapping[str, str] | None = None) -> list[Finding]:
    """Every finding of ``assets`` against the advisory ``rows`` (pure: no store, no clock);
    ``aliases`` from ``alias_keys``."""
    kev_cves = {r.cve for r in rows if r.known_exploited and r.cve}
    # vendor key → normalised product name → rows: an asset compares its product with each distinct
    # product name of its vendor once, however many CVEs name it.
    by_vendor: dict[str, dict[str, list[AdvisoryRow]]] = {}
    vendorless: dict[str, list[AdvisoryRow]] = {}
    for r in rows:
        key = vendor_key(r.vendor, aliases)
        names = by_vendor.setdefault(key, {}) if key else vendorless
        names.setdefault(normalise_name(r.product), []).append(r)
    findings: list[Finding] = []
    for asset in assets:
        if not asset.vendor or not asset.product:
            continue
        mine, product = vendor_key(asset.vendor, aliases), normalise_name(asset.product)
        candidates = [r for name, named in by_vendor.get(mine, {}).items() if _names_match(product, name) for r in named]
        candidates += [r for name, named in vendorless.items()
                       if _contains_words(name, mine) and _names_match(product, name) for r in named]
        groups: dict[str, list[tuple[AdvisoryRow, VersionCheck]]] = {}
        for r in candidates:
            groups.setdefault(r.vuln_key, []).append((r, check_version(asset.version, r.versions)))
        for vuln, checks in groups.items():
            decided = _decide(checks)
            if decided is None:
                continue
            row, check = decided
            live = [r for r, c in checks if c.match != NOT_AFFECTED]
            scores = [r.cvss for r in live if r.cvss is not None]
            findings.append(Finding(
                asset_id=asset.asset_id, site_id=asset.site, vuln_key=vuln, cve=row.cve,
                advisory_id=row.advisory_id, source_id=row.source_id, vendor=row.vendor, product=row.product,
                asset_version=asset.version, advisory_versions=row.versions, version_match=check.match,
                version_note=check.note, known_exploited=(row.cve in kev_cves) or any(r.known_exploited for r in live),
                cvss=max(scores) if scores else None, title=row.title, url=row.url,
                advisories=tuple(sorted({f"{r.source_id}:{r.advisory_id}" for r in live})),
            ))
    return findings


def known_exploited_by_asset(assets: Iterable[AssetLike], rows: Sequence[AdvisoryRow],
                             limit: int | None = None,
                             aliases: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """``{asset id: (CVE or advisory id, ...)}`` of the known-exploited findings (for scoring)."""
    found: dict[str, set[str]] = {}
    for finding in match_findings(assets, rows, aliases):
        if finding.known_exploited:
            found.setdefault(finding.asset_id, set()).add(finding.cve or finding.advisory_id)
    return {asset: tuple(sorted(ids)[:limit]) for asset, ids in found.items()}


# --- the table ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Counts:
    """What one recompute did: findings inserted or reopened, confirmed, resolved."""

    new: int = 0
    still: int = 0
    resolved: int = 0


def recompute_exposures(store: Store, inventory: Inventory, now_ms: int) -> Counts:
    """Match every stored advisory against the inventory and bring ``exposures`` up to date, in one
    write transaction (see the module notes). Idempotent."""
    assets = inventory_assets(inventory)
    with store.writer.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        rows = load_advisories(conn)
        found = {(f.asset_id, f.vuln_key): f
                 for f in match_findings(assets, rows, alias_keys(inventory.vendor_aliases))}
        existing = {(r.asset_id, r.vuln_key): r for r in conn.execute(
            select(exposures.c.id, exposures.c.asset_id, exposures.c.vuln_key, exposures.c.resolved_at))}
        inserts: list[dict[str, Any]] = []
        confirmed: list[dict[str, Any]] = []   # still open: refreshed in place
        reopened: list[dict[str, Any]] = []    # resolved before, matching again
        for key, finding in found.items():
            previous = existing.get(key)
            values = {**finding.row(), "last_confirmed": now_ms}
            if previous is None:
                inserts.append({**values, "first_found": now_ms, "resolved_at": None, "resolved_reason": None})
            elif previous.resolved_at is None:
                confirmed.append({**values, "_id": previous.id})
            else:
                reopened.append({**values, "_id": previous.id, "first_found": now_ms, "resolved_at": None,
                                 "resolved_reason": None})
        asset_ids = {a.asset_id for a in assets}
        vulns = {r.vuln_key for r in rows}
        gone: list[dict[str, Any]] = []
        for (asset_id, vuln), previous in existing.items():
            if (asset_id, vuln) in found or previous.resolved_at is not None:
                continue
            reason = RESOLVED_ASSET if asset_id not in asset_ids else (
                RESOLVED_ADVISORY if vuln not in vulns else RESOLVED_NO_MATCH)
            gone.append({"_id": previous.id, "resolved_at": now_ms, "resolved_reason": reason})
        if inserts:
            conn.execute(insert(exposures), inserts)
        for batch in (confirmed, reopened, gone):  # executemany: one statement per kind of change
            if batch:
                columns = [c for c in batch[0] if c != "_id"]
                conn.execute(update(exposures).where(exposures.c.id == bindparam("_id"))
                             .values({c: bindparam(c) for c in columns}), batch)
        new, still, resolved = len(inserts) + len(reopened), len(confirmed), len(gone)
        set_cursor(conn, *RECOMPUTE_CURSOR, {"at": now_ms, "assets": len(assets), "advisories": len(rows),
                                             "open": len(found), "new": new, "still": still, "resolved": resolved},
                   now_ms)
    counts = Counts(new, still, resolved)
    log.info("exposures: %d open (%d new, %d still), %d resolved; %d advisories x %d assets",
             len(found), new, still, resolved, len(rows), len(assets))
    return counts
