"""Read terminal transcripts and probe output as a stream of typed events.

``parse_lines`` is a generator: it looks at most a few lines ahead (to gather a
panic's goroutine frames or a message that was soft-wrapped when pasted) and never
reads its whole input first, so it can follow ``nerdctl attach`` output as it arrives.

Every line becomes exactly one event, or is folded into the event of the line it
continues. A line that carries the ``NERDLAB-PROBE`` marker but breaks the format
becomes an ``UnparsedProbe`` holding the ``TraceParseError``; the stream never raises
for bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nerdlab.chain import go_quote, go_unquote, join_wrapped_line
from nerdlab.errors import TraceParseError

__all__ = [
    "PROBE_MARKER",
    "AdHocProbe",
    "CliError",
    "Event",
    "GoFrame",
    "GoPanic",
    "LogrusLine",
    "Output",
    "ProbeEvent",
    "PromptCommand",
    "UnparsedProbe",
    "go_quote",
    "go_unquote",
    "parse_lines",
    "parse_probe",
    "render_probe",
]

PROBE_MARKER = "NERDLAB-PROBE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Where an event came from: its first line number, raw text, step and stream."""

    line: int
    text: str
    step: str | None = None
    stream: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeEvent(Event):
    """One structured ``NERDLAB-PROBE`` line printed by an inserted Go probe."""

    t: int
    pid: int
    id: str
    mod: str
    func: str
    place: str
    values: tuple[tuple[str, str], ...] = ()
    prefix: str = ""

    def get(self, key: str, default: str | None = None) -> str | None:
        """Return the last value field named ``key``, or ``default``."""
        found = default
        for name, value in self.values:
            if name == key:
                found = value
        return found

    @property
    def short_func(self) -> str:
        """The function name without receiver: ``loadTask`` for ``(*c).loadTask``."""
        return self.func.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class UnparsedProbe(Event):
    """A line with the probe marker whose fields do not follow the format."""

    error: TraceParseError


@dataclass(frozen=True, slots=True)
class AdHocProbe(Event):
    """A hand-written ``N: In func, key: value`` print added while debugging."""

    func: str
    counter: int | None = None
    key: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class LogrusLine(Event):
    """A logrus record, in the text form ``FATA[0000] msg`` or as logfmt."""

    level: str
    message: str
    form: str
    fields: tuple[tuple[str, str], ...] = ()
    journal: str = ""


@dataclass(frozen=True, slots=True)
class CliError(Event):
    """A ``prog: message`` error line as urfave/cli programs such as ctr print it."""

    program: str
    message: str


@dataclass(frozen=True, slots=True)
class GoFrame:
    """One goroutine stack frame: the call, and where it is in the source."""

    function: str
    file: str = ""
    lineno: int | None = None


@dataclass(frozen=True, slots=True)
class GoPanic(Event):
    """A Go panic message and the goroutine frames printed after it."""

    value: str
    goroutine: str = ""
    frames: tuple[GoFrame, ...] = ()
    journal: str = ""


@dataclass(frozen=True, slots=True)
class PromptCommand(Event):
    """A shell prompt and the command typed after it."""

    prompt: str
    command: str


@dataclass(frozen=True, slots=True)
class Output(Event):
    """Any other line: program output, tables, listings."""


# nerdlab's structured probe line, printed by the Go probes under patches/ with a
# fmt.Printf of the marker and then " key=%q" per field (t and pid with %d):
#   NERDLAB-PROBE t=<ns> pid=<n> id=".." mod=".." func=".." place=".." k="v" ...
# A value is a bare token or a Go-quoted string; fields are separated by one space.
_KEY = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_BARE = r'[^\s"]+'
_FIELD = re.compile(rf" (?P<key>{_KEY})=(?P<value>{_QUOTED}|{_BARE})")
_MARKER_AT = re.compile(rf"{PROBE_MARKER}(?=\s|$)")
_FIXED_KEYS = ("t", "pid", "id", "mod", "func", "place")


