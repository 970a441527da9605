"""nerdctl is wired to sibling checkouts as one layer commit, and builds against them.

The workspace is made by the test: a nerdctl-like module checked out from a local
"upstream", and containerd and fifo modules beside it. Builds run with the module
proxy off, so they succeed only through the wiring.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nerdlab import workspace
from nerdlab.errors import ConfigError, SourceError
from nerdlab.sources import LAYER_TRAILER, is_dirty, prepare_git_checkout
from nerdlab.workspace import (
    checkout_dependency,
    checkout_nerdctl,
    instrument,
    nerdctl_requirements,
    prepare_variant,
    wire,
)

Git = Callable[..., str]
Commit = Callable[[Path, str, str, str], str]

CONTAINERD = "github.com/containerd/containerd/v2"
FIFO = "github.com/containerd/fifo"
DEPENDENCIES = {CONTAINERD: "../containerd", FIFO: "../fifo"}

NERDCTL_GO_MOD = f"""\
module github.com/containerd/nerdctl/v2

go 1.21

require (
\t{CONTAINERD} v2.0.0
\t{FIFO} v1.1.0 //gomodjail:unconfined
)
"""

NERDCTL_MAIN = f"""\
package main

import (
\t"fmt"

\t"{CONTAINERD}"
\t"{FIFO}"
)

func describe(name string) string {{
\treturn name + " via " + containerd.Name + " and " + fifo.Name
}}

func main() {{
\tfmt.Println(describe("nerdctl"))
}}
"""

PROBES = """\
---
description: A probe on the fixture nerdctl's describe function.
checked_against: [the test itself]
upstream_status: not-for-upstream
repo: nerdctl
module: github.com/containerd/nerdctl/v2
probes:
  - id: fixture.describe.entry
    packages: [.]
    func: describe
    place: entry
    values: {name: name}
"""


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(workspace.__all__) == sorted(
        [
            "NERDCTL_MODULES",
            "REPOSITORIES",
            "checkout_dependency",
            "checkout_nerdctl",
            "fix_layer",
            "instrument",
            "nerdctl_requirements",
            "prepare_variant",
            "variant_path",
            "wire",
        ]
    )


@pytest.fixture
def nerdctl_upstream(tmp_path: Path, git: Git, commit: Commit) -> Path:
    """Return an upstream nerdctl-like repository tagged v2.0.0."""
    repo = tmp_path / "upstream" / "nerdctl"
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet", "-b", "main")
    commit(repo, "main.go", NERDCTL_MAIN, "nerdctl: start")
    commit(repo, "go.mod", NERDCTL_GO_MOD, "go.mod: require containerd and fifo")
    git(repo, "tag", "v2.0.0")
    return repo


@pytest.fixture
def ws(tmp_path: Path, nerdctl_upstream: Path) -> Path:
    """Return a workspace: nerdctl on nerdlab/v2.0.0, containerd and fifo beside it."""
    root = tmp_path / "ws"
    prepare_git_checkout("nerdctl", root / "nerdctl", "v2.0.0", str(nerdctl_upstream))
    for name, module, go in (
        ("containerd", CONTAINERD, "1.22"),
        ("fifo", FIFO, "1.21"),
    ):
        (root / name).mkdir()
        (root / name / "go.mod").write_text(f"module {module}\n\ngo {go}\n")
        package = "containerd" if name == "containerd" else "fifo"
        (root / name / f"{name}.go").write_text(
            f'package {package}\n\nconst Name = "local {name}"\n'
        )
    return root


def layer_commits(git: Git, repo: Path) -> list[tuple[str, str]]:
    """Return (subject, trailers) of the commits above v2.0.0, bottom first."""
    log = git(repo, "log", "--reverse", "--format=%s%x00%(trailers:only,unfold)%x01",
              "v2.0.0..HEAD")  # fmt: skip
    records = [r.strip().split("\0") for r in log.split("\x01") if r.strip()]
    return [(subject, trailers.strip()) for subject, trailers in records]


def test_wire_replace_is_one_layer_commit(ws: Path, git: Git) -> None:
    """Replace mode commits go.mod with nerdlab's block and a wiring trailer."""
    nerdctl = ws / "nerdctl"
    assert wire(nerdctl, "replace", DEPENDENCIES)
    ((subject, trailer),) = layer_commits(git, nerdctl)
    assert subject.startswith("nerdlab: wire local ")
    assert subject.endswith(" checkouts (replace)")
    assert trailer.startswith(f"{LAYER_TRAILER}: wiring ")
    assert git(nerdctl, "show", "--name-only", "--format=", "HEAD") == "go.mod"
    go_mod = (nerdctl / "go.mod").read_text()
    assert go_mod.startswith(NERDCTL_GO_MOD)
    assert f"\t{CONTAINERD} => ../containerd\n" in go_mod
    assert f"\t{FIFO} => ../fifo\n" in go_mod
    assert not (nerdctl / "go.work").exists()
    assert not is_dirty(nerdctl)


