"""Lima instances as targets: find one, start it, check its mounts, reach it by SSH.

nerdlab talks to Lima only through ``limactl``, the way a user would:

    limactl list --format json      one JSON object per instance and line
    limactl start --tty=false NAME  bounded by --timeout, and by a timeout here too
    <instance dir>/ssh.config       written by Lima's host agent at every start

A build target must see the workspace, the runs directory and the project at the
same path as the controller, writable; :func:`mount_problem` says which mount is
missing and the ``limactl edit`` line that adds it. :func:`ansible_host_vars` turns
the instance's ssh config into Ansible connection variables. :func:`render_template`
renders the Lima template of the VM nerdlab owns (``roles/lima_vm``) outside
Ansible, for tests and for a look before ``limactl create``.

Every ``limactl`` argument may be a command prefix instead of a program name
(``["sudo", "-u", "me", "limactl"]``), because limactl refuses to run as root.
This module needs only the standard library; :func:`render_template` imports
Jinja2 and PyYAML when it is called.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nerdlab.errors import ConfigError, LimaError

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "ROLE_DIR",
    "Instance",
    "Mount",
    "SSHConfig",
    "ansible_host_vars",
    "ensure_running",
    "find_instance",
    "last_error",
    "limactl_version",
    "list_instances",
    "mount_fix",
    "mount_problem",
    "parse_list",
    "parse_ssh_config",
    "render_template",
]

Limactl = str | Sequence[str]

# The role that owns nerdlab's VM: its template and its defaults.
ROLE_DIR = Path(__file__).resolve().parents[2] / "roles" / "lima_vm"

# Seconds `limactl start` may take when the caller gives no bound (Lima's own
# default for --timeout is ten minutes too).
DEFAULT_START_TIMEOUT = 600

# Seconds the quick commands (list, --version) may take.
_QUICK_TIMEOUT = 60

# limactl's main() prints this and exits 1 when its effective user is root.
_ROOT_REFUSAL = "must not run as the root user"

# `limactl --version`: cobra's version template, "limactl version 2.2.0".
_VERSION = re.compile(r"\blimactl version (?P<version>\S+)")

# A line of logrus's text formatter, as limactl logs to stderr: key=value fields,
# a value Go-quoted when it holds spaces or quotes, bare otherwise:
#   time="2026-01-02T03:04:05Z" level=fatal msg="guest agent binary could not ..."
#   time="..." level=warning msg="instance `NAME` has errors" errors="[...]"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_LOG_FIELD = re.compile(rf"(?P<key>[A-Za-z_][\w.-]*)=(?P<value>{_QUOTED}|\S*)\s*")

# `limactl list` logs an instance's errors on stderr (its JSON loses them):
# msg "instance `NAME` has errors", field errors="[first error ...]".
_HAS_ERRORS = re.compile(r"^instance `(?P<name>[^`]+)` has errors$")


class _Timeout(LimaError):
    """limactl ran past its bound and was stopped."""


@dataclass(frozen=True, slots=True)
class Mount:
    """One host directory an instance mounts: where from, where to, writable."""

    location: str
    mount_point: str
    writable: bool


@dataclass(frozen=True, slots=True)
class Instance:
    """What nerdlab needs of one object of ``limactl list --format json``."""

    name: str
    status: str
    dir: str
    arch: str = ""
    vm_type: str = ""
    hostname: str = ""
    ssh_config_file: str = ""
    ssh_address: str = ""
    ssh_local_port: int = 0
    mounts: tuple[Mount, ...] = ()
    user: str = ""
    message: str = ""
    errors: tuple[str, ...] = ()
    lima_version: str = ""

    @property
    def broken(self) -> bool:
        """Return whether Lima calls the instance broken, or cannot read it at all."""
        return self.status == "Broken" or (not self.status and bool(self.errors))

    @property
    def problem(self) -> str:
        """Return Lima's own account of what is wrong: its errors, else its message."""
        return "; ".join(self.errors) or self.message


@dataclass(frozen=True, slots=True)
class SSHConfig:
    """The one ``Host`` block of the ssh config Lima writes for an instance."""

    host: str
    hostname: str = ""
    port: int = 0
    user: str = ""
    identity_files: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()


def _argv(limactl: Limactl, *args: str) -> list[str]:
    prefix = [limactl] if isinstance(limactl, str) else list(limactl)
    return [*prefix, *args]


