"""Error messages split into layers on ": ", never inside a path, URI or quote."""

from __future__ import annotations

import pytest

from nerdlab import chain
from nerdlab.chain import join_wrapped_line, split_chain, strip_log_prefix

URI = (
    "binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING="
    "%2Fvar%2Flib%2Fnerdctl%2F1935db59"
)
LOG = "/var/lib/nerdctl/1935db59/containers/default/abc/abc-json.log"


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(chain.__all__) == sorted(
        [
            "Chain",
            "Layer",
            "go_quote",
            "go_unquote",
            "join_wrapped_line",
            "split_chain",
            "strip_log_prefix",
        ]
    )


SPLITS = [
    pytest.param(
        "FATA[0000] failed to attach to the container: failed to open stdout fifo: "
        f"error creating fifo {URI}: no such file or directory",
        (
            "failed to attach to the container",
            "failed to open stdout fifo",
            f"error creating fifo {URI}",
            "no such file or directory",
        ),
        id="attach-bug-uri",
    ),
    pytest.param(
        "stat /run/x/y-stdout: no such file or directory: not found",
        ("stat /run/x/y-stdout", "no such file or directory", "not found"),
        id="stat-path-errdefs",
    ),
    pytest.param(
        f'failed to open "{LOG}", container is not created with `nerdctl run -d`?: '
        f"stat {LOG}: no such file or directory",
        (
            f'failed to open "{LOG}", container is not created with `nerdctl run -d`?',
            f"stat {LOG}",
            "no such file or directory",
        ),
        id="quoted-path-and-backticks",
    ),
    pytest.param(
        'failed to open "x: y", z: c',
        ('failed to open "x: y", z', "c"),
        id="colon-inside-quotes",
    ),
    pytest.param(
        "FATA[0000] 1 errors:\nfailed to start binary process with cmdArgs []: "
        "exec: no command",
        ("failed to start binary process with cmdArgs []", "exec: no command"),
        id="nerdctl-summary",
    ),
    pytest.param(
        'exec: "sh": executable file not found in $PATH',
        ('exec: "sh": executable file not found in $PATH',),
        id="os-exec-error-whole",
    ),
    pytest.param(
        'error Could not write file "/a/b.log": "EROFS: read-only file system, '
        "open '/a/b.log'\"",
        (
            'Could not write file "/a/b.log"',
            "EROFS: read-only file system, open '/a/b.log'",
        ),
        id="yarn-quoted-errno",
    ),
    pytest.param(
        'time="2020-08-13T14:50:28Z" level=error msg="a: b \\"c: d\\": e"',
        ("a", 'b "c: d"', "e"),
        id="logfmt-msg",
    ),
    pytest.param(
        "ctr: failed to open stdin fifo /tmp/c/1/x-stdin: stat /tmp/c/1/x-stdin: "
        "no such file or directory: unknown",
        (
            "failed to open stdin fifo /tmp/c/1/x-stdin",
            "stat /tmp/c/1/x-stdin",
            "no such file or directory",
            "unknown",
        ),
        id="ctr-shim-stdin",
    ),
    pytest.param("", (), id="empty"),
    pytest.param("just one layer", ("just one layer",), id="single"),
]


@pytest.mark.parametrize(("message", "layers"), SPLITS)
def test_split(message: str, layers: tuple[str, ...]) -> None:
    """Each message splits into exactly these layers, outermost first."""
    assert split_chain(message).texts == layers


ARGUMENTS = [
    pytest.param(
        f"error creating fifo {URI}", "error creating fifo", URI, None, id="fifo"
    ),
    pytest.param(
        "failed to open stdout fifo",
        "failed to open stdout fifo",
        None,
        "stdout",
        id="client-stream",
    ),
    pytest.param(
        "failed to open stdin fifo /tmp/a-stdin",
        "failed to open stdin fifo",
        "/tmp/a-stdin",
        "stdin",
        id="shim-stream-with-path",
    ),
    pytest.param("stat /a b/c", "stat", "/a b/c", None, id="stat-with-space"),
    pytest.param(
        "open /x/log-config.json", "open", "/x/log-config.json", None, id="open"
    ),
    pytest.param(
        'failed to read log config file "/x/l.json"',
        "failed to read log config file",
        "/x/l.json",
        None,
        id="log-config",
    ),
    pytest.param("no such file or directory", None, None, None, id="errno-text"),
]


@pytest.mark.parametrize(("text", "verb", "argument", "stream"), ARGUMENTS)
def test_layer_argument(
    text: str, verb: str | None, argument: str | None, stream: str | None
) -> None:
    """A layer that names a path or URI gives its verb and that argument."""
    (layer,) = split_chain(text).layers
    assert (layer.verb, layer.argument, layer.stream) == (verb, argument, stream)


def test_fmt_missing_is_kept_and_noted() -> None:
    """``%!F(MISSING)`` stays in the text and a note says what it is."""
    found = split_chain("stat binary:///b?L=%!F(MISSING)var: no such file or directory")
    assert found.layers[0].argument == "binary:///b?L=%!F(MISSING)var"
    assert "%!F(MISSING)" in found.notes[0]


def test_summary_with_several_errors() -> None:
    """Errors after the first one under a summary are kept aside."""
    found = split_chain("2 errors:\na: b\nc: d")
    assert (found.summary, found.texts, found.others) == (
        "2 errors:",
        ("a", "b"),
        ("c: d",),
    )


PREFIXES = [
    pytest.param("FATA[0000] x", "FATA[0000] ", "x", id="logrus"),
    pytest.param("ctr: x: y", "ctr: ", "x: y", id="ctr"),
    pytest.param("error Could not", "error ", "Could not", id="yarn"),
    pytest.param("error creating fifo /x", "", "error creating fifo /x", id="not-yarn"),
    pytest.param("Error: unknown flag", "Error: ", "unknown flag", id="cobra"),
    pytest.param("no prefix: x", "", "no prefix: x", id="none"),
]


@pytest.mark.parametrize(("text", "prefix", "message"), PREFIXES)
def test_strip_log_prefix(text: str, prefix: str, message: str) -> None:
    """Logging prefixes come off and are not layers."""
    assert strip_log_prefix(text) == (prefix, message)


WRAPS = [
    pytest.param(
        "stat binary:///usr/local",
        "/bin/n: x",
        "stat binary:///usr/local/bin/n: x",
        id="uri",
    ),
    pytest.param("stat /usr/local", "/bin/n: x", None, id="path-not-uri"),
    pytest.param("stat binary:///usr/local", "  indented", None, id="indented"),
    pytest.param("a: binary:///x:", "more", None, id="ends-with-colon"),
    pytest.param("stat binary:///usr/local", "", None, id="blank"),
]


@pytest.mark.parametrize(("message", "following", "joined"), WRAPS)
def test_join_wrapped_line(message: str, following: str, joined: str | None) -> None:
    """Only a line that continues a URI left open at the end is joined."""
    assert join_wrapped_line(message, following) == joined
