"""Every format module keeps the contract of ``collectors/formats/__init__.py`` and is documented."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

from collectors.formats import registry
from settings.base import StrictModel
from settings.sources import SourceConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "feed-formats.md"
FORMATS = registry()


def sections() -> dict[str, str]:
    parts = re.split(r"^## `([^`]+)`\s*$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_expected_formats_are_registered() -> None:
    assert set(FORMATS) == {"lines", "csv", "json", "stix21", "misp", "kev", "csaf", "attack-ics"}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_module_contract(name: str) -> None:
    module = FORMATS[name]
    assert module.__doc__ and len(module.__doc__) > 200  # the docstring describes the format
    assert module.KIND in ("indicators", "advisories", "techniques")
    assert issubclass(module.Options, StrictModel)
    module.Options()  # every option has a default
    assert list(inspect.signature(module.parse).parameters) == ["payload", "source", "options"]
    assert inspect.isgeneratorfunction(module.parse)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_is_documented_with_its_options_and_a_valid_example(name: str) -> None:
    section = sections().get(name)
    assert section, f"docs/feed-formats.md has no '## `{name}`' section"
    for option in FORMATS[name].Options.model_fields:
        assert f"`{option}`" in section, f"option {option} of {name} is not documented"
    examples = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    assert examples, f"no YAML example for {name}"
    for text in examples:
        config = SourceConfig.model_validate(yaml.safe_load(text))
        assert config.format == name
        FORMATS[name].Options.model_validate(config.options)


def test_a_misspelt_option_is_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        FORMATS["csv"].Options.model_validate({"delimeter": ";"})
