"""What every stage entry point shares: its command line, the params, the prepared arrays, metrics.

Stages are thin leaves over the library: each parses its command line here, loads params.yaml (checked
whole before anything runs), calls the library and writes what dvc.yaml declares. No stage imports
another stage (tests/unit/test_boundaries.py checks it); what two stages share lives in the library or
here.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
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
) -> tuple[str, Params, argparse.Namespace]:
    """--task and --params (plus what `extra` adds); params.yaml is loaded and checked, and `runtime` applied.

    A params problem is a one-line error naming the dotted key (exit 2), never a traceback.
    """
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
    return args.task, params, args


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
        device=device(params),
        report=report,
    )
    trainer.description = f"{'train' if with_rounds else 'pretrain'}@{task}"
    trainer.provenance["data_fingerprint"] = fingerprint(synthetic, real)
    return trainer
