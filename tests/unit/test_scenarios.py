"""Scenario files are validated with errors that point at a field, and render safely."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from nerdlab import scenarios
from nerdlab.errors import ConfigError
from nerdlab.scenarios import Scenario, available, load_scenario, render_plan

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios"

# Every placeholder the shipped scenarios use, as a run fills them in.
CONTEXT = {
    "nerdctl": "/usr/local/bin/nerdctl",
    "ctr": "/usr/local/bin/ctr",
    "containerd": "/usr/local/bin/containerd",
    "runc": "/usr/local/sbin/runc",
    "address": "/run/containerd/containerd.sock",
    "namespace": "default",
    "image": "nerdlab.local/busybox:latest",
    "attach_timeout": "15",
    "fifo_dir": "/run/containerd/fifo",
    "nerdctl_toml": "/etc/nerdctl/nerdctl.toml",
    "data_root": "/var/lib/nerdctl",
    "nerdctl_fixed": "/usr/local/bin/nerdctl-fixed",
    "image_ref": "nerdlab.local/busybox:latest",
    "ctr_instrumented": "/w/containerd/bin/ctr",
    "logger": "/p/scenarios/bin/nerdlab-logger",
    "logger_file": "/r/state/logger.log",
}

VALID: dict[str, Any] = {
    "name": "tiny",
    "description": "A tiny scenario.\n",
    "expect": {"outcome_if_attach_fails": "REPRODUCED"},
    "container": "nerdlab-tiny",
    "steps": [
        {"name": "run", "argv": ["{nerdctl}", "run", "{image}"], "timeout_s": 5},
        {
            "name": "attach",
            "argv": ["{nerdctl}", "attach", "{container}"],
            "timeout_s": "{attach_timeout}",
            "stop_after_lines": 3,
            "expect_rc": None,
        },
        {"name": "fifos", "kind": "tree", "paths": ["{fifo_dir}"]},
        {"name": "remove", "argv": ["{nerdctl}", "rm", "{container}"], "always": True},
    ],
}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "scenario.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(scenarios.__all__) == [
        "Scenario",
        "available",
        "load_scenario",
        "render_plan",
    ]


def test_shipped_scenarios_are_available() -> None:
    """The scenarios directory offers detached-attach by its file name."""
    assert available(SHIPPED)["detached-attach"] == SHIPPED / "detached-attach.yml"


@pytest.mark.parametrize("name", sorted(available(SHIPPED)))
def test_shipped_scenarios_load_and_render(name: str) -> None:
    """Each shipped scenario validates and renders with a full context."""
    scenario = load_scenario(SHIPPED / f"{name}.yml")
    assert scenario.name == name
    plan = render_plan(scenario, CONTEXT)
    assert [s["name"] for s in plan["steps"]] == [s["name"] for s in scenario.steps]
    for step in plan["steps"]:
        for arg in step.get("argv", []):
            assert "{" not in arg, (step["name"], arg)


def test_detached_attach_is_what_the_report_describes() -> None:
    """detached-attach runs -d, attaches with a bound, and always cleans up."""
    scenario = load_scenario(SHIPPED / "detached-attach.yml")
    steps = {s["name"]: s for s in scenario.steps}
    assert "--detach" in steps["run"]["argv"]
    assert steps["run"]["abort_on_failure"] is True
    assert steps["attach"]["stop_after_lines"] > 0
    assert steps["attach"]["expect_rc"] is None
    assert steps["remove"]["always"] is True
    assert set(scenario.expect.values()) == {"REPRODUCED", "NOT REPRODUCED"}
    assert scenario.description.startswith("run -d")


def test_valid_scenario_loads(tmp_path: Path) -> None:
    """A minimal valid scenario keeps its fields and source file."""
    path = write(tmp_path, VALID)
    scenario = load_scenario(path)
    assert scenario == Scenario(
        name="tiny",
        description="A tiny scenario.",
        expect={"outcome_if_attach_fails": "REPRODUCED"},
        container="nerdlab-tiny",
        steps=tuple(VALID["steps"]),
        source=str(path),
    )


def without(key: str) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    del data[key]
    return data


def with_step(index: int, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    data["steps"][index].update(changes)
    for key, value in changes.items():
        if value is ...:
            del data["steps"][index][key]
    return data


def renamed(index: int, name: str) -> dict[str, Any]:
    return with_step(index, name=name)


INVALID = [
    pytest.param(without("name"), "name: is required", id="missing-name"),
    pytest.param(without("container"), "container: is required", id="no-container"),
    pytest.param(without("steps"), "steps: is required", id="no-steps"),
    pytest.param(without("expect"), "expect: is required", id="no-expect"),
    pytest.param(
        {**VALID, "expect": {"outcome_if_attach_fails": "BROKEN"}},
        "expect: values must be one of",
        id="bad-expect-value",
    ),
    pytest.param(
        {**VALID, "expect": ["REPRODUCED"]},
        "expect: values must be one of",
        id="expect-not-a-mapping",
    ),
    pytest.param({**VALID, "steps": []}, "steps: must be a non-empty list", id="empty"),
    pytest.param(
        {**VALID, "steps": ["attach"]},
        r"steps\[1\]: must be a mapping with a name",
        id="step-not-a-mapping",
    ),
    pytest.param(
        with_step(0, argv=...),
        r"steps\[1\]\.argv: must be a non-empty list",
        id="step-without-argv",
    ),
    pytest.param(
        with_step(0, argv=[]),
        r"steps\[1\]\.argv: must be a non-empty list",
        id="empty-argv",
    ),
    pytest.param(
        with_step(0, argv="nerdctl run"),
        r"steps\[1\]\.argv: must be a non-empty list",
        id="argv-as-shell-line",
    ),
    pytest.param(
        with_step(1, shell=True),
        r"steps\[2\]\.shell: is not a step field",
        id="unknown-step-field",
    ),
    pytest.param(
        renamed(3, "run"),
        r"steps\[4\]\.name: 'run' is used twice",
        id="duplicate-step-name",
    ),
    pytest.param(
        with_step(2, paths="/run/containerd/fifo"),
        r"steps\[3\]\.paths: must be a list of directories",
        id="tree-paths-not-a-list",
    ),
    pytest.param(
        renamed(1, "attach-once"),
        "steps: needs a step named 'attach'",
        id="no-attach-step",
    ),
    pytest.param(["name", "tiny"], "top level: must be a mapping", id="top-level"),
]


@pytest.mark.parametrize(("data", "message"), INVALID)
def test_invalid_scenario_names_file_and_field(
    tmp_path: Path, data: Any, message: str
) -> None:
    """Each validation error starts with the file and names the offending field."""
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    """A file that is not YAML is reported with its path."""
    path = tmp_path / "broken.yml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{path}: not valid YAML"):
        load_scenario(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    """A scenario that cannot be read is reported with its path."""
    with pytest.raises(ConfigError, match=f"cannot read scenario {tmp_path}/gone.yml"):
        load_scenario(tmp_path / "gone.yml")


def test_unknown_placeholder_names_the_file(tmp_path: Path) -> None:
    """A placeholder the context does not fill is refused with the file and its name."""
    path = write(tmp_path, with_step(0, argv=["{nerdctl}", "{bogus}"]))
    with pytest.raises(ConfigError, match=r"unknown placeholder \{bogus\}") as caught:
        render_plan(load_scenario(path), CONTEXT)
    assert str(caught.value).startswith(f"{path}: ")


def test_unknown_placeholder_names_the_field(tmp_path: Path) -> None:
    """A placeholder the context does not fill names the step field that holds it."""
    path = write(tmp_path, with_step(0, argv=["{nerdctl}", "{bogus}"]))
    with pytest.raises(ConfigError, match=r"steps\[1\]\.argv"):
        render_plan(load_scenario(path), CONTEXT)


def test_render_plan_fills_placeholders(tmp_path: Path) -> None:
    """Placeholders come from the context, the scenario name and the container."""
    plan = render_plan(load_scenario(write(tmp_path, VALID)), CONTEXT)
    steps = {s["name"]: s for s in plan["steps"]}
    assert steps["run"]["argv"] == [
        "/usr/local/bin/nerdctl",
        "run",
        "nerdlab.local/busybox:latest",
    ]
    assert steps["attach"]["argv"][-1] == "nerdlab-tiny"
    assert steps["attach"]["timeout_s"] == 15.0
    assert steps["attach"]["expect_rc"] is None
    assert steps["run"]["timeout_s"] == 5.0
    assert steps["fifos"]["paths"] == ["/run/containerd/fifo"]
    assert steps["remove"]["always"] is True
    assert plan["scenario"] == {
        "name": "tiny",
        "description": "A tiny scenario.",
        "expect": {"outcome_if_attach_fails": "REPRODUCED"},
    }
    assert plan["context"] == {**CONTEXT, "container": "nerdlab-tiny"}
    assert plan["env"] == {"NERDCTL_TOML": "/etc/nerdctl/nerdctl.toml"}


def test_render_plan_does_not_change_the_scenario(tmp_path: Path) -> None:
    """Rendering leaves the loaded scenario's steps with their placeholders."""
    scenario = load_scenario(write(tmp_path, VALID))
    render_plan(scenario, CONTEXT)
    assert scenario.steps[0]["argv"] == ["{nerdctl}", "run", "{image}"]


