"""Turn trace events into a diagnosis: did attach fail, on what I/O, and why.

The rules look for the facts that separate the attach bug from its look-alikes:

* ``log-uri-treated-as-fifo``: attach (containerd's ``cio`` on the client) tried to
  open or create a FIFO whose "path" is a log URI (``binary://``, ``file://``).
* ``fifo-dir-missing-after-restart``: the same error layers, but the FIFO argument is
  a real absolute path whose directory is gone.
* ``client-daemon-filesystem-mismatch``: the shim, not the client, reports the FIFO
  path missing (``failed to open stdin fifo <path>: stat <path>``).
* ``shim-unsupported-log-uri-scheme``: the shim stat'ed a log URI during task create.
* ``missing-log-uri``, ``no-log-driver-for-foreground-task``, ``missing-tty``,
  ``vm-mount-read-only``: nerdctl-side and environment faults with their own texts.

Structured probe events take precedence as evidence when present; probe ids the rules
do not know are kept in the events and the code path and otherwise ignored.

What a diagnosis reports, and from where:

* ``stdio``: one entry per stream, the string containerd stored for the task. The
  best source wins: ``containerd.loadTask.get`` (a successful Get), then
  ``containerd.attachExistingIO.entry``, ``containerd.NewTask.config`` (or a run
  command's ``--log-uri``), then the paths attach opened (``cio.NewAttach.copy``,
  ``cio.openFifos.entry``, leaving out streams ``cio.NewAttach.closure`` said were
  blanked), then hand-written prints, FIFO names and error text. At equal rank what
  the attach step (or the lines after a transcript's attach command) saw wins.
* ``code_path``: ``NewTask(<branch>)`` from the run step, then the functions attach's
  own probes passed through, once per consecutive run, ending at the first failure
  (``openFifo(mkfifo failed)``). ``code_path_by_step`` keeps every step's path.
* ``evidence``: for the attach bug, the NewTask branch probe, the probe the stored
  stdio was read from, the failing probe and the error line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nerdlab.chain import Chain, Layer, split_chain
from nerdlab.errors import ConfigError
from nerdlab.stdio import HashCheck, Stdio, check_data_store, classify_stdio
from nerdlab.trace import (
    AdHocProbe,
    CliError,
    Event,
    GoPanic,
    LogrusLine,
    Output,
    ProbeEvent,
    PromptCommand,
    UnparsedProbe,
    parse_lines,
)

__all__ = [
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

CATEGORIES = (
    "log-uri-treated-as-fifo",
    "shim-unsupported-log-uri-scheme",
    "missing-log-uri",
    "no-log-driver-for-foreground-task",
    "missing-tty",
    "fifo-dir-missing-after-restart",
    "client-daemon-filesystem-mismatch",
    "vm-mount-read-only",
    "none",
    "unknown",
)

BUG = "log-uri-treated-as-fifo"
STATE_STREAM = "file"
INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a scenario's outcome is called when attach fails, or streams."""

    if_attach_fails: str = "REPRODUCED"
    if_attach_streams: str = "NOT REPRODUCED"

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Expectation:
        """Read the ``expect`` object of a scenario.json."""
        data = data or {}
        return cls(
            if_attach_fails=str(data.get("outcome_if_attach_fails", "REPRODUCED")),
            if_attach_streams=str(
                data.get("outcome_if_attach_streams", "NOT REPRODUCED")
            ),
        )


@dataclass(frozen=True, slots=True)
class StdioUse:
    """One stdio string of the task, which stream it is, and where it was seen."""

    stream: str
    path: str
    kind: str
    scheme: str | None
    line: int
    step: str | None = None
    data_store: str | None = None
    is_fifo_on_disk: bool | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """A line that supports the root cause."""

    line: int
    text: str
    step: str | None = None
    stream: str | None = None

    @property
    def where(self) -> str:
        """``step/stream:line`` for a run, ``line N`` for a transcript."""
        if self.step:
            return f"{self.step}/{self.stream or '?'}:{self.line}"
        return f"line {self.line}"


@dataclass(frozen=True, slots=True)
class ErrorSeen:
    """An error message found in the input and its layers."""

    event: Event
    chain: Chain


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What the input shows about attach, and why it failed if it did."""

    attach: str
    stdio: tuple[StdioUse, ...]
    error_chain: tuple[str, ...]
    root_cause: str
    explanation: str
    evidence: tuple[Evidence, ...]
    data_store_hash: HashCheck
    code_path: tuple[str, ...]
    newtask_branch: str | None
    outcome: str
    events: tuple[Event, ...] = field(repr=False)
    errors: tuple[ErrorSeen, ...] = field(repr=False)
    chain_notes: tuple[str, ...] = ()
    parse_errors: tuple[UnparsedProbe, ...] = ()
    code_path_by_step: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One recorded step of a scenario (``steps/NN-<name>.json``)."""

    name: str
    argv: tuple[str, ...]
    rc: int | None
    started: str | None
    finished: str | None
    duration_s: float | None
    timed_out: bool
    ended_early: bool
    stdout: Path | None
    stderr: Path | None
    stops_scenario: bool = False
    diagnose: bool = True
    measure: str | None = None
    yes_when: str = "rc0"


@dataclass(frozen=True, slots=True)
class ScenarioDiagnosis:
    """A scenario's record in a run directory and the diagnosis of its output."""

    name: str
    description: str
    directory: Path
    expect: Expectation
    context: Mapping[str, Any]
    steps: tuple[Step, ...]
    state: tuple[Path, ...]
    diagnosis: Diagnosis
    json_file_log: JsonFileLog | None = None
    measurements: tuple[Measurement, ...] = ()


@dataclass(frozen=True, slots=True)
class Measurement:
    """A question a scenario step answers by running, not by assumption."""

    question: str
    answer: str
    detail: str
    step: str

    def summary(self) -> str:
        """One line for the report."""
        return f"measured: {self.question} {self.answer} ({self.detail}; {self.step})"


