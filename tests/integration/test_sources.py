"""Checkouts on real git repositories: cloned once, moved only when safe, layered.

Every repository is made by the test under ``tmp_path``; "upstream" is a local
path, and the module proxy is a ``file://`` directory, so nothing reaches the network.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from nerdlab import sources
from nerdlab.errors import ConfigError, SourceError
from nerdlab.sources import (
    LAYER_TRAILER,
    UPSTREAM_URLS,
    Layer,
    branch_name,
    check_ref,
    choose_source,
    ensure_layer,
    find_mirror,
    is_dirty,
    prepare_git_checkout,
    prepare_module_checkout,
)

Git = Callable[..., str]
Commit = Callable[[Path, str, str, str], str]


def test_all_is_held() -> None:
    """The public names of the module stay as they are."""
    assert sorted(sources.__all__) == sorted(
        [
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
    )


BRANCHES = [
    pytest.param("v1.7.14", "nerdlab/v1.7.14", id="tag"),
    pytest.param("main", "nerdlab/main", id="branch"),
    pytest.param("release/2.0", "nerdlab/release/2.0", id="slash"),
    pytest.param(
        "78b66fdcde0eeafb95fdf9915dc4ccbaef51021a", "nerdlab/78b66fdcde0e", id="sha"
    ),
    pytest.param("pr:4242", "nerdlab/pr-4242", id="pull-request"),
    pytest.param("..", "nerdlab/base", id="nothing-left"),
]


@pytest.mark.parametrize(("ref", "branch"), BRANCHES)
def test_branch_name(ref: str, branch: str) -> None:
    """Each ref gets a readable, valid branch name under nerdlab/."""
    assert branch_name(ref) == branch


USABLE_REFS = ["v1.7.14", "main", "release/2.0", "pr:4242", "78b66fdcde0e", "v2.0.0+x"]


@pytest.mark.parametrize("ref", USABLE_REFS)
def test_check_ref_passes_usable_refs(ref: str) -> None:
    """Tags, branches, commits and pull requests pass unchanged."""
    assert check_ref(ref) == ref


UNUSABLE_REFS = [
    pytest.param("--upload-pack=touch /tmp/x", id="option"),
    pytest.param("-b", id="short-option"),
    pytest.param("", id="empty"),
    pytest.param("v1..v2", id="range"),
    pytest.param("main.lock", id="lock"),
    pytest.param("release/", id="trailing-slash"),
    pytest.param("v1.0.", id="trailing-dot"),
    pytest.param("a b", id="space"),
    pytest.param("pr:12abc", id="bad-pull-request"),
]


@pytest.mark.parametrize("ref", UNUSABLE_REFS)
def test_check_ref_refuses_refs_git_could_misread(ref: str) -> None:
    """A ref git could take for an option, or that no ref can be, is refused."""
    with pytest.raises(ConfigError, match="is not a usable ref"):
        check_ref(ref)


def test_option_like_ref_never_reaches_git(tmp_path: Path, upstream: Path) -> None:
    """prepare_git_checkout refuses an option-like ref before running git on it."""
    dest = tmp_path / "thing"
    prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    with pytest.raises(ConfigError, match="is not a usable ref"):
        prepare_git_checkout("thing", dest, "--upload-pack=touch pwned", str(upstream))
    assert not (dest / "pwned").exists()


def test_clone_puts_the_checkout_on_nerdlab_branch(
    tmp_path: Path, upstream: Path, git: Git
) -> None:
    """A first call clones and checks out nerdlab/<ref> at the tag's commit."""
    dest = tmp_path / "ws" / "thing"
    checkout = prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    tagged = git(upstream, "rev-parse", "v1.0.0^{commit}")
    assert (checkout.base, checkout.branch, checkout.changed) == (
        tagged,
        "nerdlab/v1.0.0",
        True,
    )
    assert (checkout.source, checkout.origin, checkout.version) == (
        "git",
        str(upstream),
        "v1.0.0",
    )
    assert git(dest, "symbolic-ref", "--short", "HEAD") == "nerdlab/v1.0.0"
    assert git(dest, "rev-parse", "HEAD") == tagged
    assert (dest / "thing.go").read_text().endswith('"1.0.0"\n')
    assert not is_dirty(dest)


def test_second_call_changes_nothing(tmp_path: Path, upstream: Path, git: Git) -> None:
    """Preparing the same ref again reports no change and leaves HEAD alone."""
    dest = tmp_path / "thing"
    first = prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    second = prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    assert second.changed is False
    assert second.base == first.base == git(dest, "rev-parse", "HEAD")


