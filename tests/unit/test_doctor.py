"""inv doctor reads one probe script's output into what a target lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerdlab.doctor import PROBE_SCRIPT, blocking, probe, read_probe

DATA = Path(__file__).resolve().parents[1] / "data" / "doctor"


def _checks(name: str, **kwargs: bool) -> dict[str, object]:
    text = (DATA / name).read_text()
    return {c.what: c for c in read_probe("host", text, **kwargs)}


def test_a_set_up_root_host_lacks_nothing() -> None:
    """After setup, as root, every check is ok and containerd is listening."""
    checks = _checks("debian12-root.txt")
    assert all(c.ok for c in checks.values()), checks
    assert checks["go"].found == "go1.26.8"
    assert checks["nerdlab containerd"].found == (
        "listening on /run/nerdlab/containerd/containerd.sock"
    )


def test_a_user_without_sudo_is_told_but_not_blocked() -> None:
    """Setup asks for a sudo password on this host, so no sudo is not blocking."""
    checks = _checks("debian12-nobody.txt")
    assert checks["root"].found is None
    assert checks["root"].fix is not None and "sudo" in checks["root"].fix
    assert blocking(checks.values()) == []


@pytest.mark.parametrize(
    ("what", "blocks"),
    [
        ("python3", True),
        ("package manager", True),
        ("git", False),
        ("go", False),
        ("containerd", False),
        ("runc", False),
        ("cni", False),
    ],
)
def test_a_bare_host_says_what_setup_cannot_install(what: str, blocks: bool) -> None:
    """Python and a package manager block; what setup installs itself does not."""
    check = _checks("bare-host.txt")[what]
    assert not check.ok
    assert check.blocks is blocks


def test_a_remote_host_needs_rsync_and_sudo_without_a_password() -> None:
    """rsync is a check for remote hosts alone; without sudo they are blocked."""
    assert "rsync" not in _checks("bare-host.txt")
    remote = _checks("debian12-nobody.txt", remote=True)
    assert remote["rsync"].ok
    assert remote["root"].blocks and not remote["root"].ok


def test_an_unfinished_probe_is_one_blocking_check() -> None:
    """Output without the closing line means the script did not run to its end."""
    checks = read_probe("host", "uid=0\npython3=3.11.2\n")
    assert [c.what for c in checks] == ["probe"]
    assert blocking(checks) == checks


def test_probe_runs_here_and_finishes() -> None:
    """The script runs in this machine's sh and closes with probe=done."""
    done = probe([], "/nonexistent.sock", timeout_s=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "probe=done"
    assert "socket=" not in done.stdout
    assert "NERDLAB_SOCKET" in PROBE_SCRIPT
