"""Checkouts of nerdctl, containerd and fifo, each on a branch with nerdlab's commits.

A checkout's history, as nerdlab leaves it::

    <base>                       the upstream commit (git, mirror) or a commit of the
                                 module tree (module source), tagged with its version
    nerdlab: wire ...            layer commits, each with a ``Nerdlab-Layer`` trailer
    nerdlab: instrumentation     naming the layer and a digest of what produced it

A layer whose digest still matches is kept; a changed one is rebuilt from the commit
below it, so a second run with the same inputs changes nothing. Work the user has
not committed is never touched: a dirty checkout is refused with what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nerdlab.errors import ConfigError, SourceError
from nerdlab.gomod import read_go_mod

__all__ = [
    "LAYER_TRAILER",
    "UPSTREAM_URLS",
    "Checkout",
    "Layer",
    "base_commit",
    "branch_name",
    "check_ref",
    "choose_source",
    "current_branch",
    "ensure_layer",
    "find_mirror",
    "is_dirty",
    "prepare_git_checkout",
    "prepare_module_checkout",
    "refuse_if_dirty",
    "run_git",
    "unshared_work",
]

UPSTREAM_URLS = {
    "nerdctl": "https://github.com/containerd/nerdctl.git",
    "containerd": "https://github.com/containerd/containerd.git",
    "fifo": "https://github.com/containerd/fifo.git",
}
SOURCE_KINDS = ("auto", "git", "mirror", "module")
LAYER_TRAILER = "Nerdlab-Layer"
GIT_TIMEOUT_S = 600
PROBE_TIMEOUT_S = 5

_IDENTITY = (
    "-c",
    "user.name=nerdlab",
    "-c",
    "user.email=nerdlab@localhost",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "tag.gpgsign=false",
    "-c",
    "core.hooksPath=/dev/null",
)
_HEX_REF = re.compile(r"^[0-9a-f]{7,40}$")
_PULL_REF = re.compile(r"^pr:(?P<number>\d+)$")
_SAFE_REF = re.compile(r"^(?:pr:\d+|[A-Za-z0-9][A-Za-z0-9._/+-]*)$")


@dataclass(frozen=True, slots=True)
class Checkout:
    """A prepared checkout: where, which commit, from where, whether it moved."""

    name: str
    path: str
    base: str
    branch: str
    source: str
    origin: str
    version: str
    changed: bool


@dataclass(frozen=True, slots=True)
class Layer:
    """A commit nerdlab keeps above the base: a name, a digest and how to make it."""

    name: str
    subject: str
    digest: str
    apply: Callable[[Path], Sequence[str]]


def run_git(
    repo: Path | None, *args: str, timeout: float = GIT_TIMEOUT_S, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run git with nerdlab's identity; a failure becomes a SourceError."""
    argv = ["git", *_IDENTITY]
    if repo is not None:
        argv += ["-C", str(repo)]
    argv += list(args)
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise SourceError(
            f"git {' '.join(args)} took over {timeout:.0f}s; check the network or use "
            "source=mirror"
        ) from err
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        # git's last line is often advice ("hint: …", "and the repository exists.");
        # its first fatal or error line is the reason.
        causes = [line for line in detail if line.startswith(("fatal:", "error:"))]
        reason = causes[0] if causes else (detail[-1] if detail else "")
        raise SourceError(f"git {args[0]} failed in {repo or Path.cwd()}: {reason}")
    return done


def branch_name(version: str) -> str:
    """Name the local branch that carries nerdlab's commits for one base."""
    short = version[:12] if _HEX_REF.match(version) else version
    cleaned = re.sub(r"[^A-Za-z0-9._/-]+", "-", short).strip("-./")
    return f"nerdlab/{cleaned or 'base'}"


