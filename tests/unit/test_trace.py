"""The trace parser turns each line form into its event, lazily and without raising."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nerdlab import trace
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
    go_quote,
    go_unquote,
    parse_lines,
    parse_probe,
    render_probe,
)

URI = (
    "binary:///x/_output/nerdctl?_NERDCTL_INTERNAL_LOGGING="
    "%2Fvar%2Flib%2Fnerdctl%2F1935db59"
)
EXAMPLE = (
    'NERDLAB-PROBE t=1733250000123456789 pid=4242 id="fifo.openFifo.mkfifo" '
    'mod="github.com/containerd/fifo" func="openFifo" place="after:syscall.Mkfifo" '
    f'fn="{URI}" err="no such file or directory"'
)


def _one(line: str) -> Event:
    events = list(parse_lines([line]))
    assert len(events) == 1
    return events[0]


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(trace.__all__) == sorted(
        [
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
    )


def test_structured_probe_example() -> None:
    """The documented example line parses into its fixed and value fields."""
    event = _one(EXAMPLE)
    assert isinstance(event, ProbeEvent)
    assert (event.t, event.pid, event.id, event.mod, event.func, event.place) == (
        1733250000123456789,
        4242,
        "fifo.openFifo.mkfifo",
        "github.com/containerd/fifo",
        "openFifo",
        "after:syscall.Mkfifo",
    )
    assert event.values == (("fn", URI), ("err", "no such file or directory"))
    assert event.get("fn") == URI
    assert event.get("missing") is None


def test_probe_keeps_text_before_the_marker() -> None:
    """Output that shares the line with a probe stays in ``prefix``."""
    event = _one("/Hello, world/" + EXAMPLE)
    assert isinstance(event, ProbeEvent)
    assert event.prefix == "/Hello, world/"


def test_probe_receiver_is_dropped_in_short_func() -> None:
    """``(*container).loadTask`` is shown as ``loadTask``."""
    line = render_probe(
        t=1,
        pid=2,
        id="containerd.loadTask.entry",
        mod="m",
        func="(*container).loadTask",
        place="entry",
    )
    event = parse_probe(line)
    assert (event.func, event.short_func) == ("(*container).loadTask", "loadTask")


ESCAPES = [
    pytest.param("plain", id="plain"),
    pytest.param('quote " and backslash \\', id="quote-backslash"),
    pytest.param("tab\tnew\nline\rreturn", id="control"),
    pytest.param("bell\a\b\f\v", id="rare-control"),
    pytest.param("nul\x00 del\x7f", id="hex-escapes"),
    pytest.param("zero\u200bwidth and bom\ufeff", id="u-escapes"),
    pytest.param("émoji 🐳 ünïcode", id="printable-unicode"),
    pytest.param("bad byte \udcff kept", id="invalid-utf8"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("value", ESCAPES)
def test_go_quote_round_trip(value: str) -> None:
    """Quoting as Go's %q does and unquoting gives the value back."""
    assert go_unquote(go_quote(value)) == value


@pytest.mark.parametrize("value", ESCAPES)
def test_probe_line_round_trip(value: str) -> None:
    """A rendered probe line with any value parses back to the same fields."""
    line = render_probe(
        t=17,
        pid=1,
        id="x.y",
        mod="example.com/m",
        func="f",
        place="before:a.B",
        values=[("v", value), ("err", "<nil>")],
    )
    event = parse_probe(line, line=3, step="attach", stream="stderr")
    assert event.values == (("v", value), ("err", "<nil>"))
    assert (event.line, event.step, event.stream) == (3, "attach", "stderr")


@pytest.mark.parametrize(
    ("quoted", "value"),
    [
        ('"\\u00e9"', "é"),
        ('"\\U0001f433"', "🐳"),
        ('"\\xc3\\xa9"', "é"),
        ('"\\101"', "A"),
        ('"a\\"b"', 'a"b'),
    ],
    ids=["u4", "u8", "x-pair-is-utf8", "octal", "escaped-quote"],
)
def test_go_unquote_escapes(quoted: str, value: str) -> None:
    """Each Go escape form decodes."""
    assert go_unquote(quoted) == value


BROKEN = [
    pytest.param("NERDLAB-PROBE t=1 pid=2", "fields t pid id", id="too-few-fields"),
    pytest.param(
        'NERDLAB-PROBE t=x pid=2 id="a" mod="b" func="c" place="d"',
        "bare integer",
        id="t-not-a-number",
    ),
    pytest.param(
        'NERDLAB-PROBE t=1 pid=2 id="a" mod="b" func="c" place="d" v="open',
        "key=value",
        id="unterminated-quote",
    ),
    pytest.param(
        'NERDLAB-PROBE t=1 pid=2 id="a" mod="b" func="c" place="d" v="\\q"',
        "unknown escape",
        id="bad-escape",
    ),
    pytest.param(
        'NERDLAB-PROBE pid=2 t=1 id="a" mod="b" func="c" place="d"',
        "fields t pid id",
        id="wrong-order",
    ),
    pytest.param(
        'NERDLAB-PROBE t=1 pid=2 id="a" mod="b" func="c" place="d"  v=1',
        "key=value",
        id="double-space",
    ),
]