@dataclass(frozen=True, slots=True)
class JsonFileLog:
    """What a scenario read from nerdctl's json-file log (state/json-file-log.txt)."""

    path: str
    data_store_hash: HashCheck
    stdout_lines: int
    first_line: str | None

    def summary(self) -> str:
        """One sentence for the report."""
        check = self.data_store_hash
        verdict = "matches" if check.matches else "does not match"
        return (
            f"json-file log: {self.stdout_lines} stdout line(s) in {self.path}; "
            f"data store {check.value} {verdict} sha256[:8] of {check.address}"
        )


@dataclass(frozen=True, slots=True)
class RunDiagnosis:
    """All scenarios of one run directory, with the run's metadata."""

    id: str
    directory: Path
    started: str | None
    finished: str | None
    target: str | None
    nerdctl_ref: str | None
    scenarios: tuple[ScenarioDiagnosis, ...]


# Commands that attach to a running task: "nerdctl attach x", "ctr task attach x",
# "ctr t attach x", "docker attach x" (after sudo or a path such as ./_output/).
_ATTACH_COMMAND = re.compile(
    r"(?:^|[\s/])(?:nerdctl|ctr|docker|finch)\s+(?:(?:task|tasks|t|container)\s+)?"
    r"attach\b"
)

# Lines that are errors without a logger's level: yarn and other CLIs ("error ...",
# "Error: ..."), the docker CLI ("docker: Error response from daemon: ...").
_ERROR_OUTPUT = re.compile(r"^(?:error|Error|ERROR|fatal|FATAL)[: ]|^docker: ")
_ERROR_LEVELS = frozenset({"error", "fatal", "panic"})

# `ls -la` long listing: type character, permission bits, optional SELinux/ACL mark,
# link count, owner, group, size, date (three fields), name.
_MODE = r"(?P<type>[-dlpcbs])[rwxsStT-]{9}"
_LISTING = re.compile(
    rf"^{_MODE}[.+@]?\s+\d+\s+\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+\S+\s+(?P<name>.+)$"
)

# The runner's own tree listing: stat.filemode, size, full path.
_TREE = re.compile(rf"^{_MODE}\s+\d+\s+/(?:.*/)?(?P<name>[^/]+)$")

# A nerdctl data store inside any path: "<data root>/<8 hex digits>", where the data
# root ends in "nerdctl" (/var/lib/nerdctl, ~/.local/share/nerdctl).
_DATA_STORE = re.compile(r"(?P<store>(?:/[^\s/\"'?&=]+)*/nerdctl/[0-9a-f]{8})(?![\w])")

# nerdctl.toml's address setting as shown by `cat /etc/nerdctl/nerdctl.toml`.
_TOML_ADDRESS = re.compile(r'^\s*address\s*=\s*"(?P<address>[^"]+)"\s*$')

# ctr's --log-uri flag on a run command: "--log-uri binary:///x" or "--log-uri=file://y".
_LOG_URI_FLAG = re.compile(r"--log-uri[= ](?P<uri>\S+)")

_ENOENT = "no such file or directory"
_STREAMS = ("stdin", "stdout", "stderr")
# containerd names a task's FIFOs "<id>-stdin", "<id>-stdout", "<id>-stderr".
_FIFO_SUFFIX = re.compile(r"-(?P<stream>stdin|stdout|stderr)$")
_NIL = frozenset({"", "<nil>", "nil"})

# The step of a run directory, or the command of a transcript, that attaches.
_ATTACH_STEP = "attach"
# The step of a run directory that creates the task (NewTask's branch is read there).
_CREATE_STEP = "run"

# Probes whose stdin/stdout/stderr fields are the task's stdio strings, best source
# first: what the daemon stored (loadTask after a successful Get), what attach was
# handed (attachExistingIO), what the task was created with (NewTask's config), and
# the paths attach went on to open (NewAttach after blanking, openFifos). Other
# probes' fields of those names (nerdctl.Attach.entry's stdin="true") are not stdio,
# and neither is cio.NewAttach.closure's fifos (a Go struct printed with %v).
_STDIO_PROBES = {
    "containerd.loadTask.get": 0,
    "containerd.attachExistingIO.entry": 1,
    "containerd.NewTask.config": 2,
    "cio.NewAttach.copy": 3,
    "cio.openFifos.entry": 3,
}
_CREATED_RANK = 2  # a run command's --log-uri flag ranks with NewTask's config
_OPENED_RANK = 3
_FALLBACK_RANK = 4  # hand-written prints, FIFO names, error text
_BLANKING_PROBE = "cio.NewAttach.closure"
_FIFO_FUNCS = frozenset({"OpenFifo", "openFifo"})
# Functions that create the task; the code path shows them as one NewTask element.
_CREATE_FUNCS = frozenset({"NewTask", "LogURI", "TerminalBinaryIO"})


@dataclass(frozen=True, slots=True)
class _Seen:
    """A stdio string, how good its source is and where the source is."""

    use: StdioUse
    rank: int
    index: int
    event: Event


@dataclass(slots=True)
class _Facts:
    """Everything the rules look at, gathered in one pass over the events."""

    events: list[Event] = field(default_factory=list)
    commands: list[PromptCommand] = field(default_factory=list)
    errors: list[ErrorSeen] = field(default_factory=list)
    panics: list[GoPanic] = field(default_factory=list)
    probes: list[ProbeEvent | AdHocProbe] = field(default_factory=list)
    unparsed: list[UnparsedProbe] = field(default_factory=list)
    uses: list[_Seen] = field(default_factory=list)
    on_disk: dict[str, str] = field(default_factory=dict)
    data_stores: list[str] = field(default_factory=list)
    toml_address: str | None = None
    positions: dict[int, int] = field(default_factory=dict)
    # filled in after the pass: the attach window, the task's stdio per stream
    # with the event it was read from, and the probes that prove the code path
    window: frozenset[int] | None = None
    stdio: list[StdioUse] = field(default_factory=list)
    stdio_sources: dict[str, Event] = field(default_factory=dict)
    branch: str | None = None
    branch_probe: Event | None = None
    failing_probe: Event | None = None


