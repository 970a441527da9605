"""Where nerdlab builds and runs: this host, a Lima VM, or an SSH host.

A target is named on the command line (``local``, ``lima``, ``lima:NAME``,
``ssh:[USER@]HOST[:PORT]``) and becomes one host of the inventory the playbooks run
against. Its host variables say where the project, the workspace and the runs live on
that host, whether Ansible must become root there, and whether the workspace has to be
copied over (an SSH host) or is already visible at the same path (this host, a Lima
VM with the workspace mounted).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nerdlab.errors import ConfigError

__all__ = [
    "DEFAULT_LIMA_INSTANCE",
    "SHARED_SETTINGS",
    "TARGET_FORMS",
    "ControllerPaths",
    "Target",
    "controller_vars",
    "host_vars",
    "hosts_from_listing",
    "instance_for",
    "inventory",
    "is_loopback",
    "needs_controller_sources",
    "parse_target",
    "parse_targets",
    "remote_paths",
    "run_vars",
    "ssh_command",
]

TargetKind = Literal["local", "lima", "ssh"]

DEFAULT_LIMA_INSTANCE = "nerdlab"

# Lima's own rule for instance names.
_LIMA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.%a-z]+\]")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")

TARGET_FORMS = "local, lima, lima:NAME or ssh:[USER@]HOST[:PORT]"


@dataclass(frozen=True, slots=True)
class Target:
    """One place to build and run."""

    kind: TargetKind
    name: str
    user: str | None = None
    port: int | None = None

    @property
    def spec(self) -> str:
        """The target as it would be written on the command line."""
        if self.kind == "local":
            return "local"
        if self.kind == "lima":
            return f"lima:{self.name}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"ssh:{user}{self.name}{port}"

    @property
    def alias(self) -> str:
        """The inventory name of the host, also the name of its directory in a run."""
        if self.kind == "local":
            return "local"
        if self.kind == "lima":
            return f"lima-{self.name}"
        text = self.spec.removeprefix("ssh:").replace(":", "-")
        return re.sub(r"[^A-Za-z0-9_.@-]", "", text)


def parse_target(text: str) -> Target:
    """Read one target; a malformed one is a ConfigError naming the accepted forms."""
    text = text.strip()
    kind, _, rest = text.partition(":")
    if text == "local":
        return Target("local", "local")
    if text == "lima":
        return Target("lima", DEFAULT_LIMA_INSTANCE)
    if kind == "lima" and _LIMA_NAME.fullmatch(rest):
        return Target("lima", rest)
    if kind == "ssh" and rest:
        user, at, address = rest.rpartition("@")
        host, port = _split_port(address)
        if (not at or _USER.fullmatch(user)) and _HOSTNAME.fullmatch(host):
            return Target("ssh", host, user or None, port)
    raise ConfigError(f"target {text!r} is not understood; use {TARGET_FORMS}")


def _split_port(address: str) -> tuple[str, int | None]:
    if address.startswith("["):
        host, bracket, tail = address.partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            return "", None
        host += "]"
        port = tail.removeprefix(":")
        if tail and not port:
            raise ConfigError(f"{address!r} has an empty port; give a TCP port number")
    else:
        host, colon, port = address.partition(":")
        if colon and not port:
            raise ConfigError(f"{address!r} has an empty port; give a TCP port number")
    if not port:
        return host, None
    # ASCII digits only: str.isdigit() also takes superscripts and other scripts.
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise ConfigError(f"port {port!r} in {address!r} is not a TCP port number")
    return host, int(port)


def parse_targets(text: str) -> list[Target]:
    """Read a list of targets separated by spaces or commas; each may appear once."""
    targets = [parse_target(part) for part in text.replace(",", " ").split()]
    if not targets:
        raise ConfigError(f"no targets given; name one or more of {TARGET_FORMS}")
    # One machine spelled twice (ssh:box, ssh:BOX, ssh:box:22) is still one target.
    keys = [(t.kind, t.name.lower(), t.user, t.port or 22) for t in targets]
    for target, key in zip(targets, keys, strict=True):
        if keys.count(key) > 1:
            raise ConfigError(
                f"target {target.spec} is named twice; name each target once"
            )
    return targets


@dataclass(frozen=True, slots=True)
class ControllerPaths:
    """Where the project, the workspace and the runs are on the machine running inv."""

    project: Path
    workspace: Path
    runs: Path

    def mounts(self) -> list[str]:
        """The directories a VM mounts at the same path: none inside another."""
        paths = sorted({str(self.project), str(self.workspace), str(self.runs)})
        return [p for p in paths if not any(p.startswith(f"{q}/") for q in paths)]


# Settings that reach every host's variables under the name nerdlab_<setting>.
SHARED_SETTINGS = (
    "instance",
    "nerdctl_ref",
    "source",
    "mirrors",
    "wiring",
    "containerd_from",
)


def host_vars(
    target: Target,
    *,
    controller: ControllerPaths,
    settings: Mapping[str, Any],
    euid: int,
    lima_vars: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the inventory variables of one target's host.

    Paths on an SSH host are templates resolved on the host after its facts are
    gathered: everything lives under ``~/.nerdlab/INSTANCE`` of the SSH user.
    """
    common: dict[str, Any] = {
        f"nerdlab_{name}": settings[name] for name in SHARED_SETTINGS
    } | {
        "nerdlab_controller_project_dir": str(controller.project),
        "nerdlab_controller_workspace": str(controller.workspace),
        "nerdlab_controller_runs_dir": str(controller.runs),
    }
    same_paths = {
        "nerdlab_project_dir": str(controller.project),
        "nerdlab_workspace": str(controller.workspace),
        "nerdlab_runs_dir": str(controller.runs),
        "nerdlab_sync": False,
    }
    if target.kind == "local":
        return (
            common
            | same_paths
            | {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "nerdlab_become": euid != 0,
                "attach_repro_owner": "" if euid == 0 else str(euid),
            }
        )
    remote_user = {
        "ansible_python_interpreter": "/usr/bin/python3",
        "nerdlab_become": "{{ ansible_facts.user_id != 'root' }}",
        "attach_repro_owner": "{{ ansible_facts.user_id }}",
    }
    if target.kind == "lima":
        if lima_vars is None:
            raise ConfigError(f"target {target.spec}: the Lima instance is not known")
        return common | same_paths | remote_user | dict(lima_vars)
    address = target.name.strip("[]")
    connection: dict[str, Any] = {
        "ansible_host": address,
        "nerdlab_instance": instance_for(target, str(settings["instance"])),
    }
    if target.user:
        connection["ansible_user"] = target.user
    if target.port:
        connection["ansible_port"] = target.port
    if settings.get("ssh_args"):
        connection["ansible_ssh_common_args"] = settings["ssh_args"]
    return common | connection | remote_user | remote_paths()