@pytest.mark.parametrize(("line", "message"), BROKEN)
def test_broken_probe_becomes_unparsed_event(line: str, message: str) -> None:
    """A broken probe line yields an UnparsedProbe whose error shows a caret."""
    event = _one(line)
    assert isinstance(event, UnparsedProbe)
    assert message in str(event.error)
    caret = event.error.caret().splitlines()
    assert caret[0] == line
    assert caret[1].endswith("^")
    assert len(caret[1]) - 1 == event.error.column


def test_caret_points_at_the_bad_escape() -> None:
    """The caret of a bad escape sits under its backslash."""
    line = 'NERDLAB-PROBE t=1 pid=2 id="a" mod="b" func="c" place="d" v="ab\\q"'
    event = _one(line)
    assert isinstance(event, UnparsedProbe)
    assert line[event.error.column :] == '\\q"'


def test_marker_inside_a_word_is_not_a_probe() -> None:
    """Only the marker followed by a space or the line end counts."""
    assert isinstance(_one("NERDLAB-PROBEX t=1"), Output)


ADHOC = [
    pytest.param("0: In loadTask", (0, "loadTask", None, None), id="counter-func"),
    pytest.param(
        f"0: In openFifo, fn: {URI}", (0, "openFifo", "fn", URI), id="key-colon-uri"
    ),
    pytest.param(
        f"In openFifos, fifos.Stdout -> {URI}",
        (None, "openFifos", "fifos.Stdout", URI),
        id="arrow",
    ),
    pytest.param(
        "In openFifos, fifos.Stdin ->",
        (None, "openFifos", "fifos.Stdin", ""),
        id="arrow-empty",
    ),
    pytest.param("4: In, NewTask", (4, "NewTask", None, None), id="comma-after-in"),
    pytest.param(
        "2: In f, msg: a: b: c", (2, "f", "msg", "a: b: c"), id="value-with-colons"
    ),
]


@pytest.mark.parametrize(("line", "fields"), ADHOC)
def test_adhoc_probe_forms(line: str, fields: tuple[object, ...]) -> None:
    """Each hand-written probe form gives counter, function, key and value."""
    event = _one(line)
    assert isinstance(event, AdHocProbe)
    assert (event.counter, event.func, event.key, event.value) == fields


@pytest.mark.parametrize(
    "line",
    ["In progress", "In the beginning, there was light", "10: Install done"],
    ids=["bare-in", "prose", "counter-not-in"],
)
def test_prose_is_not_an_adhoc_probe(line: str) -> None:
    """Ordinary sentences starting with "In" stay output."""
    assert isinstance(_one(line), Output)


LOGRUS = [
    pytest.param("FATA[0000] failed to attach", "fatal", "failed to attach", id="fata"),
    pytest.param("WARN[0003] slow", "warning", "slow", id="warn"),
    pytest.param("ERRO[0000] x: y", "error", "x: y", id="erro"),
    pytest.param("TRAC[0000] t", "trace", "t", id="trac"),
    pytest.param("DEBU[0000] d", "debug", "d", id="debu"),
    pytest.param("INFO[0000] i", "info", "i", id="info"),
    pytest.param("PANI[0000] p", "panic", "p", id="pani"),
    pytest.param(
        'time="2020-08-13T14:50:28Z" level=error msg="a: \\"b\\""',
        "error",
        'a: "b"',
        id="logfmt",
    ),
    pytest.param(
        'Aug 13 14:50:28 host dockerd[32071]: time="t" level=warning msg=bare',
        "warning",
        "bare",
        id="journald-logfmt",
    ),
]


@pytest.mark.parametrize(("line", "level", "message"), LOGRUS)
def test_logrus_forms(line: str, level: str, message: str) -> None:
    """Both logrus text forms give level and message."""
    event = _one(line)
    assert isinstance(event, LogrusLine)
    assert (event.level, event.message) == (level, message)


def test_journald_prefix_is_kept() -> None:
    """The journal prefix of a daemon line is kept apart from the record."""
    event = _one('Aug 13 14:50:28 host dockerd[32071]: time="t" level=info msg=m')
    assert isinstance(event, LogrusLine)
    assert event.journal == "Aug 13 14:50:28 host dockerd[32071]: "
    assert dict(event.fields)["time"] == "t"


def test_cli_error() -> None:
    """``ctr: msg`` is a CliError of ctr."""
    event = _one("ctr: failed to open stdout fifo: x")
    assert isinstance(event, CliError)
    assert (event.program, event.message) == ("ctr", "failed to open stdout fifo: x")