REFS = [
    pytest.param("v1.1.0", id="tag"),
    pytest.param("main", id="branch"),
]


@pytest.mark.parametrize("ref", REFS)
def test_switching_refs(tmp_path: Path, upstream: Path, git: Git, ref: str) -> None:
    """Another ref moves to its own branch, and back again to the first one."""
    dest = tmp_path / "thing"
    first = prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    other = prepare_git_checkout("thing", dest, ref, str(upstream))
    assert other.changed
    assert other.base == git(upstream, "rev-parse", f"{ref}^{{commit}}")
    assert git(dest, "symbolic-ref", "--short", "HEAD") == branch_name(ref)
    back = prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    assert back.changed
    assert git(dest, "rev-parse", "HEAD") == first.base


def test_commit_ref_and_pull_request(tmp_path: Path, upstream: Path, git: Git) -> None:
    """A commit id and pr:NUMBER resolve to the commits upstream names."""
    dest = tmp_path / "thing"
    commit = git(upstream, "rev-parse", "v1.0.0^{commit}")
    by_commit = prepare_git_checkout("thing", dest, commit[:10], str(upstream))
    assert by_commit.base == commit
    pull_head = git(upstream, "rev-parse", "v1.1.0^{commit}")
    git(upstream, "update-ref", "refs/pull/17/head", pull_head)
    pull = prepare_git_checkout("thing", dest, "pr:17", str(upstream))
    assert (pull.base, pull.branch) == (pull_head, "nerdlab/pr-17")


def test_unknown_ref_names_the_ref(tmp_path: Path, upstream: Path) -> None:
    """A ref upstream does not have is refused with its name and the origin."""
    dest = tmp_path / "thing"
    with pytest.raises(SourceError, match=r"ref 'v9\.9\.9' not found in thing") as err:
        prepare_git_checkout("thing", dest, "v9.9.9", str(upstream))
    assert str(upstream) in str(err.value)


def test_a_failed_first_clone_leaves_nothing_behind(
    tmp_path: Path, upstream: Path, git: Git
) -> None:
    """After a first clone fails on its ref, the next run with a good ref succeeds."""
    dest = tmp_path / "thing"
    with pytest.raises(SourceError):
        prepare_git_checkout("thing", dest, "v9.9.9", str(upstream))
    assert not dest.exists()
    assert not (tmp_path / ".thing.partial").exists()
    checkout = prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    assert checkout.changed
    assert git(dest, "status", "--porcelain") == ""


def test_dirty_checkout_is_refused_and_untouched(
    tmp_path: Path, upstream: Path, git: Git
) -> None:
    """A modified tracked file stops a switch, and keeps its content."""
    dest = tmp_path / "thing"
    prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    (dest / "thing.go").write_text("package thing // my experiment\n")
    head = git(dest, "rev-parse", "HEAD")
    with pytest.raises(SourceError, match="has uncommitted changes; commit or stash"):
        prepare_git_checkout("thing", dest, "v1.1.0", str(upstream))
    assert (dest / "thing.go").read_text() == "package thing // my experiment\n"
    assert git(dest, "rev-parse", "HEAD") == head
    assert git(dest, "symbolic-ref", "--short", "HEAD") == "nerdlab/v1.0.0"


def test_directory_that_is_not_a_checkout_is_refused(
    tmp_path: Path, upstream: Path
) -> None:
    """A non-empty directory that is not a git checkout is never cloned into."""
    dest = tmp_path / "thing"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine\n")
    with pytest.raises(SourceError, match="exists and is not a git checkout"):
        prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    assert (dest / "notes.txt").read_text() == "mine\n"


def test_users_commit_on_the_branch_is_refused(
    tmp_path: Path, upstream: Path, git: Git, commit: Commit
) -> None:
    """A user's commit above nerdlab's layers stops setup, and the commit survives."""
    dest = tmp_path / "thing"
    prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    ensure_layer(dest, 0, note_layer("wiring", "one"))
    mine = commit(dest, "mine.txt", "my work\n", "thing: my experiment")
    prepare_git_checkout("thing", dest, "v1.1.0", str(upstream))
    with pytest.raises(SourceError, match="carries commits that are not nerdlab's"):
        prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    assert git(dest, "rev-parse", "nerdlab/v1.0.0") == mine


