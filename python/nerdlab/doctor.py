"""What a target lacks before setup runs: ``inv doctor``.

One short, read-only shell script (:data:`PROBE_SCRIPT`) runs on the target (here,
over ssh, or inside a Lima VM) and prints ``key=value`` lines; :func:`read_probe`
turns them into :class:`Check` results with the next step for each missing piece.
Things setup installs itself (git, make, Go, containerd, runc, CNI plugins) are
reported, not blocking; things it cannot (a way to become root, a package manager,
Python) are blocking.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nerdlab import lima
from nerdlab.errors import NerdlabError
from nerdlab.targets import Target, ssh_command

__all__ = [
    "PROBE_SCRIPT",
    "Check",
    "blocking",
    "check_target",
    "probe",
    "read_probe",
]

# Read-only: each line prints what it found, or nothing when the tool is absent.
PROBE_SCRIPT = r"""
PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
echo "uid=$(id -u)"
if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  echo "sudo=yes"
fi
command -v python3 >/dev/null 2>&1 && echo "python3=$(python3 -c \
  'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
command -v apt-get >/dev/null 2>&1 && echo "packages=apt-get"
command -v dnf >/dev/null 2>&1 && echo "packages=dnf"
command -v git >/dev/null 2>&1 && echo "git=$(git --version 2>/dev/null)"
command -v make >/dev/null 2>&1 && echo "make=yes"
command -v rsync >/dev/null 2>&1 && echo "rsync=yes"
command -v go >/dev/null 2>&1 && echo "go=$(go env GOVERSION 2>/dev/null)"
command -v containerd >/dev/null 2>&1 && echo "containerd=$(containerd --version \
  2>/dev/null)"
command -v runc >/dev/null 2>&1 && echo "runc=$(runc --version 2>/dev/null | head -n 1)"
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] && echo "cni=yes"
[ -S "$NERDLAB_SOCKET" ] && echo "socket=$NERDLAB_SOCKET"
echo "probe=done"
"""

_LINE = re.compile(r"(?P<key>[a-z0-9]+)=(?P<value>.*)")


@dataclass(frozen=True, slots=True)
class Check:
    """One thing looked for on a target: found or not, and what to do if not."""

    target: str
    what: str
    found: str | None
    fix: str | None = None
    blocks: bool = False

    @property
    def ok(self) -> bool:
        """Whether nothing needs doing for this check."""
        return self.fix is None


def _parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        found = _LINE.fullmatch(line.strip())
        if found:
            values.setdefault(found["key"], found["value"].strip())
    return values


def read_probe(target: str, text: str, *, remote: bool = False) -> list[Check]:
    """Turn the probe script's output into checks, most important first.

    A remote host (SSH) also needs rsync, and root or sudo without a password: setup
    can ask for a sudo password on this host only.
    """
    values = _parse(text)
    if values.get("probe") != "done":
        return [
            Check(
                target,
                "probe",
                None,
                "the probe script did not finish; "
                "check that the target runs a POSIX shell",
                blocks=True,
            )
        ]
    checks = []
    root = values.get("uid") == "0"
    becomes = root or values.get("sudo") == "yes"
    checks.append(
        Check(
            target,
            "root",
            "root" if root else ("sudo without a password" if becomes else None),
            None
            if becomes
            else "setup needs root for its containerd: log in as root or allow sudo "
            + ("without a password" if remote else "(setup asks for the password)"),
            blocks=remote,
        )
    )
    checks.append(
        Check(
            target,
            "python3",
            values.get("python3") or None,
            None if values.get("python3") else "install python3 (Ansible runs it)",
            blocks=True,
        )
    )
    checks.append(
        Check(
            target,
            "package manager",
            values.get("packages") or None,
            None
            if values.get("packages")
            else "setup installs with apt-get or "
            "dnf; install git, make, containerd, runc and the CNI plugins yourself",
            blocks=True,
        )
    )
    if remote:
        checks.append(_installed_by_setup(target, "rsync", values.get("rsync")))
    for what in ("git", "make", "go", "containerd", "runc", "cni"):
        checks.append(_installed_by_setup(target, what, values.get(what)))
    socket = values.get("socket")
    checks.append(
        Check(
            target,
            "nerdlab containerd",
            f"listening on {socket}" if socket else "not running (setup starts it)",
        )
    )
    return checks


def _installed_by_setup(target: str, what: str, found: str | None) -> Check:
    if found:
        return Check(target, what, found)
    how = (
        "the pinned Go release from the Go module proxy"
        if what == "go"
        else "the distribution's package"
    )
    return Check(target, what, None, f"setup installs {how}")


def blocking(checks: Iterable[Check]) -> list[Check]:
    """The checks that stop setup from working until the user acts."""
    return [c for c in checks if c.blocks and not c.ok]


def probe(
    prefix: Sequence[str], socket: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the probe script through ``prefix`` (``[]`` here, an ssh command there).

    The script goes in on standard input, so no quoting reaches a remote shell
    except the socket path, which is quoted.
    """
    argv = [*prefix, "env", f"NERDLAB_SOCKET={shlex.quote(socket)}", "sh", "-s"]
    if not prefix:
        argv = ["env", f"NERDLAB_SOCKET={socket}", "sh", "-s"]
    try:
        return subprocess.run(
            argv,
            input=PROBE_SCRIPT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"no answer in {timeout_s}s")


