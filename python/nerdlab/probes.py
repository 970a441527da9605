"""Probes: trace statements described as data and placed into Go checkouts.

A probe set (``patches/probes/<repo>.yml``) names, for one repository, the
functions to instrument, where in each function a probe goes and which Go
expressions it prints. Nothing upstream is copied: a probe is anchored by a
function name (with receiver) and, for ``before``/``after``, by a short run of
identifiers that the first line of a statement must contain.

Every probe renders to one gofmt-clean Go statement that prints one line to
stderr::

    NERDLAB-PROBE t=<unix nanos> pid=<pid> id="…" mod="…" func="…" place="…" k="…"

The Go source is read by a small scanner, not a parser: strings, runes and
comments are blanked out first, then brackets are matched and each bracket
classified as a block, a function literal body, a composite literal or a
parenthesis. That is enough for gofmt-formatted code, which is what upstream
repositories hold.

Errors: a bad probe set file is a ``ConfigError``; a probe that cannot be
placed is a ``ProbeError``; a non-optional probe whose function or statement is
absent is a ``ProbeNotFound``. Planning finds every placement before anything
is written, so a failure leaves the checkout untouched.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from nerdlab.errors import ConfigError, ProbeError, ProbeNotFound

__all__ = [
    "PROBE_PREFIX",
    "ApplyResult",
    "Place",
    "PlannedEdit",
    "Probe",
    "ProbeSet",
    "Variant",
    "apply_probes",
    "gofmt_files",
    "load_probe_set",
    "load_probe_sets",
    "plan_probes",
    "render_statement",
]

PROBE_PREFIX = "NERDLAB-PROBE"
REPOS = ("nerdctl", "containerd", "fifo")
UPSTREAM_STATUS = "not-for-upstream"
# The platform the instrumented binaries are built for; files that only build
# elsewhere (foo_windows.go, //go:build windows) are never searched. nerdctl
# builds with CGO_ENABLED=0, so the cgo tag is off too.
TARGET_OS = "linux"
TARGET_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(
    platform.machine(), platform.machine()
)

# Imported under names no upstream file uses, so a probe works whether or not
# the file imports fmt/os/time and whatever local variables shadow them.
IMPORT_ALIASES = {"nerdlabfmt": "fmt", "nerdlabos": "os", "nerdlabtime": "time"}

PlaceKind = Literal["entry", "exit", "return", "before", "after"]
EditAction = Literal["insert", "present", "skipped"]


# --------------------------------------------------------------------------
# The data model


@dataclass(frozen=True, slots=True)
class Place:
    """Where in a function a probe goes; ``patterns`` for before/after only."""

    kind: PlaceKind
    patterns: tuple[str, ...] = ()

    def describe(self, pattern: str | None = None) -> str:
        """Return the place as printed in the probe line (``after:os.Stat``)."""
        if self.kind in ("before", "after"):
            return f"{self.kind}:{pattern if pattern is not None else self.patterns[0]}"
        return self.kind


@dataclass(frozen=True, slots=True)
class Variant:
    """Values to print when every name in ``params`` is in the signature."""

    params: tuple[str, ...]
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Probe:
    """One trace point: a function, a place in it and the values to print."""

    id: str
    packages: tuple[str, ...]
    func: str
    receiver: str | None
    place: Place
    values: tuple[tuple[str, str], ...]
    variants: tuple[Variant, ...] = ()
    optional: bool = False

    @property
    def qualified_func(self) -> str:
        """Return the function as printed: ``(*container).loadTask``."""
        if self.receiver:
            return f"({self.receiver}).{self.func}"
        return self.func


@dataclass(frozen=True, slots=True)
class ProbeSet:
    """The probes for one repository, as read from one YAML file."""

    path: Path
    repo: str
    modules: tuple[str, ...]
    description: str
    checked_against: tuple[str, ...]
    upstream_status: str
    probes: tuple[Probe, ...]


@dataclass(frozen=True, slots=True)
class PlannedEdit:
    """One probe statement to insert, or why a probe gets none.

    ``line`` is the 1-based line of the unmodified file that the statement is
    inserted before; it is 0 when ``action`` is not ``insert``.
    """

    probe_id: str
    action: EditAction
    path: Path | None = None
    line: int = 0
    place: str = ""
    statement: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What ``apply_probes`` did to a checkout."""

    edits: tuple[PlannedEdit, ...]
    changed_files: tuple[Path, ...]

    @property
    def inserted(self) -> tuple[PlannedEdit, ...]:
        return tuple(e for e in self.edits if e.action == "insert")

    @property
    def skipped(self) -> tuple[PlannedEdit, ...]:
        return tuple(e for e in self.edits if e.action != "insert")


