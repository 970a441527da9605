"""What the end-to-end tests share: running `inv` in this clone, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
INV = Path(sys.executable).parent / "inv"
MIRRORS = os.environ.get("INVOKE_NERDLAB_MIRRORS", "")


def run_inv(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `inv ARGS` in the clone with extra environment; print the output's tail."""
    done = subprocess.run(
        [str(INV), *args],
        cwd=PROJECT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    print(done.stdout[-6000:], done.stderr[-2000:])
    return done
