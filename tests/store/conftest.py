import pytest

from storefill import make_config, make_store


@pytest.fixture
def store(tmp_path):
    s = make_store(tmp_path)
    yield s
    s.dispose()


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)
