"""The ``nerdlab trace`` command: files, stdin, run directories and bad input."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nerdlab import cli
from nerdlab.cli import main, trace_main

DATA = Path(__file__).parents[1] / "data"
SEED_01 = DATA / "cases" / "seed-01-detached-attach.txt"
SAMPLE = DATA / "runs" / "2026-12-03T1800-sample"


def _run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = trace_main(argv, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(cli.__all__) == ["build_parser", "main", "trace_main"]


def test_transcript_file() -> None:
    """A transcript file prints its block and exits 0."""
    code, out, err = _run([str(SEED_01)])
    assert (code, err) == (0, "")
    assert out.startswith("seed-01-detached-attach.txt  REPRODUCED  attach failed")


def test_stdin_dash() -> None:
    """``-`` reads standard input."""
    code, out, _ = _run(["-", "--json"], SEED_01.read_text())
    assert code == 0
    assert json.loads(out)["root_cause"] == "log-uri-treated-as-fifo"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--json"], '"error_chain"'),
        (["--format", "json"], '"error_chain"'),
        (["--format", "markdown"], "# seed-01-detached-attach.txt: REPRODUCED"),
        (["--format", "html"], "<!doctype html>"),
        (["--format", "terminal"], "root cause: log-uri-treated-as-fifo"),
    ],
    ids=["json-flag", "json", "markdown", "html", "terminal"],
)
def test_formats(argv: list[str], needle: str) -> None:
    """Each output form is chosen by its option."""
    code, out, _ = _run([str(SEED_01), *argv])
    assert code == 0
    assert needle in out


def test_address_option() -> None:
    """--address feeds the data store hash check."""
    _, out, _ = _run([str(SEED_01), "--json", "--address", "/run/other.sock"])
    check = json.loads(out)["data_store_hash"]
    assert (check["address"], check["address_source"], check["matches"]) == (
        "/run/other.sock",
        "option",
        False,
    )


def test_fixed_option() -> None:
    """--fixed reads a streaming attach as FIXED."""
    seed_04 = DATA / "cases" / "seed-04-fixed-detached-attach.txt"
    _, out, _ = _run([str(seed_04), "--json", "--fixed"])
    assert json.loads(out)["outcome"] == "FIXED"


def test_run_directory_and_write(tmp_path: Path) -> None:
    """A run directory is diagnosed per scenario; --write leaves the files."""
    run_dir = tmp_path / "run"
    shutil.copytree(SAMPLE, run_dir)
    code, out, _ = _run([str(run_dir), "--json", "--write"])
    assert code == 0
    assert [s["outcome"] for s in json.loads(out)["scenarios"]] == [
        "REPRODUCED",
        "FIXED",
        "INCONCLUSIVE",
    ]
    assert (run_dir / "summary.json").is_file()
    assert (run_dir / "detached-attach" / "report.md").is_file()


def test_scenario_directory() -> None:
    """A single scenario directory can be read on its own."""
    code, out, _ = _run([str(SAMPLE / "fixed-detached-attach")])
    assert code == 0
    assert out.startswith("fixed-detached-attach  FIXED")


BAD = [
    pytest.param(["/nonexistent/transcript.txt"], "no such file", id="missing-file"),
    pytest.param([str(DATA)], "without run.json", id="plain-directory"),
    pytest.param([str(SEED_01), "--format", "xml"], "invalid choice", id="bad-format"),
    pytest.param([], "required", id="no-target"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_input_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unusable input is one clear line on stderr and exit status 2."""
    code, out, err = _run(argv)
    err += capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert message in err


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    """The missing-file message is a single line naming the file."""
    code, _, err = _run([str(tmp_path / "nope.txt")])
    assert code == 2
    assert err.count("\n") == 1
    assert "nope.txt" in err


def test_main_dispatches_trace(capsys: pytest.CaptureFixture[str]) -> None:
    """``nerdlab trace`` goes to the same code as trace_main."""
    assert main(["trace", str(SEED_01), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["attach"] == "failed"


def test_main_without_command(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing sub-command is a usage error."""
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err


def test_console_script_pipes_plain_text() -> None:
    """The installed script streams stdin and prints no colour into a pipe."""
    script = Path(sys.executable).parent / "nerdlab"
    if not script.exists():
        pytest.skip("the nerdlab console script is not installed here")
    done = subprocess.run(
        [str(script), "trace", "-"],
        input=SEED_01.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "\x1b[" not in done.stdout
    assert "REPRODUCED" in done.stdout