def parse_probe(
    text: str, *, line: int = 0, step: str | None = None, stream: str | None = None
) -> ProbeEvent:
    """Parse one line holding the probe marker; raise ``TraceParseError`` if broken."""
    marker = _MARKER_AT.search(text)
    if marker is None:
        raise TraceParseError(f"no {PROBE_MARKER} marker", text, 0)
    body = text.rstrip("\r\n")
    stop = len(body.rstrip())
    position = marker.end()
    fields: list[tuple[str, str]] = []
    while position < stop:
        match = _FIELD.match(body, position)
        if match is None:
            raise TraceParseError(
                "expected ' key=value' (a bare token or a Go-quoted string)",
                body,
                position + (1 if body[position : position + 1] == " " else 0),
            )
        raw = match["value"]
        value = (
            go_unquote(raw, line=body, offset=match.start("value"))
            if raw.startswith('"')
            else raw
        )
        fields.append((match["key"], value))
        position = match.end()
    keys = tuple(key for key, _ in fields[: len(_FIXED_KEYS)])
    if keys != _FIXED_KEYS:
        wanted = " ".join(_FIXED_KEYS)
        raise TraceParseError(
            f"a probe line starts with the fields {wanted}, found {' '.join(keys)}",
            body,
            marker.end(),
        )
    fixed = dict(fields[: len(_FIXED_KEYS)])
    numbers: dict[str, int] = {}
    for key in ("t", "pid"):
        if not fixed[key].isdigit():
            column = body.find(f" {key}=", marker.end()) + len(key) + 2
            raise TraceParseError(f"{key} must be a bare integer", body, column)
        numbers[key] = int(fixed[key])
    return ProbeEvent(
        line=line,
        text=body,
        step=step,
        stream=stream,
        t=numbers["t"],
        pid=numbers["pid"],
        id=fixed["id"],
        mod=fixed["mod"],
        func=fixed["func"],
        place=fixed["place"],
        values=tuple(fields[len(_FIXED_KEYS) :]),
        prefix=body[: marker.start()],
    )


def render_probe(
    *,
    t: int,
    pid: int,
    id: str,
    mod: str,
    func: str,
    place: str,
    values: Iterable[tuple[str, str]] = (),
) -> str:
    """Render a probe line the way the Go probes print it (used to test the parser)."""
    parts = [PROBE_MARKER, f"t={t}", f"pid={pid}"]
    fixed = (("id", id), ("mod", mod), ("func", func), ("place", place))
    parts += [f"{key}={go_quote(value)}" for key, value in (*fixed, *values)]
    return " ".join(parts)


# systemd-journald's short output format in front of a daemon's own line:
#   "Aug 13 14:50:28 host dockerd[32071]: "
_JOURNAL = (
    r"(?P<journal>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [^\s:\[]+(?:\[\d+\])?: )"
)

# logrus TextFormatter with colours off or on a terminal: a four-letter level, the
# seconds since start in brackets, then the message ("FATA[0000] failed to ...").
_LEVELS = {
    "TRAC": "trace",
    "DEBU": "debug",
    "INFO": "info",
    "WARN": "warning",
    "ERRO": "error",
    "FATA": "fatal",
    "PANI": "panic",
}
_TEXT_LEVEL = rf"(?P<level>{'|'.join(_LEVELS)})"
_LOGRUS_TEXT = re.compile(rf"^{_TEXT_LEVEL}\[(?P<elapsed>\d+)\] ?(?P<message>.*)$")

# logrus TextFormatter without a terminal (logfmt): key=value pairs, values bare or
# Go-quoted, at least level= and msg= (time="2020-08-13T..." level=error msg="...").
_LOGFMT_PAIR = re.compile(rf"(?P<key>{_KEY})=(?P<value>{_QUOTED}|{_BARE})?(?: +|$)")
_LOGFMT_START = re.compile(rf"^{_JOURNAL}?(?=(?:time|level)=)")

# urfave/cli's fatal error print, "ctr: <message>", and the same habit in other tools.
_PROGRAMS = (
    "ctr",
    "nerdctl",
    "docker",
    "crictl",
    "containerd",
    "runc",
    "buildctl",
    "lima",
    "limactl",
    "kubectl",
    "ls",
    "cat",
    "stat",
    "sudo",
)
_CLI_ERROR = re.compile(rf"^(?P<program>{'|'.join(_PROGRAMS)}): (?P<message>\S.*)$")

