"""A checkout's own work is found before anything is copied over it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nerdlab.sources import LAYER_TRAILER, unshared_work


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout at a tagged base with one nerdlab layer on its branch."""
    repo = tmp_path / "nerdctl"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "go.mod").write_text("module x\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "upstream")
    _git(repo, "tag", "v1.0.0")
    _git(repo, "switch", "-q", "-c", "nerdlab/v1.0.0")
    (repo / "go.mod").write_text("module x\n\nreplace y => ../y\n")
    _git(repo, "commit", "-q", "-am", f"nerdlab: wiring\n\n{LAYER_TRAILER}: wiring 1")
    (repo / ".gitignore").write_text("_output/\n")
    _git(repo, "add", ".gitignore")
    _git(repo, "commit", "-q", "-m", f"nerdlab: ignore\n\n{LAYER_TRAILER}: x 2")
    (repo / "_output").mkdir()
    (repo / "_output" / "nerdctl").write_text("built")
    return repo


def test_a_checkout_with_only_nerdlabs_layers_holds_nothing(checkout: Path) -> None:
    """Layers carry nerdlab's trailer and build outputs are ignored: nothing to keep."""
    assert unshared_work(checkout) == []


def _edit(repo: Path) -> None:
    (repo / "go.mod").write_text("module changed\n")


def _untracked(repo: Path) -> None:
    (repo / "mywork_test.go").write_text("package x\n")


def _stash(repo: Path) -> None:
    _edit(repo)
    _git(repo, "stash", "-q")


def _commit(repo: Path) -> None:
    _edit(repo)
    _git(repo, "commit", "-q", "-am", "my own change")


def _other_branch(repo: Path) -> None:
    _git(repo, "switch", "-q", "-c", "idea")
    _commit(repo)
    _git(repo, "switch", "-q", "nerdlab/v1.0.0")


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (_edit, "uncommitted changes"),
        (_untracked, "untracked files"),
        (_stash, "1 stash entry"),
        (_commit, "1 commit(s) of your own"),
        (_other_branch, "1 commit(s) of your own"),
    ],
    ids=["edit", "untracked", "stash", "commit", "other-branch"],
)
def test_work_of_the_users_own_is_named(
    checkout: Path, make: Callable[[Path], None], found: str
) -> None:
    """Each kind of work that exists only in the checkout is named."""
    make(checkout)
    assert any(item.startswith(found) for item in unshared_work(checkout))
