"""Vendor aliases: an advisory that names a vendor's former or other name still finds the asset."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from exposure_testkit import NOW, inventory, open_findings, store_advisories
from pydantic import ValidationError

from pipeline.assets import AssetIndex
from pipeline.exposure import KevExposure
from pipeline.exposure_findings import alias_keys, recompute_exposures, vendor_key, vendors_match
from settings.loader import load_config
from store.records import Advisory

INVENTORY = """
sites:
  - id: plant-b
    name: Beta Water Works
    sector: water
    lat: 14.0
    lon: 100.5
    criticality: 4
    zones:
      - {name: process, kind: OT, networks: [10.2.0.0/16]}
    assets:
      - {id: ifix, name: SCADA server, ip: 10.2.0.10, zone: process, vendor: GE Vernova, product: iFIX, version: "6.5"}
      - {id: intouch, name: HMI, ip: 10.2.0.11, zone: process, vendor: AVEVA, product: InTouch HMI, version: "2020 R2"}
vendor_aliases:
  GE Vernova: [GE Digital, General Electric]
  AVEVA: [Wonderware, AVEVA Software]
"""


def advisory(cve: str, vendor: str, product: str, known_exploited: bool = True) -> Advisory:
    return Advisory(cve, "cisa-kev", cve, vendor, product, f"{vendor} {product} flaw", known_exploited=known_exploited)


ADVISORIES = [
    advisory("CVE-2023-0001", "GE Digital", "Proficy iFIX"),
    advisory("CVE-2023-0002", "Wonderware", "InTouch"),
    advisory("CVE-2023-0003", "AVEVA Software, LLC", "InTouch HMI"),
    advisory("CVE-2023-0004", "General Electric", "CIMPLICITY"),     # right vendor, other product
    advisory("CVE-2023-0005", "Schneider Electric", "InTouch HMI"),  # not an alias of AVEVA here
]


def test_aliases_fold_to_the_vendor_key() -> None:
    aliases = alias_keys({"GE Vernova": ["GE Digital", "General Electric Company"]})
    assert aliases == {"ge digital": "ge vernova", "general electric": "ge vernova"}
    assert vendor_key("GE Digital, Inc.", aliases) == vendor_key("GE Vernova") == "ge vernova"
    assert vendors_match("GE Vernova", "General Electric Co.", "iFIX", aliases)
    assert not vendors_match("GE Vernova", "General Electric Co.", "iFIX")  # no aliases, no match


def test_recompute_finds_assets_by_their_vendor_aliases(store) -> None:
    store_advisories(store, "cisa-kev", ADVISORIES)
    recompute_exposures(store, inventory(INVENTORY), NOW)
    assert sorted(open_findings(store)) == [("ifix", "CVE-2023-0001"), ("intouch", "CVE-2023-0002"),
                                            ("intouch", "CVE-2023-0003")]
    without = INVENTORY.split("vendor_aliases:")[0]
    recompute_exposures(store, inventory(without), NOW + 1)
    assert open_findings(store) == {}  # "AVEVA Software, LLC" folds to "aveva software", not "aveva"


def test_scoring_sees_known_exploited_through_aliases(store) -> None:
    store_advisories(store, "cisa-kev", ADVISORIES)
    inv = inventory(INVENTORY)
    exposure = KevExposure(AssetIndex(inv).assets_by_id.values(), aliases=alias_keys(inv.vendor_aliases))
    with store.reader.connect() as conn:
        exposure.refresh(conn, NOW)
    assert exposure.for_asset("ifix") == ("CVE-2023-0001",)
    assert exposure.for_asset("intouch") == ("CVE-2023-0002", "CVE-2023-0003")


@pytest.mark.parametrize("aliases, message", [
    ({"AVEVA": ["Wonderware"], "Schneider Electric": ["Wonderware Inc."]},
     "'Wonderware Inc.' is listed for both 'AVEVA' and 'Schneider Electric'"),
    ({"AVEVA": ["  "]}, "'AVEVA': '  ' is not a vendor name"),
])
def test_an_alias_may_name_one_vendor_only(aliases, message) -> None:
    with pytest.raises(ValidationError, match=message):
        inventory(yaml.safe_dump({"sites": [], "vendor_aliases": aliases}))


def test_a_bad_alias_table_is_reported_with_file_and_field(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "config"
    folder = tmp_path / "config"
    (folder / "feeds").mkdir(parents=True)
    (folder / "settings.yaml").write_text((shipped / "settings.yaml").read_text())
    (folder / "assets.yaml").write_text("sites: []\nvendor_aliases:\n  AVEVA: [Wonderware]\n  Schneider: [wonderware]\n")
    problems = [str(p) for p in load_config(folder).problems]
    assert any("assets.yaml" in p and "vendor_aliases" in p and "listed for both" in p for p in problems), problems


def test_the_shipped_inventory_aliases_load() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "config")
    assert not config.problems
    keys = alias_keys(config.inventory.vendor_aliases)
    assert keys["ge digital"] == "ge vernova" and keys["wonderware"] == "aveva"