# Go runtime panic print: "panic: <value>", an optional " [recovered]", a blank line,
# "goroutine N [state]:", then per frame the call and a tab-indented "file:line +0x..".
_PANIC = re.compile(rf"^{_JOURNAL}?panic: (?P<value>.*)$")
_GOROUTINE = re.compile(r"^goroutine \d+ \[[^\]]*\]:$")
_FRAME_CALL = re.compile(r"^(?:created by )?[\w./\-*()\[\]{}]+(?:\(.*\))?(?: in .*)?$")
_FRAME_FILE = re.compile(r"^\t(?P<file>\S+?):(?P<lineno>\d+)(?: \+0x[0-9a-f]+)?$")

# Hand-written debugging prints seen in seed-02..05, fmt.Printf'd with a counter:
#   "0: In loadTask", "0: In openFifo, fn: <value>", "0: In, NewTask",
#   "In openFifos, fifos.Stdout -> <value>" (value may be empty or a URI)
_COUNTER = r"(?:(?P<counter>\d+): )"
_FUNC = r"(?P<func>[A-Za-z_][\w.]*(?:\(\))?)"
_ADHOC_VALUE = r"(?:, (?P<key>[\w.\[\]]+)(?::| ->)(?: (?P<value>.*))?)"
_ADHOC = re.compile(rf"^{_COUNTER}?In,? {_FUNC}{_ADHOC_VALUE}?$")

# Shell prompts: "[user@host dir]$ ", "root@host:~# ", "user@host dir $ ", "/ # ",
# "bash-5.1# " and the bare "$ " / "# " people type in bug reports.
_PROMPT_HEAD = (
    r"(?:\[[^\]\n]*\]"
    r"|[\w.\-]+@[\w.\-]+(?::[^\s#$]*| [^\s#$]+)?"
    r"|[/~][^\s#$]*"
    r"|bash-[\d.]+)"
)
_PROMPT = re.compile(rf"^(?P<prompt>(?:{_PROMPT_HEAD} ?)?[#$])(?: (?P<command>.*)|$)")

# nerdctl's multi-container summary: "%d errors:\n" then one error per line.
_SUMMARY = re.compile(r"(?:^|: )(?P<count>\d+) errors?:$")


class _Lines:
    """An iterator of numbered lines that can push lines back for a later look."""

    def __init__(self, lines: Iterable[str], first: int) -> None:
        self._source = enumerate(lines, first)
        self._pushed: list[tuple[int, str]] = []

    def next(self) -> tuple[int, str] | None:
        if self._pushed:
            return self._pushed.pop()
        for number, raw in self._source:
            return number, raw.rstrip("\r\n")
        return None

    def push(self, item: tuple[int, str]) -> None:
        self._pushed.append(item)


def parse_lines(
    lines: Iterable[str],
    *,
    step: str | None = None,
    stream: str | None = None,
    first_line: int = 1,
) -> Iterator[Event]:
    """Yield one event per line (or per wrapped record) of ``lines``, lazily."""
    source = _Lines(lines, first_line)
    while (item := source.next()) is not None:
        number, text = item
        yield _classify(number, text, source, step, stream)


def _classify(
    number: int, text: str, source: _Lines, step: str | None, stream: str | None
) -> Event:
    if _MARKER_AT.search(text):
        try:
            return parse_probe(text, line=number, step=step, stream=stream)
        except TraceParseError as error:
            return UnparsedProbe(
                line=number, text=text, step=step, stream=stream, error=error
            )
    if panic := _PANIC.match(text):
        return _read_panic(number, text, panic, source, step, stream)
    if logrus := _LOGRUS_TEXT.match(text):
        message, raw = _continued(logrus["message"], text, source)
        return LogrusLine(
            text=raw,
            level=_LEVELS[logrus["level"]],
            message=message,
            form="text",
            line=number,
            step=step,
            stream=stream,
        )
    if _LOGFMT_START.match(text) and (record := _logfmt(text, number, step, stream)):
        return record
    if cli := _CLI_ERROR.match(text):
        message, raw = _continued(cli["message"], text, source)
        return CliError(
            text=raw,
            program=cli["program"],
            message=message,
            line=number,
            step=step,
            stream=stream,
        )
    if adhoc := _ADHOC.match(text):
        counter = adhoc["counter"]
        if counter is not None or adhoc["key"] is not None:
            return AdHocProbe(
                text=text,
                func=adhoc["func"],
                counter=None if counter is None else int(counter),
                key=adhoc["key"],
                value=None if adhoc["key"] is None else (adhoc["value"] or ""),
                line=number,
                step=step,
                stream=stream,
            )
    if prompt := _PROMPT.match(text):
        return PromptCommand(
            text=text,
            prompt=prompt["prompt"],
            command=(prompt["command"] or "").strip(),
            line=number,
            step=step,
            stream=stream,
        )
    return Output(line=number, text=text, step=step, stream=stream)


