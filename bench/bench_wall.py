"""Benchmark: the wall's server-side refresh and the incident list at scale.

Fills a SQLite store (schema from ``store.schema``) directly and quickly:

* rollups for ``--events`` events over the last 24 h (default 10 M): every minute's events drawn
  over severity x site x source country with heavy-tailed weights, so the number of rollup rows
  per minute is what a busy floor really produces; then the coarse rollups the wall reads are
  built from them (``store.coarse_rollups.rebuild``, what an upgraded store does once);
* ``--incidents`` incidents (default 1 M) over 30 days: most older ones closed, recent ones open,
  each with its source address list (``sources``) as the correlator writes it; the incident search
  index is filled by its triggers as the rows go in;
* a tail of raw events (the wall reads only the newest event time from ``events``) plus one row
  of ``source_state`` per configured source.

Then it times, over ``--refreshes`` refreshes, everything the wall's callback does on the server
(``panels.wall.load_wall`` queries + ``render_wall`` figures + JSON serialisation as Dash does),
reports p50/p95 and the bytes of the serialised outputs, and times ``queries.incidents_page``
with a set of filters (p50/p95 each). Usage::

    .venv/bin/python bench/bench_wall.py                       # full size (takes a few minutes)
    .venv/bin/python bench/bench_wall.py --events 1000000 --incidents 100000 --refreshes 20
    .venv/bin/python bench/bench_wall.py --db /tmp/wall.db --reuse   # time again without refilling

``--reuse`` opens the file as the app does (``store.db.create_or_upgrade``), so a file filled by an
older version of this script is upgraded first (coarse rollups and search index built; timed).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from store import coarse_rollups, incident_search  # noqa: E402
from store.db import Store, create_or_upgrade  # noqa: E402

MINUTE = 60_000
DAY = 86_400_000
COUNTRIES = ["CN", "RU", "US", "VN", "IN", "NL", "IR", "BR", "DE", "KR", "ID", "HK", "SG", "UA", "RO", "TR", "FR",
             "GB", "NG", "KP", "TW", "JP", "PK", "BD", "TH", "MY", "PH", "EG", "ZA", "AR", "MX", "CA", "AU", "PL",
             "IT", "ES", "SE", "CZ", "BG", "KZ"]
SEVERITY_WEIGHTS = np.array([0.30, 0.35, 0.20, 0.10, 0.05])  # info, low, medium, high, critical
SIGNATURES = ["ET SCAN Potential SSH Scan", "ET SCAN Suspicious inbound to MSSQL port 1433",
              "ET EXPLOIT Apache log4j RCE Attempt (CVE-2021-44228)", "ET POLICY RDP connection attempt",
              "ET SCADA Modbus Write Multiple Registers from external host", "ET SCADA DNP3 Cold Restart request",
              "ET EXPLOIT Fortinet FortiOS SSL VPN Path Traversal (CVE-2018-13379)", "ET SCAN Nmap User-Agent"]
STATUSES = ["new", "acknowledged", "investigating", "resolved", "false_positive"]


def _address(i: int) -> str:
    """The source address of the ``i``-th generated incident."""
    return f"{(i * 7919) % 223 + 1}.{(i * 104729) % 256}.{(i * 31) % 256}.{i % 254 + 1}"


def _zipf_weights(n: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def fill(db: Path, config, events_24h: int, incidents: int, now_ms: int, seed: int = 7) -> dict:
    """Create the store at ``db`` and fill it; returns counts."""
    rng = np.random.default_rng(seed)
    store = Store(f"sqlite:///{db}")
    create_or_upgrade(store.writer)
    sites = [(s.id, s.sector) for s in config.inventory.sites]
    countries = COUNTRIES + [""]  # '' = unknown origin (internal, no GeoIP)
    country_w = np.concatenate([_zipf_weights(len(COUNTRIES)) * 0.9, [0.1]])
    site_w = _zipf_weights(len(sites), 0.8)
    combo_w = (SEVERITY_WEIGHTS[:, None, None] * site_w[None, :, None] * country_w[None, None, :]).ravel()
    n_sites, n_c = len(sites), len(countries)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    last_minute = now_ms - now_ms % MINUTE
    per_minute = events_24h / 1440
    rows = 0
    t0 = time.time()
    for m in range(1440):
        minute = last_minute - (1439 - m) * MINUTE
        counts = rng.multinomial(int(rng.poisson(per_minute)), combo_w)
        nz = np.flatnonzero(counts)
        sev, rest = np.divmod(nz, n_sites * n_c)
        site_i, c_i = np.divmod(rest, n_c)
        con.executemany(
            "INSERT INTO rollups (minute, severity, site, sector, src_country, events) VALUES (?,?,?,?,?,?)",
            ((minute, int(s), sites[i][0], sites[i][1], countries[c], int(n))
             for s, i, c, n in zip(sev, site_i, c_i, counts[nz])),
        )
        rows += len(nz)
    con.commit()
    t_roll = time.time() - t0
    t0 = time.time()
    with store.writer.begin() as conn:
        coarse_rollups.rebuild(conn)
    t_coarse = time.time() - t0
    # incidents: 30 days; older than 7 days mostly closed
    t0 = time.time()
    batch = []
    sev_levels = rng.choice(5, size=incidents, p=SEVERITY_WEIGHTS)
    ages = (rng.power(0.35, size=incidents) * 30 * DAY).astype(np.int64)  # skewed to recent
    site_idx = rng.choice(n_sites, size=incidents, p=site_w)
    c_idx = rng.choice(len(COUNTRIES), size=incidents, p=_zipf_weights(len(COUNTRIES)))
    sig_idx = rng.integers(0, len(SIGNATURES), size=incidents)
    rnd = rng.random(incidents)
    insert = ("INSERT INTO incidents (id, group_key, title, signature, src_ip, sources, src_country, site, sector,"
              " first_seen, last_seen, event_count, severity, score, status, assignee, updated_at) VALUES"
              " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    for i in range(incidents):
        last = now_ms - int(ages[i])
        first = last - int(rnd[i] * 3_600_000)
        if ages[i] > 7 * DAY:
            status = "new" if rnd[i] < 0.05 else ("resolved" if rnd[i] < 0.8 else "false_positive")
        else:
            status = STATUSES[int(rnd[i] * 10) % 5] if rnd[i] < 0.5 else "new"
        ip = _address(i)
        sig = SIGNATURES[sig_idx[i]]
        site, sector = sites[site_idx[i]]
        batch.append((i + 1, f"k{i}", sig, sig, ip, f'["{ip}"]', COUNTRIES[c_idx[i]], site, sector, first, last,
                      int(1 + rnd[i] * 40), int(sev_levels[i]), int(20 * sev_levels[i] + rnd[i] * 19), status,
                      "analyst" if status in ("acknowledged", "investigating") else None, last))
        if len(batch) >= 20_000:
            con.executemany(insert, batch)
            batch.clear()
    if batch:
        con.executemany(insert, batch)
    con.commit()
    t_inc = time.time() - t0
    # a tail of raw events (the wall only reads max(ts), per sensor too) and source state
    sensors = [s.id for s in config.sources if s.enabled]
    ev = [(now_ms - k * 50, sensors[k % len(sensors)] if sensors else "sensor", "alert", 0, 0, "{}", f"h{k}", now_ms)
          for k in range(20_000)]
    con.executemany("INSERT INTO events (ts, sensor, kind, severity, score, raw, content_hash, ingested_at)"
                    " VALUES (?,?,?,?,?,?,?,?)", ev)
    for s in config.sources:
        con.execute("INSERT OR REPLACE INTO source_state (source_id, last_attempt_at, last_success_at, last_outcome,"
                    " consecutive_failures, newest_record_at) VALUES (?,?,?,?,?,?)",
                    (s.id, now_ms - 5_000, now_ms - 5_000, "ok", 0, now_ms - 1_000))
    con.commit()
    con.execute("ANALYZE")
    con.close()
    store.dispose()
    return {"rollup_rows": rows, "rollups_s": round(t_roll, 1), "coarse_rebuild_s": round(t_coarse, 1),
            "incidents_s": round(t_inc, 1)}


def time_wall(ctx, now: int, refreshes: int, label: str, gc_freeze: bool = False) -> tuple[dict[str, list[float]], int]:
    """One refresh = all the wall's queries + its figures + JSON, as the callback does it.
    ``gc_freeze``: after the warm-up, move every object alive to the permanent generation
    (``gc.freeze()``, what a server can do once started), so full collections stop walking them."""
    from plotly.io.json import to_json_plotly

    from panels import wall
    from store import queries

    stages: dict[str, list[float]] = {"queries": [], "render": [], "json": [], "total": [], "total CPU": []}
    per_query: dict[str, list[float]] = {}
    size = 0
    for i in range(refreshes + 2):
        t_now = now + i * 10_000
        c0 = time.process_time()
        t0 = time.perf_counter()
        data = wall.load_wall(ctx, t_now)
        t1 = time.perf_counter()
        out = wall.render_wall(data, ctx.config, ctx.tz)
        t2 = time.perf_counter()
        payload = to_json_plotly([out[k] for k in wall._OUTPUT_IDS])
        t3 = time.perf_counter()
        c3 = time.process_time()
        if i < 2:
            if i == 1 and gc_freeze:
                gc.freeze()
            continue  # warm-up: first-use costs (centroid table, pycountry)
        size = len(payload.encode())
        for name, value in (("queries", t1 - t0), ("render", t2 - t1), ("json", t3 - t2), ("total", t3 - t0),
                            ("total CPU", c3 - c0)):
            stages[name].append(value * 1000)
    store, config = ctx.store, ctx.config
    for name, fn in (("wall_kpis", lambda: queries.wall_kpis(store, now)),
                     ("timeline_24h", lambda: queries.timeline_24h(store, now)),
                     ("attack_map", lambda: queries.attack_map(store, config.inventory, now)),
                     ("recent_incidents", lambda: queries.recent_incidents(store)),
                     ("source_health", lambda: queries.source_health(store, config, now))):
        for _ in range(max(5, refreshes // 3)):
            t0 = time.perf_counter()
            fn()
            per_query.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
    print(f"\nwall refresh, server side, {refreshes} refreshes (ms), {label}:")
    for name, values in stages.items():
        print(f"  {name:10s} p50 {statistics.median(values):8.1f}   p95 {pct(values, 0.95):8.1f}")
    print(f"  serialised outputs: {size:,} bytes")
    print("  per query (ms):")
    for name, values in per_query.items():
        print(f"    {name:18s} p50 {statistics.median(values):8.1f}   p95 {pct(values, 0.95):8.1f}")
    return stages, size


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def machine() -> str:
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"{platform.platform()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"{os.cpu_count()} CPUs ({cpu}), load {tuple(round(x, 2) for x in load)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the last 24 h (as rollups)")
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--refreshes", type=int, default=30)
    parser.add_argument("--db", type=Path, help="store file (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="time an existing --db without refilling it")
    parser.add_argument("--config", type=Path, default=ROOT / "config")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() after the wall's warm-up (a server could do it after start-up)")
    args = parser.parse_args()

    from panels import theme
    from panels.context import AppContext
    from settings.loader import load_config
    from store import queries

    config = load_config(args.config)
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="wf-bench-")
        args.db = Path(tmp.name) / "watchfloor.db"
    now = 1_800_000_000_000
    if not args.reuse:
        if args.db.exists():
            args.db.unlink()
        t = time.time()
        info = fill(args.db, config, args.events, args.incidents, now)
        print(f"filled {args.db} in {time.time() - t:.0f} s: {info}", flush=True)
    store = Store(f"sqlite:///{args.db}")
    t = time.time()
    create_or_upgrade(store.writer)  # what the app does when it opens the store
    print(f"opened (create_or_upgrade) in {time.time() - t:.1f} s", flush=True)
    theme.register_template()
    print(machine())
    with store.reader.connect() as conn:
        counts = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                  for t in ("rollups", "rollups_severity", "rollups_pairs", "incidents")}
        represented = conn.exec_driver_sql("SELECT sum(events) FROM rollups").scalar()
    print(f"store: {represented:,} events in rollups ({counts['rollups']:,} rollup rows; coarse: "
          f"{counts['rollups_severity']:,} minute x severity, {counts['rollups_pairs']:,} country x site blocks), "
          f"{counts['incidents']:,} incidents, {args.db.stat().st_size / 1e6:.0f} MB")

    ctx = AppContext(store, config, args.db.parent, clock=lambda: now)
    stages, size = time_wall(ctx, now, args.refreshes, "coarse rollups (store.coarse_rollups)"
                             + (", gc.freeze() after warm-up" if args.gc_freeze else ""), args.gc_freeze)
    summary = {"wall_total_p95_ms": round(pct(stages["total"], 0.95), 1),
               "wall_cpu_p95_ms": round(pct(stages["total CPU"], 0.95), 1), "wall_bytes": size}

    site = config.inventory.sites[0].id if config.inventory.sites else None
    cases = {
        "no filter (newest first)": queries.IncidentFilters(),
        "status open": queries.IncidentFilters(status=queries.OPEN_STATUSES),
        "severity critical, open": queries.IncidentFilters(severity=("critical",), status=queries.OPEN_STATUSES),
        "site": queries.IncidentFilters(site=site),
        "sector water": queries.IncidentFilters(sector="water"),
        "country KP": queries.IncidentFilters(country="KP"),
        "last 24 h": queries.IncidentFilters(since_ms=now - DAY),
        "text 'log4j'": queries.IncidentFilters(text="log4j"),
        "text, no match": queries.IncidentFilters(text="no-such-thing"),
        "text, one address": queries.IncidentFilters(text=_address(9_999)),
        "text '.17.' (~8 k match)": queries.IncidentFilters(text=".17."),
        "text '203.' (~12 k match)": queries.IncidentFilters(text="203."),
        "text 'zq' (2 chars: scan)": queries.IncidentFilters(text="zq"),
        "site + critical + 7 d": queries.IncidentFilters(site=site, severity=("critical",), since_ms=now - 7 * DAY),
    }
    sorted_cases = {"open, most severe first": queries.IncidentFilters(status=queries.OPEN_STATUSES),
                    "site, most severe first": queries.IncidentFilters(site=site)}
    print(f"\nincident list, {counts['incidents']:,} incidents, page of 50 + capped count (ms):")
    worst = []
    for label, flt in [*cases.items(), *sorted_cases.items()]:
        times = []
        order = "-severity" if label in sorted_cases else "-last_seen"
        for _ in range(7):
            t0 = time.perf_counter()
            page = queries.incidents_page(store, flt, sort=order)
            times.append((time.perf_counter() - t0) * 1000)
        times = times[1:]
        worst.append(pct(times, 0.95))
        total = f"{page.total:,}{'+' if page.total_capped else ''}"
        print(f"  {label:26s} p50 {statistics.median(times):8.1f}   p95 {pct(times, 0.95):8.1f}   ({total} match)")
    text_cases = [label for label in cases if label.startswith("text")]
    print("  the same text searches with the trigram index off (the LIKE scan alone):")
    saved = incident_search.MAX_CANDIDATES
    incident_search.MAX_CANDIDATES = -1
    for label in text_cases:
        times = []
        for _ in range(4):
            t0 = time.perf_counter()
            page = queries.incidents_page(store, cases[label])
            times.append((time.perf_counter() - t0) * 1000)
        times = times[1:]
        print(f"  {label:26s} p50 {statistics.median(times):8.1f}   max {max(times):8.1f}")
    incident_search.MAX_CANDIDATES = saved
    t0 = time.perf_counter()
    queries.incidents_page(store, queries.IncidentFilters(status=("new",)), page=150)
    print(f"  deep page (150, status new): {(time.perf_counter() - t0) * 1000:.1f} ms")
    summary["incidents_worst_p95_ms"] = round(max(worst), 1)
    print(json.dumps(summary))
    store.dispose()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
