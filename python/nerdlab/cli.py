"""The ``nerdlab`` command line.

``nerdlab trace FILE|RUNDIR|-`` reads a pasted transcript, a run directory, or
standard input as it arrives, and prints what it shows about attach.
Exit status: 0 when a diagnosis was printed, 2 for unusable input or options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rich.console import Console

from nerdlab.diagnose import (
    Expectation,
    diagnose_lines,
    diagnose_run,
    diagnose_scenario,
)
from nerdlab.errors import NerdlabError
from nerdlab.report import (
    Result,
    render_html,
    render_markdown,
    render_terminal,
    to_json,
)

__all__ = ["build_parser", "main", "trace_main"]

_FORMATS = ("terminal", "json", "markdown", "html")


def _add_trace_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="FILE|RUNDIR|-",
        help="a transcript file, a run directory (with run.json), a scenario "
        "directory, or - for standard input",
    )
    parser.add_argument(
        "--format",
        choices=_FORMATS,
        default="terminal",
        help="output form (default: terminal)",
    )
    parser.add_argument(
        "--json",
        action="store_const",
        const="json",
        dest="format",
        help="same as --format json",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="containerd address for the data store hash check of a transcript "
        "(default: the run's context.json, else /run/containerd/containerd.sock)",
    )
    parser.add_argument(
        "--fixed",
        action="store_true",
        help="read a transcript as a run of a candidate fix: attach that streams "
        "is FIXED rather than NOT REPRODUCED (default: off)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="for a run directory, write diagnosis.json and report.md per scenario "
        "and summary.json (default: off)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``nerdlab`` parser with its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="nerdlab",
        description="Reproduce and diagnose the nerdctl attach bug.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    trace = commands.add_parser(
        "trace",
        help="diagnose a transcript or a run directory",
        description="Read a transcript or run directory and say why attach failed.",
    )
    _add_trace_arguments(trace)
    return parser


def _diagnose(
    target: str, args: argparse.Namespace, stdin: TextIO
) -> tuple[Result, str]:
    expect = Expectation(if_attach_streams="FIXED") if args.fixed else Expectation()
    if target == "-":
        return diagnose_lines(stdin, expect=expect, address=args.address), "stdin"
    path = Path(target)
    if path.is_dir():
        if (path / "run.json").is_file():
            return diagnose_run(path, write=args.write), str(path)
        if (path / "scenario.json").is_file():
            return diagnose_scenario(path), str(path)
        raise NerdlabError(
            f"{path} is a directory without run.json or scenario.json; "
            "pass a run directory, a scenario directory or a transcript file"
        )
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            result = diagnose_lines(lines, expect=expect, address=args.address)
    except FileNotFoundError:
        raise NerdlabError(
            f"{target}: no such file or directory; pass a transcript, a run "
            "directory or - for standard input"
        ) from None
    except OSError as error:
        raise NerdlabError(f"{target}: cannot read: {error.strerror}") from None
    return result, path.name


def _emit(result: Result, form: str, source: str, stdout: TextIO) -> None:
    if form == "json":
        stdout.write(to_json(result))
    elif form == "markdown":
        stdout.write(render_markdown(result, source=source))
    elif form == "html":
        stdout.write(render_html(result, source=source))
    else:
        render_terminal(result, Console(file=stdout), source=source)


def trace_main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``nerdlab trace`` with ``argv`` (the words after ``trace``)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = argparse.ArgumentParser(
        prog="nerdlab trace",
        description="Read a transcript or run directory and say why attach failed.",
    )
    _add_trace_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as leave:
        return leave.code if isinstance(leave.code, int) else 2
    try:
        result, source = _diagnose(args.target, args, stdin)
    except NerdlabError as error:
        stderr.write(f"nerdlab trace: {error}\n")
        return 2
    _emit(result, args.format, source, stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nerdlab`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] == "trace":
        return trace_main(words[1:])
    parser = build_parser()
    try:
        parser.parse_args(words)
    except SystemExit as leave:
        return leave.code if isinstance(leave.code, int) else 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
