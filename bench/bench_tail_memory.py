"""Tailing memory: peak RSS and lines/s while a large EVE file is followed, parsed and stored.

Generates a Suricata EVE file of the given size (streamed to disk, never held), then measures, each
in a fresh process so every peak RSS is its own:

* ``tail``   the tailer alone (``collectors.tailer``: discovery, identity, bounded batches)
* ``parse``  tailer + the ``suricata-eve`` line parser
* ``store``  ``run_sensor`` end to end: tailer + parser + ``EventPipeline`` + SQLite, run after run
             until the file is read, as the scheduler would (slow: the pipeline sets the pace)

Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``; "baseline" is the RSS after imports and
setup, before the first line is read, so the difference is what reading the file costs.

    .venv/bin/python bench/bench_tail_memory.py 1GB            # all three modes
    .venv/bin/python bench/bench_tail_memory.py 200MB --modes tail,parse
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from settings.base import parse_size  # noqa: E402

DEFAULT_SIZE = "1GB"
MODES = ("tail", "parse", "store")
T0 = datetime(2026, 11, 22, 0, 0, tzinfo=timezone.utc)
STATS_EVERY = 20_000          # a 30 KB stats record now and then, as Suricata writes them
SOURCE_ID = "bench-eve"
SIGNATURES = [
    (2001219, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2, 22),
    (2024364, "ET SCAN Possible Nmap User-Agent Observed", "Web Application Attack", 1, 80),
    (2034647, "ET EXPLOIT Apache log4j RCE Attempt (CVE-2021-44228)", "Attempted Administrator Privilege Gain", 1, 8080),
    (2027865, "ET POLICY RDP connection attempt from external network", "Misc activity", 3, 3389),
    (9100001, "ET SCADA Modbus Write Multiple Registers from external host", "Attempted Administrator Privilege Gain", 1, 502),
]


# -- the file ----------------------------------------------------------------------------------------


def generate(path: Path, size: int, seed: int = 7) -> int:
    """Write EVE lines until ``size`` bytes; returns the number of lines."""
    rng = random.Random(seed)
    stats = json.dumps({"timestamp": T0.isoformat(), "event_type": "stats",
                        "stats": {f"counter_{n}": n for n in range(1500)}}, separators=(",", ":"))
    written = lines = 0
    with open(path, "w", encoding="utf-8", buffering=1024 * 1024) as handle:
        while written < size:
            if lines % STATS_EVERY == STATS_EVERY - 1:
                text = stats
            else:
                sid, name, category, severity, port = SIGNATURES[rng.randrange(len(SIGNATURES))]
                stamp = (T0 + timedelta(microseconds=lines * 997)).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
                text = json.dumps({
                    "timestamp": stamp, "flow_id": 10**15 + lines, "in_iface": "eth1", "event_type": "alert",
                    "src_ip": f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}", "src_port": rng.randrange(1024, 65535),
                    "dest_ip": f"10.2.0.{rng.randrange(1, 60)}", "dest_port": port, "proto": "TCP",
                    "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 3, "signature": name,
                              "category": category, "severity": severity},
                    "http": {"hostname": "plant.example", "url": f"/api/v1/items/{lines}?q=" + "a" * rng.randrange(40, 200),
                             "http_user_agent": "Mozilla/5.0 (compatible; Nmap Scripting Engine)", "http_method": "GET"},
                    "payload_printable": "GET / HTTP/1.1", "stream": 0,
                }, separators=(",", ":"))
            handle.write(text + "\n")
            written += len(text) + 1
            lines += 1
    return lines


# -- one measurement (child process) ------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(mode: str, path: Path, work: Path) -> dict[str, Any]:
    from collectors.sensors import suricata_eve
    from collectors.tailer import Tailer, TailOptions

    result: dict[str, Any] = {"mode": mode}
    if mode == "store":
        return _measure_store(path, work, result)
    parser = suricata_eve.make_parser(SOURCE_ID) if mode == "parse" else None
    tailer = Tailer([str(path)], {}, TailOptions(), now_ms=0)
    tailer.scan()
    result["baseline_rss_mb"] = _current_rss_mb()
    lines = events = 0
    started = time.perf_counter()
    cpu = time.process_time()
    for batch in tailer.batches():
        lines += len(batch.lines)
        if parser is not None:
            for _, text in batch.lines:
                if parser(text) is not None:
                    events += 1
    result.update(lines=lines, events=events if parser else None,
                  seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu)
    result["peak_rss_mb"] = _rss_mb()
    return result


def _measure_store(path: Path, work: Path, result: dict[str, Any]) -> dict[str, Any]:
    import yaml

    from collectors.runner import CollectContext
    from collectors.sensor_runner import run_sensor
    from settings.loader import load_config
    from store.db import Store

    config_dir = work / "config"
    (config_dir / "feeds").mkdir(parents=True, exist_ok=True)
    (config_dir / "feeds" / f"{SOURCE_ID}.yaml").write_text(yaml.safe_dump({
        "id": SOURCE_ID, "name": "bench", "format": "suricata-eve",
        "source": {"type": "tail", "path": str(path)}, "schedule": {"every": "5s"},
    }))
    assets = REPO / "config" / "assets.yaml"
    if assets.exists():
        (config_dir / "assets.yaml").write_text(assets.read_text())
    config = load_config(config_dir)
    data_dir = work / "data"
    store = Store.open(data_dir)
    ctx = CollectContext(store=store, config=config, data_dir=data_dir)
    from collectors.sensor_runner import event_pipeline

    # Built, and GeoIP loaded (~25 MB compact, see pipeline/geoip.py), before the baseline: both are per
    # process, not per file, so the baseline-to-peak difference is what reading the file costs.
    event_pipeline(ctx).geoip.lookup("8.8.8.8")
    result["baseline_rss_mb"] = _current_rss_mb()
    parsed = new = runs = 0
    started = time.perf_counter()
    cpu = time.process_time()
    while True:
        summary = run_sensor(ctx, config.source(SOURCE_ID))
        runs += 1
        if summary.outcome == "failed":
            raise SystemExit(f"run failed: {summary.error}")
        parsed += summary.parsed
        new += summary.new
        if summary.parsed == 0 and summary.rejected == 0:
            break
    result.update(lines=None, events=parsed, new=new, runs=runs, seconds=time.perf_counter() - started,
                  cpu_seconds=time.process_time() - cpu, db_mb=(data_dir / "watchfloor.db").stat().st_size / 2**20)
    result["peak_rss_mb"] = _rss_mb()
    # GeoIP is flattened in a short-lived child process at start-up (pipeline/geoip.py): its peak is
    # not part of this process's RSS, so it is reported beside it.
    result["child_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    store.dispose()
    return result


# -- report -----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = float("nan")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1),
            "kernel": platform.release(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "load_avg": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("size", nargs="?", default=DEFAULT_SIZE, help="file size, e.g. 1GB (default), 200MB")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the file and store go")
    parser.add_argument("--keep", action="store_true", help="keep the generated file and store")
    parser.add_argument("--measure", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.file, args.work)))
        return

    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="wf-bench-tail-", dir=args.dir))
    path = work / "eve.json"
    started = time.perf_counter()
    lines = generate(path, size)
    print(f"generated {path.stat().st_size / 2**20:,.0f} MiB, {lines:,} lines in {time.perf_counter() - started:.0f} s",
          flush=True)
    print(json.dumps(machine()), flush=True)
    results = []
    for mode in args.modes.split(","):
        mode_work = work / mode
        mode_work.mkdir()
        child = subprocess.run([sys.executable, __file__, "--measure", mode, "--file", str(path), "--work", str(mode_work)],
                               capture_output=True, text=True, check=False)
        if child.returncode:
            print(child.stderr, file=sys.stderr)
            raise SystemExit(f"{mode}: failed")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        count = result["lines"] or result["events"]
        result["per_second"] = count / result["seconds"] if result["seconds"] else None
        results.append(result)
        child = f", start-up child {result['child_peak_rss_mb']:.0f} MB" if result.get("child_peak_rss_mb") else ""
        print(f"{mode:>6}: peak RSS {result['peak_rss_mb']:.0f} MB (baseline {result['baseline_rss_mb']:.0f} MB{child}), "
              f"{count:,} {'lines' if result['lines'] else 'events'} in {result['seconds']:.1f} s = "
              f"{result['per_second']:,.0f}/s (CPU {result['cpu_seconds']:.1f} s)", flush=True)
    print(json.dumps({"file_mib": round(path.stat().st_size / 2**20), "lines": lines, "results": results}))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
