"""The command line: ``serve`` (default), ``collect``, ``check-config``, ``feeds``, ``ingest``.

Every command takes ``--config DIR`` (or ``WATCHFLOOR_CONFIG``) and ``--data DIR`` (or
``WATCHFLOOR_DATA``), so a test instance can run beside the real one on the same machine.
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from runtime import paths
from runtime.context import Runtime

log = logging.getLogger("watchfloor")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="DIR", help="configuration folder (default: ./config or $WATCHFLOOR_CONFIG)")
    parser.add_argument("--data", metavar="DIR", help="data folder (default: ./var or $WATCHFLOOR_DATA)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py", description="watchfloor: a critical-infrastructure cyber watch floor")
    _common(parser)
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="the dashboard, with the collectors unless --no-collect (default)")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, help="default 8050 or $WATCHFLOOR_PORT")
    serve.add_argument("--no-collect", action="store_true", help="serve the UI only; another process collects")

    collect = commands.add_parser("collect", help="run the collectors (the scheduler process)")
    _common(collect)
    collect.add_argument("--once", action="store_true", help="run every enabled source once, print results, exit")

    check = commands.add_parser("check-config", help="validate every file under the configuration folder")
    _common(check)

    feeds = commands.add_parser("feeds", help="inspect and run sources")
    _common(feeds)
    feed_commands = feeds.add_subparsers(dest="feeds_command", required=True)
    feeds_list = feed_commands.add_parser("list", help="every source with its state, last run and counts")
    _common(feeds_list)
    feeds_list.add_argument("--json", action="store_true")
    feeds_test = feed_commands.add_parser("test", help="fetch, parse and map one source file without writing anything")
    _common(feeds_test)
    feeds_test.add_argument("file", type=Path)
    feeds_test.add_argument("--json", action="store_true")
    feeds_test.add_argument("--show", type=int, default=5, help="how many records to print")
    feeds_run = feed_commands.add_parser("run", help="run one source now and record the run")
    _common(feeds_run)
    feeds_run.add_argument("source_id")

    ingest = commands.add_parser("ingest", help="import sensor log files once (backfill, manual import)")
    _common(ingest)
    ingest.add_argument("--format", required=True, help="suricata-eve, zeek, syslog, cef or leef")
    ingest.add_argument("--sensor", default="manual-import", help="sensor id to record the events under")
    ingest.add_argument("--json", action="store_true")
    ingest.add_argument("paths", nargs="+", type=Path)
    return parser


def main(argv: Sequence[str] | None, create_app: Callable[[Runtime], Any]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = args.command or "serve"
    handlers = {"serve": lambda: cmd_serve(args, create_app), "collect": lambda: cmd_collect(args),
                "check-config": lambda: cmd_check_config(args), "feeds": lambda: cmd_feeds(args),
                "ingest": lambda: cmd_ingest(args)}
    return handlers[command]()


def _runtime(args: argparse.Namespace) -> Runtime:
    runtime = Runtime.load(args.config, args.data)
    for problem in runtime.config.problems:
        log.warning("config problem (that part is skipped, the rest runs): %s", problem)
    return runtime


def freeze_startup_heap() -> None:
    """Called once a serving process has built its app: everything alive now (Dash, Plotly, pandas,
    the pages) lives as long as the process, and once frozen the cyclic collector stops walking it
    (its full collections were ~90 ms pauses in wall refreshes, bench/RESULTS.md)."""
    gc.collect()
    gc.freeze()


def cmd_serve(args: argparse.Namespace, create_app: Callable[[Runtime], Any]) -> int:
    runtime = _runtime(args)
    scheduler = None
    if not args.no_collect:
        from collectors.scheduler import build_scheduler

        scheduler = build_scheduler(runtime.collect_context())
        scheduler.start()
    app = create_app(runtime)
    freeze_startup_heap()
    port = paths.port(args.port)
    print(f"watchfloor: http://{args.host}:{port}/wall  (config {runtime.config_dir}, data {runtime.data_dir})",
          flush=True)
    try:
        # No reloader: it would import the app twice and start the scheduler twice.
        app.run(host=args.host, port=port, debug=False, use_reloader=False)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from collectors.runner import run_source
    from collectors.scheduler import build_scheduler, demo_writer, recompute_exposures_job

    runtime = _runtime(args)
    ctx = runtime.collect_context()
    if not args.once:
        scheduler = build_scheduler(ctx, blocking=True)
        print(f"watchfloor collector: {len(runtime.config.enabled_sources)} sources scheduled", flush=True)
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        return 0
    demo = demo_writer(ctx)
    if demo is not None:
        written = demo.tick()
        print(f"demo writer: {written} EVE lines written")
    for source in runtime.config.enabled_sources:
        summary = run_source(ctx, source)
        print(_summary_line(source.id, summary))
    exposures = recompute_exposures_job(ctx)
    print(f"{'exposure findings':32} new={exposures.new} still={exposures.still} resolved={exposures.resolved}")
    return 0 if not runtime.config.problems else 1


def _summary_line(source_id: str, summary: Any) -> str:
    counts = (f"parsed={summary.parsed} new={summary.new} updated={summary.updated} "
              f"rejected={summary.rejected} expired={summary.expired}")
    if summary.duplicates:
        counts += f" duplicates={summary.duplicates}"
    line = f"{source_id:32} {summary.outcome:9} {counts}"
    if summary.flags:
        line += "  flags: " + "; ".join(summary.flags)
    if summary.error:
        line += f"\n{'':32} error: {summary.error.splitlines()[0]}"
    return line


def cmd_check_config(args: argparse.Namespace) -> int:
    from settings.loader import ConfigError, load_config

    folder = paths.config_dir(args.config)
    try:
        config = load_config(folder)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    for problem in config.problems:
        print(problem)
    if config.problems:
        print(f"{len(config.problems)} problem(s) in {folder}", file=sys.stderr)
        return 1
    print(f"{folder}: OK — {len(config.sources)} sources ({len(config.enabled_sources)} enabled), "
          f"{len(config.inventory.sites)} sites")
    return 0


def cmd_feeds(args: argparse.Namespace) -> int:
    from collectors import feed_admin

    if args.feeds_command == "test":
        report = feed_admin.test_source_file(args.file, paths.data_dir(args.data), show=args.show)
        print(json.dumps(report.as_dict(), indent=2, default=str) if args.json else report.as_text())
        return 0 if not report.errors else 1
    runtime = _runtime(args)
    if args.feeds_command == "list":
        rows = feed_admin.list_sources(runtime)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        else:
            print(feed_admin.format_source_table(rows))
        return 0
    source = runtime.config.source(args.source_id)
    if source is None:
        print(f"no source with id {args.source_id!r}; see `app.py feeds list`", file=sys.stderr)
        return 2
    from collectors.runner import run_source

    summary = run_source(runtime.collect_context(), source)
    print(_summary_line(source.id, summary))
    return 0 if summary.outcome != "failed" else 1


def cmd_ingest(args: argparse.Namespace) -> int:
    from collectors.ingest_files import format_report, ingest_paths

    runtime = _runtime(args)
    try:
        report = ingest_paths(runtime.collect_context(), args.format, args.paths, sensor_id=args.sensor)
    except ValueError as exc:  # an unknown format: nothing was read
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2, default=str) if args.json else format_report(report))
    return report.exit_code
