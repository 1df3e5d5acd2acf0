"""How much refinement can gain on the hands at all: the hand estimator trained on an *oracle* refined set.

A perfect refiner would give each synthetic frame the real domain's artifacts and keep its labels exactly. On
the embedded default that output can be made directly: the simulator's own Kinect model (`scene` + `kinect` in
simgan/data/simulators/hands.py, which renders the default's "real" frames) applied to each synthetic train
frame's pose, on a scene stream of its own (`--stream`), masked by the frame's clean render as the NYU reader
masks real frames, and cut with the prepared row's own crop bounds. The estimator trained on it and the one
trained on the clean synthetic frames (estimate@hand's trainer, data and settings, the same seed for both) are
scored on the real test split. The gain of the oracle over synthetic bounds what any refiner can show on
this default, and its spread over estimator seeds says whether a gain of that size can be shown at all.
Both are also scored on the synthetic `val` split rendered the same way ("Kinect-rendered val"): labelled by
construction and trained on by no stage, it is a real-like validation set on which estimator settings may
be chosen, which the real test split is not.

    python benchmarks/hand_ceiling.py                  # estimator seeds 0 1 2
    python benchmarks/hand_ceiling.py --seeds 0 --threads 2
    python benchmarks/hand_ceiling.py --sets refined --no-real   # a refiner's output, judged on Kinect val

`--sets` picks the training sets: synthetic, oracle, and refined (artifacts/refined/hand, `dvc repro
refine@hand`), the last to choose a refiner's settings on the Kinect-rendered val split without the real labels.

Needs `data/` rendered by `simgan simulate` (its marker names the seed) and artifacts/prepared/hand
(`dvc repro prepare@hand`); every clean crop is checked against the prepared synthetic image first.
Reporting only: the real test labels score the two estimators, nothing is chosen on them.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hand_estimator import apply_overrides  # benchmarks/, on sys.path when run as a script

from simgan import layout
from simgan.config import load_params
from simgan.data.formats.nyu import LABEL_NAMES, CropBounds, crop_bounds, crop_resize, depth_to_uint8, uvd_to_crop
from simgan.data.geometry import NYU_CROP_CENTRE_JOINT, NYU_EVAL_JOINTS
from simgan.data.simulators import MARKER, hands
from simgan.evaluation.hand import hand_metrics, joint_errors_px
from simgan.stages.estimate import training_data
from simgan.tasks import hand_targets
from simgan.training.estimator import EstimatorTrainer, predict

SETS = ("synthetic", "oracle", "refined")


def simulated_seed(data: Path) -> int:
    marker = data / MARKER
    if not marker.is_file():
        raise SystemExit(f"{marker}: not found; the oracle needs data/ rendered by `simgan simulate` (its poses)")
    return int(json.loads(marker.read_text())["seed"])


def kinect_crop(pose, synth: np.ndarray, bounds: CropBounds, size: int, seed: int, stream: int, frame: int):
    """A frame's pose through the real domain's Kinect model on its own scene stream, masked by its clean
    render (as the NYU reader masks real frames) and cut with `bounds`: a uint8 (size, size) crop."""
    rng = np.random.default_rng([seed, stream, frame])
    real = np.where(synth > 0, hands.kinect(hands.scene(pose, synth.astype(np.float64), rng), rng), 0)
    return depth_to_uint8(crop_resize(real, bounds, size), bounds.z0, bounds.z1)


def oracle_images(manifest: pd.DataFrame, clean: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """Each synthetic row's frame through the real domain's Kinect model, cropped with the row's bounds."""
    out = np.empty_like(clean)
    size = clean.shape[-1]
    for i, row in enumerate(manifest.itertuples()):
        frame = int(row.meta_frame)
        pose = hands.frame_pose(seed, "synthetic", frame)
        synth = hands.clean_depth_mm(pose)
        bounds = CropBounds(
            int(row.meta_crop_u0), int(row.meta_crop_u1), int(row.meta_crop_v0), int(row.meta_crop_v1),
            float(row.meta_crop_z0), float(row.meta_crop_z1),
        )  # fmt: skip
        rendered = depth_to_uint8(crop_resize(synth, bounds, size), bounds.z0, bounds.z1)
        if not np.array_equal(rendered, clean[i].reshape(rendered.shape)):
            raise SystemExit(
                f"synthetic row {row.id}: the simulator's frame {frame} (seed {seed}) does not reproduce the "
                "prepared image; render data/ and prepare@hand again with this code"
            )
        out[i] = kinect_crop(pose, synth, bounds, size, seed, stream, frame).reshape(out[i].shape)
    return out


EXTRA_FRAME = 1_000_000  # extra val poses are frames EXTRA_FRAME + 1, ...: far beyond any frame `simulate` writes


