"""Fixes: candidate changes to upstream Go code, described as data.

A fix (``patches/fixes/<name>.yml``) names, for one repository, the statements
to replace and the Go statements that replace them. Like a probe, an edit is
anchored by a function name (with receiver) and a short run of identifiers
that the first line of the statement must contain (``cio.LogURI``); the
replacement is nerdlab's own Go, never a copied upstream line. A statement
that spans several lines (a call whose arguments run on, a composite literal)
is replaced whole, up to the line where its brackets balance.

Fixes are kept apart from probes: a checkout gets them as a commit of their
own, and ``export_patch`` turns one fix, applied to bare upstream code, into a
``git format-patch`` file for a person to review and send.

Applying is idempotent. An applied edit is recognised by its marker comment
(``// nerdlab fix <edit id>`` on the line above the replacement, written unless
``marker=False``) or by the replacement text itself. A non-optional edit whose
function or statement is absent raises ``FixNotFound`` naming the fix, the
function and the pattern, so a fix that no longer applies to a version says so
by name; planning finds every edit before anything is written.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nerdlab.errors import ConfigError, ProbeError, ProbeNotFound
from nerdlab.probes import (
    _ID,
    _RECEIVER_TYPE,
    Place,
    Probe,
    _candidate_files,
    _contains_run,
    _find_function,
    _Function,
    _GoFile,
    _mapping,
    _mask,
    _pattern_tokens,
    _read_data_file,
    _refuse_duplicate_ids,
    _statement_end,
    _statements,
    _string,
    _strings,
    _Where,
)

__all__ = [
    "MARKER",
    "PATCH_AUTHOR",
    "Edit",
    "Fix",
    "FixEdit",
    "FixNotFound",
    "FixResult",
    "apply_fix",
    "export_patch",
    "load_fix",
    "load_fixes",
    "plan_fix",
]

# The comment written above each replacement in nerdlab's own checkouts.
MARKER = "// nerdlab fix"
# The author of an exported patch; the person sending it edits it first.
PATCH_AUTHOR = "nerdlab <nerdlab@localhost>"

FixAction = Literal["replace", "present", "skipped"]

_FIX_KEYS = frozenset(
    {
        "description",
        "why",
        "checked_against",
        "upstream_status",
        "repo",
        "module",
        "subject",
        "body",
        "edits",
    }
)
_EDIT_KEYS = frozenset(
    {"id", "packages", "func", "receiver", "replace", "with", "optional"}
)
_GO_NAME = re.compile(r"[^\W\d]\w*\Z")
# Upstream's commit subjects: 'area: summary', the area a package or path.
_SUBJECT = re.compile(r"[\w./-]+(?:, [\w./-]+)*: \S.*\Z")
_SUBJECT_MAX = 72


class FixNotFound(ProbeNotFound):
    """The function or statement a fix edit replaces does not exist."""


# --------------------------------------------------------------------------
# The data model


@dataclass(frozen=True, slots=True)
class Edit:
    """One statement to replace: a function, a pattern and the Go that replaces it.

    ``statements`` is the replacement without indentation: lines indented
    relative to the replaced statement with tabs, no trailing newline.
    """

    id: str
    packages: tuple[str, ...]
    func: str
    receiver: str | None
    patterns: tuple[str, ...]
    statements: str
    optional: bool = False

    @property
    def qualified_func(self) -> str:
        """Return the function as written in messages: ``(*container).loadTask``."""
        if self.receiver:
            return f"({self.receiver}).{self.func}"
        return self.func

    @property
    def marker(self) -> str:
        """Return the marker comment that labels this edit in a checkout."""
        return f"{MARKER} {self.id}"


@dataclass(frozen=True, slots=True)
class Fix:
    """A candidate fix for one repository, as read from one YAML file."""

    path: Path
    id: str
    repo: str
    modules: tuple[str, ...]
    description: str
    why: str
    checked_against: tuple[str, ...]
    upstream_status: str
    subject: str
    body: str
    edits: tuple[Edit, ...]

    @property
    def message(self) -> str:
        """Return the commit message: subject, blank line, body."""
        return f"{self.subject}\n\n{self.body}\n"


@dataclass(frozen=True, slots=True)
class FixEdit:
    """One planned replacement, or why an edit gets none.

    ``first_line`` and ``last_line`` are the 1-based lines of the unmodified
    file that ``replacement`` (indented, newline-terminated) takes the place
    of; both are 0 when ``action`` is not ``replace``.
    """

    edit_id: str
    action: FixAction
    path: Path | None = None
    first_line: int = 0
    last_line: int = 0
    pattern: str = ""
    replaced: str = ""
    replacement: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FixResult:
    """What ``apply_fix`` did to a checkout."""

    fix_id: str
    edits: tuple[FixEdit, ...]
    changed_files: tuple[Path, ...]

    @property
    def replaced(self) -> tuple[FixEdit, ...]:
        return tuple(e for e in self.edits if e.action == "replace")

    @property
    def present(self) -> tuple[FixEdit, ...]:
        return tuple(e for e in self.edits if e.action == "present")

    @property
    def skipped(self) -> tuple[FixEdit, ...]:
        return tuple(e for e in self.edits if e.action == "skipped")


# --------------------------------------------------------------------------
# Loading and validating fixes


def _statements_text(value: object, where: _Where) -> str:
    text = _string(value, where).strip("\n")
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if line.startswith(" "):
            raise where.error(
                f"line {number} is indented with spaces; the statements start at "
                "the left margin and nest with tabs, as gofmt writes them"
            )
        if line != line.rstrip():
            raise where.error(f"line {number} has trailing whitespace")
    if not lines[0].strip() or lines[0].startswith("\t"):
        raise where.error("must start with a statement at the left margin")
    depth = 0
    for char in _mask(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0:
            break
    if depth:
        raise where.error("has unbalanced brackets")
    return text


def _edit(value: object, where: _Where) -> Edit:
    raw = _mapping(value, where)
    unknown = set(raw) - _EDIT_KEYS
    if unknown:
        raise where.error(f"unknown field(s) {sorted(unknown)}")
    for required in ("id", "packages", "func", "replace", "with"):
        if required not in raw:
            raise where.error(f"missing required field {required!r}")
    edit_id = _string(raw["id"], where / "id")
    if not _ID.match(edit_id):
        raise (where / "id").error(f"{edit_id!r} is not a dotted edit id")
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
    patterns = _strings(raw["replace"], where / "replace")
    for i, pattern in enumerate(patterns):
        if not _pattern_tokens(pattern):
            at = where / "replace" / i if len(patterns) > 1 else where / "replace"
            raise at.error(f"{pattern!r} holds no Go identifier")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise (where / "optional").error(f"must be true or false, got {optional!r}")
    return Edit(
        id=edit_id,
        packages=packages,
        func=func,
        receiver=receiver,
        patterns=patterns,
        statements=_statements_text(raw["with"], where / "with"),
        optional=optional,
    )


def load_fix(path: Path | str) -> Fix:
    """Read and validate one fix file; its id is the file name without .yml."""
    path = Path(path)
    where, raw, repo = _read_data_file(path, "fix", _FIX_KEYS)
    status = _string(raw["upstream_status"], where / "upstream_status").strip()
    if status == "not-for-upstream":
        raise (where / "upstream_status").error(
            "that status is for probes; say whether and where this fix was sent "
            "('candidate; not sent upstream', or the pull request)"
        )
    subject = _string(raw["subject"], where / "subject").strip()
    if not _SUBJECT.match(subject):
        raise (where / "subject").error(
            f"{subject!r} must read 'area: summary', like upstream's commits"
        )
    if len(subject) > _SUBJECT_MAX:
        raise (where / "subject").error(
            f"is {len(subject)} characters; keep it to {_SUBJECT_MAX}"
        )
    if not isinstance(raw["edits"], list) or not raw["edits"]:
        raise (where / "edits").error("must be a non-empty list")
    edits = tuple(
        _edit(item, where / "edits" / i) for i, item in enumerate(raw["edits"])
    )
    _refuse_duplicate_ids([e.id for e in edits], where / "edits", "edit")
    return Fix(
        path=path,
        id=path.stem,
        repo=repo,
        modules=_strings(raw["module"], where / "module"),
        description=_string(raw["description"], where / "description").strip(),
        why=_string(raw["why"], where / "why").strip(),
        checked_against=_strings(raw["checked_against"], where / "checked_against"),
        upstream_status=status,
        subject=subject,
        body=_string(raw["body"], where / "body").strip(),
        edits=edits,
    )


def load_fixes(directory: Path | str) -> list[Fix]:
    """Read every ``*.yml`` fix in a directory, in name order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: fix directory does not exist")
    return [load_fix(path) for path in sorted(directory.glob("*.yml"))]


