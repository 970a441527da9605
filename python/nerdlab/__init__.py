"""nerdlab: reproduce and diagnose containerd-ecosystem bugs on instrumented builds.

The pieces a script or a test reaches for most; each module documents the rest.
"""

from nerdlab.chain import split_chain
from nerdlab.diagnose import (
    Diagnosis,
    Expectation,
    RunDiagnosis,
    diagnose_lines,
    diagnose_run,
)
from nerdlab.errors import NerdlabError
from nerdlab.report import render_terminal, to_json
from nerdlab.stdio import address_hash, classify_stdio
from nerdlab.trace import ProbeEvent, parse_lines

__all__ = [
    "Diagnosis",
    "Expectation",
    "NerdlabError",
    "ProbeEvent",
    "RunDiagnosis",
    "address_hash",
    "classify_stdio",
    "diagnose_lines",
    "diagnose_run",
    "parse_lines",
    "render_terminal",
    "split_chain",
    "to_json",
]
