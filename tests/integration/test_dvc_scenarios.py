"""The pipeline under real DVC in scenarios of their own, each on its own small repository (the tiny
profile; test_dvc_pipeline's `make_repo`): experiments that carry their results, and unlabelled real
images of another size. Apart from test_dvc_pipeline.py so that the two files run side by side (`make test`
runs pytest-xdist by file)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_dvc_pipeline import dvc, make_repo

from simgan import layout

pytestmark = pytest.mark.slow


def test_experiments_carry_their_results(tmp_path):
    """`dvc exp show` lists each experiment's metrics (not `!`), `dvc exp diff` compares them, and
    `dvc exp apply` brings one back whole: its params, and its metrics file from the cache."""
    repo = make_repo(tmp_path)
    dvc(repo, "exp", "run", "-n", "two-rounds", "train@gaze")
    dvc(repo, "exp", "run", "-n", "three-rounds", "-S", "train.gaze.adversarial_rounds=3", "train@gaze")
    metrics = "artifacts/train/gaze/dvclive/metrics.json"
    table = dvc(repo, "exp", "show", "--csv", "--no-pager").stdout
    rows = {row.split(",")[0]: row for row in table.splitlines()[1:]}
    header = table.splitlines()[0].split(",")
    step = header.index(f"{metrics}:step")
    for name, steps in (("two-rounds", "5"), ("three-rounds", "6")):  # 2 + 1 pretraining steps + rounds
        assert name in rows, table
        assert rows[name].split(",")[step] == steps, table
    diff = dvc(repo, "exp", "diff", "two-rounds", "three-rounds").stdout
    assert "adversarial_rounds" in diff and "step" in diff, diff
    (repo / metrics).unlink()
    # these experiments ran train@gaze only: apply restores everything they produced and names, as
    # failed checkouts, only the outputs of stages they never ran (a full-pipeline experiment has none)
    applied = dvc(repo, "exp", "apply", "two-rounds", check=False)
    failed = applied.stdout + applied.stderr
    assert metrics not in failed.split("Checkout failed for following targets:")[-1], failed
    assert yaml.safe_load((repo / "params.yaml").read_text())["train"]["gaze"]["adversarial_rounds"] == 2
    assert json.loads((repo / metrics).read_text())["step"] == 5


def unlabelled_real_folders(repo: Path, params: dict) -> None:
    """The real domain of both tasks as folders of unlabelled PNGs of another size than the task's:
    eyes at MPIIGaze's stored 60×36 (task: 55×35), hand depth crops at 112×112 (task: 96×96), each with
    its left-right mirror so that a hold-out can be drawn; no labels, no persons."""
    from PIL import Image

    from simgan.data.formats import mpiigaze, nyu, read_all

    eyes, _ = read_all(mpiigaze, repo / "data/gaze/real", size=(36, 60))
    hands, _ = read_all(nyu, repo / "data/hand/real", size=112, kind="depth")
    for task, samples in (("gaze", eyes), ("hand", hands)):
        folder = repo / "data" / task / "real_unlabelled"
        folder.mkdir()
        for number, sample in enumerate(samples):
            Image.fromarray(sample.image).save(folder / f"{number:04d}.png")
            Image.fromarray(sample.image[:, ::-1].copy()).save(folder / f"{number:04d}_mirrored.png")
        section = params["prepare"][task]
        for key in ("test_persons", "test_fraction"):
            section.pop(key, None)
        section.update(
            real_format="folder",
            real_path=f"data/{task}/real_unlabelled",
            real_resize="bilinear" if task == "gaze" else "nearest",
            test_split="none",
            holdout_fraction=0.3,
        )


def test_unlabelled_real_images_of_another_size_run_to_the_report(tmp_path):
    """S+U's premise: a simulator and a folder of unlabelled real images. `dvc repro` completes; the
    estimators are not compared (no labelled real image), and the report says so in one line; realism,
    preservation, grids and the Turing page are there, measured on the hold-out the refiner never saw."""
    repo = make_repo(tmp_path, unlabelled_real_folders)
    dvc(repo, "repro", "report")  # everything the report needs; packaging is tested on the module's repo
    report = (repo / layout.report() / "report.md").read_text()
    assert report.count("Estimator comparison skipped: no labelled real test images") == 2, report
    for task, size in (("gaze", (35, 55)), ("hand", (96, 96))):
        manifest = pd.read_csv(repo / layout.prepared(task, "real") / "manifest.csv")
        assert set(manifest["split"]) == {"refiner", "holdout"}
        assert manifest["height"].eq(size[0]).all() and manifest["width"].eq(size[1]).all()
        assert manifest["meta_original_height"].ne(size[0]).all()  # every one was resized
        metrics = json.loads((repo / layout.evaluated(task) / "metrics.json").read_text())
        assert "refined_within_pct" not in metrics and "synthetic" not in metrics  # absent, never zero
        assert {"real_vs_synthetic", "real_vs_refined"} <= set(metrics["realism"])
        assert metrics["preservation"]
        results = json.loads((repo / layout.evaluated(task) / "results.json").read_text())
        assert results["realism_real_split"] == "holdout" and results["estimators"] == {}
        for figure in ("grid.png", "turing.html"):
            assert (repo / layout.evaluated(task) / "figures" / figure).is_file()
        training = json.loads((repo / layout.estimated(task) / "training.json").read_text())
        assert "no labelled real test images" in training["skipped"]
    assert "Hand pose estimation on" not in report and "Gaze estimation on the real test split" not in report
