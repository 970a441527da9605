"""nerdlab: reproduce and diagnose containerd-ecosystem bugs on instrumented builds.

The pieces a script or a test reaches for most; each module documents the rest.
They load on first use, because ``nerdlab.runner`` and ``nerdlab.image`` run on
targets that have only the standard library.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Diagnosis": "nerdlab.diagnose",
    "Expectation": "nerdlab.diagnose",
    "NerdlabError": "nerdlab.errors",
    "ProbeEvent": "nerdlab.trace",
    "RunDiagnosis": "nerdlab.diagnose",
    "address_hash": "nerdlab.stdio",
    "classify_stdio": "nerdlab.stdio",
    "diagnose_lines": "nerdlab.diagnose",
    "diagnose_run": "nerdlab.diagnose",
    "parse_lines": "nerdlab.trace",
    "render_terminal": "nerdlab.report",
    "split_chain": "nerdlab.chain",
    "to_json": "nerdlab.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nerdlab' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
