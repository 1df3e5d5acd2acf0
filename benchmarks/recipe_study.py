"""One gaze refiner recipe on unlabelled real eyes: pupil shift, border frame and realism per refiner seed
(docs/results.md, "the pupil-region term" and "Recipe study on real eyes").

    python benchmarks/recipe_study.py WORKSPACE [--set KEY=VALUE ...] [--seeds 0 1 2] [--out DIR]

WORKSPACE: a repository where `dvc repro validate@gaze` ran with the real eyes as the refiner's real domain
and a held-out part (README, "Your own data", recipe (a), with `prepare.gaze.holdout_fraction=0.1`). Its
prepared synthetic `train` eyes and real `refiner` eyes train the refiner; its synthetic `val` eyes, refined,
are judged against the real `holdout` eyes the refiner never saw. No label of any real image is read.

The recipe is WORKSPACE/params.yaml's gaze pretrain and train sections (the demo profile, unless the workspace's
params say otherwise) with `--set` overrides of their keys, e.g. `--set self_reg_weight=2.0 --set
self_reg_feature=identity --set self_reg_pupil_weight=0 --set adversarial_rounds=1000` (values are YAML).
Printed per seed, and appended as JSON lines to DIR/results.jsonl: wall minutes of training, pupil shift
(mean ± std, px at width 55), the border-line figure and whether it is a frame, and `realism_report` (KID ±
std over subsets, standardised-classifier AUC at 30 / 100 / 300 steps over classifier seeds 0–2), with the
unrefined synthetic eyes' figures once for scale. Training runs on torch's threads (`--threads`); the seeds
run one after another.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from simgan.config import load_params
from simgan.evaluation.artifacts import border_lines, has_frame
from simgan.evaluation.preservation import pupil_shift
from simgan.evaluation.realism import realism_report
from simgan.inference import RefinerRunner
from simgan.stages.common import read_images
from simgan.training.refiner import SimGANTrainer


def split(folder: Path, name: str) -> np.ndarray:
    images, _ = read_images(folder, (name,))
    if len(images) == 0:
        raise SystemExit(f"{folder}: no '{name}' rows; prepare the workspace as the docstring says")
    return images


def realism(real: np.ndarray, sets: dict[str, np.ndarray]) -> dict[str, dict]:
    report = realism_report(real, sets, steps=200, budgets=(30, 100, 300), seeds=3)
    return {
        name: {
            "kid": round(entry["kid"]["mean"], 3),
            "kid_std": round(entry["kid"]["std"], 3),
            "auc": {b: round(v["mean"], 3) for b, v in entry["auc"]["budgets"].items()},
            "auc_std": {b: round(v["std"], 3) for b, v in entry["auc"]["budgets"].items()},
        }
        for name, entry in report.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a gaze pretrain/train key")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="refiner seeds (default 0 1 2)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    parser.add_argument("--out", type=Path, default=Path("recipe_study"), help="checkpoints and results.jsonl")
    args = parser.parse_args()

    prepared = args.workspace / "artifacts/prepared/gaze"
    synthetic, val = split(prepared / "synthetic", "train"), split(prepared / "synthetic", "val")
    real, holdout = split(prepared / "real", "refiner"), split(prepared / "real", "holdout")
    params = load_params(args.workspace / "params.yaml")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    unknown = set(overrides) - {field.name for field in dataclasses.fields(params.train_config("gaze"))}
    if unknown:
        raise SystemExit(f"--set: not a pretrain.gaze / train.gaze key: {sorted(unknown)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(synthetic)} synthetic train, {len(real)} real refiner, {len(val)} val, {len(holdout)} held-out real")
    print("synthetic:", json.dumps(realism(holdout, {"synthetic": val})["synthetic"]), flush=True)
    inputs = {"synthetic": border_lines(val), "real": border_lines(holdout)}  # the same for every seed
    for seed in args.seeds:
        config = dataclasses.replace(params.train_config("gaze"), **{**overrides, "seed": seed})
        checkpoint = args.out / f"seed{seed}.pt"
        start = time.perf_counter()
        trainer = SimGANTrainer(
            synthetic,
            real,
            refiner_config=params.refiner_config("gaze"),
            discriminator_config=params.discriminator_config("gaze"),
            config=config,
            device="cpu",
        )
        trainer.fit(checkpoint_path=checkpoint)
        minutes = (time.perf_counter() - start) / 60
        refined = RefinerRunner.from_checkpoint(checkpoint, device="cpu").refine(val)
        lines = {**inputs, "refined": border_lines(refined)}
        shift = pupil_shift(val, refined)
        result = {
            "set": overrides,
            "seed": seed,
            "minutes": round(minutes, 1),
            "pupil_shift_px": round(shift["mean_px"], 2),
            "pupil_shift_std_px": round(shift["std_px"], 2),
            "border_lines": round(lines["refined"]["score"], 2),
            "frame": has_frame(**lines),
            **realism(holdout, {"refined": refined})["refined"],
        }
        print(json.dumps(result), flush=True)
        with open(args.out / "results.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