def check_target(
    target: Target,
    *,
    instance: str,
    ssh_args: str = "",
    ours: bool = False,
    mounts: Sequence[str] = (),
    read_only_mounts: Sequence[str] = (),
) -> list[Check]:
    """Look at one target: probe it here, over ssh, or in its Lima VM.

    ``instance`` names nerdlab's containerd there; ``ours`` says a Lima instance is
    the one setup creates; ``mounts`` are the directories a VM must share
    writable, ``read_only_mounts`` those it only reads (the mirrors).
    """
    socket = f"/run/{instance}/containerd/containerd.sock"
    if target.kind == "local":
        return read_probe("local", probe([], socket).stdout)
    if target.kind == "lima":
        return _lima_checks(target, socket, ours, mounts, read_only_mounts)
    checks = [
        Check(
            target.spec,
            f"{tool} on this machine",
            shutil.which(tool),
            None if shutil.which(tool) else f"install {tool} here",
            blocks=True,
        )
        for tool in ("ssh", "rsync", "git")
    ]
    done = probe(ssh_command(target, ssh_args), socket)
    if done.returncode == 255 or "probe=done" not in done.stdout:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        fix = (
            f"cannot log in: {reason}; check the address, user and key "
            "(INVOKE_NERDLAB_SSH_ARGS)"
        )
        return [*checks, Check(target.spec, "ssh", None, fix, blocks=True)]
    return checks + read_probe(target.spec, done.stdout, remote=True)


def _lima_checks(
    target: Target,
    socket: str,
    ours: bool,
    mounts: Sequence[str],
    read_only_mounts: Sequence[str],
) -> list[Check]:
    spec = target.spec
    try:
        version = lima.limactl_version()
    except NerdlabError as err:
        return [Check(spec, "limactl", None, str(err), blocks=True)]
    if version is None:
        fix = "install Lima (https://lima-vm.io)"
        return [Check(spec, "limactl", None, fix, blocks=True)]
    checks = [Check(spec, "limactl", version)]
    try:
        instance = lima.find_instance(target.name)
    except NerdlabError as err:
        return [*checks, Check(spec, "instance", None, str(err), blocks=True)]
    if instance is None:
        fix = (
            "setup creates it"
            if ours
            else f"no Lima instance {target.name}; `limactl list` shows the names"
        )
        return [*checks, Check(spec, "instance", None, fix, blocks=not ours)]
    usable = instance.status in ("Running", "Stopped")
    checks.append(
        Check(
            spec,
            "instance",
            f"{instance.status} ({instance.vm_type})",
            None if usable else f"Lima says: {instance.message or instance.status}",
            blocks=not usable,
        )
    )
    wanted = [(p, True) for p in mounts] + [(p, False) for p in read_only_mounts]
    for path, writable in wanted:
        problem = lima.mount_problem(instance, path, writable=writable)
        found = None if problem else "same path" + (", writable" if writable else "")
        checks.append(
            Check(spec, f"mount {path}", found, problem, blocks=bool(problem))
        )
    if instance.status == "Running":
        host = lima.ansible_host_vars(instance)
        prefix = [
            "ssh",
            *shlex.split(str(host.get("ansible_ssh_common_args", ""))),
            "-o",
            "BatchMode=yes",
            str(host["ansible_host"]),
        ]
        checks += read_probe(spec, probe(prefix, socket).stdout, remote=True)
    return checks