PANIC = """\
panic: provided file is not a console
goroutine 1 [running]:
github.com/containerd/console.Current()
\t/go/pkg/mod/github.com/containerd/console@v1.0.4/console.go:80 +0x94
main.main()
\t/src/main.go:12 +0x1e
[user@host x]$ echo next
"""


def test_panic_gathers_its_frames() -> None:
    """The goroutine header and frames belong to the panic, the next prompt not."""
    events = list(parse_lines(PANIC.splitlines()))
    assert [type(event) for event in events] == [GoPanic, PromptCommand]
    panic = events[0]
    assert isinstance(panic, GoPanic)
    assert panic.value == "provided file is not a console"
    assert panic.goroutine == "goroutine 1 [running]:"
    assert [(f.function, f.lineno) for f in panic.frames] == [
        ("github.com/containerd/console.Current()", 80),
        ("main.main()", 12),
    ]
    assert events[1].line == 7


def test_journald_panic_keeps_its_frames() -> None:
    """A panic logged through journald still gathers its prefixed frames."""
    prefix = "Sep 01 10:00:00 host nerdctl[99]: "
    lines = [
        f"{prefix}panic: provided file is not a console",
        f"{prefix}goroutine 1 [running]:",
        f"{prefix}github.com/containerd/console.Current()",
        f"{prefix}\t/go/console.go:80 +0x94",
        "Sep 01 10:00:01 host systemd[1]: x.service: Main process exited",
    ]
    events = list(parse_lines(lines))
    assert [type(event) for event in events] == [GoPanic, Output]
    panic = events[0]
    assert isinstance(panic, GoPanic)
    assert (panic.journal, len(panic.frames)) == (prefix, 1)


PROMPTS = [
    pytest.param("[user@host dir]$ sudo nerdctl ps", "sudo nerdctl ps", id="bracket"),
    pytest.param("root@host:~# ctr task ls", "ctr task ls", id="user-at-host"),
    pytest.param("$ nerdctl run -d alpine", "nerdctl run -d alpine", id="dollar"),
    pytest.param("# nerdctl restart x", "nerdctl restart x", id="hash"),
    pytest.param("/ #", "", id="container-shell"),
]


@pytest.mark.parametrize(("line", "command"), PROMPTS)
def test_prompt_forms(line: str, command: str) -> None:
    """Each prompt style splits off its command."""
    event = _one(line)
    assert isinstance(event, PromptCommand)
    assert event.command == command


def test_soft_wrapped_uri_is_joined() -> None:
    """A URI broken across two pasted lines becomes one message."""
    events = list(
        parse_lines(
            [
                "FATA[0000] stat binary:///usr/local",
                "/bin/nerdctl?x=1: no such file or directory: not found",
                "",
            ]
        )
    )
    assert len(events) == 2
    record = events[0]
    assert isinstance(record, LogrusLine)
    assert record.message == (
        "stat binary:///usr/local/bin/nerdctl?x=1: no such file or directory: not found"
    )
    assert events[1].line == 3


def test_error_summary_takes_its_errors() -> None:
    """nerdctl's ``N errors:`` takes the next N lines as its errors."""
    events = list(parse_lines(["FATA[0000] 2 errors:", "a: b", "c: d", "after"]))
    assert [type(event) for event in events] == [LogrusLine, Output]
    record = events[0]
    assert isinstance(record, LogrusLine)
    assert record.message == "2 errors:\na: b\nc: d"


def test_table_and_output_lines() -> None:
    """Tables and program output are Output events with their line numbers."""
    events = list(
        parse_lines(["CONTAINER ID    IMAGE", "/Hello, world/"], first_line=5)
    )
    assert [(type(e), e.line) for e in events] == [(Output, 5), (Output, 6)]


def test_parser_is_lazy() -> None:
    """The first event is yielded before the input's later lines are read."""
    read: list[str] = []

    def lines() -> Iterator[str]:
        for line in ["$ nerdctl attach x", "hello", "world"]:
            read.append(line)
            yield line + "\n"

    stream = parse_lines(lines())
    first = next(stream)
    assert isinstance(first, PromptCommand)
    assert len(read) <= 2
    assert [type(e) for e in stream] == [Output, Output]


def test_step_and_stream_are_carried() -> None:
    """Events fed from a run directory know their step and stream."""
    event = _one_with("x")
    assert (event.step, event.stream) == ("attach", "stdout")


def _one_with(line: str) -> Event:
    return next(parse_lines([line], step="attach", stream="stdout"))


@pytest.mark.parametrize(
    "blob",
    ["\x00\x01\x02", "\ufffd" * 50, "NERDLAB-PROBE", '"', "panic: ", "FATA[", "In, "],
    ids=["nul", "replacement", "bare-marker", "quote", "empty-panic", "cut", "in"],
)
def test_garbage_never_raises(blob: str) -> None:
    """Any line gives events and no exception."""
    assert list(parse_lines([blob, blob]))
