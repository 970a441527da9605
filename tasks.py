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
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, task

PROJECT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(PROJECT / "python"))

from nerdlab.errors import NerdlabError  # noqa: E402
from nerdlab.targets import (  # noqa: E402
    ControllerPaths,
    Target,
    controller_vars,
    host_vars,
    hosts_from_listing,
    instance_for,
    needs_controller_sources,
    parse_targets,
    run_vars,
)
from nerdlab.targets import (
    inventory as build_inventory,
)

DEFAULTS: dict[str, Any] = {
    "nerdctl_ref": "v2.0.0-beta.2",
    "source": "auto",
    "mirrors": "",
    "workspace": "workspace",
    "runs": "runs",
    "target": "local",
    "inventory": "",
    "instance": "nerdlab",
    "lima_instance": "nerdlab",
    "ssh_args": "",
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


def _controller(settings: dict[str, Any]) -> ControllerPaths:
    return ControllerPaths(
        PROJECT, _path(settings["workspace"]), _path(settings["runs"])
    )


def _host_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {**settings, "mirrors": _mirrors(settings)}


def _lima_vars(
    target: Target, settings: dict[str, Any], create: bool, start: bool
) -> dict[str, Any] | None:
    """Return the vars of a Lima instance (made by nerdlab, or adopted).

    With ``start`` the instance is created (nerdlab's own, with ``create``) or
    started as needed; without, one that is not running gives None and is left as
    it is (a dry run, a clean).
    """
    from nerdlab import lima

    try:
        if lima.limactl_version() is None:
            raise Exit(
                "limactl is not installed; install Lima (https://lima-vm.io) or run "
                ".ci/install-limactl, then try again"
            )
        controller = _controller(settings)
        if not start:
            found = lima.find_instance(target.name)
            if found is None or found.status != "Running":
                return None
            instance = found
        else:
            if create and target.name == settings["lima_instance"]:
                _lima_playbook(settings, controller)
            instance = lima.ensure_running(target.name, None)
    except NerdlabError as err:
        raise Exit(str(err)) from err
    for path in controller.mounts():
        problem = lima.mount_problem(instance, path)
        if problem:
            raise Exit(problem)
    mirrors = _local_mirrors(settings)
    if mirrors and (problem := lima.mount_problem(instance, mirrors, writable=False)):
        raise Exit(f"{problem} (the mirrors the checkouts come from)")
    return dict(lima.ansible_host_vars(instance))


def _local_mirrors(settings: dict[str, Any]) -> str:
    """The mirrors directory a target on this machine's files must see, if any."""
    mirrors = _mirrors(settings)
    if settings["source"] not in ("mirror", "auto") or "://" in mirrors:
        return ""
    return mirrors


def _lima_playbook(settings: dict[str, Any], controller: ControllerPaths) -> None:
    """Create or start the VM nerdlab owns, from the lima_vm role's template."""
    variables = {
        "lima_vm_name": settings["lima_instance"],
        "lima_vm_mounts": controller.mounts(),
    }
    controller.workspace.mkdir(parents=True, exist_ok=True)
    controller.runs.mkdir(parents=True, exist_ok=True)
    if not _run_ansible("lima", None, variables):
        raise Exit(
            f"the Lima VM {settings['lima_instance']} is not running; Lima's message "
            "is above"
        )


def _hosts(
    settings: dict[str, Any], *, create_lima: bool = False, start_lima: bool = True
) -> dict[str, dict[str, Any]]:
    """Return the inventory hosts for the chosen targets, or the user's inventory."""
    controller = _controller(settings)
    if settings.get("inventory"):
        return _inventory_hosts(settings, controller)
    try:
        targets = parse_targets(str(settings["target"]))
    except NerdlabError as err:
        raise Exit(str(err)) from err
    hosts = {}
    for target in targets:
        lima_vars = None
        if target.kind == "lima":
            lima_vars = _lima_vars(target, settings, create_lima, start_lima)
            if lima_vars is None:
                print(f"{target.spec}: not running, left as it is")
                continue
        hosts[target.alias] = host_vars(
            target,
            controller=controller,
            settings=_host_settings(settings),
            euid=os.geteuid(),
            lima_vars=lima_vars,
        )
    return hosts


def _inventory_hosts(
    settings: dict[str, Any], controller: ControllerPaths
) -> dict[str, dict[str, Any]]:
    """Read a user's inventory; each host's own variables beat nerdlab's defaults."""
    path = _path(str(settings["inventory"]))
    if not path.exists():
        raise Exit(f"inventory {path} does not exist; give an Ansible inventory file")
    done = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
            # A file no inventory plugin parses is an error, not an empty inventory.
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        },
    )
    if done.returncode != 0:
        text = " ".join(done.stderr.replace("[WARNING]:", " ").split())
        start = text.find("Failed to parse")
        reason = text[max(start, 0) :][:240] or "ansible-inventory failed"
        raise Exit(f"inventory {path} cannot be read: {reason}")
    hosts = hosts_from_listing(
        json.loads(done.stdout),
        controller=controller,
        settings=_host_settings(settings),
        euid=os.geteuid(),
    )
    if not hosts:
        raise Exit(f"inventory {path} names no hosts; add hosts to nerdlab_targets")
    return hosts


