"""Advisory upsert by (source, advisory id, CVE, vendor, product): counts, last value wins, sources apart."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from store import writes
from store.db import Store
from store.records import Advisory
from store.schema import advisories


def adv(cve: str, product: str = "SIMATIC S7-1500", title: str = "t", **kw) -> Advisory:
    return Advisory(f"ADV-{cve}", "kev", cve, "Siemens", product, title, **kw)


def upsert(store: Store, source: str, records: list[Advisory], run_id: int) -> writes.UpsertCounts:
    with store.writer.begin() as conn:
        return writes.upsert_advisories(conn, source, records, run_id=run_id)


def rows(store: Store) -> dict[tuple[str, str, str], tuple]:
    with store.reader.connect() as conn:
        found = conn.execute(select(advisories.c.source_id, advisories.c.cve, advisories.c.product, advisories.c.title,
                                    advisories.c.known_exploited, advisories.c.versions, advisories.c.last_run_id))
        return {(r.source_id, r.cve, r.product): (r.title, r.known_exploited, r.versions, r.last_run_id) for r in found}


def test_new_then_updated_with_repeats_in_one_run_and_sources_kept_apart(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    first = upsert(store, "kev", [adv("CVE-1", title="old"), adv("CVE-2"), adv("CVE-1", title="newer")], run_id=1)
    assert (first.new, first.updated) == (2, 1)
    assert rows(store)[("kev", "CVE-1", "SIMATIC S7-1500")][0] == "newer"

    second = upsert(store, "kev", [adv("CVE-1", title="again", known_exploited=True, versions=("<2.9",)),
                                   adv("CVE-1", product="SIMATIC S7-1200"), adv("CVE-3")], run_id=2)
    assert (second.new, second.updated) == (2, 1)
    other = upsert(store, "csaf", [adv("CVE-1")], run_id=3)   # the same key from another source is its own row
    assert (other.new, other.updated) == (1, 0)

    assert rows(store) == {
        ("kev", "CVE-1", "SIMATIC S7-1500"): ("again", True, '["<2.9"]', 2),
        ("kev", "CVE-1", "SIMATIC S7-1200"): ("t", False, None, 2),
        ("kev", "CVE-2", "SIMATIC S7-1500"): ("t", False, None, 1),
        ("kev", "CVE-3", "SIMATIC S7-1500"): ("t", False, None, 2),
        ("csaf", "CVE-1", "SIMATIC S7-1500"): ("t", False, None, 3),
    }


def test_missing_cve_vendor_product_are_empty_keys(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    record = Advisory("ICSA-1", "csaf", None, None, None, "no product named")
    assert upsert(store, "csaf", [record], run_id=1).new == 1
    assert upsert(store, "csaf", [record], run_id=2).updated == 1
    assert rows(store) == {("csaf", "", ""): ("no product named", False, None, 2)}
