"""Checkpoints and training processes under hostile input and kills (issue 16): refused checkpoints are named
in simgan's words (never torch's advice to load them unsafely), two trainers never write one checkpoint, and a
stage process does not outlive its parent."""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from simgan.training.checkpoint import CheckpointError, load_checkpoint
from simgan.training.loop import CheckpointInUse, TrainingLoop

ROOT = Path(__file__).resolve().parents[2]


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize("kind", ["random bytes", "bare pickle with code", "torch file with code", "torch module"])
def test_a_refused_checkpoint_never_suggests_loading_it_unsafely(tmp_path, kind):
    path = tmp_path / "bad.pt"
    if kind == "random bytes":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "bare pickle with code":
        path.write_bytes(pickle.dumps(_RunsCode()))
    elif kind == "torch file with code":
        torch.save({"format": "simgan-checkpoint", "x": _RunsCode()}, path)
    else:
        torch.save({"format": "simgan-checkpoint", "x": torch.nn.Linear(2, 2)}, path)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: not a readable simgan checkpoint")
    assert "\n" not in message
    assert "weights_only" not in message and "will likely succeed" not in message
    if kind != "random bytes":
        assert "for safety" in message
    if kind == "torch file with code":
        assert "posix.system" in message or "nt.system" in message


class _Counter(TrainingLoop):
    """The smallest trainer: counts steps; its state is the step."""

    def __init__(self, steps: int = 3, on_step=None) -> None:
        super().__init__(report=None, progress=False, description="counter")
        self.steps, self.on_step = steps, on_step

    total_steps = property(lambda self: self.steps)
    log_every_steps = property(lambda self: 1)
    checkpoint_every_steps = property(lambda self: 1)

    def train_step(self) -> None:
        if self.on_step:
            self.on_step(self)

    def state_dict(self) -> dict:
        return {"step": self.step}


def test_a_second_trainer_of_one_checkpoint_fails_at_once_naming_the_holder(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    lock = Path(f"{checkpoint}.lock")
    holder = os.open(lock, os.O_RDWR | os.O_CREAT)  # another trainer: its own open file, its flock
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(holder, b"4242\n")
        with pytest.raises(CheckpointInUse, match=rf"another process \(pid 4242\).*holds {lock}"):
            _Counter().fit(checkpoint_path=checkpoint)
        assert not checkpoint.exists()  # it wrote nothing
    finally:
        os.close(holder)  # the holder ends (as a kill -9 would end it): the kernel drops its lock
    _Counter().fit(checkpoint_path=checkpoint)  # a stale lock file is no obstacle
    assert load_checkpoint(checkpoint)["step"] == 3
    assert not lock.exists()  # removed at the end of the fit: nothing left beside the output


def test_the_lock_is_held_for_the_whole_fit_and_written_with_the_pid(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    seen = []

    def try_a_second_trainer(loop) -> None:
        seen.append(Path(f"{checkpoint}.lock").read_text().strip())
        with pytest.raises(CheckpointInUse):
            _Counter().fit(checkpoint_path=checkpoint)

    _Counter(steps=2, on_step=try_a_second_trainer).fit(checkpoint_path=checkpoint)
    assert seen == [str(os.getpid())] * 2
    _Counter(steps=1).fit()  # no checkpoint: no lock


def test_a_busy_checkpoint_ends_a_stage_in_one_line():
    code = (
        "from simgan.stages.common import one_line_errors; one_line_errors('train@gaze'); "
        "from simgan.training.loop import CheckpointInUse; raise CheckpointInUse('c.pt: another process (pid 7)')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr == "train@gaze: c.pt: another process (pid 7)\n"


def _state(pid: int) -> str | None:
    """The process state letter (R, S, Z, ...) or None when it no longer exists."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_stage_process_dies_with_its_parent(tmp_path):
    """kill -9 of the parent (as of `dvc repro`) takes the stage process with it instead of leaving an orphan."""
    stage = (
        "import time; from simgan.stages.common import die_with_parent; "
        "assert die_with_parent(); print('ready', flush=True); time.sleep(120)"
    )
    parent = (
        "import subprocess, sys; "
        f"child = subprocess.Popen([sys.executable, '-c', {stage!r}], stdout=subprocess.PIPE, text=True); "
        "assert child.stdout.readline() == 'ready\\n'; print(child.pid, flush=True); child.wait()"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        child = int(proc.stdout.readline())
        assert _state(child) not in (None, "Z")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for _ in range(200):  # gone (or a zombie awaiting its reaper) once the signal is delivered
            if _state(child) in (None, "Z", "X"):
                break
            time.sleep(0.05)
        assert _state(child) in (None, "Z", "X"), "the stage process outlived its parent"
    finally:
        if proc.poll() is None:
            proc.kill()
        if "child" in locals() and _state(child) not in (None, "Z", "X"):
            os.kill(child, signal.SIGKILL)
