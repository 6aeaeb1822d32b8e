"""A real collector process for the crash test: opens the store and runs one sensor source in a loop.

``python collector_proc.py CONFIG_DIR DATA_DIR SOURCE_ID PROGRESS_FILE`` — runs ``run_sensor`` until
killed, writing the number of finished runs to PROGRESS_FILE after each so the test knows it is alive.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from collectors.runner import CollectContext  # noqa: E402
from collectors.sensor_runner import run_sensor  # noqa: E402
from settings.loader import load_config  # noqa: E402
from store.db import Store  # noqa: E402


def main() -> None:
    config_dir, data_dir, source_id, progress = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    config = load_config(config_dir)
    store = Store.open(data_dir)
    ctx = CollectContext(store=store, config=config, data_dir=data_dir)
    source = config.source(source_id)
    runs = 0
    while True:
        summary = run_sensor(ctx, source)
        if summary.outcome == "failed":
            print(f"failed run: {summary.error}", file=sys.stderr, flush=True)
        runs += 1
        progress.write_text(str(runs))


if __name__ == "__main__":
    main()
