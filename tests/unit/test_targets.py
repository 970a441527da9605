"""Targets on the command line become hosts of the inventory the playbooks run on."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerdlab.errors import ConfigError
from nerdlab.targets import (
    ControllerPaths,
    Target,
    controller_vars,
    host_vars,
    instance_for,
    inventory,
    is_loopback,
    needs_controller_sources,
    parse_target,
    parse_targets,
    run_vars,
)

CONTROLLER = ControllerPaths(Path("/src/nerdlab"), Path("/src/ws"), Path("/src/runs"))
SETTINGS = {
    "instance": "nerdlab",
    "nerdctl_ref": "v2.0.0-beta.2",
    "source": "mirror",
    "mirrors": "/srv/mirrors",
    "wiring": "replace",
    "containerd_from": "auto",
    "ssh_args": "",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local", Target("local", "local")),
        ("lima", Target("lima", "nerdlab")),
        ("lima:finch", Target("lima", "finch")),
        ("ssh:build1", Target("ssh", "build1")),
        ("ssh:dev@build1", Target("ssh", "build1", "dev")),
        ("ssh:dev@10.0.0.5:2222", Target("ssh", "10.0.0.5", "dev", 2222)),
        ("ssh:[::1]:2200", Target("ssh", "[::1]", None, 2200)),
        (" ssh:host.example ", Target("ssh", "host.example")),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_parse_target_accepts(text: str, expected: Target) -> None:
    """Each documented form of a target is read into its parts."""
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "docker",
        "lima:",
        "lima:-x",
        "ssh:",
        "ssh:a b",
        "ssh:-oProxyCommand=x",
        "ssh:@host",
        "ssh:host:0",
        "ssh:host:70000",
        "ssh:host:22x",
        "ssh:u;rm@h",
        "ssh:h:²",
        "ssh:h:١٢",
        "ssh:h:",
        "ssh:[::1",
        "ssh:box ssh:BOX:22",
    ],
)
def test_parse_target_refuses(text: str) -> None:
    """A malformed target is one ConfigError naming the accepted forms."""
    with pytest.raises(
        ConfigError, match="local, lima, lima:NAME|port|no targets|twice"
    ):
        parse_targets(text)


def test_parse_targets_reads_a_list_and_refuses_twice_the_same() -> None:
    """Targets are separated by spaces or commas; each may be named once."""
    assert [t.alias for t in parse_targets("local, ssh:u@h:2")] == ["local", "u@h-2"]
    with pytest.raises(ConfigError, match="named twice"):
        parse_targets("lima lima:nerdlab")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("build1", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    """Loopback addresses are this machine under another name."""
    assert is_loopback(address) is loopback


def test_instance_for_gives_a_loopback_ssh_host_its_own_containerd() -> None:
    """An SSH host on loopback gets an instance of its own; others keep the name."""
    assert instance_for(parse_target("ssh:u@127.0.0.1:2222"), "nerdlab") == (
        "nerdlab-u-127-0-0-1-2222"
    )
    assert instance_for(parse_target("ssh:build1"), "nerdlab") == "nerdlab"
    assert instance_for(parse_target("local"), "nerdlab") == "nerdlab"


def test_local_host_uses_the_controller_paths() -> None:
    """This host builds in the controller's workspace, becoming root when not root."""
    values = host_vars(
        parse_target("local"), controller=CONTROLLER, settings=SETTINGS, euid=1000
    )
    assert values["ansible_connection"] == "local"
    assert values["nerdlab_workspace"] == "/src/ws"
    assert values["nerdlab_become"] is True
    assert values["attach_repro_owner"] == "1000"
    assert values["nerdlab_sync"] is False
    assert values["nerdlab_nerdctl_ref"] == "v2.0.0-beta.2"


def test_ssh_host_has_paths_of_its_own_and_is_synced() -> None:
    """An SSH host gets its connection, home-relative paths and nerdlab_sync."""
    settings = {**SETTINGS, "ssh_args": "-i /k"}
    values = host_vars(
        parse_target("ssh:dev@build1:2200"),
        controller=CONTROLLER,
        settings=settings,
        euid=0,
    )
    assert values["ansible_host"] == "build1"
    assert values["ansible_user"] == "dev"
    assert values["ansible_port"] == 2200
    assert values["ansible_ssh_common_args"] == "-i /k"
    assert values["nerdlab_sync"] is True
    assert values["nerdlab_workspace"] == "{{ nerdlab_remote_root }}/workspace"
    assert values["nerdlab_controller_workspace"] == "/src/ws"
    assert values["nerdlab_instance"] == "nerdlab"


def test_lima_host_needs_the_instance_vars() -> None:
    """A Lima host takes its connection from the instance, its paths as mounted."""
    with pytest.raises(ConfigError, match="not known"):
        host_vars(
            parse_target("lima"), controller=CONTROLLER, settings=SETTINGS, euid=501
        )
    values = host_vars(
        parse_target("lima:finch"),
        controller=CONTROLLER,
        settings=SETTINGS,
        euid=501,
        lima_vars={"ansible_host": "lima-finch"},
    )
    assert values["ansible_host"] == "lima-finch"
    assert values["nerdlab_workspace"] == "/src/ws"
    assert values["nerdlab_sync"] is False


def test_inventory_adds_the_controller_only_when_a_host_is_synced() -> None:
    """The controller group exists only for hosts the workspace is copied to."""
    local = host_vars(
        parse_target("local"), controller=CONTROLLER, settings=SETTINGS, euid=0
    )
    remote = host_vars(
        parse_target("ssh:h"), controller=CONTROLLER, settings=SETTINGS, euid=0
    )
    assert not needs_controller_sources({"local": local})
    assert needs_controller_sources({"local": local, "h": remote})
    listing = inventory({"h": remote}, controller_vars(CONTROLLER, SETTINGS))
    children = listing["all"]["children"]
    assert list(children["nerdlab_targets"]["hosts"]) == ["h"]
    controller = children["nerdlab_controller"]["hosts"]["controller"]
    assert controller["nerdlab_workspace"] == "/src/ws"
    assert controller["ansible_connection"] == "local"
    assert "nerdlab_controller" not in inventory({"local": local})["all"]["children"]


def test_run_vars_bring_a_synced_hosts_results_back() -> None:
    """A synced host writes under its own runs; the controller's directory is named."""
    remote = host_vars(
        parse_target("ssh:h"), controller=CONTROLLER, settings=SETTINGS, euid=0
    )
    values = run_vars(remote, "h", "20261204-101010", Path("/src/runs/x/h"))
    assert values == {
        "attach_repro_run_dir": "{{ nerdlab_runs_dir }}/20261204-101010/h",
        "nerdlab_controller_run_dir": "/src/runs/x/h",
    }
    local = host_vars(
        parse_target("local"), controller=CONTROLLER, settings=SETTINGS, euid=0
    )
    assert (
        run_vars(local, "local", "r", Path("/src/runs/r"))["attach_repro_run_dir"]
        == "/src/runs/r"
    )
