"""docs/api.md documents every endpoint, parameter and field the API has (a test fails when one is not)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from api import routes

DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
DOCUMENTED = set(re.findall(r"`([a-z0-9_-]+)`", DOC)) | set(re.findall(r'"([a-z0-9_-]+)"', DOC))


@pytest.mark.parametrize("path", [path for path, _what in routes.ENDPOINTS])
def test_every_endpoint_has_a_section_and_a_curl_example(path):
    heading = path.replace("<id>", "&lt;id&gt;")
    assert f"## GET {heading}" in DOC
    base = path.split("<")[0].rstrip("/")
    assert re.search(rf"curl [^\n]*127\.0\.0\.1:8050{re.escape(base)}", DOC), path


@pytest.mark.parametrize("name", sorted({*routes.INCIDENT_PARAMS, *routes.DETAIL_PARAMS, *routes.SOURCE_PARAMS}))
def test_every_parameter_is_documented(name):
    assert f"| `{name}` |" in DOC


@pytest.mark.parametrize("name", sorted({*routes.INCIDENT_ITEM_FIELDS, *routes.EVENT_FIELDS, *routes.SOURCE_FIELDS,
                                         "score_breakdown", "indicators", "events_truncated", "log", "raw_format",
                                         "total_capped", "next", "prev", "no_data_alarm", "reasons", "store"}))
def test_every_field_is_documented(name):
    assert name in DOCUMENTED
