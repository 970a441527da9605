"""detached-attach across nerdctl versions, on the real stack (needs mirrors and root).

The same probe data and fix serve every version; nerdctl v2.x builds against
containerd v2, so setup also builds and runs containerd from the checkout. Runs only
where INVOKE_NERDLAB_MIRRORS is set: the module proxy does not serve every version.
nerdctl main is left out: it needs tags.cncf.io/container-device-interface at a
pseudo-version the Go module proxy reachable here refuses (403), and nerdctl has no
vendor/ to build from.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from stack import MIRRORS, run_inv

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the real stack needs root"),
    pytest.mark.skipif(not MIRRORS, reason="the version span needs mirrors"),
]


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    run_inv("clean", env={})


@pytest.mark.parametrize("ref", ["v1.7.7", "v2.1.6"])
def test_detached_attach_and_the_fix_across_versions(tmp_path: Path, ref: str) -> None:
    """Each version reproduces the bug, and its candidate-fix build streams."""
    env = {
        "INVOKE_NERDLAB_WORKSPACE": str(tmp_path / "workspace"),
        "INVOKE_NERDLAB_RUNS": str(tmp_path / "runs"),
    }
    started = time.monotonic()
    setup = run_inv("setup", "--source", "mirror", "--nerdctl-ref", ref, env=env)
    assert setup.returncode == 0, setup.stdout[-3000:]
    repro = run_inv(
        "repro",
        "--no-pull",
        "--scenario",
        "detached-attach",
        "--scenario",
        "fixed-detached-attach",
        env=env,
    )
    assert repro.returncode == 0, repro.stdout[-3000:]
    print(f"{ref}: setup and repro took {time.monotonic() - started:.0f}s")
    (run,) = [p for p in (tmp_path / "runs").iterdir() if (p / "run.json").exists()]
    plain = json.loads((run / "detached-attach" / "diagnosis.json").read_text())
    fixed = json.loads((run / "fixed-detached-attach" / "diagnosis.json").read_text())
    assert plain["outcome"] == "REPRODUCED"
    assert plain["root_cause"] == "log-uri-treated-as-fifo"
    assert plain["newtask_branch"] == "log-uri"
    assert fixed["outcome"] == "FIXED"
