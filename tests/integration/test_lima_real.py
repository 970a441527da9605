"""nerdlab against the real limactl: validate, create, list, start, edit, delete.

limactl refuses to run as root, so as root these tests create an unprivileged user
(nerdlab-lima) and run limactl as that user, with a LIMA_HOME of its own in a
temporary directory. A limactl built from the Go module alone (.ci/install-limactl)
has no guest agent, so nothing boots: create writes the instance and stops at the
missing agent, and start fails there, which is what these tests see Lima say.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from nerdlab import lima
from nerdlab.errors import ConfigError, LimaError

PROJECT = Path(__file__).resolve().parents[2]
USER = "nerdlab-lima"
LIMACTL = shutil.which("limactl") or shutil.which("limactl", path="/usr/local/bin")
# Lima's message when its guest agent is not installed beside limactl.
NO_AGENT = "guest agent binary could not be found"

pytestmark = pytest.mark.skipif(
    LIMACTL is None, reason="limactl is not installed; run .ci/install-limactl"
)


@dataclass(frozen=True)
class Lima:
    """How to run limactl (and anything else) as the user who owns LIMA_HOME."""

    user: str
    home: Path
    as_user: tuple[str, ...]

    @property
    def limactl(self) -> list[str]:
        """Return the limactl command prefix nerdlab.lima takes."""
        return [*self.as_user, "env", f"LIMA_HOME={self.home}", str(LIMACTL)]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run limactl with args, bounded, and return what it did."""
        return subprocess.run(
            [*self.limactl, "--tty=false", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def write(self, path: Path, text: str) -> Path:
        """Write a file the user can read."""
        path.write_text(text)
        path.chmod(0o644)
        return path


def _ensure_user() -> bool:
    """Create the test's user unless it exists; say whether it was created."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", USER],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return True
    return False


@pytest.fixture(scope="module")
def lima_env() -> Iterator[Lima]:
    """Return limactl as an unprivileged user, with a LIMA_HOME of its own."""
    if os.geteuid() == 0:
        if shutil.which("useradd") is None or shutil.which("runuser") is None:
            pytest.skip("useradd and runuser are needed to run limactl as a user")
        created = _ensure_user()
        user = USER
        entry = pwd.getpwnam(user)
        as_user: tuple[str, ...] = ("runuser", "-u", user, "--")
    else:
        created = False
        entry = pwd.getpwuid(os.geteuid())
        user, as_user = entry.pw_name, ()
    # The user must reach this directory: not under root's private pytest tmp.
    top = Path(tempfile.mkdtemp(prefix="nerdlab-lima-", dir="/tmp"))
    top.chmod(0o755)
    os.chown(top, entry.pw_uid, entry.pw_gid)
    try:
        yield Lima(user, top / "home", as_user)
    finally:
        if as_user:
            subprocess.run(
                [*as_user, "rm", "-rf", str(top / "home")],
                check=False,
                timeout=60,
            )
        shutil.rmtree(top, ignore_errors=True)
        if created:
            # The machine is left as the test found it.
            subprocess.run(
                ["userdel", "--remove", user], check=False, capture_output=True
            )


def _template(env: Lima, name: str, **variables: object) -> Path:
    """Render nerdlab's template with local, missing images, into a user file."""
    images = [
        {"location": str(env.home.parent / f"missing-{arch}.img"), "arch": arch}
        for arch in ("x86_64", "aarch64")
    ]
    text = lima.render_template({"lima_vm_images": images, **variables})
    return env.write(env.home.parent / f"{name}.yaml", text)


def _create(env: Lima, name: str, template: Path) -> subprocess.CompletedProcess[str]:
    done = env.run("create", "--name", name, str(template))
    # Without a guest agent, create writes the instance and then fails.
    assert done.returncode == 0 or NO_AGENT in done.stderr, done.stderr
    return done


def _shared_dirs(env: Lima) -> list[str]:
    """Return three directories to mount, made and owned by the user."""
    dirs = [env.home.parent / "project", env.home.parent / "project" / "runs"]
    dirs.append(env.home.parent / "workspace")
    for path in dirs:
        path.mkdir(parents=True, exist_ok=True)
        shutil.chown(path, env.user, env.user)
    return [str(path) for path in dirs]


@pytest.mark.skipif(os.geteuid() != 0, reason="checks limactl's refusal of root")
def test_limactl_refuses_root() -> None:
    """As root, limactl_version gives a one-line ConfigError, not Lima's exit."""
    with pytest.raises(ConfigError) as caught:
        lima.limactl_version(str(LIMACTL))
    assert str(caught.value) == (
        "limactl refuses to run as root (Lima's own rule); run inv as an "
        "unprivileged user"
    )


def test_limactl_version(lima_env: Lima) -> None:
    """As a user, limactl_version reads the version limactl prints."""
    version = lima.limactl_version(lima_env.limactl)
    assert version is not None and re.fullmatch(r"\d+\.\d+\.\d+\S*", version), version


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"lima_vm_mounts": ["/srv/nerdlab"]},
        {
            "lima_vm_mounts": ["/srv/nerdlab", "/var/tmp"],
            "lima_vm_cpus": 2,
            "lima_vm_memory": "2GiB",
            "lima_vm_disk": "20GiB",
            "lima_vm_vm_type": "qemu",
            "lima_vm_mount_type": "9p",
        },
        {
            "lima_vm_mounts": ["/srv/nerdlab"],
            "lima_vm_mount_type": "9p",
            "lima_vm_images": [
                {
                    "location": "/srv/images/debian.qcow2",
                    "arch": "x86_64",
                    "kernel": {
                        "location": "/srv/images/vmlinuz",
                        "arch": "x86_64",
                        "cmdline": "root=LABEL=limaroot rw console=ttyS0",
                    },
                    "initrd": {"location": "/srv/images/initrd.img", "arch": "x86_64"},
                }
            ],
            "lima_vm_settings": {
                "firmware": {"legacyBIOS": True},
                "vmOpts": {"qemu": {"cpuType": {"x86_64": "max"}}},
            },
        },
    ],
    ids=["defaults", "one-mount", "everything-set", "local-kernel-image"],
)
def test_template_passes_limactl_validate(
    lima_env: Lima, variables: dict[str, object]
) -> None:
    """Lima's own validate accepts the rendered template, with and without options."""
    template = _template(lima_env, "validate", **variables)
    done = lima_env.run("validate", str(template), timeout=60)
    assert done.returncode == 0, done.stderr