def test_users_commit_survives_a_moved_branch(
    tmp_path: Path, upstream: Path, git: Git, commit: Commit
) -> None:
    """A user's commit on nerdlab/main survives upstream main moving on."""
    dest = tmp_path / "thing"
    prepare_git_checkout("thing", dest, "main", str(upstream))
    mine = commit(dest, "mine.txt", "my work\n", "thing: my experiment")
    commit(upstream, "later.go", "package thing\n", "thing: later work")
    with pytest.raises(SourceError, match="carries commits that are not nerdlab's"):
        prepare_git_checkout("thing", dest, "main", str(upstream))
    assert git(dest, "rev-parse", "nerdlab/main") == mine


def test_moved_branch_without_user_commits_follows_upstream(
    tmp_path: Path, upstream: Path, git: Git, commit: Commit
) -> None:
    """nerdlab/main with only nerdlab's layers moves to upstream's new main."""
    dest = tmp_path / "thing"
    prepare_git_checkout("thing", dest, "main", str(upstream))
    ensure_layer(dest, 0, note_layer("wiring", "one"))
    later = commit(upstream, "later.go", "package thing\n", "thing: later")
    moved = prepare_git_checkout("thing", dest, "main", str(upstream))
    assert (moved.base, moved.changed) == (later, True)
    assert git(dest, "rev-parse", "HEAD") == later


def note_layer(name: str, content: str, file: str = "") -> Layer:
    """Return a layer that writes ``content`` into one file named after the layer."""
    target = file or f"{name}.txt"

    def apply(repo: Path) -> Sequence[str]:
        (repo / target).write_text(f"{content}\n")
        return [target]

    return Layer(name, f"nerdlab: {name}", f"digest-{content}", apply)


@pytest.fixture
def checkout(tmp_path: Path, upstream: Path) -> Path:
    """Return a checkout of v1.0.0 on its nerdlab branch."""
    dest = tmp_path / "thing"
    prepare_git_checkout("thing", dest, "v1.0.0", str(upstream))
    return dest


def layers(git: Git, repo: Path) -> list[str]:
    """Return the subjects and trailers of the commits above v1.0.0, bottom first."""
    log = git(repo, "log", "--reverse", "--format=%s|%(trailers:only,unfold)",
              "v1.0.0..HEAD")  # fmt: skip
    return [line.strip() for line in log.splitlines() if line.strip()]


def test_layer_is_committed_with_its_trailer(checkout: Path, git: Git) -> None:
    """A new layer is one commit with the subject and a Nerdlab-Layer trailer."""
    assert ensure_layer(checkout, 0, note_layer("wiring", "one"))
    assert layers(git, checkout) == [
        f"nerdlab: wiring|{LAYER_TRAILER}: wiring digest-one"
    ]
    assert (checkout / "wiring.txt").read_text() == "one\n"
    assert not is_dirty(checkout)


def test_same_digest_makes_no_commit(checkout: Path, git: Git) -> None:
    """A layer whose digest still matches is kept as it is."""
    ensure_layer(checkout, 0, note_layer("wiring", "one"))
    head = git(checkout, "rev-parse", "HEAD")
    assert not ensure_layer(checkout, 0, note_layer("wiring", "one"))
    assert git(checkout, "rev-parse", "HEAD") == head


def test_changed_digest_rebuilds_only_that_layer(checkout: Path, git: Git) -> None:
    """A changed upper layer is rebuilt on the same lower layer."""
    ensure_layer(checkout, 0, note_layer("wiring", "one"))
    wiring = git(checkout, "rev-parse", "HEAD")
    ensure_layer(checkout, 1, note_layer("instrumentation", "a"))
    assert ensure_layer(checkout, 1, note_layer("instrumentation", "b"))
    assert git(checkout, "rev-parse", "HEAD^") == wiring
    assert layers(git, checkout) == [
        f"nerdlab: wiring|{LAYER_TRAILER}: wiring digest-one",
        f"nerdlab: instrumentation|{LAYER_TRAILER}: instrumentation digest-b",
    ]
    assert (checkout / "instrumentation.txt").read_text() == "b\n"


def test_changed_lower_layer_cuts_the_layers_above(checkout: Path, git: Git) -> None:
    """Rebuilding a lower layer drops the layers above it, to be stacked again."""
    ensure_layer(checkout, 0, note_layer("wiring", "one"))
    ensure_layer(checkout, 1, note_layer("instrumentation", "a"))
    assert ensure_layer(checkout, 0, note_layer("wiring", "two"))
    assert layers(git, checkout) == [
        f"nerdlab: wiring|{LAYER_TRAILER}: wiring digest-two"
    ]
    assert not (checkout / "instrumentation.txt").exists()