def is_loopback(address: str) -> bool:
    """Tell whether an SSH host is this machine under another name."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def instance_for(target: Target, instance: str) -> str:
    """Name the containerd instance of a target.

    An SSH host on loopback is this machine: its containerd gets paths of its own
    (socket, root, state, data root) beside the local target's, named after the alias.
    """
    if target.kind == "ssh" and is_loopback(target.name):
        return f"{instance}-{re.sub(r'[^A-Za-z0-9-]+', '-', target.alias).strip('-')}"
    return instance


def ssh_command(target: Target, ssh_args: str = "") -> list[str]:
    """Return the ssh argv (up to the remote command) that reaches an SSH target."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if target.port:
        argv += ["-p", str(target.port)]
    argv += shlex.split(ssh_args)
    user = f"{target.user}@" if target.user else ""
    return [*argv, f"{user}{target.name.strip('[]')}"]


def remote_paths() -> dict[str, Any]:
    """Paths on a host the workspace is copied to: all under the SSH user's home."""
    return {
        "nerdlab_remote_root": "{{ ansible_facts.env.HOME }}/.nerdlab/"
        "{{ nerdlab_instance }}",
        "nerdlab_project_dir": "{{ nerdlab_remote_root }}/project",
        "nerdlab_workspace": "{{ nerdlab_remote_root }}/workspace",
        "nerdlab_runs_dir": "{{ nerdlab_remote_root }}/runs",
        "nerdlab_sync": True,
    }


