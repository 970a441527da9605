"""The names nerdlab promises to scripts and tests stay where they are."""

from __future__ import annotations

import importlib

import pytest

import nerdlab

PUBLIC = {
    "nerdlab": [
        "Diagnosis",
        "Expectation",
        "NerdlabError",
        "ProbeEvent",
        "RunDiagnosis",
        "address_hash",
        "classify_stdio",
        "diagnose_lines",
        "diagnose_run",
        "parse_lines",
        "render_terminal",
        "split_chain",
        "to_json",
    ],
    "nerdlab.gomod": [
        "CONTAINERD_MODULES",
        "FIFO_MODULE",
        "GoMod",
        "ModuleVersion",
        "Requirement",
        "add_replace_block",
        "git_ref_for_version",
        "has_replace_block",
        "parse_go_mod",
        "parse_module_version",
        "read_go_mod",
        "remove_replace_block",
        "render_go_work",
    ],
    "nerdlab.sources": [
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
    ],
    "nerdlab.runner": [
        "StepResult",
        "list_tree",
        "main",
        "read_files",
        "run_plan",
        "run_step",
    ],
    "nerdlab.scenarios": ["Scenario", "available", "load_scenario", "render_plan"],
    "nerdlab.image": ["DEFAULT_IMAGE", "build_image_archive", "is_static_elf", "main"],
    "nerdlab.build": [
        "BuildInfo",
        "BuildProof",
        "build_nerdctl",
        "parse_go_version_m",
        "prove",
    ],
    "nerdlab.targets": [
        "DEFAULT_LIMA_INSTANCE",
        "SHARED_SETTINGS",
        "TARGET_FORMS",
        "ControllerPaths",
        "Target",
        "controller_vars",
        "host_vars",
        "hosts_from_listing",
        "instance_for",
        "inventory",
        "is_loopback",
        "needs_controller_sources",
        "parse_target",
        "parse_targets",
        "remote_paths",
        "run_vars",
        "ssh_command",
    ],
    "nerdlab.doctor": [
        "PROBE_SCRIPT",
        "Check",
        "blocking",
        "check_target",
        "probe",
        "read_probe",
    ],
    "nerdlab.matrix": [
        "HostResult",
        "Matrix",
        "Versions",
        "build_matrix",
        "matrix_dict",
        "matrix_markdown",
        "read_versions",
        "render_matrix",
        "write_matrix",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC), ids=str)
def test_all_is_held(module: str) -> None:
    """Each module's __all__ is exactly the promised names, and each resolves."""
    loaded = importlib.import_module(module)
    assert sorted(loaded.__all__) == sorted(PUBLIC[module])
    for name in loaded.__all__:
        assert hasattr(loaded, name), f"{module}.{name}"


def test_package_reexports_resolve_to_their_modules() -> None:
    """A name re-exported by the package is the module's own object."""
    from nerdlab import diagnose

    assert nerdlab.diagnose_run is diagnose.diagnose_run


def test_runner_and_image_need_only_the_standard_library(tmp_path) -> None:
    """The modules that run on a target import with no third-party package."""
    import subprocess
    import sys
    from pathlib import Path

    python_dir = Path(nerdlab.__file__).resolve().parents[1]
    code = "import nerdlab.runner, nerdlab.image; print('ok')"
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={"PYTHONPATH": str(python_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "ok", done.stderr
