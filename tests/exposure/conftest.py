"""Fixtures for the exposure tests: a real SQLite store, the test inventory and config, a Flask context."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from exposure_testkit import NOW, make_config

from panels.context import AppContext
from settings.loader import Config
from store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "data")
    yield opened
    opened.dispose()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def flask_app(store: Store, config: Config, tmp_path: Path) -> Iterator[flask.Flask]:
    """A Flask app holding a test AppContext (clock fixed at NOW), its request context pushed."""
    app = flask.Flask("wf-exposure-test")
    app.config["WATCHFLOOR"] = AppContext(store, config, tmp_path, clock=lambda: NOW)
    with app.test_request_context("/"):
        yield app