@dataclass(frozen=True, slots=True)
class _Finding:
    category: str
    explanation: str
    evidence: tuple[Event, ...]
    chain: Chain | None = None


def _use(
    stream: str, value: str, event: Event, facts: _Facts, rank: int = _FALLBACK_RANK
) -> None:
    info = classify_stdio(value)
    use = StdioUse(
        stream=stream,
        path=value,
        kind=info.kind,
        scheme=info.scheme,
        line=event.line,
        step=event.step,
        data_store=info.data_store,
    )
    index = facts.positions.get(id(event), len(facts.events))
    facts.uses.append(_Seen(use, rank, index, event))


def _stream_of(path: str) -> str:
    match = _FIFO_SUFFIX.search(path)
    return match["stream"] if match else "unknown"


def _probe_error(probe: ProbeEvent) -> bool:
    return probe.get("err", "<nil>") not in _NIL


def _probe_uses(
    probe: ProbeEvent, facts: _Facts, blanked: dict[int, frozenset[str]]
) -> None:
    if probe.id == _BLANKING_PROBE:
        blanked[probe.pid] = frozenset(
            stream for stream in _STREAMS if probe.get(f"{stream}_stream_nil") == "true"
        )
    rank = _STDIO_PROBES.get(probe.id)
    if rank is not None and not _probe_error(probe):
        # a failed Get prints empty strings: that is no stdio of the task
        for stream in _STREAMS:
            value = probe.get(stream)
            if value is None:
                continue
            if rank == _OPENED_RANK and stream in blanked.get(probe.pid, ()):
                # NewAttach blanked a stream the caller did not ask for
                continue
            _use(stream, value, probe, facts, rank)
    if probe.short_func in _FIFO_FUNCS and (fn := probe.get("fn")) is not None:
        _use(_stream_of(fn), fn, probe, facts)


def _gather(events: Iterable[Event]) -> _Facts:
    facts = _Facts()
    blanked: dict[int, frozenset[str]] = {}
    for event in events:
        facts.positions[id(event)] = len(facts.events)
        facts.events.append(event)
        if event.stream == STATE_STREAM and isinstance(event, CliError | LogrusLine):
            # a state snapshot's own complaint ("ls: cannot access ...") is a fact
            # about the host, not a failure of the scenario
            pass
        elif isinstance(event, PromptCommand):
            facts.commands.append(event)
            for flag in _LOG_URI_FLAG.finditer(event.command):
                for stream in ("stdout", "stderr"):
                    _use(stream, flag["uri"], event, facts, _CREATED_RANK)
        elif isinstance(event, ProbeEvent):
            facts.probes.append(event)
            _probe_uses(event, facts, blanked)
        elif isinstance(event, AdHocProbe):
            facts.probes.append(event)
            key = (event.key or "").lower()
            if event.value is not None and key.rsplit(".", 1)[-1] in _STREAMS:
                _use(key.rsplit(".", 1)[-1], event.value, event, facts)
            elif event.value is not None and key == "fn":
                _use(_stream_of(event.value), event.value, event, facts)
        elif isinstance(event, UnparsedProbe):
            facts.unparsed.append(event)
        elif isinstance(event, GoPanic):
            facts.panics.append(event)
            facts.errors.append(ErrorSeen(event, split_chain(event.value)))
        elif isinstance(event, LogrusLine):
            if event.level in _ERROR_LEVELS:
                facts.errors.append(ErrorSeen(event, split_chain(event.message)))
        elif isinstance(event, CliError):
            facts.errors.append(ErrorSeen(event, split_chain(event.message)))
        elif isinstance(event, Output):
            if _ERROR_OUTPUT.match(event.text):
                facts.errors.append(ErrorSeen(event, split_chain(event.text)))
            elif listing := _LISTING.match(event.text) or _TREE.match(event.text):
                facts.on_disk[listing["name"].strip()] = listing["type"]
            elif toml := _TOML_ADDRESS.match(event.text):
                facts.toml_address = toml["address"]
        for store in _DATA_STORE.finditer(event.text):
            facts.data_stores.append(store["store"])
    for seen in facts.errors:
        _uses_from_chain(seen, facts)
    facts.window = _attach_window(facts)
    facts.stdio, facts.stdio_sources = _task_stdio(facts)
    _read_code_path(facts)
    return facts


def _uses_from_chain(seen: ErrorSeen, facts: _Facts) -> None:
    layers = seen.chain.layers
    for index, layer in enumerate(layers):
        if layer.verb is None:
            continue
        if layer.stream is not None:
            argument = layer.argument
            following = layers[index + 1] if index + 1 < len(layers) else None
            if (
                argument is None
                and following is not None
                and following.verb == "error creating fifo"
            ):
                argument = following.argument
            if argument is not None:
                _use(layer.stream, argument, seen.event, facts)
        elif (
            layer.verb in {"stat", "open", "lstat"}
            and layer.argument
            and classify_stdio(layer.argument).kind == "log-uri"
        ):
            _use("unknown", layer.argument, seen.event, facts)


