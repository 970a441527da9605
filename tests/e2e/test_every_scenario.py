"""Every scenario of the investigation on the real stack, at the default version.

One `inv setup` (the plain build and the candidate-fix build side by side), then
`inv repro --scenario all`, then what each scenario must show. Where the real stack
differs from what one might expect (log-driver-none at v2.0.0-beta.2 has no "none"
driver; the fix costs the logs and blocks a writer nobody reads), the assertion is
what really happens. Needs root.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from stack import MIRRORS, PROJECT, run_inv

SOURCE, REF = ("mirror", "v2.0.0-beta.2") if MIRRORS else ("module", "v1.7.5")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the real stack needs root"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Set up once and run every scenario; yield each scenario's diagnosis.json."""
    base = tmp_path_factory.mktemp("scenarios")
    env = {
        "INVOKE_NERDLAB_WORKSPACE": str(base / "workspace"),
        "INVOKE_NERDLAB_RUNS": str(base / "runs"),
    }
    setup = run_inv("setup", "--source", SOURCE, "--nerdctl-ref", REF, env=env)
    assert setup.returncode == 0, setup.stdout[-3000:]
    repro = run_inv("repro", "--no-pull", "--scenario", "all", env=env)
    assert repro.returncode == 0, repro.stdout[-3000:]
    (run_dir,) = [p for p in (base / "runs").iterdir() if (p / "run.json").exists()]
    results = {
        path.parent.name: json.loads(path.read_text())
        for path in run_dir.glob("*/diagnosis.json")
    }
    yield {"dir": run_dir, "results": results, "stdout": repro.stdout, "env": env}
    run_inv("clean", env={})


def test_every_scenario_ran_and_the_table_is_saved(run: dict[str, Any]) -> None:
    """All shipped scenarios have a diagnosis, and results.md lists each."""
    shipped = {p.stem for p in (PROJECT / "scenarios").glob("*.yml")}
    assert set(run["results"]) == shipped
    table = (run["dir"] / "results.md").read_text()
    for name in shipped:
        assert name in table


@pytest.mark.parametrize("name", ["detached-attach", "detached-tty", "json-file-log"])
def test_detached_scenarios_reproduce(run: dict[str, Any], name: str) -> None:
    """run -d and run -dt both fail to attach on the log URI, by their own branch."""
    result = run["results"][name]
    assert result["outcome"] == "REPRODUCED"
    assert result["root_cause"] == "log-uri-treated-as-fifo"
    branch = "terminal-binary" if name == "detached-tty" else "log-uri"
    assert result["newtask_branch"] == branch


def test_interactive_has_fifos_and_attach_works(run: dict[str, Any]) -> None:
    """run -it creates real FIFOs, and attaching again after detaching works."""
    result = run["results"]["interactive"]
    assert result["attach"] == "succeeded"
    assert result["outcome"] == "NOT REPRODUCED"
    kinds = {entry["stream"]: entry["kind"] for entry in result["stdio"]}
    assert kinds["stdin"] == "fifo" and kinds["stdout"] == "fifo"
    listing = (run["dir"] / "interactive" / "state" / "fifo-dir.txt").read_text()
    assert any(
        line.startswith("p") and line.endswith("-stdout")
        for line in listing.splitlines()
    )


def test_the_candidate_fix_streams_and_its_cost_is_measured(
    run: dict[str, Any],
) -> None:
    """With the fix attach streams (FIXED); logs are lost and a lone writer blocks."""
    result = run["results"]["fixed-detached-attach"]
    assert result["outcome"] == "FIXED"
    assert result["attach"] == "succeeded"
    answers = {m["step"]: m["answer"] for m in result["measurements"]}
    assert answers == {"logs": "no", "writer-finished": "no"}


def test_json_file_log_holds_the_detached_output(run: dict[str, Any]) -> None:
    """Detached output went to the json-file log under the hashed data store."""
    log = run["results"]["json-file-log"]["json_file_log"]
    assert log["stdout_lines"] >= 1
    assert log["first_line"] == "Hello, world"
    assert log["data_store_hash"]["matches"] is True


def test_log_driver_none_is_explained(run: dict[str, Any]) -> None:
    """At these versions --log-driver=none does not exist; the report says so."""
    result = run["results"]["log-driver-none"]
    assert result["attach"] == "not-run"
    assert 'unknown logging driver "none"' in result["explanation"]


def test_compare_reads_at_a_glance(run: dict[str, Any]) -> None:
    """The detached and fixed runs compare side by side with their stdio kinds."""
    run_id = run["dir"].name
    done = run_inv(
        "repro",
        "--json",
        "--compare",
        f"{run_id}:detached-attach {run_id}:fixed-detached-attach",
        env=run["env"],
    )
    assert done.returncode == 0
    comparison = json.loads(done.stdout[done.stdout.index("{") :])
    assert comparison["a"]["outcome"] == "REPRODUCED"
    assert comparison["b"]["outcome"] == "FIXED"


def test_ctr_with_a_log_uri_fails_the_same_way(run: dict[str, Any]) -> None:
    """ctr built from the instrumented checkout hits the fault with no nerdctl."""
    result = run["results"]["ctr-log-uri"]
    assert result["outcome"] == "REPRODUCED"
    assert result["root_cause"] == "log-uri-treated-as-fifo"
    assert result["error_chain"][0] == "failed to open stdout fifo"
    assert any(step.startswith("openFifo") for step in result["code_path"])
    logged = (run["dir"] / "ctr-log-uri" / "state" / "logger-output.txt").read_text()
    assert "stdout Hello, world" in logged
