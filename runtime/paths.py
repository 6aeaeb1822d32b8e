"""Where the configuration and the data live: ``--config``/``--data`` flags, then environment, then defaults."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config"
DEFAULT_DATA = PROJECT_ROOT / "var"


def config_dir(flag: str | None = None) -> Path:
    return Path(flag or os.environ.get("WATCHFLOOR_CONFIG") or DEFAULT_CONFIG).expanduser().resolve()


def data_dir(flag: str | None = None) -> Path:
    folder = Path(flag or os.environ.get("WATCHFLOOR_DATA") or DEFAULT_DATA).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def port(flag: int | None = None) -> int:
    return int(flag or os.environ.get("WATCHFLOOR_PORT") or 8050)
