"""Fixtures for the PostgreSQL tests: a real server, a fresh database per test module.

The server is named by ``WATCHFLOOR_TEST_PG_URL`` (a SQLAlchemy URL such as
``postgresql+psycopg://watchfloor:watchfloor@127.0.0.1:5432/watchfloor_test``; the role needs
CREATEDB). ``.ci/run`` installs and starts PostgreSQL and sets it; without it these tests fail,
they are never skipped. Each test module gets its own database (created, then dropped at the end);
each test starts from an empty ``public`` schema in it.
"""
from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

TESTS = Path(__file__).resolve().parents[1]
for helper_dir in (TESTS.parent, TESTS / "pipeline", TESTS / "store", TESTS / "api"):
    if str(helper_dir) not in sys.path:
        sys.path.insert(0, str(helper_dir))

from store.db import Store  # noqa: E402

PG_ENV = "WATCHFLOOR_TEST_PG_URL"
HOW_TO = (
    f"{PG_ENV} is not set: the tests in tests/postgres need a running PostgreSQL server.\n"
    "  As root, `.ci/run` installs and starts one and sets it. By hand (Debian):\n"
    "    apt-get install -y postgresql && pg_ctlcluster 15 main start\n"
    "    su postgres -c \"psql -c \\\"CREATE ROLE watchfloor LOGIN PASSWORD 'watchfloor' CREATEDB\\\"\"\n"
    "    su postgres -c 'createdb -O watchfloor watchfloor_test'\n"
    f"    export {PG_ENV}=postgresql+psycopg://watchfloor:watchfloor@127.0.0.1:5432/watchfloor_test"
)


def base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.fail(HOW_TO, pytrace=False)
    return url


@pytest.fixture(scope="module")
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of its own for this test module, dropped at the end."""
    url = make_url(base_url())
    module = re.sub(r"[^a-z0-9]+", "_", request.module.__name__.rsplit(".", 1)[-1].lower())[:30]
    name = f"wf_{module}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def pg_empty(pg_url: str) -> str:
    """``pg_url`` with an empty ``public`` schema: every test starts from nothing."""
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return pg_url


@pytest.fixture
def pg_store(pg_empty: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store opened the way the app opens it: ``WATCHFLOOR_DATABASE_URL`` names the server."""
    monkeypatch.setenv("WATCHFLOOR_DATABASE_URL", pg_empty)
    opened = Store.open(tmp_path / "pg-data")
    assert not opened.is_sqlite and opened.writer.dialect.name == "postgresql"
    yield opened
    opened.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The default store, for comparing what the same events give on both databases."""
    monkeypatch.delenv("WATCHFLOOR_DATABASE_URL", raising=False)
    opened = Store.open(tmp_path / "sqlite-data")
    assert opened.is_sqlite
    yield opened
    opened.dispose()
