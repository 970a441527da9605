"""A real sshd on loopback, with a user and a key made for the test.

The SSH target is exercised against the distribution's OpenSSH server, started on
127.0.0.1 at a free port with its own host key, configuration and pid file, so the
machine's own sshd (if any) is neither needed nor touched. The user it logs in as is
created for the test with passwordless sudo, as a build host would have, and removed
with its home afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class SshHost:
    """How to reach the test's sshd."""

    user: str
    port: int
    key: Path
    known_hosts: Path

    @property
    def target(self) -> str:
        """The host as `inv --target` takes it."""
        return f"ssh:{self.user}@127.0.0.1:{self.port}"

    @property
    def ssh_args(self) -> str:
        """Options for ssh: the test's key, and its own known_hosts file."""
        return (
            f"-i {self.key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new "
            f"-o UserKnownHostsFile={self.known_hosts}"
        )

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run a command on the host over ssh."""
        return subprocess.run(
            [
                "ssh",
                "-p",
                str(self.port),
                *self.ssh_args.split(),
                "-o",
                "BatchMode=yes",
                f"{self.user}@127.0.0.1",
                *command,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], bound_s: float) -> None:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1),
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} in {bound_s}s")


def _create_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", user], check=True
        )
    # A new account's password is "!", which sshd without PAM reads as locked;
    # "*" allows no password either, but lets a key log in.
    subprocess.run(["usermod", "--password", "*", user], check=True)
    sudoers = Path(f"/etc/sudoers.d/{user}")
    sudoers.write_text(f"{user} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)


def _remove_user(user: str) -> None:
    Path(f"/etc/sudoers.d/{user}").unlink(missing_ok=True)
    subprocess.run(["pkill", "-u", user], check=False)
    subprocess.run(["userdel", "--remove", user], check=False, capture_output=True)


@contextlib.contextmanager
def sshd_on_loopback(base: Path, user: str = "nerdlab-ssh") -> Iterator[SshHost]:
    """Start sshd on 127.0.0.1 for a new user with a new key; stop and remove both."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        raise RuntimeError("openssh-server is not installed (.ci/run installs it)")
    base.mkdir(parents=True, exist_ok=True)
    host_key = base / "ssh_host_ed25519_key"
    key = base / "id_ed25519"
    for path in (host_key, key):
        if not path.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                check=True,
            )
    _create_user(user)
    # sshd reads the keys as the user, who cannot enter pytest's 0700 directories.
    account = pwd.getpwnam(user)
    ssh_dir = Path(account.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text((base / "id_ed25519.pub").read_text())
    authorized.chmod(0o600)
    for path in (ssh_dir, authorized):
        os.chown(path, account.pw_uid, account.pw_gid)
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {host_key}",
                f"PidFile {base / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                f"AllowUsers {user}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = (base / "sshd.log").open("ab")
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log
    )
    try:
        _wait_for_port(port, proc, 10)
        yield SshHost(user, port, key, base / "known_hosts")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if os.environ.get("NERDLAB_KEEP_SSH_USER") != "1":
            _remove_user(user)
