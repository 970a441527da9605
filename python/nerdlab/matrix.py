"""One table for one run on several hosts: host × scenario × outcome.

``inv matrix`` (and ``inv repro`` with several targets) leaves one directory per
host inside the run, each an ordinary run directory. This module diagnoses each,
reads which nerdctl, containerd and runc the host ran from the version snapshots
the scenarios take (``state/*-version.txt``), and lays the outcomes side by side.
A host whose setup or repro failed has no result: it stays in the table, marked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nerdlab.diagnose import RunDiagnosis, diagnose_run
from nerdlab.errors import NerdlabError

__all__ = [
    "HostResult",
    "Matrix",
    "Versions",
    "build_matrix",
    "matrix_dict",
    "matrix_markdown",
    "read_versions",
    "render_matrix",
    "write_matrix",
]

NO_RESULT = "no result"

# `nerdctl version`: a "Client:" block then a "Server:" block, each with
# "Version:<tab>v…" lines; the first one under Server is containerd's.
_NERDCTL_CLIENT = re.compile(r"^Client:\s*\n\s*Version:\s*(\S+)", re.MULTILINE)
# The same output's "Server:" block: " containerd:" then "  Version:<tab>…", what
# the daemon nerdctl talked to says it is.
_NERDCTL_SERVER = re.compile(
    r"^Server:\s*\n\s*containerd:\s*\n\s*Version:\s*(\S+)", re.MULTILINE
)
# `containerd --version`: "containerd MODULE VERSION REVISION".
_CONTAINERD = re.compile(r"^containerd\s+\S+\s+(\S+)", re.MULTILINE)
# `runc --version`: "runc version VERSION".
_RUNC = re.compile(r"^runc version\s+(\S+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Versions:
    """What a host ran: nerdctl's own version, the containerd daemon and runc.

    The daemon's version is the one nerdctl's server block reports, so a containerd
    built from the checkout is named even where the distribution's is installed.
    """

    nerdctl: str | None = None
    containerd: str | None = None
    runc: str | None = None

    def summary(self) -> str:
        """``nerdctl v… · containerd … · runc …``, with ? for what is unknown."""
        return (
            f"nerdctl {self.nerdctl or '?'} · containerd {self.containerd or '?'} · "
            f"runc {self.runc or '?'}"
        )


@dataclass(frozen=True, slots=True)
class HostResult:
    """One host's part of the run: its diagnosis, or why it has none."""

    host: str
    directory: Path
    versions: Versions
    run: RunDiagnosis | None
    problem: str | None = None

    def outcome(self, scenario: str) -> str:
        """The scenario's outcome on this host, or ``no result``."""
        if self.run is None:
            return NO_RESULT
        for result in self.run.scenarios:
            if result.name == scenario:
                return result.diagnosis.outcome
        return NO_RESULT


@dataclass(frozen=True, slots=True)
class Matrix:
    """A run's hosts and the scenarios they all ran."""

    directory: Path
    scenarios: tuple[str, ...]
    hosts: tuple[HostResult, ...]

    @property
    def complete(self) -> bool:
        """Whether every host has a result for every scenario."""
        return all(
            host.outcome(name) != NO_RESULT
            for host in self.hosts
            for name in self.scenarios
        )


def _first_match(pattern: re.Pattern[str], path: Path) -> str | None:
    try:
        found = pattern.search(path.read_text(errors="replace"))
    except OSError:
        return None
    return found[1] if found else None


def read_versions(host_dir: Path) -> Versions:
    """Read the versions a host's scenarios recorded (the first that did)."""
    states = sorted(host_dir.glob("*/state"))
    for state in states:
        nerdctl_version = state / "nerdctl-version.txt"
        versions = Versions(
            nerdctl=_first_match(_NERDCTL_CLIENT, nerdctl_version),
            containerd=_first_match(_NERDCTL_SERVER, nerdctl_version)
            or _first_match(_CONTAINERD, state / "containerd-version.txt"),
            runc=_first_match(_RUNC, state / "runc-version.txt"),
        )
        if versions != Versions():
            return versions
    return Versions()


def _scenarios_of(host_dir: Path) -> list[str]:
    try:
        meta = json.loads((host_dir / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []
    names = meta.get("scenarios")
    return [str(n) for n in names] if isinstance(names, list) else []


def build_matrix(run_dir: Path, host_dirs: Mapping[str, Path]) -> Matrix:
    """Diagnose each host's directory (writing its reports) and gather the table."""
    scenarios: list[str] = []
    hosts = []
    for host, directory in host_dirs.items():
        for name in _scenarios_of(directory):
            if name not in scenarios:
                scenarios.append(name)
        run: RunDiagnosis | None = None
        problem = None
        if any(directory.glob("*/scenario.json")):
            try:
                run = diagnose_run(directory, write=True)
            except (NerdlabError, OSError) as err:
                problem = str(err)
        else:
            problem = "no scenario ran: see the setup and repro output for this host"
        hosts.append(
            HostResult(host, directory, read_versions(directory), run, problem)
        )
    return Matrix(run_dir, tuple(scenarios), tuple(hosts))


def matrix_dict(matrix: Matrix) -> dict[str, Any]:
    """The table as JSON-ready data."""
    return {
        "run": str(matrix.directory),
        "scenarios": list(matrix.scenarios),
        "hosts": [
            {
                "host": host.host,
                "directory": str(host.directory),
                "versions": {
                    "nerdctl": host.versions.nerdctl,
                    "containerd": host.versions.containerd,
                    "runc": host.versions.runc,
                },
                "outcomes": {name: host.outcome(name) for name in matrix.scenarios},
                "problem": host.problem,
            }
            for host in matrix.hosts
        ],
    }


def matrix_markdown(matrix: Matrix) -> str:
    """The table in Markdown: a row per host, a column per scenario."""
    header = ["host", "versions", *matrix.scenarios]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for host in matrix.hosts:
        cells = [
            host.host,
            host.versions.summary(),
            *(host.outcome(name) for name in matrix.scenarios),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_matrix(matrix: Matrix) -> None:
    """Write ``matrix.json`` and ``matrix.md`` into the run directory."""
    matrix.directory.mkdir(parents=True, exist_ok=True)
    (matrix.directory / "matrix.json").write_text(
        json.dumps(matrix_dict(matrix), indent=2, ensure_ascii=False) + "\n"
    )
    (matrix.directory / "matrix.md").write_text(matrix_markdown(matrix))


_OUTCOME_STYLE = {
    "REPRODUCED": "bold red",
    "FIXED": "bold green",
    "NOT REPRODUCED": "green",
    "INCONCLUSIVE": "yellow",
    NO_RESULT: "dim",
}


def render_matrix(matrix: Matrix, console: Console | None = None) -> None:
    """Print the table: a row per host with its versions, a column per scenario."""
    console = console or Console()
    table = Table(
        title=f"run {matrix.directory.name}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("host", overflow="fold")
    for name in matrix.scenarios:
        table.add_column(name, no_wrap=True)
    for host in matrix.hosts:
        label = Text(host.host, style="bold")
        label.append(f"\n{host.versions.summary()}", style="dim")
        cells = [
            Text(outcome, _OUTCOME_STYLE.get(outcome, ""))
            for outcome in (host.outcome(name) for name in matrix.scenarios)
        ]
        table.add_row(label, *cells)
    console.print(table, highlight=False)
    for host in matrix.hosts:
        where = host.problem or f"details in {host.directory}/"
        console.print(f"  {host.host}: {where}", highlight=False, soft_wrap=True)
