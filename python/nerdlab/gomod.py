"""Read and edit go.mod: the source of truth for which upstream versions to use.

nerdlab reads nerdctl's go.mod at the chosen ref to learn which containerd and fifo
versions it builds against, and wires local checkouts in, either with a block of
``replace`` directives that nerdlab owns (between two marker comments, so it can be
found, rewritten and removed without touching anything else) or with a ``go.work``
file beside go.mod.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nerdlab.errors import GoModError

__all__ = [
    "CONTAINERD_MODULES",
    "FIFO_MODULE",
    "GoMod",
    "ModuleVersion",
    "Requirement",
    "add_replace_block",
    "git_ref_for_version",
    "has_replace_block",
    "parse_go_mod",
    "parse_module_version",
    "remove_replace_block",
    "read_go_mod",
    "render_go_work",
]

CONTAINERD_MODULES = (
    "github.com/containerd/containerd/v2",
    "github.com/containerd/containerd",
)
FIFO_MODULE = "github.com/containerd/fifo"

REPLACE_BLOCK_BEGIN = "// nerdlab: begin local checkouts (remove this block to undo)"
REPLACE_BLOCK_END = "// nerdlab: end local checkouts"

# go.mod syntax (https://go.dev/ref/mod#go-mod-file-grammar): a directive is a verb
# followed either by one spec on the same line or by a parenthesised block of specs.
# Comments start with "//"; quoted module paths are allowed but never seen in practice.
_COMMENT = r"(?://(?P<comment>.*))?"
_MODULE_PATH = r'(?P<path>"[^"]+"|[^\s"]+)'
_VERSION = r"(?P<version>v[^\s/]+)"
_REQUIRE_SPEC = re.compile(rf"^\s*{_MODULE_PATH}\s+{_VERSION}\s*{_COMMENT}$")
_REPLACE_SPEC = re.compile(
    r"^\s*(?P<old>[^\s]+)(?:\s+(?P<old_version>v[^\s]+))?\s*=>\s*"
    r"(?P<new>[^\s]+)(?:\s+(?P<new_version>v[^\s]+))?\s*(?://.*)?$"
)
_DIRECTIVE = re.compile(
    r"^(?P<verb>module|go|toolchain|require|replace|exclude|retract)\b"
    r"\s*(?P<rest>.*)$"
)

# Go pseudo-versions (https://go.dev/ref/mod#pseudo-versions), three forms:
#   vX.0.0-yyyymmddhhmmss-abcdefabcdef
#   vX.Y.Z-pre.0.yyyymmddhhmmss-abcdefabcdef
#   vX.Y.(Z+1)-0.yyyymmddhhmmss-abcdefabcdef
_TIMESTAMP = r"(?P<timestamp>\d{14})"
_REVISION = r"(?P<revision>[0-9a-f]{12})"
_PSEUDO_SUFFIX = re.compile(rf"(?:^|[-.])(?:0\.)?{_TIMESTAMP}-{_REVISION}$")
_SEMVER = re.compile(
    r"^v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)"
    r"(?P<prerelease>-[0-9A-Za-z.-]+)?(?P<build>\+[0-9A-Za-z.-]+)?$"
)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``require`` line: a module path, its version and whether it is indirect."""

    path: str
    version: str
    indirect: bool


@dataclass(frozen=True, slots=True)
class Replacement:
    """One ``replace`` line."""

    old: str
    old_version: str | None
    new: str
    new_version: str | None


@dataclass(frozen=True, slots=True)
class GoMod:
    """What nerdlab needs from a go.mod file."""

    module: str
    go: str | None
    toolchain: str | None
    requires: tuple[Requirement, ...]
    replaces: tuple[Replacement, ...]

    def require(self, path: str) -> Requirement | None:
        """Return the requirement for ``path``, or None when go.mod does not name it."""
        return next((r for r in self.requires if r.path == path), None)

    def containerd(self) -> Requirement:
        """Return the containerd core module requirement, /v2 path first."""
        for path in CONTAINERD_MODULES:
            found = self.require(path)
            if found is not None:
                return found
        raise GoModError(
            f"go.mod of {self.module} requires no containerd module "
            f"({' or '.join(CONTAINERD_MODULES)}); pick a nerdctl ref that builds "
            "against containerd"
        )

    def fifo(self) -> Requirement:
        """Return the containerd/fifo requirement."""
        found = self.require(FIFO_MODULE)
        if found is None:
            raise GoModError(
                f"go.mod of {self.module} does not require {FIFO_MODULE}; "
                "pick a nerdctl ref that uses containerd/fifo"
            )
        return found

    def local_replaces(self) -> tuple[Replacement, ...]:
        """Return replaces that point at a directory (nested modules, for example)."""
        return tuple(r for r in self.replaces if r.new.startswith(("./", "../", "/")))


def _unquote(path: str) -> str:
    return path[1:-1] if path.startswith('"') and path.endswith('"') else path