def test_layer_above_a_missing_one_is_refused(checkout: Path) -> None:
    """A layer cannot go above a position that has no layer yet."""
    with pytest.raises(SourceError, match="lacks the nerdlab layers below inst"):
        ensure_layer(checkout, 1, note_layer("instrumentation", "a"))


def test_rebuilding_a_layer_refuses_a_dirty_checkout(checkout: Path, git: Git) -> None:
    """A layer is not rebuilt over uncommitted changes, which are kept."""
    ensure_layer(checkout, 0, note_layer("wiring", "one"))
    (checkout / "thing.go").write_text("package thing // mine\n")
    with pytest.raises(SourceError, match="has uncommitted changes"):
        ensure_layer(checkout, 0, note_layer("wiring", "two"))
    assert (checkout / "thing.go").read_text() == "package thing // mine\n"
    assert (checkout / "wiring.txt").read_text() == "one\n"


def test_empty_layer_is_still_a_commit(checkout: Path, git: Git) -> None:
    """A layer that touches nothing is recorded, so it is recognised next time."""
    layer = Layer("instrumentation", "nerdlab: instrumentation", "none", lambda _: [])
    ensure_layer(checkout, 0, note_layer("wiring", "one"))
    assert ensure_layer(checkout, 1, layer)
    assert not ensure_layer(checkout, 1, layer)
    assert len(layers(git, checkout)) == 2


def bare_clone(git: Git, upstream: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(dest.parent, "clone", "--quiet", "--bare", str(upstream), str(dest))
    return dest


MIRROR_LAYOUTS = [
    pytest.param("fifo", id="name"),
    pytest.param("fifo.git", id="name-dot-git"),
    pytest.param("containerd+fifo/repo", id="containerd-plus-name"),
]


@pytest.mark.parametrize("layout", MIRROR_LAYOUTS)
def test_find_mirror_layouts(
    tmp_path: Path, upstream: Path, git: Git, layout: str
) -> None:
    """A bare mirror is found in each supported layout."""
    mirrors = tmp_path / "mirrors"
    bare_clone(git, upstream, mirrors / layout)
    assert find_mirror(str(mirrors), "fifo") == str(mirrors / layout)
    assert find_mirror(str(mirrors), "nerdctl") is None


def test_find_mirror_takes_a_working_checkout(
    tmp_path: Path, upstream: Path, git: Git
) -> None:
    """A non-bare clone named after the repository is a mirror too."""
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    git(mirrors, "clone", "--quiet", str(upstream), "fifo")
    assert find_mirror(str(mirrors), "fifo") == str(mirrors / "fifo")


MIRROR_SETTINGS = [
    pytest.param("", None, id="unset"),
    pytest.param(
        "https://git.example.test/mirrors/",
        "https://git.example.test/mirrors/fifo.git",
        id="url",
    ),
]


@pytest.mark.parametrize(("mirrors", "found"), MIRROR_SETTINGS)
def test_find_mirror_settings(mirrors: str, found: str | None) -> None:
    """No setting finds nothing; a URL names NAME.git under it."""
    assert find_mirror(mirrors, "fifo") == found


def test_mirror_checkout_from_a_bare_mirror(
    tmp_path: Path, upstream: Path, git: Git
) -> None:
    """A checkout from a found mirror is on the same commits as upstream."""
    mirror = bare_clone(
        git, upstream, tmp_path / "mirrors" / "containerd+fifo" / "repo"
    )
    kind, origin = choose_source("mirror", "fifo", str(tmp_path / "mirrors"))
    assert (kind, origin) == ("mirror", str(mirror))
    checkout = prepare_git_checkout(
        "fifo", tmp_path / "fifo", "v1.1.0", origin, source=kind
    )
    assert checkout.source == "mirror"
    assert checkout.base == git(upstream, "rev-parse", "v1.1.0^{commit}")


def test_choose_source_mirror_missing(tmp_path: Path) -> None:
    """source=mirror without a mirror says where it looked and what to set."""
    with pytest.raises(ConfigError, match="no mirror of fifo under .*NERDLAB_MIRRORS"):
        choose_source("mirror", "fifo", str(tmp_path))


def test_choose_source_unknown_kind() -> None:
    """A source kind nerdlab does not know is refused with the known ones."""
    with pytest.raises(ConfigError, match="source='svn' is not one of auto, git"):
        choose_source("svn", "fifo", "")


def no_probe(url: str) -> bool:
    raise AssertionError(f"upstream was probed: {url}")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        pytest.param("git", ("git", UPSTREAM_URLS["fifo"]), id="git"),
        pytest.param("module", ("module", "GOPROXY"), id="module"),
    ],
)
def test_explicit_kinds_do_not_probe(
    monkeypatch: pytest.MonkeyPatch, kind: str, expected: tuple[str, str]
) -> None:
    """git and module are taken as given, without asking upstream."""
    monkeypatch.setattr(sources, "_upstream_answers", no_probe)
    assert choose_source(kind, "fifo", "") == expected


