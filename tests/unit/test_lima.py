"""Lima's own output is read as limactl writes it, and nerdlab's VM template renders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nerdlab import lima
from nerdlab.errors import LimaError
from nerdlab.lima import Instance, Mount

DATA = Path(__file__).resolve().parents[1] / "data" / "lima"
LIST_JSONL = (DATA / "list.jsonl").read_text()
LIST_STDERR = (DATA / "list.stderr").read_text()
SSH_CONFIG = (DATA / "ssh.config").read_text()


def captured() -> dict[str, Instance]:
    """Return the captured instances by name."""
    return {i.name: i for i in lima.parse_list(LIST_JSONL, LIST_STDERR)}


# --- limactl list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "broken", "problem"),
    [
        ("nerdlab", "Stopped", False, ""),
        ("finch", "Stopped", False, ""),
        ("stale", "Broken", True, 'strconv.Atoi: parsing "not-a-pid": invalid syntax'),
        (
            "broken",
            "",
            True,
            "failed to unmarshal YAML (main file `/tmp/limacap/home/broken/lima.yaml`)"
            ": [1:7] sequence end token ']' not found",
        ),
    ],
    ids=["created", "adopted", "stale-pid-file", "unreadable-yaml"],
)
def test_parse_list_reads_status_and_errors(
    name: str, status: str, broken: bool, problem: str
) -> None:
    """Each captured instance keeps Lima's status, and its errors from stderr."""
    instance = captured()[name]
    assert (instance.status, instance.broken, instance.problem) == (
        status,
        broken,
        problem,
    )


def test_parse_list_reads_the_created_instance() -> None:
    """The instance made from nerdlab's template has its paths, user and mounts."""
    instance = captured()["nerdlab"]
    assert instance.dir == "/tmp/limacap/home/nerdlab"
    assert instance.ssh_config_file == "/tmp/limacap/home/nerdlab/ssh.config"
    assert (instance.arch, instance.vm_type, instance.hostname) == (
        "x86_64",
        "qemu",
        "lima-nerdlab",
    )
    assert (instance.ssh_address, instance.ssh_local_port) == ("127.0.0.1", 0)
    assert instance.user == "nerdlab-lima"
    assert instance.mounts == tuple(
        Mount(path, path, True)
        for path in ("/work/main", "/work/main/runs", "/work/main/workspace")
    )


def test_parse_list_reads_mounts_of_an_adopted_instance() -> None:
    """Read-only and elsewhere-mounted directories keep what Lima filled in."""
    assert captured()["finch"].mounts == (
        Mount("/work/main", "/work/main", True),
        Mount("/tmp/limacap/ro", "/tmp/limacap/ro", False),
        Mount("/tmp/limacap/elsewhere", "/mnt/elsewhere", True),
    )


def test_parse_list_ignores_error_structs_without_stderr() -> None:
    """Without stderr, the Go structs Lima prints as errors are not taken as text."""
    stale = {i.name: i for i in lima.parse_list(LIST_JSONL)}["stale"]
    assert (stale.errors, stale.broken) == ((), True)


def _objects() -> list[dict[str, object]]:
    return [json.loads(line) for line in LIST_JSONL.splitlines()]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        LIST_JSONL.replace("\n", "\n\n"),
        json.dumps(_objects()),
        "\n".join(json.dumps(o, indent=4) for o in _objects()),
    ],
    ids=["empty", "blank-lines", "lines-with-blanks", "array", "indented"],
)
def test_parse_list_tolerates_other_layouts(text: str) -> None:
    """Blank lines, an array and indented objects give the same instances."""
    names = [i.name for i in lima.parse_list(text)]
    assert names == (
        [] if not text.strip() else ["broken", "finch", "nerdlab", "stale"]
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{"name": "a", "status": "Running", "dir": "/x"}\n{"name": "b", oops}\n', 2),
        ("time=x level=warning msg=hello\n", 1),
        ('{"status": "Running"}\n', 1),
    ],
    ids=["broken-json", "log-line-on-stdout", "no-name"],
)
def test_parse_list_names_the_bad_line(text: str, line: int) -> None:
    """A line that is not an instance object is a LimaError naming it."""
    with pytest.raises(LimaError, match=f"line {line}"):
        lima.parse_list(text)


