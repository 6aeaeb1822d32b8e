import sys
from pathlib import Path

import flask
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from storefill import NOW, make_config, make_store  # noqa: E402

from panels.context import AppContext  # noqa: E402


@pytest.fixture
def store(tmp_path):
    s = make_store(tmp_path)
    yield s
    s.dispose()


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


@pytest.fixture
def app_ctx(store, config, tmp_path):
    return AppContext(store, config, tmp_path, clock=lambda: NOW)


@pytest.fixture
def flask_app(app_ctx):
    """A Flask app holding the test AppContext, its app and request contexts pushed."""
    app = flask.Flask("wf-test")
    app.config["WATCHFLOOR"] = app_ctx
    with app.test_request_context("/"):
        yield app