def parse_go_mod(text: str, *, source: str = "go.mod") -> GoMod:
    """Parse go.mod text; ``source`` names the file in error messages."""
    module: str | None = None
    go: str | None = None
    toolchain: str | None = None
    requires: list[Requirement] = []
    replaces: list[Replacement] = []
    block_verb: str | None = None

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        if block_verb is not None:
            if line == ")":
                block_verb = None
                continue
            spec = line
            verb = block_verb
        else:
            match = _DIRECTIVE.match(line)
            if match is None:
                raise GoModError(f"{source}:{number}: cannot read {line!r}")
            verb, rest = match["verb"], match["rest"].strip()
            if rest.startswith("("):
                block_verb = verb
                continue
            spec = rest
        if verb == "module":
            module = _unquote(spec.split("//")[0].strip())
        elif verb == "go":
            go = spec.split("//")[0].strip()
        elif verb == "toolchain":
            toolchain = spec.split("//")[0].strip()
        elif verb == "require":
            req = _REQUIRE_SPEC.match(spec)
            if req is None:
                raise GoModError(f"{source}:{number}: cannot read require {spec!r}")
            comment = req["comment"] or ""
            requires.append(
                Requirement(
                    _unquote(req["path"]),
                    req["version"],
                    "indirect" in comment.split(";")[0].split(),
                )
            )
        elif verb == "replace":
            rep = _REPLACE_SPEC.match(spec)
            if rep is None:
                raise GoModError(f"{source}:{number}: cannot read replace {spec!r}")
            replaces.append(
                Replacement(
                    _unquote(rep["old"]),
                    rep["old_version"],
                    _unquote(rep["new"]),
                    rep["new_version"],
                )
            )
    if module is None:
        raise GoModError(f"{source} has no module directive; is this a go.mod file?")
    return GoMod(module, go, toolchain, tuple(requires), tuple(replaces))


@dataclass(frozen=True, slots=True)
class ModuleVersion:
    """A module version taken apart: what to check out in the module's repository."""

    version: str
    major: int
    base: str
    revision: str | None
    incompatible: bool

    @property
    def is_pseudo(self) -> bool:
        return self.revision is not None


def parse_module_version(version: str) -> ModuleVersion:
    """Take a Go module version apart (tag, pseudo-version, ``+incompatible``)."""
    incompatible = version.endswith("+incompatible")
    bare = version.removesuffix("+incompatible")
    semver = _SEMVER.match(bare)
    if semver is None:
        raise GoModError(f"{version!r} is not a Go module version (vMAJOR.MINOR.PATCH)")
    pseudo = _PSEUDO_SUFFIX.search(semver["prerelease"] or "")
    revision = pseudo["revision"] if pseudo else None
    return ModuleVersion(
        version=version,
        major=int(semver["major"]),
        base=bare,
        revision=revision,
        incompatible=incompatible,
    )


def git_ref_for_version(module_path: str, version: str, *, repo_path: str = "") -> str:
    """Return the git ref that holds ``module_path@version``.

    A pseudo-version names its commit; a tag is the version itself, prefixed with the
    module's directory inside the repository when it is not at the root (the
    containerd/api module is tagged ``api/v1.8.0``). The ``/vN`` suffix of the module
    path is not part of the tag.
    """
    parsed = parse_module_version(version)
    if parsed.revision is not None:
        return parsed.revision
    prefix = f"{repo_path.strip('/')}/" if repo_path.strip("/") else ""
    return f"{prefix}{parsed.base}"


def has_replace_block(text: str) -> bool:
    """Tell whether go.mod text carries nerdlab's replace block."""
    return REPLACE_BLOCK_BEGIN in text


def remove_replace_block(text: str) -> str:
    """Return go.mod text without nerdlab's replace block (unchanged when absent)."""
    if not has_replace_block(text):
        return text
    begin = text.index(REPLACE_BLOCK_BEGIN)
    end = text.find(REPLACE_BLOCK_END, begin)
    if end < 0:
        raise GoModError(
            "go.mod has nerdlab's begin marker but no end marker; "
            "fix or delete the block by hand, then run setup again"
        )
    end += len(REPLACE_BLOCK_END)
    head = text[:begin].rstrip("\n")
    tail = text[end:].lstrip("\n")
    return f"{head}\n" + (f"\n{tail}" if tail else "")


def add_replace_block(text: str, replacements: dict[str, str]) -> str:
    """Return go.mod text with nerdlab's replace block set to ``replacements``.

    ``replacements`` maps a module path to a local directory. Running it twice gives
    the same text; removing the block gives back the original.
    """
    clean = remove_replace_block(text)
    parsed = parse_go_mod(clean)
    for path in replacements:
        for existing in parsed.replaces:
            if existing.old == path:
                raise GoModError(
                    f"go.mod already replaces {path} => {existing.new}; remove that "
                    "replace or use --wiring work"
                )
    lines = [REPLACE_BLOCK_BEGIN, "replace ("]
    lines += [f"\t{path} => {target}" for path, target in sorted(replacements.items())]
    lines += [")", REPLACE_BLOCK_END]
    return clean.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"


def render_go_work(go_version: str, uses: list[str]) -> str:
    """Render a go.work file that uses the given module directories."""
    body = "\n".join(f"\t{use}" for use in uses)
    return f"go {go_version}\n\nuse (\n{body}\n)\n"


def read_go_mod(path: Path) -> GoMod:
    """Read and parse a go.mod file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise GoModError(f"cannot read {path}: {err.strerror}") from err
    return parse_go_mod(text, source=str(path))
