"""The runtime of one process: configuration, data folder, store and clock, built once at start."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from collectors.runner import CollectContext
from runtime import paths
from settings.loader import Config, load_config
from store.db import Store


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Runtime:
    config_dir: Path
    data_dir: Path
    config: Config
    store: Store
    clock: Callable[[], datetime] = field(default=utc_now)

    @classmethod
    def load(cls, config_flag: str | None = None, data_flag: str | None = None) -> "Runtime":
        config_dir = paths.config_dir(config_flag)
        data_dir = paths.data_dir(data_flag)
        config = load_config(config_dir)
        store = Store.open(data_dir, config.settings.database_url)
        return cls(config_dir, data_dir, config, store)

    def collect_context(self) -> CollectContext:
        return CollectContext(store=self.store, config=self.config, data_dir=self.data_dir, clock=self.clock)
