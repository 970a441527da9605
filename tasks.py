"""nerdlab's front door: `inv setup`, then `inv repro`.

Settings come from Invoke's own configuration, lowest to highest: the defaults below,
invoke.yaml in this directory, INVOKE_NERDLAB_* environment variables (for example
INVOKE_NERDLAB_MIRRORS=/srv/mirrors), then command-line flags.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, task

PROJECT = Path(__file__).resolve().parent
sys.path.insert(0, str(PROJECT / "python"))

from nerdlab.errors import NerdlabError  # noqa: E402

DEFAULTS: dict[str, Any] = {
    "nerdctl_ref": "v2.0.0-beta.2",
    "source": "auto",
    "mirrors": "",
    "workspace": "workspace",
    "runs": "runs",
    "target": "local",
    "wiring": "replace",
    "containerd_from": "auto",
    "attach_timeout": 10,
    "image": "alpine",
    "pull": True,
    "scenarios": ["detached-attach"],
}


def _settings(c: Context) -> dict[str, Any]:
    return {**DEFAULTS, **dict(c.config.get("nerdlab", {}))}


def _path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT / path


def _mirrors(settings: dict[str, Any]) -> str:
    """Return the mirrors directory: the setting, else .mirror beside the clone."""
    if settings["mirrors"]:
        return str(_path(str(settings["mirrors"])))
    beside = PROJECT.parent / ".mirror"
    return str(beside) if beside.is_dir() else ""


def _become_args() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") is None:
        raise Exit("nerdlab needs root for its containerd: run as root or install sudo")
    return [] if os.system("sudo -n true 2>/dev/null") == 0 else ["--ask-become-pass"]


@contextlib.contextmanager
def _workspace_lock(workspace: Path) -> Iterator[None]:
    """Hold the workspace for one setup, repro or clean at a time."""
    workspace.mkdir(parents=True, exist_ok=True)
    with (workspace / ".nerdlab.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Exit(
                f"another nerdlab task is using {workspace}; wait for it to finish"
            ) from None
        yield


def _check_workspace(workspace: Path) -> None:
    """Refuse before anything moves: a path make cannot build in, or dirty checkouts."""
    if any(ch.isspace() or ch in "'\"$`\\" for ch in str(workspace)):
        raise Exit(
            f"workspace {str(workspace)!r} has spaces or quotes, which upstream's "
            "Makefile cannot build in; choose another --workspace"
        )
    from nerdlab.sources import refuse_if_dirty

    if not workspace.is_dir():
        return
    for checkout in sorted(workspace.iterdir()):
        if (checkout / ".git").exists():
            try:
                refuse_if_dirty(checkout)
            except NerdlabError as err:
                raise Exit(f"{err}; nothing was changed") from err


def _playbook(c: Context, name: str, extra: dict[str, Any], dry_run: bool) -> None:
    settings = _settings(c)
    if settings["target"] != "local":
        raise Exit(
            f"target {settings['target']!r} is not supported yet; use --target local"
        )
    variables = {
        "nerdlab_project_dir": str(PROJECT),
        "nerdlab_workspace": str(_path(settings["workspace"])),
        "nerdlab_runs_dir": str(_path(settings["runs"])),
        "nerdlab_become": os.geteuid() != 0,
        **extra,
    }
    with tempfile.NamedTemporaryFile(
        "w", suffix=".json", prefix="nerdlab-", delete=False
    ) as handle:
        json.dump(variables, handle)
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(PROJECT / "playbooks" / f"{name}.yml"),
        "--extra-vars",
        f"@{handle.name}",
        *_become_args(),
    ]
    if dry_run:
        os.unlink(handle.name)
        print(shlex.join(argv))
        print(json.dumps(variables, indent=2))
        return
    env = {"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}
    started = time.monotonic()
    try:
        with _workspace_lock(_path(settings["workspace"])):
            result = c.run(shlex.join(argv), env=env, warn=True, pty=False)
    except KeyboardInterrupt:
        raise Exit(
            f"{name} interrupted; run it again: finished steps are kept, a half-made "
            "clone is discarded"
        ) from None
    finally:
        os.unlink(handle.name)
    took = time.monotonic() - started
    if result is None or result.failed:
        raise Exit(
            f"{name} failed after {took:.0f}s; the failing task's message is above"
        )
    print(f"{name}: done in {took:.0f}s")


@task(
    help={
        "nerdctl-ref": "nerdctl tag, branch, commit or pr:NUMBER "
        "(default v2.0.0-beta.2)",
        "source": "auto, git, mirror or module (default auto)",
        "mirrors": "directory of local mirrors (default: nerdlab.mirrors, else a "
        ".mirror directory beside the clone)",
        "workspace": "where the checkouts live (default workspace/ in this clone)",
        "wiring": "replace (go.mod replace block) or work (go.work) (default replace)",
        "target": "where to build and run (default local)",
        "containerd-from": "auto, package or checkout: which containerd to run; auto "
        "builds it from the checkout when the package's major version is below the "
        "module's nerdctl uses (default auto)",
        "dry-run": "print the ansible-playbook command and variables, run nothing",
    }
)
def setup(
    c,
    nerdctl_ref=None,
    source=None,
    mirrors=None,
    workspace=None,
    wiring=None,
    target=None,
    containerd_from=None,
    dry_run=False,
):
    """Provision the target, check out matching sources, instrument, build nerdctl."""
    overrides = {
        "nerdctl_ref": nerdctl_ref,
        "source": source,
        "mirrors": mirrors,
        "workspace": workspace,
        "wiring": wiring,
        "target": target,
        "containerd_from": containerd_from,
    }
    c.config.nerdlab.update({k: v for k, v in overrides.items() if v is not None})
    settings = _settings(c)
    _check_workspace(_path(settings["workspace"]))
    if settings["wiring"] not in ("replace", "work"):
        raise Exit(f"--wiring {settings['wiring']!r}: use replace or work")
    if settings["source"] not in ("auto", "git", "mirror", "module"):
        raise Exit(f"--source {settings['source']!r}: use auto, git, mirror or module")
    print(
        f"setup: nerdctl {settings['nerdctl_ref']} (source {settings['source']}) "
        f"in {_path(settings['workspace'])}"
    )
    _playbook(
        c,
        "setup",
        {
            "nerdlab_nerdctl_ref": settings["nerdctl_ref"],
            "nerdlab_source": settings["source"],
            "nerdlab_mirrors": _mirrors(settings),
            "nerdlab_wiring": settings["wiring"],
            "nerdlab_containerd_from": settings["containerd_from"],
        },
        dry_run,
    )


def _latest_run(runs: Path) -> Path:
    from nerdlab.compare import run_dirs

    candidates = run_dirs(runs)
    if not candidates:
        raise Exit(f"no runs under {runs}; run `inv repro` first")
    return candidates[-1]


@task(
    iterable=["scenario"],
    optional=["compare"],
    help={
        "scenario": "scenario to run, repeatable, or all (default detached-attach)",
        "compare": "run nothing; show two results side by side: --compare alone for "
        "the two latest runs, or --compare 'A B' with each side RUN[:SCENARIO]",
        "attach-timeout": "seconds before attach is stopped (default 10)",
        "image": "image to run (default alpine; a local busybox image when none pulls)",
        "no-pull": "do not try a registry; use the local busybox image",
        "json": "print the diagnosis as JSON instead of the summary",
        "dry-run": "print the ansible-playbook command and variables, run nothing",
    },
)
def repro(
    c,
    scenario=None,
    attach_timeout=None,
    image=None,
    no_pull=False,
    json_=False,
    dry_run=False,
    compare=None,
):
    """Run the reproduction scenarios on the built nerdctl and diagnose them."""
    if compare is not None:
        _compare(c, compare, json_)
        return
    from nerdlab.diagnose import diagnose_run
    from nerdlab.report import render_results_table, render_terminal, to_json
    from nerdlab.scenarios import available, load_scenario

    settings = _settings(c)
    names = list(scenario or settings["scenarios"])
    known = available(PROJECT / "scenarios")
    if "all" in names:
        names = list(known)
    for name in names:
        if name not in known:
            raise Exit(f"unknown scenario {name!r}; choose from {', '.join(known)}")
    for name in names:
        try:
            load_scenario(known[name])
        except NerdlabError as err:
            raise Exit(str(err)) from err
    timeout = str(attach_timeout or settings["attach_timeout"])
    if not timeout.isdigit() or int(timeout) < 1:
        raise Exit(f"--attach-timeout {timeout!r}: give whole seconds, 1 or more")
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = _path(settings["runs"]) / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = _path(settings["runs"]) / f"{run_id}-{suffix}"
    run_id = run_dir.name
    pull = str(settings["pull"]).lower() not in ("0", "false", "no", "") and not no_pull
    _playbook(
        c,
        "repro",
        {
            "attach_repro_scenarios": names,
            "attach_repro_run_dir": str(run_dir),
            "attach_repro_attach_timeout_s": int(timeout),
            "attach_repro_owner": "" if os.geteuid() == 0 else str(os.getuid()),
            "repro_image_name": image or settings["image"],
            "repro_image_pull": pull,
        },
        dry_run,
    )
    if dry_run:
        return
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "id": run_id,
                "target": settings["target"],
                "nerdctl_ref": settings["nerdctl_ref"],
                "scenarios": names,
                "sources": _read_json(_path(settings["workspace"]) / "sources.json"),
                "build": _read_json(_path(settings["workspace"]) / "build-proof.json"),
            },
            indent=2,
        )
        + "\n"
    )
    try:
        diagnosis = diagnose_run(run_dir, write=True)
    except NerdlabError as err:
        raise Exit(str(err)) from err
    if json_:
        print(to_json(diagnosis))
        return
    render_terminal(diagnosis)
    if len(diagnosis.scenarios) > 1:
        print()
        render_results_table(diagnosis)


def _compare(c: Context, sides: str | bool, json_: bool) -> None:
    from nerdlab.compare import compare, resolve_sides
    from nerdlab.report import comparison_dict, render_comparison

    given = [] if sides is True else str(sides).replace(",", " ").split()
    if len(given) not in (0, 2):
        raise Exit("--compare takes two sides, 'A B', each RUN[:SCENARIO]")
    a, b = (given[0], given[1]) if given else (None, None)
    try:
        comparison = compare(*resolve_sides(a, b, _path(_settings(c)["runs"])))
    except NerdlabError as err:
        raise Exit(str(err)) from err
    if json_:
        print(json.dumps(comparison_dict(comparison), indent=2, ensure_ascii=False))
    else:
        render_comparison(comparison)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


@task(
    positional=["action"],
    help={
        "action": "export: write the fix, without probes, as a git format-patch file",
        "fix": "candidate fix under patches/fixes (default detached-fifos)",
        "out": "directory for the patch file (default runs/patches)",
    },
)
def patch(c, action, fix="detached-fifos", out=None):
    """Export a candidate fix as a patch a contributor could send upstream."""
    from nerdlab.fixes import export_patch, load_fix
    from nerdlab.sources import base_commit

    if action != "export":
        raise Exit(f"unknown patch action {action!r}; use: inv patch export")
    settings = _settings(c)
    nerdctl = _path(settings["workspace"]) / "nerdctl"
    fix_file = PROJECT / "patches" / "fixes" / f"{fix}.yml"
    if not fix_file.exists():
        known = ", ".join(p.stem for p in (PROJECT / "patches" / "fixes").glob("*.yml"))
        raise Exit(f"no fix {fix!r}; choose from {known}")
    if not (nerdctl / ".git").exists():
        raise Exit(f"no nerdctl checkout in {nerdctl}; run `inv setup` first")
    out_dir = _path(out) if out else _path(settings["runs"]) / "patches"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        written = export_patch(
            nerdctl, load_fix(fix_file), base_commit(nerdctl), out_dir
        )
    except NerdlabError as err:
        raise Exit(str(err)) from err
    print(f"patch: {written}")


@task(
    help={
        "file": "transcript file, run directory, or - for stdin",
        "json": "print JSON",
        "format": "terminal, json, markdown or html (default terminal)",
        "address": "containerd address the data-root hash is checked against",
    }
)
def trace(c, file, json_=False, format=None, address=None):
    """Parse a transcript or run directory into a trace and a diagnosis."""
    from nerdlab.cli import trace_main

    argv = [file]
    if json_:
        argv.append("--json")
    if format:
        argv += ["--format", format]
    if address:
        argv += ["--address", address]
    code = trace_main(argv)
    if code:
        raise Exit(code=code)


@task(
    help={
        "run": "run directory (default: the latest under runs/)",
        "format": "terminal, json, markdown or html (default terminal)",
    }
)
def report(c, run=None, format="terminal"):
    """Show the report of a run again."""
    settings = _settings(c)
    run_dir = _path(run) if run else _latest_run(_path(settings["runs"]))
    trace(c, str(run_dir), format=format)


@task(
    help={
        "workspace": "also delete the workspace checkouts (asks first)",
        "yes": "do not ask before deleting the workspace",
        "dry-run": "print the ansible-playbook command and variables, run nothing",
    }
)
def clean(c, workspace=False, yes=False, dry_run=False):
    """Remove nerdlab's containers and stop its containerd; optionally the workspace."""
    _playbook(c, "teardown", {}, dry_run)
    path = _path(_settings(c)["workspace"])
    if not workspace or not path.exists() or dry_run:
        return
    if not yes:
        answer = input(f"Delete {path} and every checkout in it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print(f"kept {path}")
            return
    from nerdlab.sources import is_dirty

    dirty = [p.name for p in path.iterdir() if (p / ".git").exists() and is_dirty(p)]
    if dirty:
        raise Exit(
            f"{', '.join(dirty)} in {path} have uncommitted changes; "
            "commit or stash them first, nothing was deleted"
        )
    shutil.rmtree(path)
    print(f"deleted {path}")


ns = Collection(setup, repro, trace, report, patch, clean)
ns.configure({"nerdlab": DEFAULTS})