def test_wire_subject_names_the_checkouts(ws: Path, git: Git) -> None:
    """The wiring commit's subject names containerd and fifo."""
    wire(ws / "nerdctl", "replace", DEPENDENCIES)
    ((subject, _),) = layer_commits(git, ws / "nerdctl")
    assert subject == "nerdlab: wire local containerd, fifo checkouts (replace)"


def test_wire_work_writes_go_work(ws: Path, git: Git) -> None:
    """Work mode commits a go.work that uses nerdctl and both siblings."""
    nerdctl = ws / "nerdctl"
    assert wire(nerdctl, "work", DEPENDENCIES)
    ((subject, _),) = layer_commits(git, nerdctl)
    assert subject.endswith("(work)")
    assert (nerdctl / "go.work").read_text() == (
        "go 1.22\n\nuse (\n\t.\n\t../containerd\n\t../fifo\n)\n"
    )
    assert (nerdctl / "go.mod").read_text() == NERDCTL_GO_MOD


@pytest.mark.parametrize("mode", ["replace", "work"])
def test_wire_twice_changes_nothing(ws: Path, git: Git, mode: str) -> None:
    """Wiring again with the same mode and checkouts makes no commit."""
    nerdctl = ws / "nerdctl"
    wire(nerdctl, mode, DEPENDENCIES)
    head = git(nerdctl, "rev-parse", "HEAD")
    assert not wire(nerdctl, mode, DEPENDENCIES)
    assert git(nerdctl, "rev-parse", "HEAD") == head


SWITCHES = [
    pytest.param("replace", "work", id="replace-to-work"),
    pytest.param("work", "replace", id="work-to-replace"),
]


@pytest.mark.parametrize(("first", "second"), SWITCHES)
def test_switching_modes_rebuilds_the_layer(
    ws: Path, git: Git, first: str, second: str
) -> None:
    """Another mode replaces the wiring commit; the other mode's file is gone."""
    nerdctl = ws / "nerdctl"
    wire(nerdctl, first, DEPENDENCIES)
    assert wire(nerdctl, second, DEPENDENCIES)
    ((subject, _),) = layer_commits(git, nerdctl)
    assert subject.endswith(f"({second})")
    assert (nerdctl / "go.work").exists() is (second == "work")
    wired = (nerdctl / "go.mod").read_text()
    assert (wired == NERDCTL_GO_MOD) is (second == "work")


def test_other_checkouts_rebuild_the_layer(ws: Path, git: Git) -> None:
    """Pointing a module at another directory rewires."""
    nerdctl = ws / "nerdctl"
    wire(nerdctl, "replace", DEPENDENCIES)
    moved = {**DEPENDENCIES, FIFO: "../fifo-fork"}
    assert wire(nerdctl, "replace", moved)
    assert len(layer_commits(git, nerdctl)) == 1
    assert f"\t{FIFO} => ../fifo-fork\n" in (nerdctl / "go.mod").read_text()


def test_unknown_mode_is_refused(ws: Path) -> None:
    """A wiring mode nerdlab does not know is refused before anything moves."""
    with pytest.raises(
        ConfigError, match="wiring='vendor' is not one of replace, work"
    ):
        wire(ws / "nerdctl", "vendor", DEPENDENCIES)


def test_rewiring_refuses_uncommitted_changes(ws: Path) -> None:
    """A changed wiring is not committed over the user's uncommitted edits."""
    nerdctl = ws / "nerdctl"
    wire(nerdctl, "replace", DEPENDENCIES)
    (nerdctl / "main.go").write_text(NERDCTL_MAIN + "// mine\n")
    with pytest.raises(SourceError, match="uncommitted changes"):
        wire(nerdctl, "work", DEPENDENCIES)
    assert (nerdctl / "main.go").read_text().endswith("// mine\n")


