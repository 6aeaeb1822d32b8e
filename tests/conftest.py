from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    if not SHARED_FIXTURES.is_dir():
        raise RuntimeError(f"conformance fixtures are absent: {SHARED_FIXTURES} (CI always has ../shared/fixtures)")
    return SHARED_FIXTURES


@pytest.fixture
def dash_globals() -> Iterator[None]:
    """Dash moves the callbacks registered with ``dash.callback`` into the first app that serves a
    request and empties its global list; put them back so later tests (tests/panels) still see them.
    Use it in any test that serves requests from a real Dash app."""
    from dash import _callback, _pages

    saved = (list(_callback.GLOBAL_CALLBACK_LIST), dict(_callback.GLOBAL_CALLBACK_MAP),
             list(_callback.GLOBAL_INLINE_SCRIPTS), dict(_pages.PAGE_REGISTRY))
    yield
    _callback.GLOBAL_CALLBACK_LIST[:] = saved[0]
    _callback.GLOBAL_CALLBACK_MAP.clear()
    _callback.GLOBAL_CALLBACK_MAP.update(saved[1])
    _callback.GLOBAL_INLINE_SCRIPTS[:] = saved[2]
    _pages.PAGE_REGISTRY.clear()
    _pages.PAGE_REGISTRY.update(saved[3])