# --------------------------------------------------------------------------
# Loading and validating probe sets

_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")
_VALUE_KEY = re.compile(r"[a-z][a-z0-9_]*\Z")
_GO_NAME = re.compile(r"[^\W\d]\w*\Z")
_RECEIVER_TYPE = re.compile(r"\*?[^\W\d]\w*\Z")
_RESERVED_KEYS = frozenset({"t", "pid", "id", "mod", "func", "place"})
_SET_KEYS = frozenset(
    {"description", "checked_against", "upstream_status", "repo", "module", "probes"}
)
_PROBE_KEYS = frozenset(
    {"id", "packages", "func", "receiver", "place", "values", "variants", "optional"}
)


class _Where:
    """Names a field of a probe set file in error messages."""

    def __init__(self, path: Path, field: str = "") -> None:
        self.path = path
        self.field = field

    def __truediv__(self, part: str | int) -> _Where:
        if isinstance(part, int):
            return _Where(self.path, f"{self.field}[{part}]")
        return _Where(self.path, f"{self.field}.{part}" if self.field else part)

    def error(self, problem: str) -> ConfigError:
        at = f"{self.path}: {self.field}" if self.field else str(self.path)
        return ConfigError(f"{at}: {problem}")


def _string(value: object, where: _Where) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"must be a non-empty string, got {value!r}")
    return value


def _strings(value: object, where: _Where) -> tuple[str, ...]:
    """Read a string or a non-empty list of strings."""
    if isinstance(value, str):
        return (_string(value, where),)
    if not isinstance(value, list) or not value:
        raise where.error(f"must be a string or a non-empty list, got {value!r}")
    return tuple(_string(item, where / i) for i, item in enumerate(value))


def _mapping(value: object, where: _Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(f"must be a mapping, got {type(value).__name__}")
    return value


def _values(value: object, where: _Where) -> tuple[tuple[str, str], ...]:
    pairs = []
    for key, expr in _mapping(value, where).items():
        if not isinstance(key, str) or not _VALUE_KEY.match(key):
            raise where.error(f"key {key!r} must be lower_snake_case")
        if key in _RESERVED_KEYS:
            raise where.error(f"key {key!r} is reserved for the probe line itself")
        if not isinstance(expr, str) or not expr.strip() or "\n" in expr:
            raise (where / key).error(
                f"must be a one-line Go expression as a string (quote it), got {expr!r}"
            )
        pairs.append((key, expr.strip()))
    if not pairs:
        raise where.error("must name at least one value to print")
    return tuple(pairs)


def _place(value: object, where: _Where) -> Place:
    if value in ("entry", "exit", "return"):
        return Place(value)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, patterns),) = value.items()
        if kind in ("before", "after"):
            found = _strings(patterns, where / kind)
            for pattern in found:
                if not _pattern_tokens(pattern):
                    raise (where / kind).error(f"{pattern!r} holds no Go identifier")
            return Place(kind, found)
    raise where.error(
        "must be entry, exit, return, {before: PATTERN} or {after: PATTERN}, "
        f"got {value!r}"
    )


def _variant(value: object, where: _Where) -> Variant:
    raw = _mapping(value, where)
    unknown = set(raw) - {"params", "values"}
    if unknown:
        raise where.error(f"unknown field(s) {sorted(unknown)}")
    if "params" not in raw or "values" not in raw:
        raise where.error("needs both params and values")
    params = _strings(raw["params"], where / "params")
    for i, name in enumerate(params):
        if not _GO_NAME.match(name):
            raise (where / "params" / i).error(f"{name!r} is not a Go identifier")
    return Variant(params, _values(raw["values"], where / "values"))