def _attach_window(facts: _Facts) -> frozenset[int] | None:
    """The positions of the events attach printed, or None if attach is not seen.

    In a run directory that is the attach step; in a transcript, the lines after
    the last attach command up to the next prompt.
    """
    events = facts.events
    if any(event.step == _ATTACH_STEP for event in events):
        return frozenset(
            index for index, event in enumerate(events) if event.step == _ATTACH_STEP
        )
    starts = [
        index
        for index, event in enumerate(events)
        if isinstance(event, PromptCommand) and _ATTACH_COMMAND.search(event.command)
    ]
    if not starts:
        return None
    end = next(
        (
            index
            for index in range(starts[-1] + 1, len(events))
            if isinstance(events[index], PromptCommand)
        ),
        len(events),
    )
    return frozenset(range(starts[-1] + 1, end))


def _task_stdio(facts: _Facts) -> tuple[list[StdioUse], dict[str, Event]]:
    """One entry per stream, from the best source; then paths of no known stream.

    Sources rank as ``_STDIO_PROBES`` says; at equal rank what attach saw wins, then
    the earliest.
    """
    window = facts.window or frozenset()

    def order(seen: _Seen) -> tuple[int, bool, int]:
        return (seen.rank, seen.index not in window, seen.index)

    best: dict[str, _Seen] = {}
    for seen in sorted(facts.uses, key=order):
        best.setdefault(seen.use.stream, seen)
    chosen = [best[stream] for stream in _STREAMS if stream in best]
    known = {seen.use.path for seen in facts.uses if seen.use.stream != "unknown"}
    shown: set[str] = set()
    for seen in sorted(facts.uses, key=order):
        path = seen.use.path
        if seen.use.stream == "unknown" and path not in known and path not in shown:
            shown.add(path)
            chosen.append(seen)
    stdio = [_on_disk(seen.use, facts.on_disk) for seen in chosen]
    sources = {seen.use.stream: seen.event for seen in chosen}
    return stdio, sources


def _on_disk(use: StdioUse, on_disk: Mapping[str, str]) -> StdioUse:
    name = use.path.rsplit("/", 1)[-1]
    if use.kind != "fifo" or name not in on_disk:
        return use
    return StdioUse(
        stream=use.stream,
        path=use.path,
        kind=use.kind,
        scheme=use.scheme,
        line=use.line,
        step=use.step,
        data_store=use.data_store,
        is_fifo_on_disk=on_disk[name] == "p",
    )


def _short_uri(info: Stdio) -> str:
    return f"{info.scheme}://…" if info.kind == "log-uri" else info.kind


def _branch_of(probe: ProbeEvent | AdHocProbe) -> str | None:
    """The NewTask branch a probe names: ``log-uri``, ``container-io``, ``ad-hoc:4``."""
    if isinstance(probe, ProbeEvent):
        found = probe.get("branch")
        if found is None and ".branch." in probe.id:
            found = probe.id.rsplit(".branch.", 1)[1]
        return found
    if probe.func == "NewTask" and probe.counter:
        return f"ad-hoc:{probe.counter}"
    return None


def _func(probe: ProbeEvent | AdHocProbe) -> str:
    return (
        probe.short_func if isinstance(probe, ProbeEvent) else probe.func.rstrip("()")
    )


def _failure(probe: ProbeEvent | AdHocProbe) -> str | None:
    """``mkfifo failed`` or ``error`` when the probe printed a failure, else None."""
    if not isinstance(probe, ProbeEvent):
        return None
    if _mkfifo_failed(probe):
        return "mkfifo failed"
    return "error" if _probe_error(probe) else None


def _stream_notes(probe: ProbeEvent | AdHocProbe) -> list[str]:
    """``stdout=binary://…`` for the first stream that openFifos cannot open."""
    if isinstance(probe, ProbeEvent):
        if probe.short_func != "openFifos":
            return []
        values = [(stream, probe.get(stream)) for stream in _STREAMS]
    else:
        stream = (probe.key or "").rsplit(".", 1)[-1].lower()
        if probe.func != "openFifos" or stream not in _STREAMS:
            return []
        values = [(stream, probe.value)]
    for stream, value in values:
        if value is not None and classify_stdio(value).kind == "log-uri":
            return [f"{stream}={_short_uri(classify_stdio(value))}"]
    return []


def _fn_note(probe: ProbeEvent | AdHocProbe) -> str | None:
    if isinstance(probe, ProbeEvent):
        value = probe.get("fn") if probe.short_func in _FIFO_FUNCS else None
    else:
        value = probe.value if (probe.key or "").lower() == "fn" else None
    if value is None or classify_stdio(value).kind != "log-uri":
        return None
    return f"fn={_short_uri(classify_stdio(value))}"


def _path_elements(
    probes: Iterable[ProbeEvent | AdHocProbe], *, stop_at_failure: bool
) -> tuple[list[str], ProbeEvent | AdHocProbe | None]:
    """Function names in order, once per consecutive run, with short notes.

    A log URI is noted where the path first shows it (openFifos' stream, else the
    FIFO name openFifo was given); a failure is noted where it happened, and with
    ``stop_at_failure`` the path ends there.
    """
    steps: list[tuple[str, list[str]]] = []
    uri_shown = False
    for probe in probes:
        name = _func(probe)
        branch = _branch_of(probe)
        notes = [f"branch={branch}"] if branch is not None else []
        notes += _stream_notes(probe)
        if not notes and not uri_shown and (fn := _fn_note(probe)):
            notes = [fn]
        uri_shown = uri_shown or any("://" in note for note in notes)
        failure = _failure(probe)
        if failure:
            notes.append(failure)
        if steps and steps[-1][0] == name:
            held = steps[-1][1]
            if any(note.split("=", 1)[0] in _STREAMS for note in held):
                notes = [
                    note for note in notes if note.split("=", 1)[0] not in _STREAMS
                ]
            held.extend(note for note in notes if note not in held)
        else:
            steps.append((name, notes))
        if failure and stop_at_failure:
            rendered = [_element(name, notes) for name, notes in steps]
            return rendered, probe
    return [_element(name, notes) for name, notes in steps], None


