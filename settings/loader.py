"""Load and validate everything under a configuration folder.

Problems are collected, not raised one at a time, so ``check-config`` can list every broken file
at once; each names the file, the field and what is wrong with it. A source whose file is broken
is left out and the rest keep working.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from settings.app_settings import AppSettings
from settings.inventory import Inventory
from settings.sources import SourceConfig

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


@dataclass
class Config:
    folder: Path
    settings: AppSettings
    inventory: Inventory
    sources: list[SourceConfig]
    problems: list[ConfigProblem] = field(default_factory=list)

    @property
    def enabled_sources(self) -> list[SourceConfig]:
        return [s for s in self.sources if s.enabled]

    def source(self, source_id: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.id == source_id), None)

    @property
    def demo_enabled(self) -> bool:
        return any(s.demo for s in self.enabled_sources)


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _field_path(location: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before", "function-wrap", "tagged-union"):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def read_yaml(path: Path, label: str) -> tuple[Any, list[ConfigProblem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [ConfigProblem(label, "(file)", f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [ConfigProblem(label, "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigProblem(label, where, f"invalid YAML: {reason}")]


def validate(model: type[ModelT], data: Any, label: str) -> tuple[ModelT | None, list[ConfigProblem]]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [ConfigProblem(label, "(top level)", f"expected a mapping of keys, got {type(data).__name__}")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key (check the spelling; unknown keys are not ignored)"
            problems.append(ConfigProblem(label, _field_path(error["loc"]), message))
        return None, problems


def _load_file(folder: Path, name: str, model: type[ModelT]) -> tuple[ModelT, list[ConfigProblem]]:
    path = folder / name
    label = str(path)
    if not path.exists():
        return model(), []
    data, problems = read_yaml(path, label)
    if problems:
        return model(), problems
    loaded, problems = validate(model, data, label)
    return (loaded if loaded is not None else model()), problems


def format_options_problems(source: SourceConfig, label: str) -> list[ConfigProblem]:
    """Validate ``options`` against the format module's own ``Options`` model."""
    from collectors.registry import format_module

    module = format_module(source.format)
    if module is None:
        from collectors.registry import known_formats

        return [ConfigProblem(label, "format", f"unknown format {source.format!r}; known: {', '.join(known_formats())}")]
    _, problems = validate(module.Options, source.options, label)
    return [ConfigProblem(p.file, f"options.{p.field}" if p.field != "(top level)" else "options", p.message)
            for p in problems]


def load_source_file(path: Path) -> tuple[SourceConfig | None, list[ConfigProblem]]:
    label = str(path)
    data, problems = read_yaml(path, label)
    if problems:
        return None, problems
    source, problems = validate(SourceConfig, data, label)
    if source is None:
        return None, problems
    problems = format_options_problems(source, label)
    return (None if problems else source), problems


def _pipeline_file_problems(folder: Path) -> list[ConfigProblem]:
    """``scoring.yaml`` and ``attack_ics_map.yaml`` belong to the pipeline, which owns their models."""
    from pipeline.attack import load_map
    from pipeline.scoring import load_scoring

    return load_scoring(folder)[1] + load_map(folder)[1]


def city_database_path(folder: Path, settings: AppSettings) -> Path | None:
    """``geoip_city_database`` as a path; a relative one is relative to the configuration folder."""
    if not settings.geoip_city_database:
        return None
    path = Path(settings.geoip_city_database).expanduser()
    return path if path.is_absolute() else Path(folder) / path


def _city_database_problems(folder: Path, settings: AppSettings) -> list[ConfigProblem]:
    path = city_database_path(folder, settings)
    if path is None:
        return []
    from pipeline.geoip_city import CityDatabase, CityDatabaseError

    try:
        CityDatabase.open(path).close()
    except CityDatabaseError as exc:
        return [ConfigProblem(str(Path(folder) / "settings.yaml"), "geoip_city_database", str(exc))]
    return []


def load_config(folder: Path) -> Config:
    """Load the whole folder; problems are kept on the result rather than raised."""
    folder = Path(folder)
    problems: list[ConfigProblem] = []
    if not folder.is_dir():
        raise ConfigError([ConfigProblem(str(folder), "(folder)", "configuration folder does not exist")])
    app_settings, found = _load_file(folder, "settings.yaml", AppSettings)
    problems += found
    inventory, found = _load_file(folder, "assets.yaml", Inventory)
    problems += found
    problems += _pipeline_file_problems(folder)
    problems += _city_database_problems(folder, app_settings)
    sources: list[SourceConfig] = []
    seen: dict[str, str] = {}
    for path in sorted((folder / "feeds").glob("*.y*ml")):
        source, found = load_source_file(path)
        problems += found
        if source is None:
            continue
        if source.id in seen:
            problems.append(ConfigProblem(str(path), "id", f"{source.id!r} is already used by {seen[source.id]}"))
            continue
        seen[source.id] = str(path)
        sources.append(source)
    return Config(folder, app_settings, inventory, sources, problems)
