"""shell_words: split ssh options as a shell would, the way ssh and doctor read them."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any


def shell_words(text: str) -> list[str]:
    """Split a command line into words, honouring quotes."""
    return shlex.split(text or "")


class FilterModule:
    """The filters of the workspace_sync role."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"shell_words": shell_words}
