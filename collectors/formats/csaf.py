"""CSAF 2.0 security advisories, as CISA publishes its ICS advisories (``format: csaf``).

The parts read from one advisory document::

    {"document": {"title": "Baker Hughes Bently Nevada 3500",
                  "tracking": {"id": "ICSA-23-269-05", "initial_release_date": "2023-09-26T06:00:00.000000Z",
                               "current_release_date": "2023-09-26T06:00:00.000000Z"},
                  "references": [{"category": "self", "url": "https://www.cisa.gov/.../icsa-23-269-05"}]},
     "product_tree": {"branches": [{"category": "vendor", "name": "Baker Hughes - Bently Nevada",
        "branches": [{"category": "product_name", "name": "Bently Nevada 3500 Rack (TDI Firmware)",
          "branches": [{"category": "product_version", "name": "5.05",
                        "product": {"product_id": "CSAFPID-0001", "name": "..."}}]}]}]},
     "vulnerabilities": [{"cve": "CVE-2023-34437", "product_status": {"known_affected": ["CSAFPID-0001"]},
                          "scores": [{"cvss_v3": {"baseScore": 7.5}, "products": ["CSAFPID-0001"]}]}]}

Rules:

* One ``Advisory`` per (CVE, vendor, product): the affected product ids of a vulnerability
  (``known_affected``, ``first_affected``, ``last_affected``) are resolved through the product
  tree (nearest ``vendor``, ``product_name`` or else ``product_family`` above the id; the
  ``product_version`` / ``product_version_range`` names become ``versions``) or through
  ``relationships`` (the component, ``product_reference``, is what is affected) or
  ``full_product_names`` (name only, no vendor). An id found nowhere keeps the id as product.
* ``cvss`` is the highest CVSS v3 (else v2) base score of the scores naming those products.
* ``advisory_id`` = tracking id, ``title`` = document title, ``published`` / ``updated`` =
  initial / current release dates, ``url`` = the human ``self`` reference (else the JSON one).
* A vulnerability without affected products is skipped (nothing to match against assets); a
  vulnerability that is not an object, or a bad CVE id, is rejected. A document without a
  tracking id, or that is not JSON, fails the run. The document is read whole (tens of KB).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

from collectors.formats.common import FormatError, check_start, parse_time, skipped
from settings.base import StrictModel
from settings.sources import SourceConfig, TimeField
from store.records import Advisory, Rejected

FORMAT = "csaf"
KIND = "advisories"

AFFECTED = ("known_affected", "first_affected", "last_affected")
VERSION_BRANCHES = ("product_version", "product_version_range")
CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}", re.ASCII)
_ISO = TimeField(field="date", format="iso")


class Options(StrictModel):
    """No knobs yet."""


def parse(payload: BinaryIO, source: SourceConfig, options: Options) -> Iterator[Advisory | Rejected]:
    data = payload.read()
    check_start(data[:64], "CSAF JSON")
    try:
        document = json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"payload is not valid JSON: {exc}") from None
    head = document.get("document") if isinstance(document, dict) else None
    tracking = head.get("tracking") if isinstance(head, dict) else None
    if not isinstance(tracking, dict) or not isinstance(tracking.get("id"), str):
        raise FormatError("not a CSAF document (no document.tracking.id)")
    common = dict(advisory_id=tracking["id"], source=source.id, title=str(head.get("title") or tracking["id"]),
                  published=_date(tracking.get("initial_release_date")),
                  updated=_date(tracking.get("current_release_date")), url=_self_url(head, tracking["id"]))
    products = _products(document.get("product_tree"))
    vulnerabilities = document.get("vulnerabilities")
    for number, vulnerability in enumerate(vulnerabilities if isinstance(vulnerabilities, list) else [], start=1):
        yield from _advisories(vulnerability, f"vulnerability {number}", products, common)


def _advisories(vulnerability: Any, location: str, products: dict[str, tuple[str | None, str, str | None]],
                common: dict[str, Any]) -> Iterator[Advisory | Rejected]:
    raw = json.dumps(vulnerability, separators=(",", ":"), ensure_ascii=False)
    if not isinstance(vulnerability, dict):
        yield Rejected("vulnerability is not an object", location, raw)
        return
    cve = vulnerability.get("cve")
    if cve is not None and not (isinstance(cve, str) and CVE_ID.fullmatch(cve)):
        yield Rejected(f"cve {str(cve)[:30]!r} is not a CVE id", location, raw)
        return
    status = vulnerability.get("product_status") if isinstance(vulnerability.get("product_status"), dict) else {}
    affected = list(dict.fromkeys(p for key in AFFECTED for p in status.get(key) or [] if isinstance(p, str)))
    if not affected:
        yield skipped("no affected products", location, raw)
        return
    groups: dict[tuple[str | None, str], list[str]] = {}
    for product_id in affected:
        vendor, product, _ = products.get(product_id, (None, product_id, None))
        groups.setdefault((vendor, product), []).append(product_id)
    for (vendor, product), ids in groups.items():
        versions = tuple(dict.fromkeys(v for i in ids if (v := products.get(i, (None, "", None))[2])))
        yield Advisory(cve=cve, vendor=vendor, product=product, versions=versions,
                       cvss=_score(vulnerability.get("scores"), ids), raw=raw, **common)


def _products(tree: Any) -> dict[str, tuple[str | None, str, str | None]]:
    """product id -> (vendor, product name, version) from branches, relationships and full names."""
    found: dict[str, tuple[str | None, str, str | None]] = {}
    if not isinstance(tree, dict):
        return found

    def walk(branches: Any, path: dict[str, str]) -> None:
        for branch in branches if isinstance(branches, list) else []:
            if not isinstance(branch, dict):
                continue
            here = {**path, str(branch.get("category")): str(branch.get("name", ""))}
            product = branch.get("product")
            if isinstance(product, dict) and isinstance(product.get("product_id"), str):
                name = here.get("product_name") or here.get("product_family") or str(product.get("name", ""))
                version = next((here[c] for c in VERSION_BRANCHES if c == branch.get("category")), None)
                found[product["product_id"]] = (here.get("vendor"), name, version)
            walk(branch.get("branches"), here)

    walk(tree.get("branches"), {})
    for item in tree.get("full_product_names") or []:
        if isinstance(item, dict) and isinstance(item.get("product_id"), str):
            found.setdefault(item["product_id"], (None, str(item.get("name", item["product_id"])), None))
    for relation in tree.get("relationships") or []:
        full = relation.get("full_product_name") if isinstance(relation, dict) else None
        if isinstance(full, dict) and isinstance(full.get("product_id"), str):
            component = found.get(str(relation.get("product_reference")))
            found.setdefault(full["product_id"], component or (None, str(full.get("name", full["product_id"])), None))
    return found


def _score(scores: Any, product_ids: list[str]) -> float | None:
    best: float | None = None
    for score in scores if isinstance(scores, list) else []:
        if not isinstance(score, dict) or not set(product_ids) & set(score.get("products") or []):
            continue
        for key in ("cvss_v3", "cvss_v2"):
            value = (score.get(key) or {}).get("baseScore") if isinstance(score.get(key), dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                best = max(best or 0.0, float(value))
                break
    return best


def _self_url(head: dict[str, Any], tracking_id: str) -> str | None:
    urls = [r["url"] for r in head.get("references") or []
            if isinstance(r, dict) and r.get("category") == "self" and isinstance(r.get("url"), str)]
    pages = [u for u in urls if not u.endswith(".json")]
    own = [u for u in pages if u.lower().rstrip("/").endswith(tracking_id.lower())]
    return (own or pages or urls or [None])[0]


def _date(value: Any) -> datetime | None:
    try:
        return parse_time(value, _ISO)
    except ValueError:
        return None  # a bad date in the header must not hide the advisory
