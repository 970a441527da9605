"""Run one scenario plan on the target and record it as a run directory.

This module runs where the containers run (this host, a VM, an SSH host), so it uses
the standard library alone. The controller renders a scenario into a JSON plan: a list
of steps with their argv (never a shell line), bounds and, for streaming steps, how
many output lines end the step early. Every step lands in ``steps/`` as JSON plus its
raw stdout and stderr; cleanup steps run even when an earlier step failed.

    python3 -m nerdlab.runner PLAN.json OUT_DIR
"""

from __future__ import annotations

import glob
import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["StepResult", "list_tree", "main", "read_files", "run_plan", "run_step"]

KILL_GRACE_S = 2.0


@dataclass(slots=True)
class StepResult:
    """What one step did: the record written to ``steps/NN-name.json``."""

    name: str
    argv: list[str]
    rc: int | None
    started: str
    finished: str
    duration_s: float
    timed_out: bool = False
    ended_early: bool = False
    stdout: str = ""
    stderr: str = ""
    lines_seen: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """End a step's process group: SIGTERM, then SIGKILL after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=KILL_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def run_step(
    name: str,
    argv: list[str],
    out_dir: Path,
    *,
    timeout_s: float,
    stop_after_lines: int = 0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> StepResult:
    """Run argv with a hard time bound, streaming its output into files.

    With ``stop_after_lines`` the step ends as soon as that many stdout lines arrived:
    an attach that works streams forever, and a few lines are the answer.
    """
    stdout_path = out_dir / f"{name}.stdout"
    stderr_path = out_dir / f"{name}.stderr"
    started, clock = _now(), time.monotonic()
    result = StepResult(
        name,
        argv,
        None,
        started,
        started,
        0.0,
        stdout=stdout_path.name,
        stderr=stderr_path.name,
    )
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            result.error = f"cannot start {argv[0]}: {exc.strerror}"
            err.write(f"{result.error}\n".encode())
            result.finished = _now()
            return result
        assert proc.stdout is not None and proc.stderr is not None
        sinks = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
        selector = selectors.DefaultSelector()
        for stream in (proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
            selector.register(stream, selectors.EVENT_READ)
        deadline = clock + timeout_s
        open_streams = 2
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                result.timed_out = True
                break
            for key, _ in selector.select(timeout=min(remaining, 0.5)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                sinks[key.fd].write(chunk)
                sinks[key.fd].flush()
                if key.fd == proc.stdout.fileno():
                    result.lines_seen += chunk.count(b"\n")
            if stop_after_lines and result.lines_seen >= stop_after_lines:
                result.ended_early = True
                break
        selector.close()
        if result.timed_out or result.ended_early:
            stop_group(proc)
        else:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), KILL_GRACE_S))
            except subprocess.TimeoutExpired:
                result.timed_out = True
                stop_group(proc)
        result.rc = proc.returncode
        if proc.stdin is not None:
            proc.stdin.close()
    result.finished = _now()
    result.duration_s = round(time.monotonic() - clock, 3)
    return result


def list_tree(root: Path) -> list[str]:
    """List a directory tree with file types, ``ls -l`` style (``p`` marks a FIFO)."""
    if not root.exists():
        return [f"{root}: does not exist"]
    lines = []
    for path in sorted([root, *root.rglob("*")]):
        try:
            info = path.lstat()
        except OSError as exc:
            lines.append(f"?????????? {path}: {exc.strerror}")
            continue
        lines.append(f"{stat.filemode(info.st_mode)} {info.st_size:>8} {path}")
    return lines


def read_files(patterns: list[str], max_lines: int) -> list[str]:
    """Read the first lines of every file matching the glob patterns, ``head`` style."""
    lines: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            lines.append(f"==> {pattern}: no such file <==")
        for path in matches:
            lines.append(f"==> {path} <==")
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    for number, line in enumerate(handle):
                        if number >= max_lines:
                            break
                        lines.append(line.rstrip("\n"))
            except OSError as exc:
                lines.append(f"cannot read: {exc.strerror}")
    return lines


def _write_step(steps_dir: Path, index: int, result: StepResult) -> None:
    record = asdict(result)
    record["stdout"] = f"{index:02d}-{result.stdout}"
    record["stderr"] = f"{index:02d}-{result.stderr}"
    for key in ("stdout", "stderr"):
        (steps_dir / getattr(result, key)).rename(steps_dir / record[key])
    (steps_dir / f"{index:02d}-{result.name}.json").write_text(
        json.dumps(record, indent=2) + "\n", encoding="utf-8"
    )


def _run_pty(
    step: dict[str, Any], steps_dir: Path, env: dict[str, str], cwd: Path
) -> StepResult:
    from nerdlab.terminal import run_pty_step

    started = _now()
    record = run_pty_step(
        [str(a) for a in step["argv"]],
        steps_dir,
        step["name"],
        script=step.get("script", []),
        timeout_s=float(step.get("timeout_s", 60)),
        stop_after_script=bool(step.get("stop_after_script")),
        env=env,
        cwd=cwd,
    )
    return StepResult(
        name=step["name"],
        argv=[str(a) for a in step["argv"]],
        rc=record["rc"],
        started=started,
        finished=_now(),
        duration_s=float(record.get("duration_s", 0.0)),
        timed_out=bool(record["timed_out"]),
        ended_early=bool(record["ended_early"]),
        stdout=record["stdout"],
        stderr=record["stderr"],
        error=record["error"],
        extra={
            "script_done": record["script_done"],
            "script_stopped_at": record["script_stopped_at"],
            "terminal": True,
        },
    )


def run_plan(plan: dict[str, Any], out_dir: Path) -> int:
    """Run every step of a plan into ``out_dir``; return the number of failed steps.

    A step fails when its exit status is not the one it expects (``expect_rc``,
    default 0; ``null`` accepts any). Cleanup steps (``always: true``) run regardless.
    """
    steps_dir = out_dir / "steps"
    state_dir = out_dir / "state"
    steps_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(exist_ok=True)
    for name in ("scenario", "context"):
        (out_dir / f"{name}.json").write_text(
            json.dumps(plan.get(name, {}), indent=2) + "\n", encoding="utf-8"
        )
    env = {k: str(v) for k, v in plan.get("env", {}).items()}
    failed = 0
    aborted = False
    for index, step in enumerate(plan["steps"], start=1):
        if aborted and not step.get("always"):
            continue
        if step.get("kind") == "read":
            lines = read_files(step["paths"], int(step.get("max_lines", 20)))
            (state_dir / f"{step['name']}.txt").write_text("\n".join(lines) + "\n")
            continue
        if step.get("kind") == "tree":
            lines = [line for root in step["paths"] for line in list_tree(Path(root))]
            (state_dir / f"{step['name']}.txt").write_text("\n".join(lines) + "\n")
            continue
        if step.get("kind") == "pty":
            result = _run_pty(step, steps_dir, env, out_dir)
        else:
            result = run_step(
                step["name"],
                [str(a) for a in step["argv"]],
                steps_dir,
                timeout_s=float(step.get("timeout_s", 60)),
                stop_after_lines=int(step.get("stop_after_lines", 0)),
                env=env,
                cwd=out_dir,
            )
        expected = step.get("expect_rc", 0)
        ok = result.ended_early or expected is None or result.rc == expected
        if step.get("kind") == "pty":
            ok = ok and bool(result.extra.get("script_done"))
        result.extra["failed"] = not ok
        result.extra["stops_scenario"] = bool(not ok and step.get("abort_on_failure"))
        result.extra["diagnose"] = bool(step.get("diagnose", True))
        if step.get("measure"):
            result.extra["measure"] = str(step["measure"])
            result.extra["yes_when"] = str(step.get("yes_when", "rc0"))
        _write_step(steps_dir, index, result)
        if step.get("state"):
            stdout = (steps_dir / f"{index:02d}-{result.stdout}").read_text(
                errors="replace"
            )
            (state_dir / f"{step['state']}.txt").write_text(stdout)
        if not ok:
            failed += 1
            aborted = aborted or bool(step.get("abort_on_failure"))
        print(
            f"  {step['name']:<14} rc={result.rc} {result.duration_s:6.2f}s"
            + (" (ended early: output arrived)" if result.ended_early else "")
            + (" (timed out)" if result.timed_out else ""),
            flush=True,
        )
    return failed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python3 -m nerdlab.runner PLAN.json OUT_DIR", file=sys.stderr)
        return 2
    plan = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    out_dir = Path(args[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    run_plan(plan, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
