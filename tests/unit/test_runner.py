"""Steps run bounded in their own process group, and plans record every step."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from nerdlab import runner
from nerdlab.runner import list_tree, main, run_plan, run_step
from nerdlab.scenarios import load_scenario, render_plan

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios"
PLACEHOLDERS = (
    "ctr",
    "containerd",
    "runc",
    "address",
    "namespace",
    "attach_timeout",
    "fifo_dir",
)


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(runner.__all__) == [
        "StepResult",
        "list_tree",
        "main",
        "read_files",
        "run_plan",
        "run_step",
    ]


def live_members(pgid: int) -> list[int]:
    """Return the processes of a group that still run (zombies await their reaper)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in "ZX":
            members.append(int(stat_file.parent.name))
    return members


def group_is_gone(pgid: int, within_s: float = 1.0) -> bool:
    """Tell whether a process group has no running member left, waiting a little."""
    deadline = time.monotonic() + within_s
    while live_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_step_records_status_and_output(tmp_path: Path) -> None:
    """A step that exits on its own keeps its status, stdout and stderr in files."""
    result = run_step(
        "say",
        ["sh", "-c", 'echo "$GREETING"; pwd; echo oops >&2; exit 3'],
        tmp_path,
        timeout_s=10,
        env={"GREETING": "hello there"},
        cwd=tmp_path,
    )
    assert (result.rc, result.timed_out, result.ended_early, result.error) == (
        3,
        False,
        False,
        None,
    )
    assert (tmp_path / "say.stdout").read_text() == f"hello there\n{tmp_path}\n"
    assert (tmp_path / "say.stderr").read_text() == "oops\n"
    assert (result.stdout, result.stderr, result.lines_seen) == (
        "say.stdout",
        "say.stderr",
        2,
    )
    assert result.started <= result.finished


ENDLESS = [
    pytest.param(["yes", "line"], id="yes"),
    pytest.param(["sh", "-c", "while :; do echo line; done"], id="shell-loop"),
    pytest.param(
        ["sh", "-c", "trap '' TERM; while :; do echo line; sleep 0.1; done"],
        id="ignores-sigterm",
    ),
]


@pytest.mark.parametrize("argv", ENDLESS)
def test_stop_after_lines_ends_a_streaming_step(
    tmp_path: Path, argv: list[str]
) -> None:
    """A step that streams forever ends early once enough lines arrived."""
    result = run_step("attach", argv, tmp_path, timeout_s=30, stop_after_lines=3)
    assert result.ended_early
    assert not result.timed_out
    assert result.lines_seen >= 3
    assert result.duration_s < runner.KILL_GRACE_S + 3
    assert (tmp_path / "attach.stdout").read_text().startswith("line\nline\nline\n")


SLEEPERS = [
    pytest.param("echo $$ > pid; exec sleep 30", 2.0, id="sleep"),
    pytest.param("echo $$ > pid; sleep 30 & sleep 30; wait", 2.0, id="with-child"),
    pytest.param(
        "trap '' TERM; echo $$ > pid; sleep 30",
        runner.KILL_GRACE_S + 2.0,
        id="ignores-sigterm",
    ),
]


@pytest.mark.parametrize(("script", "slack_s"), SLEEPERS)
def test_timeout_kills_the_process_group(
    tmp_path: Path, script: str, slack_s: float
) -> None:
    """A step past its timeout is marked timed out and its whole group is gone."""
    result = run_step(
        "sleepy", ["sh", "-c", script], tmp_path, timeout_s=0.5, cwd=tmp_path
    )
    assert result.timed_out
    assert not result.ended_early
    assert result.rc is not None and result.rc < 0
    assert 0.5 <= result.duration_s < 0.5 + slack_s
    assert group_is_gone(int((tmp_path / "pid").read_text()))


def test_missing_binary_is_recorded(tmp_path: Path) -> None:
    """A program that cannot start is an error in the record, not an exception."""
    result = run_step("ghost", ["/nonexistent/nerdctl", "ps"], tmp_path, timeout_s=5)
    assert result.rc is None
    assert result.error == (
        "cannot start /nonexistent/nerdctl: No such file or directory"
    )
    assert (tmp_path / "ghost.stderr").read_text() == f"{result.error}\n"
    assert (tmp_path / "ghost.stdout").read_text() == ""


def test_list_tree_marks_fifos(tmp_path: Path) -> None:
    """A FIFO is listed with a 'p' mode, files and directories with theirs."""
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "sub" / "f26c-stdout")
    (tmp_path / "sub" / "plain").write_text("12345")
    lines = list_tree(tmp_path)
    modes = {line.rsplit(" ", 1)[1]: line.split()[0] for line in lines}
    assert modes[str(tmp_path)].startswith("d")
    assert modes[str(tmp_path / "sub" / "f26c-stdout")].startswith("p")
    assert modes[str(tmp_path / "sub" / "plain")].startswith("-")
    assert lines[-1].split()[1] == "5"


