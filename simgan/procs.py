"""Run a long-lived command (a BentoML server, a Prefect worker or server) so that one Ctrl-C or SIGTERM stops it.

Why a wrapper: these tools start children of their own (BentoML's worker processes, some in sessions of their
own; the Prefect worker's flow-run processes; the Prefect server's uvicorn), and on a signal they first wind
down in-flight work, which an idle Prefect worker took 20 to 35 s to do. Signalling only the process that was
started leaves the rest running, or waiting. Here the command runs in a process group of its own; the first
SIGINT/SIGTERM/SIGHUP sends SIGTERM to that group, and SIGKILL to the group and every descendant that left it
(listed from /proc before the signal) if anything is still alive `grace_s` later; a second Ctrl-C does that at
once. The exit status is the command's, or 128 + the signal that stopped the wrapper.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
IDLE_GRACE_S = 1.0  # after the stop signal, how long a command with no children left may take to exit by itself


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else every CPU)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux: from /proc/*/stat; elsewhere an empty list)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_all(process: subprocess.Popen, known: Sequence[int]) -> None:
    _signal_group(process.pid, signal.SIGKILL)
    for pid in {*known, *descendants(process.pid)}:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_group(command: Sequence[str], *, env: dict[str, str] | None = None, grace_s: float = 15.0) -> int:
    """Run `command` in its own process group until it exits or this process gets a stop signal (see above)."""
    process = subprocess.Popen(list(command), env=env, start_new_session=True)
    stop: list[int] = []

    def on_signal(signum, _frame) -> None:
        stop.append(signum)
        if len(stop) == 1:
            _signal_group(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        while process.poll() is None and not stop:
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        if stop:
            known = descendants(process.pid)  # before they are orphaned: BentoML workers leave the group
            deadline = time.monotonic() + grace_s
            idle_since = None
            while process.poll() is None and time.monotonic() < deadline and len(stop) < 2:
                # Nothing below the command any more (an idle Prefect worker never had anything; a busy one's
                # flow runs have wound down): what it still waits for is its own loops, so stop waiting.
                if descendants(process.pid):
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > IDLE_GRACE_S:
                    break
                time.sleep(0.1)
            if process.poll() is None and time.monotonic() >= deadline:
                print(f"{command[0]}: still running {grace_s:g} s after SIGTERM, killed", file=sys.stderr, flush=True)
            _kill_all(process, known)  # whatever is left of the group and its escaped descendants
            process.wait()
            return 128 + stop[0]
        return process.returncode
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
