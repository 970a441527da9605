"""Render diagnoses for a terminal, as JSON, as Markdown and as a small HTML page.

The terminal form is one short block per scenario; the details (events, steps,
evidence) go to the JSON and Markdown files in the run directory.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nerdlab.compare import STREAMS, Comparison, SideResult, normalise_chain
from nerdlab.diagnose import Diagnosis, RunDiagnosis, ScenarioDiagnosis
from nerdlab.errors import TraceParseError
from nerdlab.stdio import classify_stdio
from nerdlab.trace import Event

__all__ = [
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

Result = Diagnosis | ScenarioDiagnosis | RunDiagnosis

_OUTCOME_STYLE = {
    "REPRODUCED": "bold red",
    "FIXED": "bold green",
    "NOT REPRODUCED": "bold yellow",
    "INCONCLUSIVE": "dim",
}
_WIDTH = 80


def _plain(value: Any) -> Any:
    """Turn event fields into JSON values."""
    if isinstance(value, TraceParseError):
        return {"message": str(value), "column": value.column, "caret": value.caret()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: _plain(getattr(value, item.name))
            for item in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def event_dict(event: Event) -> dict[str, Any]:
    """One event as a JSON object, with its class name under ``type``."""
    data: dict[str, Any] = {"type": type(event).__name__}
    for item in dataclasses.fields(event):
        value = getattr(event, item.name)
        if item.name == "values":
            data["values"] = dict(value)
        elif item.name == "fields":
            data["fields"] = dict(value)
        else:
            data[item.name] = _plain(value)
    return data


def diagnosis_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    """A diagnosis as the JSON object ``nerdlab trace --json`` prints."""
    check = diagnosis.data_store_hash
    return {
        "attach": diagnosis.attach,
        "outcome": diagnosis.outcome,
        "root_cause": diagnosis.root_cause,
        "explanation": diagnosis.explanation,
        "stdio": [
            {
                "stream": use.stream,
                "path": use.path,
                "kind": use.kind,
                "scheme": use.scheme,
                "data_store": use.data_store,
                "is_fifo_on_disk": use.is_fifo_on_disk,
                "line": use.line,
                "step": use.step,
            }
            for use in diagnosis.stdio
        ],
        "error_chain": list(diagnosis.error_chain),
        "chain_notes": list(diagnosis.chain_notes),
        "evidence": [_plain(item) for item in diagnosis.evidence],
        "data_store_hash": {
            "value": check.value,
            "address": check.address,
            "address_source": check.address_source,
            "expected": check.expected,
            "matches": check.matches,
        },
        "code_path": list(diagnosis.code_path),
        "code_path_by_step": [
            {"step": step, "path": list(path)}
            for step, path in diagnosis.code_path_by_step
        ],
        "newtask_branch": diagnosis.newtask_branch,
        "errors": [
            {
                "line": seen.event.line,
                "step": seen.event.step,
                "stream": seen.event.stream,
                "layers": list(seen.chain.texts),
                "notes": list(seen.chain.notes),
            }
            for seen in diagnosis.errors
        ],
        "parse_errors": [
            {
                "line": item.line,
                "step": item.step,
                "message": str(item.error),
                "caret": item.error.caret(),
            }
            for item in diagnosis.parse_errors
        ],
        "events": [event_dict(event) for event in diagnosis.events],
    }


def _scenario_dict(scenario: ScenarioDiagnosis) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "description": scenario.description,
        "directory": str(scenario.directory),
        "expect": {
            "outcome_if_attach_fails": scenario.expect.if_attach_fails,
            "outcome_if_attach_streams": scenario.expect.if_attach_streams,
        },
        "context": dict(scenario.context),
        "steps": [_plain(step) for step in scenario.steps],
        **diagnosis_dict(scenario.diagnosis),
        "json_file_log": _plain(scenario.json_file_log),
        "measurements": [_plain(m) for m in scenario.measurements],
    }


def as_dict(result: Result) -> dict[str, Any]:
    """Any result as a JSON object."""
    if isinstance(result, Diagnosis):
        return diagnosis_dict(result)
    if isinstance(result, ScenarioDiagnosis):
        return _scenario_dict(result)
    return {
        "id": result.id,
        "directory": str(result.directory),
        "started": result.started,
        "finished": result.finished,
        "target": result.target,
        "nerdctl_ref": result.nerdctl_ref,
        "scenarios": [_scenario_dict(item) for item in result.scenarios],
    }


def to_json(result: Result) -> str:
    """Any result as indented JSON text."""
    return json.dumps(as_dict(result), indent=2, ensure_ascii=False) + "\n"


def _summary_dict(run: RunDiagnosis) -> dict[str, Any]:
    return {
        "id": run.id,
        "started": run.started,
        "finished": run.finished,
        "target": run.target,
        "nerdctl_ref": run.nerdctl_ref,
        "scenarios": [
            {
                "name": item.name,
                "outcome": item.diagnosis.outcome,
                "attach": item.diagnosis.attach,
                "root_cause": item.diagnosis.root_cause,
                "explanation": item.diagnosis.explanation,
            }
            for item in run.scenarios
        ],
    }


def write_run(run: RunDiagnosis) -> None:
    """Write diagnosis.json and report.md per scenario, and the run's summary.json
    and results.md (one row per scenario)."""
    for scenario in run.scenarios:
        (scenario.directory / "diagnosis.json").write_text(
            to_json(scenario), encoding="utf-8"
        )
        (scenario.directory / "report.md").write_text(
            render_markdown(scenario), encoding="utf-8"
        )
    (run.directory / "summary.json").write_text(
        json.dumps(_summary_dict(run), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    (run.directory / "results.md").write_text(
        f"# nerdlab run {run.id}: results\n\n{results_table_markdown(run)}",
        encoding="utf-8",
    )


def _blocks(result: Result, source: str) -> Iterable[tuple[str, Diagnosis, str | None]]:
    if isinstance(result, Diagnosis):
        yield source, result, None
    elif isinstance(result, ScenarioDiagnosis):
        yield result.name, result.diagnosis, str(result.directory)
    else:
        for item in result.scenarios:
            yield item.name, item.diagnosis, str(item.directory)


def _wrap(text: str, first: str = "  ", indent: str = "  ") -> list[str]:
    return textwrap.wrap(
        text,
        width=_WIDTH,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


# How the terminal names NewTask's branches (the probes' branch= values).
_BRANCH_NAMES = {
    "log-uri": "detached log-URI",
    "terminal-binary": "detached terminal binary://",
    "tty-foreground": "foreground TTY FIFO",
    "container-io": "container-IO FIFO",
    "attach": "attach (-a)",
}
_MKFIFO_FAILED = "mkfifo failed"
# Where the containerd address of the data store check came from.
_ADDRESS_SOURCES = {
    "run": "the run's address",
    "option": "the --address",
    "transcript": "nerdctl.toml's address",
    "default": "the default address",
}
_URI = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://\S*")


def _path_text(diagnosis: Diagnosis) -> str:
    """The code path as prose: ``NewTask took the … branch → Attach → …``."""
    parts: list[str] = []
    branch = diagnosis.newtask_branch
    for index, element in enumerate(diagnosis.code_path):
        if index == 0 and branch is not None and element == f"NewTask({branch})":
            parts.append(f"NewTask took the {_BRANCH_NAMES.get(branch, branch)} branch")
            continue
        name, _, notes = element.partition("(")
        kept = [note for note in notes.rstrip(")").split(", ") if note]
        failed = _MKFIFO_FAILED in kept
        kept = [note for note in kept if note != _MKFIFO_FAILED]
        parts.append(f"{name}({', '.join(kept)})" if kept else name)
        if failed:
            parts.append(_MKFIFO_FAILED)
    return " → ".join(parts)


def _chain_text(diagnosis: Diagnosis) -> str:
    """The error layers, outermost first; a URI the explanation spells out is
    shortened to its scheme."""

    def short(match: re.Match[str]) -> str:
        info = classify_stdio(match.group(0))
        if info.path and info.path in diagnosis.explanation:
            return f"{match['scheme']}://…"
        return match.group(0)

    return " → ".join(_URI.sub(short, layer) for layer in diagnosis.error_chain)


def _hash_line(diagnosis: Diagnosis) -> str | None:
    check = diagnosis.data_store_hash
    if check.value is None:
        return None
    source = _ADDRESS_SOURCES.get(check.address_source, check.address_source)
    if check.matches:
        return f"data store {check.value} = sha256[:8] of {source} {check.address}"
    return (
        f"data store {check.value} does NOT match {check.expected} = sha256[:8] of"
        f" {source} {check.address}"
    )


def _run_files(where: str) -> str:
    directory = Path(where)
    names = [
        name
        for name in ("report.md", "diagnosis.json", "steps/")
        if (directory / name.rstrip("/")).exists()
    ]
    return f" ({', '.join(names)})" if names else ""


def scenario_findings(result: Result, name: str) -> list[str]:
    """Lines a scenario adds beyond its diagnosis: json-file log, measurements."""
    scenarios: Iterable[ScenarioDiagnosis] = ()
    if isinstance(result, ScenarioDiagnosis):
        scenarios = (result,)
    elif isinstance(result, RunDiagnosis):
        scenarios = result.scenarios
    lines: list[str] = []
    for scenario in scenarios:
        if scenario.name != name:
            continue
        if scenario.json_file_log is not None:
            lines.append(scenario.json_file_log.summary())
        lines += [m.summary() for m in scenario.measurements]
    return lines


def _terminal_lines(
    name: str, diagnosis: Diagnosis, where: str | None, findings: Sequence[str] = ()
) -> list[str]:
    lines = _wrap(diagnosis.explanation, f"{name}  {diagnosis.outcome}  ")
    if diagnosis.code_path:
        lines += _wrap("probes: " + _path_text(diagnosis))
    if diagnosis.error_chain:
        lines += _wrap("error chain: " + _chain_text(diagnosis))
    if hashed := _hash_line(diagnosis):
        lines += _wrap(hashed)
    lines += _wrap(f"root cause: {diagnosis.root_cause}; attach: {diagnosis.attach}")
    if diagnosis.parse_errors:
        lines += _wrap(f"unparsed probe lines: {len(diagnosis.parse_errors)}")
    for finding in findings:
        lines += _wrap(finding)
    if where:
        lines += _wrap(f"run: {where}/{_run_files(where)}")
    return lines


def render_terminal(
    result: Result, console: Console | None = None, *, source: str = "transcript"
) -> None:
    """Print one block per scenario; rich drops the colours when not on a tty."""
    console = console or Console()
    for index, (name, diagnosis, where) in enumerate(_blocks(result, source)):
        if index:
            console.print()
        lines = _terminal_lines(name, diagnosis, where, scenario_findings(result, name))
        head = Text(lines[0])
        start = len(name) + 2
        head.stylize("bold", 0, len(name))
        head.stylize(
            _OUTCOME_STYLE.get(diagnosis.outcome, ""),
            start,
            start + len(diagnosis.outcome),
        )
        console.print(head, soft_wrap=True, highlight=False)
        for line in lines[1:]:
            console.print(Text(line), soft_wrap=True, highlight=False)


def _markdown_store(diagnosis: Diagnosis) -> str:
    check = diagnosis.data_store_hash
    source = _ADDRESS_SOURCES.get(check.address_source, check.address_source)
    of = f"sha256[:8] of {source} `{check.address}`"
    if check.value is None:
        return f"— (none seen; {of} is {check.expected})"
    if check.matches:
        return f"{check.value} = {of}"
    return f"{check.value} does NOT match: {of} is {check.expected}"


def _cell(value: object) -> str:
    return "—" if value is None else str(value)


def _markdown_diagnosis(name: str, diagnosis: Diagnosis, level: str) -> list[str]:
    out = [
        f"{level} {name}: {diagnosis.outcome}",
        "",
        diagnosis.explanation,
        "",
        "| fact | value |",
        "|---|---|",
        f"| attach | {diagnosis.attach} |",
        f"| root cause | `{diagnosis.root_cause}` |",
        f"| NewTask branch | {diagnosis.newtask_branch or '—'} |",
        f"| data store | {_markdown_store(diagnosis)} |",
        "",
    ]
    if diagnosis.error_chain:
        out += ["Error chain, outermost first:", ""]
        out += [f"{n}. `{text}`" for n, text in enumerate(diagnosis.error_chain, 1)]
        out += [f"\nNote: {note}" for note in diagnosis.chain_notes]
        out.append("")
    if diagnosis.stdio:
        out += ["| stream | kind | scheme | path |", "|---|---|---|---|"]
        out += [
            f"| {use.stream} | {use.kind} | {use.scheme or ''} "
            f"| {f'`{use.path}`' if use.path else '(empty)'} |"
            for use in diagnosis.stdio
        ]
        out.append("")
    if diagnosis.code_path:
        out += ["Code path seen by the probes: " + _path_text(diagnosis), ""]
    if diagnosis.code_path_by_step:
        out += ["Probes by step:", ""]
        out += [
            f"- {step}: {' → '.join(path)}"
            for step, path in diagnosis.code_path_by_step
        ]
        out.append("")
    if diagnosis.evidence:
        out += ["Evidence:", "", "```"]
        out += [f"{item.where}: {item.text}" for item in diagnosis.evidence]
        out += ["```", ""]
    if diagnosis.parse_errors:
        out += ["Probe lines that did not parse:", "", "```"]
        for item in diagnosis.parse_errors:
            out += [f"line {item.line}: {item.error}", item.error.caret()]
        out += ["```", ""]
    return out


def render_markdown(result: Result, *, source: str = "transcript") -> str:
    """A Markdown report of any result."""
    out: list[str] = []
    if isinstance(result, RunDiagnosis):
        out += [
            f"# nerdlab run {result.id}",
            "",
            f"Target: {result.target or '—'}; nerdctl ref: {result.nerdctl_ref or '—'}"
            + (
                f"; {result.started or '?'} → {result.finished or '?'}"
                if result.started or result.finished
                else ""
            ),
            "",
            "| scenario | outcome | attach | root cause |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {item.name} | {item.diagnosis.outcome} | {item.diagnosis.attach} "
            f"| `{item.diagnosis.root_cause}` |"
            for item in result.scenarios
        ]
        out.append("")
        for item in result.scenarios:
            out += _markdown_scenario(item, "##")
    elif isinstance(result, ScenarioDiagnosis):
        out += _markdown_scenario(result, "#")
    else:
        out += _markdown_diagnosis(source, result, "#")
    return "\n".join(out).rstrip() + "\n"


def _markdown_scenario(scenario: ScenarioDiagnosis, level: str) -> list[str]:
    out = _markdown_diagnosis(scenario.name, scenario.diagnosis, level)
    if scenario.description:
        out[1:1] = ["", scenario.description]
    findings = scenario_findings(scenario, scenario.name)
    if findings:
        out += [f"- {line}" for line in findings] + [""]
    if scenario.steps:
        out += [
            "| step | rc | seconds | ended early | timed out |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {step.name} | {_cell(step.rc)} | {_cell(step.duration_s)} "
            f"| {step.ended_early} | {step.timed_out} |"
            for step in scenario.steps
        ]
        out.append("")
    return out


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
    "padding:0 1rem}code,pre{font-family:ui-monospace,monospace}"
    "pre{background:#f4f4f4;padding:.5rem;overflow-x:auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
    ".REPRODUCED{color:#b00}.FIXED{color:#070}.INCONCLUSIVE{color:#666}"
)


def _html_diagnosis(name: str, diagnosis: Diagnosis) -> list[str]:
    e = html.escape
    outcome = diagnosis.outcome.replace(" ", "-")
    out = [
        f'<section><h2>{e(name)} <span class="{e(outcome)}">'
        f"{e(diagnosis.outcome)}</span></h2>",
        f"<p>{e(diagnosis.explanation)}</p>",
        "<table>",
        f"<tr><th>attach</th><td>{e(diagnosis.attach)}</td></tr>",
        f"<tr><th>root cause</th><td><code>{e(diagnosis.root_cause)}</code></td></tr>",
    ]
    if diagnosis.newtask_branch:
        out.append(
            f"<tr><th>NewTask branch</th><td>{e(diagnosis.newtask_branch)}</td></tr>"
        )
    out.append("</table>")
    if diagnosis.error_chain:
        out.append("<ol>")
        out += [f"<li><code>{e(text)}</code></li>" for text in diagnosis.error_chain]
        out.append("</ol>")
    if diagnosis.stdio:
        out.append("<table><tr><th>stream</th><th>kind</th><th>path</th></tr>")
        out += [
            f"<tr><td>{e(use.stream)}</td><td>{e(use.kind)}</td>"
            f"<td><code>{e(use.path)}</code></td></tr>"
            for use in diagnosis.stdio
        ]
        out.append("</table>")
    if diagnosis.code_path:
        out.append(f"<p>Probes: {e(_path_text(diagnosis))}</p>")
    if diagnosis.evidence:
        text = "\n".join(f"{item.where}: {item.text}" for item in diagnosis.evidence)
        out.append(f"<pre>{e(text)}</pre>")
    out.append("</section>")
    return out


def render_html(result: Result, *, source: str = "transcript") -> str:
    """A self-contained HTML page (no scripts, no external files)."""
    title = f"nerdlab run {result.id}" if isinstance(result, RunDiagnosis) else source
    body: list[str] = []
    for name, diagnosis, _ in _blocks(result, source):
        body += _html_diagnosis(name, diagnosis)
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            *body,
            "</body></html>",
            "",
        ]
    )


# --- results of a run, one row per scenario ------------------------------------

_RESULT_COLUMNS = (
    "scenario",
    "outcome",
    "attach",
    "NewTask branch",
    "stdio",
    "root cause",
    "attach time",
)


def _stdio_kinds(diagnosis: Diagnosis) -> list[str]:
    """``stdin=empty``, ``stdout=log-uri(binary)``… for each stream seen."""
    out = []
    for use in diagnosis.stdio:
        kind = f"{use.kind}({use.scheme})" if use.scheme else use.kind
        out.append(f"{use.stream}={kind}")
    return out


def _attach_time(scenario: ScenarioDiagnosis) -> str:
    step = next((step for step in scenario.steps if step.name == "attach"), None)
    if step is None or step.duration_s is None:
        return "—"
    return f"{step.duration_s:g} s" + (" (timed out)" if step.timed_out else "")


def _result_cells(scenario: ScenarioDiagnosis) -> tuple[str, ...]:
    diagnosis = scenario.diagnosis
    return (
        scenario.name,
        diagnosis.outcome,
        diagnosis.attach,
        diagnosis.newtask_branch or "—",
        " ".join(_stdio_kinds(diagnosis)) or "—",
        diagnosis.root_cause,
        _attach_time(scenario),
    )


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def results_table_markdown(run: RunDiagnosis) -> str:
    """A Markdown table of the run's results, one row per scenario."""
    lines = [
        "| " + " | ".join(_RESULT_COLUMNS) + " |",
        "|" + "---|" * len(_RESULT_COLUMNS),
    ]
    for scenario in run.scenarios:
        cells = list(map(_markdown_cell, _result_cells(scenario)))
        cells[5] = f"`{cells[5]}`"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _table(console: Console, *headers: str) -> Table:
    # columns two spaces apart, a rule under the headers, no other lines
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style="bold" if console.is_terminal else "",
        title_justify="left",
        title_style="bold" if console.is_terminal else "",
    )
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def render_results_table(run: RunDiagnosis, console: Console | None = None) -> None:
    """Print the run's results, one row per scenario, to fit 88 columns.

    A row is a few lines high: the attach time goes under the scenario, attach
    under the outcome and the stdio kinds under NewTask's branch.
    """
    console = console or Console()
    table = _table(
        console, "scenario", "outcome", "NewTask branch, stdio", "root cause"
    )
    table.title = f"run {run.id}"
    for column in table.columns[1:]:
        column.no_wrap = True
    for scenario in run.scenarios:
        diagnosis = scenario.diagnosis
        name = Text(scenario.name, style="bold")
        if (took := _attach_time(scenario)) != "—":
            name.append(f"\nattach {took}", style="dim")
        outcome = Text()
        outcome.append(diagnosis.outcome, _OUTCOME_STYLE.get(diagnosis.outcome, ""))
        outcome.append(f"\nattach {diagnosis.attach}")
        io = "\n".join([diagnosis.newtask_branch or "—", *_stdio_kinds(diagnosis)])
        table.add_row(name, outcome, Text(io), Text(diagnosis.root_cause))
    console.print(table, highlight=False)


