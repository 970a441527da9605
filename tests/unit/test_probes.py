"""Unit tests for nerdlab.probes on small Go files the tests write themselves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nerdlab import probes
from nerdlab.errors import ConfigError, ProbeError, ProbeNotFound
from nerdlab.probes import (
    ApplyResult,
    ProbeSet,
    apply_probes,
    load_probe_set,
    load_probe_sets,
    plan_probes,
    render_statement,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "patches" / "probes"
MODULE = "example.com/sample"

# A method with a named result, an early return, a string and a raw string
# holding braces, a multi-line call, a closure, a switch and a loop.
PICK = """\
package sample

import (
	"errors"
	"strings"
)

type box struct{ items []string }

// pick joins items; comments may say strings.Join { too.
func (b *box) pick(i int) (s string, err error) {
	if i < 0 {
		return "", errors.New("negative {")
	}
	s = strings.Join(b.items[:i], `}
{`)
	joined := strings.Join([]string{
		s,
		"x",
	}, ",")
	check := func() error {
		return nil
	}
	switch joined {
	case "a":
		err = check()
	default:
		s = joined + string('{')
	}
	return s, err
}
"""

# The same function without the receiver, in a file that imports nothing.
BARE = """\
package sample

func pick(i int) int {
	/* a block comment: func pick(i int) { */
	n := i * 2
	return n
}
"""


def gofmt_tool() -> str | None:
    """Find gofmt on PATH or next to the go command."""
    found = shutil.which("gofmt")
    if found:
        return found
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        return None
    goroot = subprocess.run(
        [go, "env", "GOROOT"], capture_output=True, text=True, check=False
    ).stdout.strip()
    candidate = Path(goroot) / "bin" / "gofmt"
    return str(candidate) if candidate.exists() else None


def write_module(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "go.mod").write_text(f"module {MODULE}\n\ngo 1.21\n")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def probe_set_file(
    directory: Path, probes_: list[dict[str, Any]], **fields: Any
) -> Path:
    data: dict[str, Any] = {
        "description": "Test probes.",
        "checked_against": ["nothing upstream"],
        "upstream_status": "not-for-upstream",
        "repo": "fifo",
        "module": MODULE,
        "probes": probes_,
    }
    data.update(fields)
    path = directory / "set.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_set(directory: Path, probes_: list[dict[str, Any]]) -> ProbeSet:
    return load_probe_set(probe_set_file(directory, probes_))


def probe(
    place: Any,
    probe_id: str = "t.pick",
    values: dict[str, str] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": probe_id,
        "packages": ["."],
        "func": "pick",
        "receiver": "*box",
        "place": place,
        "values": values or {"i": "i"},
    }
    entry.update(kw)
    return {k: v for k, v in entry.items() if v is not None}


def outline(text: str, function: str = "pick") -> str:
    """Return one function's body with each probe statement shown as PROBE <id>."""
    out = []
    for line in text.split(f") {function}(", 1)[-1].splitlines()[1:]:
        found = re.search(r'nerdlabos\.Getpid\(\), "([^"]+)"', line)
        if found:
            indent = line[: len(line) - len(line.lstrip())]
            line = f"{indent}PROBE {found.group(1)}"
        out.append(line)
        if line == "}":
            break
    return "\n".join(out) + "\n"


def test_public_api_is_exported() -> None:
    """The names other modules use are in __all__."""
    assert set(probes.__all__) >= {
        "ApplyResult",
        "PlannedEdit",
        "Probe",
        "ProbeSet",
        "apply_probes",
        "gofmt_files",
        "load_probe_set",
        "load_probe_sets",
        "plan_probes",
        "render_statement",
    }
    assert all(hasattr(probes, name) for name in probes.__all__)


def test_render_statement_exact_format() -> None:
    """A probe renders to the one-line stderr print the trace parser reads."""
    got = render_statement(
        "fifo.openFifo.entry",
        "github.com/containerd/fifo",
        "openFifo",
        "entry",
        {"fn": "fn", "o_creat": "flag&syscall.O_CREAT != 0"},
        "\t",
    )
    assert got == (
        "\tnerdlabfmt.Fprintf(nerdlabos.Stderr, "
        '"NERDLAB-PROBE t=%d pid=%d id=%q mod=%q func=%q place=%q '
        'fn=%q o_creat=%q\\n", '
        "nerdlabtime.Now().UnixNano(), nerdlabos.Getpid(), "
        '"fifo.openFifo.entry", "github.com/containerd/fifo", "openFifo", "entry", '
        "nerdlabfmt.Sprint(fn), nerdlabfmt.Sprint(flag&syscall.O_CREAT != 0))\n"
    )