def _run(
    limactl: Limactl, args: Sequence[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run limactl with args, bounded; refuse as root with Lima's rule in one line."""
    argv = _argv(limactl, *args)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as err:
        raise LimaError(
            f"{argv[0]} is not installed; install Lima (https://lima-vm.io)"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise _Timeout(
            f"{shlex.join(argv)} did not finish within {timeout:g} s"
        ) from err
    if done.returncode != 0 and _ROOT_REFUSAL in done.stderr:
        raise ConfigError(
            "limactl refuses to run as root (Lima's own rule); run inv as an "
            "unprivileged user"
        )
    return done


def _unquote(text: str) -> str:
    """Return a Go-quoted string's value; a bare word as it is."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        return value if isinstance(value, str) else text[1:-1]
    return text


def _log_record(line: str) -> dict[str, str]:
    """Return the fields of one stderr line of limactl (text or JSON logs).

    A line that is not a log record gives ``{"msg": line}``.
    """
    if line.startswith("time="):
        fields: dict[str, str] = {}
        position = 0
        while position < len(line):
            match = _LOG_FIELD.match(line, position)
            if match is None:
                break
            fields[match["key"]] = _unquote(match["value"])
            position = match.end()
        if "level" in fields and "msg" in fields:
            return fields
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("msg"), str):
            return {str(k): str(v) for k, v in record.items()}
    return {"msg": line}


def last_error(stderr: str) -> str:
    """Return Lima's last error of limactl's stderr on one line, log prefix removed.

    The last fatal or error record wins; with none, the last line that says
    anything. A message of several lines (a YAML error and its excerpt) gives its
    first.
    """
    records = [_log_record(line.strip()) for line in stderr.splitlines()]
    messages = [(r.get("level", ""), r["msg"].strip()) for r in records]
    messages = [(level, text) for level, text in messages if text]
    errors = [text for level, text in messages if level in ("fatal", "error", "panic")]
    chosen = errors or [text for _, text in messages]
    return chosen[-1].splitlines()[0].strip() if chosen else ""


def limactl_version(limactl: Limactl = "limactl") -> str | None:
    """Return the version `limactl --version` prints, None when limactl is absent.

    Raises ConfigError when limactl refuses to run because the user is root.
    """
    program = _argv(limactl)[0]
    if shutil.which(program) is None:
        return None
    done = _run(limactl, ["--version"], _QUICK_TIMEOUT)
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise LimaError(
            f"{program} --version failed: "
            f"{last_error(done.stderr) or done.stdout.strip() or done.returncode}"
        )
    return match["version"]


def _mount(item: Any) -> Mount | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("location"), str):
        return None
    location = item["location"]
    mount_point = item.get("mountPoint")
    return Mount(
        location=location,
        mount_point=mount_point if isinstance(mount_point, str) else location,
        writable=item.get("writable") is True,
    )


def _instance(data: Any, where: str) -> Instance:
    """Return the Instance one decoded JSON object of `limactl list` describes."""
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise LimaError(f"limactl list: {where} is not an instance object")
    config = data.get("config")
    config = config if isinstance(config, Mapping) else {}
    user = config.get("user")
    user = user if isinstance(user, Mapping) else {}
    raw_mounts = config.get("mounts")
    mounts = tuple(
        mount
        for mount in map(_mount, raw_mounts if isinstance(raw_mounts, list) else [])
        if mount is not None
    )
    errors = data.get("errors")
    port = data.get("sshLocalPort")

    def text(value: Any) -> str:
        return value if isinstance(value, str) else ""

    return Instance(
        name=data["name"],
        status=text(data.get("status")),
        dir=text(data.get("dir")),
        arch=text(data.get("arch")),
        vm_type=text(data.get("vmType")),
        hostname=text(data.get("hostname")),
        ssh_config_file=text(data.get("sshConfigFile")),
        ssh_address=text(data.get("sshAddress")),
        ssh_local_port=port if isinstance(port, int) else 0,
        mounts=mounts,
        user=text(user.get("name")),
        message=text(data.get("message")),
        # Lima v2.2 encodes each error as its Go struct ({} once emptied), not
        # as the string its docs promise; only strings say anything.
        errors=tuple(e for e in errors if isinstance(e, str) and e)
        if isinstance(errors, list)
        else (),
        lima_version=text(data.get("limaVersion")),
    )


def _listed_errors(stderr: str) -> dict[str, tuple[str, ...]]:
    """Return the errors `limactl list` logged for each instance name."""
    found: dict[str, tuple[str, ...]] = {}
    for line in stderr.splitlines():
        record = _log_record(line.strip())
        match = _HAS_ERRORS.match(record["msg"])
        if match and record.get("errors"):
            # logrus prints the []error as "[first second]": one string, bracketed.
            text = record["errors"].strip()
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            first = text.strip().splitlines()[0].strip() if text.strip() else ""
            if first:
                found[match["name"]] = (first,)
    return found


def parse_list(text: str, stderr: str = "") -> list[Instance]:
    """Return the instances of `limactl list --format json` output.

    Reads one object per line (limactl's output to a pipe), a JSON array, or
    indented objects one after another (its output to a terminal, uncoloured).
    stderr, when given, supplies the errors limactl logs there for an instance
    whose JSON lost them. Raises LimaError naming the line that is not JSON.
    """
    decoder = json.JSONDecoder()
    logged = _listed_errors(stderr)
    instances: list[Instance] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return instances
        line_no = text.count("\n", 0, position) + 1
        try:
            data, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            line = text.splitlines()[line_no - 1].strip()
            raise LimaError(
                f"limactl list: line {line_no} is not JSON ({err.msg}): {line[:120]}"
            ) from err
        for item in data if isinstance(data, list) else [data]:
            instance = _instance(item, f"line {line_no}")
            if not instance.errors and instance.name in logged:
                instance = replace(instance, errors=logged[instance.name])
            instances.append(instance)


def list_instances(limactl: Limactl = "limactl") -> list[Instance]:
    """Return every Lima instance `limactl list --format json` reports."""
    done = _run(limactl, ["list", "--format", "json"], _QUICK_TIMEOUT)
    if done.returncode != 0:
        raise LimaError(f"limactl list failed: {last_error(done.stderr)}")
    return parse_list(done.stdout, done.stderr)


def find_instance(name: str, limactl: Limactl = "limactl") -> Instance | None:
    """Return the Lima instance called name, None when there is none."""
    return next((i for i in list_instances(limactl) if i.name == name), None)


def ensure_running(
    name: str, timeout: int | None, *, limactl: Limactl = "limactl"
) -> Instance:
    """Return the instance called name, running: reused, or started when stopped.

    A broken instance raises LimaError with Lima's own errors; a missing one says
    how to create it. `limactl start` is bounded by timeout seconds (None: ten
    minutes), and its failure raises LimaError with Lima's last error line.
    """
    instance = find_instance(name, limactl)
    if instance is None:
        raise LimaError(
            f"there is no Lima instance {name}; `inv setup --target lima` creates "
            f"nerdlab's own VM, and `limactl create --name {name} TEMPLATE` any other"
        )
    if instance.status == "Running":
        return instance
    if instance.broken:
        reason = instance.problem or "Lima gives no reason"
        raise LimaError(
            f"Lima instance {name} is broken: {reason}; repair it, or remove it "
            f"with `limactl delete {name}`"
        )
    if instance.status != "Stopped":
        raise LimaError(
            f"Lima instance {name} is {instance.status or 'in an unknown state'}, "
            f"neither running nor stopped; run `limactl start {name}` yourself and "
            "try again"
        )
    bound = DEFAULT_START_TIMEOUT if timeout is None else timeout
    args = ["--tty=false", "start", f"--timeout={bound}s", name]
    try:
        # limactl stops itself at --timeout; the margin covers its own clean-up.
        done = _run(limactl, args, bound + 60)
    except _Timeout as err:
        raise LimaError(
            f"Lima instance {name} did not start within {bound} s; its log is "
            f"{Path(instance.dir) / 'ha.stderr.log'}"
        ) from err
    if done.returncode != 0:
        reason = last_error(done.stderr) or f"limactl exited {done.returncode}"
        raise LimaError(f"limactl start {name} failed: {reason}")
    started = find_instance(name, limactl)
    if started is None or started.status != "Running":
        state = started.status if started else "gone"
        raise LimaError(f"limactl start {name} returned, but the instance is {state}")
    return started


def _contains(location: str, path: str) -> bool:
    """Return whether path is location or lies under it."""
    trimmed = location.rstrip("/")
    return path == (trimmed or "/") or path.startswith(trimmed + "/")


def _inside(mount: Mount, path: str) -> str:
    """Return where path, under mount's location on the host, is inside the VM."""
    rest = path[len(mount.location.rstrip("/")) :]
    return mount.mount_point.rstrip("/") + rest if rest else mount.mount_point


def mount_fix(
    instance: Instance, path: str, *, writable: bool = True
) -> list[str] | None:
    """Return the `limactl edit` argv that mounts path at the same path.

    None when it already is (writable, unless ``writable`` is false: the mirrors
    are only read). A read-only mount is made writable (``--mount-writable``: every
    mount of the instance, since a second mount nested inside it would be hidden by
    it); a path not mounted, or mounted elsewhere, gets a mount of its own
    (``--mount PATH:w``, same path inside the VM).
    """
    path = os.path.normpath(path)
    holding = [m for m in instance.mounts if _contains(m.location, path)]
    same = [m for m in holding if _inside(m, path) == path]
    if any(m.writable or not writable for m in same):
        return None
    if same:
        return ["limactl", "edit", instance.name, "--mount-writable"]
    suffix = ":w" if writable else ""
    return ["limactl", "edit", instance.name, "--mount", f"{path}{suffix}"]


def mount_problem(
    instance: Instance, path: str, *, writable: bool = True
) -> str | None:
    """Return one line saying which mount path lacks in the instance, None if none.

    path must be inside a mount whose mountPoint is its location, so the VM sees it
    where the controller does, and writable unless ``writable`` is false.
    """
    fix = mount_fix(instance, path, writable=writable)
    if fix is None:
        return None
    path = os.path.normpath(path)
    name = instance.name
    holding = [m for m in instance.mounts if _contains(m.location, path)]
    if any(_inside(m, path) == path for m in holding):
        what = f"{path} is mounted read-only in Lima instance {name}"
    elif holding:
        elsewhere = ", ".join(sorted({_inside(m, path) for m in holding}))
        what = (
            f"{path} is mounted in Lima instance {name} at {elsewhere}, "
            "not at the same path"
        )
    else:
        what = f"{path} is not mounted in Lima instance {name}"
    command = shlex.join(fix)
    if instance.status == "Running":
        command = f"limactl stop {shlex.quote(name)} && {command} --start"
    return f"{what}; add the mount with: {command}"


# ssh_config(5): "Keyword value" or "Keyword=value"; a value may be double-quoted.
# Lima writes "  Key value" lines under one "Host lima-NAME" (sshutil.Format).
_SSH_LINE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(?P<value>.*)$")


def _ssh_value(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_ssh_config(text: str) -> SSHConfig:
    """Return the first Host block of an ssh config such as Lima's ssh.config.

    Raises LimaError when there is no Host line, or Port is not a number.
    """
    host = ""
    options: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SSH_LINE.match(line)
        if match is None:
            raise LimaError(f"ssh config: cannot read line {line!r}")
        key, value = match["key"], _ssh_value(match["value"])
        if key.lower() in ("host", "match"):
            if host:
                break
            host = value.split()[0] if value else ""
            continue
        if host:
            options.append((key, value))
    if not host:
        raise LimaError("ssh config: no Host line")
    first: dict[str, str] = {}
    for key, value in options:
        first.setdefault(key.lower(), value)
    port_text = first.get("port", "0")
    if not port_text.isdigit():
        raise LimaError(f"ssh config: Port {port_text!r} is not a number")
    return SSHConfig(
        host=host,
        hostname=first.get("hostname", ""),
        port=int(port_text),
        user=first.get("user", ""),
        identity_files=tuple(v for k, v in options if k.lower() == "identityfile"),
        options=tuple(options),
    )


def ansible_host_vars(instance: Instance) -> dict[str, Any]:
    """Return the Ansible connection variables that reach the instance over SSH.

    ssh reads Lima's own ssh.config (``-F``), so every option Lima sets holds; the
    host, port, user and key are repeated for Ansible's own use. Raises LimaError
    when the instance has no ssh config yet (Lima writes it when it starts).
    """
    path = Path(instance.ssh_config_file or Path(instance.dir) / "ssh.config")
    try:
        config = parse_ssh_config(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise LimaError(
            f"Lima instance {instance.name} has no ssh config at {path} yet; start "
            f"it: limactl start {instance.name}"
        ) from err
    except OSError as err:
        raise LimaError(f"cannot read {path}: {err.strerror}") from err
    variables: dict[str, Any] = {
        "ansible_connection": "ssh",
        "ansible_host": config.host,
        "ansible_ssh_common_args": f"-F {shlex.quote(str(path))}",
    }
    port = config.port or instance.ssh_local_port
    if port:
        variables["ansible_port"] = port
    if config.user or instance.user:
        variables["ansible_user"] = config.user or instance.user
    if config.identity_files:
        variables["ansible_ssh_private_key_file"] = config.identity_files[0]
    return variables


def render_template(
    variables: Mapping[str, Any] | None = None, *, role_dir: Path = ROLE_DIR
) -> str:
    """Return the Lima template of nerdlab's VM, as the lima_vm role renders it.

    variables override the role's defaults (``lima_vm_mounts``, ``lima_vm_cpus``,
    ...). The same file and the same Jinja2 settings as ansible.builtin.template
    (trim_blocks), so what this returns is what the role writes.
    """
    import jinja2
    import yaml

    defaults_file = role_dir / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text(encoding="utf-8")) or {}
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(role_dir / "templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    template = environment.get_template("lima.yaml.j2")
    return template.render({**defaults, **dict(variables or {})})
