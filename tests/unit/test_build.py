"""A build is proven from the binary itself, and skipped while its stamp is current."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nerdlab import build
from nerdlab.build import (
    STAMP_NAME,
    BuildError,
    BuildInfo,
    ModuleLine,
    build_nerdctl,
    parse_go_version_m,
    proof_record,
    prove,
)
from nerdlab.errors import NerdlabError

# `go version -m` of a nerdctl built with nerdlab's replace block, in the layout
# go1.26 prints (tabs, a trailing tab after versions, an empty row after a
# replacement of a directory); hashes shortened, build rows trimmed.
NERDCTL_VERSION_M = (
    "/ws/nerdctl/_output/nerdctl: go1.26.8\n"
    "\tpath\tgithub.com/containerd/nerdctl/v2/cmd/nerdctl\n"
    "\tmod\tgithub.com/containerd/nerdctl/v2\t(devel)\t\n"
    "\tdep\tgithub.com/containerd/containerd/api\tv1.9.0\th1:HZ/lic=\n"
    "\tdep\tgithub.com/containerd/containerd/v2\tv2.1.4\n"
    "\t=>\t../containerd\t(devel)\t\n"
    "\t\n"
    "\tdep\tgithub.com/containerd/fifo\tv1.1.0\n"
    "\t=>\t../fifo\t(devel)\t\n"
    "\tdep\tgithub.com/containerd/log\tv0.1.0\th1:TCJt7io=\n"
    "\tdep\tgithub.com/containerd/nerdctl/mod/tigron\tv0.0.0\n"
    "\t=>\t./mod/tigron\t(devel)\t\n"
    "\tdep\texample.com/pinned\tv1.0.0\n"
    "\t=>\texample.com/fork\tv1.0.1\th1:abc=\n"
    "\tbuild\t-buildmode=exe\n"
    '\tbuild\t-ldflags="-X github.com/containerd/nerdctl/v2/pkg/version.Version='
    'v2.1.6"\n'
    "\tbuild\tCGO_ENABLED=0\n"
    "\tbuild\tvcs=git\n"
)


def test_parse_reads_go_version_main_module_and_deps() -> None:
    """The Go version, main module and every dep with its replacement are read."""
    info = parse_go_version_m(NERDCTL_VERSION_M)
    assert info == BuildInfo(
        go_version="go1.26.8",
        main="github.com/containerd/nerdctl/v2",
        deps=(
            ModuleLine("github.com/containerd/containerd/api", "v1.9.0", None, None),
            ModuleLine(
                "github.com/containerd/containerd/v2",
                "v2.1.4",
                "../containerd",
                "(devel)",
            ),
            ModuleLine("github.com/containerd/fifo", "v1.1.0", "../fifo", "(devel)"),
            ModuleLine("github.com/containerd/log", "v0.1.0", None, None),
            ModuleLine(
                "github.com/containerd/nerdctl/mod/tigron",
                "v0.0.0",
                "./mod/tigron",
                "(devel)",
            ),
            ModuleLine("example.com/pinned", "v1.0.0", "example.com/fork", "v1.0.1"),
        ),
    )


DEP_LOOKUPS = [
    pytest.param("github.com/containerd/fifo", "../fifo", id="replaced"),
    pytest.param("github.com/containerd/log", None, id="not-replaced"),
]


@pytest.mark.parametrize(("path", "replaced_by"), DEP_LOOKUPS)
def test_dep_lookup(path: str, replaced_by: str | None) -> None:
    """A dep is found by module path, with its replacement or none."""
    dep = parse_go_version_m(NERDCTL_VERSION_M).dep(path)
    assert dep is not None and dep.replaced_by == replaced_by


def test_dep_lookup_of_an_absent_module() -> None:
    """A module the binary does not contain gives None."""
    assert parse_go_version_m(NERDCTL_VERSION_M).dep("example.com/absent") is None


FIRST_LINES = [
    pytest.param("nerdctl: go1.22.0", "go1.22.0", id="plain"),
    pytest.param("/tmp/a: b/nerdctl: go1.26.8", "go1.26.8", id="colon-in-path"),
    pytest.param("./app: go1.26.8-X:jsonv2", "go1.26.8-X:jsonv2", id="experiment"),
    pytest.param("./app: go1.21.0 X:boringcrypto", None, id="old-experiment-form"),
]


@pytest.mark.parametrize(("first", "go"), FIRST_LINES)
def test_first_line_names_the_go_version(first: str, go: str | None) -> None:
    """The Go version is the word after the last ': ' of the first line."""
    if go is None:
        with pytest.raises(BuildError):
            parse_go_version_m(f"{first}\n\tpath\tx\n")
        return
    assert parse_go_version_m(f"{first}\n\tpath\tx\n").go_version == go


NOT_GO = [
    pytest.param("", id="empty"),
    pytest.param("/bin/ls: could not read Go build info\n", id="not-go"),
]


@pytest.mark.parametrize("text", NOT_GO)
def test_parse_refuses_output_without_build_info(text: str) -> None:
    """Output without a 'BINARY: goX.Y.Z' first line is refused."""
    with pytest.raises(BuildError, match="no build information; is it a Go binary"):
        parse_go_version_m(text)


def go_tool() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists():
        pytest.skip("go is not installed")
    return found


def go_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Return an environment in which go builds offline, caching under tmp_path."""
    return {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOFLAGS": "-modcacherw",
        "GOMODCACHE": str(tmp_path / "gomodcache"),
        "CGO_ENABLED": "0",
        **extra,
    }


