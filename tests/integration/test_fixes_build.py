"""The shipped fixes on real nerdctl checkouts: applied, gofmt-clean, vetted, exported.

Needs a bare git mirror of nerdctl under ``$NERDLAB_MIRRORS`` (default
``/work/.mirror``, laid out as ``containerd+nerdctl/repo``) and skips without
it; the mirror is only cloned from, never modified. ``go vet`` runs with the
module proxy off and skips when the module cache lacks what it needs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nerdlab.fixes import apply_fix, export_patch, load_fix

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
DETACHED_FIFOS = REPO_ROOT / "patches" / "fixes" / "detached-fifos.yml"
MIRRORS = Path(os.environ.get("NERDLAB_MIRRORS", "/work/.mirror"))

# The versions in the fix's header: the original report, releases, and main.
VERSIONS = ["v2.0.0-beta.2", "v1.7.7", "v2.0.0", "v2.1.6", "8da50408"]

# What 'go' prints when it needs a module it cannot get.
OFFLINE = re.compile(
    r"dial tcp|lookup .* on|no such host|proxy\.golang\.org|GOFLAGS=-mod=mod"
    r"|GOPROXY=off|module lookup disabled|missing go\.sum entry"
)


def go_tool(name: str) -> str:
    found = shutil.which(name) or f"/usr/local/go/bin/{name}"
    if not Path(found).exists():
        pytest.skip(f"{name} is not installed")
    return found


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def clone(rev: str, dest: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    mirror = MIRRORS / "containerd+nerdctl" / "repo"
    if not mirror.is_dir():
        pytest.skip(f"no mirror of nerdctl at {mirror}")
    subprocess.run(
        ["git", "clone", "-q", "--shared", "--no-checkout", str(mirror), str(dest)],
        check=True,
    )
    git(dest, "checkout", "-q", rev)
    return dest


@pytest.mark.parametrize("rev", VERSIONS)
def test_detached_fifos_applies_and_vets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rev: str
) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = clone(rev, tmp_path / "nerdctl")
    fix = load_fix(DETACHED_FIFOS)

    result = apply_fix(root, fix)

    assert [e.action for e in result.edits] == ["replace", "replace"], result.edits
    assert result.changed_files == (Path("pkg/taskutil/taskutil.go"),)
    source = (root / "pkg/taskutil/taskutil.go").read_text()
    assert "cio.LogURI(" not in source
    assert "cio.TerminalBinaryIO(" not in source
    assert "\t\tioCreator = cio.NewCreator(cio.WithStdio)\n" in source
    assert "\t\t// nerdlab fix detached-fifos.log-uri\n" in source
    assert [e.action for e in apply_fix(root, fix).edits] == ["present", "present"]

    listed = subprocess.run(
        [go_tool("gofmt"), "-l", "pkg/taskutil"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (listed.returncode, listed.stdout) == (0, ""), listed.stderr

    vet = subprocess.run(
        [go_tool("go"), "vet", "./pkg/taskutil/"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOFLAGS": "-mod=mod",
        },
    )
    if vet.returncode != 0 and OFFLINE.search(vet.stderr):
        pytest.skip(f"go vet at {rev} needs modules the cache lacks")
    assert vet.returncode == 0, vet.stderr


@pytest.mark.parametrize("rev", VERSIONS)
def test_detached_fifos_exports_a_clean_patch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rev: str
) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = clone(rev, tmp_path / "nerdctl")
    base = git(root, "rev-parse", "HEAD").strip()
    fix = load_fix(DETACHED_FIFOS)

    patch = export_patch(root, fix, base, tmp_path / "out")

    text = patch.read_text()
    touched = re.findall(r"^diff --git a/(\S+) b/", text, re.M)
    assert touched == ["pkg/taskutil/taskutil.go"]
    assert "NERDLAB-PROBE" not in text
    assert "nerdlab fix" not in text
    assert f"Subject: [PATCH] {fix.subject}" in text
    assert "-\t\tioCreator = cio.LogURI(u)" in text
    assert "+\t\tioCreator = cio.NewCreator(cio.WithStdio)" in text
    assert git(root, "rev-parse", "HEAD").strip() == base
    assert git(root, "status", "--porcelain") == ""
    assert len(git(root, "worktree", "list").splitlines()) == 1
