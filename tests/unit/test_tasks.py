"""The front door: targets and inventories become the inventory tasks.py passes on.

Each test runs `inv` in this clone with --dry-run or bad input, so nothing is built
and no host is contacted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
INV = Path(sys.executable).parent / "inv"


def _inv(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "INVOKE_NERDLAB_WORKSPACE": str(tmp_path / "ws"),
        "INVOKE_NERDLAB_RUNS": str(tmp_path / "runs"),
        "INVOKE_NERDLAB_SSH_ARGS": "-i /keys/id",
    }
    return subprocess.run(
        [str(INV), *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _dry_run_listing(output: str) -> Any:
    return json.loads(output[output.index("{") :])


def test_setup_on_two_targets_adds_the_controller(tmp_path: Path) -> None:
    """An SSH target brings the controller play; each target is one host."""
    done = _inv(
        "setup", "--target", "local ssh:dev@build1:2200", "--dry-run", tmp_path=tmp_path
    )
    assert done.returncode == 0, done.stderr
    children = _dry_run_listing(done.stdout)["inventory"]["all"]["children"]
    hosts = children["nerdlab_targets"]["hosts"]
    assert list(hosts) == ["local", "dev@build1-2200"]
    assert hosts["dev@build1-2200"]["ansible_ssh_common_args"] == "-i /keys/id"
    controller = children["nerdlab_controller"]["hosts"]["controller"]
    assert controller["nerdlab_workspace"] == str(tmp_path / "ws")


def test_local_setup_has_no_controller_play(tmp_path: Path) -> None:
    """This host alone checks out its own sources: no controller group."""
    done = _inv("setup", "--dry-run", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    children = _dry_run_listing(done.stdout)["inventory"]["all"]["children"]
    assert list(children) == ["nerdlab_targets"]


def test_a_users_inventory_keeps_its_own_variables(tmp_path: Path) -> None:
    """Hosts of --inventory get nerdlab's defaults under their own variables."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "nerdlab_targets:\n  hosts:\n"
        "    here: {ansible_connection: local, nerdlab_instance: nerdlab-a}\n"
        "    there: {ansible_host: 10.1.2.3, nerdlab_containerd_from: checkout}\n"
        "    loop: {ansible_host: 127.0.0.1, ansible_port: 2222, ansible_user: u}\n"
    )
    done = _inv("repro", "--inventory", str(inventory), "--dry-run", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    listing = _dry_run_listing(done.stdout)
    hosts = listing["inventory"]["all"]["children"]["nerdlab_targets"]["hosts"]
    assert hosts["here"]["nerdlab_instance"] == "nerdlab-a"
    assert hosts["here"]["nerdlab_sync"] is False
    assert hosts["there"]["ansible_host"] == "10.1.2.3"
    assert hosts["there"]["nerdlab_containerd_from"] == "checkout"
    assert hosts["there"]["nerdlab_sync"] is True
    assert hosts["there"]["attach_repro_run_dir"].endswith("/there")
    assert hosts["there"]["nerdlab_instance"] == "nerdlab"
    assert hosts["loop"]["nerdlab_instance"] == "nerdlab-u-127-0-0-1-2222"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["setup", "--target", "ssh:$(touch /tmp/x)"], "is not understood"),
        (["repro", "--target", "lima lima:nerdlab"], "named twice"),
        (["matrix", "--inventory", "/nonexistent.yml"], "does not exist"),
        (["lima", "bogus"], "unknown lima action"),
        (["doctor", "--inventory", "x.yml"], "name the hosts with --target"),
    ],
    ids=["hostile-target", "twice", "no-inventory", "lima-action", "doctor-inventory"],
)
def test_bad_input_is_one_line_and_a_failure(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """Bad input ends with one line naming what to do, a non-zero exit, no trace."""
    done = _inv(*args, tmp_path=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1
