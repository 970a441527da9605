"""One line per task: what it did, whether it changed anything, how long it took.

nerdlab's playbooks are its progress log. Ansible's default output spends three lines
on a task and none on its duration; this prints one, and details only where they
matter (a failure's message, a debug task's lines). The recap keeps Ansible's own
``ok=N changed=N failed=N`` wording.
"""

from __future__ import annotations

import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: nerdlab_progress
type: stdout
short_description: one line per task, with its status and duration
description:
  - Prints each task once it has run on every host, as status, name and seconds.
"""

_WIDTH = 72
# Bookkeeping tasks show only when they fail: argument checks, facts, flow control.
_QUIET_ACTIONS = frozenset(
    {
        "validate_argument_spec",
        "ansible.builtin.validate_argument_spec",
        "set_fact",
        "ansible.builtin.set_fact",
        "meta",
        "ansible.builtin.meta",
    }
)


class CallbackModule(CallbackBase):  # type: ignore[misc]
    """Print one line per task."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "nerdlab_progress"

    def __init__(self) -> None:
        super().__init__()
        self._task_name = ""
        self._started = 0.0
        self._status = ""
        self._details: list[str] = []
        self._quiet = False

    def _flush(self) -> None:
        quiet = self._quiet and self._status in ("ok", "skipped")
        if self._task_name and self._status not in ("", "skipped") and not quiet:
            self._print_task()
        self._task_name = ""
        self._status = ""
        self._details = []

    def _print_task(self) -> None:
        took = time.monotonic() - self._started
        name = self._task_name
        if len(name) > _WIDTH:
            name = name[: _WIDTH - 1] + "…"
        self._display.display(f"  {self._status:<8} {name:<{_WIDTH}} {took:6.1f}s")
        for line in self._details:
            self._display.display(f"           {line}")

    def _status_of(self, result: object, changed: bool) -> None:
        rank = {"": 0, "skipped": 1, "ok": 2, "changed": 3, "FAILED": 4}
        status = "changed" if changed else "ok"
        if rank[status] > rank[self._status]:
            self._status = status
        del result

    def v2_playbook_on_play_start(self, play: object) -> None:
        self._flush()
        self._display.display(f"{play.get_name()}")  # type: ignore[attr-defined]

    def v2_playbook_on_task_start(self, task: object, is_conditional: bool) -> None:
        self._flush()
        self._task_name = task.get_name()  # type: ignore[attr-defined]
        self._quiet = task.action in _QUIET_ACTIONS  # type: ignore[attr-defined]
        self._started = time.monotonic()

    def v2_playbook_on_handler_task_start(self, task: object) -> None:
        self.v2_playbook_on_task_start(task, False)

    def _debug_lines(self, result: object) -> None:
        res = result._result  # type: ignore[attr-defined]
        msg = res.get("msg")
        action = result._task.action  # type: ignore[attr-defined]
        if (
            action in ("debug", "ansible.builtin.debug")
            and msg
            and "results" not in res
        ):
            self._details += msg if isinstance(msg, list) else [str(msg)]

    def v2_runner_on_ok(self, result: object) -> None:
        res = result._result  # type: ignore[attr-defined]
        self._status_of(result, bool(res.get("changed")))
        self._debug_lines(result)

    def v2_runner_item_on_ok(self, result: object) -> None:
        res = result._result  # type: ignore[attr-defined]
        self._status_of(result, bool(res.get("changed")))
        self._debug_lines(result)

    def v2_runner_on_skipped(self, result: object) -> None:
        if not self._status:
            self._status = "skipped"

    def v2_runner_on_failed(self, result: object, ignore_errors: bool = False) -> None:
        if ignore_errors:
            self._status_of(result, False)
            return
        self._status = "FAILED"
        res = result._result  # type: ignore[attr-defined]
        message = str(res.get("msg") or "")
        if message in ("", "non-zero return code"):
            # A command's own words say more than Ansible's summary of it.
            message = str(res.get("stderr") or res.get("module_stderr") or message)
        lines = [line for line in message.strip().splitlines() if line.strip()]
        host = result._host.get_name()  # type: ignore[attr-defined]
        if host not in ("local", "localhost", "controller"):
            # With several hosts in a play, say whose failure this is.
            lines = [f"{host}: {line}" for line in lines]
        # Enough of a multi-line message to keep its file and line (a YAML error
        # ends with a caret), not a whole build log.
        self._details += (
            lines[:3] + (["…"] if len(lines) > 4 else []) + lines[-1:]
            if len(lines) > 3
            else lines
        )

    def v2_runner_item_on_failed(self, result: object) -> None:
        self.v2_runner_on_failed(result)

    def v2_runner_on_unreachable(self, result: object) -> None:
        self._status = "FAILED"
        res = result._result  # type: ignore[attr-defined]
        host = result._host.get_name()  # type: ignore[attr-defined]
        self._details.append(f"{host}: {res.get('msg', 'unreachable')}")

    def v2_playbook_on_stats(self, stats: object) -> None:
        self._flush()
        for host in sorted(stats.processed.keys()):  # type: ignore[attr-defined]
            summary = stats.summarize(host)  # type: ignore[attr-defined]
            self._display.display(
                f"{host}: ok={summary['ok']} changed={summary['changed']} "
                f"failed={summary['failures']} unreachable={summary['unreachable']}"
            )
