from pathlib import Path
import pytest
SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    if not SHARED_FIXTURES.is_dir():
        raise RuntimeError(f"conformance fixtures are absent: {SHARED_FIXTURES} (CI always has ../shared/fixtures)")
    return SHARED_FIXTURES