# --- limactl's stderr ----------------------------------------------------------


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        (
            (DATA / "start-nerdlab.stderr").read_text(),
            "guest agent binary could not be found for Linux-x86_64: file does not "
            "exist (Hint: try installing `lima-additional-guestagents` package)",
        ),
        (
            (DATA / "validate-bad.stderr").read_text(),
            "failed to unmarshal YAML (/tmp/limacap/bad.yaml): [2:7] cannot unmarshal "
            "string into Go struct field LimaYAML.CPUs of type int",
        ),
        (
            '{"level":"info","msg":"starting","time":"t"}\n'
            '{"level":"fatal","msg":"field `images` must be set","time":"t"}\n',
            "field `images` must be set",
        ),
        ('time="t" level=error msg=bare\ntime="t" level=info msg="after"\n', "bare"),
        (
            "limactl: must not run as the root user\n",
            "limactl: must not run as the root user",
        ),
        ("", ""),
    ],
    ids=["start", "validate-multiline", "json-logs", "bare-msg", "not-a-log", "empty"],
)
def test_last_error_strips_the_log_prefix(stderr: str, message: str) -> None:
    """The last fatal or error record is the message, on one line, prefix removed."""
    assert lima.last_error(stderr) == message


# --- ssh config ----------------------------------------------------------------


def test_parse_ssh_config_reads_lima_capture() -> None:
    """Lima's config block gives host, address, port, user, key and every option."""
    config = lima.parse_ssh_config(SSH_CONFIG)
    assert (config.host, config.hostname, config.port, config.user) == (
        "lima-nerdlab",
        "127.0.0.1",
        0,
        "nerdlab-lima",
    )
    assert config.identity_files == ("/tmp/limacap/home/_config/user",)
    options = dict(config.options)
    assert options["ControlPath"] == "/tmp/limacap/home/nerdlab/ssh.sock"
    assert options["Ciphers"] == "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
    assert len(config.options) == 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "# comment\nHost lima-a\n  HostName=10.0.0.2\n  Port = 2222\n  User me\n",
            ("lima-a", "10.0.0.2", 2222, "me"),
        ),
        (
            "Host lima-a\n  Port 60022\n  IdentityFile a\n  IdentityFile b\n"
            "Host other\n  Port 1\n",
            ("lima-a", "", 60022, ""),
        ),
    ],
    ids=["equals-and-case", "second-host-ignored"],
)
def test_parse_ssh_config_forms(text: str, expected: tuple[str, str, int, str]) -> None:
    """Keyword=value, any keyword case and a later Host block are handled."""
    config = lima.parse_ssh_config(text)
    assert (config.host, config.hostname, config.port, config.user) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [("  Port 22\n", "no Host"), ("Host a\n  Port lots\n", "not a number")],
    ids=["no-host", "bad-port"],
)
def test_parse_ssh_config_refuses(text: str, match: str) -> None:
    """A config without a Host block, or with a Port that is no number, is refused."""
    with pytest.raises(LimaError, match=match):
        lima.parse_ssh_config(text)


def _with_ssh_config(tmp_path: Path, text: str, port: int = 0) -> Instance:
    (tmp_path / "ssh.config").write_text(text)
    return Instance(
        name="nerdlab",
        status="Running",
        dir=str(tmp_path),
        ssh_config_file=str(tmp_path / "ssh.config"),
        ssh_local_port=port,
        user="nerdlab-lima",
    )


@pytest.mark.parametrize(
    ("port_line", "listed_port", "expected_port"),
    [
        ("  Port 0\n", 0, None),
        ("  Port 60022\n", 0, 60022),
        ("  Port 0\n", 41234, 41234),
    ],
    ids=["never-started", "port-in-config", "port-from-list"],
)
def test_ansible_host_vars_use_lima_ssh_config(
    tmp_path: Path, port_line: str, listed_port: int, expected_port: int | None
) -> None:
    """ssh reads Lima's file with -F; host, user, key and a real port are repeated."""
    text = SSH_CONFIG.replace("  Port 0\n", port_line)
    instance = _with_ssh_config(tmp_path, text, listed_port)
    variables = lima.ansible_host_vars(instance)
    expected = {
        "ansible_connection": "ssh",
        "ansible_host": "lima-nerdlab",
        "ansible_user": "nerdlab-lima",
        "ansible_ssh_private_key_file": "/tmp/limacap/home/_config/user",
        "ansible_ssh_common_args": f"-F {tmp_path / 'ssh.config'}",
    }
    if expected_port is not None:
        expected["ansible_port"] = expected_port
    assert variables == expected


