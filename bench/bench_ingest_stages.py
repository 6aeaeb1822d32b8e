"""Where the pipeline's time goes: CPU per event for each stage of a batch, best of a few repeats.

    .venv/bin/python bench/bench_ingest_stages.py [N] [--sources 3000] [--batch 5000] [--repeats 3]

Same workload and batching as ``bench_ingest.py`` (GC paused per batch, wall-clock ingest time).
Each stage is timed with ``time.process_time`` by wrapping the store functions the pipeline calls;
"enrich" and "correlate" are the Python left of ``EventPipeline._ingest`` and ``Correlator.assign``
once their SQL is taken out. The minimum over repeats is reported: on a shared machine other jobs
only ever add time. The wrappers cost a few microseconds per batch, not per event.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_ingest  # noqa: E402

import pipeline.correlate as correlate  # noqa: E402
import pipeline.ingest as ingest  # noqa: E402
from collectors.sensors.suricata_eve import make_parser  # noqa: E402
from settings.loader import load_config  # noqa: E402
from store import events_write  # noqa: E402
from store.db import Store  # noqa: E402
from store.records import Event, Indicator  # noqa: E402
from store.writes import upsert_indicators  # noqa: E402

SQL = ("newest_event_ts", "existing_keys", "insert_event_rows", "upsert_rollups", "load_incident_heads",
       "load_incidents", "insert_incident_rows", "update_incident_rows")
CORRELATE_SQL = ("load_incident_heads", "load_incidents", "insert_incident_rows", "update_incident_rows")
spent: dict[str, float] = defaultdict(float)


def _timed(owner: object, name: str, label: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started

    setattr(owner, name, wrapper)


for _name in SQL:
    _timed(events_write, _name, _name)
_timed(correlate.Correlator, "assign", "correlate (all)")
_timed(ingest.EventPipeline, "_ingest", "ingest (all)")


def run(n: int, sources: int, batch: int) -> dict[str, float]:
    config = load_config(ROOT / "config")
    lines, addresses = bench_ingest.generate(n, config, n_sources=sources)
    now = 1_795_300_000_000
    folder = tempfile.mkdtemp(prefix="wf-bench-stages-")
    try:
        store = Store.open(Path(folder))
        rng = random.Random(3)
        listed = [Indicator("ipv4", ip, "bench-feed", confidence=80) for ip in rng.sample(addresses, len(addresses) // 50)]
        filler = [Indicator("ipv4", f"203.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", "bench-feed", confidence=60)
                  for i in range(20_000 - len(listed))]
        with store.writer.begin() as conn:
            upsert_indicators(conn, "bench-feed", listed + filler, run_id=1, now=now, ttl_ms=None, detect=True)
        pipeline = ingest.EventPipeline(config, store)
        with store.writer.begin() as conn:
            pipeline.refresh(conn, now, force=True)
        pipeline.geoip.lookup("8.8.8.8")
        parser = make_parser("bench-eve")
        spent.clear()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for start in range(0, n, batch):
            with ingest.gc_paused():
                t = time.process_time()
                chunk = [r for r in map(parser, lines[start:start + batch]) if isinstance(r, Event)]
                spent["parse"] += time.process_time() - t
                t = time.process_time()
                transaction = store.writer.begin()
                conn = transaction.__enter__()
                spent["begin"] += time.process_time() - t
                pipeline.ingest(conn, chunk, now + int((time.perf_counter() - wall0) * 1000))
                t = time.process_time()
                transaction.__exit__(None, None, None)
                spent["commit + close"] += time.process_time() - t
        spent["total"] = time.process_time() - cpu0
        store.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = dict(spent)
    result["correlate (Python)"] = result["correlate (all)"] - sum(result.get(k, 0.0) for k in CORRELATE_SQL)
    result["enrich, score, rows (Python)"] = (result["ingest (all)"] - result["correlate (all)"]
                                              - sum(result.get(k, 0.0) for k in SQL if k not in CORRELATE_SQL))
    return result


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("n", nargs="?", type=int, default=100_000)
    args.add_argument("--sources", type=int, default=3000)
    args.add_argument("--batch", type=int, default=5000)
    args.add_argument("--repeats", type=int, default=3)
    opts = args.parse_args()
    print(json.dumps(bench_ingest.machine()))
    best: dict[str, float] = {}
    for _ in range(opts.repeats):
        for key, value in run(opts.n, opts.sources, opts.batch).items():
            best[key] = min(best.get(key, float("inf")), value)
    print(f"{opts.n:,} events, {opts.sources:,} sources, batches of {opts.batch:,}: best of {opts.repeats}, "
          f"{opts.n / best['total']:,.0f} events per CPU-second")
    for key, value in sorted(best.items(), key=lambda kv: -kv[1]):
        if key not in ("ingest (all)", "correlate (all)"):
            print(f"  {key:32s} {value / opts.n * 1e6:6.1f} µs/event")


if __name__ == "__main__":
    main()
