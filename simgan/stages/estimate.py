"""Stage estimate: the task's estimator trained on each training set — synthetic and refined (and, per
params, training sets `larger_variant_factor` times larger) — with the same seed, subset and schedule,
so that evaluate can compare them on real images. Without labelled real test images nothing is
trained: training.json says why, and evaluate skips the comparison.

A killed run resumes: the checkpoints are a persistent DVC output, and a checkpoint is continued only
if it is unfinished and was written for the same estimator, training config and training data (else
training restarts; `TrainingLoop.resume_if_unfinished`).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd

from simgan import layout
from simgan.io import atomic_write
from simgan.stages.common import LiveReport, device, fingerprint, parse, prepared_images, read_images
from simgan.tasks import TASKS
from simgan.training.estimator import EstimatorTrainer


def training_data(task: str, source: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The `train` split of `source` (synthetic or refined): all of it, or `count` rows drawn with `seed`.

    Refined rows are the synthetic rows refined, so the same seed picks the same scenes in both sets.
    """
    if source == "synthetic":
        images, manifest = prepared_images(task, "synthetic")
    else:
        images, manifest = read_images(layout.refined(task))
    rows = manifest.index[manifest["split"] == "train"].to_numpy()
    if count:
        if count > len(rows):
            raise SystemExit(
                f"estimate@{task}: {count} training images asked for, but {source} has only "
                f"{len(rows)} in its train split (lower estimate.{task}.train_images or "
                f"larger_variant_factor)"
            )
        rows = np.sort(np.random.default_rng(seed).choice(rows, count, replace=False))
    return np.asarray(images[rows]), TASKS[task].targets(manifest.loc[rows])


def labelled_test_rows(task: str) -> int:
    """How many real rows are labelled test rows (the manifest alone; no image is read)."""
    splits = pd.read_csv(layout.prepared(task, "real") / "manifest.csv", usecols=["split"])["split"]
    return int((splits == "test").sum())


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("estimate", __doc__, argv)
    out = layout.estimated(task)
    if not labelled_test_rows(task):  # nothing real to compare the estimators on: do not train them
        reason = f"no labelled real test images (see prepare.{task}.test_split): estimators not trained"
        print(f"estimate@{task}: {reason}")
        note = f"{reason}\n"
        atomic_write(out / "models" / "SKIPPED.txt", lambda handle: handle.write(note.encode()))
        (out / "dvclive" / "plots" / "metrics").mkdir(parents=True, exist_ok=True)  # declared plots: no curve
        text = json.dumps({"skipped": reason}, indent=2) + "\n"
        atomic_write(out / "training.json", lambda handle: handle.write(text.encode()))
        return 0
    model_config, train_config = params.estimator_config(task), params.estimator_train_config(task)
    summary = {}
    report = LiveReport(out / "dvclive")  # one curve per training set: <set>_loss
    for name, (source, count) in params.training_sets(task).items():
        images, labels = training_data(task, source, count, train_config.seed)
        trainer = EstimatorTrainer(
            task,
            model_config,
            train_config,
            images,
            labels,
            device=device(params),
            report=lambda step, metrics, name=name: report(
                step, {f"{name}/{key}": value for key, value in metrics.items()}
            ),
            description=f"estimate@{task} {name}",
        )
        trainer.provenance.update(data_fingerprint=fingerprint(images, labels), training_set=name, images=len(images))
        checkpoint = out / "models" / name / "checkpoint.pt"
        trainer.resume_if_unfinished(checkpoint)
        metrics = trainer.fit(checkpoint_path=checkpoint)
        summary[name] = {"images": len(images), "steps": trainer.step, "final_loss": metrics.get("loss")}
        print(
            f"estimate@{task} {name}: {len(images)} {source} images, {trainer.step} steps, "
            f"final loss {metrics.get('loss', float('nan')):.4g} -> {checkpoint}"
        )
    report.close()
    text = json.dumps(summary, indent=2) + "\n"
    atomic_write(out / "training.json", lambda handle: handle.write(text.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
