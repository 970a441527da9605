"""Drive a program through a real pseudo-terminal, as a person at a keyboard would.

``nerdctl run -it`` and ``nerdctl attach`` on a terminal container need a terminal on
stdin and stdout. A step of kind ``pty`` runs its program on the slave side of a new
pseudo-terminal (as its controlling terminal), keeps stderr on a pipe so probe lines
stay apart from what the container prints, and follows a short script:

    {"expect": "REGEX"}      wait until the output matches (since the last match)
    {"send": "TEXT"}         type TEXT (escape sequences such as \\x10 are decoded)
    {"sleep": SECONDS}

The step ends when the script is done and the program exits, when ``stop_after_script``
is set and the script is done, or at its time bound. Standard library only.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import re
import selectors
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nerdlab.runner import stop_group

__all__ = ["run_pty_step"]

_ROWS, _COLS = 40, 120


def _make_controlling_terminal() -> None:
    # Runs in the child after setsid(): stdin is the slave side of the pty.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _decode(text: str) -> bytes:
    return codecs.decode(text, "unicode_escape").encode("latin-1")


def run_pty_step(
    argv: Sequence[str],
    out_dir: Path,
    name: str,
    *,
    script: Sequence[dict[str, Any]],
    timeout_s: float,
    stop_after_script: bool = False,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """Run ``argv`` on a new pseudo-terminal, follow ``script``, record everything.

    Returns the step record fields: rc, timed_out, ended_early, script_done, the
    index of the first script action not done, and the file names of the terminal
    output (``.stdout``) and stderr.
    """
    stdout_path = out_dir / f"{name}.stdout"
    stderr_path = out_dir / f"{name}.stderr"
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", _ROWS, _COLS, 0, 0))
    clock = time.monotonic()
    deadline = clock + timeout_s
    record: dict[str, Any] = {
        "rc": None,
        "timed_out": False,
        "ended_early": False,
        "script_done": False,
        "script_stopped_at": 0,
        "error": None,
        "stdout": stdout_path.name,
        "stderr": stderr_path.name,
    }
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            env={**os.environ, "TERM": "xterm", **(env or {})},
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_make_controlling_terminal,
        )
    except OSError as exc:
        os.close(master)
        os.close(slave)
        record["error"] = f"cannot start {argv[0]}: {exc.strerror}"
        stderr_path.write_text(record["error"] + "\n")
        stdout_path.write_text("")
        return record
    os.close(slave)
    assert proc.stderr is not None
    os.set_blocking(master, False)
    os.set_blocking(proc.stderr.fileno(), False)
    selector = selectors.DefaultSelector()
    selector.register(master, selectors.EVENT_READ, "pty")
    selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
    screen = bytearray()
    searched_from = 0
    step = 0
    sleep_until = 0.0
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        while True:
            now = time.monotonic()
            if now >= deadline:
                record["timed_out"] = True
                break
            while step < len(script) and now >= sleep_until:
                action = script[step]
                if "send" in action:
                    os.write(master, _decode(str(action["send"])))
                elif "sleep" in action:
                    sleep_until = now + float(action["sleep"])
                elif "expect" in action:
                    found = re.search(
                        str(action["expect"]).encode(), bytes(screen[searched_from:])
                    )
                    if found is None:
                        break
                    searched_from += found.end()
                step += 1
            record["script_stopped_at"] = step
            if step >= len(script) and now >= sleep_until:
                record["script_done"] = True
                if stop_after_script:
                    record["ended_early"] = True
                    break
            if proc.poll() is not None and not selector.get_map():
                break
            for key, _ in selector.select(timeout=0.1):
                try:
                    chunk = os.read(key.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                if key.data == "pty":
                    screen += chunk
                    out.write(chunk)
                    out.flush()
                else:
                    err.write(chunk)
                    err.flush()
            if (
                proc.poll() is not None
                and step < len(script)
                and not selector.get_map()
            ):
                break
        selector.close()
    if proc.poll() is None:
        stop_group(proc)
    os.close(master)
    record["rc"] = proc.returncode
    record["duration_s"] = round(time.monotonic() - clock, 3)
    return record
