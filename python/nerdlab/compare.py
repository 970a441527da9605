"""Compare two scenarios of recorded runs: what differs, and which probes saw it.

A side is ``RUN[:SCENARIO]``: RUN is a run id under the runs directory or a path to
a run directory, SCENARIO one of its scenarios (default: the run's first). Each side
is diagnosed, and the facts that tell a working attach from the bug are set side by
side: outcome, attach, root cause, NewTask's branch, each stdio stream, the error
chain. Probe events are compared by probe id and their values, after the noise that
changes from run to run is normalised (container ids, timestamps, pids, pointers, the
random FIFO directory under ``/run/containerd/fifo/``, the run directory's path), so
two runs of the same build show no differing probes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nerdlab.diagnose import ScenarioDiagnosis, diagnose_scenario
from nerdlab.errors import ConfigError
from nerdlab.trace import ProbeEvent

__all__ = [
    "Comparison",
    "FieldDiff",
    "ProbeDiff",
    "STREAMS",
    "Side",
    "SideResult",
    "StreamResult",
    "compare",
    "latest_two",
    "normalise",
    "parse_side",
    "probe_values",
    "resolve_sides",
    "run_dirs",
]

STREAMS = ("stdin", "stdout", "stderr")
_ATTACH_STEP = "attach"


@dataclass(frozen=True, slots=True)
class Side:
    """One scenario of one recorded run."""

    run_id: str
    run_dir: Path
    scenario: str

    @property
    def label(self) -> str:
        """``RUN:SCENARIO``, the way it is given on the command line."""
        return f"{self.run_id}:{self.scenario}"

    @property
    def directory(self) -> Path:
        """The scenario's directory inside the run directory."""
        return self.run_dir / self.scenario


@dataclass(frozen=True, slots=True)
class StreamResult:
    """One stdio stream of the task: the string containerd stored and its kind."""

    stream: str
    path: str | None
    kind: str | None
    scheme: str | None

    @property
    def kind_text(self) -> str:
        """``log-uri(binary)``, ``fifo``, ``empty``, or ``—`` when not seen."""
        if self.kind is None:
            return "—"
        return f"{self.kind}({self.scheme})" if self.scheme else self.kind


@dataclass(frozen=True, slots=True)
class SideResult:
    """What one side's diagnosis says, and its probes with the noise normalised."""

    side: Side
    outcome: str
    attach: str
    root_cause: str
    newtask_branch: str | None
    explanation: str
    stdio: tuple[StreamResult, ...]
    error_chain: tuple[str, ...]
    attach_duration_s: float | None
    probes: tuple[tuple[str, tuple[tuple[tuple[str, str], ...], ...]], ...] = field(
        repr=False
    )
    scenario: ScenarioDiagnosis = field(repr=False, compare=False)

    def stream(self, name: str) -> StreamResult:
        """The stream called ``name``; kind ``None`` when the run did not show it."""
        for item in self.stdio:
            if item.stream == name:
                return item
        return StreamResult(name, None, None, None)


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One probe field whose normalised values differ; when the probe fired more
    than once, its distinct values sorted and joined by `` | ``; ``""`` is an empty
    value and ``None`` a field that side never printed."""

    key: str
    a: str | None
    b: str | None


@dataclass(frozen=True, slots=True)
class ProbeDiff:
    """A probe id seen on both sides whose normalised values differ."""

    id: str
    a: tuple[tuple[tuple[str, str], ...], ...]
    b: tuple[tuple[tuple[str, str], ...], ...]
    fields: tuple[FieldDiff, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two sides and what differs between them."""

    a: SideResult
    b: SideResult
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    differing: tuple[ProbeDiff, ...]

    @property
    def probes_differ(self) -> bool:
        """Whether any probe id is one-sided or has different values."""
        return bool(self.only_a or self.only_b or self.differing)

    @property
    def facts_that_differ(self) -> tuple[str, ...]:
        """The names of the diagnosis facts that are not the same on both sides."""
        names: list[str] = []
        for name in ("outcome", "attach", "newtask_branch", "root_cause"):
            if getattr(self.a, name) != getattr(self.b, name):
                names.append(name)
        for stream in STREAMS:
            one, other = self.a.stream(stream), self.b.stream(stream)
            if (one.kind, one.scheme) != (other.kind, other.scheme):
                names.append(stream)
        if normalise_chain(self.a) != normalise_chain(self.b):
            names.append("error_chain")
        return tuple(names)


# --- sides ---------------------------------------------------------------------