@pytest.mark.parametrize(
    ("answers", "has_mirror", "expected_kind"),
    [
        pytest.param(True, True, "git", id="upstream-answers"),
        pytest.param(False, True, "mirror", id="falls-back-to-mirror"),
        pytest.param(False, False, "module", id="falls-back-to-module"),
    ],
)
def test_auto_falls_back(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    upstream: Path,
    git: Git,
    answers: bool,
    has_mirror: bool,
    expected_kind: str,
) -> None:
    """auto takes upstream when it answers, else a mirror, else the module proxy."""
    asked: list[str] = []

    def answer(url: str) -> bool:
        asked.append(url)
        return answers

    monkeypatch.setattr(sources, "_upstream_answers", answer)
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    if has_mirror:
        bare_clone(git, upstream, mirrors / "containerd.git")
    kind, _ = choose_source("auto", "containerd", str(mirrors))
    assert kind == expected_kind
    assert asked == [UPSTREAM_URLS["containerd"]]


# A module proxy in a directory (https://go.dev/ref/mod#goproxy-protocol), served to
# go as GOPROXY=file://...: <module>/@v/list, <version>.info, .mod and .zip.
MODULE = "example.com/thing"
VERSION = "v1.2.0"
NESTED = "example.com/thing/tool"
NESTED_PSEUDO = "v0.0.0-20240102030405-0123456789ab"
UPSTREAM_COMMIT = "0123456789abcdef0123456789abcdef01234567"
TIME = "2024-01-02T03:04:05Z"


def publish(
    proxy: Path, module: str, version: str, files: dict[str, str], **info: object
) -> None:
    """Write one module version into a file:// proxy directory."""
    versions = proxy / module / "@v"
    versions.mkdir(parents=True, exist_ok=True)
    with (versions / "list").open("a") as listing:
        listing.write(f"{version}\n")
    (versions / f"{version}.info").write_text(
        json.dumps({"Version": version, "Time": TIME, **info})
    )
    (versions / f"{version}.mod").write_text(files["go.mod"])
    with zipfile.ZipFile(versions / f"{version}.zip", "w") as archive:
        for name, text in files.items():
            archive.writestr(f"{module}@{version}/{name}", text)


@pytest.fixture
def module_proxy(tmp_path: Path, offline_go_env: dict[str, str]) -> dict[str, str]:
    """Return go's environment with a file:// proxy serving example.com/thing."""
    proxy = tmp_path / "proxy"
    go_mod = (
        f"module {MODULE}\n\ngo 1.21\n\n"
        f"require {NESTED} v0.0.0\n\nreplace {NESTED} v0.0.0 => ./tool\n"
    )
    origin = {"VCS": "git", "URL": "https://example.com/thing", "Hash": UPSTREAM_COMMIT}
    publish(
        proxy,
        MODULE,
        VERSION,
        {"go.mod": go_mod, "thing.go": "package thing\n"},
        Origin=origin,
    )
    publish(
        proxy,
        NESTED,
        NESTED_PSEUDO,
        {"go.mod": f"module {NESTED}\n\ngo 1.21\n", "tool.go": "package tool\n"},
    )
    # A commit hash is a query the proxy answers with the pseudo-version's info.
    (proxy / NESTED / "@v" / f"{UPSTREAM_COMMIT}.info").write_text(
        json.dumps({"Version": NESTED_PSEUDO, "Time": TIME})
    )
    env = {**offline_go_env, "GOPROXY": proxy.as_uri(), "GOFLAGS": "-modcacherw"}
    return env