def _run_ansible(
    name: str,
    hosts: dict[str, dict[str, Any]] | None,
    extra: dict[str, Any],
    controller: dict[str, Any] | None = None,
) -> bool:
    """Run a playbook on hosts (None: its own localhost play); True when it passed."""
    with contextlib.ExitStack() as stack:
        argv = [
            str(BIN / "ansible-playbook"),
            str(PROJECT / "playbooks" / f"{name}.yml"),
            "--extra-vars",
            f"@{stack.enter_context(_json_file(extra))}",
        ]
        if hosts is not None:
            listing = build_inventory(hosts, controller)
            argv += ["-i", stack.enter_context(_json_file(listing))]
            if any(v.get("ansible_connection") == "local" for v in hosts.values()):
                argv += _become_args()
        env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}
        try:
            return subprocess.run(argv, env=env, check=False).returncode == 0
        except KeyboardInterrupt:
            raise Exit(
                f"{name} interrupted; run it again: finished steps are kept, a "
                "half-made clone is discarded"
            ) from None


@contextlib.contextmanager
def _json_file(content: Any) -> Iterator[str]:
    with tempfile.NamedTemporaryFile(
        "w", suffix=".json", prefix="nerdlab-", delete=False
    ) as handle:
        json.dump(content, handle)
    try:
        yield handle.name
    finally:
        os.unlink(handle.name)


def _playbook(
    c: Context,
    name: str,
    extra: dict[str, Any],
    dry_run: bool,
    hosts: dict[str, dict[str, Any]] | None = None,
    must_pass: bool = True,
) -> bool:
    """Run a playbook against the chosen targets; say how long it took."""
    settings = _settings(c)
    if hosts is None:
        hosts = _hosts(
            settings,
            create_lima=name == "setup" and not dry_run,
            start_lima=not dry_run and name != "teardown",
        )
    if not hosts:
        print(f"{name}: no target to run on")
        return True
    controller = (
        controller_vars(_controller(settings), _host_settings(settings))
        if name == "setup" and needs_controller_sources(hosts)
        else None
    )
    if dry_run:
        print(f"ansible-playbook playbooks/{name}.yml against {', '.join(hosts)}")
        listing = build_inventory(hosts, controller)
        print(json.dumps({"inventory": listing, "extra_vars": extra}, indent=2))
        return True
    started = time.monotonic()
    with _workspace_lock(_path(settings["workspace"])):
        passed = _run_ansible(name, hosts, extra, controller)
    took = time.monotonic() - started
    if not passed and must_pass:
        raise Exit(
            f"{name} failed after {took:.0f}s; the failing task's message is above"
        )
    print(f"{name}: {'done' if passed else 'failed on some hosts'} in {took:.0f}s")
    return passed


_TARGET_HELP = (
    "where to build and run: local, lima, lima:NAME or ssh:[USER@]HOST[:PORT]; "
    "several, separated by spaces, run side by side (default local)"
)
_INVENTORY_HELP = "an Ansible inventory whose hosts are the targets (not with --target)"


def _apply(c: Context, **overrides: Any) -> dict[str, Any]:
    """Merge the flags given into the settings, and check those every task shares."""
    c.config.nerdlab.update({k: v for k, v in overrides.items() if v is not None})
    settings = _settings(c)
    if settings["wiring"] not in ("replace", "work"):
        raise Exit(f"--wiring {settings['wiring']!r}: use replace or work")
    if settings["source"] not in ("auto", "git", "mirror", "module"):
        raise Exit(f"--source {settings['source']!r}: use auto, git, mirror or module")
    if not settings["inventory"]:
        try:
            parse_targets(str(settings["target"]))
        except NerdlabError as err:
            raise Exit(str(err)) from err
    try:
        shlex.split(str(settings["ssh_args"]))
    except ValueError as err:
        raise Exit(f"ssh_args {settings['ssh_args']!r} cannot be read: {err}") from None
    return settings