def _read_run_json(run_dir: Path) -> dict[str, object]:
    path = run_dir / "run.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def _scenario_names(run_dir: Path, meta: dict[str, object]) -> list[str]:
    names = meta.get("scenarios")
    if isinstance(names, list) and names:
        return [str(name) for name in names]
    return sorted(path.parent.name for path in run_dir.glob("*/scenario.json"))


def run_dirs(runs_dir: Path) -> list[Path]:
    """Run directories under ``runs_dir``, oldest first (run ids sort by time)."""
    if not runs_dir.is_dir():
        return []
    return sorted(
        (path for path in runs_dir.iterdir() if (path / "run.json").is_file()),
        key=lambda path: path.name,
    )


def _names(items: Sequence[str], limit: int = 6) -> str:
    if not items:
        return "none"
    shown = ", ".join(items[-limit:])
    return f"…, {shown}" if len(items) > limit else shown


def _find_run(text: str, runs_dir: Path) -> Path | None:
    for candidate in (runs_dir / text, Path(text).expanduser()):
        if (candidate / "run.json").is_file():
            return candidate
    return None


def _missing_run(text: str, runs_dir: Path) -> ConfigError:
    path = Path(text).expanduser()
    for candidate in (runs_dir / text, path):
        if candidate.is_dir():
            return ConfigError(
                f"{candidate} is not a run directory: it has no run.json"
            )
    known = [run.name for run in run_dirs(runs_dir)]
    return ConfigError(
        f"no run {text!r}: neither {runs_dir / text} nor {path} is a run directory;"
        f" runs under {runs_dir}: {_names(known)}"
    )


def _side(run_dir: Path, scenario: str | None) -> Side:
    meta = _read_run_json(run_dir)
    run_id = str(meta.get("id") or run_dir.name)
    names = _scenario_names(run_dir, meta)
    if not names:
        raise ConfigError(f"run {run_id} ({run_dir}) has no scenarios")
    if scenario is None:
        scenario = names[0]
    elif scenario not in names:
        raise ConfigError(
            f"run {run_id} has no scenario {scenario!r}; it has: {', '.join(names)}"
        )
    if not (run_dir / scenario).is_dir():
        raise ConfigError(
            f"run {run_id} names scenario {scenario!r} but {run_dir / scenario}"
            " does not exist"
        )
    return Side(run_id=run_id, run_dir=run_dir, scenario=scenario)


def parse_side(text: str, runs_dir: Path) -> Side:
    """Read ``RUN[:SCENARIO]``: a run id under ``runs_dir`` or a run directory's
    path, then optionally one of its scenarios (default: the run's first)."""
    text = text.strip()
    if not text:
        raise ConfigError("a side to compare is empty; give RUN or RUN:SCENARIO")
    whole = _find_run(text, runs_dir)
    if whole is not None:
        return _side(whole, None)
    run_text, colon, scenario = text.rpartition(":")
    if colon and run_text and scenario and "/" not in scenario:
        run_dir = _find_run(run_text, runs_dir)
        if run_dir is None:
            raise _missing_run(run_text, runs_dir)
        return _side(run_dir, scenario)
    raise _missing_run(text, runs_dir)


def latest_two(runs_dir: Path) -> tuple[Side, Side]:
    """The two newest runs under ``runs_dir`` (by run id), older first, each with
    its first scenario."""
    runs = run_dirs(runs_dir)
    if len(runs) < 2:
        found = f"only {runs[0].name}" if runs else "none"
        raise ConfigError(
            f"comparing needs two runs with a run.json under {runs_dir}; found"
            f" {found}: run `inv repro` again, or name both sides"
        )
    return _side(runs[-2], None), _side(runs[-1], None)


def resolve_sides(a: str | None, b: str | None, runs_dir: Path) -> tuple[Side, Side]:
    """Both sides as given, or the two newest runs when neither is given."""
    if a is None and b is None:
        return latest_two(runs_dir)
    if a is None or b is None:
        raise ConfigError(
            "give both sides to compare (RUN[:SCENARIO] RUN[:SCENARIO]), or neither"
            " to compare the two newest runs"
        )
    return parse_side(a, runs_dir), parse_side(b, runs_dir)


# --- noise ---------------------------------------------------------------------

_HEX_ID = re.compile(r"\b[0-9a-f]{64}\b")
_FIFO_DIR = re.compile(r"(/fifo/)\d+(?=/)")
_TIME = re.compile(
    r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
)
_T_FIELD = re.compile(r"\bt=\d+")
_PID_FIELD = re.compile(r"\bpid=\d+")
_POINTER = re.compile(r"\b0x[0-9a-f]{4,}\b")
_RUNS_PATH = re.compile(r"/runs/[^/\s\"'?&=]+")
# Fields whose whole value is an id that changes every run.
_ID_KEYS = frozenset({"container_id", "task_id", "exec_id"})


