"""Comparing two scenarios of recorded runs: sides, facts, and probes that differ."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from nerdlab.compare import (
    Comparison,
    Side,
    compare,
    latest_two,
    normalise,
    parse_side,
    resolve_sides,
)
from nerdlab.errors import ConfigError
from nerdlab.report import comparison_dict, render_comparison

RUNS = Path(__file__).parents[1] / "data" / "runs"
REAL = RUNS / "real-v2.0.0-beta.2-detached-attach"
NO_REGISTRY = RUNS / "real-v2.0.0-run-fails-no-registry"
SAMPLE = RUNS / "2026-12-03T1800-sample"
REAL_ID = "20261203-184649"
CONTAINER = "c70df89478bf5f6ee9cb9d1c480f479514992e94ad9d313ffce3608f6cfc79f8"
URI = (
    "binary:///work/main/workspace/nerdctl/_output/nerdctl?_NERDCTL_INTERNAL_LOGGING="
    "%2Fvar%2Flib%2Fnerdlab%2Fnerdctl%2F5ac656fe"
)
# probes that print an error in the bug run; a working attach prints <nil> instead
_FAILING_PROBES = ("fifo.openFifo.stat", "cio.openFifos.exit", "nerdctl.Attach.task")


def _copy(tmp_path: Path, run_id: str, source: Path = REAL) -> Path:
    """Copy a run directory under ``tmp_path/runs`` with a new run id."""
    run_dir = tmp_path / "runs" / run_id
    shutil.copytree(source, run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    meta["id"] = run_id
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


def _edit(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text()))


def _rerun(run_dir: Path, *, container: str, t_shift: int, pid: int) -> None:
    """Make a copy look like another run of the same build: new container id,
    later timestamps, other pids, the run id in the paths the probes print."""

    def change(text: str) -> str:
        text = text.replace(CONTAINER, container).replace(REAL_ID, run_dir.name)
        text = re.sub(r"\bt=(\d+)", lambda m: f"t={int(m[1]) + t_shift}", text)
        text = re.sub(r"\bpid=\d+", f"pid={pid}", text)
        return text.replace("0xadef80", "0xc000123456")

    for path in (run_dir / "detached-attach" / "steps").glob("*.std*"):
        _edit(path, change)


def _as_fifo_run(run_dir: Path, fifo_number: str) -> None:
    """Turn a copy of the bug run into a working one: NewTask takes the
    container-IO branch, the task's stdio are FIFOs and attach streams."""

    steps = run_dir / "detached-attach" / "steps"
    fifo = f"/run/containerd/fifo/{fifo_number}/{CONTAINER}"

    def change(text: str) -> str:
        kept = [
            line
            for line in text.splitlines()
            if "level=fatal" not in line
            and 'id="cio.LogURI.entry"' not in line
            and not any(f'id="{probe}"' in line for probe in _FAILING_PROBES)
        ]
        text = "\n".join(kept) + "\n"
        text = text.replace("branch.log-uri", "branch.container-io")
        text = text.replace('branch="log-uri"', 'branch="container-io"')
        text = text.replace(
            f'stdin="" stdout="{URI}" stderr="{URI}"',
            " ".join(f'{s}="{fifo}-{s}"' for s in ("stdin", "stdout", "stderr")),
        )
        text = text.replace(f'fn="{URI}"', f'fn="{fifo}-stdout"')
        text = text.replace(
            'mkfifo_err="no such file or directory"', 'mkfifo_err="<nil>"'
        )
        return text.replace(URI, "")

    for path in steps.glob("*.stderr"):
        _edit(path, change)
    # a fresh host: the clean step found no container to remove
    (steps / "01-clean.stderr").write_text("")
    (steps / "04-attach.stdout").write_text("Hello, world\n" * 3)
    meta = json.loads((steps / "04-attach.json").read_text())
    meta.update(rc=None, ended_early=True, duration_s=3.0)
    (steps / "04-attach.json").write_text(json.dumps(meta))


def _render(comparison: Comparison, width: int = 88) -> str:
    out = io.StringIO()
    render_comparison(comparison, Console(file=out, width=width, color_system=None))
    return out.getvalue()


@pytest.fixture
def bug_and_fifo(tmp_path: Path) -> Comparison:
    """The real bug run against a copy of it that looks like a working FIFO run."""
    _copy(tmp_path, REAL_ID)
    _as_fifo_run(_copy(tmp_path, "20261204-090000"), "4021337")
    return compare(*latest_two(tmp_path / "runs"))