# --------------------------------------------------------------------------
# Planning


def _module_path(repo_root: Path, fix: Fix) -> str:
    go_mod = repo_root / "go.mod"
    try:
        text = go_mod.read_text(encoding="utf-8")
    except OSError as err:
        raise ProbeError(f"{go_mod}: cannot read go.mod: {err.strerror}") from err
    match = re.search(r"^module\s+\"?([^\s\"]+)", text, re.M)
    if match is None:
        raise ProbeError(f"{go_mod}: no module line")
    module = match.group(1)
    if module not in fix.modules:
        raise ProbeError(
            f"{go_mod}: module {module} is not one of {', '.join(fix.modules)} that "
            f"fix {fix.id} ({fix.path}) changes; is this the right checkout?"
        )
    return module


def _lookup(fix: Fix, edit: Edit) -> Probe:
    """Describe an edit's function the way the probe scanner looks one up."""
    return Probe(
        id=f"{fix.id}:{edit.id}",
        packages=edit.packages,
        func=edit.func,
        receiver=edit.receiver,
        place=Place("entry"),
        values=(),
    )


def _render(edit: Edit, indent: str, marker: bool) -> str:
    lines = [edit.marker] if marker else []
    lines += edit.statements.split("\n")
    return "".join(f"{indent}{line}\n" if line else "\n" for line in lines)


