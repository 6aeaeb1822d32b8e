"""The demo writes real EVE lines and a real plain-list blocklist that the real parsers accept."""
from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from pathlib import Path

from collectors.demo import DemoWriter
from collectors.formats import lines
from collectors.sensors.suricata_eve import make_parser
from pipeline.geoip import GeoIP
from settings.loader import load_config
from store.records import Event, Indicator

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 6, 0, tzinfo=timezone.utc)


def demo_config(backfill: str = "2h"):
    config = load_config(ROOT / "config")
    demo = config.settings.demo.model_copy(update={"backfill": timedelta(hours=int(backfill[:-1]))})
    config.settings = config.settings.model_copy(update={"demo": demo})
    return config


def test_demo_lines_are_real_eve_alerts_against_our_sites(tmp_path: Path) -> None:
    config = demo_config()
    writer = DemoWriter(config, tmp_path, seed=7)
    written = writer.tick(NOW)
    eve = tmp_path / "demo" / "eve.json"
    parse = make_parser("demo-sensor")
    events = [parse(line.rstrip("\n")) for line in eve.read_text().splitlines()]
    assert len(events) == written > 2 * 60 * config.settings.demo.events_per_minute / 2
    assert all(isinstance(e, Event) and e.kind == "alert" for e in events)
    # A day of history, none of it in the future.
    assert min(e.ts for e in events) >= NOW - config.settings.demo.backfill
    assert max(e.ts for e in events) <= NOW
    networks = [ipaddress.ip_network(n) for s in config.inventory.sites for z in s.zones for n in z.networks]
    assert all(any(ipaddress.ip_address(e.dst_ip) in net for net in networks) for e in events)
    countries = {GeoIP().lookup(e.src_ip).country for e in events[:500]}
    assert len(countries - {None}) >= 8, "attackers come from many countries"
    assert {e.ics_function for e in events} >= {"write_multiple_registers", "cold_restart"}


def test_next_tick_appends_only_the_new_interval(tmp_path: Path) -> None:
    config = demo_config()
    writer = DemoWriter(config, tmp_path, seed=7)
    writer.tick(NOW)
    size = (tmp_path / "demo" / "eve.json").stat().st_size
    added = writer.tick(NOW + timedelta(minutes=2))
    rate = config.settings.demo.events_per_minute
    assert rate < added < 3 * rate
    assert (tmp_path / "demo" / "eve.json").stat().st_size > size


def test_demo_blocklist_goes_through_the_plain_list_parser(tmp_path: Path) -> None:
    config = demo_config()
    writer = DemoWriter(config, tmp_path, seed=7)
    writer.write_blocklist()
    source = config.source("demo-blocklist")
    with (tmp_path / "demo" / "blocklist.txt").open("rb") as handle:
        records = list(lines.parse(handle, source, lines.Options.model_validate(source.options)))
    listed = {a.ip for a in writer.attackers if a.blocklisted}
    assert listed and {r.value for r in records if isinstance(r, Indicator)} == listed


def test_demo_kev_catalogue_gives_known_exploited_findings_on_the_example_inventory(tmp_path: Path) -> None:
    from collectors.formats import kev
    from pipeline.exposure_findings import recompute_exposures
    from store.db import Store
    from store.records import Advisory
    from store.writes import upsert_advisories

    config = demo_config()
    writer = DemoWriter(config, tmp_path, seed=7)
    writer.tick(NOW)                                     # the first tick writes the catalogue too
    source = config.source("demo-kev")
    with (tmp_path / "demo" / "kev.json").open("rb") as handle:
        records = [r for r in kev.parse(handle, source, kev.Options()) if isinstance(r, Advisory)]
    assert len(records) == 5 and all(r.known_exploited for r in records)
    store = Store.open(tmp_path / "data")
    with store.writer.begin() as conn:
        upsert_advisories(conn, source.id, records, run_id=1)
    counts = recompute_exposures(store, config.inventory, int(NOW.timestamp() * 1000))
    from store import queries

    findings = queries.exposure_findings(store)
    assert counts.new == len(findings) == 5
    assert set(zip(findings["asset_id"], findings["cve"])) == {
        ("set-fix-gw", "CVE-2023-46805"), ("set-fix-gw", "CVE-2024-21887"), ("sir-portal", "CVE-2023-4966"),
        ("brk-vpn", "CVE-2022-42475"), ("bkk-fids-web", "CVE-2021-41773")}
    assert findings["known_exploited"].all()
