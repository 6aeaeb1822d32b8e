"""A small real city database (``.mmdb``) for the tests that go through the pipeline, the store and the pages.

Written with mmdb-writer by ``write_mmdb`` of ``test_geoip_city.py`` (the reader's own tests), with the same
London and Tokyo records, plus records for special-purpose ranges that must never be used and a place with
coordinates but no city name.
"""
from __future__ import annotations

from pathlib import Path

from test_geoip_city import LONDON, ONLY_REGISTERED, TOKYO, write_mmdb

LONDON_IP = "81.2.69.142"        # embedded data: GB, ASN "Andrews & Arnold Ltd"
TOKYO_IP = "2400:cb00::1"         # embedded data: US; the city database says JP, Tokyo
REGISTERED_IP = "175.16.199.3"    # embedded data: CN; the city database has no location for it
UNNAMED_IP = "89.160.20.112"      # embedded data: SE; the city database has coordinates, no city name
LONDON_AT = (51.5142, -0.0931)
TOKYO_AT = (35.6895, 139.6917)
UNNAMED_AT = (58.4167, 15.6167)

# Located on purpose: a reader that forgot the special ranges would put these on the map.
NOWHERE = {"city": {"names": {"en": "Nowhere"}}, "country": {"iso_code": "AQ"},
           "location": {"latitude": -75.0, "longitude": 0.0, "accuracy_radius": 1000}}
SPECIAL_NETWORKS = ("10.0.0.0/8", "192.168.0.0/16", "100.64.0.0/10", "192.0.2.0/24", "fd00::/8")


def write_city_db(path: Path) -> Path:
    networks = {
        "81.2.69.0/24": LONDON,
        "2400:cb00::/32": TOKYO,
        "175.16.199.0/24": ONLY_REGISTERED,
        "89.160.20.0/24": {"country": {"iso_code": "SE"},
                           "location": {"latitude": UNNAMED_AT[0], "longitude": UNNAMED_AT[1]}},
    }
    networks.update({network: NOWHERE for network in SPECIAL_NETWORKS})
    return write_mmdb(path, "GeoLite2-City", networks)
