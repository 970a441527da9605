"""Build nerdctl with upstream's own Makefile, and prove what was built.

The proof has two parts, both read from the binary itself: ``go version -m`` must show
containerd and fifo replaced by the local checkouts (``=> ../containerd``), and the
binary must carry every probe id that was applied. A build is skipped when the stamp
(tree of each checkout, Go version) matches the one left by the last build, so a second
``inv setup`` costs a few git calls.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from nerdlab.errors import NerdlabError
from nerdlab.sources import run_git

__all__ = [
    "BuildInfo",
    "BuildProof",
    "build_nerdctl",
    "parse_go_version_m",
    "prove",
]

BUILD_TIMEOUT_S = 1800
STAMP_NAME = ".nerdlab-build.json"


class BuildError(NerdlabError):
    """The build failed or cannot be proven."""


@dataclass(frozen=True, slots=True)
class ModuleLine:
    """A ``dep`` line of ``go version -m`` and its replacement, if any."""

    path: str
    version: str
    replaced_by: str | None
    replaced_version: str | None


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """What ``go version -m`` says about a binary."""

    go_version: str
    main: str
    deps: tuple[ModuleLine, ...]

    def dep(self, path: str) -> ModuleLine | None:
        return next((d for d in self.deps if d.path == path), None)


# `go version -m BINARY` (cmd/go, "go version -m"): a first line "BINARY: goX.Y.Z",
# then tab-indented rows: "path", "mod", "dep", "=>" (replacement of the row above),
# "build". Fields are tab-separated.
_FIRST_LINE = re.compile(r"^(?P<binary>.+): (?P<go>go\S+)$")


def parse_go_version_m(text: str) -> BuildInfo:
    """Parse ``go version -m`` output."""
    lines = text.splitlines()
    if not lines or not (first := _FIRST_LINE.match(lines[0])):
        raise BuildError(
            "go version -m printed no build information; is it a Go binary?"
        )
    main = ""
    deps: list[ModuleLine] = []
    for line in lines[1:]:
        fields = line.strip("\n").lstrip("\t").split("\t")
        kind = fields[0]
        if kind == "mod" and len(fields) > 1:
            main = fields[1]
        elif kind == "dep" and len(fields) > 2:
            deps.append(ModuleLine(fields[1], fields[2], None, None))
        elif kind == "=>" and deps and len(fields) > 1:
            last = deps.pop()
            deps.append(
                ModuleLine(
                    last.path,
                    last.version,
                    fields[1],
                    fields[2] if len(fields) > 2 else None,
                )
            )
    return BuildInfo(first["go"], main, tuple(deps))


@dataclass(frozen=True, slots=True)
class BuildProof:
    """What the binary shows: replaced modules and the probe ids it carries."""

    binary: str
    go_version: str
    replaced: dict[str, str]
    probes_found: tuple[str, ...]
    probes_missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.probes_missing


def prove(
    binary: Path,
    expected_replacements: Mapping[str, str],
    probe_ids: Iterable[str],
    *,
    go: str = "go",
) -> BuildProof:
    """Check that ``binary`` was built from the local checkouts and has the probes."""
    done = subprocess.run(
        [go, "version", "-m", str(binary)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        reason = done.stderr.strip() or "not a Go executable with build information"
        raise BuildError(f"go version -m {binary} failed: {reason}")
    info = parse_go_version_m(done.stdout)
    replaced = {}
    for module, target in expected_replacements.items():
        dep = info.dep(module)
        if dep is not None and dep.replaced_by is None and dep.version == "(devel)":
            # go.work: a workspace module shows as (devel), with no "=>" row.
            replaced[module] = target
            continue
        if dep is None or dep.replaced_by is None:
            raise BuildError(
                f"{binary} was not built against the local {module} checkout "
                f"(go version -m shows no '=> {target}'); check the wiring commit"
            )
        replaced[module] = dep.replaced_by
    data = binary.read_bytes()
    found: list[str] = []
    missing: list[str] = []
    for probe_id in probe_ids:
        (found if probe_id.encode() in data else missing).append(probe_id)
    return BuildProof(
        str(binary), info.go_version, replaced, tuple(found), tuple(missing)
    )


def _tree(repo: Path) -> str:
    return run_git(
        repo, "rev-parse", "HEAD^{tree}", timeout=60, check=False
    ).stdout.strip()


def _run_tool(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as err:
        raise BuildError(
            f"{argv[0]} is not on PATH; run setup's toolchain step first"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise BuildError(f"{' '.join(argv)} took over {timeout:.0f}s") from err


def build_nerdctl(
    nerdctl: Path, dependencies: Iterable[Path], env: Mapping[str, str]
) -> tuple[bool, float]:
    """Run upstream's ``make binaries`` unless the stamp says it is current.

    Returns (built, seconds). The old binary is removed first: from v2.1 the Makefile
    target is the file itself and would not rebuild after a source change.
    """
    binary = nerdctl / "_output" / "nerdctl"
    full_env = {**os.environ, **env}
    go_version = _run_tool(["go", "env", "GOVERSION"], nerdctl, full_env, 60).stdout
    go_version = go_version.strip()
    stamp = {
        "go": go_version,
        "trees": {str(p.name): _tree(p) for p in (nerdctl, *dependencies)},
    }
    stamp_path = nerdctl / "_output" / STAMP_NAME
    if binary.exists() and stamp_path.exists():
        try:
            if json.loads(stamp_path.read_text()) == stamp:
                return False, 0.0
        except json.JSONDecodeError:
            pass
    binary.unlink(missing_ok=True)
    started = time.monotonic()
    done = _run_tool(["make", "binaries"], nerdctl, full_env, BUILD_TIMEOUT_S)
    seconds = round(time.monotonic() - started, 1)
    (nerdctl / "_output").mkdir(exist_ok=True)
    (nerdctl / "_output" / "build.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0 or not binary.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BuildError(
            "make binaries failed in "
            f"{nerdctl} ({' | '.join(tail)}); full log: {nerdctl}/_output/build.log"
        )
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    return True, seconds


def proof_record(proof: BuildProof) -> dict[str, object]:
    """Return the proof as a JSON-ready mapping."""
    record = asdict(proof)
    record["ok"] = proof.ok
    return record
