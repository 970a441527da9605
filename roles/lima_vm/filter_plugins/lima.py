"""Ansible filters over nerdlab.lima: what limactl says, read as nerdlab reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def lima_error(stderr: str) -> str:
    """Return the last error limactl logged, on one line, without its log prefix."""
    from nerdlab.lima import last_error

    return last_error(stderr)


def lima_instance(listed: dict[str, Any], name: str) -> dict[str, Any]:
    """Return name's state from a registered `limactl list --format json`, or {}."""
    from nerdlab.lima import parse_list

    stdout, stderr = listed.get("stdout", ""), listed.get("stderr", "")
    for instance in parse_list(stdout, stderr):
        if instance.name == name:
            return {
                "name": instance.name,
                "status": instance.status,
                "broken": instance.broken,
                "problem": instance.problem or "Lima gives no reason",
                "dir": instance.dir,
            }
    return {}


class FilterModule:
    """The lima_vm role's filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"lima_error": lima_error, "lima_instance": lima_instance}
