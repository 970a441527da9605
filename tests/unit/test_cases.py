"""Every captured transcript reads as its case notes (CASES.md, *.expected.md) say."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from nerdlab.diagnose import Diagnosis, Expectation, diagnose_lines

CASES = Path(__file__).parents[1] / "data" / "cases"
SEED_URI = (
    "binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING="
    "%2Fvar%2Flib%2Fnerdctl%2F1935db59"
)
LOCAL_URI = (
    "binary:///Users/user/workspace/nerdctl/_output/nerdctl?_NERDCTL_INTERNAL_LOGGING="
    "%2Fvar%2Flib%2Fnerdctl%2F1935db59"
)
KATA_URI = (
    "binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING="
    "%!F(MISSING)var%!F(MISSING)lib%!F(MISSING)nerdctl%!F(MISSING)1935db59"
)
DOCKER_FIFO = (
    "/var/run/docker/containerd/"
    "d8c1fd34d485d0ccdb61c609705d1e43ca97bd7ab70f64b2cd2029c2a3b89499/init-stdout"
)
STDIN_FIFO = "/tmp/containerd/420044194/banana-stdin"
LOG_CONFIG = (
    "/var/lib/nerdctl/1935db59/containers/default/"
    "ccc97467def7dd95330c6e872917e130180a1de2e4d6c34bdebeb16af434a5a6/log-config.json"
)
FIXED = Expectation(if_attach_streams="FIXED")


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    attach: str
    outcome: str
    root_cause: str
    chain: tuple[str, ...]
    # (stream, kind, scheme) of the task's stdio; "*" as stream matches any stream
    stdio: tuple[tuple[str, str, str | None], ...] = ()
    expect: Expectation | None = None


CASE_TABLE = (
    Case(
        "seed-01-detached-attach.txt",
        attach="failed",
        outcome="REPRODUCED",
        root_cause="log-uri-treated-as-fifo",
        chain=(
            "failed to attach to the container",
            "failed to open stdout fifo",
            f"error creating fifo {SEED_URI}",
            "no such file or directory",
        ),
        stdio=(("stdout", "log-uri", "binary"),),
    ),
    Case(
        "seed-02-instrumented-attach.txt",
        attach="failed",
        outcome="REPRODUCED",
        root_cause="log-uri-treated-as-fifo",
        chain=(
            "failed to attach to the container",
            "failed to open stdout fifo",
            f"error creating fifo {LOCAL_URI}",
            "no such file or directory",
        ),
        stdio=(
            ("stdout", "log-uri", "binary"),
            ("stderr", "log-uri", "binary"),
            ("stdin", "empty", None),
        ),
    ),
    Case(
        "seed-03-interactive-fifos.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="none",
        chain=(),
        stdio=(("stdin", "fifo", None), ("stdout", "fifo", None)),
    ),
    Case(
        "seed-04-fixed-detached-attach.txt",
        attach="succeeded",
        outcome="FIXED",
        root_cause="none",
        chain=(),
        stdio=(
            ("stdin", "fifo", None),
            ("stdout", "fifo", None),
            ("stderr", "fifo", None),
        ),
        expect=FIXED,
    ),
    Case(
        "seed-05-ps-with-probes.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="none",
        chain=(),
    ),
    Case(
        "seed-06-json-file-log.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="none",
        chain=(),
    ),
    Case(
        "seed-07-ctr-log-uri-attach.txt",
        attach="failed",
        outcome="REPRODUCED",
        root_cause="log-uri-treated-as-fifo",
        chain=(
            "failed to open stdout fifo",
            "error creating fifo binary:///opt/logger/logger.py",
            "no such file or directory",
        ),
        stdio=(("stdout", "log-uri", "binary"),),
    ),
    Case(
        "public/02-ctr-task-attach-file-log-uri.txt",
        attach="failed",
        outcome="REPRODUCED",
        root_cause="log-uri-treated-as-fifo",
        chain=(
            "failed to open stdout fifo",
            "error creating fifo file:///home/123.txt",
            "no such file or directory",
        ),
        stdio=(("stdout", "log-uri", "file"),),
    ),
    Case(
        "public/04-kata-shim-binary-log-uri-stat.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="shim-unsupported-log-uri-scheme",
        chain=(f"stat {KATA_URI}", "no such file or directory", "not found"),
        stdio=(("*", "log-uri", "binary"),),
    ),
    Case(
        "public/05-nerdctl-restart-k8s-container-empty-log-uri.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="missing-log-uri",
        chain=("failed to start binary process with cmdArgs []", "exec: no command"),
    ),
    Case(
        "public/07-nerdctl-logs-foreground-container-no-log-config.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="no-log-driver-for-foreground-task",
        chain=(
            "failed to load logging config",
            f'failed to read log config file "{LOG_CONFIG}"',
            f"open {LOG_CONFIG}",
            "no such file or directory",
        ),
    ),
    Case(
        "public/10-nerdctl-exec-tty-not-a-console-panic.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="missing-tty",
        chain=("provided file is not a console",),
    ),
    Case(
        "public/12-dockerd-restore-init-stdout-fifo-missing.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="fifo-dir-missing-after-restart",
        chain=(
            "Failed to restore container "
            "d8c1fd34d485d0ccdb61c609705d1e43ca97bd7ab70f64b2cd2029c2a3b89499 "
            "with containerd",
            "error getting containerd task for container",
            "failed to open stdout fifo",
            f"error creating fifo {DOCKER_FIFO}",
            "no such file or directory",
        ),
        stdio=(("stdout", "fifo", None),),
    ),
    Case(
        "public/13-ctr-exec-stdin-fifo-container-in-container.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="client-daemon-filesystem-mismatch",
        chain=(
            f"failed to open stdin fifo {STDIN_FIFO}",
            f"stat {STDIN_FIFO}",
            "no such file or directory",
            "unknown",
        ),
        stdio=(("stdin", "fifo", None),),
    ),
    Case(
        "public/17-lima-read-only-home-mount.txt",
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="vm-mount-read-only",
        chain=(
            'Could not write file "/usr/src/app/yarn-error.log"',
            "EROFS: read-only file system, open '/usr/src/app/yarn-error.log'",
        ),
    ),
)


def _read(case: Case) -> Diagnosis:
    with (CASES / case.file).open(encoding="utf-8") as lines:
        return diagnose_lines(lines, expect=case.expect)


def test_every_transcript_has_a_row() -> None:
    """No captured transcript is left without expectations."""
    files = {str(path.relative_to(CASES)) for path in CASES.rglob("*.txt")}
    assert files == {case.file for case in CASE_TABLE}


@pytest.mark.parametrize("case", CASE_TABLE, ids=lambda case: case.file)
def test_attach_and_outcome(case: Case) -> None:
    """Attach status and the scenario outcome are those the case notes give."""
    diagnosis = _read(case)
    assert (diagnosis.attach, diagnosis.outcome) == (case.attach, case.outcome)


@pytest.mark.parametrize("case", CASE_TABLE, ids=lambda case: case.file)
def test_root_cause(case: Case) -> None:
    """The root cause category is the one the case notes name."""
    assert _read(case).root_cause == case.root_cause


@pytest.mark.parametrize("case", CASE_TABLE, ids=lambda case: case.file)
def test_error_chain(case: Case) -> None:
    """The error chain has exactly the listed layers, outermost first."""
    assert _read(case).error_chain == case.chain


@pytest.mark.parametrize("case", CASE_TABLE, ids=lambda case: case.file)
def test_stdio(case: Case) -> None:
    """Each listed stream was created with the listed kind of I/O."""
    seen = {(use.stream, use.kind, use.scheme) for use in _read(case).stdio}
    for stream, kind, scheme in case.stdio:
        if stream == "*":
            assert any(found[1:] == (kind, scheme) for found in seen)
        else:
            assert (stream, kind, scheme) in seen


@pytest.mark.parametrize(
    ("file", "store"),
    [
        ("seed-01-detached-attach.txt", "1935db59"),
        ("seed-02-instrumented-attach.txt", "1935db59"),
        ("seed-06-json-file-log.txt", "1935db59"),
        ("public/04-kata-shim-binary-log-uri-stat.txt", "1935db59"),
    ],
    ids=["seed-01", "seed-02", "seed-06", "public-04-mangled"],
)
def test_data_store_hash_matches_default_address(file: str, store: str) -> None:
    """The data store in the transcript is sha256 of the default socket address."""
    with (CASES / file).open(encoding="utf-8") as lines:
        check = diagnose_lines(lines).data_store_hash
    assert (check.value, check.matches, check.address_source) == (
        store,
        True,
        "default",
    )


def test_seed_02_probes_show_the_attach_path() -> None:
    """The hand-written probes give loadTask, openFifo with the URI, openFifos."""
    diagnosis = _read(CASE_TABLE[1])
    assert diagnosis.code_path == (
        "loadTask",
        "OpenFifo",
        "openFifo(fn=binary://…)",
        "openFifos(stdout=binary://…)",
        "loadTask",
    )


def test_seed_03_fifos_exist_as_pipes() -> None:
    """The listing after the interactive run shows the FIFOs as pipes (``p``)."""
    assert all(use.is_fifo_on_disk for use in _read(CASE_TABLE[2]).stdio)


def test_seed_04_names_the_new_task_branch() -> None:
    """The fixed build's trace shows which NewTask branch ran (counter 4)."""
    assert _read(CASE_TABLE[3]).newtask_branch == "ad-hoc:4"


def test_public_04_notes_the_fmt_artefact() -> None:
    """The mangled URI is kept as pasted and the artefact is noted."""
    diagnosis = _read(CASE_TABLE[8])
    assert any("%!F(MISSING)" in note for note in diagnosis.chain_notes)


def test_public_05_reads_the_address_from_the_config_file() -> None:
    """nerdctl.toml printed in the transcript supplies the containerd address."""
    check = _read(CASE_TABLE[9]).data_store_hash
    assert (check.address, check.address_source, check.expected) == (
        "unix:///run/containerd/containerd.sock",
        "transcript",
        "1935db59",
    )