def test_default_images_pass_limactl_validate(lima_env: Lima) -> None:
    """The default Ubuntu image entries are valid as Lima reads them."""
    text = lima.render_template({"lima_vm_mounts": ["/srv/nerdlab"]})
    template = lima_env.write(lima_env.home.parent / "ubuntu.yaml", text)
    done = lima_env.run("validate", str(template), timeout=60)
    assert done.returncode == 0, done.stderr


def test_create_list_mounts_start_delete(lima_env: Lima) -> None:
    """One instance through its life: created, listed, checked, started, deleted."""
    mounts = _shared_dirs(lima_env)
    name = "nerdlab-it"
    _create(lima_env, name, _template(lima_env, name, lima_vm_mounts=mounts))

    instance = lima.find_instance(name, lima_env.limactl)
    assert instance is not None
    assert instance.status == "Stopped"
    assert instance.user == lima_env.user
    assert instance.dir == str(lima_env.home / name)
    assert instance.mounts == tuple(lima.Mount(p, p, True) for p in sorted(mounts))
    for path in mounts:
        assert lima.mount_problem(instance, path) is None
    assert lima.mount_problem(instance, "/srv") == (
        f"/srv is not mounted in Lima instance {name}; add the mount with: limactl "
        f"edit {name} --mount /srv:w"
    )

    with pytest.raises(LimaError, match=f"no ssh config .* limactl start {name}"):
        lima.ansible_host_vars(instance)

    began = time.monotonic()
    with pytest.raises(LimaError) as caught:
        lima.ensure_running(name, 60, limactl=lima_env.limactl)
    message = str(caught.value)
    assert time.monotonic() - began < 60
    assert "\n" not in message and "level=" not in message
    assert message.startswith(f"limactl start {name} failed: {NO_AGENT}"), message

    done = lima_env.run("delete", "--force", name)
    assert done.returncode == 0, done.stderr
    assert lima.find_instance(name, lima_env.limactl) is None
    assert not (lima_env.home / name).exists()


def test_suggested_mount_fixes_work(lima_env: Lima) -> None:
    """The limactl edit line mount_problem suggests makes the path usable."""
    base = lima_env.home.parent / "adopted"
    ro, elsewhere = base / "ro", base / "elsewhere"
    for path in (ro, elsewhere):
        path.mkdir(parents=True, exist_ok=True)
        shutil.chown(path, lima_env.user, lima_env.user)
    template = lima_env.write(
        base.with_suffix(".yaml"),
        "images:\n"
        f"  - location: {base}/missing.img\n    arch: x86_64\n"
        f"  - location: {base}/missing.img\n    arch: aarch64\n"
        "containerd: {system: false, user: false}\n"
        "mounts:\n"
        f"  - location: {ro}\n"
        f"  - location: {elsewhere}\n    mountPoint: /mnt/elsewhere\n"
        "    writable: true\n",
    )
    name = "adopted"
    _create(lima_env, name, template)
    try:
        for path, kind in ((ro / "ws", "read-only"), (elsewhere / "ws", "elsewhere")):
            instance = lima.find_instance(name, lima_env.limactl)
            assert instance is not None
            problem = lima.mount_problem(instance, str(path))
            assert problem is not None
            assert ("read-only" in problem) == (kind == "read-only"), problem
            fix = lima.mount_fix(instance, str(path))
            assert fix is not None and fix[0] == "limactl"
            done = lima_env.run(*fix[1:])
            assert done.returncode == 0, done.stderr
            edited = lima.find_instance(name, lima_env.limactl)
            assert edited is not None
            assert lima.mount_problem(edited, str(path)) is None, edited.mounts
    finally:
        lima_env.run("delete", "--force", name)


