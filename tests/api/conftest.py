"""Fixtures for the read-API tests: the real Dash app from ``app.create_app`` over a real SQLite store.

The configuration is a real folder (the pipeline tests' inventory plus three sources: an enabled
sensor, an enabled feed and a disabled feed), loaded with ``settings.loader.load_config``. Data
goes in through the real pipeline (``EventPipeline.ingest``), the real run bookkeeping
(``store.writes.start_run``/``finish_run``) or the store tests' row helpers. The clock is fixed
and movable, so freshness and "since 24h" never depend on the wall clock.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dash
import pytest

TESTS = Path(__file__).resolve().parents[1]
for helper_dir in (TESTS.parent, TESTS / "pipeline", TESTS / "store"):
    if str(helper_dir) not in sys.path:
        sys.path.insert(0, str(helper_dir))

from apitestkit import Clock, write_api_config  # noqa: E402
from pipeline_testkit import NOW_MS  # noqa: E402

import api  # noqa: E402
from app import create_app  # noqa: E402
from runtime.context import Runtime  # noqa: E402
from settings.loader import Config, load_config  # noqa: E402
from store.db import Store  # noqa: E402


@pytest.fixture(autouse=True)
def _dash_globals(dash_globals: None) -> None:
    """Every API test serves requests from a real Dash app (see ``tests/conftest.py``)."""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return write_api_config(tmp_path / "config")


@pytest.fixture
def config(config_dir: Path) -> Config:
    loaded = load_config(config_dir)
    assert loaded.problems == []
    assert [s.id for s in loaded.sources] == ["feed-1", "ids-1", "old-feed"]
    return loaded


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "data")
    yield opened
    opened.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW_MS)


@pytest.fixture
def dash_app(config_dir: Path, config: Config, store: Store, clock: Clock, tmp_path: Path) -> dash.Dash:
    app = create_app(Runtime(config_dir, tmp_path / "data", config, store, clock=clock))
    if "api" not in app.server.blueprints:  # app.py registers it; the fixture works either way
        app.server.register_blueprint(api.blueprint)
    return app


@pytest.fixture
def client(dash_app: dash.Dash) -> Any:
    return dash_app.server.test_client()