@pytest.mark.slow
def test_module_checkout_is_a_tagged_git_base(
    tmp_path: Path, module_proxy: dict[str, str], git: Git
) -> None:
    """A module from the proxy becomes one tagged commit, nested modules included."""
    dest = tmp_path / "ws" / "thing"
    checkout = prepare_module_checkout("thing", dest, MODULE, VERSION, env=module_proxy)
    assert (checkout.source, checkout.origin, checkout.version) == (
        "module",
        "GOPROXY",
        VERSION,
    )
    assert checkout.changed
    assert checkout.branch == "nerdlab/v1.2.0"
    assert git(dest, "rev-parse", f"{VERSION}^{{commit}}") == checkout.base
    assert (
        git(dest, "rev-parse", f"nerdlab-module/{VERSION}^{{commit}}") == checkout.base
    )
    assert git(dest, "symbolic-ref", "--short", "HEAD") == "nerdlab/v1.2.0"
    assert git(dest, "describe", "--tags", "--exact-match") in {
        VERSION,
        f"nerdlab-module/{VERSION}",
    }
    message = git(dest, "log", "-1", "--format=%B")
    assert message.startswith(f"nerdlab: base {MODULE}@{VERSION}")
    assert f"Upstream-Commit: {UPSTREAM_COMMIT}" in message
    assert (dest / "tool" / "tool.go").read_text() == "package tool\n"
    assert not is_dirty(dest)
    assert not (dest.parent / ".thing.partial").exists()


@pytest.mark.slow
def test_module_checkout_is_dated_like_the_version(
    tmp_path: Path, module_proxy: dict[str, str], git: Git
) -> None:
    """The base commit carries the time the proxy gives for the version."""
    dest = tmp_path / "thing"
    prepare_module_checkout("thing", dest, MODULE, VERSION, env=module_proxy)
    assert git(dest, "log", "-1", "--format=%cI") == "2024-01-02T03:04:05+00:00"


@pytest.mark.slow
def test_module_checkout_second_call_is_unchanged(
    tmp_path: Path, module_proxy: dict[str, str], git: Git
) -> None:
    """Preparing the same module version again changes nothing."""
    dest = tmp_path / "thing"
    first = prepare_module_checkout("thing", dest, MODULE, VERSION, env=module_proxy)
    second = prepare_module_checkout("thing", dest, MODULE, VERSION, env=module_proxy)
    assert second.changed is False
    assert second.base == first.base == git(dest, "rev-parse", "HEAD")


@pytest.mark.slow
def test_module_checkout_refuses_another_version(
    tmp_path: Path, module_proxy: dict[str, str]
) -> None:
    """A checkout of one module version is not silently replaced by another."""
    dest = tmp_path / "thing"
    prepare_module_checkout("thing", dest, MODULE, VERSION, env=module_proxy)
    with pytest.raises(SourceError, match="holds another source than"):
        prepare_module_checkout("thing", dest, MODULE, "v1.3.0", env=module_proxy)


@pytest.mark.slow
def test_module_the_proxy_lacks(tmp_path: Path, module_proxy: dict[str, str]) -> None:
    """A version the proxy cannot serve is refused with git or mirror as the way out."""
    dest = tmp_path / "thing"
    with pytest.raises(SourceError, match="cannot serve example.com/thing@v9.0.0"):
        prepare_module_checkout("thing", dest, MODULE, "v9.0.0", env=module_proxy)
    assert not dest.exists()


def test_missing_go_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without go on PATH the module source says to install the toolchain."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceError, match="go is not installed"):
        prepare_module_checkout("thing", tmp_path / "thing", MODULE, VERSION)


def test_run_git_failure_names_the_command(tmp_path: Path) -> None:
    """A failing git command becomes a SourceError with git's last line."""
    with pytest.raises(SourceError, match=f"git rev-parse failed in {tmp_path}: .+"):
        sources.run_git(tmp_path, "rev-parse", "HEAD")
    done = sources.run_git(tmp_path, "rev-parse", "HEAD", check=False)
    assert isinstance(done, subprocess.CompletedProcess) and done.returncode != 0


def test_git_failure_names_gits_fatal_line(tmp_path: Path) -> None:
    """A failing git call is reported by its fatal line, not its closing advice."""
    with pytest.raises(SourceError) as err:
        sources.run_git(None, "clone", "--quiet", str(tmp_path / "none"), "dest")
    message = str(err.value)
    assert message.startswith(f"git clone failed in {Path.cwd()}: fatal: ")
    assert "does not exist" in message
