"""City GeoIP (``pipeline/geoip_city.py``) against small real ``.mmdb`` files written with mmdb-writer."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from pipeline.geoip_city import CityDatabase, CityDatabaseError, CityInfo

LONDON = {
    "city": {"geoname_id": 2643743, "names": {"en": "London", "de": "London"}},
    "continent": {"code": "EU", "names": {"en": "Europe"}},
    "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
    "location": {"latitude": 51.5142, "longitude": -0.0931, "accuracy_radius": 10,
                 "time_zone": "Europe/London"},
    "registered_country": {"iso_code": "GB"},
}
TOKYO = {
    "city": {"names": {"en": "Tokyo", "ja": "東京"}},
    "country": {"iso_code": "jp"},  # lower case on purpose: normalised to upper
    "location": {"latitude": 35.6895, "longitude": 139.6917, "accuracy_radius": 50},
}
ONLY_REGISTERED = {"registered_country": {"iso_code": "US"}}  # no city, no location, no country


def write_mmdb(path: Path, database_type: str, networks: dict[str, Any], ip_version: int = 6) -> Path:
    writer = MMDBWriter(ip_version=ip_version, database_type=database_type, languages=["en"],
                        description="watchfloor test", ipv4_compatible=ip_version == 6)
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture
def city_path(tmp_path: Path) -> Path:
    return write_mmdb(tmp_path / "GeoLite2-City.mmdb", "GeoLite2-City", {
        "81.2.69.0/24": LONDON,
        "2400:cb00::/32": TOKYO,
        "175.16.199.0/24": ONLY_REGISTERED,
    })


@pytest.fixture
def city(city_path: Path):
    with CityDatabase.open(city_path) as db:
        yield db


def test_ipv4_and_ipv6_lookups(city: CityDatabase) -> None:
    assert city.database_type == "GeoLite2-City"
    assert city.lookup("81.2.69.142") == CityInfo("GB", "London", 51.5142, -0.0931, 10)
    tokyo = city.lookup("2400:cb00::1")
    assert tokyo == CityInfo("JP", "Tokyo", 35.6895, 139.6917, 50)
    assert tokyo.has_coordinates
    # An IPv4-mapped IPv6 address is the IPv4 host.
    assert city.lookup("::ffff:81.2.69.7") == city.lookup("81.2.69.7") == CityInfo("GB", "London", 51.5142, -0.0931, 10)


def test_unknown_and_invalid_addresses_are_none(city: CityDatabase) -> None:
    assert city.lookup("8.8.8.8") is None
    assert city.lookup("2a02:26f0::1") is None
    assert city.lookup("not an ip") is None


def test_missing_keys_give_none_fields(city: CityDatabase) -> None:
    info = city.lookup("175.16.199.3")
    assert info == CityInfo(country="US")  # registered_country as the fallback, nothing else invented
    assert not info.has_coordinates


def test_private_and_special_addresses_are_none_without_a_lookup(city: CityDatabase, monkeypatch) -> None:
    asked: list[Any] = []
    real_get = city._reader.get
    monkeypatch.setattr(city, "_reader", type("Spy", (), {
        "get": staticmethod(lambda ip: asked.append(ip) or real_get(ip)), "close": lambda self: None})())
    for ip in ("10.1.2.3", "192.168.0.1", "127.0.0.1", "fd00::1", "::1", "100.64.0.1", "192.0.2.1",
               "::ffff:10.0.0.1"):
        assert city.lookup(ip) is None, ip
    assert asked == []
    assert city.lookup("81.2.69.1") is not None
    assert len(asked) == 1  # the spy does see real lookups


def test_results_are_cached_per_instance(city: CityDatabase) -> None:
    city.lookup("81.2.69.142")
    city.lookup("81.2.69.142")
    assert city.lookup.cache_info().hits == 1


def test_db_ip_layout_without_accuracy_radius(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "dbip-city-lite.mmdb", "DBIP-City-Lite", {
        "81.2.69.0/24": {"city": {"names": {"en": "Islington"}}, "country": {"iso_code": "GB"},
                         "location": {"latitude": 51.5465, "longitude": -0.10581}},
    })
    with CityDatabase.open(path) as db:
        assert db.lookup("81.2.69.1") == CityInfo("GB", "Islington", 51.5465, -0.10581, None)


def test_ipv6_address_in_an_ipv4_only_database_is_none(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "v4.mmdb", "GeoIP2-City", {"81.2.69.0/24": LONDON}, ip_version=4)
    with CityDatabase.open(path) as db:
        assert db.lookup("2400:cb00::1") is None
        assert db.lookup("81.2.69.1").city == "London"


def test_concurrent_readers(city: CityDatabase) -> None:
    errors: list[BaseException] = []
    results: list[CityInfo | None] = []

    def read() -> None:
        try:
            for i in range(200):
                results.append(city.lookup(f"81.2.69.{i % 250}"))
                results.append(city.lookup(f"2400:cb00::{i:x}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8 * 400
    assert {r.city for r in results} == {"London", "Tokyo"}


@pytest.mark.parametrize("database_type", ["GeoLite2-Country", "GeoLite2-ASN", "DBIP-Country-Lite"])
def test_wrong_database_type_is_refused(tmp_path: Path, database_type: str) -> None:
    path = write_mmdb(tmp_path / "other.mmdb", database_type,
                      {"81.2.69.0/24": {"country": {"iso_code": "GB"}}})
    with pytest.raises(CityDatabaseError, match="not a city database") as caught:
        CityDatabase.open(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    assert database_type in caught.value.reason


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "GeoLite2-City.mmdb"
    with pytest.raises(CityDatabaseError) as caught:
        CityDatabase.open(path)
    assert str(caught.value) == f"{path}: no such file"
    assert caught.value.reason == "no such file"


@pytest.mark.parametrize("content", [b"this is not an mmdb file\n" * 100, b""], ids=["garbage", "empty"])
def test_garbage_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "GeoLite2-City.mmdb"
    path.write_bytes(content)
    with pytest.raises(CityDatabaseError) as caught:
        CityDatabase.open(path)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CityDatabaseError, match="directory") as caught:
        CityDatabase.open(tmp_path)
    assert caught.value.path == str(tmp_path)
