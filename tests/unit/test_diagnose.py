"""Diagnosis rules, structured probes and run directories."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from nerdlab import diagnose
from nerdlab.diagnose import (
    Expectation,
    diagnose_lines,
    diagnose_run,
    diagnose_scenario,
)
from nerdlab.errors import ConfigError
from nerdlab.trace import render_probe

RUNS = Path(__file__).parents[1] / "data" / "runs"
SAMPLE = RUNS / "2026-12-03T1800-sample"
URI = (
    "binary:///x/_output/nerdctl?_NERDCTL_INTERNAL_LOGGING="
    "%2Fvar%2Flib%2Fnerdctl%2F1935db59"
)
FIFO = "/run/containerd/fifo/1/abc"


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(diagnose.__all__) == sorted(
        [
            "CATEGORIES",
            "Diagnosis",
            "ErrorSeen",
            "Evidence",
            "Expectation",
            "JsonFileLog",
            "Measurement",
            "RunDiagnosis",
            "ScenarioDiagnosis",
            "Step",
            "StdioUse",
            "diagnose_events",
            "diagnose_lines",
            "diagnose_run",
            "diagnose_scenario",
            "read_json_file_log",
        ]
    )


def _probe(id: str, func: str, place: str, **values: str) -> str:
    return render_probe(
        t=1,
        pid=7,
        id=id,
        mod="example.com/m",
        func=func,
        place=place,
        values=list(values.items()),
    )


RULES = [
    pytest.param(
        [
            f"FATA[0000] failed to open stdout fifo: error creating fifo {URI}: "
            "no such file or directory"
        ],
        "log-uri-treated-as-fifo",
        id="uri-as-fifo",
    ),
    pytest.param(
        [
            "FATA[0000] failed to open stdout fifo: "
            f"error creating fifo {FIFO}-stdout: no such file or directory"
        ],
        "fifo-dir-missing-after-restart",
        id="same-layers-real-path",
    ),
    pytest.param(
        [
            f"ctr: failed to open stdin fifo {FIFO}-stdin: stat {FIFO}-stdin: "
            "no such file or directory: unknown"
        ],
        "client-daemon-filesystem-mismatch",
        id="shim-cannot-see-client-fifo",
    ),
    pytest.param(
        [f"FATA[0000] stat {URI}: no such file or directory: not found"],
        "shim-unsupported-log-uri-scheme",
        id="shim-stats-uri",
    ),
    pytest.param(
        ["FATA[0000] the input device is not a TTY"], "missing-tty", id="not-a-tty"
    ),
    pytest.param(
        [
            "FATA[0000] 1 errors:",
            "failed to start binary process with cmdArgs []: exec: no command",
        ],
        "missing-log-uri",
        id="empty-log-uri",
    ),
    pytest.param(
        [
            "FATA[0000] failed to load logging config: failed to read log config file "
            '"/x/log-config.json": open /x/log-config.json: no such file or directory'
        ],
        "no-log-driver-for-foreground-task",
        id="no-log-config",
    ),
    pytest.param(
        [
            "mkdir: cannot create directory '/src/x': Read-only file system",
            "error EROFS: read-only file system, mkdir '/src/x'",
        ],
        "vm-mount-read-only",
        id="erofs",
    ),
    pytest.param(
        ["FATA[0000] something else entirely: boom"], "unknown", id="unexplained-error"
    ),
    pytest.param(["$ nerdctl ps", "CONTAINER ID"], "none", id="nothing-failed"),
    pytest.param([], "unknown", id="empty-input"),
    pytest.param(
        ["\x00\x01garbage", "%%%%", "::::", "lorem ipsum"], "unknown", id="garbage"
    ),
]


@pytest.mark.parametrize(("lines", "category"), RULES)
def test_rules(lines: list[str], category: str) -> None:
    """Each kind of evidence gives its category, and never an exception."""
    assert diagnose_lines(lines).root_cause == category


def test_probes_alone_show_the_bug() -> None:
    """Structured probes without any error text are enough to name the bug."""
    lines = [
        "$ nerdctl attach x",
        _probe(
            "nerdctl.NewTask.branch.log-uri",
            "NewTask",
            "after:cio.LogURI",
            branch="log-uri",
        ),
        _probe(
            "cio.openFifos.entry",
            "openFifos",
            "entry",
            stdin="",
            stdout=URI,
            stderr=URI,
            terminal="false",
        ),
        _probe(
            "fifo.openFifo.mkfifo",
            "openFifo",
            "after:syscall.Mkfifo",
            fn=URI,
            mkfifo_err="no such file or directory",
        ),
        _probe("some.future.probe", "Later", "entry", note="x"),
    ]
    diagnosis = diagnose_lines(lines)
    assert diagnosis.root_cause == "log-uri-treated-as-fifo"
    assert diagnosis.newtask_branch == "log-uri"
    # the path ends where it failed; the later probe stays in the per-step path
    assert diagnosis.code_path == (
        "NewTask(log-uri)",
        "openFifos(stdout=binary://…)",
        "openFifo(mkfifo failed)",
    )
    assert diagnosis.code_path_by_step[0][1][-1] == "Later"
    # the branch, the stdio openFifos was given, the failed mkfifo
    assert [e.line for e in diagnosis.evidence] == [2, 3, 4]
    assert [(use.stream, use.kind) for use in diagnosis.stdio] == [
        ("stdin", "empty"),
        ("stdout", "log-uri"),
        ("stderr", "log-uri"),
    ]


STORED = _probe(
    "containerd.loadTask.get",
    "(*container).loadTask",
    "after:TaskService().Get",
    err="<nil>",
    status="RUNNING",
    stdin="",
    stdout=URI,
    stderr=URI,
    terminal="false",
)


def test_stdio_is_what_containerd_stored() -> None:
    """One entry per stream, from loadTask; other fields named stdin are not stdio."""
    lines = [
        "$ nerdctl attach x",
        _probe("nerdctl.Attach.entry", "Attach", "entry", req="x", stdin="true"),
        STORED,
        _probe(
            "cio.NewAttach.closure",
            "NewAttach",
            "after:return func(fifos",
            fifos="&{{false  " + URI + " " + URI + "} 0xadef80}",
            stdin_stream_nil="true",
            stdout_stream_nil="false",
            stderr_stream_nil="true",
        ),
        _probe(
            "cio.openFifos.entry",
            "openFifos",
            "entry",
            stdin="",
            stdout=URI,
            stderr="",
            terminal="false",
        ),
    ]
    stdio = diagnose_lines(lines).stdio
    assert [(use.stream, use.kind, use.line) for use in stdio] == [
        ("stdin", "empty", 3),
        ("stdout", "log-uri", 3),
        ("stderr", "log-uri", 3),
    ]


def test_blanked_streams_are_not_the_tasks_stdio() -> None:
    """Without loadTask, openFifos' streams that NewAttach blanked are left out."""
    lines = [
        _probe(
            "cio.NewAttach.closure",
            "NewAttach",
            "after:return func(fifos",
            fifos="&{{false  " + URI + " " + URI + "} 0xadef80}",
            stdin_stream_nil="true",
            stdout_stream_nil="false",
            stderr_stream_nil="true",
        ),
        _probe(
            "cio.openFifos.entry",
            "openFifos",
            "entry",
            stdin="",
            stdout=URI,
            stderr="",
            terminal="false",
        ),
    ]
    stdio = diagnose_lines(lines).stdio
    assert [(use.stream, use.kind) for use in stdio] == [("stdout", "log-uri")]