def test_render_statement_deferred_wraps_in_closure() -> None:
    """An exit probe is a deferred closure so it sees final named results."""
    got = render_statement(
        "a.b", "m", "(*c).f", "exit", [("err", "err")], "\t\t", deferred=True
    )
    lines = got.splitlines()
    assert lines[0] == "\t\tdefer func() {"
    assert lines[1].startswith("\t\t\tnerdlabfmt.Fprintf(")
    assert lines[2] == "\t\t}()"


PLACES = [
    pytest.param(
        "entry",
        """\
	PROBE t.pick
	if i < 0 {
""",
        id="entry-first-in-body",
    ),
    pytest.param(
        "exit",
        """\
	defer func() {
		PROBE t.pick
	}()
	if i < 0 {
""",
        id="exit-deferred-at-entry",
    ),
    pytest.param(
        "return",
        """\
	if i < 0 {
		PROBE t.pick
		return "", errors.New("negative {")
""",
        id="return-before-early-return",
    ),
    pytest.param(
        {"after": "i < 0"},
        """\
	if i < 0 {
		PROBE t.pick
		return "", errors.New("negative {")
""",
        id="after-block-opener-goes-inside",
    ),
    pytest.param(
        {"before": "strings.Join"},
        """\
	PROBE t.pick
	s = strings.Join(b.items[:i], `}
{`)
	PROBE t.pick
	joined := strings.Join([]string{
""",
        id="before-each-matching-statement",
    ),
    pytest.param(
        {"after": "joined := strings.Join"},
        """\
	}, ",")
	PROBE t.pick
	check := func() error {
""",
        id="after-multi-line-call-ends",
    ),
    pytest.param(
        {"after": "b.items"},
        """\
{`)
	PROBE t.pick
	joined := strings.Join([]string{
""",
        id="after-raw-string-spanning-lines",
    ),
    pytest.param(
        {"after": "check := func"},
        """\
	check := func() error {
		PROBE t.pick
		return nil
""",
        id="after-closure-head-goes-inside",
    ),
    pytest.param(
        {"after": 'case "a"'},
        """\
	case "a":
		PROBE t.pick
		err = check()
""",
        id="after-case-clause",
    ),
    pytest.param(
        {"after": ["no.such", "default"]},
        """\
	default:
		PROBE t.pick
		s = joined + string('{')
""",
        id="after-any-of-several-patterns",
    ),
]


@pytest.mark.parametrize(("place", "expected"), PLACES)
def test_place_kinds(tmp_path: Path, place: Any, expected: str) -> None:
    """Each place kind puts the statement where the data says, at the right indent."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    result = apply_probes(repo, make_set(tmp_path, [probe(place)]))
    assert result.changed_files == (Path("pick.go"),)
    assert expected in outline((repo / "pick.go").read_text())


def test_return_skips_returns_of_closures(tmp_path: Path) -> None:
    """A return probe marks the function's own returns, not a closure's."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    apply_probes(repo, make_set(tmp_path, [probe("return")]))
    body = outline((repo / "pick.go").read_text())
    assert body.count("PROBE t.pick") == 2
    assert "\t\tPROBE t.pick\n\t\treturn nil" not in body
    assert "\tPROBE t.pick\n\treturn s, err\n" in body


def test_comments_and_strings_do_not_match(tmp_path: Path) -> None:
    """Identifiers inside comments and strings never anchor a probe."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    probe_set = make_set(tmp_path, [probe({"after": "negative"})])
    with pytest.raises(
        ProbeNotFound, match=r"t\.pick.*after:negative.*\(\*box\)\.pick"
    ):
        plan_probes(repo, probe_set)


def test_statement_text_is_exact(tmp_path: Path) -> None:
    """The inserted text is the rendered statement, values in order."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    values = {"index": "i", "items": "len(b.items)"}
    apply_probes(repo, make_set(tmp_path, [probe("entry", values=values)]))
    text = (repo / "pick.go").read_text()
    expected = render_statement("t.pick", MODULE, "(*box).pick", "entry", values, "\t")
    assert expected in text


