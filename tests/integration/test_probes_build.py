"""Probes compiled and run: a tiny module, and the shipped sets on real checkouts.

The checkout tests need bare git mirrors of nerdctl, containerd and fifo under
``$NERDLAB_MIRRORS`` (default ``/work/.mirror``, laid out as
``containerd+<repo>/repo``) and skip without them; they never modify a mirror.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from nerdlab.probes import apply_probes, load_probe_set

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "patches" / "probes"
MIRRORS = Path(os.environ.get("NERDLAB_MIRRORS", "/work/.mirror"))

# The versions the shipped sets are checked against (see their headers).
VERSIONS = {
    "nerdctl": [
        "78b66fdcde0eeafb95fdf9915dc4ccbaef51021a",
        "v1.7.7",
        "v2.0.0",
        "v2.1.6",
        "HEAD",
    ],
    "containerd": ["v1.7.14", "v1.7.22", "v2.0.0", "v2.1.4", "v2.4.0-beta.0"],
    "fifo": ["v1.1.0", "HEAD"],
}

# One NERDLAB-PROBE line as render_statement prints it.
PROBE_LINE = re.compile(
    r'^NERDLAB-PROBE t=\d+ pid=\d+ id="(?P<id>[^"]+)" mod="(?P<mod>[^"]+)" '
    r'func="(?P<func>[^"]+)" place="(?P<place>[^"]+)"(?P<values>.*)$'
)

# What 'go' prints when it needs a module it cannot download.
OFFLINE = re.compile(
    r"dial tcp|lookup .* on|no such host|proxy\.golang\.org|GOFLAGS=-mod=mod"
)

MAIN = """\
package main

import "os"

type counter struct{ n int }

func (c *counter) add(by int) (total int, err error) {
	if by < 0 {
		return c.n, os.ErrInvalid
	}
	c.n += by
	return c.n, nil
}

func main() {
	c := &counter{}
	_, _ = c.add(2)
	_, _ = c.add(-1)
	os.Stdout.WriteString("done\\n")
}
"""

PROBES = """\
description: A probe set for a tiny module.
checked_against: [the test itself]
upstream_status: not-for-upstream
repo: fifo
module: example.com/tiny
probes:
  - id: tiny.add.entry
    packages: [.]
    func: add
    receiver: "*counter"
    place: entry
    values: {by: by, n: c.n}
  - id: tiny.add.exit
    packages: [.]
    func: add
    receiver: "*counter"
    place: exit
    values: {total: total, err: err}