PROBE_ID = "nerdlab.test.dep.entry"


@pytest.fixture
def tiny_app(tmp_path: Path) -> Path:
    """Return an app directory beside a dep/ module that carries a probe id."""
    go_tool()
    dep = tmp_path / "dep"
    dep.mkdir()
    (dep / "go.mod").write_text("module example.com/dep/v2\n\ngo 1.21\n")
    (dep / "dep.go").write_text(f'package dep\n\nconst Probe = "{PROBE_ID}"\n')
    app = tmp_path / "app"
    app.mkdir()
    (app / "go.mod").write_text(
        "module example.com/app\n\ngo 1.21\n\nrequire example.com/dep/v2 v2.0.0\n"
    )
    (app / "main.go").write_text(
        'package main\n\nimport "example.com/dep/v2"\n\n'
        "func main() { println(dep.Probe) }\n"
    )
    return app


def go_build(app: Path, tmp_path: Path, **extra: str) -> Path:
    done = subprocess.run(
        [go_tool(), "build", "-o", "app", "."],
        cwd=app,
        env=go_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return app / "app"


@pytest.mark.slow
def test_prove_a_replaced_build(tiny_app: Path, tmp_path: Path) -> None:
    """A binary built with a replace shows it, and carries the probe id."""
    with (tiny_app / "go.mod").open("a") as go_mod:
        go_mod.write("\nreplace example.com/dep/v2 => ../dep\n")
    binary = go_build(tiny_app, tmp_path, GOFLAGS="-mod=mod -modcacherw")
    proof = prove(
        binary,
        {"example.com/dep/v2": "../dep"},
        [PROBE_ID, "nerdlab.absent.exit"],
        go=go_tool(),
    )
    assert proof.replaced == {"example.com/dep/v2": "../dep"}
    assert proof.probes_found == (PROBE_ID,)
    assert proof.probes_missing == ("nerdlab.absent.exit",)
    assert not proof.ok
    assert proof.go_version.startswith("go1.")
    record = proof_record(proof)
    assert record["ok"] is False
    assert json.loads(json.dumps(record))["probes_found"] == [PROBE_ID]


@pytest.mark.slow
def test_prove_with_every_probe_is_ok(tiny_app: Path, tmp_path: Path) -> None:
    """A proof with no missing probe is ok."""
    with (tiny_app / "go.mod").open("a") as go_mod:
        go_mod.write("\nreplace example.com/dep/v2 => ../dep\n")
    binary = go_build(tiny_app, tmp_path, GOFLAGS="-mod=mod -modcacherw")
    proof = prove(binary, {"example.com/dep/v2": "../dep"}, [PROBE_ID], go=go_tool())
    assert proof.ok


@pytest.mark.slow
def test_prove_a_go_work_build(tiny_app: Path, tmp_path: Path) -> None:
    """A binary built through go.work is proven to use the local module."""
    (tiny_app / "go.work").write_text("go 1.21\n\nuse (\n\t.\n\t../dep\n)\n")
    binary = go_build(tiny_app, tmp_path)
    proof = prove(binary, {"example.com/dep/v2": "../dep"}, [PROBE_ID], go=go_tool())
    assert proof.replaced == {"example.com/dep/v2": "../dep"}


def test_prove_refuses_a_binary_not_built_against_the_checkout(tmp_path: Path) -> None:
    """A binary whose dep has no replacement is refused, naming module and target."""
    fake_go = tmp_path / "go"
    fake_go.write_text(
        "#!/bin/sh\n"
        "printf '%s: go1.26.8\\n\\tmod\\tapp\\t(devel)\\t\\n' \"$3\"\n"
        "printf '\\tdep\\texample.com/dep/v2\\tv2.0.0\\th1:x=\\n'\n"
    )
    fake_go.chmod(0o755)
    binary = tmp_path / "app"
    binary.write_bytes(b"\x7fELF")
    with pytest.raises(
        BuildError, match=r"not built against the local example\.com/dep/v2 checkout"
    ) as caught:
        prove(binary, {"example.com/dep/v2": "../dep"}, [], go=str(fake_go))
    assert "'=> ../dep'" in str(caught.value)


@pytest.mark.slow
def test_prove_refuses_a_module_the_binary_lacks(
    tiny_app: Path, tmp_path: Path
) -> None:
    """A binary that does not contain the expected module at all is refused."""
    (tiny_app / "go.work").write_text("go 1.21\n\nuse (\n\t.\n\t../dep\n)\n")
    binary = go_build(tiny_app, tmp_path)
    with pytest.raises(BuildError, match="not built against the local"):
        prove(binary, {"example.com/dep/v1": "../dep"}, [], go=go_tool())


def elf_not_go(tmp_path: Path) -> Path:
    path = tmp_path / "ls"
    shutil.copy(Path("/bin/ls").resolve(), path)
    return path


def script_not_go(tmp_path: Path) -> Path:
    path = tmp_path / "script"
    path.write_text("#!/bin/sh\n")
    return path


NOT_GO_BINARIES = [
    pytest.param(elf_not_go, id="elf"),
    pytest.param(
        script_not_go,
        id="script",
    ),
]


@pytest.mark.parametrize("make", NOT_GO_BINARIES)
def test_prove_refuses_a_binary_that_is_not_go(
    tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    """A file go cannot read build information from fails with a reason."""
    not_go = make(tmp_path)
    with pytest.raises(BuildError, match=f"go version -m {not_go} failed: .+"):
        prove(not_go, {}, [], go=go_tool())


MAKEFILE = """\
binaries:
\t@mkdir -p _output
\t@echo built >> ../builds.log
\t@echo making nerdctl
\t@cp nerdctl.sh _output/nerdctl
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost",
         "-c", "commit.gpgsign=false", "-C", str(repo), *args],
        check=True, capture_output=True,
    )  # fmt: skip


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Return a workspace with a make-able nerdctl/ and a fifo/ checkout, committed."""
    go_tool()
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("nerdctl", "fifo"):
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "--quiet", "-b", "main")
    (tmp_path / "nerdctl" / "Makefile").write_text(MAKEFILE)
    (tmp_path / "nerdctl" / "nerdctl.sh").write_text("#!/bin/sh\necho nerdctl\n")
    (tmp_path / "nerdctl" / ".gitignore").write_text("_output/\n")
    (tmp_path / "fifo" / "fifo.go").write_text("package fifo\n")
    commit_all(tmp_path / "nerdctl", "nerdctl: start")
    commit_all(tmp_path / "fifo", "fifo: start")
    return tmp_path


def builds(workspace: Path) -> int:
    log = workspace / "builds.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def build_env() -> dict[str, str]:
    return {
        "PATH": f"{Path(go_tool()).parent}{os.pathsep}{os.environ['PATH']}",
        "GOTOOLCHAIN": "local",
    }


def test_build_runs_make_and_writes_the_stamp(workspace: Path) -> None:
    """The first build runs make, keeps its log and stamps the trees and Go version."""
    nerdctl, fifo = workspace / "nerdctl", workspace / "fifo"
    built, seconds = build_nerdctl(nerdctl, [fifo], build_env())
    assert built and seconds >= 0
    assert builds(workspace) == 1
    assert (nerdctl / "_output" / "nerdctl").exists()
    assert (nerdctl / "_output" / "build.log").read_text() == "making nerdctl\n"
    stamp = json.loads((nerdctl / "_output" / STAMP_NAME).read_text())
    assert stamp["go"].startswith("go1.")
    assert set(stamp["trees"]) == {"nerdctl", "fifo"}
    assert all(len(tree) == 40 for tree in stamp["trees"].values())


def test_second_build_is_skipped(workspace: Path) -> None:
    """A build with the same trees and Go version does not run make."""
    nerdctl, fifo = workspace / "nerdctl", workspace / "fifo"
    build_nerdctl(nerdctl, [fifo], build_env())
    assert build_nerdctl(nerdctl, [fifo], build_env()) == (False, 0.0)
    assert builds(workspace) == 1


def change_fifo_tree(workspace: Path) -> None:
    (workspace / "fifo" / "fifo.go").write_text("package fifo\n\nconst X = 1\n")
    commit_all(workspace / "fifo", "fifo: change")


def empty_commit_on_nerdctl(workspace: Path) -> None:
    commit_all(workspace / "nerdctl", "nerdctl: same tree")


def remove_binary(workspace: Path) -> None:
    (workspace / "nerdctl" / "_output" / "nerdctl").unlink()


def corrupt_stamp(workspace: Path) -> None:
    (workspace / "nerdctl" / "_output" / STAMP_NAME).write_text("{not json")


def older_go_in_stamp(workspace: Path) -> None:
    path = workspace / "nerdctl" / "_output" / STAMP_NAME
    stamp = json.loads(path.read_text())
    path.write_text(json.dumps({**stamp, "go": "go1.21.0"}))


REBUILDS = [
    pytest.param(change_fifo_tree, 2, id="dependency-tree-changed"),
    pytest.param(empty_commit_on_nerdctl, 1, id="new-commit-same-tree"),
    pytest.param(remove_binary, 2, id="binary-removed"),
    pytest.param(corrupt_stamp, 2, id="stamp-corrupt"),
    pytest.param(older_go_in_stamp, 2, id="go-version-changed"),
]


@pytest.mark.parametrize(("change", "expected_builds"), REBUILDS)
def test_stamp_decides_whether_to_rebuild(
    workspace: Path, change: Callable[[Path], None], expected_builds: int
) -> None:
    """Only a changed tree, Go version, binary or stamp makes make run again."""
    nerdctl, fifo = workspace / "nerdctl", workspace / "fifo"
    build_nerdctl(nerdctl, [fifo], build_env())
    change(workspace)
    built, _ = build_nerdctl(nerdctl, [fifo], build_env())
    assert built is (expected_builds == 2)
    assert builds(workspace) == expected_builds


def test_failed_make_is_a_build_error(workspace: Path) -> None:
    """A failing make is reported with its last lines and its log; no stamp is left."""
    nerdctl = workspace / "nerdctl"
    (nerdctl / "Makefile").write_text("binaries:\n\t@echo compiling >&2\n\t@false\n")
    with pytest.raises(BuildError, match=r"make binaries failed in .*compiling") as err:
        build_nerdctl(nerdctl, [], build_env())
    assert f"full log: {nerdctl}/_output/build.log" in str(err.value)
    assert "compiling" in (nerdctl / "_output" / "build.log").read_text()
    assert not (nerdctl / "_output" / STAMP_NAME).exists()


def test_make_without_a_binary_is_a_build_error(workspace: Path) -> None:
    """A make that succeeds without writing _output/nerdctl is a failure."""
    nerdctl = workspace / "nerdctl"
    (nerdctl / "Makefile").write_text("binaries:\n\t@echo nothing to do\n")
    with pytest.raises(BuildError, match="make binaries failed"):
        build_nerdctl(nerdctl, [], build_env())


def test_stale_binary_is_removed_before_make(workspace: Path) -> None:
    """An old binary does not survive a build that fails to write a new one."""
    nerdctl, fifo = workspace / "nerdctl", workspace / "fifo"
    build_nerdctl(nerdctl, [fifo], build_env())
    (nerdctl / "Makefile").write_text("binaries:\n\t@true\n")
    change_fifo_tree(workspace)
    with pytest.raises(BuildError):
        build_nerdctl(nerdctl, [fifo], build_env())
    assert not (nerdctl / "_output" / "nerdctl").exists()


def test_missing_go_is_a_build_error(workspace: Path) -> None:
    """Without go on PATH the build fails as a BuildError that says what is missing."""
    with pytest.raises(BuildError, match="go"):
        build_nerdctl(workspace / "nerdctl", [], {"PATH": str(workspace / "empty")})


def test_build_error_is_a_nerdlab_error() -> None:
    """BuildError is reported like every other nerdlab error."""
    assert issubclass(build.BuildError, NerdlabError)