# --- comparing two scenarios ---------------------------------------------------

_HEX_ID = re.compile(r"\b[0-9a-f]{64}\b")
_VALUE_WIDTH = 72
_PATH_WIDTH = 30
# An absolute path in free text (not the "//" or "/…" of a shortened URI).
_FILE = re.compile(r"(?<![\w:/…])/[^\s|\"']+")


def _short_ids(text: str) -> str:
    return _HEX_ID.sub(lambda match: match.group(0)[:12] + "…", text)


def _short_uri(text: str) -> str:
    """``binary://…/nerdctl?…/5ac656fe`` for a long log URI: the program and the
    data store's hash."""
    info = classify_stdio(text)
    if info.kind != "log-uri" or len(text) <= 32:
        return text
    name = (info.path or "").rstrip("/").rsplit("/", 1)[-1]
    short = f"{info.scheme}://…/{name}" if name else f"{info.scheme}://…"
    if info.data_store:
        short += f"?…/{info.data_store.rstrip('/').rsplit('/', 1)[-1]}"
    elif info.query:
        short += "?…"
    return short


def _short_file(path: str, width: int = _PATH_WIDTH) -> str:
    """An absolute path cut to its last components: ``…/fifo/<n>/<id>-stdout``."""
    path = _short_ids(path)
    if len(path) <= width:
        return path
    parts = path.split("/")
    for keep in (3, 2):
        tail = "/".join(parts[-keep:])
        if len(parts) > keep + 1 and len(tail) + 2 <= width:
            return f"…/{tail}"
    return f"…/{parts[-1]}"


