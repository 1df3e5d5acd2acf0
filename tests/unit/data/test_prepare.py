"""prepare: arrays + manifest + quarantine per domain; counts add up; person-independent real splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from gaze_fixtures import mpiigaze_day, write_mpiigaze_day, write_unityeyes_pair
from PIL import Image

from simgan.data.prepare import DatasetError, RealSplit, Source, prepare_domain, prepare_task
from simgan.data.simulators import simulated_sources


@pytest.fixture
def gaze_data(tmp_path):
    """data/gaze in the published formats, with one defect of several kinds."""
    synthetic = tmp_path / "data/gaze/synthetic"
    for stem in range(1, 11):
        write_unityeyes_pair(
            synthetic, str(stem), pitch=0.05 * (stem % 3), yaw=0.1 * (stem % 4) - 0.15, width=200, height=150, seed=stem
        )
    (synthetic / "3.jpg").unlink()  # 3.json without 3.jpg
    (synthetic / "7.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")  # corrupt image
    real = tmp_path / "data/gaze/real/Data/Normalized"
    for index, person in enumerate(("p00", "p01", "p02", "p03")):
        write_mpiigaze_day(real / person / "day01.mat", mpiigaze_day(3, seed=index))
    (real / "p03" / "day02.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")  # unreadable day file
    return tmp_path / "data"


def test_counts_add_up_and_every_defect_is_quarantined(gaze_data, tmp_path):
    result = prepare_domain(
        Source("unityeyes", gaze_data / "gaze/synthetic", {"size": (35, 55)}),
        tmp_path / "out/synthetic",
        "synthetic",
        workers=1,
        progress=False,
    )
    assert (result.count_in, result.kept, result.quarantined) == (10, 8, 2)
    quarantine = pd.read_csv(tmp_path / "out/synthetic/quarantine.csv")
    reasons = dict(zip(quarantine["file"], quarantine["reason"]))
    assert set(reasons) == {"3.json", "7.jpg"} and "3.jpg" in reasons["3.json"]
    manifest = pd.read_csv(tmp_path / "out/synthetic/manifest.csv", dtype={"id": str})
    assert manifest["id"].tolist() == ["1", "2", "4", "5", "6", "8", "9", "10"]  # numeric order kept
    images = np.load(tmp_path / "out/synthetic/images.npy", mmap_mode="r")
    assert images.shape == (8, 35, 55) and images.dtype == np.uint8
    assert np.allclose(manifest["pixel_mean"], images.reshape(8, -1).mean(axis=1), atol=1e-3)
    assert manifest["height"].eq(35).all() and manifest["width"].eq(55).all()
    assert set(manifest["split"]) <= {"train", "val"} and manifest["domain"].eq("synthetic").all()
    assert {"gaze_x", "gaze_y", "gaze_z", "pitch_rad", "yaw_rad"} <= set(manifest.columns)


def test_real_split_is_person_independent_and_refiner_rows_carry_no_labels(gaze_data, tmp_path):
    result = prepare_domain(
        Source("mpiigaze", gaze_data / "gaze/real", {"size": (35, 55)}),
        tmp_path / "real",
        "real",
        workers=1,
        progress=False,
        split=RealSplit("persons", ("p01",)),
    )
    assert (result.count_in, result.kept, result.quarantined) == (4 * 3 * 2 + 1, 24, 1)
    manifest = result.manifest
    test, refiner = manifest[manifest["split"] == "test"], manifest[manifest["split"] == "refiner"]
    assert set(test["person"]) == {"p01"} and "p01" not in set(refiner["person"]) and len(test) == 6
    assert test[["gaze_x", "pitch_rad", "yaw_rad"]].notna().all().all()
    assert refiner[["gaze_x", "gaze_y", "gaze_z", "pitch_rad", "yaw_rad"]].isna().all().all()
    assert pd.read_csv(tmp_path / "real/quarantine.csv")["file"].tolist() == ["Data/Normalized/p03/day02.mat"]


def test_parallel_and_serial_give_identical_outputs(gaze_data, tmp_path):
    source = Source("mpiigaze", gaze_data / "gaze/real", {"size": (35, 55)})
    prepare_domain(source, tmp_path / "one", "real", workers=1, progress=False)
    prepare_domain(source, tmp_path / "two", "real", workers=2, progress=False)
    for name in ("images.npy", "manifest.csv", "quarantine.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_nothing_usable_is_one_clear_sentence(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    with pytest.raises(
        DatasetError, match=r"no usable synthetic image among 2 input\(s\); reasons are in .*quarantine.rejected.csv"
    ):
        prepare_domain(
            Source("folder", folder, {"size": (35, 55)}), tmp_path / "out", "synthetic", workers=1, progress=False
        )
    assert len(pd.read_csv(tmp_path / "out/quarantine.rejected.csv")) == 2  # the reasons are still written
    assert not (tmp_path / "out/quarantine.csv").exists()  # beside, never over, a previous run's tables


def test_prepare_task_writes_summary_and_a_grid(gaze_data, tmp_path):
    prepared = prepare_task(
        "gaze",
        tmp_path / "prepared",
        simulated_sources("gaze", gaze_data, (35, 55)),
        workers=2,
        progress=False,
        split=RealSplit("persons", ("p00",)),
    )
    summary = json.loads((tmp_path / "prepared/gaze/summary.json").read_text())
    assert summary["synthetic"]["count_in"] == 10 and summary["real"]["kept"] == 24
    assert summary["real"]["splits"] == {"refiner": 18, "test": 6}
    with Image.open(tmp_path / "prepared/gaze/samples.png") as grid:
        assert grid.width > grid.height  # rows of samples: synthetic, then real
    assert prepared["synthetic"].manifest["source"].iloc[0] == "1.jpg"  # sources relative to the data root


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="unknown data format 'png'"):
        prepare_domain(Source("png", tmp_path), tmp_path / "o", "synthetic", progress=False)


def test_test_persons_that_do_not_exist_are_refused_before_anything_is_written(gaze_data, tmp_path):
    """`test_persons: [p99]` used to give no test split without a word."""
    with pytest.raises(DatasetError, match=r"test_persons \['p99'\] not among the persons of .* \(found 4: p00"):
        prepare_task(
            "gaze",
            tmp_path / "o",
            simulated_sources("gaze", gaze_data, (35, 55)),
            workers=1,
            progress=False,
            split=RealSplit("persons", ("p00", "p99")),
        )
    assert not (tmp_path / "o/gaze/real/images.npy").exists()
