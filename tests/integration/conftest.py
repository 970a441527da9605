"""Fixtures for integration tests: real git repositories and an offline Go toolchain.

Every repository lives under the test's ``tmp_path``; git runs with no global or
system configuration, so a developer's hooks, signing or default branch never leak in,
and Go runs with the proxy off, so no test touches the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Git = Callable[..., str]

# Two tagged releases and a branch past them, enough to switch between refs.
UPSTREAM_HISTORY = (
    ("v1.0.0", "thing.go", 'package thing\n\nconst Version = "1.0.0"\n'),
    ("v1.1.0", "thing.go", 'package thing\n\nconst Version = "1.1.0"\n'),
    (None, "NOTES", "work after v1.1.0\n"),
)


@pytest.fixture
def git(monkeypatch: pytest.MonkeyPatch) -> Git:
    """Return a function that runs git in a repository and returns its stdout."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "tester")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tester@localhost")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "tester")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tester@localhost")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def run(repo: Path, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    return run


def commit_file(git: Git, repo: Path, name: str, text: str, message: str) -> str:
    """Write one file, commit it and return the new commit."""
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "--quiet", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def commit(git: Git) -> Callable[[Path, str, str, str], str]:
    """Return a function that writes one file in a repository and commits it."""

    def run(repo: Path, name: str, text: str, message: str) -> str:
        return commit_file(git, repo, name, text, message)

    return run


@pytest.fixture
def upstream(tmp_path: Path, git: Git) -> Path:
    """Return an upstream repository: tags v1.0.0 and v1.1.0, and main past them."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    commit_file(
        git,
        repo,
        "go.mod",
        "module example.com/thing\n\ngo 1.21\n",
        "thing: start the module",
    )
    for tag, name, text in UPSTREAM_HISTORY:
        commit_file(git, repo, name, text, f"thing: {tag or 'more work'}")
        if tag:
            git(repo, "tag", tag)
    return repo


@pytest.fixture
def go_tool() -> str:
    """Return the go binary, or skip when Go is not installed."""
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists():
        pytest.skip("go is not installed")
    return found


@pytest.fixture
def offline_go_env(tmp_path: Path, go_tool: str) -> dict[str, str]:
    """Return an environment in which go never downloads and caches under tmp_path."""
    return {
        "PATH": f"{Path(go_tool).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod -modcacherw",
        "GOMODCACHE": str(tmp_path / "gomodcache"),
        "GOPATH": str(tmp_path / "gopath"),
        "CGO_ENABLED": "0",
    }