def _element(name: str, notes: Sequence[str]) -> str:
    return f"{name}({', '.join(notes)})" if notes else name


def _read_code_path(facts: _Facts) -> None:
    """Find NewTask's branch and the probe where attach's path failed."""
    window = facts.window
    found = [
        (index, probe, branch)
        for index, probe in enumerate(facts.events)
        if isinstance(probe, ProbeEvent | AdHocProbe)
        and (branch := _branch_of(probe)) is not None
    ]
    created = [item for item in found if item[1].step == _CREATE_STEP]
    if not created and window:
        created = [item for item in found if item[0] <= max(window)]
    if created or found:
        _, facts.branch_probe, facts.branch = (created or found)[-1]
    _, failing = _path_elements(_attach_probes(facts), stop_at_failure=True)
    facts.failing_probe = failing


def _attach_probes(facts: _Facts) -> list[ProbeEvent | AdHocProbe]:
    """The probes attach printed (all probes when attach is not seen)."""
    window = facts.window
    probes = [
        probe
        for probe in facts.probes
        if window is None or facts.positions[id(probe)] in window
    ]
    if facts.branch is not None:
        probes = [probe for probe in probes if _func(probe) not in _CREATE_FUNCS]
    return probes


def _code_path(facts: _Facts) -> list[str]:
    """NewTask's branch, then attach's path up to where it failed."""
    head = [f"NewTask({facts.branch})"] if facts.branch is not None else []
    body, _ = _path_elements(_attach_probes(facts), stop_at_failure=True)
    return head + body


def _code_path_by_step(facts: _Facts) -> list[tuple[str, tuple[str, ...]]]:
    """Every probe, grouped by step (or by the transcript's command before it)."""
    groups: dict[str, list[ProbeEvent | AdHocProbe]] = {}
    label = "input"
    for event in facts.events:
        if isinstance(event, PromptCommand):
            label = f"$ {event.command}"
        elif isinstance(event, ProbeEvent | AdHocProbe):
            groups.setdefault(event.step or label, []).append(event)
    return [
        (name, tuple(_path_elements(probes, stop_at_failure=False)[0]))
        for name, probes in groups.items()
    ]


def _display_uri(info: Stdio) -> str:
    if info.kind != "log-uri":
        return info.raw
    query = "&".join(f"{key}={value}" for key, value in info.query)
    return f"{info.scheme}://{info.path or ''}" + (f"?{query}" if query else "")


def _layer_info(layer: Layer) -> Stdio | None:
    return classify_stdio(layer.argument) if layer.argument else None


def _has(chain: Chain, text: str) -> bool:
    return any(text in layer.text for layer in chain.layers)


# Each rule returns a finding or None; they run in this order and the first wins,
# most specific texts first, the attach bug before its look-alikes.


def _missing_tty(facts: _Facts) -> _Finding | None:
    for panic in facts.panics:
        if "not a console" in panic.value:
            return _Finding(
                "missing-tty",
                "a TTY was requested (-t) but nerdctl's stdin/stdout is not a "
                "terminal; console.Current panicked before any FIFO was created.",
                (panic,),
                split_chain(panic.value),
            )
    for seen in facts.errors:
        if _has(seen.chain, "not a TTY"):
            return _Finding(
                "missing-tty",
                "-t was requested but stdin is not a terminal.",
                (seen.event,),
                seen.chain,
            )
    return None


def _missing_log_uri(facts: _Facts) -> _Finding | None:
    for seen in facts.errors:
        if _has(seen.chain, "failed to start binary process with cmdArgs []") or (
            _has(seen.chain, "failed to start binary process")
            and _has(seen.chain, "exec: no command")
        ):
            return _Finding(
                "missing-log-uri",
                "the container has no nerdctl log URI (it was not created by "
                "nerdctl, e.g. by the kubelet through CRI), so nerdctl started a "
                "logging binary with no command.",
                (seen.event,),
                seen.chain,
            )
    return None


def _no_log_driver(facts: _Facts) -> _Finding | None:
    for seen in facts.errors:
        if _has(seen.chain, "failed to load logging config") or any(
            layer.verb == "failed to read log config file"
            for layer in seen.chain.layers
        ):
            return _Finding(
                "no-log-driver-for-foreground-task",
                "no logging driver was set up for the container (a foreground run "
                "in older nerdctl, or --log-driver=none), so there is no "
                "log-config.json for `logs` to read (the mirror image of the "
                "attach bug).",
                (seen.event,),
                seen.chain,
            )
    return None


def _fifo_layers(chain: Chain) -> bool:
    return any(
        layer.stream is not None or layer.verb == "error creating fifo"
        for layer in chain.layers
    )


def _shim_log_uri(facts: _Facts) -> _Finding | None:
    for seen in facts.errors:
        if _fifo_layers(seen.chain):
            continue
        for layer in seen.chain.layers:
            info = _layer_info(layer)
            if (
                layer.verb in {"stat", "open", "lstat"}
                and info
                and info.kind == "log-uri"
            ):
                return _Finding(
                    "shim-unsupported-log-uri-scheme",
                    f"the runtime shim treated the {info.scheme} log URI "
                    f"{_display_uri(info)} as a file path ({layer.verb} failed); "
                    "it does not support log URIs for stdout/stderr.",
                    (seen.event,),
                    seen.chain,
                )
    return None


def _attach_path_probes(facts: _Facts) -> list[ProbeEvent | AdHocProbe]:
    found: list[ProbeEvent | AdHocProbe] = []
    for probe in facts.probes:
        if isinstance(probe, ProbeEvent):
            values = [probe.get(key) for key in ("fn", *_STREAMS)]
        else:
            values = [probe.value]
        if any(v is not None and classify_stdio(v).kind == "log-uri" for v in values):
            found.append(probe)
    return found


