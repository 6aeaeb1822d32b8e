"""Known-exploited exposure for scoring: which inventory assets a known-exploited vulnerability hits.

The matching is ``pipeline.exposure_findings``' (the same as the /exposure page's findings): vendor
and product compared after ``normalise_name``/``vendor_key`` (case, spaces, punctuation, company
suffixes), the product also matching when one name contains the other as whole words (KEV says
``FortiOS``; CSAF may say ``SIMATIC S7-1500`` where the inventory says ``SIMATIC S7-1500 CPU``), and
the asset's version checked against the advisory's versions (``pipeline.versions``). A KEV entry
names no version, so it counts ("version not confirmed": a product line being exploited is worth
points before the patch level is known), unless a versioned advisory for the same CVE puts the
asset's version outside its ranges. A CSAF product whose range includes the asset counts when any
KEV entry names its CVE.

Refreshed like the indicator index: a generation signature over the advisories, checked at most
every ``REFRESH_CHECK_MS``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, func, select

from pipeline.assets import AssetHit
from pipeline.exposure_findings import known_exploited_by_asset, load_advisories, products_match, vendor_key
from store.schema import advisories

__all__ = ["KevExposure", "match_assets", "products_match", "REFRESH_CHECK_MS", "MAX_CVES_PER_ASSET"]

REFRESH_CHECK_MS = 60_000
MAX_CVES_PER_ASSET = 20


def match_assets(assets: Iterable[AssetHit], entries: Iterable[tuple[str, str, str]]) -> dict[str, tuple[str, ...]]:
    """``{asset id: (CVE or advisory id, ...)}`` for every asset whose vendor/product an entry names,
    versions not compared (``KevExposure`` compares them).

    ``entries`` are ``(vendor, product, cve_or_id)`` of known-exploited advisories.
    """
    by_vendor: dict[str, list[tuple[str, str]]] = {}
    for vendor, product, ident in entries:
        by_vendor.setdefault(vendor_key(vendor), []).append((product, ident))
    found: dict[str, tuple[str, ...]] = {}
    for asset in assets:
        if not asset.vendor or not asset.product:
            continue
        ids = sorted({ident for product, ident in by_vendor.get(vendor_key(asset.vendor), ())
                      if products_match(asset.product, product)})
        if ids:
            found[asset.asset_id] = tuple(ids[:MAX_CVES_PER_ASSET])
    return found


class KevExposure:
    """Known-exploited advisories per asset id, rebuilt when the advisories change."""

    def __init__(self, assets: Iterable[AssetHit], check_every_ms: int = REFRESH_CHECK_MS,
                 aliases: Mapping[str, str] | None = None) -> None:
        self.assets = list(assets)
        self.aliases = aliases
        self.by_asset: dict[str, tuple[str, ...]] = {}
        self.check_every_ms = check_every_ms
        self._generation: tuple[Any, ...] | None = None
        self._checked_at: int | None = None

    def check_soon(self) -> None:
        """Make the next ``refresh`` look at the store whatever the interval (a feed run just wrote)."""
        self._checked_at = None

    def refresh(self, conn: Connection, now_ms: int, *, force: bool = False) -> bool:
        if not force and self._checked_at is not None and now_ms - self._checked_at < self.check_every_ms:
            return False
        self._checked_at = now_ms
        # Over every advisory, not only the known-exploited ones: a CSAF advisory's versions decide too.
        current = tuple(conn.execute(
            select(func.count(), func.max(advisories.c.id), func.max(advisories.c.last_run_id),
                   func.max(advisories.c.updated))
        ).one())
        if not force and current == self._generation:
            return False
        rows = load_advisories(conn, known_exploited_only=True)
        self.by_asset = known_exploited_by_asset(self.assets, rows, limit=MAX_CVES_PER_ASSET, aliases=self.aliases)
        self._generation = current
        return True

    def for_asset(self, asset_id: str | None) -> tuple[str, ...]:
        return self.by_asset.get(asset_id, ()) if asset_id else ()
