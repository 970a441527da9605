"""Render each role's README.md from its meta/argument_specs.yml.

A role's interface is written once, in ``meta/argument_specs.yml``, the file
ansible-core validates a role's variables against before its first task. The README
beside it is generated from that file, so the two cannot disagree:

    python -m nerdlab.roledoc roles/            rewrite every roles/*/README.md
    python -m nerdlab.roledoc --check roles/    exit 1 and name the stale ones

A spec that cannot be read raises :class:`~nerdlab.errors.ConfigError`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from nerdlab.errors import ConfigError

__all__ = [
    "HEADER",
    "SPEC_FILE",
    "main",
    "render_role_readme",
    "stale_readmes",
    "write_readmes",
]

SPEC_FILE = Path("meta") / "argument_specs.yml"
HEADER = (
    "<!-- Generated from meta/argument_specs.yml by "
    "`python -m nerdlab.roledoc roles/`; edit that file, not this one. -->"
)


def _load_specs(role_dir: Path) -> dict[str, Mapping[str, Any]]:
    """Return the entry points of a role's argument_specs, ``main`` first."""
    path = role_dir / SPEC_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    specs = data.get("argument_specs") if isinstance(data, dict) else None
    if not isinstance(specs, dict) or not specs:
        raise ConfigError(f"{path} has no argument_specs mapping; add a main entry")
    for name, spec in specs.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: entry point {name!r} is not a mapping")
    return dict(sorted(specs.items(), key=lambda item: (item[0] != "main", item[0])))


def _paragraphs(text: object) -> list[str]:
    """Return a description (a string or a list of them) as paragraphs."""
    if text is None:
        return []
    items = text if isinstance(text, list) else [text]
    return [" ".join(str(item).split()) for item in items if str(item).strip()]


def _cell(text: str) -> str:
    """Return text safe inside a Markdown table cell (pipes would end the cell)."""
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    """Return text as a Markdown code span, fenced past any backticks inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _type(option: Mapping[str, Any]) -> str:
    """Return an option's type as a reader says it: ``list of str``."""
    kind = str(option.get("type", "str"))
    elements = option.get("elements")
    return f"{kind} of {elements}" if kind == "list" and elements else kind


def _default(option: Mapping[str, Any]) -> str:
    """Return an option's default as it is written in YAML, or why it has none."""
    if option.get("required"):
        return "required"
    if "default" not in option or option["default"] is None:
        return ""
    value = option["default"]
    if isinstance(value, str):
        return _code(value) if value else '`""`'
    return _code(json.dumps(value))


def _description(option: Mapping[str, Any]) -> str:
    """Return an option's description, with its choices when it has some."""
    text = " ".join(_paragraphs(option.get("description")))
    choices = option.get("choices")
    if choices:
        listed = ", ".join(_code(str(choice)) for choice in choices)
        text = f"{text} One of {listed}.".strip()
    return text


def _table(options: Mapping[str, Any]) -> list[str]:
    """Return the Markdown table of an entry point's options."""
    if not options:
        return ["This entry point takes no variables."]
    rows = ["| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for name, option in options.items():
        option = option if isinstance(option, Mapping) else {}
        cells = (_code(name), _type(option), _default(option), _description(option))
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return rows


def render_role_readme(role_dir: Path) -> str:
    """Return the README.md of the role in role_dir, rendered from its spec file."""
    lines = [HEADER, "", f"# {role_dir.name}", ""]
    for name, spec in _load_specs(role_dir).items():
        tasks = "tasks/main.yml" if name == "main" else f"tasks/{name}.yml"
        lines += [f"## Entry point `{name}` ({tasks})", ""]
        short = " ".join(str(spec.get("short_description", "")).split())
        if short:
            lines += [short.rstrip(".") + ".", ""]
        for paragraph in _paragraphs(spec.get("description")):
            lines += [paragraph, ""]
        lines += [*_table(spec.get("options") or {}), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _role_dirs(roles: Path) -> list[Path]:
    """Return the role directories under roles, in name order."""
    return sorted(path for path in roles.iterdir() if (path / "tasks").is_dir())


def stale_readmes(roles: Path) -> list[Path]:
    """Return the README.md files under roles that differ from their rendering."""
    stale = []
    for role_dir in _role_dirs(roles):
        readme = role_dir / "README.md"
        current = readme.read_text(encoding="utf-8") if readme.is_file() else None
        if current != render_role_readme(role_dir):
            stale.append(readme)
    return stale


def write_readmes(roles: Path) -> list[Path]:
    """Rewrite the README.md files under roles that are stale; return those."""
    stale = stale_readmes(roles)
    for readme in stale:
        readme.write_text(render_role_readme(readme.parent), encoding="utf-8")
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite or check every role README; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m nerdlab.roledoc",
        description="Render roles/*/README.md from meta/argument_specs.yml.",
    )
    parser.add_argument("roles", type=Path, help="directory of the roles (roles/)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 and name each README that is out of date",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_readmes(args.roles)
            for readme in stale:
                print(f"{readme} is out of date", file=sys.stderr)
            if stale:
                print(f"run: python -m nerdlab.roledoc {args.roles}", file=sys.stderr)
            return 1 if stale else 0
        for readme in write_readmes(args.roles):
            print(f"wrote {readme}")
    except (ConfigError, OSError) as err:
        print(f"nerdlab.roledoc: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
