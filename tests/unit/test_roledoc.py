"""Role READMEs render from argument_specs, and the shipped ones match their specs."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from nerdlab import roledoc
from nerdlab.errors import ConfigError
from nerdlab.roledoc import HEADER, main, render_role_readme, stale_readmes

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = REPO_ROOT / "roles"
GROUP_VARS = REPO_ROOT / "playbooks" / "group_vars" / "all.yml"
ROLE_NAMES = sorted(path.name for path in ROLES.iterdir() if (path / "tasks").is_dir())


def write_role(root: Path, name: str, spec: str) -> Path:
    """Write a role with a tasks file and the given argument_specs; return its dir."""
    role = root / name
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text("---\n[]\n")
    (role / "meta").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(textwrap.dedent(spec))
    return role


def one_option(option: str) -> str:
    """Return a spec whose main entry point has the one option given as YAML."""
    body = textwrap.indent(textwrap.dedent(option), " " * 6)
    return f"---\nargument_specs:\n  main:\n    options:\n{body}"


def test_public_api() -> None:
    """The module exports exactly its documented names."""
    assert sorted(roledoc.__all__) == [
        "HEADER",
        "SPEC_FILE",
        "main",
        "render_role_readme",
        "stale_readmes",
        "write_readmes",
    ]


ROWS = [
    pytest.param(
        "demo_name: {type: str, default: alpine, description: Image to run.}",
        "| `demo_name` | str | `alpine` | Image to run. |",
        id="plain-str",
    ),
    pytest.param(
        "demo_dir: {type: str, default: '{{ base | dirname }}/x', description: Where.}",
        "| `demo_dir` | str | `{{ base \\| dirname }}/x` | Where. |",
        id="jinja-pipe-escaped",
    ),
    pytest.param(
        "demo_owner: {type: str, default: '', description: Owner.}",
        '| `demo_owner` | str | `""` | Owner. |',
        id="empty-str",
    ),
    pytest.param(
        "demo_version: {type: str, default: '1.21', description: Oldest.}",
        "| `demo_version` | str | `1.21` | Oldest. |",
        id="numeric-looking-str",
    ),
    pytest.param(
        "demo_items: {type: list, elements: str, default: [a, b], description: Names.}",
        '| `demo_items` | list of str | `["a", "b"]` | Names. |',
        id="list-of-str",
    ),
    pytest.param(
        "demo_map: {type: dict, default: {amd64: x}, description: Sums.}",
        '| `demo_map` | dict | `{"amd64": "x"}` | Sums. |',
        id="dict",
    ),
    pytest.param(
        "demo_pull: {type: bool, default: true, description: Pull.}",
        "| `demo_pull` | bool | `true` | Pull. |",
        id="bool",
    ),
    pytest.param(
        "demo_wait_s: {type: int, default: 30, description: Seconds.}",
        "| `demo_wait_s` | int | `30` | Seconds. |",
        id="int",
    ),
    pytest.param(
        "demo_mode: {type: str, default: work, choices: [replace, work],"
        " description: How.}",
        "| `demo_mode` | str | `work` | How. One of `replace`, `work`. |",
        id="choices",
    ),
    pytest.param(
        "demo_ref: {type: str, required: true, description: [One., Two.]}",
        "| `demo_ref` | str | required | One. Two. |",
        id="required-list-description",
    ),
    pytest.param(
        "demo_raw: {type: raw, description: Anything.}",
        "| `demo_raw` | raw |  | Anything. |",
        id="no-default",
    ),
    pytest.param(
        "demo_tick: {type: str, default: 'a`b', description: Tick.}",
        "| `demo_tick` | str | ``a`b`` | Tick. |",
        id="backtick-in-default",
    ),
]


@pytest.mark.parametrize(("option", "row"), ROWS)
def test_option_row(tmp_path: Path, option: str, row: str) -> None:
    """Each option becomes one table row: name, type, default as written, text."""
    role = write_role(tmp_path, "demo", one_option(option))
    assert row in render_role_readme(role).splitlines()


def test_whole_readme(tmp_path: Path) -> None:
    """A README has a header, a title and a section per entry point, main first."""
    role = write_role(
        tmp_path,
        "demo",
        """\
        ---
        argument_specs:
          extra:
            short_description: Do the extra part
            options: {}
          main:
            short_description: Do the main part.
            description:
              - >-
                First paragraph,
                folded.
              - Second paragraph.
            options:
              demo_wait_s:
                type: int
                default: 10
                description: Seconds to wait.
        """,
    )
    assert render_role_readme(role) == textwrap.dedent(
        f"""\
        {HEADER}

        # demo

        ## Entry point `main` (tasks/main.yml)

        Do the main part.

        First paragraph, folded.

        Second paragraph.

        | Variable | Type | Default | Description |
        |---|---|---|---|
        | `demo_wait_s` | int | `10` | Seconds to wait. |

        ## Entry point `extra` (tasks/extra.yml)

        Do the extra part.

        This entry point takes no variables.
        """
    )


BAD_SPECS = [
    pytest.param(None, "cannot read", id="missing"),
    pytest.param("argument_specs: [\n", "not valid YAML", id="broken-yaml"),
    pytest.param("---\n- main\n", "no argument_specs mapping", id="not-a-mapping"),
    pytest.param("argument_specs: {}\n", "no argument_specs mapping", id="empty"),
    pytest.param("argument_specs: {main: [a]}\n", "'main' is not a mapping", id="ep"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_bad_spec(tmp_path: Path, spec: str | None, message: str) -> None:
    """A spec file that is missing or malformed is a ConfigError naming the file."""
    role = write_role(tmp_path, "demo", spec or "")
    if spec is None:
        (role / "meta" / "argument_specs.yml").unlink()
    with pytest.raises(ConfigError, match=message) as caught:
        render_role_readme(role)
    assert "argument_specs.yml" in str(caught.value)


def test_main_rewrites_then_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check fails naming stale READMEs; a plain run fixes them and says so."""
    spec = one_option("demo_x: {type: str, default: a, description: X.}")
    first = write_role(tmp_path, "first", spec)
    second = write_role(tmp_path, "second", spec)
    (tmp_path / "not_a_role").mkdir()
    (second / "README.md").write_text(render_role_readme(second))

    assert main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{first / 'README.md'} is out of date" in err
    assert "second" not in err

    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"wrote {first / 'README.md'}\n"
    assert main(["--check", str(tmp_path)]) == 0
    assert stale_readmes(tmp_path) == []


