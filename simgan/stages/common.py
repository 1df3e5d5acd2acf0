"""What every stage entry point shares: its command line, the params, the prepared arrays, metrics."""

from __future__ import annotations

import argparse
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