_SETUP_HELP = {
    "nerdctl-ref": "nerdctl tag, branch, commit or pr:NUMBER (default v2.0.0-beta.2)",
    "source": "auto, git, mirror or module (default auto)",
    "mirrors": "directory of local mirrors (default: nerdlab.mirrors, else a "
    ".mirror directory beside the clone)",
    "workspace": "where the checkouts live (default workspace/ in this clone)",
    "wiring": "replace (go.mod replace block) or work (go.work) (default replace)",
    "target": _TARGET_HELP,
    "inventory": _INVENTORY_HELP,
    "containerd-from": "auto, package or checkout: which containerd to run; auto "
    "builds it from the checkout when the package's major version is below the "
    "module's nerdctl uses (default auto)",
    "dry-run": "print the ansible-playbook inventory and variables, run nothing",
}


@task(help=_SETUP_HELP)
def setup(
    c,
    nerdctl_ref=None,
    source=None,
    mirrors=None,
    workspace=None,
    wiring=None,
    target=None,
    inventory=None,
    containerd_from=None,
    dry_run=False,
):
    """Provision the target, check out matching sources, instrument, build nerdctl."""
    settings = _apply(
        c,
        nerdctl_ref=nerdctl_ref,
        source=source,
        mirrors=mirrors,
        workspace=workspace,
        wiring=wiring,
        target=target,
        inventory=inventory,
        containerd_from=containerd_from,
    )
    _check_workspace(_path(settings["workspace"]))
    where = settings["inventory"] or settings["target"]
    print(
        f"setup: nerdctl {settings['nerdctl_ref']} (source {settings['source']}) "
        f"in {_path(settings['workspace'])}, on {where}"
    )
    _playbook(c, "setup", {}, dry_run)


def _latest_run(runs: Path) -> Path:
    from nerdlab.compare import run_dirs

    candidates = run_dirs(runs)
    if not candidates:
        raise Exit(f"no runs under {runs}; run `inv repro` first")
    return candidates[-1]


def _scenario_names(settings: dict[str, Any], scenario: list[str] | None) -> list[str]:
    """Resolve --scenario (or the default list) to known, loadable scenario names."""
    from nerdlab.scenarios import available, load_scenario

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
    return names


def _new_run_dir(runs: Path) -> Path:
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = runs / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs / f"{run_id}-{suffix}"
    return run_dir


def _run_repro(
    c: Context,
    names: list[str],
    options: dict[str, Any],
    dry_run: bool,
    hosts: dict[str, dict[str, Any]] | None = None,
) -> tuple[Path, dict[str, Path]]:
    """Run the scenarios on every host; return the run and each host's directory.

    One host's results are the run directory itself; with several, each host has a
    directory of its own in the run, named after it.
    """
    settings = _settings(c)
    hosts = _hosts(settings, start_lima=not dry_run) if hosts is None else hosts
    run_dir = _new_run_dir(_path(settings["runs"]))
    host_dirs = {
        alias: run_dir if len(hosts) == 1 else run_dir / alias for alias in hosts
    }
    for alias, values in hosts.items():
        values.update(run_vars(values, alias, run_dir.name, host_dirs[alias]))
        if not dry_run:
            host_dirs[alias].mkdir(parents=True, exist_ok=True)
    extra = {
        "attach_repro_scenarios": names,
        "attach_repro_attach_timeout_s": options["attach_timeout"],
        "repro_image_name": options["image"],
        "repro_image_pull": options["pull"],
    }
    try:
        _playbook(c, "repro", extra, dry_run, hosts=hosts, must_pass=len(hosts) == 1)
    finally:
        _remove_if_empty(run_dir)
    if dry_run:
        return run_dir, {}
    for alias, host_dir in host_dirs.items():
        (host_dir / "run.json").write_text(
            json.dumps(
                {
                    "id": run_dir.name,
                    "target": alias,
                    "nerdctl_ref": hosts[alias].get(
                        "nerdlab_nerdctl_ref", settings["nerdctl_ref"]
                    ),
                    "scenarios": names,
                    "sources": _read_json(host_dir / "build" / "sources.json"),
                    "build": _read_json(host_dir / "build" / "build-proof.json"),
                },
                indent=2,
            )
            + "\n"
        )
    return run_dir, host_dirs