def extra_val(seed: int, stream: int, count: int, size: int, cube_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """`count` new synthetic poses through the Kinect model, cropped as the NYU reader crops: (images, joints).

    They belong to no split of data/ (frame numbers from EXTRA_FRAME + 1), so they enlarge the Kinect-rendered
    val split without touching what any stage trains on; frames whose crop holds no depth are skipped.
    """
    images, rows = [], []
    for frame in range(EXTRA_FRAME + 1, EXTRA_FRAME + 1 + count):
        pose = hands.frame_pose(seed, "synthetic", frame)
        uvd = hands.joints_uvd(pose)
        bounds = crop_bounds(uvd[NYU_CROP_CENTRE_JOINT], cube_mm)
        synth = hands.clean_depth_mm(pose)
        image = kinect_crop(pose, synth, bounds, size, seed, stream, frame)
        if image.any():
            images.append(image)
            rows.append(uvd_to_crop(uvd[list(NYU_EVAL_JOINTS)], bounds, size).reshape(-1))
    joints = hand_targets(pd.DataFrame(rows, columns=list(LABEL_NAMES)))
    return np.stack(images), joints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="model.KEY=VALUE or training.KEY=VALUE over estimate.hand")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="estimator seeds")
    parser.add_argument(
        "--no-real", action="store_true", help="score the Kinect-rendered val split only (for choosing settings)"
    )
    parser.add_argument("--stream", type=int, default=99, help="random stream of the oracle's scenes and artifacts")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--extra-val", type=int, default=0, metavar="N", help="N new poses added to the Kinect-rendered val split"
    )
    parser.add_argument("--cache", type=Path, help="an .npz to keep the Kinect-rendered val split in between runs")
    parser.add_argument(
        "--sets", nargs="+", choices=SETS, default=list(SETS[:2]), help="training sets (default: synthetic oracle)"
    )
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    model_config, base_config = apply_overrides(
        params.estimator_config("hand"), params.estimator_train_config("hand"), args.overrides, parser
    )
    seed = simulated_seed(args.data)
    folder = layout.prepared("hand", "synthetic")
    manifest = pd.read_csv(folder / "manifest.csv")
    train = manifest.index[manifest["split"] == "train"].to_numpy()
    val = manifest.index[manifest["split"] == "val"].to_numpy()
    images, labels = training_data("hand", "synthetic", 0, 0)  # every train row, in the order estimate@hand uses
    started = time.perf_counter()
    training_sets = {"synthetic": images}
    if "oracle" in args.sets:
        training_sets["oracle"] = oracle_images(manifest.loc[train], images, seed, args.stream)
    if "refined" in args.sets:
        refined, refined_labels = training_data("hand", "refined", 0, 0)
        if not np.array_equal(refined_labels, labels):
            raise SystemExit(f"{layout.refined('hand')}: its train rows are not the synthetic train rows; refine again")
        training_sets["refined"] = refined
    key = f"seed {seed}, stream {args.stream}, extra {args.extra_val}"
    cached = np.load(args.cache) if args.cache is not None and args.cache.is_file() else None
    if cached is not None and str(cached["key"]) == key:
        kinect_val, val_joints = cached["images"], cached["joints"]
    else:
        clean_val = np.load(folder / "images.npy", mmap_mode="r")[val]
        kinect_val = oracle_images(manifest.loc[val], clean_val, seed, args.stream)
        val_joints = hand_targets(manifest.loc[val])
        if args.extra_val:
            size, cube_mm = kinect_val.shape[-1], float(manifest["meta_cube_mm"].iloc[0])
            extra_images, extra_joints = extra_val(seed, args.stream, args.extra_val, size, cube_mm)
            kinect_val = np.concatenate([kinect_val, extra_images])
            val_joints = np.concatenate([val_joints, extra_joints])
        if args.cache is not None:
            np.savez(args.cache, key=key, images=kinect_val, joints=val_joints)
    seconds = time.perf_counter() - started
    print(f"Kinect model: {len(kinect_val)} val (and the oracle's train) frames rendered or read in {seconds:.0f} s")
    if not args.no_real:
        real = pd.read_csv(layout.prepared("hand", "real") / "manifest.csv")
        test = (real["split"] == "test").to_numpy()
        real_images = np.load(layout.prepared("hand", "real") / "images.npy")[test]
        real_joints = hand_targets(real[test])

    rows = []
    for estimator_seed in args.seeds:
        train_config = dataclasses.replace(base_config, seed=estimator_seed)
        row = {"seed": estimator_seed}
        for name in args.sets:
            data = training_sets[name]
            trainer = EstimatorTrainer("hand", model_config, train_config, data, labels, device="cpu", progress=False)
            trainer.fit()
            errors = joint_errors_px(predict("hand", trainer.model, kinect_val), val_joints)
            row[f"{name}_kinect_val"] = hand_metrics(errors)["within_5px_pct"]
            if not args.no_real:
                errors = joint_errors_px(predict("hand", trainer.model, real_images), real_joints)
                row[name] = hand_metrics(errors)["within_5px_pct"]
        rows.append(row)
        shown = "Kinect-rendered val: " + ", ".join(f"{name} {row[f'{name}_kinect_val']:.2f} %" for name in args.sets)
        if not args.no_real:
            shown += "; real test: " + ", ".join(f"{name} {row[name]:.2f} %" for name in args.sets)
        print(f"estimator seed {estimator_seed}: joints within 5 px, {shown}", flush=True)
    splits = {"Kinect-rendered val": "_kinect_val"} | ({} if args.no_real else {"real test": ""})
    compared = [name for name in args.sets if name != "synthetic"] if "synthetic" in args.sets else []
    for split, suffix in splits.items():
        for name in compared:
            gains = np.array([row[f"{name}{suffix}"] - row[f"synthetic{suffix}"] for row in rows])
            spread = gains.std(ddof=1) if len(rows) > 1 else 0.0
            print(f"{split}: {name} − synthetic over {len(rows)} seeds {gains.mean():+.2f} ± {spread:.2f} points")
    print(json.dumps({"benchmark": "hand_ceiling", "stream": args.stream, "overrides": args.overrides, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
