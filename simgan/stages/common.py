"""What every stage entry point shares: its command line, the params, the prepared arrays, metrics.

Stages are thin leaves over the library: each parses its command line here, loads params.yaml (checked
whole before anything runs), calls the library and writes what dvc.yaml declares. No stage imports
another stage (tests/unit/test_boundaries.py checks it); what two stages share lives in the library or
here.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from simgan import layout
from simgan.config import ConfigError, Params, load_params


def parse(
    stage: str,
    description: str,
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    *,
    data_parallel: bool = False,
) -> tuple[str, Params, argparse.Namespace]:
    """--task and --params (plus what `extra` adds); params.yaml is loaded and checked, and `runtime` applied.

    A params problem is a one-line error naming the dotted key (exit 2), never a traceback. Run as a command
    (`argv` None), the stage process is tied to its parent (`die_with_parent`: a `kill -9` of `dvc repro` does
    not leave it running on) and an unusable or busy checkpoint ends it with one line (exit 1); called with
    `argv` (tests, a caller in-process), the calling process is left as it is. A `data_parallel` stage run as a
    command re-runs itself under the launcher the environment names (`launcher`), unless it already is a rank.
    """
    if argv is None:
        die_with_parent()
        one_line_errors(stage)
    parser = argparse.ArgumentParser(
        prog=f"python -m simgan.stages.{stage}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", required=True, choices=layout.TASKS, help="which task's section of params.yaml")
    parser.add_argument("--params", default="params.yaml", help="the params file (run from the repository root)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
    except ConfigError as error:
        raise SystemExit(f"{stage}@{args.task}: {error}") from None
    apply_runtime(params)
    if argv is None and data_parallel:
        relaunch(f"{stage}@{args.task}", f"simgan.stages.{stage}", params)
    return args.task, params, args


NPROC_VARIABLE = "SIMGAN_NPROC"
LAUNCHER_VARIABLE = "SIMGAN_LAUNCHER"


def launcher(params: Params, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The command that starts a data-parallel training stage's processes, or None for one process.

    From the environment, never from params.yaml: W does not change the batches (simgan.training.refiner), so the
    process count stays out of the stage's hash and one `dvc.lock` serves a laptop and a GPU node alike.
        SIMGAN_LAUNCHER   a whole launcher command the stage's `-m simgan.stages.<stage> …` is appended to, e.g.
                          `torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=head:29500`
                          (under Slurm: `srun … torchrun …`, docs/scaling.md)
        SIMGAN_NPROC      N processes on this node (`torchrun --standalone --nproc_per_node=N`); 1: one process
        neither           every GPU of the node when runtime.device is 'auto' and there are several, else one process
    """
    environ = os.environ if environ is None else environ
    command = environ.get(LAUNCHER_VARIABLE, "").strip()
    if command:
        return shlex.split(command)
    nproc = environ.get(NPROC_VARIABLE, "").strip()
    if nproc:
        if not nproc.isdigit() or int(nproc) < 1:
            raise SystemExit(f"{NPROC_VARIABLE}={nproc!r}: expected a whole number of processes >= 1")
        count = int(nproc)
    else:
        import torch

        cuda = params.runtime.device == "auto" and torch.cuda.is_available()
        count = torch.cuda.device_count() if cuda else 1
    if count == 1:
        return None
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={count}"]


def relaunch(name: str, module: str, params: Params) -> None:
    """Replace this process by the launcher (`launcher`) running `python -m module` with the same arguments;
    return at once when there is none or this process already is a rank (torchrun sets WORLD_SIZE)."""
    if "WORLD_SIZE" in os.environ:
        return
    command = launcher(params)
    if command is None:
        return
    if sys.platform.startswith("linux") and not os.environ.get(LAUNCHER_VARIABLE, "").strip():
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # --standalone: every rank on this node (gloo on the CPU)
    command = [*command, "-m", module, *sys.argv[1:]]
    print(f"{name}: {shlex.join(command)}", file=sys.stderr, flush=True)
    os.execvp(command[0], command)  # the same pid: DVC waits for it, and its signals reach torchrun


def data_parallel_device(params: Params) -> str:
    """`device(params)`, or this rank's GPU after joining the process group when torchrun started several."""
    from simgan.training import distributed

    return distributed.setup(device(params))


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send this process `sig` when its parent dies (prctl PR_SET_PDEATHSIG); True when set.

    A stage killed with its `dvc repro` (kill -9 of DVC itself) would otherwise run on as an orphan, and the next
    `dvc repro`, finding DVC's lock stale, would start a second writer of the same outputs. If the parent is
    already gone when this runs, the process ends at once. Elsewhere (not Linux) nothing happens.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request: no signal will come
        os.kill(os.getpid(), sig)
    return True


