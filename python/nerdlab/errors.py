"""Errors nerdlab raises.

    NerdlabError                 anything nerdlab reports to the user as one line
    ├── ConfigError              bad option, setting or data file (scenario, probe set)
    ├── GoModError               go.mod cannot be read, or lacks a required module
    ├── SourceError              a checkout cannot be made or would lose user work
    ├── ProbeError               a probe cannot be placed or rendered
    │   └── ProbeNotFound        the function or statement a probe names is absent
    ├── LimaError                limactl fails, or a Lima instance is missing or broken
    └── TraceParseError          a line that claims a known format but breaks it

Every message says what to do next; callers print ``str(err)`` and exit non-zero.
"""

from __future__ import annotations


class NerdlabError(Exception):
    """Base of every error nerdlab reports to the user."""


class ConfigError(NerdlabError):
    """An option, setting or data file is wrong."""


class GoModError(NerdlabError):
    """go.mod cannot be read or lacks what nerdlab needs."""


class SourceError(NerdlabError):
    """A checkout cannot be prepared without losing work or data."""


class ProbeError(NerdlabError):
    """A probe cannot be placed or rendered."""


class ProbeNotFound(ProbeError):
    """The function or statement a probe is anchored to does not exist."""


class LimaError(NerdlabError):
    """limactl fails, or a Lima instance is missing, broken or cannot be reached."""


class TraceParseError(NerdlabError):
    """A line claims a known format but does not follow it."""

    def __init__(self, message: str, line: str, column: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.column = column

    def caret(self) -> str:
        """Return the offending line with a caret under the failing column."""
        return f"{self.line}\n{' ' * self.column}^"
