"""A run directory captured on a real host reads as the bug, exactly and briefly.

tests/data/runs/real-v2.0.0-beta.2-detached-attach/ was recorded by ``inv repro``
against nerdctl v2.0.0-beta.2 (78b66fdc) built with the probes; its README says how
to capture it again.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from nerdlab.cli import trace_main
from nerdlab.diagnose import Diagnosis, RunDiagnosis, diagnose_run

REAL = (
    Path(__file__).parents[1] / "data" / "runs" / "real-v2.0.0-beta.2-detached-attach"
)
ADDRESS = "/run/nerdlab/containerd/containerd.sock"
URI = (
    "binary:///work/main/workspace/nerdctl/_output/nerdctl?_NERDCTL_INTERNAL_LOGGING="
    "%2Fvar%2Flib%2Fnerdlab%2Fnerdctl%2F5ac656fe"
)


@pytest.fixture(scope="module")
def run() -> RunDiagnosis:
    return diagnose_run(REAL)


@pytest.fixture(scope="module")
def diagnosis(run: RunDiagnosis) -> Diagnosis:
    (scenario,) = run.scenarios
    assert scenario.name == "detached-attach"
    return scenario.diagnosis


@pytest.fixture(scope="module")
def terminal() -> str:
    out, err = io.StringIO(), io.StringIO()
    assert trace_main([str(REAL)], stdout=out, stderr=err) == 0
    assert err.getvalue() == ""
    return out.getvalue()


def test_outcome(diagnosis: Diagnosis) -> None:
    """Attach failed on the log URI: the bug is reproduced."""
    assert (diagnosis.outcome, diagnosis.attach, diagnosis.root_cause) == (
        "REPRODUCED",
        "failed",
        "log-uri-treated-as-fifo",
    )


def test_stdio_is_what_containerd_stored(diagnosis: Diagnosis) -> None:
    """One entry per stream, read from the attach step's loadTask probe."""
    assert [(use.stream, use.kind, use.scheme) for use in diagnosis.stdio] == [
        ("stdin", "empty", None),
        ("stdout", "log-uri", "binary"),
        ("stderr", "log-uri", "binary"),
    ]
    assert [use.path for use in diagnosis.stdio] == ["", URI, URI]
    assert {(use.step, use.line) for use in diagnosis.stdio} == {("attach", 4)}


def test_newtask_branch(diagnosis: Diagnosis) -> None:
    """The run step's probe shows NewTask's detached log-URI branch."""
    assert diagnosis.newtask_branch == "log-uri"


def test_code_path_is_the_attach_path(diagnosis: Diagnosis) -> None:
    """NewTask's branch, then attach's own probes up to the failed mkfifo only."""
    assert diagnosis.code_path[0] == "NewTask(log-uri)"
    assert diagnosis.code_path[-1] == "openFifo(mkfifo failed)"
    assert diagnosis.code_path == (
        "NewTask(log-uri)",
        "Attach",
        "loadTask",
        "attachExistingIO",
        "NewAttach",
        "openFifos(stdout=binary://…)",
        "OpenFifo",
        "openFifo(mkfifo failed)",
    )
    steps = dict(diagnosis.code_path_by_step)
    assert list(steps) == ["run", "ps", "attach", "inspect", "remove"]
    assert steps["remove"][-1] == "loadTask(error)"


def test_error_chain(diagnosis: Diagnosis) -> None:
    """The fatal error's four layers, outermost first."""
    assert diagnosis.error_chain == (
        "failed to attach to the container",
        "failed to open stdout fifo",
        f"error creating fifo {URI}",
        "no such file or directory",
    )


def test_evidence_is_the_proof(diagnosis: Diagnosis) -> None:
    """The branch, the stored stdout, the failed mkfifo and the fatal line."""
    assert [item.where for item in diagnosis.evidence] == [
        "run/stderr:3",
        "attach/stderr:4",
        "attach/stderr:13",
        "attach/stderr:16",
    ]


def test_data_store_hash(diagnosis: Diagnosis) -> None:
    """The log URI's data store is sha256 of nerdlab's containerd address."""
    expected = hashlib.sha256(ADDRESS.encode()).hexdigest()[:8]
    assert expected == "5ac656fe"
    check = diagnosis.data_store_hash
    assert (check.value, check.expected, check.address, check.address_source) == (
        expected,
        expected,
        ADDRESS,
        "run",
    )
    assert check.matches is True


def test_terminal_block(terminal: str) -> None:
    """The printed block is plain, short and has no empty or None parts."""
    assert "None" not in terminal
    assert "\x1b[" not in terminal
    lines = terminal.splitlines()
    assert lines[0] == (
        "detached-attach  REPRODUCED  attach failed: stdout of the task is log URI"
    )
    assert lines[1] == (
        "  binary:///work/main/workspace/nerdctl/_output/nerdctl"
        "?_NERDCTL_INTERNAL_LOGGING=/var/lib/nerdlab/nerdctl/5ac656fe,"
    )
    text = " ".join(line.strip() for line in lines)
    assert (
        "probes: NewTask took the detached log-URI branch → Attach → loadTask → "
        "attachExistingIO → NewAttach → openFifos(stdout=binary://…) → OpenFifo → "
        "openFifo → mkfifo failed"
    ) in text
    assert (
        "error chain: failed to attach to the container → failed to open stdout "
        "fifo → error creating fifo binary://… → no such file or directory"
    ) in text
    assert f"data store 5ac656fe = sha256[:8] of the run's address {ADDRESS}" in text
    assert "stdio:" not in text and "evidence:" not in text
    assert len(lines) <= 14


def test_a_scenario_stopped_before_attach_names_the_step() -> None:
    """A failed `run` step is the explanation, and attach counts as not run."""
    run = diagnose_run(REAL.parent / "real-v2.0.0-run-fails-no-registry")
    (scenario,) = run.scenarios
    diagnosis = scenario.diagnosis
    assert diagnosis.attach == "not-run"
    assert diagnosis.outcome == "INCONCLUSIVE"
    assert diagnosis.explanation.startswith(
        "the scenario stopped before attach: step 'run' failed"
    )
    assert diagnosis.error_chain[0].startswith("failed to resolve reference")
    assert diagnosis.error_chain[-1] == "no such host"