def _mkfifo_failed(probe: ProbeEvent | AdHocProbe) -> bool:
    if not isinstance(probe, ProbeEvent):
        return False
    failed = probe.get("mkfifo_err")
    if failed is None and "mkfifo" in probe.place.lower():
        failed = probe.get("err")
    return failed is not None and failed not in _NIL


def _log_uri_as_fifo(facts: _Facts, attach: str) -> _Finding | None:
    probes = _attach_path_probes(facts)
    for seen in facts.errors:
        for layer in seen.chain.layers:
            if layer.verb not in {"error creating fifo"} and layer.stream is None:
                continue
            info = _layer_info(layer)
            if info is None or info.kind != "log-uri":
                continue
            stream = next(
                (item.stream for item in seen.chain.layers if item.stream), "stdout"
            )
            return _Finding(
                BUG,
                _bug_text(stream, info),
                _bug_evidence(facts, stream, seen.event),
                seen.chain,
            )
    failing = [probe for probe in probes if _mkfifo_failed(probe)]
    if failing or (probes and attach == "failed"):
        info = _stored_log_uri(facts, "stdout") or _first_log_uri(probes)
        first = facts.errors[0] if facts.errors else None
        return _Finding(
            BUG,
            _bug_text("stdout", info),
            _bug_evidence(facts, "stdout", first.event if first else None),
            first.chain if first else None,
        )
    return None


def _stored_log_uri(facts: _Facts, stream: str) -> Stdio | None:
    for use in facts.stdio:
        if use.stream == stream and use.kind == "log-uri":
            return classify_stdio(use.path)
    return None


def _bug_evidence(facts: _Facts, stream: str, error: Event | None) -> tuple[Event, ...]:
    """The lines that prove the bug: the NewTask branch, the stored stdio string,
    the failed mkfifo and the error attach printed."""
    stored = facts.stdio_sources.get(stream)
    if stored is not None and _stored_log_uri(facts, stream) is None:
        stored = None
    found = (facts.branch_probe, stored, facts.failing_probe, error)
    return tuple(event for event in found if event is not None)


def _first_log_uri(probes: Sequence[ProbeEvent | AdHocProbe]) -> Stdio:
    for probe in probes:
        values = (
            [probe.get(key) for key in ("stdout", "fn", "stderr")]
            if isinstance(probe, ProbeEvent)
            else [probe.value]
        )
        for value in values:
            if value is not None and classify_stdio(value).kind == "log-uri":
                return classify_stdio(value)
    return classify_stdio("")


def _bug_text(stream: str, info: Stdio) -> str:
    return (
        f"attach failed: {stream} of the task is log URI {_display_uri(info)}, "
        "not a FIFO; containerd's attach tried mkfifo on that string (ENOENT)."
    )


def _filesystem_mismatch(facts: _Facts) -> _Finding | None:
    for seen in facts.errors:
        layers = seen.chain.layers
        for index, layer in enumerate(layers[:-1]):
            info = _layer_info(layer)
            if layer.stream is None or info is None or info.kind != "fifo":
                continue
            if layers[index + 1].verb == "stat" and _has(seen.chain, _ENOENT):
                return _Finding(
                    "client-daemon-filesystem-mismatch",
                    f"the shim could not find the {layer.stream} FIFO {info.raw} "
                    "that the client created: client and daemon do not share that "
                    "directory (bind-mount it, or run the client on the host).",
                    (seen.event,),
                    seen.chain,
                )
    return None


def _fifo_dir_missing(facts: _Facts) -> _Finding | None:
    for seen in facts.errors:
        for layer in seen.chain.layers:
            info = _layer_info(layer)
            if layer.verb != "error creating fifo" or info is None:
                continue
            if info.kind == "fifo" and _has(seen.chain, _ENOENT):
                return _Finding(
                    "fifo-dir-missing-after-restart",
                    f"the FIFO {info.raw} is a real path, not a log URI, but its "
                    f"directory {info.fifo_dir} is gone: daemon state was lost "
                    "(for example after a restart); not the log-URI bug.",
                    (seen.event,),
                    seen.chain,
                )
    return None


def _read_only_mount(facts: _Facts) -> _Finding | None:
    for event in facts.events:
        if "EROFS" in event.text or "read-only file system" in event.text:
            chain = next(
                (seen.chain for seen in facts.errors if seen.event is event), None
            )
            return _Finding(
                "vm-mount-read-only",
                "a write failed with EROFS: the bind-mount source is on a read-only "
                "VM mount (Lima mounts the host home read-only by default).",
                (event,),
                chain,
            )
    return None


_RULES: tuple[Callable[[_Facts], _Finding | None], ...] = (
    _missing_tty,
    _missing_log_uri,
    _no_log_driver,
    _shim_log_uri,
)
_LOOKALIKE_RULES: tuple[Callable[[_Facts], _Finding | None], ...] = (
    _filesystem_mismatch,
    _fifo_dir_missing,
    _read_only_mount,
)


def _attach_from_transcript(facts: _Facts) -> str:
    attach_at = [
        index
        for index, event in enumerate(facts.events)
        if isinstance(event, PromptCommand) and _ATTACH_COMMAND.search(event.command)
    ]
    if not attach_at:
        no_prompts = not facts.commands
        for seen in facts.errors:
            if _has(seen.chain, "failed to attach") or (
                no_prompts and any(layer.stream for layer in seen.chain.layers)
            ):
                return "failed"
        return "not-run"
    start = attach_at[-1] + 1
    output = False
    for event in facts.events[start:]:
        if isinstance(event, PromptCommand):
            break
        if any(seen.event is event for seen in facts.errors):
            return "failed"
        if isinstance(event, Output) and event.text.strip():
            output = True
    return "succeeded" if output else "no-output"