def test_ensure_running_reports_missing_and_broken(lima_env: Lima) -> None:
    """A missing instance says how to make one; a broken one gives Lima's error."""
    with pytest.raises(LimaError, match="inv setup --target lima"):
        lima.ensure_running("nerdlab-absent", 30, limactl=lima_env.limactl)

    name = "stale"
    _create(lima_env, name, _template(lima_env, name))
    try:
        pid_file = lima_env.home / name / "ha.pid"
        subprocess.run(
            [*lima_env.as_user, "sh", "-c", f"echo not-a-pid > {pid_file}"],
            check=True,
            timeout=30,
        )
        with pytest.raises(LimaError) as caught:
            lima.ensure_running(name, 30, limactl=lima_env.limactl)
        assert str(caught.value) == (
            f'Lima instance {name} is broken: strconv.Atoi: parsing "not-a-pid": '
            f"invalid syntax; repair it, or remove it with `limactl delete {name}`"
        )
    finally:
        lima_env.run("delete", "--force", name)


def _ansible_python(env: Lima) -> list[str]:
    """Return an interpreter the user can run ansible-playbook of .venv with.

    The venv's python may live under root's home, out of the user's reach; then a
    system Python of the same version runs the venv's packages.
    """
    venv_python = str(Path(sys.executable))
    check = subprocess.run(
        [*env.as_user, "test", "-x", venv_python], check=False, timeout=30
    )
    if check.returncode == 0:
        return [venv_python]
    system = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if system is None:
        pytest.skip(f"{env.user} cannot run {venv_python}, and there is no python3")
    found = subprocess.run(
        [
            system,
            "-c",
            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout.strip()
    if found != version:
        pytest.skip(f"{env.user} cannot run {venv_python}; {system} is {found}")
    site = Path(sys.prefix) / "lib" / f"python{version}" / "site-packages"
    return ["env", f"PYTHONPATH={site}:{PROJECT / 'python'}", system]


def _playbook(
    env: Lima, variables: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    extra = env.write(env.home.parent / "lima-vars.json", json.dumps(variables))
    argv: Sequence[str] = [
        *env.as_user,
        "env",
        f"LIMA_HOME={env.home}",
        f"HOME={pwd.getpwnam(env.user).pw_dir}",
        f"ANSIBLE_CONFIG={PROJECT / 'ansible.cfg'}",
        *_ansible_python(env),
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(PROJECT / "playbooks" / "lima.yml"),
        "--extra-vars",
        f"@{extra}",
    ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=300, check=False, cwd="/"
    )


def test_lima_playbook_creates_then_starts(lima_env: Lima) -> None:
    """The playbook renders, validates, creates, starts, and stops at Lima's error."""
    name = "nerdlab-pb"
    mounts = _shared_dirs(lima_env)
    images = [
        {"location": str(lima_env.home.parent / f"missing-{arch}.img"), "arch": arch}
        for arch in ("x86_64", "aarch64")
    ]
    variables = {
        "lima_vm_name": name,
        "lima_vm_mounts": mounts,
        "lima_vm_images": images,
        "lima_vm_limactl": str(LIMACTL),
        "lima_vm_template_dir": str(lima_env.home.parent / "templates"),
        "lima_vm_start_timeout": 60,
    }
    try:
        first = _playbook(lima_env, variables)
        output = first.stdout + first.stderr
        assert first.returncode != 0, output
        assert f"limactl create {name} failed: {NO_AGENT}" in output, output
        assert "Traceback" not in output

        rendered = Path(str(variables["lima_vm_template_dir"])) / f"{name}.yaml"
        expected = {k: v for k, v in variables.items() if k != "lima_vm_template_dir"}
        assert rendered.read_text() == lima.render_template(expected)
        instance = lima.find_instance(name, lima_env.limactl)
        assert instance is not None and instance.status == "Stopped"

        second = _playbook(lima_env, variables)
        output = second.stdout + second.stderr
        assert second.returncode != 0, output
        assert f"limactl start {name} failed: {NO_AGENT}" in output, output
        assert "Create the Lima instance" not in output
    finally:
        lima_env.run("delete", "--force", name)