def _starts_record(text: str) -> bool:
    """Whether ``text`` opens a record of its own and so continues nothing."""
    return bool(
        _MARKER_AT.search(text)
        or _PANIC.match(text)
        or _LOGRUS_TEXT.match(text)
        or _LOGFMT_START.match(text)
        or _CLI_ERROR.match(text)
        or _PROMPT.match(text)
    )


def _continued(message: str, raw: str, source: _Lines) -> tuple[str, str]:
    """Fold the lines that continue an error message into it.

    Two shapes continue on the next line: nerdctl's ``N errors:`` summary, whose
    errors follow one per line, and a long URI that a terminal or a bug tracker
    soft-wrapped when the text was pasted.
    """
    summary = _SUMMARY.search(message)
    wanted = int(summary["count"]) if summary else 0
    for _ in range(wanted):
        item = source.next()
        if item is None:
            break
        if not item[1].strip() or _starts_record(item[1]):
            source.push(item)
            break
        message = f"{message}\n{item[1]}"
        raw = f"{raw}\n{item[1]}"
    while not wanted:
        item = source.next()
        if item is None:
            break
        joined = (
            None if _starts_record(item[1]) else join_wrapped_line(message, item[1])
        )
        if joined is None:
            source.push(item)
            break
        message = joined
        raw = f"{raw}\n{item[1]}"
    return message, raw


def _read_panic(
    number: int,
    text: str,
    match: re.Match[str],
    source: _Lines,
    step: str | None,
    stream: str | None,
) -> GoPanic:
    journal = match["journal"] or ""
    raw = [text]
    goroutine = ""
    frames: list[GoFrame] = []
    while (item := source.next()) is not None:
        line = item[1]
        if journal and line.startswith(journal[:15]):
            # journald repeats its prefix on every line of the dump
            inner = re.sub(rf"^{_JOURNAL}", "", line)
        else:
            inner = line
        if _GOROUTINE.match(inner) and not goroutine:
            goroutine = inner
        elif (file := _FRAME_FILE.match(inner)) and frames and not frames[-1].file:
            frames[-1] = GoFrame(frames[-1].function, file["file"], int(file["lineno"]))
        elif inner.strip() == "" and not frames:
            pass
        elif goroutine and _FRAME_CALL.match(inner) and not _PROMPT.match(inner):
            frames.append(GoFrame(inner))
        else:
            source.push(item)
            break
        raw.append(line)
    return GoPanic(
        line=number,
        text="\n".join(raw),
        step=step,
        stream=stream,
        value=match["value"],
        goroutine=goroutine,
        frames=tuple(frames),
        journal=journal,
    )


def _logfmt(
    text: str, number: int, step: str | None, stream: str | None
) -> LogrusLine | None:
    start = _LOGFMT_START.match(text)
    assert start is not None
    journal = start["journal"] or ""
    position = start.end()
    fields: list[tuple[str, str]] = []
    while position < len(text):
        pair = _LOGFMT_PAIR.match(text, position)
        if pair is None:
            return None
        raw = pair["value"] or ""
        try:
            value = go_unquote(raw) if raw.startswith('"') else raw
        except TraceParseError:
            return None
        fields.append((pair["key"], value))
        position = pair.end()
    found = dict(fields)
    if "level" not in found or "msg" not in found:
        return None
    return LogrusLine(
        line=number,
        text=text,
        step=step,
        stream=stream,
        level=found["level"].lower(),
        message=found["msg"],
        form="logfmt",
        fields=tuple(fields),
        journal=journal,
    )