def test_failed_lookup_is_no_stdio() -> None:
    """A loadTask whose Get failed prints empty strings that are not the task's."""
    lines = [
        STORED,
        _probe(
            "containerd.loadTask.get",
            "(*container).loadTask",
            "after:TaskService().Get",
            err="rpc error: code = NotFound desc = task x not found",
            status="UNKNOWN",
            stdin="",
            stdout="",
            stderr="",
            terminal="false",
        ),
    ]
    stdio = diagnose_lines(lines).stdio
    assert [(use.stream, use.kind) for use in stdio] == [
        ("stdin", "empty"),
        ("stdout", "log-uri"),
        ("stderr", "log-uri"),
    ]


def test_mkfifo_without_error_is_not_the_bug() -> None:
    """A FIFO created fine (``<nil>``) is no evidence of the bug."""
    lines = [
        _probe(
            "fifo.openFifo.mkfifo",
            "openFifo",
            "after:syscall.Mkfifo",
            fn=FIFO + "-stdout",
            mkfifo_err="<nil>",
        ),
    ]
    diagnosis = diagnose_lines(lines)
    assert diagnosis.root_cause == "none"
    assert diagnosis.code_path == ("openFifo",)


def test_unparsed_probe_is_reported_not_raised() -> None:
    """A broken probe line is listed with its error and the diagnosis goes on."""
    diagnosis = diagnose_lines(['NERDLAB-PROBE t=1 pid=2 id="x'])
    assert len(diagnosis.parse_errors) == 1
    assert diagnosis.root_cause == "unknown"