# --- sides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "run_id", "run_dir", "scenario"),
    [
        pytest.param(REAL.name, REAL_ID, REAL, "detached-attach", id="run-id"),
        pytest.param(str(REAL), REAL_ID, REAL, "detached-attach", id="run-path"),
        pytest.param(
            f"{SAMPLE.name}:garbled-attach",
            SAMPLE.name,
            SAMPLE,
            "garbled-attach",
            id="run-id-and-scenario",
        ),
        pytest.param(
            f"{SAMPLE}:fixed-detached-attach",
            SAMPLE.name,
            SAMPLE,
            "fixed-detached-attach",
            id="run-path-and-scenario",
        ),
        pytest.param(
            SAMPLE.name, SAMPLE.name, SAMPLE, "detached-attach", id="first-scenario"
        ),
    ],
)
def test_parse_side(text: str, run_id: str, run_dir: Path, scenario: str) -> None:
    """A side names a run by id or path, and a scenario or the run's first."""
    side = parse_side(text, RUNS)
    assert (side.run_id, side.run_dir, side.scenario) == (run_id, run_dir, scenario)
    assert side.label == f"{run_id}:{scenario}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            f"{SAMPLE.name}:nope",
            "run 2026-12-03T1800-sample has no scenario 'nope'; it has: "
            "detached-attach, fixed-detached-attach, garbled-attach",
            id="unknown-scenario",
        ),
        pytest.param(
            "20990101-000000",
            "no run '20990101-000000': neither ",
            id="missing-run",
        ),
        pytest.param(
            "20990101-000000:detached-attach",
            "no run '20990101-000000': neither ",
            id="missing-run-with-scenario",
        ),
        pytest.param("  ", "a side to compare is empty", id="empty"),
        pytest.param(
            str(RUNS),
            f"{RUNS} is not a run directory: it has no run.json",
            id="no-json",
        ),
    ],
)
def test_parse_side_errors(text: str, message: str) -> None:
    """A side that names nothing fails with one line saying what is missing."""
    with pytest.raises(ConfigError) as caught:
        parse_side(text, RUNS)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_missing_run_lists_the_runs_there() -> None:
    """A missing run's error names the runs that do exist."""
    with pytest.raises(ConfigError, match="runs under .*: 2026-12-03T1800-sample, "):
        parse_side("20990101-000000", RUNS)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        pytest.param(0, "found none", id="no-runs"),
        pytest.param(1, "found only 20261201-000000", id="one-run"),
        pytest.param(3, ("20261202-000000", "20261203-000000"), id="three-runs"),
    ],
)
def test_latest_two(
    tmp_path: Path, count: int, expected: str | tuple[str, str]
) -> None:
    """The two newest runs, older first; fewer than two is a clear error."""
    (tmp_path / "runs").mkdir()
    for day in range(1, count + 1):
        _copy(tmp_path, f"202612{day:02d}-000000")
    (tmp_path / "runs" / "20261231-000000").mkdir()  # no run.json: not a run
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=f"needs two runs .*; {expected}"):
            latest_two(tmp_path / "runs")
        return
    older, newer = latest_two(tmp_path / "runs")
    assert (older.run_id, newer.run_id) == expected
    assert older.scenario == newer.scenario == "detached-attach"


@pytest.mark.parametrize(
    ("a", "b", "labels"),
    [
        pytest.param(
            REAL.name,
            f"{SAMPLE.name}:fixed-detached-attach",
            (f"{REAL_ID}:detached-attach", f"{SAMPLE.name}:fixed-detached-attach"),
            id="both-given",
        ),
        pytest.param(None, REAL.name, None, id="one-given"),
    ],
)
def test_resolve_sides(
    a: str | None, b: str | None, labels: tuple[str, str] | None
) -> None:
    """Both sides are parsed as given; one side alone is an error."""
    if labels is None:
        with pytest.raises(ConfigError, match="give both sides"):
            resolve_sides(a, b, RUNS)
        return
    one, other = resolve_sides(a, b, RUNS)
    assert (one.label, other.label) == labels


