"""A pty step drives a program as a person at a terminal would, within its bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerdlab.terminal import run_pty_step

PROMPTER = ["sh", "-c", "printf 'ready# '; read x; echo got:$x; sleep 30"]


@pytest.mark.parametrize(
    ("script", "stop", "done", "early"),
    [
        pytest.param(
            [{"expect": "ready#"}, {"send": "hello\\r"}, {"expect": "got:hello"}],
            True,
            True,
            True,
            id="script-done-stops-early",
        ),
        pytest.param(
            [{"expect": "never-printed"}],
            True,
            False,
            False,
            id="unmet-expect-times-out",
        ),
    ],
)
def test_script_outcomes(
    tmp_path: Path, script: list[dict[str, str]], stop: bool, done: bool, early: bool
) -> None:
    """The record says whether the script finished and why the step ended."""
    record = run_pty_step(
        PROMPTER, tmp_path, "t", script=script, timeout_s=3, stop_after_script=stop
    )
    assert record["script_done"] is done
    assert record["ended_early"] is early
    assert record["timed_out"] is (not done)
    assert record["duration_s"] < 10


def test_the_program_has_a_terminal_and_stderr_stays_apart(tmp_path: Path) -> None:
    """stdin is a tty (the program sees one) and stderr goes to its own file."""
    argv = ["sh", "-c", "test -t 0 && echo tty-yes; echo to-stderr >&2"]
    record = run_pty_step(argv, tmp_path, "t", script=[], timeout_s=5)
    assert record["rc"] == 0
    assert "tty-yes" in (tmp_path / "t.stdout").read_text()
    assert (tmp_path / "t.stderr").read_text() == "to-stderr\n"


def test_detach_keys_are_sent_as_control_bytes(tmp_path: Path) -> None:
    """An escaped control sequence in the script arrives as the bytes it names."""
    argv = ["sh", "-c", "stty raw -echo; head -c 2 | od -An -tx1"]
    script = [{"sleep": "0.5"}, {"send": "\\x10\\x11"}]
    record = run_pty_step(argv, tmp_path, "t", script=script, timeout_s=5)
    assert record["rc"] == 0
    assert "10 11" in (tmp_path / "t.stdout").read_text()


def test_a_missing_program_is_recorded(tmp_path: Path) -> None:
    """A program that cannot start gives an error record, not an exception."""
    record = run_pty_step(["/nonexistent/prog"], tmp_path, "t", script=[], timeout_s=2)
    assert record["error"].startswith("cannot start /nonexistent/prog")
