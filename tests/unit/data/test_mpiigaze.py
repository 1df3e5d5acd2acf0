"""MPIIGaze reader: day order, every scipy access pattern, a one-sample day, right-eye mirroring, quarantine."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from gaze_fixtures import mpiigaze_day, write_evaluation_list, write_mpiigaze_day
from PIL import Image

from simgan.data.formats import Quarantined, Sample, mpiigaze, read_all
from simgan.data.geometry import pitch_yaw_from_gaze


def _normalized(root: Path) -> Path:
    return root / "Data" / "Normalized"


def _read_all(root: Path, **options) -> tuple[list[Sample], list[Quarantined]]:
    return read_all(mpiigaze, root, **options)


def _resized(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((55, 35), Image.Resampling.BILINEAR))


def test_scan_lists_days_in_person_day_order(tmp_path):
    for person, day in (("p01", "day10"), ("p00", "day02"), ("p01", "day9"), ("p10", "day01"), ("p00", "day01")):
        write_mpiigaze_day(_normalized(tmp_path) / person / f"{day}.mat", mpiigaze_day(1))
    (_normalized(tmp_path) / "p00" / "notes.mat").touch()
    items, quarantined = mpiigaze.scan(tmp_path)
    assert [(i.person, i.day) for i in items] == [
        ("p00", "day01"),
        ("p00", "day02"),
        ("p01", "day9"),
        ("p01", "day10"),
        ("p10", "day01"),
    ]
    assert quarantined == []
    assert [i.path for i in mpiigaze.scan(_normalized(tmp_path))[0]] == [i.path for i in items]
    assert pickle.loads(pickle.dumps(items)) == items


def test_scan_missing_root_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mpiigaze.scan(tmp_path / "MPIIGaze")
    with pytest.raises(ValueError, match="eyes"):
        mpiigaze.scan(tmp_path, eyes=("middle",))


def test_read_values_order_and_right_eye_mirror(tmp_path):
    day = mpiigaze_day(3, seed=4)
    day["left"]["gaze"][1] *= 1.5  # stored vectors need not be unit: the label is the direction
    path = write_mpiigaze_day(_normalized(tmp_path) / "p03" / "day02.mat", day)
    samples, quarantined = _read_all(tmp_path)
    assert quarantined == []
    assert [s.id for s in samples] == [f"p03/day02/{n:04d}.jpg/{side}" for n in (1, 2, 3) for side in ("left", "right")]
    assert samples[0].source == f"{path}#0001.jpg/left"
    for sample in samples:
        index = int(sample.metadata["file"][:4]) - 1
        side = sample.metadata["eye"]
        assert sample.person == "p03" and sample.metadata["day"] == "day02"
        assert sample.image.shape == (35, 55) and sample.image.dtype == np.uint8
        raw_image, raw_gaze = day[side]["image"][index], day[side]["gaze"][index]
        raw_gaze = raw_gaze / np.linalg.norm(raw_gaze)
        gaze = np.array([sample.labels[k] for k in ("gaze_x", "gaze_y", "gaze_z")])
        raw_pitch, raw_yaw = pitch_yaw_from_gaze(raw_gaze)
        if side == "left":
            np.testing.assert_array_equal(sample.image, _resized(raw_image))
            np.testing.assert_allclose(gaze, raw_gaze)
            assert sample.labels["yaw_rad"] == pytest.approx(raw_yaw)
            assert sample.image[:, :8].min() > 200  # the bright bar stays left
        else:
            np.testing.assert_array_equal(sample.image, _resized(raw_image[:, ::-1]))
            np.testing.assert_allclose(gaze, raw_gaze * [-1, 1, 1])
            assert sample.labels["yaw_rad"] == pytest.approx(-raw_yaw)
            assert sample.image[:, -8:].min() > 200 and sample.image[:, :8].max() < 200  # mirrored
        assert sample.labels["pitch_rad"] == pytest.approx(raw_pitch)
        assert {"head_pitch_deg", "head_yaw_deg"} <= set(sample.metadata)
    left, right = samples[0].metadata, samples[1].metadata
    assert np.isfinite([left["head_pitch_deg"], left["head_yaw_deg"], right["head_yaw_deg"]]).all()
    assert pickle.loads(pickle.dumps(samples))[0].id == samples[0].id


def test_single_sample_day_and_eye_selection(tmp_path):
    day = mpiigaze_day(1, seed=2)
    write_mpiigaze_day(_normalized(tmp_path) / "p00" / "day01.mat", day)
    samples, quarantined = _read_all(tmp_path)
    assert quarantined == [] and [s.id for s in samples] == ["p00/day01/0001.jpg/left", "p00/day01/0001.jpg/right"]
    np.testing.assert_allclose(samples[1].labels["gaze_x"], -day["right"]["gaze"][0, 0])
    samples, _ = _read_all(tmp_path, eyes=("right",))
    assert [s.metadata["eye"] for s in samples] == ["right"]


@pytest.mark.parametrize("count", [1, 4])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"squeeze_me": True, "struct_as_record": False},
        {"squeeze_me": True},
        {"simplify_cells": True},
        {"struct_as_record": False},
    ],
)
def test_day_arrays_accepts_every_scipy_access_pattern(tmp_path, count, options):
    day = mpiigaze_day(count, seed=count)
    path = write_mpiigaze_day(tmp_path / "day01.mat", day)
    names, sides = mpiigaze.day_arrays(scipy.io.loadmat(path, **options))
    assert names == day["filenames"]
    for side in ("left", "right"):
        np.testing.assert_array_equal(sides[side]["image"], day[side]["image"])
        np.testing.assert_allclose(sides[side]["gaze"], day[side]["gaze"])
        np.testing.assert_allclose(sides[side]["pose"], day[side]["pose"])


def test_evaluation_subset_both_layouts(tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    write_evaluation_list(new, "p00", ["day08/0069.jpg left", "day04/0900.jpg right", ""])
    write_evaluation_list(new, "p01", ["day01/0001.jpg left"])
    write_evaluation_list(old, "p00", ["day08/0069.jpg left"], old_layout=True)
    assert mpiigaze.read_evaluation_subset(new) == {
        ("p00", "day08", "0069.jpg", "left"),
        ("p00", "day04", "0900.jpg", "right"),
        ("p01", "day01", "0001.jpg", "left"),
    }
    assert mpiigaze.read_evaluation_subset(old) == {("p00", "day08", "0069.jpg", "left")}
    write_evaluation_list(tmp_path / "bad", "p02", ["day08/0069.jpg up"])
    with pytest.raises(ValueError, match=r"p02.txt:1"):
        mpiigaze.read_evaluation_subset(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="sample list for eye image"):
        mpiigaze.read_evaluation_subset(tmp_path / "empty")


def test_every_bad_input_is_quarantined_with_its_reason(tmp_path):
    folder = _normalized(tmp_path) / "p00"
    write_mpiigaze_day(folder / "day01.mat", mpiigaze_day(3, seed=1))  # good: 6 samples
    folder.joinpath("day02.mat").write_bytes(b"MATLAB 5.0 MAT-file, not really" + bytes(200))  # unreadable
    day = mpiigaze_day(3, seed=3)
    day["left"]["gaze"][1, 0] = np.nan  # one NaN gaze
    write_mpiigaze_day(folder / "day03.mat", day)
    day = mpiigaze_day(2, seed=4)
    day["left"]["image"] = np.zeros((2, 40, 60), np.uint8)  # wrong size
    day["right"]["image"] = np.zeros((2, 60, 36), np.uint8)  # transposed
    write_mpiigaze_day(folder / "day04.mat", day)
    day = mpiigaze_day(2, seed=5)
    day["right"] = {"gaze": day["right"]["gaze"], "pose": day["right"]["pose"]}  # no image
    write_mpiigaze_day(folder / "day05.mat", day)
    day = mpiigaze_day(2, seed=6)
    day["left"]["gaze"] = day["left"]["gaze"][:1]  # count mismatch
    write_mpiigaze_day(folder / "day06.mat", day)

    samples, quarantined = _read_all(tmp_path)
    assert len(samples) == 6 + 5
    assert len(quarantined) == 1 + 1 + 4 + 1 + 1
    by_source = {q.source.replace(str(folder) + "/", ""): q.reason for q in quarantined}
    assert by_source["day02.mat"].startswith("cannot read MAT file")
    assert "NaN" in by_source["day03.mat#0002.jpg/left"]
    for name in ("0001.jpg", "0002.jpg"):
        assert by_source[f"day04.mat#{name}/left"] == "image is 40×60 (H×W); expected 36×60"
        assert by_source[f"day04.mat#{name}/right"] == "image is 60×36 (H×W); expected 36×60; looks transposed"
    assert by_source["day05.mat"] == "missing variable data.right.image"
    assert by_source["day06.mat"] == "data.left.gaze has shape (1, 3); expected (2, 3) for 2 file names"