# --- noise ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        pytest.param(CONTAINER, "", "<id>", id="container-id"),
        pytest.param("5e1c0ffee5e1", "container_id", "<id>", id="short-id-by-key"),
        pytest.param(
            f"/run/containerd/fifo/123456/{CONTAINER}-stdout",
            "fn",
            "/run/containerd/fifo/<n>/<id>-stdout",
            id="fifo-dir",
        ),
        pytest.param(
            f"/work/main/runs/{REAL_ID}/detached-attach",
            "cwd",
            "/work/main/runs/<run>/detached-attach",
            id="run-path",
        ),
        pytest.param(
            'time="2026-12-03T18:47:10Z" t=17963 pid=42',
            "",
            'time="<time>" t=<t> pid=<pid>',
            id="times-and-pids",
        ),
        pytest.param("&{{...} 0xadef80}", "fifos", "&{{...} 0x<ptr>}", id="pointer"),
        pytest.param(URI, "stdout", URI, id="log-uri-kept"),
    ],
)
def test_normalise(value: str, key: str, expected: str) -> None:
    """Run-specific noise becomes a placeholder; what matters is kept."""
    assert normalise(value, run_ids=(REAL_ID,), key=key) == expected


# --- comparing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fact", "bug", "fifo"),
    [
        pytest.param("outcome", "REPRODUCED", "NOT REPRODUCED", id="outcome"),
        pytest.param("attach", "failed", "succeeded", id="attach"),
        pytest.param("newtask_branch", "log-uri", "container-io", id="branch"),
        pytest.param("root_cause", "log-uri-treated-as-fifo", "none", id="root-cause"),
    ],
)
def test_bug_against_fifo_run_facts(
    bug_and_fifo: Comparison, fact: str, bug: str, fifo: str
) -> None:
    """The bug run and a working FIFO run differ in each headline fact."""
    assert getattr(bug_and_fifo.a, fact) == bug
    assert getattr(bug_and_fifo.b, fact) == fifo
    assert fact in bug_and_fifo.facts_that_differ


@pytest.mark.parametrize(
    ("stream", "bug", "fifo"),
    [
        pytest.param("stdin", "empty", "fifo", id="stdin"),
        pytest.param("stdout", "log-uri(binary)", "fifo", id="stdout"),
        pytest.param("stderr", "log-uri(binary)", "fifo", id="stderr"),
    ],
)
def test_bug_against_fifo_run_stdio(
    bug_and_fifo: Comparison, stream: str, bug: str, fifo: str
) -> None:
    """Each stream's kind is the log URI on one side and a FIFO on the other."""
    assert bug_and_fifo.a.stream(stream).kind_text == bug
    assert bug_and_fifo.b.stream(stream).kind_text == fifo
    path = bug_and_fifo.b.stream(stream).path
    assert path == f"/run/containerd/fifo/4021337/{CONTAINER}-{stream}"


def test_bug_against_fifo_run_probes(bug_and_fifo: Comparison) -> None:
    """The probes name the branch taken and the stdio each side stored."""
    assert "nerdctl.NewTask.branch.log-uri" in bug_and_fifo.only_a
    assert "cio.LogURI.entry" in bug_and_fifo.only_a
    assert bug_and_fifo.only_b == ("nerdctl.NewTask.branch.container-io",)
    diffs = {diff.id: diff for diff in bug_and_fifo.differing}
    stored = {item.key: item for item in diffs["containerd.loadTask.get"].fields}
    assert stored["stdout"].b == '"" | /run/containerd/fifo/<n>/<id>-stdout'
    assert URI in (stored["stdout"].a or "")
    mkfifo = {item.key: item for item in diffs["fifo.openFifo.mkfifo"].fields}
    assert (mkfifo["mkfifo_err"].a, mkfifo["mkfifo_err"].b) == (
        "no such file or directory",
        "<nil>",
    )


@pytest.mark.parametrize(
    "make_b",
    [
        pytest.param(lambda tmp: _copy(tmp, "20261204-090000"), id="same-files"),
        pytest.param(
            lambda tmp: _rerun(
                _copy(tmp, "20261204-090000"),
                container="ab" * 32,
                t_shift=86_400_000_000_000,
                pid=31337,
            ),
            id="new-ids-times-pids",
        ),
    ],
)
def test_identical_runs_show_no_differing_probes(
    tmp_path: Path, make_b: Callable[[Path], object]
) -> None:
    """Two runs of the same build differ only in noise, which is normalised away."""
    _copy(tmp_path, REAL_ID)
    make_b(tmp_path)
    comparison = compare(*latest_two(tmp_path / "runs"))
    assert not comparison.probes_differ
    assert comparison.facts_that_differ == ()
    assert "probes that differ: none" in _render(comparison)


