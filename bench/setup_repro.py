"""Time `inv setup` twice and `inv repro` once on one target, as a user runs them.

    .venv/bin/python bench/setup_repro.py --target ssh:dev@buildbox [--runs 3]

The first setup is as cold or warm as the target and workspace are; the second
measures what "nearly free" costs (it should copy and build nothing); repro is the
default scenario. Figures go to stdout as a table and, with --json FILE, to a file.
Settings come from the environment as for inv (INVOKE_NERDLAB_WORKSPACE, …).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
INV = Path(sys.executable).parent / "inv"


def _timed(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [str(INV), *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    took = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"inv {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr}")
    return took, done.stdout


def _changed(output: str) -> str:
    return ",".join(re.findall(r"changed=(\d+)", output)) or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="local")
    parser.add_argument("--runs", type=int, default=1, help="warm setups and repros")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    target = ["--target", args.target]
    first, output = _timed("setup", *target)
    rows = [("setup, first", [first], _changed(output))]
    warm, repro, changed = [], [], ""
    for _ in range(args.runs):
        took, output = _timed("setup", *target)
        warm.append(took)
        changed = _changed(output)
        took, _ = _timed("repro", *target, "--no-pull")
        repro.append(took)
    rows += [("setup, again", warm, changed), ("repro detached-attach", repro, "")]
    print(f"target {args.target}")
    for name, times, note in rows:
        median = statistics.median(times)
        spread = f"{min(times):.1f}-{max(times):.1f}" if len(times) > 1 else ""
        print(f"  {name:<24} {median:7.1f} s  {spread:>11}  changed={note}")
    if args.json:
        args.json.write_text(
            json.dumps({"target": args.target, "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
