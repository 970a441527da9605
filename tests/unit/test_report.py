"""Reports: terminal blocks, JSON keys, Markdown and a self-contained HTML page."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from nerdlab import report
from nerdlab.diagnose import Diagnosis, diagnose_lines, diagnose_run
from nerdlab.report import (
    as_dict,
    event_dict,
    render_html,
    render_markdown,
    render_terminal,
    to_json,
)
from nerdlab.trace import parse_lines

DATA = Path(__file__).parents[1] / "data"
SAMPLE = DATA / "runs" / "2026-12-03T1800-sample"


def _case(name: str) -> Diagnosis:
    with (DATA / "cases" / name).open(encoding="utf-8") as lines:
        return diagnose_lines(lines)


def _terminal(result: report.Result, *, tty: bool = False) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        width=100,
        force_terminal=tty,
        color_system="standard" if tty else None,
    )
    render_terminal(result, console, source="seed-01")
    return out.getvalue()


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(report.__all__) == sorted(
        [
            "Result",
            "as_dict",
            "diagnosis_dict",
            "event_dict",
            "render_html",
            "render_markdown",
            "render_terminal",
            "to_json",
            "write_run",
        ]
    )


REQUIRED_KEYS = {
    "attach",
    "stdio",
    "error_chain",
    "root_cause",
    "data_store_hash",
    "events",
    "outcome",
    "code_path",
    "newtask_branch",
    "evidence",
}


@pytest.mark.parametrize(
    "name",
    [
        "seed-01-detached-attach.txt",
        "seed-02-instrumented-attach.txt",
        "public/10-nerdctl-exec-tty-not-a-console-panic.txt",
    ],
    ids=["seed-01", "seed-02", "panic"],
)
def test_json_has_the_documented_keys(name: str) -> None:
    """The JSON form carries every documented key and round-trips through json."""
    data = json.loads(to_json(_case(name)))
    assert set(data) >= REQUIRED_KEYS
    assert set(data["data_store_hash"]) >= {"value", "address", "address_source"}
    for use in data["stdio"]:
        assert set(use) >= {"stream", "path", "kind", "scheme"}


def test_json_events_name_their_type() -> None:
    """Every event in the JSON says which kind it is and where it was."""
    events = as_dict(_case("seed-02-instrumented-attach.txt"))["events"]
    assert events[0] == {
        "type": "PromptCommand",
        "line": 1,
        "text": events[0]["text"],
        "step": None,
        "stream": None,
        "prompt": "[user@lima-default nerdctl]$",
        "command": events[0]["command"],
    }
    assert {event["type"] for event in events} == {
        "PromptCommand",
        "Output",
        "AdHocProbe",
        "LogrusLine",
    }


def test_unparsed_probe_event_carries_its_caret() -> None:
    """A broken probe line's JSON shows the error and caret."""
    (event,) = parse_lines(
        ['NERDLAB-PROBE t=1 pid=x id="a" mod="b" func="c" place="d"']
    )
    data = event_dict(event)
    assert data["type"] == "UnparsedProbe"
    assert data["error"]["caret"].endswith("^")


def test_terminal_is_plain_without_a_tty() -> None:
    """Piped output has no escape sequences."""
    assert "\x1b[" not in _terminal(_case("seed-01-detached-attach.txt"))


def test_terminal_has_colour_on_a_tty() -> None:
    """On a terminal the outcome is styled."""
    assert "\x1b[" in _terminal(_case("seed-01-detached-attach.txt"), tty=True)


def test_terminal_block_for_a_run() -> None:
    """A run prints one block per scenario, shaped like the documented summary."""
    text = _terminal(diagnose_run(SAMPLE))
    blocks = text.strip().split("\n\n")
    assert len(blocks) == 3
    first = blocks[0].splitlines()
    assert first[0].startswith(
        "detached-attach  REPRODUCED  attach failed: stdout of the task is log URI"
    )
    assert "/var/lib/nerdctl/1935db59" in blocks[0]
    assert "mkfifo on that string (ENOENT)" in blocks[0]
    assert any(
        line.startswith("  probes: NewTask took the detached log-URI branch → Attach")
        for line in first
    )
    assert any(line.startswith("  error chain: failed to attach") for line in first)
    assert any(line.startswith("  data store 1935db59 = sha256[:8]") for line in first)
    assert "stdio:" not in blocks[0] and "evidence:" not in blocks[0]
    assert any(
        line.startswith(f"  run: {SAMPLE / 'detached-attach'}/") for line in first
    )
    assert blocks[1].startswith("fixed-detached-attach  FIXED  ")
    assert blocks[2].startswith("garbled-attach  INCONCLUSIVE  ")


def test_terminal_lines_fit_unless_a_word_is_longer() -> None:
    """Lines wrap at 80 columns; only an unbreakable URI or path may run over."""
    for line in _terminal(_case("seed-01-detached-attach.txt")).splitlines():
        assert len(line) <= 80 or " " not in line.strip()


def test_markdown_lists_the_chain() -> None:
    """The Markdown report numbers the error layers outermost first."""
    text = render_markdown(_case("seed-07-ctr-log-uri-attach.txt"), source="seed-07")
    assert text.startswith("# seed-07: REPRODUCED\n")
    assert "1. `failed to open stdout fifo`" in text
    assert "3. `no such file or directory`" in text
    assert "| stdout | log-uri | binary | `binary:///opt/logger/logger.py` |" in text


