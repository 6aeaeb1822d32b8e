"""Fixtures for the pipeline tests: a real config folder, a real SQLite store, the real pipeline."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_testkit import NOW_MS, write_config

from pipeline.ingest import EventPipeline
from settings.loader import Config
from store.db import Store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path / "config")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "data")
    yield opened
    opened.dispose()


@pytest.fixture
def pipeline(config: Config, store: Store) -> EventPipeline:
    return EventPipeline(config, store, clock=lambda: NOW_MS)
