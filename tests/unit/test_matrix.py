"""One run on several hosts is one table: host × scenario × outcome, with versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from nerdlab.matrix import (
    NO_RESULT,
    Versions,
    build_matrix,
    matrix_dict,
    matrix_markdown,
    read_versions,
    render_matrix,
    write_matrix,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "runs"
REAL = DATA / "real-v2.0.0-beta.2-detached-attach"


def _host_dir(run: Path, host: str) -> Path:
    """Lay a real recorded run out as one host's part of a matrix run."""
    directory = run / host
    shutil.copytree(REAL, directory)
    (directory / "run.json").write_text(
        json.dumps({"id": run.name, "target": host, "scenarios": ["detached-attach"]})
    )
    return directory


def test_read_versions_from_a_real_run() -> None:
    """The versions come from the scenario's nerdctl, containerd and runc snapshots."""
    assert read_versions(REAL) == Versions(
        nerdctl="v2.0.0-beta.2-2-gf4c85c61", containerd="1.6.20~ds1", runc="1.1.5+ds1"
    )


def test_read_versions_of_a_host_without_snapshots(tmp_path: Path) -> None:
    """A host that recorded nothing has unknown versions, shown as ?."""
    versions = read_versions(tmp_path)
    assert versions == Versions()
    assert versions.summary() == "nerdctl ? · containerd ? · runc ?"


@pytest.fixture
def matrix_run(tmp_path: Path) -> Path:
    run = tmp_path / "20261204-120000"
    _host_dir(run, "local")
    _host_dir(run, "dev@127.0.0.1-2222")
    (run / "broken-host").mkdir()
    return run


def test_build_matrix_keeps_a_host_without_result(matrix_run: Path) -> None:
    """Every host is a row; one whose repro left nothing is marked, not dropped."""
    hosts = {
        name: matrix_run / name
        for name in ("local", "dev@127.0.0.1-2222", "broken-host")
    }
    matrix = build_matrix(matrix_run, hosts)
    assert matrix.scenarios == ("detached-attach",)
    outcomes = {h.host: h.outcome("detached-attach") for h in matrix.hosts}
    assert outcomes == {
        "local": "REPRODUCED",
        "dev@127.0.0.1-2222": "REPRODUCED",
        "broken-host": NO_RESULT,
    }
    assert not matrix.complete
    broken = matrix.hosts[2]
    assert broken.problem is not None and "no scenario ran" in broken.problem
    assert (matrix_run / "local" / "detached-attach" / "diagnosis.json").exists()


def test_matrix_files_and_json(matrix_run: Path) -> None:
    """matrix.json and matrix.md are written in the run with a row per host."""
    hosts = {"local": matrix_run / "local", "ssh": matrix_run / "dev@127.0.0.1-2222"}
    matrix = build_matrix(matrix_run, hosts)
    assert matrix.complete
    write_matrix(matrix)
    data = json.loads((matrix_run / "matrix.json").read_text())
    assert data == matrix_dict(matrix)
    assert [h["host"] for h in data["hosts"]] == ["local", "ssh"]
    assert data["hosts"][0]["versions"]["containerd"] == "1.6.20~ds1"
    markdown = (matrix_run / "matrix.md").read_text()
    assert markdown == matrix_markdown(matrix)
    assert markdown.splitlines()[0] == "| host | versions | detached-attach |"
    assert "| ssh | nerdctl v2.0.0-beta.2-2-gf4c85c61" in markdown


def test_render_matrix_fits_a_terminal(matrix_run: Path) -> None:
    """The table names each host, its versions and outcome, then where details are."""
    hosts = {"local": matrix_run / "local"}
    console = Console(width=88, record=True, color_system=None)
    render_matrix(build_matrix(matrix_run, hosts), console)
    text = console.export_text()
    assert "REPRODUCED" in text
    assert "containerd 1.6.20~ds1" in text
    assert f"local: details in {matrix_run / 'local'}/" in text
    table = text.split("  local: details")[0]
    assert max(len(line.rstrip()) for line in table.splitlines()) <= 88