def test_main_reports_a_bad_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A role without a spec makes the run fail with one line naming the file."""
    write_role(tmp_path, "demo", "")
    (tmp_path / "demo" / "meta" / "argument_specs.yml").unlink()
    assert main([str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("nerdlab.roledoc: cannot read ")


# The shipped roles.


def load(path: Path) -> dict[str, Any]:
    """Return a YAML mapping, or an empty one for an empty file."""
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return data or {}


def entry_points(role: str) -> dict[str, dict[str, Any]]:
    """Return the entry points of a shipped role's argument_specs."""
    specs: dict[str, dict[str, Any]] = load(ROLES / role / "meta/argument_specs.yml")[
        "argument_specs"
    ]
    return specs


def test_shipped_readmes_are_current() -> None:
    """Every roles/*/README.md is what `python -m nerdlab.roledoc roles/` writes."""
    assert stale_readmes(ROLES) == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_default_is_in_main(role: str) -> None:
    """Each variable in defaults/main.yml is a main option with the same default."""
    defaults = load(ROLES / role / "defaults" / "main.yml")
    options = entry_points(role)["main"].get("options") or {}
    missing = sorted(set(defaults) - set(options))
    assert missing == [], f"{role}: defaults missing from argument_specs main"
    for name, value in defaults.items():
        assert options[name].get("default") == value, f"{role}: {name} default"
        assert not options[name].get("required", False), f"{role}: {name} required"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_role_option_is_a_default(role: str) -> None:
    """Each role-prefixed option, in every entry point, is set in defaults/main.yml."""
    defaults = load(ROLES / role / "defaults" / "main.yml")
    for entry, spec in entry_points(role).items():
        own = {
            name for name in spec.get("options") or {} if name.startswith(f"{role}_")
        }
        extra = sorted(own - set(defaults))
        assert extra == [], f"{role}: {entry} options missing from defaults"
        assert (ROLES / role / "tasks" / f"{entry}.yml").is_file()


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_shared_options_match_group_vars(role: str) -> None:
    """Shared nerdlab_* options are optional and default as group_vars sets them."""
    shared = load(GROUP_VARS)
    for entry, spec in entry_points(role).items():
        for name, option in (spec.get("options") or {}).items():
            if name.startswith(f"{role}_"):
                continue
            where = f"{role}: {entry}: {name}"
            assert name.startswith("nerdlab_"), f"{where} belongs to another role"
            assert name in shared, f"{where} is not in group_vars/all.yml"
            assert option.get("default") == shared[name], f"{where} default"
            assert option.get("required") is False, f"{where} must be required: false"
