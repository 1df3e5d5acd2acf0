"""The `simgan` command as users run it: a subprocess, its exit code, its files and its messages."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def simgan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simgan", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny trained refiner's checkpoint, as the train stage writes it."""
    from conftest import tiny_trainer

    rng = np.random.default_rng(0)
    synthetic, real = (rng.integers(0, 256, (16, 35, 55), dtype=np.uint8) for _ in range(2))
    trainer = tiny_trainer(synthetic, real)
    path = tmp_path_factory.mktemp("train") / "checkpoint.pt"
    trainer.fit(checkpoint_path=path)
    return path


def test_help_explains_the_commands():
    result = simgan("--help")
    assert result.returncode == 0
    for command in ("simulate", "check", "profile", "prepare", "refine", "serve"):
        assert command in result.stdout
    assert "demo" not in result.stdout  # one front door: the pipeline (make demo / dvc repro)
    prepare_help = simgan("prepare", "--help").stdout
    assert "artifacts/" in prepare_help and "dvc repro prepare@<task>" in prepare_help


def test_prepare_never_writes_into_the_pipelines_outputs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "simgan", "prepare", "--out", "artifacts/prepared"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "which the pipeline (DVC) owns" in result.stderr
    assert "Traceback" not in result.stderr


def test_profile_prints_the_dvc_experiment_it_would_run():
    result = subprocess.run(
        [sys.executable, "-m", "simgan", "profile", "paper"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dvc exp run -n paper -S ") and "pretrain.gaze.refiner.width=64" in result.stdout


@pytest.mark.slow
def test_refine_npy_and_folder_with_quarantine(checkpoint, tmp_path):
    checkpoint = str(checkpoint)
    images = np.random.default_rng(0).integers(0, 256, (5, 35, 55), dtype=np.uint8)
    np.save(tmp_path / "in.npy", images)
    result = simgan("refine", "--checkpoint", checkpoint, str(tmp_path / "in.npy"), str(tmp_path / "out.npy"))
    assert result.returncode == 0, result.stderr
    refined = np.load(tmp_path / "out.npy")
    assert refined.shape == images.shape and refined.dtype == np.uint8

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(images[i]).save(folder / f"eye_{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(np.zeros((55, 35), dtype=np.uint8)).save(folder / "transposed.png")
    result = simgan("refine", "--checkpoint", checkpoint, str(folder), str(tmp_path / "refined"))
    assert result.returncode == 0, result.stderr
    assert "5 images in, 3 refined" in result.stdout and "2 quarantined" in result.stdout
    assert sorted(p.name for p in (tmp_path / "refined").glob("*.png")) == ["eye_0.png", "eye_1.png", "eye_2.png"]
    with (tmp_path / "refined" / "quarantine.csv").open() as handle:
        reasons = {row["file"].rsplit("/", 1)[-1]: row["reason"] for row in csv.DictReader(handle)}
    assert reasons.keys() == {"broken.png", "transposed.png"}
    assert "unreadable image" in reasons["broken.png"] and "size 55×35, expected 35×55" in reasons["transposed.png"]


def test_corrupt_checkpoint_is_one_clear_sentence(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    np.save(tmp_path / "in.npy", np.zeros((1, 35, 55), dtype=np.uint8))
    result = simgan(
        "refine", "--checkpoint", str(tmp_path / "bad.pt"), str(tmp_path / "in.npy"), str(tmp_path / "o.npy")
    )
    assert result.returncode == 2
    assert "not a readable simgan checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_serve_without_a_promoted_or_packaged_bento_says_what_to_run(tmp_path):
    def serve(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "simgan", "serve", "--task", "hand", *extra],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = serve()
    assert result.returncode == 2
    assert "nothing is promoted yet" in result.stderr and "flows.retrain" in result.stderr
    result = serve("--latest")
    assert result.returncode == 2
    assert "artifacts/package/hand/bento.json does not exist" in result.stderr
    assert "dvc repro package@hand" in result.stderr
