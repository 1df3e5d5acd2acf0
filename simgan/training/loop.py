"""The training skeleton both trainers share: steps, metrics cadence, checkpoints, Ctrl-C, resume.

A trainer (`simgan.training.refiner.SimGANTrainer`, `simgan.training.estimator.EstimatorTrainer`)
subclasses `TrainingLoop` and supplies what differs: `train_step()` (one schedule step, recording its
metrics with `record`), `total_steps`, `state_dict()`/`load()`, and, optionally, named phases. The loop
here walks the steps with a progress bar, averages the recorded metrics every `log_every_steps` and hands
them to `report(step, {name: value})`, writes a checkpoint atomically every `checkpoint_every_steps`, at
each phase end, at the end and when interrupted, and decides whether a checkpoint left behind is an
unfinished run of this very training, to be continued (`resume_if_unfinished`).

Under data parallelism (`simgan.training.distributed`, several processes started by torchrun) every rank walks
the same steps; the loop averages each metrics window over the ranks, and rank 0 alone reports, shows progress,
holds the checkpoint's lock and writes it (after every rank has contributed its part of the state). Ctrl-C (or
SIGTERM) on any rank becomes a flag that all ranks agree on at the next step boundary, so all stop and save at the
same step instead of one rank leaving the others waiting in a collective.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from simgan.training import distributed
from simgan.training.checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from simgan.training.distributed import World

log = logging.getLogger(__name__)

Report = Callable[[int, dict[str, float]], None]
"""Metrics leave a trainer through `report(step, {name: value})`, every `log_every_steps`."""


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live in a terminal, every 30 s in a log (DVC, CI, Prefect)."""
    return 0.1 if sys.stderr.isatty() else 30.0


def default_device() -> torch.device:
    """CUDA when present, else the CPU: the one place a trainer's device default is decided."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def moving_average(module: torch.nn.Module, decay: float, *, buffers: bool) -> AveragedModel | None:
    """θ̄ ← d·θ̄ + (1 − d)·θ over `module`'s weights (and its buffers with `buffers`) by torch's AveragedModel, whose
    first `update_parameters` copies θ; None for d = 0 (off)."""
    if not decay:
        return None
    return AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=buffers)


def average_state(average: AveragedModel) -> dict:
    """What a checkpoint keeps of a moving average: θ̄ as a plain state_dict, and how many updates made it."""
    return {"weights": average.module.state_dict(), "count": int(average.n_averaged)}


def load_average(average: AveragedModel, state: dict, *, what: str, path: str | Path) -> None:
    """Restore `average_state`'s dict into `average`."""
    load_module_state(average.module, state["weights"], what=what, path=path)
    average.n_averaged.fill_(int(state["count"]))


class CheckpointInUse(CheckpointError):
    """Another process is training into the same checkpoint."""