def test_fifo_runs_differ_only_in_noise(tmp_path: Path) -> None:
    """Two FIFO runs with different FIFO directories show no differing probes."""
    _as_fifo_run(_copy(tmp_path, "20261204-090000"), "111")
    _as_fifo_run(_copy(tmp_path, "20261205-090000"), "999999")
    comparison = compare(*latest_two(tmp_path / "runs"))
    assert not comparison.probes_differ


def test_scenarios_of_one_run() -> None:
    """Two scenarios of the hand-written sample compare like two runs."""
    comparison = compare(
        parse_side(f"{SAMPLE.name}:detached-attach", RUNS),
        parse_side(f"{SAMPLE.name}:fixed-detached-attach", RUNS),
    )
    assert (comparison.a.outcome, comparison.b.outcome) == ("REPRODUCED", "FIXED")
    assert comparison.a.side == Side(SAMPLE.name, SAMPLE, "detached-attach")


def test_run_that_stopped_before_attach() -> None:
    """A run that never attached compares with an empty stdio and its failing step."""
    comparison = compare(
        parse_side(str(NO_REGISTRY), RUNS), parse_side(REAL.name, RUNS)
    )
    assert comparison.a.attach == "not-run"
    assert comparison.a.attach_duration_s is None
    assert comparison.a.error_chain
    assert "attach" in comparison.facts_that_differ


# --- output --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "a", "b"),
    [
        pytest.param("outcome", "REPRODUCED", "NOT REPRODUCED", id="outcome"),
        pytest.param("NewTask branch", "log-uri", "container-io", id="branch"),
        pytest.param("stdout", "log-uri(binary)", "fifo", id="stdout"),
        pytest.param("root cause", "log-uri-treated-as-fifo", "none", id="root-cause"),
        pytest.param("error chain", "1. failed to attach to the", "—", id="chain"),
    ],
)
def test_rendered_rows(bug_and_fifo: Comparison, row: str, a: str, b: str) -> None:
    """Each fact is one row, marked as differing, with both sides' values."""
    line = next(
        line for line in _render(bug_and_fifo).splitlines() if line.startswith(row)
    )
    assert re.search(rf"^{row}\s+≠\s+{re.escape(a)}\s+{re.escape(b)}\s*$", line)


def test_rendered_output_fits_88_columns(bug_and_fifo: Comparison) -> None:
    """The comparison is plain text within 88 columns, shortened where it is long."""
    text = _render(bug_and_fifo)
    assert "\x1b[" not in text
    assert all(
        len(line.rstrip()) <= 88 or " " not in line.strip()
        for line in text.splitlines()
    )
    assert "binary://…/nerdctl?…/5ac656fe" in text
    assert "…/fifo/<n>/<id>-stdout" in text
    assert "only in B: nerdctl.NewTask.branch.container-io" in text
    assert text.index("probes that differ") > text.index("error chain")


def test_rendered_output_has_colour_on_a_tty(bug_and_fifo: Comparison) -> None:
    """On a terminal the outcomes are styled."""
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system="standard")
    render_comparison(bug_and_fifo, console)
    assert "\x1b[" in out.getvalue()


def test_comparison_json_shape(bug_and_fifo: Comparison) -> None:
    """The JSON object holds both sides, the facts and the probes that differ."""
    data = json.loads(json.dumps(comparison_dict(bug_and_fifo)))
    assert set(data) == {"a", "b", "facts_that_differ", "probes"}
    assert set(data["a"]) == {
        "label",
        "run",
        "run_dir",
        "scenario",
        "outcome",
        "attach",
        "root_cause",
        "newtask_branch",
        "explanation",
        "stdio",
        "error_chain",
        "error_chain_normalised",
        "attach_duration_s",
    }
    assert [use["stream"] for use in data["b"]["stdio"]] == [
        "stdin",
        "stdout",
        "stderr",
    ]
    assert data["b"]["stdio"][1]["kind"] == "fifo"
    assert data["b"]["attach_duration_s"] == 3.0
    assert set(data["probes"]) == {"only_a", "only_b", "differing"}
    differing = data["probes"]["differing"][0]
    assert set(differing) == {"id", "fields", "a", "b"}
    assert set(differing["fields"][0]) == {"key", "a", "b"}
    assert isinstance(differing["a"][0], dict)
