"""The hand estimator on held-out synthetic hands: where its settings are chosen (docs/results.md, "The estimator").

Trains the hourglass as estimate@hand does (params.yaml's estimate.hand, the same trainer) on the prepared
synthetic `train` split and scores it on the synthetic `val` split, which no stage trains on: no domain gap, so
this measures how well the estimator learns the pose, not how well it transfers. Beside it, the mean training
pose as a constant predictor: an estimator that does not beat it has not learnt the pose.

    python benchmarks/hand_estimator.py                                   # params.yaml as it is
    python benchmarks/hand_estimator.py training.lr=0.002 training.heatmap_loss=mse training.seed=1

Needs artifacts/prepared/hand (`dvc repro prepare@hand` after `simgan simulate --out data`). Computes on one
thread. `--real-test` also scores the real test split, for reporting only: never choose settings on it.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import pandas as pd
import torch
import yaml

from simgan import layout
from simgan.config import load_params
from simgan.evaluation.hand import hand_metrics, joint_errors_px
from simgan.tasks import hand_targets
from simgan.training.estimator import EstimatorTrainer, predict


def _load(source: str) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    folder = layout.prepared("hand", source)
    manifest = pd.read_csv(folder / "manifest.csv")
    return np.load(folder / "images.npy"), manifest, hand_targets(manifest)


def _metrics(predicted: np.ndarray, truth: np.ndarray) -> dict:
    errors = joint_errors_px(predicted, truth)
    return {**hand_metrics(errors), "within_10px_pct": float((errors <= 10).mean() * 100)}


def _override(config, key: str, value: str):
    parsed = yaml.safe_load(value)
    return dataclasses.replace(config, **{key: tuple(parsed) if isinstance(parsed, list) else parsed})


def apply_overrides(model_config, train_config, items: list[str], parser: argparse.ArgumentParser):
    """model.KEY=VALUE / training.KEY=VALUE items over estimate.hand's two configs (also hand_ceiling.py's)."""
    for item in items:
        name, _, value = item.partition("=")
        section, _, key = name.partition(".")
        if section == "model":
            model_config = _override(model_config, key, value)
        elif section == "training":
            train_config = _override(train_config, key, value)
        else:
            parser.error(f"{item!r}: expected model.KEY=VALUE or training.KEY=VALUE")
    return model_config, train_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="model.KEY=VALUE or training.KEY=VALUE over estimate.hand")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--real-test", action="store_true", help="also score the real test split (reporting only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    params = load_params(args.params)
    model_config, train_config = params.estimator_config("hand"), params.estimator_train_config("hand")
    model_config, train_config = apply_overrides(model_config, train_config, args.overrides, parser)
    images, manifest, joints = _load("synthetic")
    train, val = (manifest["split"] == "train").to_numpy(), (manifest["split"] == "val").to_numpy()
    trainer = EstimatorTrainer(
        "hand", model_config, train_config, images[train], joints[train], device="cpu", progress=False
    )
    started = time.process_time()
    final = trainer.fit()
    seconds = time.process_time() - started
    mean_pose = np.repeat(joints[train].mean(0, keepdims=True), val.sum(), 0)
    result = {
        "benchmark": "hand_estimator",
        "model": model_config.to_dict(),
        "training": train_config.to_dict(),
        "train_images": int(train.sum()),
        "final_loss": final.get("loss"),
        "process_seconds": round(seconds, 1),
        "val": _metrics(predict("hand", trainer.model, images[val]), joints[val]),
        "val_mean_pose": _metrics(mean_pose, joints[val]),
    }
    if args.real_test:
        real_images, real_manifest, real_joints = _load("real")
        test = (real_manifest["split"] == "test").to_numpy()
        result["real_test_reporting_only"] = _metrics(
            predict("hand", trainer.model, real_images[test]), real_joints[test]
        )
    for name in ("val", "val_mean_pose", "real_test_reporting_only"):
        if name in result:
            shown = ", ".join(f"{key} {value:.2f}" for key, value in result[name].items() if not key.startswith("n_"))
            print(f"{name}: {shown}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