def normalise(value: str, *, run_ids: Iterable[str] = (), key: str = "") -> str:
    """A value with run-specific noise replaced by placeholders."""
    if key in _ID_KEYS and value:
        return "<id>"
    for run_id in run_ids:
        if run_id:
            value = value.replace(run_id, "<run>")
    value = _RUNS_PATH.sub("/runs/<run>", value)
    value = _HEX_ID.sub("<id>", value)
    value = _FIFO_DIR.sub(r"\1<n>", value)
    value = _TIME.sub("<time>", value)
    value = _T_FIELD.sub("t=<t>", value)
    value = _PID_FIELD.sub("pid=<pid>", value)
    return _POINTER.sub("0x<ptr>", value)


def _run_ids(side: Side) -> tuple[str, ...]:
    # the longest first, so a path is replaced before the id inside it
    return tuple(
        sorted(
            {str(side.run_dir.resolve()), str(side.run_dir), side.run_id},
            key=len,
            reverse=True,
        )
    )


def probe_values(
    probe: ProbeEvent, *, run_ids: Iterable[str] = ()
) -> tuple[tuple[str, str], ...]:
    """A probe's value fields, normalised (t and pid are not values)."""
    ids = tuple(run_ids)
    return tuple(
        (key, normalise(value, run_ids=ids, key=key)) for key, value in probe.values
    )


def normalise_chain(result: SideResult) -> tuple[str, ...]:
    """The error chain with run-specific noise replaced."""
    ids = _run_ids(result.side)
    return tuple(normalise(layer, run_ids=ids) for layer in result.error_chain)


# --- comparing -----------------------------------------------------------------


def _result(side: Side) -> SideResult:
    scenario = diagnose_scenario(side.directory)
    diagnosis = scenario.diagnosis
    stdio = tuple(
        StreamResult(use.stream, use.path, use.kind, use.scheme)
        for use in diagnosis.stdio
    )
    attach = next((step for step in scenario.steps if step.name == _ATTACH_STEP), None)
    ids = _run_ids(side)
    probes: dict[str, list[tuple[tuple[str, str], ...]]] = {}
    for event in diagnosis.events:
        if isinstance(event, ProbeEvent):
            probes.setdefault(event.id, []).append(probe_values(event, run_ids=ids))
    return SideResult(
        side=side,
        outcome=diagnosis.outcome,
        attach=diagnosis.attach,
        root_cause=diagnosis.root_cause,
        newtask_branch=diagnosis.newtask_branch,
        explanation=diagnosis.explanation,
        stdio=stdio,
        error_chain=diagnosis.error_chain,
        attach_duration_s=attach.duration_s if attach else None,
        probes=tuple((key, tuple(values)) for key, values in probes.items()),
        scenario=scenario,
    )


def _field_values(
    occurrences: Sequence[tuple[tuple[str, str], ...]], key: str
) -> str | None:
    seen: list[str] = []
    for values in occurrences:
        for name, value in values:
            shown = value if value else '""'
            if name == key and shown not in seen:
                seen.append(shown)
    return " | ".join(sorted(seen)) if seen else None


def _field_diffs(
    a: Sequence[tuple[tuple[str, str], ...]], b: Sequence[tuple[tuple[str, str], ...]]
) -> tuple[FieldDiff, ...]:
    keys: list[str] = []
    for values in (*a, *b):
        keys += [key for key, _ in values if key not in keys]
    diffs = [
        FieldDiff(key, one, other)
        for key in keys
        if (one := _field_values(a, key)) != (other := _field_values(b, key))
    ]
    if len(a) != len(b):
        diffs.append(FieldDiff("times seen", str(len(a)), str(len(b))))
    return tuple(diffs)


def compare(a: Side, b: Side) -> Comparison:
    """Diagnose both sides and say what differs between them."""
    one, other = _result(a), _result(b)
    a_probes, b_probes = dict(one.probes), dict(other.probes)
    differing = tuple(
        ProbeDiff(key, values, b_probes[key], _field_diffs(values, b_probes[key]))
        for key, values in a_probes.items()
        if key in b_probes and sorted(values) != sorted(b_probes[key])
    )
    return Comparison(
        a=one,
        b=other,
        only_a=tuple(key for key in a_probes if key not in b_probes),
        only_b=tuple(key for key in b_probes if key not in a_probes),
        differing=differing,
    )
