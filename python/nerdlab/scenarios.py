"""Scenarios are data: YAML files under scenarios/, rendered into runner plans.

A scenario names its steps (argv lists with ``{placeholders}``), their bounds and what
its outcome means. Placeholders are filled from the run's context (nerdctl binary,
containerd address, image, ...); every value lands in a single argv element, so no
string ever passes through a shell.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nerdlab.errors import ConfigError

__all__ = ["Scenario", "available", "load_scenario", "render_plan"]

_STEP_KEYS = {
    "name",
    "argv",
    "timeout_s",
    "stop_after_lines",
    "expect_rc",
    "abort_on_failure",
    "always",
    "state",
    "kind",
    "paths",
    "script",
    "stop_after_script",
    "max_lines",
    "diagnose",
    "measure",
    "yes_when",
}
_OUTCOMES = {"REPRODUCED", "NOT REPRODUCED", "FIXED", "INCONCLUSIVE"}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scenario file, validated."""

    name: str
    description: str
    expect: dict[str, str]
    container: str
    steps: tuple[dict[str, Any], ...]
    source: str


def _fail(source: Path, where: str, what: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {what}")


def load_scenario(path: Path) -> Scenario:
    """Read and validate one scenario file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read scenario {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise _fail(path, "top level", "must be a mapping")
    for key in ("name", "container", "steps", "expect"):
        if key not in data:
            raise _fail(path, key, "is required")
    unknown_keys = set(data) - {"name", "description", "expect", "container", "steps"}
    if unknown_keys:
        raise _fail(path, sorted(unknown_keys)[0], "is not a scenario field")
    expect = data["expect"]
    if not isinstance(expect, dict) or not all(v in _OUTCOMES for v in expect.values()):
        raise _fail(path, "expect", f"values must be one of {sorted(_OUTCOMES)}")
    steps = data["steps"]
    if not isinstance(steps, list) or not steps:
        raise _fail(path, "steps", "must be a non-empty list")
    names = set()
    for number, step in enumerate(steps, start=1):
        where = f"steps[{number}]"
        if not isinstance(step, dict) or "name" not in step:
            raise _fail(path, where, "must be a mapping with a name")
        unknown = set(step) - _STEP_KEYS
        if unknown:
            raise _fail(path, f"{where}.{sorted(unknown)[0]}", "is not a step field")
        if step["name"] in names:
            raise _fail(path, f"{where}.name", f"{step['name']!r} is used twice")
        names.add(step["name"])
        if step.get("yes_when", "rc0") not in ("rc0", "output"):
            raise _fail(path, f"{where}.yes_when", "must be rc0 or output")
        if step.get("kind") in ("tree", "read"):
            if not isinstance(step.get("paths"), list):
                raise _fail(path, f"{where}.paths", "must be a list of directories")
        elif not isinstance(step.get("argv"), list) or not step["argv"]:
            raise _fail(path, f"{where}.argv", "must be a non-empty list")
    if "attach" not in names:
        raise _fail(path, "steps", "needs a step named 'attach'")
    return Scenario(
        name=str(data["name"]),
        description=str(data.get("description", "")).strip(),
        expect={str(k): str(v) for k, v in expect.items()},
        container=str(data["container"]),
        steps=tuple(steps),
        source=str(path),
    )


def available(directory: Path) -> dict[str, Path]:
    """Map scenario names to their files."""
    return {p.stem: p for p in sorted(directory.glob("*.yml"))}


def _fill(value: Any, values: dict[str, str], where: str) -> Any:
    if isinstance(value, list):
        return [_fill(item, values, where) for item in value]
    if not isinstance(value, str):
        return value
    fields = {f for _, f, _, _ in string.Formatter().parse(value) if f}
    missing = fields - values.keys()
    if missing:
        raise ConfigError(f"{where}: unknown placeholder {{{sorted(missing)[0]}}}")
    return value.format_map(values)


def render_plan(scenario: Scenario, context: dict[str, str]) -> dict[str, Any]:
    """Fill a scenario's placeholders from the run context into a runner plan."""
    values = {**context, "scenario": scenario.name, "container": scenario.container}
    steps = []
    for number, step in enumerate(scenario.steps, start=1):
        where = f"{scenario.source}: steps[{number}]"
        filled = {
            key: _fill(val, values, f"{where}.{key}") for key, val in step.items()
        }
        if "timeout_s" in filled:
            try:
                filled["timeout_s"] = float(filled["timeout_s"])
            except ValueError as err:
                raise ConfigError(
                    f"{where}.timeout_s: {filled['timeout_s']!r} is not a number of "
                    "seconds"
                ) from err
        steps.append(filled)
    return {
        "scenario": {
            "name": scenario.name,
            "description": scenario.description,
            "expect": scenario.expect,
        },
        "context": {**context, "container": scenario.container},
        "env": {"NERDCTL_TOML": context.get("nerdctl_toml", "")},
        "steps": steps,
    }