def test_ansible_host_vars_quote_a_path_with_spaces(tmp_path: Path) -> None:
    """A Lima home with a space in it stays one argument to ssh."""
    spaced = tmp_path / "Application Support"
    spaced.mkdir()
    instance = _with_ssh_config(spaced, SSH_CONFIG)
    args = lima.ansible_host_vars(instance)["ansible_ssh_common_args"]
    assert args == f"-F '{spaced / 'ssh.config'}'"


def test_ansible_host_vars_without_ssh_config(tmp_path: Path) -> None:
    """An instance that never started has no ssh config, and the error says so."""
    instance = Instance("nerdlab", "Stopped", str(tmp_path))
    with pytest.raises(LimaError, match="no ssh config .* limactl start nerdlab"):
        lima.ansible_host_vars(instance)


# --- mounts --------------------------------------------------------------------

ADOPTED = Instance(
    name="finch",
    status="Stopped",
    dir="/l/finch",
    mounts=(
        Mount("/work/main", "/work/main", True),
        Mount("/tmp/limacap/ro", "/tmp/limacap/ro", False),
        Mount("/tmp/limacap/elsewhere", "/mnt/elsewhere", True),
    ),
)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/work/main", None),
        ("/work/main/workspace", None),
        ("/work/main/runs/../workspace/", None),
        (
            "/tmp/limacap/ro/ws",
            "/tmp/limacap/ro/ws is mounted read-only in Lima instance finch; add the "
            "mount with: limactl edit finch --mount-writable",
        ),
        (
            "/tmp/limacap/elsewhere/ws",
            "/tmp/limacap/elsewhere/ws is mounted in Lima instance finch at "
            "/mnt/elsewhere/ws, not at the same path; add the mount with: limactl "
            "edit finch --mount /tmp/limacap/elsewhere/ws:w",
        ),
        (
            "/work/mainly",
            "/work/mainly is not mounted in Lima instance finch; add the mount with: "
            "limactl edit finch --mount /work/mainly:w",
        ),
        (
            "/srv/my ws",
            "/srv/my ws is not mounted in Lima instance finch; add the mount with: "
            "limactl edit finch --mount '/srv/my ws:w'",
        ),
    ],
    ids=[
        "mount-itself",
        "inside",
        "normalised",
        "read-only",
        "elsewhere",
        "sibling-prefix",
        "not-mounted-quoted",
    ],
)
def test_mount_problem(path: str, problem: str | None) -> None:
    """A path is fine inside a writable same-path mount; otherwise the fix is named."""
    assert lima.mount_problem(ADOPTED, path) == problem


def test_mount_problem_on_a_running_instance_stops_it_first() -> None:
    """limactl edit refuses a running instance, so the line stops and restarts it."""
    running = Instance("finch", "Running", "/l/finch", mounts=ADOPTED.mounts)
    assert lima.mount_problem(running, "/srv/ws") == (
        "/srv/ws is not mounted in Lima instance finch; add the mount with: limactl "
        "stop finch && limactl edit finch --mount /srv/ws:w --start"
    )


@pytest.mark.parametrize(
    ("mounts", "fix"),
    [
        ((Mount("/", "/", True),), None),
        ((Mount("/", "/", False),), ["limactl", "edit", "x", "--mount-writable"]),
        ((), ["limactl", "edit", "x", "--mount", "/srv/ws:w"]),
        (
            (Mount("/srv", "/srv", False), Mount("/srv/ws", "/srv/ws", True)),
            None,
        ),
    ],
    ids=["root-writable", "root-read-only", "no-mounts", "writable-inside-read-only"],
)
def test_mount_fix(mounts: tuple[Mount, ...], fix: list[str] | None) -> None:
    """The limactl edit argv follows the mounts that hold the path."""
    assert (
        lima.mount_fix(Instance("x", "Stopped", "/l/x", mounts=mounts), "/srv/ws")
        == fix
    )


def test_a_mirror_only_needs_a_read_only_mount() -> None:
    """The mirrors are only read: a read-only same-path mount is enough for them."""
    read_only = Instance("x", "Stopped", "/l/x", mounts=(Mount("/srv", "/srv", False),))
    assert lima.mount_problem(read_only, "/srv/mirrors", writable=False) is None
    assert lima.mount_fix(Instance("x", "Stopped", "/l/x"), "/m", writable=False) == [
        "limactl",
        "edit",
        "x",
        "--mount",
        "/m",
    ]