def test_list_tree_of_a_missing_directory(tmp_path: Path) -> None:
    """A directory that does not exist is one line that says so."""
    assert list_tree(tmp_path / "gone") == [f"{tmp_path / 'gone'}: does not exist"]


def step(name: str, script: str, **fields: object) -> dict[str, object]:
    return {"name": name, "argv": ["sh", "-c", script], "timeout_s": 10, **fields}


def test_run_plan_aborts_but_runs_cleanup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a failed abort_on_failure step only the always steps run."""
    fifos = tmp_path / "fifos"
    fifos.mkdir()
    os.mkfifo(fifos / "init-stdout")
    plan = {
        "scenario": {"name": "tiny"},
        "context": {"image": "busybox"},
        "env": {"NERDCTL_TOML": "/etc/nerdctl.toml"},
        "steps": [
            step("clean", "exit 1", expect_rc=None),
            step("version", 'echo "toml=$NERDCTL_TOML"', state="version"),
            step("run", "exit 2", abort_on_failure=True),
            step("attach", "touch attach-ran"),
            {"name": "fifo-dir", "kind": "tree", "paths": [str(fifos)]},
            {
                "name": "fifo-after",
                "kind": "tree",
                "paths": [str(fifos)],
                "always": True,
            },
            step("remove", "touch remove-ran; exit 3", always=True, expect_rc=3),
        ],
    }
    out = tmp_path / "run"
    assert run_plan(plan, out) == 1

    records = sorted(p.name for p in (out / "steps").iterdir())
    assert records == [
        "01-clean.json", "01-clean.stderr", "01-clean.stdout",
        "02-version.json", "02-version.stderr", "02-version.stdout",
        "03-run.json", "03-run.stderr", "03-run.stdout",
        "07-remove.json", "07-remove.stderr", "07-remove.stdout",
    ]  # fmt: skip
    assert not (out / "attach-ran").exists()
    assert (out / "remove-ran").exists()
    run_record = json.loads((out / "steps" / "03-run.json").read_text())
    assert (run_record["rc"], run_record["stdout"]) == (2, "03-run.stdout")
    assert sorted(p.name for p in (out / "state").iterdir()) == [
        "fifo-after.txt",
        "version.txt",
    ]
    assert (out / "state" / "version.txt").read_text() == "toml=/etc/nerdctl.toml\n"
    tree = (out / "state" / "fifo-after.txt").read_text().splitlines()
    assert tree[-1].startswith("p") and tree[-1].endswith("init-stdout")
    assert json.loads((out / "scenario.json").read_text()) == {"name": "tiny"}
    assert json.loads((out / "context.json").read_text()) == {"image": "busybox"}
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == [
        "clean",
        "version",
        "run",
        "remove",
    ]


def test_run_plan_counts_ended_early_as_success(tmp_path: Path) -> None:
    """A streaming step that ended early passes whatever its exit status."""
    plan = {"steps": [step("attach", "yes", stop_after_lines=2)]}
    assert run_plan(plan, tmp_path) == 0
    record = json.loads((tmp_path / "steps" / "01-attach.json").read_text())
    assert record["ended_early"] is True


HOSTILE = [
    pytest.param("a b; rm -rf /", id="space-semicolon"),
    pytest.param("$(touch pwned)", id="command-substitution"),
    pytest.param("`touch pwned` | tee pwned", id="backticks-pipe"),
]


@pytest.mark.parametrize("value", HOSTILE)
def test_rendered_hostile_value_reaches_the_program_whole(
    tmp_path: Path, value: str
) -> None:
    """A rendered plan passes a hostile value as one argument; no shell ever sees it."""
    scenario = load_scenario(SHIPPED / "detached-attach.yml")
    context = {key: "5" for key in PLACEHOLDERS}
    plan = render_plan(scenario, {**context, "nerdctl": sys.executable, "image": value})
    run = next(s for s in plan["steps"] if s["name"] == "run")
    argv = [sys.executable, "-c", "import sys; print(sys.argv[1:])", *run["argv"][1:]]
    only = {"steps": [{**run, "argv": argv, "timeout_s": 10}]}
    assert run_plan(only, tmp_path) == 0
    printed = (tmp_path / "steps" / "01-run.stdout").read_text()
    assert printed == f"{run['argv'][1:]!r}\n"
    assert value in run["argv"]
    assert not (tmp_path / "pwned").exists()


def test_main_runs_a_plan_file(tmp_path: Path) -> None:
    """The command line reads a plan file and writes the run directory."""
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"steps": [step("hello", "echo hi")]}))
    assert main([str(plan_file), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "steps" / "01-hello.stdout").read_text() == "hi\n"


def test_main_needs_two_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    """The command line without a plan and an output directory prints its usage."""
    assert main([]) == 2
    usage = "usage: python3 -m nerdlab.runner PLAN.json OUT_DIR"
    assert usage in capsys.readouterr().err