@pytest.mark.parametrize(
    ("expect", "lines", "outcome"),
    [
        (None, ["$ nerdctl attach x", "hello"], "NOT REPRODUCED"),
        (Expectation(if_attach_streams="FIXED"), ["$ nerdctl attach x", "hi"], "FIXED"),
        (None, ["$ nerdctl attach x"], "INCONCLUSIVE"),
        (None, ["$ nerdctl attach x", "FATA[0000] boom"], "INCONCLUSIVE"),
    ],
    ids=["streams", "streams-fixed", "no-output", "other-failure"],
)
def test_outcome(expect: Expectation | None, lines: list[str], outcome: str) -> None:
    """The outcome follows the expectation, and another failure is inconclusive."""
    assert diagnose_lines(lines, expect=expect).outcome == outcome


def test_address_option_changes_the_hash_check() -> None:
    """A different containerd address makes the default data store not match."""
    line = f"ctr: failed to open stdout fifo: error creating fifo {URI}: x"
    check = diagnose_lines([line], address="/run/k3s/containerd.sock").data_store_hash
    assert (check.value, check.address_source, check.matches) == (
        "1935db59",
        "option",
        False,
    )


def test_expectation_from_json() -> None:
    """scenario.json's expect object is read, with defaults for what it omits."""
    assert Expectation.from_json({"outcome_if_attach_streams": "FIXED"}) == (
        Expectation("REPRODUCED", "FIXED")
    )
    assert Expectation.from_json(None) == Expectation()


SCENARIOS = [
    pytest.param(
        "detached-attach",
        "failed",
        "REPRODUCED",
        "log-uri-treated-as-fifo",
        "log-uri",
        id="detached",
    ),
    pytest.param(
        "fixed-detached-attach",
        "succeeded",
        "FIXED",
        "none",
        "container-io",
        id="fixed",
    ),
    pytest.param(
        "garbled-attach", "failed", "INCONCLUSIVE", "unknown", None, id="garbled"
    ),
]


@pytest.mark.parametrize(("name", "attach", "outcome", "category", "branch"), SCENARIOS)
def test_run_directory(
    name: str, attach: str, outcome: str, category: str, branch: str | None
) -> None:
    """Each scenario of the sample run reads as intended."""
    run = diagnose_run(SAMPLE)
    scenario = {item.name: item for item in run.scenarios}[name]
    got = scenario.diagnosis
    assert (got.attach, got.outcome, got.root_cause, got.newtask_branch) == (
        attach,
        outcome,
        category,
        branch,
    )


def test_run_metadata_and_hash_source() -> None:
    """Run metadata is read and the address comes from the scenario's context."""
    run = diagnose_run(SAMPLE)
    assert (run.id, run.target, len(run.scenarios)) == (
        "2026-12-03T1800-sample",
        "lima:nerdlab",
        3,
    )
    check = run.scenarios[0].diagnosis.data_store_hash
    assert (check.value, check.address_source, check.matches) == (
        "1935db59",
        "run",
        True,
    )