def run_vars(
    host: Mapping[str, Any], alias: str, run_id: str, run_dir: Path
) -> dict[str, Any]:
    """Return one host's variables for one repro whose results belong in run_dir.

    A synced host writes under its own runs directory, and the run comes back.
    """
    on_host = (
        f"{{{{ nerdlab_runs_dir }}}}/{run_id}/{alias}"
        if _truthy(host.get("nerdlab_sync"))
        else str(run_dir)
    )
    return {"attach_repro_run_dir": on_host, "nerdlab_controller_run_dir": str(run_dir)}


def hosts_from_listing(
    listing: Mapping[str, Any],
    *,
    controller: ControllerPaths,
    settings: Mapping[str, Any],
    euid: int,
) -> dict[str, dict[str, Any]]:
    """Turn ``ansible-inventory --list`` output into hosts for the playbooks.

    The hosts of group nerdlab_targets (else all) are targets: one with
    ``ansible_connection: local`` is this machine, any other an SSH host. Each
    gets nerdlab's variables beneath its own, so a host's own variables win.
    """
    hostvars = listing.get("_meta", {}).get("hostvars", {})
    group = "nerdlab_targets" if "nerdlab_targets" in listing else "all"
    hosts = {}
    for name in _group_hosts(listing, group):
        own = hostvars.get(name, {})
        local = own.get("ansible_connection") == "local"
        # The address, user and port name the containerd instance of a host on
        # loopback, as they do for ssh: targets.
        target = (
            Target("local", name)
            if local
            else Target(
                "ssh",
                str(own.get("ansible_host", name)),
                own.get("ansible_user"),
                own.get("ansible_port"),
            )
        )
        defaults = host_vars(
            target, controller=controller, settings=settings, euid=euid
        )
        if not local:
            defaults.pop("ansible_host")
        hosts[name] = defaults | dict(own)
    return hosts


def _group_hosts(listing: Mapping[str, Any], group: str) -> list[str]:
    entry = listing.get(group, {})
    names = list(entry.get("hosts", []))
    for child in entry.get("children", []):
        names += [n for n in _group_hosts(listing, child) if n not in names]
    return names


def needs_controller_sources(hosts: Mapping[str, Mapping[str, Any]]) -> bool:
    """Tell whether some host gets the workspace copied to it from the controller."""
    return any(_truthy(v.get("nerdlab_sync")) for v in hosts.values())


def _truthy(value: Any) -> bool:
    return value in (True, "true", "True", "yes")


def controller_vars(
    controller: ControllerPaths, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the variables of the controller, where the sources of copied hosts are
    checked out before they are copied."""
    # The controller is a local host that only checks out: as root or not, it never
    # becomes root, which is what a local host run by root does.
    return host_vars(
        Target("local", "controller"), controller=controller, settings=settings, euid=0
    )


def inventory(
    hosts: Mapping[str, Mapping[str, Any]],
    controller: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an Ansible inventory putting the hosts in nerdlab_targets (and the
    controller, when given, alone in nerdlab_controller)."""
    children: dict[str, Any] = {
        "nerdlab_targets": {
            "hosts": {alias: dict(values) for alias, values in hosts.items()}
        }
    }
    if controller is not None:
        children["nerdlab_controller"] = {"hosts": {"controller": dict(controller)}}
    return {"all": {"children": children}}