def one_line_errors(stage: str) -> None:
    """Print a checkpoint problem that ends the stage (CheckpointError, e.g. another trainer holds the
    checkpoint) as one line `stage: message` instead of a traceback; other errors keep theirs.

    simgan.training.checkpoint (and torch with it) is not imported for this: a stage that never loaded it
    cannot have raised its error, and the stages that do not compute with torch stay without it."""
    previous = getattr(sys.excepthook, "simgan_previous", sys.excepthook)  # installed once, whatever the calls

    def hook(kind, error, traceback) -> None:
        checkpoint = sys.modules.get("simgan.training.checkpoint")
        if checkpoint is not None and issubclass(kind, checkpoint.CheckpointError):
            print(f"{stage}: {error}", file=sys.stderr)
        else:
            previous(kind, error, traceback)

    hook.simgan_previous = previous
    sys.excepthook = hook


def apply_runtime(params: Params) -> None:
    """params' `runtime.threads` (0: torch's default)."""
    if params.runtime.threads:
        import torch

        torch.set_num_threads(params.runtime.threads)


def device(params: Params) -> str:
    """`runtime.device`: "auto" is CUDA when present, else the CPU; anything else ("cpu", "cuda:1") as given,
    refused in one line when this machine does not have it."""
    name = params.runtime.device
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise SystemExit(
                f"params.yaml runtime.device: {name!r}, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); use 'auto' or 'cpu'"
            )
    return name


def prepared_images(task: str, domain: str, splits: tuple[str, ...] | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """uint8 (N, H, W) of a prepared domain (memory-mapped) and its manifest, optionally only some splits."""
    return read_images(layout.prepared(task, domain), splits)


def read_images(folder: Path, splits: tuple[str, ...] | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """images.npy (memory-mapped) and manifest.csv of a prepared or refined folder, optionally only some splits."""
    images = np.load(folder / "images.npy", mmap_mode="r")
    manifest = pd.read_csv(
        folder / "manifest.csv", dtype={"id": str, "person": str}, keep_default_na=False, na_values=[""]
    )
    if splits is not None:
        manifest = manifest[manifest["split"].isin(splits)]
        images = images[manifest["row"].to_numpy()]
    return np.asarray(images), manifest


def fingerprint(*arrays: np.ndarray) -> str:
    """A short hash of arrays' bytes: which data a checkpoint was trained on."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class LiveReport:
    """The trainer's `report(step, metrics)` written with DVCLive into files dvc.yaml declares."""

    def __init__(self, folder: Path) -> None:
        from dvclive import Live

        self.live = Live(str(folder), dvcyaml=False, save_dvc_exp=False, report=None)

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        self.live.step = step
        for name, value in metrics.items():
            self.live.log_metric(name.replace("/", "_"), value)
        self.live.next_step()

    def close(self) -> None:
        self.live.end()


@contextlib.contextmanager
def rank_zero_report(trainer, folder: Path) -> Iterator[None]:
    """The trainer's metrics into DVCLive files under `folder`, written by rank 0 alone (the only one that
    reports); the process group, when there is one, is left at the end."""
    from simgan.training import distributed

    report = LiveReport(folder) if trainer.world.writer else None
    trainer.report = report
    try:
        yield
        if report is not None:
            report.close()
    finally:
        distributed.teardown()


def fail(stage: str, message: str) -> int:
    print(f"{stage}: {message}", file=sys.stderr)
    return 1


def refiner_trainer(task: str, params: Params, *, with_rounds: bool, report):
    """The trainer of both training stages (pretrain, train): same data, same networks, same pretraining.

    Trained on the synthetic `train` split and the real `refiner` split (no real labels); its provenance
    records the fingerprint of that data, so a checkpoint of other data is never continued.
    """
    from simgan.training.refiner import SimGANTrainer

    synthetic, _ = prepared_images(task, "synthetic", splits=("train",))
    real, _ = prepared_images(task, "real", splits=("refiner",))
    trainer = SimGANTrainer(
        synthetic,
        real,
        refiner_config=params.refiner_config(task),
        discriminator_config=params.discriminator_config(task),
        config=params.train_config(task, with_rounds=with_rounds),
        device=data_parallel_device(params),
        report=report,
    )
    trainer.description = f"{'train' if with_rounds else 'pretrain'}@{task}"
    trainer.provenance["data_fingerprint"] = fingerprint(synthetic, real)
    return trainer