def _remove_if_empty(run_dir: Path) -> None:
    """Leave no empty run directory behind a repro that ran nothing."""
    for directory in sorted(run_dir.glob("*"), reverse=True) + [run_dir]:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _repro_options(
    settings: dict[str, Any], attach_timeout: Any, image: Any, no_pull: bool
) -> dict[str, Any]:
    timeout = str(attach_timeout or settings["attach_timeout"])
    if not timeout.isdigit() or int(timeout) < 1:
        raise Exit(f"--attach-timeout {timeout!r}: give whole seconds, 1 or more")
    pull = str(settings["pull"]).lower() not in ("0", "false", "no", "") and not no_pull
    return {
        "attach_timeout": int(timeout),
        "image": image or settings["image"],
        "pull": pull,
    }


_REPRO_HELP = {
    "scenario": "scenario to run, repeatable, or all (default detached-attach)",
    "attach-timeout": "seconds before attach is stopped (default 10)",
    "image": "image to run (default alpine; a local busybox image when none pulls)",
    "no-pull": "do not try a registry; use the local busybox image",
    "target": _TARGET_HELP,
    "inventory": _INVENTORY_HELP,
    "json": "print the diagnosis as JSON instead of the summary",
    "dry-run": "print the ansible-playbook inventory and variables, run nothing",
}


@task(
    iterable=["scenario"],
    optional=["compare"],
    help={
        **_REPRO_HELP,
        "compare": "run nothing; show two results side by side: --compare alone for "
        "the two latest runs, or --compare 'A B' with each side RUN[:SCENARIO]",
    },
)
def repro(
    c,
    scenario=None,
    attach_timeout=None,
    image=None,
    no_pull=False,
    target=None,
    inventory=None,
    json_=False,
    dry_run=False,
    compare=None,
):
    """Run the reproduction scenarios on the built nerdctl and diagnose them."""
    if compare is not None:
        _compare(c, compare, json_)
        return
    settings = _apply(c, target=target, inventory=inventory)
    names = _scenario_names(settings, scenario)
    options = _repro_options(settings, attach_timeout, image, no_pull)
    run_dir, host_dirs = _run_repro(c, names, options, dry_run)
    if dry_run:
        return
    if len(host_dirs) > 1:
        _show_matrix(run_dir, host_dirs, json_)
        return
    _show_run(run_dir, json_)


def _show_run(run_dir: Path, json_: bool) -> None:
    from nerdlab.diagnose import diagnose_run
    from nerdlab.report import render_results_table, render_terminal, to_json

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


def _show_matrix(run_dir: Path, host_dirs: dict[str, Path], json_: bool) -> None:
    from nerdlab.matrix import build_matrix, matrix_dict, render_matrix, write_matrix

    matrix = build_matrix(run_dir, host_dirs)
    write_matrix(matrix)
    if json_:
        print(json.dumps(matrix_dict(matrix), indent=2, ensure_ascii=False))
    else:
        render_matrix(matrix)
    if not matrix.complete:
        failed = [h.host for h in matrix.hosts if h.run is None]
        raise Exit(
            f"no result from {', '.join(failed) or 'some scenarios'}: their setup or "
            f"repro failed (see above); what ran is in {run_dir}"
        )


@task(
    iterable=["scenario"],
    help={
        **_REPRO_HELP,
        "target": "the targets, separated by spaces: local, lima, lima:NAME, "
        "ssh:[USER@]HOST[:PORT] (default local)",
        "no-setup": "run the scenarios on what the last setup built",
        "nerdctl-ref": _SETUP_HELP["nerdctl-ref"],
        "source": _SETUP_HELP["source"],
        "containerd-from": _SETUP_HELP["containerd-from"],
    },
)
def matrix(
    c,
    target=None,
    inventory=None,
    scenario=None,
    nerdctl_ref=None,
    source=None,
    containerd_from=None,
    attach_timeout=None,
    image=None,
    no_pull=False,
    no_setup=False,
    json_=False,
    dry_run=False,
):
    """Set up every target and run the same scenarios on all of them, side by side."""
    settings = _apply(
        c,
        target=target,
        inventory=inventory,
        nerdctl_ref=nerdctl_ref,
        source=source,
        containerd_from=containerd_from,
    )
    names = _scenario_names(settings, scenario)
    options = _repro_options(settings, attach_timeout, image, no_pull)
    hosts = None
    if not no_setup:
        _check_workspace(_path(settings["workspace"]))
        hosts = _hosts(settings, create_lima=not dry_run, start_lima=not dry_run)
        _playbook(c, "setup", {}, dry_run, hosts=hosts, must_pass=False)
    run_dir, host_dirs = _run_repro(c, names, options, dry_run, hosts=hosts)
    if not dry_run:
        _show_matrix(run_dir, host_dirs, json_)