"""


def go_tool(name: str) -> str:
    found = shutil.which(name) or f"/usr/local/go/bin/{name}"
    if not Path(found).exists():
        pytest.skip(f"{name} is not installed")
    return found


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GOTOOLCHAIN": "local", **env},
    )


def go_or_skip(argv: list[str], cwd: Path, **env: str) -> None:
    """Run a go command; skip when it fails only for want of the network."""
    done = run(argv, cwd, **env)
    if done.returncode != 0 and OFFLINE.search(done.stderr):
        pytest.skip(f"{' '.join(argv[1:])} needs modules it cannot download")
    assert done.returncode == 0, done.stderr


def assert_gofmt_clean(root: Path, files: tuple[Path, ...]) -> None:
    listed = run([go_tool("gofmt"), "-l", *(str(root / f) for f in files)], root)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""


def mirror(repo: str) -> Path:
    path = MIRRORS / f"containerd+{repo}" / "repo"
    if not path.is_dir():
        pytest.skip(f"no mirror of {repo} at {path}")
    return path


def clone(repo: str, rev: str, dest: Path) -> Path:
    git = shutil.which("git") or pytest.skip("git is not installed")
    subprocess.run(
        [git, "clone", "-q", "--shared", "--no-checkout", str(mirror(repo)), str(dest)],
        check=True,
    )
    subprocess.run([git, "-C", str(dest), "checkout", "-q", rev], check=True)
    return dest


def export(repo: str, rev: str, packages: set[str], dest: Path) -> Path:
    """Write only go.mod and the probes' package directories of one revision."""
    git = ["git", "--git-dir", str(mirror(repo))]
    top = subprocess.run(
        [*git, "ls-tree", "--name-only", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    paths = [
        name
        for name in top
        if name in packages or "." in packages and name.endswith(".go")
    ]
    nested = [p for p in packages if "/" in p]
    if nested:
        paths += subprocess.run(
            [*git, "ls-tree", "--name-only", rev, "--", *nested],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    archive = subprocess.run(
        [*git, "archive", "--format=tar", rev, "go.mod", *paths],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extraction_filter = tarfile.data_filter
        tar.extractall(dest)
    return dest


def test_probes_print_from_a_built_binary(tmp_path: Path) -> None:
    """Entry and exit probes compile and print one parsable line each to stderr."""
    go = go_tool("go")
    (tmp_path / "go.mod").write_text("module example.com/tiny\n\ngo 1.21\n")
    (tmp_path / "main.go").write_text(MAIN)
    (tmp_path / "tiny.yml").write_text(PROBES)
    result = apply_probes(tmp_path, load_probe_set(tmp_path / "tiny.yml"))
    assert_gofmt_clean(tmp_path, result.changed_files)

    built = run([go, "build", "-o", "tiny", "."], tmp_path, GOFLAGS="-mod=mod")
    assert built.returncode == 0, built.stderr
    ran = run([str(tmp_path / "tiny")], tmp_path)
    assert ran.stdout == "done\n"
    lines = [PROBE_LINE.match(line) for line in ran.stderr.splitlines()]
    assert all(lines), ran.stderr
    seen = [(m["id"], m["func"], m["place"], m["values"]) for m in lines if m]
    assert seen == [
        ("tiny.add.entry", "(*counter).add", "entry", ' by="2" n="0"'),
        ("tiny.add.exit", "(*counter).add", "exit", ' total="2" err="<nil>"'),
        ("tiny.add.entry", "(*counter).add", "entry", ' by="-1" n="2"'),
        (
            "tiny.add.exit",
            "(*counter).add",
            "exit",
            ' total="2" err="invalid argument"',
        ),
    ]
    assert {m["mod"] for m in lines if m} == {"example.com/tiny"}


@pytest.mark.parametrize(
    ("repo", "rev"),
    [
        pytest.param(repo, rev, id=f"{repo}@{rev[:12]}")
        for repo, revs in VERSIONS.items()
        for rev in revs
    ],
)
def test_shipped_sets_resolve(tmp_path: Path, repo: str, rev: str) -> None:
    """Every shipped probe is placed, gofmt-clean, at each checked version."""
    probe_set = load_probe_set(SHIPPED / f"{repo}.yml")
    packages = {package for probe in probe_set.probes for package in probe.packages}
    root = export(repo, rev, packages, tmp_path)
    result = apply_probes(root, probe_set)
    assert not result.skipped, result.skipped
    assert {e.probe_id for e in result.inserted} == {p.id for p in probe_set.probes}
    assert_gofmt_clean(root, result.changed_files)


def test_fifo_builds_and_vets(tmp_path: Path) -> None:
    """fifo v1.1.0 with its probes builds and passes go vet."""
    go = go_tool("go")
    root = clone("fifo", "v1.1.0", tmp_path / "fifo")
    result = apply_probes(root, load_probe_set(SHIPPED / "fifo.yml"))
    assert result.changed_files == (Path("fifo.go"),)
    assert_gofmt_clean(root, result.changed_files)
    go_or_skip([go, "build", "./..."], root)
    go_or_skip([go, "vet", "."], root)


def test_containerd_cio_builds_and_vets(tmp_path: Path) -> None:
    """containerd v1.7.14's client and cio packages build with their probes."""
    go = go_tool("go")
    root = clone("containerd", "v1.7.14", tmp_path / "containerd")
    result = apply_probes(root, load_probe_set(SHIPPED / "containerd.yml"))
    assert set(result.changed_files) == {
        Path("container.go"),
        Path("cio/io.go"),
        Path("cio/io_unix.go"),
    }
    assert_gofmt_clean(root, result.changed_files)
    # v1.7.14 vendors its dependencies, so this needs no network.
    go_or_skip([go, "build", "./cio/", "."], root, GOFLAGS="-mod=vendor")
    go_or_skip([go, "vet", "./cio/"], root, GOFLAGS="-mod=vendor")
