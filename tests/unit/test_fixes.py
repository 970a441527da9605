"""Unit tests for nerdlab.fixes on small Go files the tests write themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nerdlab.errors import ConfigError, ProbeError
from nerdlab.fixes import (
    PATCH_AUTHOR,
    Fix,
    FixNotFound,
    apply_fix,
    export_patch,
    load_fix,
    load_fixes,
    plan_fix,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "patches" / "fixes"
MODULE = "example.com/sample"

# Shaped like a function that picks a task's I/O: an if/else-if chain whose
# branches call creators, one call running over three lines, and comments and
# strings that mention the creators and hold braces.
SAMPLE = """\
package sample

import (
	"fmt"
	"strings"
)

type creator func() string

func newCreator(parts ...string) creator {
	return func() string {
		return strings.Join(parts, ",")
	}
}

func logCreator(uri string) creator {
	return newCreator("log", uri)
}

func binaryCreator(path string, args map[string]string) creator {
	return newCreator("binary", path, fmt.Sprint(args))
}

// Pick chooses how a task gets its I/O.
func Pick(attach, terminal, detach bool, uri string) (creator, error) {
	var c creator
	if attach {
		// not logCreator(uri) here: attach wants { the caller's stdio }
		c = newCreator("stdio", "{")
	} else if terminal && detach {
		args := map[string]string{"k": "v"}
		c = binaryCreator(uri, map[string]string{
			"k": args["k"],
		})
	} else if detach && uri != "" {
		msg := "logCreator(uri) {"
		c = logCreator(uri)
		_ = msg
	} else {
		c = newCreator("fifo")
	}
	if c == nil {
		return nil, fmt.Errorf("no creator for %q", uri)
	}
	return c, nil
}
"""

LOG_EDIT: dict[str, Any] = {
    "id": "sample.log",
    "packages": ["."],
    "func": "Pick",
    "replace": "logCreator",
    "with": '// fifos instead of the log uri\nc = newCreator("fifo", uri)\n',
}
BINARY_EDIT: dict[str, Any] = {
    "id": "sample.binary",
    "packages": ["."],
    "func": "Pick",
    "replace": "c = binaryCreator",
    "with": 'c = newCreator("fifo", "tty", args["k"])\n',
}


def fix_data(*edits: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "description": "Give detached samples fifos.",
        "why": "The sample cannot be attached otherwise.",
        "checked_against": ["the test itself"],
        "upstream_status": "candidate; not sent upstream",
        "repo": "fifo",
        "module": MODULE,
        "subject": "sample: give detached samples fifos",
        "body": "Detached samples get fifos, so that attach works.",
        "edits": list(edits) or [LOG_EDIT],
    }
    data.update(overrides)
    return data


def write_fix(directory: Path, data: dict[str, Any], name: str = "sample-fifos") -> Fix:
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_fix(path)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "go.mod").write_text(f"module {MODULE}\n\ngo 1.21\n")
    (root / "sample.go").write_text(SAMPLE)
    return root


def assert_gofmt_clean(path: Path) -> None:
    gofmt = shutil.which("gofmt") or "/usr/local/go/bin/gofmt"
    if not Path(gofmt).exists():
        pytest.skip("gofmt is not installed")
    listed = subprocess.run(
        [gofmt, "-l", str(path)], capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "", (path.read_text(), listed.stdout)


# --------------------------------------------------------------------------
# Replacing statements


def test_single_line_statement_is_replaced_in_place(repo: Path, tmp_path: Path) -> None:
    fix = write_fix(tmp_path, fix_data(LOG_EDIT))
    result = apply_fix(repo, fix)
    text = (repo / "sample.go").read_text()
    assert result.changed_files == (Path("sample.go"),)
    assert [e.action for e in result.edits] == ["replace"]
    assert result.edits[0].replaced == "\t\tc = logCreator(uri)\n"
    assert result.edits[0].pattern == "logCreator"
    expected = (
        '\t\tmsg := "logCreator(uri) {"\n'
        "\t\t// nerdlab fix sample.log\n"
        "\t\t// fifos instead of the log uri\n"
        '\t\tc = newCreator("fifo", uri)\n'
        "\t\t_ = msg\n"
    )
    assert expected in text
    assert "c = logCreator(uri)" not in text
    # The comment and the string that mention logCreator are left alone.
    assert "// not logCreator(uri) here" in text
    assert_gofmt_clean(repo / "sample.go")


def test_multi_line_statement_is_replaced_whole(repo: Path, tmp_path: Path) -> None:
    fix = write_fix(tmp_path, fix_data(BINARY_EDIT))
    (step,) = plan_fix(repo, fix)
    first = (
        SAMPLE.splitlines().index("\t\tc = binaryCreator(uri, map[string]string{") + 1
    )
    assert (step.first_line, step.last_line) == (first, first + 2)
    assert step.replaced.endswith("\t\t})\n")
    apply_fix(repo, fix)
    text = (repo / "sample.go").read_text()
    assert "binaryCreator(uri" not in text
    assert '"k": args["k"],' not in text
    assert (
        '\t\targs := map[string]string{"k": "v"}\n'
        "\t\t// nerdlab fix sample.binary\n"
        '\t\tc = newCreator("fifo", "tty", args["k"])\n'
        "\t} else if detach"
    ) in text
    assert_gofmt_clean(repo / "sample.go")


def test_nested_replacement_keeps_relative_tabs(repo: Path, tmp_path: Path) -> None:
    edit = {
        **LOG_EDIT,
        "with": 'if uri != "" {\n\tc = newCreator("fifo", uri)\n}\n',
    }
    apply_fix(repo, write_fix(tmp_path, fix_data(edit)))
    text = (repo / "sample.go").read_text()
    assert '\t\tif uri != "" {\n\t\t\tc = newCreator("fifo", uri)\n\t\t}\n' in text
    assert_gofmt_clean(repo / "sample.go")


def test_two_edits_in_one_file(repo: Path, tmp_path: Path) -> None:
    fix = write_fix(tmp_path, fix_data(LOG_EDIT, BINARY_EDIT))
    result = apply_fix(repo, fix)
    assert [e.action for e in result.replaced] == ["replace", "replace"]
    text = (repo / "sample.go").read_text()
    assert "logCreator(uri)\n" not in text and "binaryCreator(uri" not in text
    assert_gofmt_clean(repo / "sample.go")


@pytest.mark.parametrize("marker", [True, False])
def test_applying_twice_changes_nothing(
    repo: Path, tmp_path: Path, marker: bool
) -> None:
    fix = write_fix(tmp_path, fix_data(LOG_EDIT, BINARY_EDIT))
    apply_fix(repo, fix, marker=marker)
    once = (repo / "sample.go").read_text()
    assert ("// nerdlab fix" in once) is marker
    again = apply_fix(repo, fix, marker=marker)
    assert (repo / "sample.go").read_text() == once
    assert again.changed_files == ()
    assert [e.action for e in again.edits] == ["present", "present"]
    reason = "marker comment found" if marker else "replacement text found"
    assert {e.reason for e in again.edits} == {reason}


def test_replacement_that_still_matches_is_not_applied_again(
    repo: Path, tmp_path: Path
) -> None:
    edit = {**LOG_EDIT, "with": 'c = logCreator(uri + "?fifo")\n'}
    fix = write_fix(tmp_path, fix_data(edit))
    apply_fix(repo, fix, marker=False)
    once = (repo / "sample.go").read_text()
    assert [e.action for e in apply_fix(repo, fix, marker=False).edits] == ["present"]
    assert (repo / "sample.go").read_text() == once


# --------------------------------------------------------------------------
# Edits that do not apply


def test_missing_pattern_names_the_fix_function_and_pattern(
    repo: Path, tmp_path: Path
) -> None:
    edit = {**LOG_EDIT, "replace": "cio.LogURI"}
    fix = write_fix(tmp_path, fix_data(edit))
    with pytest.raises(FixNotFound) as caught:
        apply_fix(repo, fix)
    message = str(caught.value)
    for part in ("sample-fifos", "sample.log", "Pick", "'cio.LogURI'", "sample.go"):
        assert part in message
    assert "no longer applies" in message
    assert (repo / "sample.go").read_text() == SAMPLE


def test_missing_function_is_reported(repo: Path, tmp_path: Path) -> None:
    fix = write_fix(tmp_path, fix_data({**LOG_EDIT, "func": "NewTask"}))
    with pytest.raises(FixNotFound, match=r"sample-fifos.*NewTask not found in \."):
        plan_fix(repo, fix)


def test_optional_edit_is_skipped_with_a_reason(repo: Path, tmp_path: Path) -> None:
    absent = {**BINARY_EDIT, "replace": "TerminalBinaryIO", "optional": True}
    fix = write_fix(tmp_path, fix_data(LOG_EDIT, absent))
    result = apply_fix(repo, fix)
    assert [e.action for e in result.edits] == ["replace", "skipped"]
    (skipped,) = result.skipped
    assert skipped.edit_id == "sample.binary"
    assert "optional edit not applied" in skipped.reason
    assert "TerminalBinaryIO" in skipped.reason


def test_a_failing_edit_leaves_the_checkout_untouched(
    repo: Path, tmp_path: Path
) -> None:
    fix = write_fix(tmp_path, fix_data(LOG_EDIT, {**BINARY_EDIT, "replace": "nope"}))
    with pytest.raises(FixNotFound, match="sample.binary"):
        apply_fix(repo, fix)
    assert (repo / "sample.go").read_text() == SAMPLE


def test_a_pattern_matching_two_statements_is_refused(
    repo: Path, tmp_path: Path
) -> None:
    fix = write_fix(tmp_path, fix_data({**LOG_EDIT, "replace": "c = newCreator"}))
    with pytest.raises(ProbeError, match="lengthen the pattern"):
        plan_fix(repo, fix)


def test_a_clause_line_cannot_be_replaced(repo: Path, tmp_path: Path) -> None:
    fix = write_fix(tmp_path, fix_data({**LOG_EDIT, "replace": "detach && uri"}))
    with pytest.raises(ProbeError, match="continues a block or clause"):
        plan_fix(repo, fix)


def test_wrong_module_is_refused(repo: Path, tmp_path: Path) -> None:
    fix = write_fix(tmp_path, fix_data(module="example.com/other"))
    with pytest.raises(ProbeError, match="right checkout"):
        plan_fix(repo, fix)


# --------------------------------------------------------------------------
# Validating fix files


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"why": None}, "why: must be a non-empty string"),
        ({"surprise": 1}, "unknown field(s) ['surprise']"),
        ({"repo": "runc"}, "repo: must be one of nerdctl, containerd, fifo"),
        ({"upstream_status": "not-for-upstream"}, "upstream_status: that status"),
        ({"subject": "give samples fifos"}, "subject: 'give samples fifos' must read"),
        ({"subject": "sample: " + "x" * 80}, "subject: is 88 characters"),
        ({"edits": []}, "edits: must be a non-empty list"),
        ({"edits": [{**LOG_EDIT, "with": "  c = x\n"}]}, "edits[0].with: line 1"),
        ({"edits": [{**LOG_EDIT, "with": "c = f(\n"}]}, "unbalanced brackets"),
        ({"edits": [{**LOG_EDIT, "replace": '"x"'}]}, "holds no Go identifier"),
        ({"edits": [{**LOG_EDIT, "optional": "yes"}]}, "edits[0].optional"),
        ({"edits": [{**LOG_EDIT, "func": "a.b"}]}, "edits[0].func"),
        ({"edits": [{**LOG_EDIT, "packages": ["../x"]}]}, "edits[0].packages[0]"),
        ({"edits": [LOG_EDIT, LOG_EDIT]}, "edits[1].id: duplicate edit id"),
    ],
)
def test_validation_names_file_and_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    data = fix_data()
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    if "why" in change:
        message = "missing required field 'why'"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_fix(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_missing_edit_field_and_bad_yaml(tmp_path: Path) -> None:
    edit = {k: v for k, v in LOG_EDIT.items() if k != "with"}
    path = tmp_path / "no-with.yml"
    path.write_text(yaml.safe_dump(fix_data(edit)))
    with pytest.raises(ConfigError, match=r"edits\[0\]: missing required field 'with'"):
        load_fix(path)
    path.write_text("edits: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_fix(path)
    with pytest.raises(ConfigError, match="cannot read fix"):
        load_fix(tmp_path / "absent.yml")


def test_shipped_fix_loads() -> None:
    (fix,) = load_fixes(SHIPPED)
    assert fix.id == "detached-fifos"
    assert fix.repo == "nerdctl"
    assert fix.subject.startswith("taskutil: ")
    assert fix.upstream_status.startswith("candidate")
    assert "nerdctl#2877" in fix.upstream_status
    assert [e.id for e in fix.edits] == [
        "detached-fifos.log-uri",
        "detached-fifos.terminal-binary",
    ]
    log_uri, terminal = fix.edits
    assert log_uri.patterns == ("cio.LogURI",) and not log_uri.optional
    assert "ioCreator = cio.NewCreator(cio.WithStdio)" in log_uri.statements
    assert terminal.patterns == ("cio.TerminalBinaryIO",) and terminal.optional
    assert "cio.NewCreator(cio.WithStdio, cio.WithTerminal)" in terminal.statements
    assert fix.message.startswith(f"{fix.subject}\n\n")


# --------------------------------------------------------------------------
# Exporting a patch


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_export_patch_applies_only_the_fix(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git(repo, "init", "--quiet", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    # Work above the base (nerdlab's own layers) stays out of the patch.
    (repo / "sample.go").write_text(SAMPLE.replace("var c creator", "var c creator //"))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "layer")
    head = git(repo, "rev-parse", "HEAD").strip()
    branches = git(repo, "branch", "--list")
    fix = write_fix(tmp_path, fix_data(LOG_EDIT, BINARY_EDIT))

    patch = export_patch(repo, fix, base, tmp_path / "out")

    text = patch.read_text()
    assert patch.parent == (tmp_path / "out").resolve()
    assert f"From: {PATCH_AUTHOR}" in text
    assert "Subject: [PATCH] sample: give detached samples fifos" in text
    assert "Detached samples get fifos, so that attach works." in text
    assert "diff --git a/sample.go b/sample.go" in text
    assert text.count("diff --git") == 1
    assert "nerdlab fix" not in text
    assert "var c creator //" not in text
    assert '+\t\tc = newCreator("fifo", uri)' in text
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "branch", "--list") == branches
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_export_patch_refuses_an_unknown_base(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    git(repo, "init", "--quiet", "-b", "main")
    fix = write_fix(tmp_path, fix_data())
    with pytest.raises(ProbeError, match="is not a commit"):
        export_patch(repo, fix, "v9.9.9", tmp_path / "out")
