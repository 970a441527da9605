"""The workspace: sibling checkouts ``nerdctl/``, ``containerd/`` and ``fifo/``.

Sibling layout, as in the original investigation, so that nerdctl's go.mod can name
``../containerd`` and ``../fifo``. This module prepares each checkout at the version
nerdctl's go.mod requires and stacks nerdlab's layers on them: the wiring (replace
block or go.work) on nerdctl, then one instrumentation commit per repository.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from nerdlab import gomod
from nerdlab.errors import ConfigError, GoModError, SourceError
from nerdlab.sources import (
    Checkout,
    Layer,
    base_commit,
    check_ref,
    choose_source,
    current_branch,
    ensure_layer,
    layer_digest,
    prepare_git_checkout,
    prepare_module_checkout,
    refuse_if_dirty,
    run_git,
)

__all__ = [
    "NERDCTL_MODULES",
    "REPOSITORIES",
    "checkout_dependency",
    "checkout_nerdctl",
    "instrument",
    "fix_layer",
    "nerdctl_requirements",
    "prepare_variant",
    "variant_path",
    "wire",
]

NERDCTL_MODULES = ("github.com/containerd/nerdctl/v2", "github.com/containerd/nerdctl")
REPOSITORIES = ("nerdctl", "containerd", "fifo")
WIRING_MODES = ("replace", "work")


def _is_version(ref: str) -> bool:
    try:
        gomod.parse_module_version(ref)
    except GoModError:
        return False
    return True


def checkout_nerdctl(workspace: Path, ref: str, source: str, mirrors: str) -> Checkout:
    """Prepare ``workspace/nerdctl`` at ``ref``."""
    check_ref(ref)
    kind, origin = choose_source(source, "nerdctl", mirrors)
    dest = workspace / "nerdctl"
    if kind != "module":
        return prepare_git_checkout("nerdctl", dest, ref, origin, source=kind)
    if not _is_version(ref):
        raise ConfigError(
            f"the Go module proxy serves versions, and nerdctl ref {ref!r} is not one; "
            "give a tag (v2.0.0-beta.2) or use source=git or source=mirror"
        )
    refusals = []
    why = (
        "upstream did not answer and no mirror was found, so source=auto tried the "
        "Go module proxy: "
        if source == "auto"
        else ""
    )
    for module in NERDCTL_MODULES:
        major = gomod.parse_module_version(ref).major
        if module.endswith("/v2") != (major >= 2):
            continue
        try:
            return prepare_module_checkout("nerdctl", dest, module, ref)
        except SourceError as err:
            refusals.append(why + str(err))
    raise SourceError(refusals[0] if refusals else f"no nerdctl module for {ref}")


def nerdctl_requirements(nerdctl: Path) -> dict[str, Any]:
    """Read what nerdctl's go.mod requires of containerd, fifo and Go."""
    parsed = gomod.read_go_mod(nerdctl / "go.mod")
    containerd = parsed.containerd()
    fifo = parsed.fifo()
    return {
        "module": parsed.module,
        "go": parsed.go or "1.21",
        "containerd": asdict(containerd),
        "containerd_major": gomod.parse_module_version(containerd.version).major,
        "fifo": asdict(fifo),
    }


def checkout_dependency(
    workspace: Path, name: str, module: str, version: str, source: str, mirrors: str
) -> Checkout:
    """Prepare ``workspace/<name>`` at exactly ``module@version``."""
    kind, origin = choose_source(source, name, mirrors)
    dest = workspace / name
    if kind == "module":
        return prepare_module_checkout(name, dest, module, version)
    ref = gomod.git_ref_for_version(module, version)
    checkout = prepare_git_checkout(name, dest, ref, origin, source=kind)
    return replace(checkout, version=version)


def _checkout_name(module: str) -> str:
    """Name a module by its repository (containerd for containerd/v2)."""
    return re.sub(r"/v\d+$", "", module).rsplit("/", 1)[-1]


def wire(nerdctl: Path, mode: str, dependencies: dict[str, str]) -> bool:
    """Point nerdctl's build at the sibling checkouts; return whether anything changed.

    ``dependencies`` maps a module path to a directory relative to nerdctl.
    """
    if mode not in WIRING_MODES:
        raise ConfigError(f"wiring={mode!r} is not one of {', '.join(WIRING_MODES)}")

    def apply(repo: Path) -> Sequence[str]:
        if mode == "replace":
            path = repo / "go.mod"
            path.write_text(gomod.add_replace_block(path.read_text(), dependencies))
            return ["go.mod"]
        versions = [gomod.read_go_mod(repo / "go.mod").go or "1.21"]
        for directory in dependencies.values():
            dep = gomod.read_go_mod((repo / directory / "go.mod").resolve())
            versions.append(dep.go or "1.21")
        newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
        uses = [".", *sorted(set(dependencies.values()))]
        (repo / "go.work").write_text(gomod.render_go_work(newest, uses))
        return ["go.work"]

    names = ", ".join(sorted(_checkout_name(p) for p in dependencies))
    layer = Layer(
        name="wiring",
        subject=f"nerdlab: wire local {names} checkouts ({mode})",
        digest=layer_digest(mode, *sorted(f"{k}={v}" for k, v in dependencies.items())),
        apply=apply,
    )
    return ensure_layer(nerdctl, 0, layer)


