"""Known-exploited exposure: which inventory assets a known-exploited advisory (CISA KEV) names.

Basic matching for now: vendor and product compared case- and space-insensitively, where the
product also matches when one name contains the other (KEV says ``FortiOS``, the inventory may say
``FortiOS``; CSAF may say ``SIMATIC S7-1500`` where the inventory says ``SIMATIC S7-1500 CPU``).
Versions are not compared yet: a KEV entry means "this product line is being exploited", which is
worth points on the score even before the patch level is known.

Refreshed like the indicator index: a generation signature over the advisories, checked at most
every ``REFRESH_CHECK_MS``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from pipeline.assets import AssetHit
from store.schema import advisories

REFRESH_CHECK_MS = 60_000
MAX_CVES_PER_ASSET = 20
_SPACES = re.compile(r"[\s_\-]+")


def _norm(text: str | None) -> str:
    return _SPACES.sub(" ", (text or "").casefold()).strip()


def products_match(asset_product: str, advisory_product: str) -> bool:
    a, b = _norm(asset_product), _norm(advisory_product)
    return bool(a and b) and (a == b or a in b or b in a)


def match_assets(assets: Iterable[AssetHit], entries: Iterable[tuple[str, str, str]]) -> dict[str, tuple[str, ...]]:
    """``{asset id: (CVE or advisory id, ...)}`` for every asset whose vendor/product an entry names.

    ``entries`` are ``(vendor, product, cve_or_id)`` of known-exploited advisories.
    """
    by_vendor: dict[str, list[tuple[str, str]]] = {}
    for vendor, product, ident in entries:
        by_vendor.setdefault(_norm(vendor), []).append((product, ident))
    found: dict[str, tuple[str, ...]] = {}
    for asset in assets:
        if not asset.vendor or not asset.product:
            continue
        ids = sorted({ident for product, ident in by_vendor.get(_norm(asset.vendor), ())
                      if products_match(asset.product, product)})
        if ids:
            found[asset.asset_id] = tuple(ids[:MAX_CVES_PER_ASSET])
    return found


class KevExposure:
    """Known-exploited advisories per asset id, rebuilt when the advisories change."""

    def __init__(self, assets: Iterable[AssetHit], check_every_ms: int = REFRESH_CHECK_MS) -> None:
        self.assets = list(assets)
        self.by_asset: dict[str, tuple[str, ...]] = {}
        self.check_every_ms = check_every_ms
        self._generation: tuple[Any, ...] | None = None
        self._checked_at: int | None = None

    def refresh(self, conn: Connection, now_ms: int, *, force: bool = False) -> bool:
        if not force and self._checked_at is not None and now_ms - self._checked_at < self.check_every_ms:
            return False
        self._checked_at = now_ms
        known = advisories.c.known_exploited.is_(True)
        current = tuple(conn.execute(
            select(func.count(), func.max(advisories.c.id), func.max(advisories.c.last_run_id),
                   func.max(advisories.c.updated)).where(known)
        ).one())
        if not force and current == self._generation:
            return False
        rows = conn.execute(select(advisories.c.vendor, advisories.c.product, advisories.c.cve,
                                   advisories.c.advisory_id).where(known))
        self.by_asset = match_assets(self.assets, ((r.vendor, r.product, r.cve or r.advisory_id) for r in rows))
        self._generation = current
        return True

    def for_asset(self, asset_id: str | None) -> tuple[str, ...]:
        return self.by_asset.get(asset_id, ()) if asset_id else ()
