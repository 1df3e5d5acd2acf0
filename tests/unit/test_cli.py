"""The `simgan` command as users run it: a subprocess, its exit code, its files and its messages."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

TINY_DEMO = ["--synthetic", "64", "--real", "64", "--width", "4", "--batch-size", "8", "--refiner-pretrain-steps", "2",
             "--discriminator-pretrain-steps", "1", "--quiet"]


def simgan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simgan", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    first = simgan("demo", "--out", str(out), *TINY_DEMO, "--rounds", "2")
    return out, first


def test_help_explains_the_commands():
    result = simgan("--help")
    assert result.returncode == 0 and "demo" in result.stdout and "refine" in result.stdout
    demo_help = simgan("demo", "--help").stdout
    assert "Resumes from OUT/checkpoint.pt" in demo_help and "(default: 32)" in demo_help


@pytest.mark.slow
def test_demo_trains_writes_and_resumes(demo_run):
    out, first = demo_run
    assert first.returncode == 0, first.stderr
    assert "trained 5/5 steps" in first.stdout
    assert {"checkpoint.pt", "metrics.csv", "refined_grid.png"} <= {p.name for p in out.iterdir()}
    with Image.open(out / "refined_grid.png") as grid:
        assert grid.size == (10 * 55 * 3, 4 * 35 * 3)  # 10 columns; synthetic, refined, difference, real rows
    second = simgan("demo", "--out", str(out), *TINY_DEMO, "--rounds", "4")  # more rounds: continue, not restart
    assert second.returncode == 0, second.stderr
    assert "resuming from" in second.stdout and "at step 5/7" in second.stdout and "trained 7/7 steps" in second.stdout
    with (out / "metrics.csv").open() as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == sorted(steps) and steps[-1] == 7 and len(steps) == len(set(steps))


@pytest.mark.slow
def test_refine_npy_and_folder_with_quarantine(demo_run, tmp_path):
    out, first = demo_run
    assert first.returncode == 0, first.stderr
    checkpoint = str(out / "checkpoint.pt")
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
    result = simgan("refine", "--checkpoint", str(tmp_path / "bad.pt"), str(tmp_path / "in.npy"), str(tmp_path / "o.npy"))
    assert result.returncode == 2
    assert "not a readable simgan checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_serve_without_a_packaged_bento_says_what_to_run(tmp_path):
    result = subprocess.run([sys.executable, "-m", "simgan", "serve", "--task", "hand"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "artifacts/package/hand/bento.json does not exist" in result.stderr
    assert "dvc repro package@hand" in result.stderr