def _short_path(path: str | None) -> str:
    """A stdio string short enough for a table cell."""
    if path is None:
        return ""
    if not path.strip():
        return "(empty)"
    if path.startswith("/"):
        return _short_file(path)
    return _short_uri(path)


def _short_text(text: str, width: int = _VALUE_WIDTH) -> str:
    """URIs, paths and ids in ``text`` shortened, then the whole cut to ``width``."""
    text = _URI.sub(lambda match: _short_uri(match.group(0)), text)
    text = _FILE.sub(lambda match: _short_file(match.group(0)), text)
    text = _short_ids(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _stream_cell(side: SideResult, stream: str) -> str:
    use = side.stream(stream)
    if use.kind is None:
        return "—"
    path = _short_path(use.path)
    return f"{use.kind_text}\n{path}" if use.kind != "empty" else use.kind_text


def _chain_cell(side: SideResult) -> str:
    if not side.error_chain:
        return "—"
    return "\n".join(
        f"{number}. {_short_text(layer, 60)}"
        for number, layer in enumerate(side.error_chain, 1)
    )


def _comparison_rows(comparison: Comparison) -> list[tuple[str, str, str, bool]]:
    a, b = comparison.a, comparison.b
    differ = set(comparison.facts_that_differ)
    rows = [
        ("outcome", a.outcome, b.outcome, "outcome" in differ),
        ("attach", a.attach, b.attach, "attach" in differ),
        (
            "NewTask branch",
            a.newtask_branch or "—",
            b.newtask_branch or "—",
            "newtask_branch" in differ,
        ),
    ]
    rows += [
        (stream, _stream_cell(a, stream), _stream_cell(b, stream), stream in differ)
        for stream in STREAMS
    ]
    rows += [
        ("root cause", a.root_cause, b.root_cause, "root_cause" in differ),
        ("error chain", _chain_cell(a), _chain_cell(b), "error_chain" in differ),
    ]
    return rows


def _halves(table: Table, console: Console, used: int) -> None:
    """Give the last two columns (A and B) equal widths in what is left."""
    half = max(20, min(60, (console.width - used - 2) // 2))
    for column in table.columns[-2:]:
        column.width = half


def _ids_text(ids: tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "—"


def render_comparison(comparison: Comparison, console: Console | None = None) -> None:
    """Print two scenarios side by side, then the probes whose values differ.

    Rows that differ are marked ``≠`` (and bold on a terminal); rich drops the
    styles when not on a tty.
    """
    console = console or Console()
    a, b = comparison.a, comparison.b
    for name, side in (("A", a), ("B", b)):
        head = Text(f"{name}  {side.side.label}", style="bold")
        head.append(f"\n   {side.side.directory}", style="dim")
        console.print(head, highlight=False, soft_wrap=True)
    table = _table(console, "", "", "A", "B")
    table.columns[0].no_wrap = True
    table.columns[1].width = 1
    _halves(table, console, len("NewTask branch") + 1 + 4)
    for label, one, other, differs in _comparison_rows(comparison):
        style = "bold" if differs else ""
        cells = [Text(one), Text(other)]
        if differs:
            for cell, outcome in zip(cells, (one, other), strict=True):
                cell.stylize(_OUTCOME_STYLE.get(outcome, "bold"))
        table.add_row(Text(label, style=style), Text("≠" if differs else ""), *cells)
    console.print(table, highlight=False)
    console.print()
    if not comparison.probes_differ:
        common = len(a.probes)
        console.print(
            Text(
                f"probes that differ: none ({common} probe ids on both sides, "
                "after container ids, times, pids and FIFO directories are "
                "normalised)"
            ),
            highlight=False,
        )
        return
    console.print(
        Text("probes that differ (noise normalised)", style="bold"), highlight=False
    )
    console.print(Text(f"only in A: {_ids_text(comparison.only_a)}"), highlight=False)
    console.print(Text(f"only in B: {_ids_text(comparison.only_b)}"), highlight=False)
    if not comparison.differing:
        return
    # one heading per probe, then its fields; the tables share column widths
    keys = [item.key for diff in comparison.differing for item in diff.fields]
    key_width = min(max(map(len, keys), default=5), 20) + 2
    for index in range(-1, len(comparison.differing)):
        fields = _table(console, "probe, field", "A", "B")
        fields.columns[0].width = key_width
        _halves(fields, console, key_width + 4)
        if index < 0:  # the headings, once
            console.print(fields, highlight=False)
            continue
        diff = comparison.differing[index]
        fields.show_header = False
        console.print(Text(diff.id, style="bold"), highlight=False, soft_wrap=True)
        for item in diff.fields:
            fields.add_row(
                Text(f"  {item.key}"),
                Text(_short_text(item.a) if item.a is not None else "—"),
                Text(_short_text(item.b) if item.b is not None else "—"),
            )
        console.print(fields, highlight=False)


def _side_dict(side: SideResult) -> dict[str, Any]:
    return {
        "label": side.side.label,
        "run": side.side.run_id,
        "run_dir": str(side.side.run_dir),
        "scenario": side.side.scenario,
        "outcome": side.outcome,
        "attach": side.attach,
        "root_cause": side.root_cause,
        "newtask_branch": side.newtask_branch,
        "explanation": side.explanation,
        "stdio": [
            {
                "stream": use.stream,
                "path": use.path,
                "kind": use.kind,
                "scheme": use.scheme,
            }
            for use in (side.stream(stream) for stream in STREAMS)
        ],
        "error_chain": list(side.error_chain),
        "error_chain_normalised": list(normalise_chain(side)),
        "attach_duration_s": side.attach_duration_s,
    }


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    """A comparison as a JSON object: both sides, the facts and probes that differ."""
    return {
        "a": _side_dict(comparison.a),
        "b": _side_dict(comparison.b),
        "facts_that_differ": list(comparison.facts_that_differ),
        "probes": {
            "only_a": list(comparison.only_a),
            "only_b": list(comparison.only_b),
            "differing": [
                {
                    "id": diff.id,
                    "fields": [
                        {"key": item.key, "a": item.a, "b": item.b}
                        for item in diff.fields
                    ],
                    "a": [dict(values) for values in diff.a],
                    "b": [dict(values) for values in diff.b],
                }
                for diff in comparison.differing
            ],
        },
    }
