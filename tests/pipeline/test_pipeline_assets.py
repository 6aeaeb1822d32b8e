"""Asset lookup: longest-prefix zone match, exact asset match, IPv4 and IPv6, edges of ranges."""
from __future__ import annotations

import ipaddress

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline_testkit import ASSETS_YAML

from pipeline.assets import OUTSIDE, AssetIndex
from settings.inventory import Inventory

INVENTORY = Inventory.model_validate(yaml.safe_load(ASSETS_YAML))
INDEX = AssetIndex(INVENTORY)


def where(ip: str) -> tuple:
    found = INDEX.locate(ip)
    return (found.site, found.zone_name, found.zone_kind, found.asset.asset_id if found.asset else None)


def test_more_specific_network_wins_over_the_enclosing_one():
    assert where("10.1.5.7") == ("plant-a", "cell", "OT", None)          # /24 OT cell inside the /16 IT range
    assert where("10.1.6.7") == ("plant-a", "corporate", "IT", None)


def test_network_and_broadcast_addresses_belong_to_their_network():
    assert where("10.1.0.0")[1] == "corporate" and where("10.1.255.255")[1] == "corporate"
    assert where("10.1.5.0")[1] == "cell" and where("10.1.5.255")[1] == "cell"
    assert where("192.0.2.15")[1] == "dmz" and where("192.0.2.16") == (None, None, None, None)


def test_a_single_host_zone_is_matched_exactly():
    assert where("10.5.9.9") == ("rail-c", "jump-host", "IT", None)
    assert where("10.5.9.8") == ("rail-c", "signalling", "OT", None)
    assert where("10.5.9.10") == ("rail-c", "signalling", "OT", None)


def test_assets_match_by_exact_ip_and_carry_their_attributes():
    plc = INDEX.locate("10.2.0.10")
    assert plc.asset is not None
    assert (plc.asset.asset_id, plc.asset.criticality, plc.asset.vendor, plc.asset.product, plc.asset.version) == (
        "a-plc", 5, "Siemens", "SIMATIC S7-1500", "2.9")
    assert plc.sector == "energy" and plc.zone.site_criticality == 5
    # An asset without a zone of its own takes the zone its address falls in.
    assert where("10.1.5.20") == ("plant-a", "cell", "OT", "a-hmi")
    assert where("10.2.0.11") == ("plant-a", "control", "OT", None)


def test_ipv6_zones_and_assets():
    assert where("2001:db8:a::1") == ("plant-a", "corporate", "IT", None)
    assert where("2001:db8:a:ff::10") == ("plant-a", "control", "OT", "a-rtu6")
    assert where("2001:DB8:A:FF:0:0:0:10") == ("plant-a", "control", "OT", "a-rtu6")  # any spelling
    assert where("2001:db8:b::1") == (None, None, None, None)


def test_ipv4_mapped_ipv6_is_the_ipv4_address():
    assert where("::ffff:10.2.0.10") == ("plant-a", "control", "OT", "a-plc")


def test_outside_and_invalid_addresses():
    assert INDEX.locate("8.8.8.8") is OUTSIDE
    assert INDEX.locate("bogus") is OUTSIDE
    assert INDEX.locate(None) is OUTSIDE and not OUTSIDE.known


def test_the_first_site_keeps_a_network_two_sites_declare():
    text = ASSETS_YAML.replace("networks: [10.3.0.0/16]", "networks: [10.3.0.0/16, 10.2.0.0/16]")
    index = AssetIndex(Inventory.model_validate(yaml.safe_load(text)))
    assert index.locate("10.2.0.99").site == "plant-a"


def _many_networks() -> tuple[AssetIndex, list[tuple[ipaddress._BaseNetwork, str]]]:
    """3,000 nested and overlapping IPv4/IPv6 networks across 30 sites."""
    networks: list[tuple[ipaddress._BaseNetwork, str]] = []
    sites = []
    for s in range(30):
        zones = []
        for z in range(100):
            n = s * 100 + z
            v4 = ipaddress.ip_network(f"10.{n % 250}.{(n * 7) % 256}.0/{16 + n % 17}", strict=False)
            v6 = ipaddress.ip_network(f"2001:db8:{n:x}::/{40 + n % 40}", strict=False)
            zones.append({"name": f"z{z}", "kind": "OT" if z % 2 else "IT", "networks": [str(v4), str(v6)]})
        sites.append({"id": f"s{s}", "name": f"S{s}", "sector": "energy", "lat": 0, "lon": 0, "criticality": 3,
                      "zones": zones})
    inventory = Inventory.model_validate({"sites": sites})
    seen: set = set()
    for site in inventory.sites:
        for zone in site.zones:
            for text in zone.networks:
                net = ipaddress.ip_network(text)
                if net not in seen:  # the first declaration keeps a duplicate network
                    seen.add(net)
                    networks.append((net, f"{site.id}/{zone.name}"))
    return AssetIndex(inventory), networks


BIG_INDEX, BIG_NETWORKS = _many_networks()


def _brute_force(ip: str) -> str | None:
    address = ipaddress.ip_address(ip)
    best = None
    for net, name in BIG_NETWORKS:
        if address.version == net.version and address in net and (best is None or net.prefixlen > best[0].prefixlen):
            best = (net, name)
    return best[1] if best else None


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.integers(min_value=int(ipaddress.ip_address("10.0.0.0")), max_value=int(ipaddress.ip_address("10.255.255.255")))
    .map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(min_value=0, max_value=2**96 - 1)
    .map(lambda n: str(ipaddress.IPv6Address((0x20010DB8 << 96) | n))),
))
def test_longest_prefix_match_agrees_with_brute_force_over_thousands_of_networks(ip):
    found = BIG_INDEX.locate(ip)
    assert (f"{found.site}/{found.zone_name}" if found.zone else None) == _brute_force(ip)