def test_nerdctl_requirements(ws: Path) -> None:
    """nerdctl's go.mod gives the containerd and fifo versions to check out."""
    assert nerdctl_requirements(ws / "nerdctl") == {
        "module": "github.com/containerd/nerdctl/v2",
        "go": "1.21",
        "containerd": {"path": CONTAINERD, "version": "v2.0.0", "indirect": False},
        "containerd_major": 2,
        "fifo": {"path": FIFO, "version": "v1.1.0", "indirect": False},
    }


def go_build(
    nerdctl: Path, out: Path, env: dict[str, str], **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["go", "build", "-o", str(out), "."],
        cwd=nerdctl,
        env={**os.environ, **env, **extra},
        capture_output=True,
        text=True,
        check=False,
    )


BUILD_MODES = [
    pytest.param("replace", "-mod=mod -modcacherw", "=>\t../containerd", id="replace"),
    pytest.param("work", "-modcacherw", "\t(devel)", id="work"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "goflags", "dep_row"), BUILD_MODES)
def test_wired_nerdctl_builds_offline(
    ws: Path,
    tmp_path: Path,
    offline_go_env: dict[str, str],
    mode: str,
    goflags: str,
    dep_row: str,
) -> None:
    """With the proxy off, nerdctl builds only because it is wired to the siblings."""
    nerdctl = ws / "nerdctl"
    binary = tmp_path / "bin" / "nerdctl"
    unwired = go_build(nerdctl, binary, offline_go_env, GOFLAGS=goflags)
    assert unwired.returncode != 0
    wire(nerdctl, mode, DEPENDENCIES)
    built = go_build(nerdctl, binary, offline_go_env, GOFLAGS=goflags)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    assert ran.stdout == "nerdctl via local containerd and local fifo\n"
    shown = subprocess.run(
        ["go", "version", "-m", str(binary)],
        env={**os.environ, **offline_go_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert dep_row in shown.split(f"\tdep\t{CONTAINERD}", 1)[1].split("\tdep\t")[0]


@pytest.mark.slow
def test_instrumentation_layer_end_to_end(
    ws: Path, tmp_path: Path, git: Git, offline_go_env: dict[str, str]
) -> None:
    """A probe set becomes one commit above the wiring, kept, and cut by rewiring."""
    nerdctl = ws / "nerdctl"
    # A sibling needing a newer Go would make go rewrite nerdctl's go.mod.
    (ws / "containerd" / "go.mod").write_text(f"module {CONTAINERD}\n\ngo 1.21\n")
    probes = tmp_path / "fixture.yml"
    probes.write_text(PROBES)
    wire(nerdctl, "replace", DEPENDENCIES)
    first = instrument(nerdctl, [probes], 1)
    assert first["changed"] is True
    assert first["applied"] == [
        {
            "probe_set": str(probes),
            "applied_ids": ["fixture.describe.entry"],
            "skipped": [],
        }
    ]
    subjects = [subject for subject, _ in layer_commits(git, nerdctl)]
    assert subjects[1:] == ["nerdlab: instrumentation"]
    head = git(nerdctl, "rev-parse", "HEAD")
    assert instrument(nerdctl, [probes], 1)["changed"] is False
    assert git(nerdctl, "rev-parse", "HEAD") == head
    assert not is_dirty(nerdctl)

    binary = tmp_path / "bin" / "nerdctl"
    built = go_build(nerdctl, binary, offline_go_env, GOFLAGS="-mod=mod -modcacherw")
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    assert 'id="fixture.describe.entry"' in ran.stderr
    assert 'name="nerdctl"' in ran.stderr
    assert not is_dirty(nerdctl)

    wire(nerdctl, "work", DEPENDENCIES)
    assert len(layer_commits(git, nerdctl)) == 1
    assert instrument(nerdctl, [probes], 1)["changed"] is True
    assert len(layer_commits(git, nerdctl)) == 2


def test_checkout_nerdctl_from_a_mirror(
    tmp_path: Path, nerdctl_upstream: Path, git: Git
) -> None:
    """nerdctl is checked out from a mirror at the ref given."""
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    git(mirrors, "clone", "--quiet", "--bare", str(nerdctl_upstream), "nerdctl.git")
    checkout = checkout_nerdctl(tmp_path / "ws", "v2.0.0", "mirror", str(mirrors))
    assert (checkout.name, checkout.source, checkout.branch) == (
        "nerdctl",
        "mirror",
        "nerdlab/v2.0.0",
    )
    assert checkout.path == str(tmp_path / "ws" / "nerdctl")
    assert checkout.base == git(nerdctl_upstream, "rev-parse", "v2.0.0^{commit}")


NOT_FOR_THE_PROXY = [
    pytest.param("main", "is not one; give a tag", id="branch"),
    pytest.param("pr:4242", "is not one; give a tag", id="pull-request"),
]


@pytest.mark.parametrize(("ref", "message"), NOT_FOR_THE_PROXY)
def test_checkout_nerdctl_module_needs_a_version(
    tmp_path: Path, ref: str, message: str
) -> None:
    """The module proxy is refused for a ref that is not a version."""
    with pytest.raises(ConfigError, match=message):
        checkout_nerdctl(tmp_path / "ws", ref, "module", "")
    assert not (tmp_path / "ws").exists()


def test_checkout_nerdctl_refuses_an_option_like_ref(tmp_path: Path) -> None:
    """A ref git could read as an option is refused before any source is chosen."""
    with pytest.raises(ConfigError, match="is not a usable ref"):
        checkout_nerdctl(tmp_path / "ws", "--upload-pack=x", "mirror", "")


DEPENDENCY_VERSIONS = [
    pytest.param("tag", id="tag"),
    pytest.param("pseudo", id="pseudo-version"),
]


@pytest.mark.parametrize("form", DEPENDENCY_VERSIONS)
def test_checkout_dependency_at_a_module_version(
    tmp_path: Path, upstream: Path, git: Git, form: str
) -> None:
    """A dependency is checked out at the commit its module version names."""
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    git(mirrors, "clone", "--quiet", "--bare", str(upstream), "fifo.git")
    commit = git(upstream, "rev-parse", "v1.0.0^{commit}")
    version = "v1.0.0" if form == "tag" else f"v1.0.1-0.20240101120000-{commit[:12]}"
    checkout = checkout_dependency(
        tmp_path / "ws", "fifo", FIFO, version, "mirror", str(mirrors)
    )
    assert (checkout.name, checkout.version, checkout.base) == ("fifo", version, commit)
    assert git(tmp_path / "ws" / "fifo", "rev-parse", "HEAD") == commit


def test_prepare_variant_builds_beside_the_plain_checkout(ws: Path, git: Git) -> None:
    """The fix variant is a sibling worktree with wiring, probes and the fix on top."""
    probe_set = ws / "probes.yml"
    probe_set.write_text(
        "description: t\nchecked_against: [t]\nupstream_status: not-for-upstream\n"
        "repo: nerdctl\nmodule: github.com/containerd/nerdctl/v2\nprobes:\n"
        "  - id: t.main.entry\n    packages: [.]\n    func: main\n    place: entry\n"
        "    values: {n: '1'}\n"
    )
    fix_file = ws / "fixes" / "say-fixed.yml"
    fix_file.parent.mkdir()
    fix_file.write_text(
        "description: t\nwhy: t\nchecked_against: [t]\nupstream_status: t\n"
        "repo: nerdctl\nmodule: github.com/containerd/nerdctl/v2\n"
        "subject: 'main: say fixed'\n"
        "body: t\nedits:\n  - id: say-fixed.greeting\n    packages: [.]\n"
        "    func: main\n    replace: fmt.Println\n"
        '    with: fmt.Println("fixed")\n'
    )
    nerdctl = ws / "nerdctl"
    wire(nerdctl, "replace", DEPENDENCIES)
    instrument(nerdctl, [probe_set], 1)
    first = prepare_variant(nerdctl, fix_file, [probe_set], "replace", DEPENDENCIES)
    variant = Path(first["path"])
    assert variant == ws / "nerdctl+say-fixed"
    subjects = git(variant, "log", "--format=%s", "-3").splitlines()
    assert subjects == [
        "main: say fixed",
        "nerdlab: instrumentation",
        "nerdlab: wire local containerd, fifo checkouts (replace)",
    ]
    again = prepare_variant(nerdctl, fix_file, [probe_set], "replace", DEPENDENCIES)
    assert again["changed"] is False
    assert git(nerdctl, "log", "--format=%s", "-1") == "nerdlab: instrumentation"