def find_mirror(mirrors: str, name: str) -> str | None:
    """Find a repository in a mirrors directory.

    Accepted layouts: ``NAME``, ``NAME.git`` and ``containerd+NAME/repo``.
    """
    if not mirrors:
        return None
    if "://" in mirrors:
        return f"{mirrors.rstrip('/')}/{name}.git"
    root = Path(mirrors).expanduser()
    for candidate in (
        root / name,
        root / f"{name}.git",
        root / f"containerd+{name}" / "repo",
    ):
        if (candidate / "HEAD").is_file() or (candidate / ".git").exists():
            return str(candidate)
    return None


def _upstream_answers(url: str) -> bool:
    try:
        done = run_git(
            None,
            "ls-remote",
            "--exit-code",
            url,
            "HEAD",
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except SourceError:
        return False
    return done.returncode == 0


def choose_source(kind: str, name: str, mirrors: str) -> tuple[str, str]:
    """Resolve a source kind to (kind, origin).

    ``auto`` takes upstream when it answers within a few seconds, else a mirror of the
    repository when the mirrors setting holds one, else the Go module proxy.
    """
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"source={kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    if kind == "mirror":
        found = find_mirror(mirrors, name)
        if found is None:
            raise ConfigError(
                f"no mirror of {name} under {mirrors or '(unset)'}; set "
                f"INVOKE_NERDLAB_MIRRORS "
                f"to a directory holding {name}/ or {name}.git"
            )
        return "mirror", found
    if kind == "module":
        return "module", "GOPROXY"
    if kind == "git" or _upstream_answers(UPSTREAM_URLS[name]):
        return "git", UPSTREAM_URLS[name]
    found = find_mirror(mirrors, name)
    if found is not None:
        return "mirror", found
    return "module", "GOPROXY"


def is_dirty(repo: Path) -> bool:
    """Tell whether tracked files differ from HEAD (staged or not)."""
    done = run_git(repo, "status", "--porcelain", "--untracked-files=no")
    return bool(done.stdout.strip())


def refuse_if_dirty(repo: Path) -> None:
    """Refuse to touch a checkout whose tracked files differ from HEAD."""
    if is_dirty(repo):
        raise SourceError(
            f"{repo} has uncommitted changes; commit or stash them "
            f"(git -C {shlex.quote(str(repo))} stash), then run setup again"
        )


def unshared_work(repo: Path) -> list[str]:
    """Name what only this checkout holds: work a copy over it would destroy.

    Changes to tracked files, untracked files that are not ignored, stash entries,
    and commits on local branches that no tag or remote branch reaches and that are
    not nerdlab's own layers (those carry the layer trailer and are remade).
    """
    found = []
    status = run_git(repo, "status", "--porcelain", "--untracked-files=normal")
    changed = [line for line in status.stdout.splitlines() if line.strip()]
    if any(not line.startswith("??") for line in changed):
        found.append("uncommitted changes")
    if any(line.startswith("??") for line in changed):
        found.append("untracked files")
    stashes = run_git(repo, "stash", "list").stdout.strip().splitlines()
    if stashes:
        found.append(f"{len(stashes)} stash entr{'y' if len(stashes) == 1 else 'ies'}")
    commits = run_git(
        repo,
        "log",
        "--branches",
        "--not",
        "--tags",
        "--remotes",
        "--glob=refs/nerdlab/*",
        f"--format=%H %(trailers:key={LAYER_TRAILER},valueonly,separator=%x2C)",
    ).stdout.splitlines()
    own = [line.split()[0] for line in commits if len(line.split()) == 1]
    if own:
        found.append(f"{len(own)} commit(s) of your own ({own[0][:12]} …)")
    return found


def _resolve_commit(repo: Path, ref: str) -> str | None:
    done = run_git(
        repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
    )
    return done.stdout.strip() or None


def _display_name(repo: Path) -> str:
    return repo.name.removeprefix(".").removesuffix(".partial")


def check_ref(ref: str) -> str:
    """Refuse a ref that git could read as an option or that no ref can be."""
    if not _SAFE_REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        raise ConfigError(
            f"{ref!r} is not a usable ref; give a tag, branch, commit or pr:NUMBER"
        )
    return ref


def _fetch_ref(repo: Path, ref: str) -> str:
    check_ref(ref)
    pull = _PULL_REF.match(ref)
    if pull:
        local = f"refs/nerdlab/pull/{pull['number']}"
        fetched = run_git(
            repo,
            "fetch",
            "--quiet",
            "origin",
            f"+refs/pull/{pull['number']}/head:{local}",
            check=False,
        )
        if fetched.returncode != 0:
            raise SourceError(
                f"{ref}: origin has no refs/pull/{pull['number']}/head (a local mirror "
                "usually has no pull refs); use source=git where GitHub answers, or "
                "fetch the pull request into the mirror"
            )
        resolved = _resolve_commit(repo, local)
    else:
        found = _resolve_commit(repo, ref)
        if found is not None and (_HEX_REF.match(ref) or ref.startswith("v")):
            return found
        done = run_git(repo, "fetch", "--quiet", "--tags", "origin", ref, check=False)
        resolved = _resolve_commit(repo, "FETCH_HEAD") if done.returncode == 0 else None
        resolved = resolved or _resolve_commit(repo, ref)
    if resolved is None:
        origin = run_git(repo, "remote", "get-url", "origin", check=False)
        raise SourceError(
            f"ref {ref!r} not found in {_display_name(repo)} "
            f"(origin: {origin.stdout.strip()}); "
            "give a tag, branch, commit or pr:NUMBER that exists upstream"
        )
    return resolved


def _clone(origin: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    run_git(None, "clone", "--quiet", "--no-checkout", origin, str(dest))


def _layers_above(repo: Path, head: str) -> list[tuple[str, str, str]]:
    """Return (commit, layer name, digest) of nerdlab layers, top first."""
    found: list[tuple[str, str, str]] = []
    commit = head
    while True:
        body = run_git(repo, "log", "-1", "--format=%B", commit).stdout
        trailer = re.search(rf"^{LAYER_TRAILER}: (\S+) (\S+)$", body, re.MULTILINE)
        if trailer is None:
            return found
        found.append((commit, trailer[1], trailer[2]))
        parent = _resolve_commit(repo, f"{commit}^")
        if parent is None:
            return found
        commit = parent


def _is_users_work(repo: Path, base: str, branch_head: str, root: str | None) -> bool:
    """Tell whether a nerdlab branch holds commits that are neither upstream's nor ours.

    Either the commits sit on top of the requested base, or the commit below
    nerdlab's layers is reachable from no remote-tracking branch, tag or fetched ref.
    """
    on_base = (
        run_git(
            repo, "merge-base", "--is-ancestor", base, branch_head, check=False
        ).returncode
        == 0
    )
    if on_base or root is None:
        return True
    holders = run_git(
        repo,
        "for-each-ref",
        "--count=1",
        "--contains",
        root,
        "refs/remotes",
        "refs/tags",
        "refs/nerdlab",
        check=False,
    )
    return not holders.stdout.strip()


def _switch_to_branch(
    repo: Path, branch: str, base: str, *, fresh: bool = False
) -> bool:
    """Put the checkout on ``branch`` rooted at ``base``; return whether it moved."""
    head_ref = run_git(
        repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False
    ).stdout.strip()
    existing = _resolve_commit(repo, f"refs/heads/{branch}")
    if existing is not None:
        layers = _layers_above(repo, existing)
        root = _resolve_commit(repo, f"{layers[-1][0]}^") if layers else existing
        if root != base:
            if _is_users_work(repo, base, existing, root):
                raise SourceError(
                    f"branch {branch} in {repo} carries commits that are not "
                    "nerdlab's; "
                    f"rename it (git -C {repo} branch -m {branch} my-work) and run "
                    "setup again"
                )
            existing = None
    if existing is not None and head_ref == branch:
        return False
    if not fresh:
        refuse_if_dirty(repo)
    if existing is not None:
        run_git(repo, "checkout", "--quiet", branch)
    else:
        run_git(repo, "checkout", "--quiet", "-B", branch, base)
    return True


def prepare_git_checkout(
    name: str, dest: Path, ref: str, origin: str, *, source: str = "git"
) -> Checkout:
    """Clone (once) and put ``dest`` on nerdlab's branch for ``ref``."""
    branch = branch_name(ref)
    if not (dest / ".git").exists():
        if dest.exists() and any(dest.iterdir()):
            raise SourceError(
                f"{dest} exists and is not a git checkout; move it away or choose "
                "another workspace"
            )
        # A first clone is made aside and moved in whole, so an interrupted or
        # failed one never leaves a half-made checkout where the next run looks.
        staging = dest.with_name(f".{dest.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _clone(origin, staging)
            base = _fetch_ref(staging, check_ref(ref))
            _switch_to_branch(staging, branch, base, fresh=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
        return Checkout(name, str(dest), base, branch, source, origin, ref, True)
    base = _fetch_ref(dest, ref)
    changed = _switch_to_branch(dest, branch, base)
    return Checkout(name, str(dest), base, branch, source, origin, ref, changed)


def _go_mod_download(
    module: str, version: str, env: Mapping[str, str]
) -> dict[str, object]:
    argv = ["go", "mod", "download", "-json", f"{module}@{version}"]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env={**os.environ, **env},
            check=False,
        )
    except FileNotFoundError as err:
        raise SourceError(
            "go is not installed; run setup's toolchain step first"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise SourceError(f"go mod download {module}@{version} took too long") from err
    try:
        info: dict[str, object] = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        info = {}
    error = str(info.get("Error") or "").strip() or (
        done.stderr.strip() if done.returncode else ""
    )
    if error or not info.get("Dir"):
        first = error.splitlines()[0] if error else "no module directory"
        raise SourceError(
            f"the Go module proxy cannot serve {module}@{version} ({first}); "
            "set INVOKE_NERDLAB_MIRRORS to a directory of mirrors, or pass "
            "--nerdctl-ref with a version the proxy serves (for the original report, "
            "v1.7.5 pins the same containerd v1.7.14 and fifo v1.1.0)"
        )
    return info


def _version_time(info: Mapping[str, object]) -> str:
    """Return the time the proxy gives for a version (from its .info file)."""
    try:
        details = json.loads(Path(str(info.get("Info", ""))).read_text())
    except (OSError, json.JSONDecodeError):
        details = {}
    return str(details.get("Time") or info.get("Time") or "2000-01-01T00:00:00Z")


def _copy_writable(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True)
    for root, dirs, files in os.walk(dest):
        for entry in dirs + files:
            path = Path(root, entry)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
    dest.chmod(dest.stat().st_mode | stat.S_IWUSR)


def prepare_module_checkout(
    name: str,
    dest: Path,
    module: str,
    version: str,
    *,
    env: Mapping[str, str] | None = None,
) -> Checkout:
    """Make ``dest`` a git repository holding ``module@version`` from the module proxy.

    The tree is committed once as the base and tagged with the version, so that
    upstream's ``git describe`` works and nerdlab's layers are commits as with git.
    Nested modules that go.mod replaces by path are left out of module zips; they are
    fetched at the same upstream commit and put where go.mod expects them.
    """
    env = dict(env or {})
    tag = f"nerdlab-module/{version}"
    if (dest / ".git").exists():
        base = _resolve_commit(dest, f"refs/tags/{tag}")
        if base is None:
            raise SourceError(
                f"{dest} holds another source than {module}@{version}; move it away "
                "or choose another workspace"
            )
        branch = branch_name(version)
        changed = _switch_to_branch(dest, branch, base)
        return Checkout(
            name, str(dest), base, branch, "module", "GOPROXY", version, changed
        )
    if dest.exists() and any(dest.iterdir()):
        raise SourceError(f"{dest} exists and is not a git checkout; move it away")
    info = _go_mod_download(module, version, env)
    staging = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    _copy_writable(Path(str(info["Dir"])), staging)
    origin = info.get("Origin")
    commit = origin.get("Hash") if isinstance(origin, dict) else None
    for replaced in read_go_mod(staging / "go.mod").local_replaces():
        target = (staging / replaced.new).resolve()
        if target.exists() or not target.is_relative_to(staging.resolve()):
            continue
        if commit is None:
            raise SourceError(
                f"{module}@{version} replaces {replaced.old} by path, and the proxy "
                "does not say which commit to take it from; use source=git or mirror"
            )
        nested_info = _go_mod_download(replaced.old, str(commit), env)
        _copy_writable(Path(str(nested_info["Dir"])), target)
    run_git(None, "init", "--quiet", str(staging))
    run_git(staging, "add", "--all", "--force")
    stamp = _version_time(info)
    message = (
        f"nerdlab: base {module}@{version}\n\nUpstream-Commit: {commit or 'unknown'}\n"
    )
    dated = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    subprocess.run(
        [
            "git",
            *_IDENTITY,
            "-C",
            str(staging),
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            message,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, **dated},
        timeout=GIT_TIMEOUT_S,
    )
    base = run_git(staging, "rev-parse", "HEAD").stdout.strip()
    run_git(staging, "tag", tag, base)
    run_git(staging, "tag", version, base, check=False)
    branch = branch_name(version)
    run_git(staging, "checkout", "--quiet", "-B", branch, base)
    staging.rename(dest)
    return Checkout(name, str(dest), base, branch, "module", "GOPROXY", version, True)


def layer_digest(*parts: str | bytes) -> str:
    """Digest the inputs of a layer, so an unchanged layer is recognised."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()[:16]


def base_commit(repo: Path) -> str:
    """Return the commit below nerdlab's layers on the checked-out branch."""
    head = run_git(repo, "rev-parse", "HEAD").stdout.strip()
    layers = _layers_above(repo, head)
    if not layers:
        return head
    below = _resolve_commit(repo, f"{layers[-1][0]}^")
    if below is None:
        raise SourceError(f"{repo}: nerdlab's first layer has no parent commit")
    return below


def current_branch(repo: Path) -> str:
    """Return the checked-out branch, or refuse a detached HEAD."""
    name = run_git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    if not name.stdout.strip():
        raise SourceError(f"{repo} is not on a branch; run setup to put it on one")
    return name.stdout.strip()


def ensure_layer(repo: Path, position: int, layer: Layer) -> bool:
    """Make ``layer`` the nerdlab commit at ``position`` above the base.

    Layers below stay; a matching layer is kept with whatever is above it; otherwise
    the checkout is cut back to ``position`` and the layer is applied and committed.
    Returns whether anything changed.
    """
    head = run_git(repo, "rev-parse", "HEAD").stdout.strip()
    layers = list(reversed(_layers_above(repo, head)))
    if len(layers) < position:
        raise SourceError(
            f"{repo} lacks the nerdlab layers below {layer.name}; "
            "run setup from the start"
        )
    if len(layers) > position and layers[position][1:] == (layer.name, layer.digest):
        return False
    refuse_if_dirty(repo)
    if len(layers) > position:
        below = _resolve_commit(repo, f"{layers[position][0]}^")
        run_git(repo, "reset", "--quiet", "--hard", str(below))
    touched = layer.apply(repo)
    if touched:
        run_git(repo, "add", "--force", "--", *touched)
    message = f"{layer.subject}\n\n{LAYER_TRAILER}: {layer.name} {layer.digest}\n"
    run_git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
    return True