def _outcome(attach: str, root_cause: str, expect: Expectation) -> str:
    if attach == "succeeded":
        return expect.if_attach_streams
    if attach == "failed" and root_cause == BUG:
        return expect.if_attach_fails
    return INCONCLUSIVE


def _evidence(events: Iterable[Event]) -> tuple[Evidence, ...]:
    seen: set[tuple[str | None, str | None, int]] = set()
    found: list[Evidence] = []
    for event in events:
        key = (event.step, event.stream, event.line)
        if key not in seen:
            seen.add(key)
            found.append(Evidence(event.line, event.text, event.step, event.stream))
    return tuple(found)


def diagnose_events(
    events: Iterable[Event],
    *,
    expect: Expectation | None = None,
    address: str | None = None,
    address_source: str = "option",
    attach: str | None = None,
    positive: bool = False,
) -> Diagnosis:
    """Diagnose already parsed events.

    ``attach`` overrides the transcript reading of whether attach ran (a run
    directory knows from its step record); ``positive`` says that something is known
    to have run, so an input without errors means ``none`` rather than ``unknown``.
    """
    expect = expect or Expectation()
    facts = _gather(events)
    if attach is None:
        attach = _attach_from_transcript(facts)
    finding: _Finding | None = None
    for rule in _RULES:
        if finding := rule(facts):
            break
    if finding is None:
        finding = _log_uri_as_fifo(facts, attach)
    if finding is None:
        for rule in _LOOKALIKE_RULES:
            if finding := rule(facts):
                break
    if finding is None:
        finding = _fallback(facts, attach, positive)
    chain = finding.chain
    if chain is None and facts.errors:
        chain = facts.errors[0].chain
    if address is None and facts.toml_address is not None:
        address, address_source = facts.toml_address, "transcript"
    stores = [use.data_store for use in facts.stdio if use.data_store]
    stores += facts.data_stores
    return Diagnosis(
        attach=attach,
        stdio=tuple(facts.stdio),
        error_chain=chain.texts if chain else (),
        root_cause=finding.category,
        explanation=finding.explanation,
        evidence=_evidence(finding.evidence),
        data_store_hash=check_data_store(
            stores[0] if stores else None, address, source=address_source
        ),
        code_path=tuple(_code_path(facts)),
        newtask_branch=facts.branch,
        outcome=_outcome(attach, finding.category, expect),
        events=tuple(facts.events),
        errors=tuple(facts.errors),
        chain_notes=chain.notes if chain else (),
        parse_errors=tuple(facts.unparsed),
        code_path_by_step=tuple(_code_path_by_step(facts)),
    )


def _fallback(facts: _Facts, attach: str, positive: bool) -> _Finding:
    if facts.errors or attach == "failed":
        first = facts.errors[0] if facts.errors else None
        what = f": {first.chain.message}" if first else ""
        return _Finding(
            "unknown",
            f"an error was seen that no rule explains{what}",
            (first.event,) if first else (),
            first.chain if first else None,
        )
    ran = positive or attach == "succeeded" or facts.commands or facts.probes
    if ran:
        text = (
            "attach streamed the task's output; nothing failed."
            if attach == "succeeded"
            else "nothing failed."
        )
        return _Finding("none", text, ())
    return _Finding(
        "unknown",
        "the input shows no command, probe or error to draw a conclusion from.",
        (),
    )


def diagnose_lines(
    lines: Iterable[str],
    *,
    expect: Expectation | None = None,
    address: str | None = None,
) -> Diagnosis:
    """Diagnose a pasted transcript (any iterable of lines, read lazily)."""
    return diagnose_events(parse_lines(lines), expect=expect, address=address)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is missing; is this a nerdlab run directory?"
        ) from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def _load_steps(directory: Path) -> list[Step]:
    steps_dir = directory / "steps"
    steps: list[Step] = []
    for path in sorted(steps_dir.glob("*.json")):
        data = _read_json(path)
        name = str(data.get("name") or path.stem.split("-", 1)[-1])

        def stream(key: str, data: dict[str, Any] = data) -> Path | None:
            value = data.get(key)
            return steps_dir / str(value) if value else None

        extra = data.get("extra") or {}
        rc = data.get("rc")
        duration = data.get("duration_s")
        steps.append(
            Step(
                name=name,
                argv=tuple(str(arg) for arg in data.get("argv") or ()),
                rc=rc if isinstance(rc, int) else None,
                started=data.get("started"),
                finished=data.get("finished"),
                duration_s=float(duration)
                if isinstance(duration, int | float)
                else None,
                timed_out=bool(data.get("timed_out")),
                ended_early=bool(data.get("ended_early")),
                stdout=stream("stdout"),
                stderr=stream("stderr"),
                stops_scenario=bool(extra.get("stops_scenario")),
                diagnose=bool(extra.get("diagnose", True)),
                measure=extra.get("measure"),
                yes_when=str(extra.get("yes_when", "rc0")),
            )
        )
    return steps


def _step_events(step: Step) -> Iterable[Event]:
    for stream, path in (("stdout", step.stdout), ("stderr", step.stderr)):
        if path is None or not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as lines:
            yield from parse_lines(lines, step=step.name, stream=stream)


def _attach_from_step(step: Step | None, events: Sequence[Event]) -> str:
    if step is None:
        return "not-run"
    if step.ended_early:
        return "succeeded"
    if step.rc is not None and step.rc != 0:
        return "failed"
    printed = any(
        isinstance(event, Output) and event.text.strip()
        for event in events
        if event.step == step.name and event.stream == "stdout"
    )
    return "succeeded" if step.rc == 0 and printed else "no-output"


# The runner's `read` steps write "==> PATH <==" before each file's first lines, as
# head(1) does; a json-file log line is Docker's {"log": ..., "stream": ..., ...}.
_HEAD_HEADER = re.compile(r"^==> (?P<path>.+?) <==$")
_JSON_LOG_PATH = re.compile(
    r"^(?P<store>.+)/containers/[^/]+/(?P<id>[^/]+)/(?P=id)-json\.log$"
)