@contextlib.contextmanager
def exclusive_checkpoint(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` (flock, released by the kernel when the process dies, kill -9
    included), so two trainers never write one checkpoint: a second one fails at once, naming the holder's pid.

    The lock file holds the pid of its holder and is removed when the fit ends. A lock taken on a file that was
    removed in between (by the holder finishing) is retried on the new file, so two processes never both hold it.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CheckpointInUse(
                f"{path}: another process (pid {holder}) is training into this checkpoint and holds {lock_path}; "
                f"stop it (or wait for it) before starting another run"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the file was removed (its holder finished) between our open and our lock: take the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()  # while still held: a waiter that opened this file sees it gone and retries
        os.close(fd)


class InterruptFlag:
    """SIGINT and SIGTERM set `raised` instead of stopping the process, until `restore()`.

    torchrun passes the signal it receives to every rank (and kills them after its shutdown timeout, 30 s by
    default), but ranks may get it at different instants; the loop all-reduces the flag at each step boundary.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.raised = False
        self._previous = {sig: signal.signal(sig, self._set) for sig in self.SIGNALS}

    def _set(self, signum, frame) -> None:
        self.raised = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class TrainingLoop:
    """Base of both trainers: they call `super().__init__(…)` and implement `train_step`, `total_steps`,
    `state_dict`, `load`, `identity`, `log_every_steps`, `checkpoint_every_steps`; they may override
    `phases`, `set_mode` and `on_metrics`.

    provenance: what this run was trained on (data fingerprints, the starting checkpoint's hash, …),
        saved in every checkpoint; with the configs it decides whether a checkpoint is this very run.
    """

    def __init__(self, *, report: Report | None, progress: bool, description: str) -> None:
        self.report, self.progress, self.description = report, progress, description
        self.world = World.current()  # one process unless torchrun started several (simgan.training.distributed)
        self.step = 0  # completed schedule steps, over all phases
        self.provenance: dict[str, str | int] = {}
        self._pending: dict[str, list[torch.Tensor]] = {}

    # ------------------------------------------------------------ supplied by the trainer
    @property
    def total_steps(self) -> int:
        raise NotImplementedError

    @property
    def log_every_steps(self) -> int:
        raise NotImplementedError

    @property
    def checkpoint_every_steps(self) -> int:
        raise NotImplementedError

    def train_step(self) -> None:
        """One step of the schedule; metrics go through `record`."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load(self, path: str | Path) -> None:
        raise NotImplementedError

    def identity(self) -> dict:
        """The checkpoint entries that must be equal for a checkpoint to be this very training."""
        raise NotImplementedError

    def phases(self) -> list[tuple[str, int]]:
        """(name, steps) in order; one unnamed phase by default."""
        return [(self.description, self.total_steps)]

    def set_mode(self, training: bool) -> None:
        """Put the networks in train or eval mode."""

    def on_metrics(self, metrics: dict[str, float], bar) -> None:
        """Called with each averaged window of metrics, after `report` (e.g. to update the bar)."""

    # ------------------------------------------------------------ metrics
    def record(self, name: str, value: torch.Tensor) -> None:
        """Keep a metric on the device; averaged (one sync) every `log_every_steps`."""
        self._pending.setdefault(name, []).append(value.detach().float())

    def _flush(self, bar) -> dict[str, float]:
        if not self._pending:
            return {}
        names = list(self._pending)
        means = torch.stack([torch.stack(self._pending[name]).mean() for name in names])
        if self.world.size > 1:  # every rank records the same names at the same steps
            means = distributed.mean_across(means)
        metrics = dict(zip(names, means.tolist(), strict=True))
        self._pending.clear()
        if not self.world.writer:
            return metrics
        if self.report is not None:
            self.report(self.step, metrics)
        self.on_metrics(metrics, bar)
        return metrics

    # ------------------------------------------------------------ the loop
    def phase_name(self, step: int) -> str:
        """The name of the phase that step number `step` (0-based) belongs to."""
        for name, steps in self.phases():
            if step < steps:
                return name
            step -= steps
        raise IndexError(f"step {step} is past the schedule's {self.total_steps} steps")

    def fit(self, *, checkpoint_path: str | Path | None = None, stop_at_step: int | None = None) -> dict[str, float]:
        """Walk the schedule from `self.step` to its end (or `stop_at_step`); returns the last metrics.

        With `checkpoint_path`, a checkpoint is written atomically every `checkpoint_every_steps`, at each
        phase end, at the end, and when interrupted (Ctrl-C), so a killed run loses at most
        `checkpoint_every_steps` steps; the whole fit holds `<checkpoint_path>.lock`, so a second trainer of
        the same checkpoint (e.g. started while an orphaned one still runs) fails at once (CheckpointInUse).
        """
        if checkpoint_path is None or not self.world.writer:  # rank 0 alone writes, so it alone holds the lock
            return self._fit(checkpoint_path, stop_at_step)
        with exclusive_checkpoint(checkpoint_path):
            return self._fit(checkpoint_path, stop_at_step)

    def _fit(self, checkpoint_path: str | Path | None, stop_at_step: int | None) -> dict[str, float]:
        end = self.total_steps if stop_at_step is None else min(stop_at_step, self.total_steps)
        boundaries = set(itertools.accumulate(steps for _, steps in self.phases()))
        last: dict[str, float] = {}
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not (self.progress and self.world.writer),
            unit="step",
            dynamic_ncols=True,
            mininterval=progress_interval(),
            desc=self.description,
        )
        self.set_mode(training=True)
        shown = None
        # Several ranks: a signal only sets a flag, read by all ranks together after each step (a KeyboardInterrupt
        # raised inside one rank's collective would leave the others waiting in theirs).
        interrupts = InterruptFlag() if self.world.size > 1 else None
        try:
            while self.step < end:
                phase = self.phase_name(self.step)
                if phase != shown:
                    bar.set_description(phase)
                    shown = phase
                self.train_step()
                self.step += 1
                bar.update(1)
                at_edge = self.step in boundaries or self.step == end
                if self.step % self.log_every_steps == 0 or at_edge:
                    last = self._flush(bar) or last
                if checkpoint_path is not None and (self.step % self.checkpoint_every_steps == 0 or at_edge):
                    self.save(checkpoint_path)
                if interrupts is not None and distributed.any_across(interrupts.raised):
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if checkpoint_path is not None:
                self.save(checkpoint_path)
                if self.world.writer:
                    log.warning("interrupted at step %d; checkpoint written to %s", self.step, checkpoint_path)
            raise
        finally:
            bar.close()
            if interrupts is not None:
                interrupts.restore()
        self.set_mode(training=False)
        return last

    # ------------------------------------------------------------ checkpoints
    def save(self, path: str | Path) -> None:
        """Write the checkpoint; with several ranks every rank calls this (`state_dict` gathers from all of them)
        and rank 0 alone writes, then all wait for the file to be in place."""
        state = {**self.state_dict(), "provenance": dict(self.provenance)}
        if self.world.writer:
            save_checkpoint(path, state)
        if self.world.size > 1:
            torch.distributed.barrier()

    def resume_if_unfinished(self, path: str | Path) -> bool:
        """Continue the checkpoint at `path` when it is an unfinished run of this very training; say so.

        Checkpoints of the pipeline's stages are persistent outputs, so a run killed mid-way leaves its
        last checkpoint behind. It is continued when its configs and provenance equal this run's and it
        stopped before the end. A finished checkpoint is never continued: the pipeline re-runs a stage
        only when something it depends on changed (code included) or when forced, and then training
        starts again. An unreadable file is reported on stderr and training starts again.
        """
        path = Path(path)
        if not path.exists():
            return False
        try:
            state = load_checkpoint(path)
        except CheckpointError as error:
            print(f"ignoring {path}: {error}", file=sys.stderr)
            return False
        expected = {**self.identity(), "provenance": dict(self.provenance)}
        if any(state.get(key) != value for key, value in expected.items()):
            return False
        if int(state.get("step", 0)) >= self.total_steps:
            return False
        self.load(path)
        if self.world.writer:
            print(
                f"{self.description}: resuming at step {self.step} of {self.total_steps} from {path}", file=sys.stderr
            )
        return True
