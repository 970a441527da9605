"""End to end on other targets: an SSH host, and two hosts at once with inv matrix.

The SSH host is this machine, reached through a real sshd on 127.0.0.1 as a user
the test creates (tests/e2e/sshd.py). It gets its own copy of the project and the
workspace under that user's home, builds there, runs its own containerd (its own
socket, root, state and data root, named after the target), and its run directory
comes back. `inv matrix` then runs both hosts side by side: this host on the
distribution's containerd and the SSH host on containerd built from the checkout,
two different containerd builds, each with its own workspace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sshd import SshHost, sshd_on_loopback
from stack import MIRRORS, run_inv

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the real stack needs root"),
    pytest.mark.skipif(
        shutil.which("rsync") is None or not Path("/usr/sbin/sshd").exists(),
        reason="openssh-server and rsync are installed by .ci/run",
    ),
]

SOURCE, REF = ("mirror", "v2.0.0-beta.2") if MIRRORS else ("module", "v1.7.5")


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    """A real sshd on loopback for a user made for these tests."""
    with sshd_on_loopback(tmp_path_factory.mktemp("sshd")) as host:
        yield host


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, ssh_host: SshHost) -> Iterator[Path]:
    """The controller's workspace and runs; every target's containerd is stopped."""
    path = tmp_path_factory.mktemp("targets")
    yield path
    env = _env(path, ssh_host)
    run_inv("clean", "--target", ssh_host.target, env=env)
    if (path / "matrix.yml").exists():
        run_inv("clean", "--inventory", str(path / "matrix.yml"), env=env)


def _env(base: Path, host: SshHost) -> dict[str, str]:
    return {
        "INVOKE_NERDLAB_WORKSPACE": str(base / "workspace"),
        "INVOKE_NERDLAB_RUNS": str(base / "runs"),
        "INVOKE_NERDLAB_SSH_ARGS": host.ssh_args,
    }


def _recap(output: str, host: str) -> dict[str, int]:
    found = re.search(
        rf"^{re.escape(host)}: ok=(\d+) changed=(\d+) failed=(\d+)",
        output,
        re.MULTILINE,
    )
    assert found, f"no Ansible recap for {host}"
    return {"ok": int(found[1]), "changed": int(found[2]), "failed": int(found[3])}


def _alias(host: SshHost) -> str:
    return f"{host.user}@127.0.0.1-{host.port}"


def _instance(host: SshHost) -> str:
    return f"nerdlab-{host.user}-127-0-0-1-{host.port}"


def test_ssh_target_builds_and_reproduces(base: Path, ssh_host: SshHost) -> None:
    """Setup over ssh builds on the host, again changes nothing, repro comes back."""
    env = _env(base, ssh_host)
    setup = [
        "setup",
        "--target",
        ssh_host.target,
        "--source",
        SOURCE,
        "--nerdctl-ref",
        REF,
    ]
    first = run_inv(*setup, env=env)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "Copy the checkouts from" in first.stdout
    remote = f".nerdlab/{_instance(ssh_host)}"
    built = ssh_host.run("test", "-x", f"{remote}/workspace/nerdctl/_output/nerdctl")
    assert built.returncode == 0, built.stderr
    assert (base / "workspace" / "nerdctl" / ".git").is_dir()
    assert not (base / "workspace" / "nerdctl" / "_output").exists()

    second = run_inv(*setup, env=env)
    assert second.returncode == 0, second.stdout[-3000:]
    assert _recap(second.stdout, _alias(ssh_host))["changed"] == 0

    repro = run_inv("repro", "--target", ssh_host.target, "--no-pull", env=env)
    assert repro.returncode == 0, repro.stdout[-3000:]
    assert "REPRODUCED" in repro.stdout
    run_dir = sorted((base / "runs").iterdir())[-1]
    diagnosis = json.loads((run_dir / "detached-attach" / "diagnosis.json").read_text())
    assert diagnosis["outcome"] == "REPRODUCED"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["target"] == _alias(ssh_host)
    assert meta["build"]["binary"].endswith("/workspace/nerdctl/_output/nerdctl")
    address = (run_dir / "detached-attach" / "context.json").read_text()
    assert f"/run/{_instance(ssh_host)}/containerd/containerd.sock" in address


def test_matrix_runs_two_hosts_side_by_side(base: Path, ssh_host: SshHost) -> None:
    """inv matrix sets up and runs both hosts and gathers one table with versions."""
    inventory = base / "matrix.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "nerdlab_targets": {
                    "hosts": {
                        "here": {
                            "ansible_connection": "local",
                            "nerdlab_instance": "nerdlab-matrix",
                            "nerdlab_workspace": str(base / "matrix-workspace"),
                            "nerdlab_containerd_from": "package",
                        },
                        "there": {
                            "ansible_host": "127.0.0.1",
                            "ansible_port": ssh_host.port,
                            "ansible_user": ssh_host.user,
                            "nerdlab_instance": _instance(ssh_host),
                            "nerdlab_containerd_from": "checkout",
                        },
                    }
                }
            }
        )
    )
    env = _env(base, ssh_host)
    done = run_inv(
        "matrix",
        "--inventory",
        str(inventory),
        "--source",
        SOURCE,
        "--nerdctl-ref",
        REF,
        "--no-pull",
        env=env,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    run_dir = sorted(p for p in (base / "runs").iterdir() if p.is_dir())[-1]
    matrix = json.loads((run_dir / "matrix.json").read_text())
    hosts = {h["host"]: h for h in matrix["hosts"]}
    assert set(hosts) == {"here", "there"}
    for host in hosts.values():
        assert host["outcomes"] == {"detached-attach": "REPRODUCED"}, host
    containerd = {name: h["versions"]["containerd"] for name, h in hosts.items()}
    assert containerd["here"] != containerd["there"], containerd
    assert (run_dir / "here" / "detached-attach" / "report.md").exists()
    assert (run_dir / "there" / "detached-attach" / "report.md").exists()
