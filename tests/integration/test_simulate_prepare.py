"""The embedded default end to end: `simgan simulate` writes published formats, `simgan prepare` reads them.

Beyond shapes, the labels must mean what the pixels show: the readers' conventions and the simulators'
geometry were written independently, so agreement here checks both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from simgan.config import read_yaml
from simgan.profiles import merge

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """`simgan simulate`, then `simgan prepare` with params.yaml under the tiny profile (96×96 hands, test
    person p00), run where the data is (params' paths are relative to the working folder)."""
    root = tmp_path_factory.mktemp("default")
    params = merge(read_yaml(ROOT / "params.yaml"), read_yaml(ROOT / "profiles" / "tiny.yaml"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (
        ["simulate", "--out", "data", "--profile", "tiny"],
        ["prepare", "--out", "prepared", "--quiet"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "simgan", *command], cwd=root, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr
    return root / "prepared"


def load(prepared, task, domain):
    manifest = pd.read_csv(prepared / task / domain / "manifest.csv", dtype={"id": str, "person": str})
    return np.load(prepared / task / domain / "images.npy", mmap_mode="r"), manifest


def pupil_offsets(images: np.ndarray) -> np.ndarray:
    """(N, 2) (dx, dy) from the image centre of the darkest 1% of pixels (≈ 19 px: pupil-sized, so lid
    creases and brows, which a 3% cut picks up, stay out), in pixels."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    dark = flat <= np.quantile(flat, 0.01, axis=1, keepdims=True)
    ys, xs = np.divmod(np.arange(flat.shape[1]), images.shape[2])
    count = dark.sum(axis=1)
    return np.column_stack(
        [(dark * xs).sum(1) / count - (images.shape[2] - 1) / 2, (dark * ys).sum(1) / count - (images.shape[1] - 1) / 2]
    )


def test_both_tasks_have_arrays_manifests_and_grids(prepared):
    for task, size in (("gaze", (35, 55)), ("hand", (96, 96))):
        for domain in ("synthetic", "real"):
            images, manifest = load(prepared, task, domain)
            assert images.dtype == np.uint8 and images.shape[1:] == size and len(images) == len(manifest) > 0
            assert manifest["domain"].eq(domain).all() and manifest["id"].is_unique
        summary = json.loads((prepared / task / "summary.json").read_text())
        assert all(d["count_in"] == d["kept"] + d["quarantined"] for d in summary.values())
        with Image.open(prepared / task / "samples.png") as grid:
            assert grid.width > 0 and grid.height > 0


def test_synthetic_gaze_labels_point_where_the_pupil_is(prepared):
    images, manifest = load(prepared, "gaze", "synthetic")
    dx, _ = pupil_offsets(np.asarray(images)).T
    # yaw > 0 looks toward image-left (pupil left: dx < 0); a flipped sign convention gives ≈ +0.8.
    # Pitch is not checked this way: the crop is centred on the eyelids, which follow the gaze up and
    # down, so the pupil's vertical place in the crop hardly moves (pitch vs iris_2d is checked on the
    # raw renders in tests/unit/data/test_simulators.py).
    assert np.corrcoef(manifest["yaw_rad"], dx)[0, 1] < -0.8
    norms = np.linalg.norm(manifest[["gaze_x", "gaze_y", "gaze_z"]].to_numpy(), axis=1)
    assert np.allclose(norms, 1, atol=1e-6) and (manifest["gaze_z"] < 0).all()


def test_real_gaze_test_split_agrees_for_both_eyes_and_refiner_rows_are_unlabelled(prepared):
    images, manifest = load(prepared, "gaze", "real")
    test = manifest[manifest["split"] == "test"]
    assert set(test["person"]) == {"p00"} and "p00" not in set(manifest.loc[manifest["split"] == "refiner", "person"])
    assert manifest.loc[manifest["split"] == "refiner", "yaw_rad"].isna().all()
    dx, _ = pupil_offsets(np.asarray(images)[test["row"].to_numpy()]).T
    # right eyes were stored mirrored; after the reader's flip both eyes obey the left-eye convention
    for eye in ("left", "right"):
        chosen = (test["meta_eye"] == eye).to_numpy()
        assert chosen.sum() >= 3
        assert np.corrcoef(test.loc[chosen, "yaw_rad"], dx[chosen])[0, 1] < -0.5, eye


def test_hand_joints_land_on_the_hand(prepared):
    for domain in ("synthetic", "real"):
        images, manifest = load(prepared, "hand", domain)
        labelled = manifest.dropna(subset=["joint_00_u"])
        assert len(labelled) > 0
        hits = []
        for _, row in labelled.iterrows():
            image = images[int(row["row"])]
            for joint in range(14):
                u, v = int(round(row[f"joint_{joint:02d}_u"])), int(round(row[f"joint_{joint:02d}_v"]))
                if 0 <= u < image.shape[1] and 0 <= v < image.shape[0]:
                    window = image[max(v - 2, 0) : v + 3, max(u - 2, 0) : u + 3]
                    hits.append(bool((window > 0).any()))
        assert np.mean(hits) > 0.9, domain