def read_json_file_log(path: Path, address: str | None) -> JsonFileLog | None:
    """Read a scenario's json-file log snapshot; None when it holds no log."""
    found: JsonFileLog | None = None
    lines_seen = 0
    first: str | None = None
    log_path: str | None = None
    with path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            header = _HEAD_HEADER.match(line)
            if header:
                log_path = (
                    header["path"] if _JSON_LOG_PATH.match(header["path"]) else None
                )
                continue
            if log_path is None:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("stream") == "stdout":
                lines_seen += 1
                first = (
                    first if first is not None else str(record.get("log", "")).rstrip()
                )
            store = _JSON_LOG_PATH.match(log_path)
            assert store is not None
            found = JsonFileLog(
                path=log_path,
                data_store_hash=check_data_store(store["store"], address),
                stdout_lines=lines_seen,
                first_line=first,
            )
    return found


def _measure(step: Step) -> Measurement | None:
    if not step.measure:
        return None
    if step.yes_when == "output":
        lines = 0
        if step.stdout is not None and step.stdout.exists():
            with step.stdout.open(encoding="utf-8", errors="replace") as handle:
                lines = sum(1 for line in handle if line.strip())
        return Measurement(
            step.measure,
            "yes" if lines else "no",
            f"{lines} line(s) of output",
            step.name,
        )
    answer = "yes" if step.rc == 0 else "no"
    return Measurement(step.measure, answer, f"exit status {step.rc}", step.name)


def _stopped_before_attach(
    diagnosis: Diagnosis, stopper: Step, events: Sequence[Event]
) -> Diagnosis:
    """Explain a scenario that never reached attach by the step that stopped it."""
    failures = [
        event
        for event in events
        if event.step == stopper.name
        and isinstance(event, LogrusLine)
        and event.level in ("fatal", "panic", "error")
    ]
    last = failures[-1] if failures else None
    message = last.message if last is not None else f"exit status {stopper.rc}"
    chain = split_chain(message).texts if last is not None else (message,)
    return replace(
        diagnosis,
        attach="not-run",
        outcome="INCONCLUSIVE",
        root_cause="unknown",
        error_chain=tuple(chain),
        explanation=(
            f"the scenario stopped before attach: step '{stopper.name}' failed "
            f"({' '.join(stopper.argv[1:3])}): {message}"
        ),
        evidence=tuple(
            Evidence(event.line, event.text, event.step, event.stream)
            for event in failures[-1:]
        ),
    )


def diagnose_scenario(directory: Path) -> ScenarioDiagnosis:
    """Diagnose one scenario directory of a run."""
    meta = _read_json(directory / "scenario.json")
    context_path = directory / "context.json"
    context = _read_json(context_path) if context_path.exists() else {}
    steps = _load_steps(directory)
    events: list[Event] = []
    for step in steps:
        # A step marked `diagnose: false` (removing a leftover container that may
        # not exist) says nothing about the scenario.
        if step.diagnose:
            events.extend(_step_events(step))
    state_dir = directory / "state"
    state = sorted(state_dir.glob("*.txt")) if state_dir.is_dir() else []
    for path in state:
        with path.open(encoding="utf-8", errors="replace") as lines:
            events.extend(
                parse_lines(lines, step=f"state/{path.stem}", stream=STATE_STREAM)
            )
    # probes and errors from the attach step come first in the evidence
    attach_step = next((step for step in steps if step.name == "attach"), None)
    address = context.get("containerd_address")
    expect = Expectation.from_json(meta.get("expect"))
    diagnosis = diagnose_events(
        events,
        expect=expect,
        address=str(address) if address else None,
        address_source="run",
        attach=_attach_from_step(attach_step, events),
        positive=bool(steps),
    )
    json_log_path = directory / "state" / "json-file-log.txt"
    json_file_log = (
        read_json_file_log(json_log_path, str(address) if address else None)
        if json_log_path.exists()
        else None
    )
    stopper = next((step for step in steps if step.stops_scenario), None)
    if attach_step is None and stopper is not None:
        diagnosis = _stopped_before_attach(diagnosis, stopper, events)
    return ScenarioDiagnosis(
        name=str(meta.get("name") or directory.name),
        description=str(meta.get("description") or ""),
        directory=directory,
        expect=expect,
        context=context,
        steps=tuple(steps),
        state=tuple(state),
        diagnosis=diagnosis,
        json_file_log=json_file_log,
        measurements=tuple(m for m in map(_measure, steps) if m is not None),
    )


def diagnose_run(run_dir: Path, *, write: bool = False) -> RunDiagnosis:
    """Diagnose every scenario of a run directory.

    With ``write=True`` each scenario directory gets ``diagnosis.json`` and
    ``report.md`` and the run directory ``summary.json``.
    """
    meta = _read_json(run_dir / "run.json")
    names = meta.get("scenarios")
    if not isinstance(names, list):
        names = sorted(path.parent.name for path in run_dir.glob("*/scenario.json"))
    scenarios = []
    for name in names:
        directory = run_dir / str(name)
        if not directory.is_dir():
            raise ConfigError(
                f"run.json names scenario {name!r} but {directory} does not exist"
            )
        scenarios.append(diagnose_scenario(directory))
    result = RunDiagnosis(
        id=str(meta.get("id") or run_dir.name),
        directory=run_dir,
        started=meta.get("started"),
        finished=meta.get("finished"),
        target=meta.get("target"),
        nerdctl_ref=meta.get("nerdctl_ref"),
        scenarios=tuple(scenarios),
    )
    if write:
        # report renders this module's types, so it is imported only when needed
        from nerdlab.report import write_run

        write_run(result)
    return result