def instrument(
    repo: Path, probe_files: Sequence[Path], position: int
) -> dict[str, Any]:
    """Apply the probe sets to ``repo`` as one ``nerdlab: instrumentation`` commit."""
    from nerdlab import probes

    sets = [probes.load_probe_set(path) for path in probe_files]
    applied: list[dict[str, Any]] = []

    def apply(root: Path) -> Sequence[str]:
        touched: set[str] = set()
        for probe_set in sets:
            result = probes.apply_probes(root, probe_set)
            touched.update(str(path) for path in result.changed_files)
        return sorted(touched)

    for probe_set in sets:
        # Planning first finds a probe that matches nothing before any commit moves.
        probes.plan_probes(repo, probe_set)
    renderer = Path(probes.__file__).read_bytes()
    digest = layer_digest(renderer, *(path.read_bytes() for path in probe_files))
    layer = Layer("instrumentation", "nerdlab: instrumentation", digest, apply)
    changed = ensure_layer(repo, position, layer)
    applied = []
    for probe_set in sets:
        edits = probes.plan_probes(repo, probe_set)
        applied.append(
            {
                "probe_set": str(probe_set.path),
                "applied_ids": sorted(
                    {e.probe_id for e in edits if e.action != "skipped"}
                ),
                "skipped": [
                    {"id": e.probe_id, "reason": e.reason}
                    for e in edits
                    if e.action == "skipped"
                ],
            }
        )
    return {"changed": changed, "applied": applied}


def variant_path(nerdctl: Path, fix_id: str) -> Path:
    """Where the variant of nerdctl with one candidate fix is checked out."""
    return nerdctl.parent / f"nerdctl+{fix_id}"


def fix_layer(fix_file: Path) -> Layer:
    """The commit that applies one candidate fix, above wiring and instrumentation."""
    from nerdlab import fixes, probes

    fix = fixes.load_fix(fix_file)
    digest = layer_digest(
        Path(fixes.__file__).read_bytes(),
        Path(probes.__file__).read_bytes(),
        fix_file.read_bytes(),
    )

    def apply(root: Path) -> Sequence[str]:
        return [str(path) for path in fixes.apply_fix(root, fix).changed_files]

    return Layer(f"fix-{fix.id}", fix.subject, digest, apply)


def prepare_variant(
    nerdctl: Path,
    fix_file: Path,
    probe_files: Sequence[Path],
    mode: str,
    dependencies: dict[str, str],
) -> dict[str, Any]:
    """Check out nerdctl with one candidate fix beside the plain one, both instrumented.

    The variant is a git worktree of the nerdctl checkout, a sibling of containerd/
    and fifo/ so the same relative wiring holds, on its own branch: the same base,
    the same wiring and instrumentation layers, and the fix on top. Both builds are
    kept, so scenarios pick a binary and nothing is rebuilt back and forth.
    """
    from nerdlab import fixes

    fix = fixes.load_fix(fix_file)
    base = base_commit(nerdctl)
    branch = current_branch(nerdctl)
    variant = variant_path(nerdctl, fix.id)
    variant_branch = f"{branch}+{fix.id}"
    changed = False
    if not (variant / ".git").exists():
        if variant.exists() and any(variant.iterdir()):
            raise SourceError(f"{variant} exists and is not a worktree; move it away")
        run_git(nerdctl, "worktree", "prune")
        run_git(
            nerdctl,
            "worktree",
            "add",
            "--quiet",
            "-B",
            variant_branch,
            str(variant),
            base,
        )
        changed = True
    elif current_branch(variant) != variant_branch or base_commit(variant) != base:
        refuse_if_dirty(variant)
        run_git(variant, "checkout", "--quiet", "-B", variant_branch, base)
        changed = True
    changed |= wire(variant, mode, dependencies)
    changed |= bool(instrument(variant, probe_files, 1)["changed"])
    fixes.plan_fix(variant, fix)
    changed |= ensure_layer(variant, 2, fix_layer(fix_file))
    return {
        "changed": changed,
        "path": str(variant),
        "branch": variant_branch,
        "fix": fix.id,
        "base": base,
    }