def _runs_of(function: _Function, source: list[str], statements: str) -> list[range]:
    """Return the file line ranges where the function body holds these statements."""
    wanted = [line.strip() for line in statements.split("\n") if line.strip()]
    body = [
        (line.index, source[line.index].strip())
        for line in function.lines
        if source[line.index].strip()
    ]
    found = []
    for start in range(len(body) - len(wanted) + 1):
        if [text for _, text in body[start : start + len(wanted)]] == wanted:
            found.append(range(body[start][0], body[start + len(wanted) - 1][0] + 1))
    return found


def _plan_edit(
    repo_root: Path, fix: Fix, edit: Edit, cache: dict[Path, _GoFile], marker: bool
) -> FixEdit:
    lookup = _lookup(fix, edit)
    patterns = " or ".join(repr(p) for p in edit.patterns)
    where = f"fix {fix.id}, edit {edit.id}"

    def missing(problem: str) -> FixEdit:
        if not edit.optional:
            raise FixNotFound(
                f"{where}: {problem}; the fix no longer applies to this version: "
                f"update {fix.path} or mark the edit optional"
            )
        return FixEdit(
            edit.id, "skipped", reason=f"optional edit not applied: {problem}"
        )

    try:
        files = _candidate_files(repo_root, lookup, cache)
        found = [f for f in (_find_function(go_file, lookup) for go_file in files) if f]
    except ProbeError as err:
        raise ProbeError(f"{where}: {err}") from err
    dirs = ", ".join(edit.packages)
    if not found:
        return missing(f"function {edit.qualified_func} not found in {dirs}")
    if len(found) > 1:
        names = ", ".join(str(f.path.relative_to(repo_root)) for f in found)
        raise ProbeError(f"{where}: {edit.qualified_func} is defined in {names}")
    function = found[0]
    relative = function.path.relative_to(repo_root)
    if re.search(rf"^\s*{re.escape(edit.marker)}\s*$", function.text, re.M):
        return FixEdit(edit.id, "present", relative, reason="marker comment found")
    source = cache[function.path].source.split("\n")
    applied = _runs_of(function, source, edit.statements)
    matches = []
    for line in _statements(function):
        pattern = next(
            (
                p
                for p in edit.patterns
                if _contains_run(line.tokens, _pattern_tokens(p))
            ),
            None,
        )
        if pattern is not None and not any(line.index in run for run in applied):
            matches.append((line, pattern))
    if not matches:
        if applied:
            return FixEdit(
                edit.id, "present", relative, reason="replacement text found"
            )
        return missing(
            f"no statement matching {patterns} in {edit.qualified_func} ({relative})"
        )
    if len(matches) > 1:
        lines = ", ".join(str(line.index + 1) for line, _ in matches)
        raise ProbeError(
            f"{where}: {patterns} matches the statements on lines {lines} of "
            f"{relative}; an edit replaces one statement, so lengthen the pattern"
        )
    line, pattern = matches[0]
    if line.code.lstrip().startswith("}") or line.is_clause:
        raise ProbeError(
            f"{where}: {relative}:{line.index + 1} continues a block or clause and "
            "cannot be replaced on its own; match the statement inside it"
        )
    end = _statement_end(function, line)
    replaced = "".join(
        source[index] + "\n" for index in range(line.index, end.index + 1)
    )
    return FixEdit(
        edit.id,
        "replace",
        relative,
        line.index + 1,
        end.index + 1,
        pattern,
        replaced,
        _render(edit, line.indent, marker),
    )