HOSTILE = [
    pytest.param("a b; rm -rf /", id="space-semicolon"),
    pytest.param("$(touch /tmp/nerdlab-pwned)", id="command-substitution"),
    pytest.param("`id` && echo yes | cat > /etc/passwd", id="backticks-pipe"),
    pytest.param("'quoted' \"double\" \\ back", id="quotes"),
    pytest.param("line1\nline2\ttab", id="newline-tab"),
    pytest.param("{nerdctl} {container}", id="placeholder-lookalike"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("value", HOSTILE)
def test_render_plan_keeps_each_value_in_one_argv_element(
    tmp_path: Path, value: str
) -> None:
    """A value with spaces or shell metacharacters stays one argv element, verbatim."""
    data = with_step(0, argv=["{nerdctl}", "run", "{image}", "--", "x{image}y"])
    context = {**CONTEXT, "image": value, "nerdctl": value}
    plan = render_plan(load_scenario(write(tmp_path, data)), context)
    assert plan["steps"][0]["argv"] == [value, "run", value, "--", f"x{value}y"]


def test_non_numeric_timeout_names_the_field(tmp_path: Path) -> None:
    """A timeout placeholder filled with a non-number is a ConfigError naming it."""
    scenario = load_scenario(write(tmp_path, VALID))
    with pytest.raises(ConfigError, match=r"steps\[2\]\.timeout_s"):
        render_plan(scenario, {**CONTEXT, "attach_timeout": "fifteen"})