@pytest.mark.parametrize(
    ("source", "expected_import"),
    [
        pytest.param(
            PICK,
            '\t"strings"\n\n\tnerdlabfmt "fmt"\n\tnerdlabos "os"\n'
            '\tnerdlabtime "time"\n)\n',
            id="grouped-import-gets-a-new-group",
        ),
        pytest.param(
            BARE.replace("package sample\n", 'package sample\n\nimport "strings"\n'),
            'import "strings"\n\nimport (\n\tnerdlabfmt "fmt"\n',
            id="single-import-gets-a-declaration-after-it",
        ),
        pytest.param(
            BARE,
            'package sample\n\nimport (\n\tnerdlabfmt "fmt"\n\tnerdlabos "os"\n',
            id="no-import-gets-one-after-package",
        ),
    ],
)
def test_imports_added(tmp_path: Path, source: str, expected_import: str) -> None:
    """The aliased imports are added whatever shape the import section has."""
    repo = write_module(tmp_path / "repo", {"pick.go": source})
    receiver = "*box" if "(b *box)" in source else None
    apply_probes(repo, make_set(tmp_path, [probe("entry", receiver=receiver)]))
    assert expected_import in (repo / "pick.go").read_text()


def test_gofmt_clean(tmp_path: Path) -> None:
    """Files edited by every place kind at once are gofmt-clean."""
    gofmt = gofmt_tool()
    if gofmt is None:
        pytest.skip("gofmt not installed")
    repo = write_module(
        tmp_path / "repo", {"pick.go": PICK, "bare.go": BARE.replace("pick", "bare")}
    )
    specs = [probe(p.values[0], probe_id=f"t.{i}") for i, p in enumerate(PLACES)]
    specs.append(
        {
            "id": "t.bare",
            "packages": ["."],
            "func": "bare",
            "place": "exit",
            "values": {"n": "i"},
        }
    )
    result = apply_probes(repo, make_set(tmp_path, specs))
    assert len(result.changed_files) == 2
    listed = subprocess.run(
        [gofmt, "-l", *(str(repo / p) for p in result.changed_files)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout == ""
    assert probes.gofmt_files([repo / p for p in result.changed_files], gofmt) == []


def test_idempotent(tmp_path: Path) -> None:
    """Applying the same set twice leaves the second run with nothing to do."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    probe_set = make_set(tmp_path, [probe("entry"), probe("return", probe_id="t.ret")])
    first = apply_probes(repo, probe_set)
    after_first = (repo / "pick.go").read_text()
    second = apply_probes(repo, probe_set)
    assert len(first.inserted) == 3
    assert second == ApplyResult(second.edits, ())
    assert [e.action for e in second.edits] == ["present", "present"]
    assert (repo / "pick.go").read_text() == after_first
    assert after_first.count('nerdlabfmt "fmt"') == 1


def test_nothing_half_applied(tmp_path: Path) -> None:
    """A missing probe stops the run before any file is written."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK, "bare.go": BARE})
    before = {p.name: p.read_text() for p in repo.glob("*.go")}
    probe_set = make_set(
        tmp_path,
        [
            probe("entry"),
            {
                "id": "t.gone",
                "packages": ["."],
                "func": "gone",
                "place": "entry",
                "values": {"a": "1"},
            },
        ],
    )
    with pytest.raises(
        ProbeNotFound, match=r"probe t\.gone: function gone not found in \."
    ):
        apply_probes(repo, probe_set)
    assert {p.name: p.read_text() for p in repo.glob("*.go")} == before


def test_optional_probe_is_reported(tmp_path: Path) -> None:
    """An optional probe that matches nothing is listed as skipped, with why."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    probe_set = make_set(
        tmp_path,
        [probe("entry"), probe({"before": "no.such"}, probe_id="t.opt", optional=True)],
    )
    result = apply_probes(repo, probe_set)
    assert [e.probe_id for e in result.inserted] == ["t.pick"]
    (skipped,) = result.skipped
    assert skipped.probe_id == "t.opt"
    assert skipped.action == "skipped"
    assert "before:no.such" in skipped.reason


VARIANT_SOURCES = {
    "old": "func pick(flagT, flagD bool) {\n\t_ = flagT\n}\n",
    "new": "func pick(opts Opts) {\n\t_ = opts\n}\n\ntype Opts struct{ T bool }\n",
    "other": "func pick(x int) {\n\t_ = x\n}\n",
}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param("old", "nerdlabfmt.Sprint(flagT)", id="first-variant"),
        pytest.param("new", "nerdlabfmt.Sprint(opts.T)", id="second-variant"),
        pytest.param("other", "nerdlabfmt.Sprint(-1)", id="fallback-values"),
    ],
)
def test_variants(tmp_path: Path, version: str, expected: str) -> None:
    """The first variant whose parameters all appear in the signature wins."""
    source = "package sample\n\n" + VARIANT_SOURCES[version]
    repo = write_module(tmp_path / "repo", {"pick.go": source})
    spec = probe(
        "entry",
        receiver=None,
        values={"terminal": "-1"},
        variants=[
            {"params": ["flagT", "flagD"], "values": {"terminal": "flagT"}},
            {"params": ["opts", "Opts"], "values": {"terminal": "opts.T"}},
        ],
    )
    apply_probes(repo, make_set(tmp_path, [spec]))
    assert expected in (repo / "pick.go").read_text()


def test_no_variant_matches(tmp_path: Path) -> None:
    """Without fallback values, a signature no variant fits is a ProbeNotFound."""
    source = "package sample\n\n" + VARIANT_SOURCES["other"]
    repo = write_module(tmp_path / "repo", {"pick.go": source})
    spec = probe(
        "entry",
        receiver=None,
        variants=[{"params": ["flagT"], "values": {"a": "flagT"}}],
    )
    del spec["values"]
    with pytest.raises(ProbeNotFound, match=r"t\.pick.*\['flagT'\]"):
        plan_probes(repo, make_set(tmp_path, [spec]))


def test_receiver_distinguishes_methods(tmp_path: Path) -> None:
    """A probe with a receiver matches the method, without one the plain function."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK, "bare.go": BARE})
    probe_set = make_set(
        tmp_path,
        [
            probe("entry", probe_id="t.method"),
            probe("entry", probe_id="t.func", receiver=None),
        ],
    )
    edits = {e.probe_id: e for e in plan_probes(repo, probe_set)}
    assert edits["t.method"].path == Path("pick.go")
    assert '"(*box).pick"' in edits["t.method"].statement
    assert edits["t.func"].path == Path("bare.go")
    assert '"pick"' in edits["t.func"].statement


@pytest.mark.parametrize(
    ("files", "chosen"),
    [
        pytest.param(
            {"a_windows.go": BARE, "a_linux.go": BARE}, "a_linux.go", id="goos-suffix"
        ),
        pytest.param(
            {"a_test.go": BARE, "sub/a.go": BARE}, "sub/a.go", id="test-file-skipped"
        ),
        pytest.param(
            {
                "w.go": "//go:build windows\n\n" + BARE,
                "u.go": "//go:build !windows\n\n" + BARE,
            },
            "u.go",
            id="build-constraint",
        ),
        pytest.param(
            {
                "x.go": "//go:build linux && (amd64 || arm64)\n\n" + BARE,
                "y_darwin_arm64.go": BARE,
            },
            "x.go",
            id="constraint-and-goos-arch-suffix",
        ),
        pytest.param(
            {"c.go": "//go:build cgo\n\n" + BARE, "n.go": "//go:build !cgo\n\n" + BARE},
            "n.go",
            id="cgo-off",
        ),
    ],
)
def test_files_for_other_systems_are_skipped(
    tmp_path: Path, files: dict[str, str], chosen: str
) -> None:
    """Only files that build for Linux are searched."""
    repo = write_module(tmp_path / "repo", files)
    spec = probe("entry", receiver=None, packages=[".", "sub"])
    (edit,) = plan_probes(repo, make_set(tmp_path, [spec]))
    assert edit.path == Path(chosen)


def test_function_defined_twice_is_an_error(tmp_path: Path) -> None:
    """Two candidate definitions are refused rather than guessed between."""
    repo = write_module(tmp_path / "repo", {"a.go": BARE, "sub/b.go": BARE})
    spec = probe("entry", receiver=None, packages=[".", "sub"])
    with pytest.raises(ProbeError, match="a.go, sub/b.go"):
        plan_probes(repo, make_set(tmp_path, [spec]))


@pytest.mark.parametrize(
    ("place", "message"),
    [
        pytest.param(
            {"before": "default"}, "continues a block or clause", id="before-clause"
        ),
        pytest.param(
            {"after": "return s, err"}, "nothing runs after", id="after-return"
        ),
    ],
)
def test_impossible_places(tmp_path: Path, place: Any, message: str) -> None:
    """A place that would not compile or never run is refused with the reason."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    with pytest.raises(ProbeError, match=message):
        plan_probes(repo, make_set(tmp_path, [probe(place)]))


def test_wrong_module(tmp_path: Path) -> None:
    """A checkout of another module is refused before anything is searched."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    path = probe_set_file(tmp_path, [probe("entry")], module=["example.com/other"])
    with pytest.raises(
        ProbeError, match="example.com/sample is not one of example.com/other"
    ):
        plan_probes(repo, load_probe_set(path))


def test_module_alternatives_pick_the_checkouts(tmp_path: Path) -> None:
    """The module printed is the alternative the checkout's go.mod declares."""
    repo = write_module(tmp_path / "repo", {"pick.go": PICK})
    path = probe_set_file(tmp_path, [probe("entry")], module=["example.com/x", MODULE])
    (edit,) = plan_probes(repo, load_probe_set(path))
    assert f'"{MODULE}"' in edit.statement


GOOD_PROBE = {
    "id": "a.b",
    "packages": ["."],
    "func": "f",
    "place": "entry",
    "values": {"x": "x"},
}

INVALID = [
    pytest.param(
        {"upstream_status": "sent"},
        "upstream_status: instrumentation is never",
        id="status",
    ),
    pytest.param(
        {"repo": "docker"}, "repo: must be one of nerdctl, containerd, fifo", id="repo"
    ),
    pytest.param({"probes": []}, "probes: must be a non-empty list", id="no-probes"),
    pytest.param({"extra": 1}, "unknown field(s) ['extra']", id="unknown-set-field"),
    pytest.param(
        {"probes": [{**GOOD_PROBE, "place": "middle"}]},
        "probes[0].place: must be entry",
        id="place",
    ),
    pytest.param(
        {"probes": [{**GOOD_PROBE, "values": {"x": True}}]},
        "probes[0].values.x: must be a one-line Go expression",
        id="value-not-string",
    ),
    pytest.param(
        {"probes": [{**GOOD_PROBE, "values": {"id": "x"}}]},
        "probes[0].values: key 'id' is reserved",
        id="reserved-key",
    ),
    pytest.param(
        {"probes": [{**GOOD_PROBE, "func": "a.b"}]},
        "probes[0].func: 'a.b' is not a Go identifier",
        id="func",
    ),
    pytest.param(
        {"probes": [GOOD_PROBE, GOOD_PROBE]},
        "probes[1].id: duplicate probe id 'a.b'",
        id="duplicate",
    ),
    pytest.param(
        {"probes": [{**GOOD_PROBE, "optional": "yes"}]},
        "probes[0].optional: must be true or false",
        id="optional",
    ),
    pytest.param(
        {"probes": [{k: v for k, v in GOOD_PROBE.items() if k != "func"}]},
        "probes[0]: missing required field 'func'",
        id="missing-func",
    ),
    pytest.param(
        {"probes": [{**GOOD_PROBE, "variants": [{"params": ["a"]}]}]},
        "probes[0].variants[0]: needs both params and values",
        id="variant",
    ),
    pytest.param(
        {"probes": [{**GOOD_PROBE, "place": {"after": "+="}}]},
        "probes[0].place.after: '+=' holds no Go identifier",
        id="pattern",
    ),
    pytest.param(
        {"probes": [{**GOOD_PROBE, "packages": ["../x"]}]},
        "probes[0].packages[0]: must be a directory inside",
        id="package",
    ),
]


@pytest.mark.parametrize(("change", "message"), INVALID)
def test_validation_messages(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    """A bad probe set names the file and the field that is wrong."""
    path = probe_set_file(tmp_path, [GOOD_PROBE], **change)
    with pytest.raises(ConfigError) as caught:
        load_probe_set(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_invalid_yaml(tmp_path: Path) -> None:
    """A file that is not YAML is a ConfigError naming the file."""
    path = tmp_path / "bad.yml"
    path.write_text("probes: [\n")
    with pytest.raises(ConfigError, match=f"{path}: not valid YAML"):
        load_probe_set(path)


def test_duplicate_ids_across_sets(tmp_path: Path) -> None:
    """Probe ids are unique across all sets, since the trace is keyed by them."""
    for name in ("a", "b"):
        path = probe_set_file(tmp_path, [GOOD_PROBE])
        path.rename(tmp_path / f"{name}.yml")
    with pytest.raises(ConfigError, match="'a.b' is also used in"):
        load_probe_sets(tmp_path)


def test_shipped_probe_sets_load() -> None:
    """The probe sets in patches/probes are valid and cover the three repos."""
    sets = load_probe_sets(SHIPPED)
    assert sorted(s.repo for s in sets) == ["containerd", "fifo", "nerdctl"]
    ids = {p.id for s in sets for p in s.probes}
    assert {
        "fifo.openFifo.entry",
        "fifo.openFifo.stat",
        "fifo.openFifo.mkfifo",
        "cio.openFifos.entry",
        "cio.openFifos.exit",
        "containerd.loadTask.get",
        "nerdctl.Attach.task",
    } <= ids
    branches = {
        i.rsplit(".", 1)[-1] for i in ids if i.startswith("nerdctl.NewTask.branch.")
    }
    assert branches == {
        "log-uri",
        "terminal-binary",
        "attach",
        "tty-foreground",
        "container-io",
    }
    assert all(s.upstream_status == "not-for-upstream" for s in sets)