@task(
    help={
        "target": _TARGET_HELP,
        "inventory": "not read: doctor checks the targets named with --target",
    }
)
def doctor(c, target=None, inventory=None):
    """Report what each target lacks before setup runs; change nothing."""
    from rich.console import Console
    from rich.table import Table

    from nerdlab.doctor import blocking, check_target

    settings = _apply(c, target=target)
    if inventory:
        raise Exit("doctor checks --target targets; name the hosts with --target")
    try:
        targets = parse_targets(str(settings["target"]))
    except NerdlabError as err:
        raise Exit(str(err)) from err
    checks = []
    console = Console()
    for one in targets:
        found = check_target(
            one,
            instance=instance_for(one, str(settings["instance"])),
            ssh_args=str(settings["ssh_args"]),
            ours=one.name == settings["lima_instance"],
            mounts=_controller(settings).mounts(),
            read_only_mounts=[m for m in [_local_mirrors(settings)] if m],
        )
        table = Table(title=one.spec, title_justify="left", show_edge=False)
        for header in ("check", "found", "next step"):
            table.add_column(header, overflow="fold")
        for check in found:
            table.add_row(check.what, check.found or "—", check.fix or "ok")
        console.print(table, highlight=False)
        checks += found
    stopping = blocking(checks)
    if stopping:
        raise Exit(
            f"doctor: {len(stopping)} thing(s) to fix before setup: "
            + "; ".join(f"{c.target} {c.what}" for c in stopping)
        )
    print("doctor: nothing blocks setup")


@task(
    positional=["action"],
    help={
        "action": "start, stop, shell or delete nerdlab's Lima VM",
        "yes": "delete without asking",
    },
)
def lima(c, action, yes=False):
    """Start, stop, enter or delete the Lima VM nerdlab made for --target lima."""
    from nerdlab import lima as lima_

    settings = _settings(c)
    name = str(settings["lima_instance"])
    if action not in ("start", "stop", "shell", "delete"):
        raise Exit(f"unknown lima action {action!r}; use start, stop, shell or delete")
    try:
        if lima_.limactl_version() is None:
            raise Exit("limactl is not installed; install Lima (https://lima-vm.io)")
    except NerdlabError as err:
        raise Exit(str(err)) from err
    if action == "start":
        _lima_playbook(settings, _controller(settings))
        print(f"lima: {name} is running")
        return
    if action == "shell":
        os.execvp("limactl", ["limactl", "shell", "--workdir", str(PROJECT), name])
    if action == "delete" and not yes:
        answer = input(f"Delete the Lima VM {name} and its disk? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print(f"kept {name}")
            return
    argv = [
        "limactl",
        "--tty=false",
        action,
        *(["--force"] if action == "delete" else []),
        name,
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired:
        raise Exit(f"limactl {action} {name} did not finish in 600s") from None
    if done.returncode != 0:
        raise Exit(
            f"limactl {action} {name}: {lima_.last_error(done.stderr) or 'failed'}"
        )
    print(f"lima: {name} {'stopped' if action == 'stop' else 'deleted'}")


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
        "target": _TARGET_HELP,
        "inventory": _INVENTORY_HELP,
        "dry-run": "print the ansible-playbook inventory and variables, run nothing",
    }
)
def clean(c, workspace=False, yes=False, target=None, inventory=None, dry_run=False):
    """Remove nerdlab's containers and stop its containerd; optionally the workspace."""
    _apply(c, target=target, inventory=inventory)
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


ns = Collection(setup, repro, matrix, doctor, lima, trace, report, patch, clean)
ns.configure({"nerdlab": DEFAULTS})
