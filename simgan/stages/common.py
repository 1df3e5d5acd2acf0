"""What every stage entry point shares: its command line, the params, the prepared arrays, metrics."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from simgan import layout
from simgan.config import Params, load_params


def parse(stage: str, description: str) -> tuple[str, Params, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog=f"python -m simgan.stages.{stage}", description=description)
    parser.add_argument("--task", required=True, choices=layout.TASKS, help="which task's section of params.yaml")
    parser.add_argument("--params", default="params.yaml", help="the params file (run from the repository root)")
    args = parser.parse_args()
    return args.task, load_params(args.params), args


def prepared_images(task: str, domain: str, splits: tuple[str, ...] | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """uint8 (N, H, W) of a prepared domain (memory-mapped) and its manifest, optionally only some splits."""
    folder = layout.prepared(task, domain)
    images = np.load(folder / "images.npy", mmap_mode="r")
    manifest = pd.read_csv(folder / "manifest.csv", dtype={"id": str, "person": str}, keep_default_na=False,
                           na_values=[""])
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


def continues_killed_run(path: Path, expected: dict, total_steps: int) -> bool:
    """Whether the checkpoint at `path` is an unfinished run of this very training, to be continued.

    The stages' checkpoints are persistent DVC outputs, so a run killed mid-way leaves its last checkpoint
    behind. It is continued when every `expected` entry (configs, data fingerprint) equals the saved one
    and it stopped before `total_steps`. A finished checkpoint is never continued: DVC re-runs a stage
    only when something it depends on changed (code included) or when forced, and then training starts
    again. An unreadable file is reported on stderr and training starts again.
    """
    if not path.exists():
        return False
    from simgan.training.checkpoint import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(path)
    except CheckpointError as error:
        print(f"ignoring {path}: {error}", file=sys.stderr)
        return False
    return all(state.get(key) == value for key, value in expected.items()) and int(state.get("step", 0)) < total_steps


def device(name: str) -> str:
    """params' device: "auto" is CUDA when present, else the CPU; anything else ("cpu", "cuda:1") as given."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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
