"""End to end on the real stack: `inv setup` builds nerdctl, `inv repro` reproduces.

Nothing is faked: containerd, runc and the CNI plugins come from the distribution,
nerdctl is built from source by upstream's Makefile against the containerd and fifo
checkouts nerdlab wired in, and the container runs a busybox image built locally (no
registry is contacted). Needs root. Sources:

- ``module`` at v1.7.5: the release the Go module proxy serves that pins the same
  containerd v1.7.14 and fifo v1.1.0 as the original report (the proxy refuses
  v2.0.0-beta.2 itself);
- ``mirror`` at v2.0.0-beta.2 (commit 78b66fdc, the original report) when
  INVOKE_NERDLAB_MIRRORS names a directory of mirrors.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from stack import MIRRORS, run_inv

ORIGINAL_COMMIT = "78b66fdcde0eeafb95fdf9915dc4ccbaef51021a"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the real stack needs root"),
]

CASES = [pytest.param("module", "v1.7.5", id="module-v1.7.5")]
if MIRRORS:
    CASES.insert(0, pytest.param("mirror", "v2.0.0-beta.2", id="mirror-v2.0.0-beta.2"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """Yield a function that sets up one (source, ref) and runs the default scenario."""
    yield tmp_path_factory
    run_inv("clean", env={})


def _recap_changed(output: str) -> int:
    found = re.search(r"changed=(\d+)", output)
    assert found, "no Ansible recap in the setup output"
    return int(found[1])


@pytest.mark.parametrize(("source", "ref"), CASES)
def test_setup_then_repro_reproduces(stack, source: str, ref: str) -> None:
    """Setup builds a proven nerdctl, a second changes nothing, repro reproduces."""
    base = stack.mktemp(f"{source}-{ref}")
    env = {
        "INVOKE_NERDLAB_WORKSPACE": str(base / "workspace"),
        "INVOKE_NERDLAB_RUNS": str(base / "runs"),
    }
    setup = ["setup", "--source", source, "--nerdctl-ref", ref]

    first = run_inv(*setup, env=env)
    assert first.returncode == 0, first.stdout[-3000:]
    second = run_inv(*setup, env=env)
    assert second.returncode == 0
    assert _recap_changed(second.stdout) == 0, "a second setup must change nothing"

    proof = json.loads((base / "workspace" / "build-proof.json").read_text())
    assert set(proof["replaced"].values()) == {"../containerd", "../fifo"}
    assert proof["probes_found"] and not proof["probes_missing"]
    sources = json.loads((base / "workspace" / "sources.json").read_text())
    assert sources["containerd"]["version"] == "v1.7.14"
    assert sources["fifo"]["version"] == "v1.1.0"
    if ref == "v2.0.0-beta.2":
        assert sources["nerdctl"]["base"] == ORIGINAL_COMMIT

    repro = run_inv("repro", "--no-pull", env=env)
    assert repro.returncode == 0, repro.stdout[-3000:]
    assert "REPRODUCED" in repro.stdout
    (run,) = [p for p in (base / "runs").iterdir() if (p / "run.json").exists()]
    diagnosis = json.loads((run / "detached-attach" / "diagnosis.json").read_text())
    assert diagnosis["outcome"] == "REPRODUCED"
    assert diagnosis["attach"] == "failed"
    assert diagnosis["root_cause"] == "log-uri-treated-as-fifo"
    uri_layers = [
        layer
        for layer in diagnosis["error_chain"]
        if layer.startswith("error creating fifo binary://")
    ]
    assert uri_layers and "_NERDCTL_INTERNAL_LOGGING=" in uri_layers[0]
    assert diagnosis["error_chain"][-1] == "no such file or directory"
    assert diagnosis["data_store_hash"]["matches"] is True
    attach = json.loads(
        next((run / "detached-attach" / "steps").glob("*-attach.json")).read_text()
    )
    assert attach["duration_s"] < 10 and not attach["timed_out"]