# --- limactl itself ------------------------------------------------------------


def test_limactl_version_without_limactl() -> None:
    """No limactl on PATH is None, not an error."""
    assert lima.limactl_version("nerdlab-no-such-limactl") is None


def test_lima_needs_only_the_standard_library() -> None:
    """nerdlab.lima imports on a controller with nothing but Python."""
    python_dir = Path(lima.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-S", "-c", "import nerdlab.lima; print('ok')"],
        env={"PYTHONPATH": str(python_dir)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.stdout.strip() == "ok", done.stderr


# --- the template of nerdlab's VM ----------------------------------------------

MOUNTS = ["/work/main/runs", "/work/main", "/work/main/workspace", "/work/main"]


def _rendered(**variables: object) -> dict[str, object]:
    data = yaml.safe_load(lima.render_template({"lima_vm_mounts": MOUNTS, **variables}))
    assert isinstance(data, dict)
    return data


def test_template_leaves_sizes_and_drivers_to_lima() -> None:
    """Unset CPUs, memory, disk, vmType and mountType are absent, so Lima picks."""
    data = _rendered()
    for key in ("cpus", "memory", "disk", "vmType", "mountType", "base"):
        assert key not in data, key


def test_template_sets_what_is_given() -> None:
    """CPUs, memory, disk, vmType and mountType given are written with Lima's types."""
    data = _rendered(
        lima_vm_cpus=2,
        lima_vm_memory="8GiB",
        lima_vm_disk=50,
        lima_vm_vm_type="qemu",
        lima_vm_mount_type="9p",
    )
    assert {k: data[k] for k in ("cpus", "memory", "disk", "vmType", "mountType")} == {
        "cpus": 2,
        "memory": "8GiB",
        "disk": "50",
        "vmType": "qemu",
        "mountType": "9p",
    }


def test_template_turns_lima_containerd_off() -> None:
    """Lima installs no containerd: the roles provision the guest's runtime."""
    assert _rendered()["containerd"] == {"system": False, "user": False}


def test_template_mounts_each_path_once_writable_at_the_same_path() -> None:
    """Mounts are unique, parents first, writable, mountPoint equal to location."""
    assert _rendered()["mounts"] == [
        {"location": path, "mountPoint": path, "writable": True}
        for path in ("/work/main", "/work/main/runs", "/work/main/workspace")
    ]


def test_template_without_mounts() -> None:
    """No mounts is an empty list, not Lima's default home mount."""
    assert _rendered(lima_vm_mounts=[])["mounts"] == []


def test_template_default_images_are_ubuntu_for_both_arches() -> None:
    """The default images are Ubuntu cloud images for x86_64 and aarch64."""
    images = _rendered()["images"]
    assert isinstance(images, list)
    assert {image["arch"] for image in images} == {"x86_64", "aarch64"}
    assert all(
        image["location"].startswith("https://cloud-images.ubuntu.com/")
        for image in images
    )
    assert [bool(image.get("digest")) for image in images] == [True, True, False, False]


def test_template_images_can_be_local_files() -> None:
    """A local image replaces the downloads; an entry without digest has none."""
    local = [{"location": "/srv/img/guest.qcow2", "arch": "x86_64"}]
    assert _rendered(lima_vm_images=local)["images"] == local


def test_template_provisions_what_the_roles_need_every_boot() -> None:
    """One system script installs the missing packages with apt-get or dnf."""
    provision = _rendered()["provision"]
    assert isinstance(provision, list) and len(provision) == 1
    assert provision[0]["mode"] == "system"
    script = provision[0]["script"]
    assert script.startswith("#!/bin/sh\nset -eu\n")
    for line in (
        "for pkg in python3 python3-yaml git make rsync sudo; do",
        "for pkg in python3 python3-pyyaml git make rsync sudo; do",
        "apt-get install -y -q --no-install-recommends $missing",
        "dnf install -y $missing",
    ):
        assert line in script, line


def test_template_quotes_values_as_yaml_strings() -> None:
    """A path with YAML's special characters stays one string."""
    data = _rendered(lima_vm_mounts=["/srv/a: b #c"])
    assert data["mounts"] == [
        {"location": "/srv/a: b #c", "mountPoint": "/srv/a: b #c", "writable": True}
    ]