def test_markdown_for_a_run_has_a_summary_table() -> None:
    """The run report starts with one row per scenario."""
    text = render_markdown(diagnose_run(SAMPLE))
    assert "| fixed-detached-attach | FIXED | succeeded | `none` |" in text
    assert "Probe lines that did not parse:" in text


def test_html_is_self_contained_and_escaped() -> None:
    """The HTML page has no scripts or outside links and escapes its content."""
    page = render_html(diagnose_run(SAMPLE))
    assert page.startswith("<!doctype html>")
    assert "<script" not in page
    assert "http://" not in page and "https://" not in page
    assert "<h2>garbled-attach" in page
    hostile = render_html(diagnose_lines(["FATA[0000] bad <b>tag</b> & more: x"]))
    assert "bad &lt;b&gt;tag&lt;/b&gt; &amp; more" in hostile
    assert "<b>tag" not in hostile


def test_terminal_names_the_files_that_exist(tmp_path: Path) -> None:
    """The run line lists report.md and diagnosis.json only once they are written."""
    run_dir = tmp_path / "run"
    shutil.copytree(SAMPLE, run_dir)
    before = _terminal(diagnose_run(run_dir))
    assert "report.md" not in before
    after = _terminal(diagnose_run(run_dir, write=True))
    assert "(report.md, diagnosis.json, steps/)" in after.replace("\n  ", " ")


def test_terminal_shows_a_mismatching_data_store() -> None:
    """A data store that is not the address's hash says so, with the hash wanted."""
    with (DATA / "cases" / "seed-01-detached-attach.txt").open() as lines:
        diagnosis = diagnose_lines(lines, address="/run/x.sock")
    text = _terminal(diagnosis)
    assert "data store 1935db59 does NOT match d6c83356" in text
    assert "None" not in text


def test_markdown_has_the_path_per_step() -> None:
    """The Markdown report lists every step's probes, and no ``None``."""
    text = render_markdown(diagnose_run(SAMPLE))
    assert "- run: NewTask(branch=log-uri)" in text
    assert "→ Mystery" in text
    assert "None" not in text


def _results(run: report.RunDiagnosis, *, tty: bool = False, width: int = 88) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        force_terminal=tty,
        color_system="standard" if tty else None,
    )
    report.render_results_table(run, console)
    return out.getvalue()


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(
            "| detached-attach | REPRODUCED | failed | log-uri | stdin=empty "
            "stdout=log-uri(binary) stderr=log-uri(binary) "
            "| `log-uri-treated-as-fifo` | 0.4 s |",
            id="bug",
        ),
        pytest.param(
            "| fixed-detached-attach | FIXED | succeeded | container-io "
            "| stdin=fifo stdout=fifo stderr=fifo | `none` | 2.1 s |",
            id="fixed",
        ),
        pytest.param(
            "| garbled-attach | INCONCLUSIVE | failed | — | — | `unknown` | 0.4 s |",
            id="garbled",
        ),
    ],
)
def test_results_markdown_has_a_row_per_scenario(row: str) -> None:
    """The Markdown results table has one row per scenario with its facts."""
    text = report.results_table_markdown(diagnose_run(SAMPLE))
    assert text.splitlines()[0] == (
        "| scenario | outcome | attach | NewTask branch | stdio | root cause "
        "| attach time |"
    )
    assert row in text.splitlines()


@pytest.mark.parametrize(
    ("run_dir", "names"),
    [
        pytest.param(
            SAMPLE,
            ["detached-attach", "fixed-detached-attach", "garbled-attach"],
            id="sample",
        ),
        pytest.param(
            DATA / "runs" / "real-v2.0.0-beta.2-detached-attach",
            ["detached-attach"],
            id="real-bug",
        ),
        pytest.param(
            DATA / "runs" / "real-v2.0.0-run-fails-no-registry",
            ["detached-attach"],
            id="real-no-registry",
        ),
    ],
)
def test_results_table_has_each_scenario(run_dir: Path, names: list[str]) -> None:
    """The terminal results table starts a row with each scenario, within 88 columns."""
    run = diagnose_run(run_dir)
    text = _results(run)
    starts = [line.split()[0] for line in text.splitlines() if line.strip()]
    for name in names:
        assert name in starts
    for scenario in run.scenarios:
        assert scenario.diagnosis.outcome in text
        assert scenario.diagnosis.root_cause in text
    assert all(len(line.rstrip()) <= 88 for line in text.splitlines())
    assert "\x1b[" not in text


def test_results_table_lists_stdio_and_attach_time() -> None:
    """Each row shows NewTask's branch, the stdio kinds and how long attach took."""
    text = _results(diagnose_run(SAMPLE))
    assert "stdout=log-uri(binary)" in text
    assert "attach 2.1 s" in text
    assert "attach succeeded" in text


def test_results_table_has_colour_on_a_tty() -> None:
    """On a terminal the outcomes are styled."""
    assert "\x1b[" in _results(diagnose_run(SAMPLE), tty=True)


def test_write_run_writes_results_md(tmp_path: Path) -> None:
    """write_run leaves results.md with the results table beside summary.json."""
    run_dir = tmp_path / "run"
    shutil.copytree(SAMPLE, run_dir)
    run = diagnose_run(run_dir, write=True)
    text = (run_dir / "results.md").read_text(encoding="utf-8")
    assert text.startswith(f"# nerdlab run {run.id}: results\n\n| scenario |")
    assert text.endswith(report.results_table_markdown(run))
    assert (run_dir / "summary.json").is_file()
