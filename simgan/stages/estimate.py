"""Stage estimate: the task's estimator trained on each training set — synthetic and refined (and, per
params, training sets `larger_variant_factor` times larger) — with the same seed, subset and schedule,
so that evaluate can compare them on real images.

A killed run resumes: the checkpoints are a persistent DVC output, and a checkpoint is continued only
if it is unfinished and was written for the same estimator, training config and training data (else
training restarts; `simgan.stages.common.continues_killed_run`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from simgan import layout
from simgan.config import Params, estimator_config, estimator_train_config
from simgan.io import atomic_write
from simgan.stages.common import LiveReport, continues_killed_run, device, fingerprint, parse, prepared_images
from simgan.training.estimator import EstimatorTrainer

GAZE_COLUMNS = ["gaze_x", "gaze_y", "gaze_z"]


def targets(task: str, manifest: pd.DataFrame) -> np.ndarray:
    """(N, 3) gaze vectors or (N, 14, 2) joints (x, y) in crop pixels, from a manifest."""
    if task == "gaze":
        return manifest[GAZE_COLUMNS].to_numpy(np.float32)
    joints = sorted({c[: -len("_u")] for c in manifest.columns if c.startswith("joint_") and c.endswith("_u")})
    return np.stack([manifest[[f"{j}_u", f"{j}_v"]].to_numpy(np.float32) for j in joints], axis=1)


def training_sets(task: str, params: Params) -> dict[str, tuple[str, int]]:
    """{name: (source domain, number of images)} — `synthetic`, `refined`, and `synthetic_4x`-style variants."""
    section = params.estimate[task]
    sets = {name: (name, section.train_images) for name in section.train_on}
    if section.larger_variant_factor > 0:
        if section.train_images == 0:
            raise ValueError(f"params.yaml: estimate.{task}.larger_variant_factor needs estimate.{task}.train_images "
                             "> 0 (the larger set is that many times train_images)")
        factor = section.larger_variant_factor
        sets |= {f"{name}_{factor}x": (name, section.train_images * factor) for name in section.train_on}
    return sets


def training_data(task: str, source: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The `train` split of `source` (synthetic or refined): all of it, or `count` rows drawn with `seed`.

    Refined rows are the synthetic rows refined, so the same seed picks the same scenes in both sets.
    """
    if source == "synthetic":
        images, manifest = prepared_images(task, "synthetic")
    else:
        images = np.load(layout.refined(task) / "images.npy", mmap_mode="r")
        manifest = pd.read_csv(layout.refined(task) / "manifest.csv", dtype={"id": str}, keep_default_na=False,
                               na_values=[""])
    rows = manifest.index[manifest["split"] == "train"].to_numpy()
    if count:
        if count > len(rows):
            raise ValueError(f"estimate@{task}: {count} training images asked for, but {source} has only {len(rows)} "
                             "in its train split (lower estimate.{task}.train_images or the variant factor)")
        rows = np.sort(np.random.default_rng(seed).choice(rows, count, replace=False))
    return np.asarray(images[rows]), targets(task, manifest.loc[rows])


def resumable(path: Path, trainer: EstimatorTrainer, data_fingerprint: str) -> bool:
    """Whether the checkpoint at `path` is an unfinished run of this very training (same model, config, data)."""
    return continues_killed_run(path, {"estimator_config": trainer.model_config.to_dict(),
                                       "train_config": trainer.config.to_dict(),
                                       "data_fingerprint": data_fingerprint}, trainer.config.steps)


def main() -> int:
    task, params, _ = parse("estimate", __doc__)
    section = params.estimate[task]
    out = layout.estimated(task)
    model_config, train_config = estimator_config(task, params), estimator_train_config(task, params)
    summary = {}
    report = LiveReport(out / "dvclive")  # one curve per training set: <set>_loss
    for name, (source, count) in training_sets(task, params).items():
        images, labels = training_data(task, source, count, section.seed)
        data_fingerprint = fingerprint(images, labels)
        trainer = EstimatorTrainer(task, model_config, train_config, images, labels, device=device(section.device),
                                   report=lambda step, metrics, name=name: report(
                                       step, {f"{name}/{key}": value for key, value in metrics.items()}),
                                   description=f"estimate@{task} {name}")
        checkpoint = out / "models" / name / "checkpoint.pt"
        if resumable(checkpoint, trainer, data_fingerprint):
            trainer.load(checkpoint)
            print(f"estimate@{task} {name}: resuming at step {trainer.step} from {checkpoint}")
        trainer.extra_state = {"data_fingerprint": data_fingerprint, "training_set": name, "images": len(images)}
        metrics = trainer.fit(checkpoint_path=checkpoint)
        summary[name] = {"images": len(images), "steps": trainer.step, "final_loss": metrics.get("loss")}
        print(f"estimate@{task} {name}: {len(images)} {source} images, {trainer.step} steps, "
              f"final loss {metrics.get('loss', float('nan')):.4g} -> {checkpoint}")
    report.close()
    text = json.dumps(summary, indent=2) + "\n"
    atomic_write(out / "training.json", lambda handle: handle.write(text.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
