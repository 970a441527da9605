"""The playbooks parse, list their tasks, and pass ansible-lint's production profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted((PROJECT / "playbooks").glob("*.yml"))
ENV = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=PROJECT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_syntax(playbook: Path) -> None:
    """ansible-playbook --syntax-check accepts every playbook."""
    done = _run(str(BIN / "ansible-playbook"), "--syntax-check", str(playbook))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_lists_its_tasks(playbook: Path) -> None:
    """Every role a playbook names resolves, with its tasks and includes."""
    done = _run(str(BIN / "ansible-playbook"), "--list-tasks", str(playbook))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(
    shutil.which("ansible-lint", path=str(BIN)) is None,
    reason="ansible-lint is installed by ./bootstrap --test",
)
def test_ansible_lint_production_profile() -> None:
    """ansible-lint passes with the production profile set in .ansible-lint."""
    done = _run(str(BIN / "ansible-lint"), "--nocolor")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def test_yamllint() -> None:
    """yamllint accepts the playbooks, roles, scenarios and probe sets."""
    done = _run(
        str(BIN / "yamllint"),
        "--strict",
        "playbooks",
        "roles",
        "scenarios",
        "patches",
        "inventory",
        "invoke.yaml",
    )
    assert done.returncode == 0, done.stdout + done.stderr