def test_run_evidence_names_step_and_stream() -> None:
    """Evidence in a run points at the step file and line."""
    diagnosis = diagnose_scenario(SAMPLE / "detached-attach").diagnosis
    assert [item.where for item in diagnosis.evidence] == [
        "run/stderr:2",
        "attach/stderr:3",
        "attach/stderr:8",
        "attach/stderr:11",
    ]
    assert diagnosis.code_path == (
        "NewTask(log-uri)",
        "Attach",
        "loadTask",
        "openFifos(stdout=binary://…)",
        "OpenFifo",
        "openFifo(mkfifo failed)",
    )
    by_step = dict(diagnosis.code_path_by_step)
    assert by_step["attach"][-1] == "Mystery"
    assert by_step["run"] == ("NewTask(branch=log-uri)",)


def test_state_listing_marks_fifos() -> None:
    """The fifo-dir listing confirms the fixed run's stdio are pipes on disk."""
    diagnosis = diagnose_scenario(SAMPLE / "fixed-detached-attach").diagnosis
    assert [use.is_fifo_on_disk for use in diagnosis.stdio] == [True, True, True]


def test_state_file_complaints_are_not_failures() -> None:
    """``ls: cannot access`` in a state snapshot does not count as an error."""
    diagnosis = diagnose_scenario(SAMPLE / "detached-attach").diagnosis
    assert all(seen.event.stream != "file" for seen in diagnosis.errors)


def _step(directory: Path, **fields: object) -> None:
    record = {
        "name": "attach",
        "argv": ["nerdctl", "attach", "x"],
        "rc": 0,
        "started": None,
        "finished": None,
        "duration_s": 1.0,
        "timed_out": False,
        "ended_early": False,
        "stdout": "01-attach.stdout",
        "stderr": "01-attach.stderr",
    }
    record.update(fields)
    steps = directory / "steps"
    steps.mkdir(parents=True, exist_ok=True)
    (steps / "01-attach.json").write_text(json.dumps(record))


ATTACH_STEPS = [
    pytest.param({"rc": None, "ended_early": True}, "", "succeeded", id="ended-early"),
    pytest.param({"rc": 0}, "hello\n", "succeeded", id="rc0-with-output"),
    pytest.param({"rc": 0}, "", "no-output", id="rc0-silent"),
    pytest.param({"rc": 1}, "", "failed", id="rc1"),
    pytest.param({"rc": None, "timed_out": True}, "", "no-output", id="timed-out"),
]


@pytest.mark.parametrize(("fields", "stdout", "attach"), ATTACH_STEPS)
def test_attach_step(
    tmp_path: Path, fields: dict[str, object], stdout: str, attach: str
) -> None:
    """The attach step's record decides whether attach failed or streamed."""
    (tmp_path / "scenario.json").write_text('{"name": "s"}')
    _step(tmp_path, **fields)
    (tmp_path / "steps" / "01-attach.stdout").write_text(stdout)
    (tmp_path / "steps" / "01-attach.stderr").write_text("")
    assert diagnose_scenario(tmp_path).diagnosis.attach == attach


def test_write_puts_reports_in_the_run(tmp_path: Path) -> None:
    """write=True leaves diagnosis.json, report.md and summary.json behind."""
    run_dir = tmp_path / "run"
    shutil.copytree(SAMPLE, run_dir)
    diagnose_run(run_dir, write=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [item["outcome"] for item in summary["scenarios"]] == [
        "REPRODUCED",
        "FIXED",
        "INCONCLUSIVE",
    ]
    for name in ("detached-attach", "fixed-detached-attach", "garbled-attach"):
        data = json.loads((run_dir / name / "diagnosis.json").read_text())
        assert data["name"] == name
        assert (run_dir / name / "report.md").read_text().startswith(f"# {name}: ")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "run.json is missing"),
        (lambda d: (d / "run.json").write_text("{nope"), "cannot read"),
        (lambda d: (d / "run.json").write_text("[]"), "JSON object"),
        (lambda d: (d / "run.json").write_text('{"scenarios": ["gone"]}'), "gone"),
    ],
    ids=["no-run-json", "bad-json", "not-an-object", "missing-scenario"],
)
def test_bad_run_directory(
    tmp_path: Path, setup: Callable[[Path], object], message: str
) -> None:
    """A broken run directory is a ConfigError that says what is wrong."""
    setup(tmp_path)
    with pytest.raises(ConfigError, match=message):
        diagnose_run(tmp_path)