def _probe(value: object, where: _Where) -> Probe:
    raw = _mapping(value, where)
    unknown = set(raw) - _PROBE_KEYS
    if unknown:
        raise where.error(f"unknown field(s) {sorted(unknown)}")
    for required in ("id", "packages", "func", "place"):
        if required not in raw:
            raise where.error(f"missing required field {required!r}")
    probe_id = _string(raw["id"], where / "id")
    if not _ID.match(probe_id):
        raise (where / "id").error(f"{probe_id!r} is not a dotted probe id")
    func = _string(raw["func"], where / "func")
    if not _GO_NAME.match(func):
        raise (where / "func").error(f"{func!r} is not a Go identifier")
    receiver = None
    if "receiver" in raw:
        receiver = _string(raw["receiver"], where / "receiver").replace(" ", "")
        if not _RECEIVER_TYPE.match(receiver):
            raise (where / "receiver").error(f"{receiver!r} is not a receiver type")
    packages = _strings(raw["packages"], where / "packages")
    for i, package in enumerate(packages):
        if package.startswith("/") or ".." in Path(package).parts:
            raise (where / "packages" / i).error("must be a directory inside the repo")
    variants = tuple(
        _variant(item, where / "variants" / i)
        for i, item in enumerate(raw.get("variants") or [])
    )
    if "values" not in raw and not variants:
        raise where.error("needs values, variants or both")
    values = _values(raw["values"], where / "values") if "values" in raw else ()
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise (where / "optional").error(f"must be true or false, got {optional!r}")
    return Probe(
        id=probe_id,
        packages=packages,
        func=func,
        receiver=receiver,
        place=_place(raw["place"], where / "place"),
        values=values,
        variants=variants,
        optional=optional,
    )


