"""Ingest throughput: bare parse, bare insert, and the full pipeline, on synthetic Suricata EVE lines.

    .venv/bin/python bench/bench_ingest.py [N] [--batch 5000] [--indicators 20000] [--repeats 1]

Generates N EVE lines (80 % alerts, the rest modbus/dns/flow/tls) from ~3,000 external sources to the
sites in ``config/assets.yaml``, then times, each in a fresh SQLite store in a temporary folder:

* parse         ``collectors.sensors.suricata_eve.make_parser`` over the lines
* bare insert   the parsed events as plain rows in ``events_write.EVENT_COLUMNS`` order (time, identity
                hash and ``extra`` JSON as the pipeline makes them; no enrichment, score or incident),
                through the pipeline's own executemany, one transaction per batch, same table and indexes
* pipeline      parse + ``EventPipeline.ingest`` per batch (dedupe, GeoIP, assets, indicators
                (``--indicators`` active, 2 % of sources listed), ATT&CK, score, incidents, rollups)

Every phase runs batch by batch with the cyclic GC paused per batch, as ``collectors.sensor_runner``
does, and the pipeline's clock runs at wall-clock pace (it sets how often indicator and advisory
changes are checked). Prints events/s for each plus the ratio pipeline / (parse + bare insert),
wall and CPU, with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402

from collectors.sensors.suricata_eve import make_parser  # noqa: E402
from pipeline.encode import to_json  # noqa: E402
from pipeline.ingest import EventPipeline, gc_paused  # noqa: E402
from settings.loader import load_config  # noqa: E402
from store.db import Store, to_ms  # noqa: E402
from store.events_write import EVENT_COLUMNS, insert_event_rows  # noqa: E402
from store.records import Event, Indicator, content_hash  # noqa: E402
from store.writes import upsert_indicators  # noqa: E402

SIGNATURES = [
    (2013000, "ET SCAN Suspicious inbound to Modbus port 502", "Detection of a Network Scan", 2),
    (2010935, "ET SCAN Suspicious inbound to MSSQL port 1433", "Potentially Bad Traffic", 2),
    (2001219, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2),
    (2024897, "ET POLICY Modbus TCP Write Single Coil", "Potential Corporate Privacy Violation", 1),
    (2404000, "ET CNC Feodo Tracker Reported CnC Server group 1", "A Network Trojan was detected", 1),
    (2522000, "ET TOR Known Tor Exit Node Traffic group 1", "Misc Attack", 2),
    (2034647, "ET EXPLOIT Apache HTTP Server 2.4.49 Path Traversal (CVE-2021-41773)", "Attempted Administrator Privilege Gain", 1),
    (2038393, "ET EXPLOIT Fortinet FortiOS Auth Bypass (CVE-2022-40684)", "Attempted Administrator Privilege Gain", 1),
    (2019284, "ET SCAN NMAP OS Detection Probe", "Attempted Information Leak", 3),
    (2023753, "ET SCAN MS Terminal Server Traffic on Non-standard Port", "Attempted Information Leak", 3),
    (2008578, "ET SCAN Sipvicious Scan", "Attempted Information Leak", 3),
    (2210045, "SURICATA STREAM Packet with invalid ack", "Generic Protocol Command Decode", 3),
    (2402000, "ET DROP Dshield Block Listed Source group 1", "Misc Attack", 2),
    (2100498, "GPL ATTACK_RESPONSE id check returned root", "Potentially Bad Traffic", 2),
    (2016683, "ET WEB_SERVER SQL Injection Attempt", "Web Application Attack", 1),
    (2027865, "ET INFO Observed DNS Query to .cloud TLD", "Potentially Bad Traffic", 3),
]

# A few noisy rules make most alerts on a real sensor.
SIGNATURE_WEIGHTS = [1 / (rank + 1) for rank in range(len(SIGNATURES))]


def targets(config) -> list[str]:
    import ipaddress

    found = []
    for site in config.inventory.sites:
        found += [asset.ip for asset in site.assets if asset.ip]
        for zone in site.zones:
            for text in zone.networks:
                net = ipaddress.ip_network(text)
                found += [str(net.network_address + 1 + i * 7) for i in range(8) if net.num_addresses > 64]
    return found


def generate(n: int, config, seed: int = 7, n_sources: int = 3000) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    sources = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
               for _ in range(n_sources)]
    dsts = targets(config)
    # Attack traffic is skewed: a few scanners and targets account for most events (Zipf-like weights).
    src_weights = [1 / (rank + 1) for rank in range(len(sources))]
    dst_weights = [1 / (rank + 1) ** 0.5 for rank in range(len(dsts))]
    src_pick = rng.choices(sources, src_weights, k=n)
    dst_pick = rng.choices(dsts, dst_weights, k=n)
    start = datetime(2026, 11, 22, tzinfo=timezone.utc)
    lines = []
    for i in range(n):
        ts = (start + timedelta(milliseconds=i * 20)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"
        src, dst = src_pick[i], dst_pick[i]
        base = {"timestamp": ts, "flow_id": 1000000 + i, "in_iface": "eth0", "src_ip": src,
                "src_port": rng.randint(1024, 65535), "dest_ip": dst, "dest_port": rng.choice([22, 80, 443, 502, 20000, 102, 1433]),
                "proto": "TCP", "community_id": f"1:{i:020d}="}
        roll = rng.random()
        if roll < 0.8:
            sid, sig, cat, sev = rng.choices(SIGNATURES, SIGNATURE_WEIGHTS)[0]
            base.update(event_type="alert", app_proto="http" if sev == 1 else "failed",
                        alert={"action": "allowed", "gid": 1, "signature_id": sid, "rev": 3, "signature": sig,
                               "category": cat, "severity": sev},
                        flow={"pkts_toserver": 3, "pkts_toclient": 2, "bytes_toserver": 220, "bytes_toclient": 140,
                              "start": ts},
                        payload_printable="GET / HTTP/1.1", stream=0, host="sensor-1")
        elif roll < 0.87:
            base.update(event_type="modbus", app_proto="modbus", dest_port=502,
                        modbus={"id": i, "request": {"transaction_id": i % 65536, "protocol_id": 0, "unit_id": 1,
                                                     "function_raw": rng.choice([3, 3, 3, 6, 16, 5]),
                                                     "function_code": "RdHoldRegs", "access_type": "READ | HOLDING"}})
        elif roll < 0.94:
            base.update(event_type="dns", proto="UDP", dest_port=53,
                        dns={"type": "query", "id": i % 65536, "rrname": f"host{rng.randint(0, 5000)}.example.com",
                             "rrtype": "A", "tx_id": 0})
        elif roll < 0.97:
            base.update(event_type="tls", app_proto="tls",
                        tls={"sni": f"cdn{rng.randint(0, 300)}.example.net", "version": "TLS 1.2",
                             "ja3": {"hash": f"{rng.getrandbits(128):032x}"}})
        else:
            base.update(event_type="flow", app_proto="failed",
                        flow={"pkts_toserver": 5, "pkts_toclient": 4, "bytes_toserver": 400, "bytes_toclient": 300,
                              "start": ts, "end": ts, "age": 0, "state": "closed", "reason": "timeout", "alerted": False})
        lines.append(json.dumps(base, separators=(",", ":")))
    return lines, sources


def parse(lines: list[str], batch: int = 5000) -> list[Event]:
    """Parse batch by batch with the cyclic GC paused per batch, as ``collectors.sensor_runner`` does."""
    parser = make_parser("bench-eve")
    out = []
    for start in range(0, len(lines), batch):
        with gc_paused():
            for line in lines[start:start + batch]:
                record = parser(line)
                if isinstance(record, Event):
                    out.append(record)
    return out


def bare_row(event: Event, now: int) -> tuple:
    """The event as a plain ``events`` row in ``EVENT_COLUMNS`` order: no enrichment, no score, no incident.

    Built the way the pipeline builds its rows (same identity hash, same JSON encoder), so that the
    difference between "bare" and "pipeline" is the enrichment, scoring, correlation and rollups.
    """
    return (
        to_ms(event.ts), event.sensor, event.kind, event.src_ip, event.src_port, event.dst_ip, event.dst_port,
        event.proto, event.app_proto, event.signature_id, event.signature, event.category,
        int(event.sensor_severity) if event.sensor_severity is not None else None, 0, 0, None, event.action,
        event.domain, event.url, event.file_hash, event.ja3, event.ics_function,
        *(None,) * 18,  # site … dst_country (src_city/lat/lon included), indicator_ids, techniques, incident_id
        to_json(event.extra), event.raw, content_hash(event.sensor, event.raw), now,
    )


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__, "msgspec": installed("msgspec"),
            "orjson": installed("orjson"), "platform": platform.platform(), "load_avg": os.getloadavg()}


def timed(results: dict, name: str, started: tuple[float, float]) -> None:
    results[f"{name}_s"] = time.perf_counter() - started[0]
    results[f"{name}_cpu_s"] = time.process_time() - started[1]


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run(n: int, batch: int, n_indicators: int, n_sources: int) -> dict:
    config = load_config(ROOT / "config")
    lines, sources = generate(n, config, n_sources=n_sources)
    now = 1_795_300_000_000
    results: dict[str, float] = {}

    t = clocks()
    parsed = parse(lines, batch)
    timed(results, "parse", t)
    assert len(parsed) == n, (len(parsed), n)
    assert len(bare_row(parsed[0], now)) == len(EVENT_COLUMNS)

    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder))
        t = clocks()
        for start in range(0, n, batch):
            with gc_paused(), store.writer.begin() as conn:
                rows = [bare_row(e, now) for e in parsed[start:start + batch]]
                insert_event_rows(conn, rows)  # the pipeline's own executemany path, without enrichment
        timed(results, "bare_insert", t)
        store.dispose()
    del parsed

    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder))
        rng = random.Random(3)
        listed = [Indicator("ipv4", ip, "bench-feed", confidence=80) for ip in rng.sample(sources, len(sources) // 50)]
        filler = [Indicator("ipv4", f"203.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", "bench-feed", confidence=60)
                  for i in range(max(0, n_indicators - len(listed)))]
        with store.writer.begin() as conn:
            upsert_indicators(conn, "bench-feed", listed + filler, run_id=1, now=now, ttl_ms=None, detect=True)
        pipeline = EventPipeline(config, store)
        with store.writer.begin() as conn:
            pipeline.refresh(conn, now, force=True)   # index build and GeoIP load are not per-event costs
        pipeline.geoip.lookup("8.8.8.8")
        t = clocks()
        parser = make_parser("bench-eve")
        accepted = incidents = 0
        for start in range(0, n, batch):
            with gc_paused():  # parse + ingest of one batch, as collectors.sensor_runner runs it
                chunk = [r for r in (parser(line) for line in lines[start:start + batch]) if isinstance(r, Event)]
                # The ingest clock runs at wall-clock pace, as in the collector: it sets how often the
                # pipeline checks the indicator and advisory tables for changes (every 10 s / 60 s).
                with store.writer.begin() as conn:
                    result = pipeline.ingest(conn, chunk, now + int((time.perf_counter() - t[0]) * 1000))
            accepted += result.accepted
            incidents += result.incidents_new
        timed(results, "pipeline", t)
        results["incidents"] = incidents
        assert accepted == n
        store.dispose()
    return results


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("n", nargs="?", type=int, default=200_000)
    args.add_argument("--batch", type=int, default=5000)
    args.add_argument("--indicators", type=int, default=20_000)
    args.add_argument("--repeats", type=int, default=1)
    args.add_argument("--sources", type=int, default=3000, help="distinct attacking addresses (Zipf-weighted)")
    opts = args.parse_args()
    print(json.dumps(machine()))
    for repeat in range(opts.repeats):
        r = run(opts.n, opts.batch, opts.indicators, opts.sources)
        n = opts.n
        parse_rate, insert_rate, pipe_rate = n / r["parse_s"], n / r["bare_insert_s"], n / r["pipeline_s"]
        bare = r["parse_s"] + r["bare_insert_s"]
        bare_cpu = r["parse_cpu_s"] + r["bare_insert_cpu_s"]
        print(json.dumps({
            "repeat": repeat + 1, "events": n, "batch": opts.batch, "indicators": opts.indicators,
            "sources": opts.sources,
            "parse_eps": round(parse_rate), "bare_insert_eps": round(insert_rate),
            "parse_plus_insert_eps": round(n / bare), "pipeline_eps": round(pipe_rate),
            "pipeline_over_bare": round(r["pipeline_s"] / bare, 2),
            "pipeline_eps_per_cpu_s": round(n / r["pipeline_cpu_s"]),
            "pipeline_over_bare_cpu": round(r["pipeline_cpu_s"] / bare_cpu, 2),
            "cpu_over_wall": round(r["pipeline_cpu_s"] / r["pipeline_s"], 2), "incidents": r["incidents"],
        }))


if __name__ == "__main__":
    main()