def plan_fix(repo_root: Path, fix: Fix, *, marker: bool = True) -> list[FixEdit]:
    """Find every edit of a fix in a checkout, writing nothing.

    Raises FixNotFound for the first non-optional edit that matches nothing;
    optional ones come back with action ``skipped`` and a reason. With
    ``marker=False`` the replacements carry no ``// nerdlab fix`` comment.
    """
    repo_root = Path(repo_root)
    _module_path(repo_root, fix)
    cache: dict[Path, _GoFile] = {}
    planned = [_plan_edit(repo_root, fix, edit, cache, marker) for edit in fix.edits]
    _refuse_overlaps(fix, planned)
    return planned


def _refuse_overlaps(fix: Fix, planned: Iterable[FixEdit]) -> None:
    taken: dict[tuple[Path | None, int], str] = {}
    for step in planned:
        if step.action != "replace":
            continue
        for number in range(step.first_line, step.last_line + 1):
            other = taken.setdefault((step.path, number), step.edit_id)
            if other != step.edit_id:
                raise ProbeError(
                    f"fix {fix.id}: edits {other} and {step.edit_id} both replace "
                    f"line {number} of {step.path}"
                )


# --------------------------------------------------------------------------
# Applying


def apply_fix(repo_root: Path, fix: Fix, *, marker: bool = True) -> FixResult:
    """Replace a fix's statements in a checkout; edits already there are kept.

    Everything is planned before any file is written, so an edit that does not
    apply leaves the checkout untouched.
    """
    repo_root = Path(repo_root)
    planned = plan_fix(repo_root, fix, marker=marker)
    by_file: dict[Path, list[FixEdit]] = {}
    for step in planned:
        if step.action == "replace" and step.path is not None:
            by_file.setdefault(step.path, []).append(step)
    for relative, steps in by_file.items():
        path = repo_root / relative
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for step in sorted(steps, key=lambda s: s.first_line, reverse=True):
            lines[step.first_line - 1 : step.last_line] = [step.replacement]
        path.write_text("".join(lines), encoding="utf-8")
    return FixResult(fix.id, tuple(planned), tuple(sorted(by_file)))


# --------------------------------------------------------------------------
# Exporting a patch for upstream


def export_patch(repo_root: Path, fix: Fix, base: str, out_dir: Path) -> Path:
    """Write the fix, applied alone to commit ``base``, as a format-patch file.

    A detached temporary worktree of ``repo_root`` at ``base`` gets the fix
    (without marker comments), one commit by ``PATCH_AUTHOR`` with the fix's
    subject and body, and ``git format-patch -1``. The worktree is removed
    afterwards and no branch is created. Returns the patch's path.
    """
    from nerdlab.sources import run_git

    repo_root = Path(repo_root)
    out_dir = Path(out_dir).resolve()
    resolved = run_git(
        repo_root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False
    )
    if resolved.returncode != 0:
        raise ProbeError(
            f"{repo_root}: {base!r} is not a commit; give the upstream base"
        )
    commit = resolved.stdout.strip()
    scratch = Path(tempfile.mkdtemp(prefix=f"nerdlab-fix-{fix.id}-"))
    worktree = scratch / "worktree"
    try:
        run_git(
            repo_root, "worktree", "add", "--quiet", "--detach", str(worktree), commit
        )
        result = apply_fix(worktree, fix, marker=False)
        if not result.changed_files:
            raise ProbeError(
                f"fix {fix.id} changes nothing at {base}: "
                + "; ".join(f"{e.edit_id}: {e.reason}" for e in result.edits)
            )
        run_git(worktree, "add", "--", *map(str, result.changed_files))
        run_git(
            worktree,
            "commit",
            "--quiet",
            "--no-verify",
            f"--author={PATCH_AUTHOR}",
            "-m",
            fix.message,
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        written = run_git(
            worktree, "format-patch", "-1", "--no-signature", "-o", str(out_dir), "HEAD"
        )
        return Path(written.stdout.strip().splitlines()[-1])
    finally:
        if worktree.exists():
            run_git(
                repo_root, "worktree", "remove", "--force", str(worktree), check=False
            )
        run_git(repo_root, "worktree", "prune", check=False)
        shutil.rmtree(scratch, ignore_errors=True)