def _read_data_file(
    path: Path, what: str, keys: frozenset[str]
) -> tuple[_Where, dict[str, Any], str]:
    """Read a probe set or fix: YAML, exactly ``keys`` at the top, a known repo.

    Returns where errors point, the mapping and the repository name.
    """
    where = _Where(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise where.error(f"cannot read {what}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise where.error(f"not valid YAML: {err}") from err
    raw = _mapping(raw, where)
    unknown = set(raw) - keys
    if unknown:
        raise where.error(f"unknown field(s) {sorted(unknown)}")
    for required in sorted(keys):
        if required not in raw:
            raise where.error(f"missing required field {required!r}")
    repo = _string(raw["repo"], where / "repo")
    if repo not in REPOS:
        raise (where / "repo").error(f"must be one of {', '.join(REPOS)}, got {repo!r}")
    return where, raw, repo


def _refuse_duplicate_ids(ids: Sequence[str], where: _Where, kind: str) -> None:
    """Raise for the first id that appears twice in a list of probes or edits."""
    seen: set[str] = set()
    for i, item_id in enumerate(ids):
        if item_id in seen:
            raise (where / i / "id").error(f"duplicate {kind} id {item_id!r}")
        seen.add(item_id)


def load_probe_set(path: Path | str) -> ProbeSet:
    """Read and validate one probe set file."""
    path = Path(path)
    where, raw, repo = _read_data_file(path, "probe set", _SET_KEYS)
    status = _string(raw["upstream_status"], where / "upstream_status")
    if status != UPSTREAM_STATUS:
        raise (where / "upstream_status").error(
            f"instrumentation is never sent upstream: use {UPSTREAM_STATUS!r}"
        )
    if not isinstance(raw["probes"], list) or not raw["probes"]:
        raise (where / "probes").error("must be a non-empty list")
    probes = tuple(
        _probe(item, where / "probes" / i) for i, item in enumerate(raw["probes"])
    )
    _refuse_duplicate_ids([p.id for p in probes], where / "probes", "probe")
    return ProbeSet(
        path=path,
        repo=repo,
        modules=_strings(raw["module"], where / "module"),
        description=_string(raw["description"], where / "description").strip(),
        checked_against=_strings(raw["checked_against"], where / "checked_against"),
        upstream_status=status,
        probes=probes,
    )


def load_probe_sets(directory: Path | str) -> list[ProbeSet]:
    """Read every ``*.yml`` probe set in a directory, in name order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: probe set directory does not exist")
    sets = [load_probe_set(path) for path in sorted(directory.glob("*.yml"))]
    owner: dict[str, Path] = {}
    for probe_set in sets:
        for probe in probe_set.probes:
            if probe.id in owner:
                raise ConfigError(
                    f"{probe_set.path}: probe id {probe.id!r} is also used in "
                    f"{owner[probe.id]}"
                )
            owner[probe.id] = probe_set.path
    return sets


# --------------------------------------------------------------------------
# Reading Go source
#
# Go lexical elements that may contain braces or identifier-like text which
# are not code (Go spec: "Comments", "Rune literals", "String literals").

_LINE_COMMENT = r"//[^\n]*"
_BLOCK_COMMENT = r"/\*[\s\S]*?\*/"
_INTERPRETED_STRING = r'"(?:[^"\\\n]|\\.)*"'
_RAW_STRING = r"`[^`]*`"
_RUNE = r"'(?:[^'\\\n]|\\.)+'"
_OPAQUE = re.compile(
    "|".join(
        f"(?P<{name}>{fragment})"
        for name, fragment in (
            ("line_comment", _LINE_COMMENT),
            ("block_comment", _BLOCK_COMMENT),
            ("string", _INTERPRETED_STRING),
            ("raw_string", _RAW_STRING),
            ("rune", _RUNE),
        )
    )
)

# Identifiers and keywords alike: patterns may name either (``return func``).
# The leading \b keeps the 'x7f' of 0x7f from counting.
_IDENT = re.compile(r"\b[^\W\d]\w*")

# A function declaration at the start of a line (Go spec: "Function
# declarations", "Method declarations"); the receiver's variable name and
# type parameters are optional.
_RECEIVER = r"\(\s*(?:\w+\s+)?(?P<recv>\*?\s*\w+)(?:\[[^\]]*\])?\s*\)"
_FUNC_DECL = re.compile(rf"^func\s*(?:{_RECEIVER}\s*)?(?P<name>\w+)\s*[\[(]", re.M)

# The package clause and import declarations (Go spec: "Import declarations").
_PACKAGE_CLAUSE = re.compile(r"^package\s+\w+[^\n]*\n", re.M)
_IMPORT_GROUP = re.compile(r"^import\s*\(", re.M)
_IMPORT_SINGLE = re.compile(r"^import\s+(?:[\w.]+\s+)?\"[^\n]*\n", re.M)

# A build constraint line (go help buildconstraint) and its tokens.
_GO_BUILD = re.compile(r"^//go:build\s+(?P<expr>[^\n]+)", re.M)
_BUILD_TOKEN = re.compile(r"\s*(\|\||&&|!|\(|\)|[\w.]+)")

# A line whose statement continues on the next one: it ends in a binary
# operator, a comma or a selector dot (but not in ++ or --).
_CONTINUES = re.compile(r"(?:&&|\|\||(?<![+\-])[-+*/%&|^<>=,.])\s*$")

# The brace after 'func(...) results' on one line opens a function literal.
_FUNC_LITERAL_HEAD = re.compile(r"\bfunc\b[^{}]*$")
_TYPE_BRACE_HEAD = re.compile(r"\b(?:struct|interface)\s*$")

# Known GOOS and GOARCH values, as 'go tool dist list' prints them.
_GOOS_NAMES = (
    "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd"
    " openbsd plan9 solaris wasip1 windows zos"
)
_GOARCH_NAMES = (
    "386 amd64 arm arm64 loong64 mips mips64 mips64le mipsle ppc64 ppc64le riscv64"
    " s390x wasm"
)
_GOOS = frozenset(_GOOS_NAMES.split())
_GOARCH = frozenset(_GOARCH_NAMES.split())
_UNIX = _GOOS - {"js", "nacl", "plan9", "wasip1", "windows", "zos"}

_BLOCKISH = ("block", "func")


def _mask(source: str) -> str:
    """Blank out comments and literal contents, keeping offsets and newlines."""

    def blank(match: re.Match[str]) -> str:
        text = match.group()
        if match.lastgroup in ("line_comment", "block_comment"):
            return re.sub(r"[^\n]", " ", text)
        return text[0] + re.sub(r"[^\n]", " ", text[1:-1]) + text[-1]

    return _OPAQUE.sub(blank, source)


def _identifiers(text: str) -> list[str]:
    return _IDENT.findall(text)


def _pattern_tokens(pattern: str) -> list[str]:
    """Return a pattern's identifiers; literals in it count for nothing."""
    return _identifiers(_mask(pattern))


def _contains_run(tokens: Sequence[str], run: Sequence[str]) -> bool:
    width = len(run)
    return any(
        list(tokens[i : i + width]) == list(run) for i in range(len(tokens) - width + 1)
    )


def _builds_for_target(path: Path, masked_head: str, source: str) -> bool:
    """Tell whether a .go file is compiled for TARGET_OS."""
    parts = path.stem.split("_")
    if parts[-1] == "test":
        return False
    if len(parts) >= 3 and parts[-1] in _GOARCH and parts[-2] in _GOOS:
        return parts[-2] == TARGET_OS and parts[-1] == TARGET_ARCH
    if len(parts) >= 2 and parts[-1] in _GOOS:
        return parts[-1] == TARGET_OS
    if len(parts) >= 2 and parts[-1] in _GOARCH:
        return parts[-1] == TARGET_ARCH
    # Build constraints live in comments before the package clause.
    package = _PACKAGE_CLAUSE.search(masked_head)
    header = source[: package.start()] if package else ""
    constraint = _GO_BUILD.search(header)
    return constraint is None or _eval_constraint(constraint.group("expr"))


def _eval_constraint(expr: str) -> bool:
    """Evaluate a //go:build expression for TARGET_OS and TARGET_ARCH."""
    tokens = _BUILD_TOKEN.findall(expr)
    pos = 0

    def tag(name: str) -> bool:
        if name == "unix":
            return TARGET_OS in _UNIX
        return name in (TARGET_OS, TARGET_ARCH, "gc") or name.startswith("go1.")

    def atom() -> bool:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "!":
            return not atom()
        if token == "(":
            value = either()
            pos += 1
            return value
        return tag(token)

    def both() -> bool:
        nonlocal pos
        value = atom()
        while pos < len(tokens) and tokens[pos] == "&&":
            pos += 1
            value = atom() and value
        return value

    def either() -> bool:
        nonlocal pos
        value = both()
        while pos < len(tokens) and tokens[pos] == "||":
            pos += 1
            value = both() or value
        return value

    try:
        return either()
    except IndexError:
        return True  # a malformed constraint: let the compiler judge


@dataclass(frozen=True, slots=True)
class _Line:
    """A line of a function body, with the brackets open around it."""

    index: int  # 0-based line number in the file
    code: str  # the masked text
    start: tuple[str, ...]  # kinds of brackets open at the line's start
    end: tuple[str, ...]  # ... and at its end

    @property
    def indent(self) -> str:
        return self.code[: len(self.code) - len(self.code.lstrip())]

    @property
    def tokens(self) -> list[str]:
        return _identifiers(self.code)

    @property
    def opens_block(self) -> bool:
        return (
            self.code.rstrip().endswith("{")
            and bool(self.end)
            and self.end[-1] in _BLOCKISH
        )

    @property
    def is_clause(self) -> bool:
        tokens = self.tokens
        return (
            bool(tokens)
            and tokens[0] in ("case", "default")
            and self.code.rstrip().endswith(":")
        )


@dataclass(frozen=True, slots=True)
class _Function:
    """A function found in a Go file."""

    path: Path
    signature: tuple[str, ...]  # identifiers from 'func' to the body brace
    open_line: int  # 0-based line holding the body's opening brace
    text: str  # the original source of the whole declaration
    lines: tuple[_Line, ...]  # the body lines between the braces


@dataclass(frozen=True, slots=True)
class _GoFile:
    path: Path
    source: str
    masked: str


def _read_go_file(path: Path) -> _GoFile:
    source = path.read_text(encoding="utf-8")
    return _GoFile(path, source, _mask(source))


def _classify_brace(prefix: str, stack: list[str]) -> str:
    """Tell what a '{' opens, from the masked line text before it."""
    if _FUNC_LITERAL_HEAD.search(prefix) and prefix.endswith(" "):
        return "func"
    if stack and stack[-1] not in _BLOCKISH:
        return "lit"
    if not prefix.strip():
        return "block"
    if prefix.endswith(" ") and not _TYPE_BRACE_HEAD.search(prefix):
        return "block"
    return "lit"


def _find_body_open(masked: str, start: int) -> int | None:
    """Return the offset of a declaration's body brace, scanning from start."""
    depth = 0
    pos = start
    while pos < len(masked):
        char = masked[pos]
        if char == "{" and depth == 0 and not _TYPE_BRACE_HEAD.search(masked[:pos]):
            return pos
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "\n" and depth == 0:
            return None  # a declaration without a body
        pos += 1
    return None


def _scan_body(masked: str, open_at: int) -> tuple[int, list[_Line]]:
    """Walk a body from its opening brace; return the closing offset and lines."""
    stack: list[str] = []
    lines: list[_Line] = []
    newline = masked.find("\n", open_at)
    line_start = len(masked) if newline < 0 else newline + 1
    # Anything after the brace on its own line would be a one-line body.
    if masked[open_at + 1 : line_start].strip():
        raise ProbeError("function body starts on its declaration line")
    pos = line_start
    line_index = masked.count("\n", 0, line_start)
    while pos < len(masked):
        line_end = masked.find("\n", pos)
        line_end = len(masked) if line_end < 0 else line_end
        code = masked[pos:line_end]
        start = tuple(stack)
        for col, char in enumerate(code):
            if char in "([":
                stack.append(char)
            elif char == "{":
                stack.append(_classify_brace(code[:col], stack))
            elif char in ")]}":
                if not stack:
                    if char == "}":
                        return pos + col, lines
                    raise ProbeError(f"unbalanced {char!r} on line {line_index + 1}")
                stack.pop()
        lines.append(_Line(line_index, code, start, tuple(stack)))
        pos = line_end + 1
        line_index += 1
    raise ProbeError("function body is never closed")


def _find_function(go_file: _GoFile, probe: Probe) -> _Function | None:
    for match in _FUNC_DECL.finditer(go_file.masked):
        if match.group("name") != probe.func:
            continue
        receiver = match.group("recv")
        receiver = receiver.replace(" ", "") if receiver else None
        if receiver != probe.receiver:
            continue
        open_at = _find_body_open(go_file.masked, match.end() - 1)
        if open_at is None:
            continue
        try:
            close_at, lines = _scan_body(go_file.masked, open_at)
        except ProbeError as err:
            raise ProbeError(
                f"probe {probe.id}: cannot read {probe.qualified_func} in "
                f"{go_file.path}: {err}"
            ) from err
        return _Function(
            path=go_file.path,
            signature=tuple(_identifiers(go_file.masked[match.start() : open_at])),
            open_line=go_file.masked.count("\n", 0, open_at),
            text=go_file.source[match.start() : close_at + 1],
            lines=tuple(lines),
        )
    return None


# --------------------------------------------------------------------------
# Finding where a probe goes


@dataclass(frozen=True, slots=True)
class _Spot:
    """An insertion point: before file line ``before`` (0-based), indented."""

    before: int
    indent: str
    place: str


def _statements(function: _Function) -> list[_Line]:
    """Return the body lines on which a statement or clause starts."""
    found = []
    continues = False
    for line in function.lines:
        code = line.code.strip()
        if not code:
            continue
        in_block = not line.start or line.start[-1] in _BLOCKISH
        closes_first = code[0] in "})]"
        if in_block and not continues and (not closes_first or line.opens_block):
            found.append(line)
        continues = bool(_CONTINUES.search(line.code)) and not line.is_clause
    return found


def _statement_end(function: _Function, first: _Line) -> _Line:
    """Return the last line of the statement that starts on ``first``."""
    depth = len(first.start)
    for line in function.lines:
        if line.index < first.index:
            continue
        if len(line.end) <= depth and not _CONTINUES.search(line.code):
            return line
    return function.lines[-1]


def _spots(function: _Function, probe: Probe) -> list[_Spot]:
    place = probe.place
    if place.kind in ("entry", "exit"):
        # Declarations are top-level, so their bodies are indented one tab.
        return [_Spot(function.open_line + 1, "\t", place.describe())]
    statements = _statements(function)
    if place.kind == "return":
        return [
            _Spot(line.index, line.indent, place.describe())
            for line in statements
            if line.tokens[:1] == ["return"] and "func" not in line.start
        ]
    spots = []
    for line in statements:
        tokens = line.tokens
        matches = (
            p for p in place.patterns if _contains_run(tokens, _pattern_tokens(p))
        )
        pattern = next(matches, None)
        if pattern is None:
            continue
        where = f"{function.path.name}:{line.index + 1}"
        if place.kind == "before":
            if line.code.lstrip().startswith("}") or line.is_clause:
                raise ProbeError(
                    f"probe {probe.id}: cannot go before {where}, which continues a "
                    "block or clause; anchor it after that line instead"
                )
            spots.append(_Spot(line.index, line.indent, place.describe(pattern)))
        elif line.opens_block or line.is_clause:
            spots.append(
                _Spot(line.index + 1, line.indent + "\t", place.describe(pattern))
            )
        elif line.tokens[0] in ("return", "break", "continue", "goto", "panic"):
            raise ProbeError(
                f"probe {probe.id}: nothing runs after {where}, which leaves the "
                "block; anchor it before that line instead"
            )
        else:
            end = _statement_end(function, line)
            spots.append(_Spot(end.index + 1, line.indent, place.describe(pattern)))
    return spots


def _choose_values(
    function: _Function, probe: Probe
) -> tuple[tuple[str, str], ...] | None:
    for variant in probe.variants:
        if all(param in function.signature for param in variant.params):
            return variant.values
    return probe.values or None


# --------------------------------------------------------------------------
# Rendering


def _go_string(text: str) -> str:
    """Quote text as a Go interpreted string literal."""
    if any(not char.isprintable() for char in text):
        raise ProbeError(f"cannot render {text!r}: it holds unprintable characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_statement(
    probe_id: str,
    module: str,
    func: str,
    place: str,
    values: Sequence[tuple[str, str]] | Mapping[str, str],
    indent: str = "\t",
    *,
    deferred: bool = False,
) -> str:
    """Render one probe as a gofmt-clean Go statement, ending in a newline.

    ``deferred`` wraps the print in ``defer func() { ... }()`` so that it runs
    when the function returns and sees the final named results.
    """
    pairs = list(values.items()) if isinstance(values, Mapping) else list(values)
    keys = "".join(f" {key}=%q" for key, _ in pairs)
    fmt = f"{PROBE_PREFIX} t=%d pid=%d id=%q mod=%q func=%q place=%q{keys}\\n"
    args = [
        f'"{fmt}"',
        "nerdlabtime.Now().UnixNano()",
        "nerdlabos.Getpid()",
        _go_string(probe_id),
        _go_string(module),
        _go_string(func),
        _go_string(place),
        *(f"nerdlabfmt.Sprint({expr})" for _, expr in pairs),
    ]
    call = f"nerdlabfmt.Fprintf(nerdlabos.Stderr, {', '.join(args)})"
    if deferred:
        return f"{indent}defer func() {{\n{indent}\t{call}\n{indent}}}()\n"
    return f"{indent}{call}\n"


def _add_imports(source: str) -> str:
    """Add the nerdlab import aliases that the source uses and lacks."""
    needed = [
        f'\t{alias} "{path}"\n'
        for alias, path in IMPORT_ALIASES.items()
        if f"{alias}." in source and not re.search(rf'\b{alias}\s+"{path}"', source)
    ]
    if not needed:
        return source
    masked = _mask(source)
    groups = list(_IMPORT_GROUP.finditer(masked))
    if groups:
        close = masked.index(")", groups[-1].end())
        line_start = masked.rindex("\n", 0, close) + 1
        body = masked[groups[-1].end() : line_start]
        separator = "\n" if body.strip() else ""
        return source[:line_start] + separator + "".join(needed) + source[line_start:]
    singles = list(_IMPORT_SINGLE.finditer(masked))
    anchor = singles[-1] if singles else _PACKAGE_CLAUSE.search(masked)
    if anchor is None:
        raise ProbeError("no package clause: not a Go source file")
    block = "\nimport (\n" + "".join(needed) + ")\n"
    return source[: anchor.end()] + block + source[anchor.end() :]


# --------------------------------------------------------------------------
# Planning and applying


def _module_path(repo_root: Path, probe_set: ProbeSet) -> str:
    go_mod = repo_root / "go.mod"
    try:
        text = go_mod.read_text(encoding="utf-8")
    except OSError as err:
        raise ProbeError(f"{go_mod}: cannot read go.mod: {err.strerror}") from err
    match = re.search(r"^module\s+\"?([^\s\"]+)", text, re.M)
    if match is None:
        raise ProbeError(f"{go_mod}: no module line")
    module = match.group(1)
    if module not in probe_set.modules:
        raise ProbeError(
            f"{go_mod}: module {module} is not one of {', '.join(probe_set.modules)} "
            f"that {probe_set.path} instruments; is this the right checkout?"
        )
    return module


def _candidate_files(
    repo_root: Path, probe: Probe, cache: dict[Path, _GoFile]
) -> list[_GoFile]:
    files = []
    for package in probe.packages:
        directory = repo_root / package
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.go")):
            if path not in cache:
                cache[path] = _read_go_file(path)
            go_file = cache[path]
            if _builds_for_target(path, go_file.masked, go_file.source):
                files.append(go_file)
    return files


def _missing(probe: Probe, problem: str) -> PlannedEdit:
    if not probe.optional:
        raise ProbeNotFound(f"probe {probe.id}: {problem}")
    return PlannedEdit(
        probe.id, "skipped", reason=f"optional probe not placed: {problem}"
    )


def _plan_probe(
    repo_root: Path, module: str, probe: Probe, cache: dict[Path, _GoFile]
) -> list[PlannedEdit]:
    files = _candidate_files(repo_root, probe, cache)
    dirs = ", ".join(probe.packages)
    found = [f for f in (_find_function(go_file, probe) for go_file in files) if f]
    if not found:
        return [_missing(probe, f"function {probe.qualified_func} not found in {dirs}")]
    if len(found) > 1:
        names = ", ".join(str(f.path.relative_to(repo_root)) for f in found)
        raise ProbeError(
            f"probe {probe.id}: {probe.qualified_func} is defined in {names}"
        )
    function = found[0]
    relative = function.path.relative_to(repo_root)
    if PROBE_PREFIX in function.text and _go_string(probe.id) in function.text:
        return [
            PlannedEdit(probe.id, "present", relative, reason="already instrumented")
        ]
    values = _choose_values(function, probe)
    if values is None:
        wanted = " or ".join(repr(list(v.params)) for v in probe.variants)
        return [
            _missing(
                probe,
                f"the signature of {probe.qualified_func} in {relative} has none of "
                f"the parameters {wanted}",
            )
        ]
    spots = _spots(function, probe)
    if not spots:
        return [
            _missing(
                probe,
                f"no statement for {probe.place.describe()} in {probe.qualified_func} "
                f"({relative})",
            )
        ]
    return [
        PlannedEdit(
            probe.id,
            "insert",
            relative,
            spot.before + 1,
            spot.place,
            render_statement(
                probe.id,
                module,
                probe.qualified_func,
                spot.place,
                values,
                spot.indent,
                deferred=probe.place.kind == "exit",
            ),
        )
        for spot in spots
    ]


def plan_probes(repo_root: Path, probe_set: ProbeSet) -> list[PlannedEdit]:
    """Find every placement of a probe set in a checkout, writing nothing.

    Raises ProbeNotFound for the first non-optional probe that matches
    nothing; optional ones come back with action ``skipped`` and a reason.
    """
    repo_root = Path(repo_root)
    module = _module_path(repo_root, probe_set)
    cache: dict[Path, _GoFile] = {}
    edits: list[PlannedEdit] = []
    for probe in probe_set.probes:
        edits.extend(_plan_probe(repo_root, module, probe, cache))
    return edits


def _edited_sources(repo_root: Path, edits: Iterable[PlannedEdit]) -> dict[Path, str]:
    by_file: dict[Path, list[PlannedEdit]] = {}
    for edit in edits:
        if edit.action == "insert" and edit.path is not None:
            by_file.setdefault(edit.path, []).append(edit)
    sources = {}
    for relative, file_edits in by_file.items():
        lines = (
            (repo_root / relative).read_text(encoding="utf-8").splitlines(keepends=True)
        )
        # A stable sort: statements before the same line keep the set's order.
        pending = sorted(file_edits, key=lambda e: e.line)
        out: list[str] = []
        cursor = 0
        for number, line in enumerate(lines, start=1):
            while cursor < len(pending) and pending[cursor].line == number:
                out.append(pending[cursor].statement)
                cursor += 1
            out.append(line)
        out.extend(edit.statement for edit in pending[cursor:])
        try:
            sources[relative] = _add_imports("".join(out))
        except ProbeError as err:
            raise ProbeError(f"{relative}: {err}") from err
    return sources


def apply_probes(repo_root: Path, probe_set: ProbeSet) -> ApplyResult:
    """Insert a probe set into a checkout; probes already there are left alone."""
    repo_root = Path(repo_root)
    edits = plan_probes(repo_root, probe_set)
    sources = _edited_sources(repo_root, edits)
    for relative, source in sources.items():
        (repo_root / relative).write_text(source, encoding="utf-8")
    return ApplyResult(tuple(edits), tuple(sorted(sources)))


def gofmt_files(paths: Iterable[Path], gofmt: str | None = None) -> list[Path]:
    """Run ``gofmt -w`` on files; return those it had to change."""
    tool = gofmt or shutil.which("gofmt")
    if tool is None:
        raise ProbeError("gofmt not found on PATH; install Go or pass its gofmt")
    paths = [Path(p) for p in paths]
    if not paths:
        return []
    listed = subprocess.run(
        [tool, "-l", *map(str, paths)], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        raise ProbeError(f"gofmt failed: {listed.stderr.strip()}")
    changed = [Path(line) for line in listed.stdout.splitlines() if line]
    if changed:
        subprocess.run([tool, "-w", *map(str, changed)], check=True)
    return changed
