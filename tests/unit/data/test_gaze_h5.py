"""4quant gaze.h5 / real_gaze.h5 reader: numeric key order, both image layouts, look_vec widths, quarantine."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from gaze_fixtures import gaze_h5_arrays, write_gaze_h5

from simgan.data.formats import Quarantined, Sample, gaze_h5, read_all
from simgan.data.geometry import gaze_from_unity_look_vec, pitch_yaw_from_gaze


def _read_all(path: Path, **options) -> tuple[list[Sample], list[Quarantined]]:
    return read_all(gaze_h5, path, **options)


def _index(sample: Sample) -> int:
    """The fixture fills image i with 10·i + 5 (+0..4 texture): recover i."""
    return int(sample.image.min()) // 10


@pytest.mark.parametrize("columns", [3, 4])
def test_unpadded_keys_are_read_in_numeric_order_with_their_labels(tmp_path, columns):
    images, look = gaze_h5_arrays(12)
    keys = [str(i) for i in range(1, 13)]
    path = write_gaze_h5(
        tmp_path / "gaze.h5", images, look[:, :columns], keys=keys, paths=[f"imgs/{k}.jpg" for k in keys]
    )
    with h5py.File(path) as file:
        assert list(file["image"].keys())[:4] == ["1", "10", "11", "12"]  # what naive readers stack
    samples, quarantined = _read_all(path)
    assert quarantined == []
    assert [s.id for s in samples] == keys
    assert [_index(s) for s in samples] == list(range(12))
    assert samples[9].source == f"{path}#10" and samples[9].metadata == {"original_path": "imgs/10.jpg"}
    expected = pitch_yaw_from_gaze(gaze_from_unity_look_vec(look))
    got = np.array([[s.labels["pitch_rad"], s.labels["yaw_rad"]] for s in samples])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(got[:, 0], np.linspace(-0.3, 0.3, 12), atol=1e-9)  # pitch up-positive
    np.testing.assert_allclose(samples[0].labels["gaze_y"], -look[0, 1])  # Unity y up -> MPII y down
    assert all(s.image.shape == (35, 55) and s.image.dtype == np.uint8 for s in samples)


def test_padded_and_named_keys_and_key_order():
    assert sorted(["img_10", "img_2", "0003", "b", "a", "1"], key=gaze_h5.key_order) == [
        "1",
        "img_2",
        "0003",
        "img_10",
        "a",
        "b",
    ]


def test_padded_keys_array_layout_and_chunks(tmp_path):
    images, look = gaze_h5_arrays(12)
    padded = write_gaze_h5(tmp_path / "padded.h5", images, look, keys=[f"{i:04d}" for i in range(12)])
    array = write_gaze_h5(tmp_path / "array.h5", images, look)
    items, _ = gaze_h5.scan(array, chunk=5)
    assert [(i.start, i.stop) for i in items] == [(0, 5), (5, 10), (10, 12)]
    assert pickle.loads(pickle.dumps(items)) == items
    by_padded, _ = _read_all(padded, chunk=5)
    by_array, _ = _read_all(array, chunk=5)
    assert [s.id for s in by_array] == [str(i) for i in range(12)]
    assert [s.source for s in by_array][:2] == [f"{array}#0", f"{array}#1"]
    for a, b in zip(by_padded, by_array):
        np.testing.assert_array_equal(a.image, b.image)
        assert a.labels == b.labels
    assert [_index(s) for s in by_padded] == list(range(12))
    assert _read_all(tmp_path / "padded.h5")[0][0].labels == by_padded[0].labels  # chunking changes nothing


def test_real_gaze_without_look_vec_is_unlabelled(tmp_path):
    images, _ = gaze_h5_arrays(3)
    path = write_gaze_h5(tmp_path / "real_gaze.h5", images, keys=["1", "2", "3"])
    samples, quarantined = _read_all(tmp_path)  # a folder holding one .h5 file is accepted
    assert quarantined == [] and [s.labels for s in samples] == [{}, {}, {}]
    assert samples[0].source == f"{path}#1"
    pickle.loads(pickle.dumps(samples))


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gaze_h5.scan(tmp_path / "gaze.h5")
    with pytest.raises(FileNotFoundError, match="found: none"):
        gaze_h5.scan(tmp_path)


def test_every_bad_input_is_quarantined_with_its_reason(tmp_path):
    images, look = gaze_h5_arrays(8)
    members = list(images)
    members[2] = np.zeros((55, 35), np.uint8)  # transposed
    members[3] = np.zeros((36, 60), np.uint8)  # wrong size
    look[4, 0] = np.nan
    look[5, :3] *= 0.5  # norm 0.5
    path = tmp_path / "gaze.h5"
    with h5py.File(path, "w") as file:
        group = file.create_group("image")
        for key, image in zip(range(1, 9), members):
            group.create_dataset(str(key), data=image)
        file.create_dataset("look_vec", data=look)
    samples, quarantined = _read_all(path, chunk=3)
    assert [s.id for s in samples] == ["1", "2", "7", "8"]
    reasons = {q.source: q.reason for q in quarantined}
    assert len(quarantined) == 4
    assert reasons[f"{path}#3"] == "image is 55×35 (H×W); expected 35×55 (H×W); looks transposed"
    assert reasons[f"{path}#4"] == "image has shape (36, 60); expected 35×55 (H×W)"
    assert "NaN" in reasons[f"{path}#5"]
    assert "norm 0.5000" in reasons[f"{path}#6"]


@pytest.mark.parametrize(
    "case, reason",
    [
        ("garbage", "cannot read HDF5 file"),
        ("no image", "no 'image' group or dataset"),
        ("short look_vec", "'look_vec' has 2 rows but 'image' has 3 samples"),
        ("wide look_vec", "'look_vec' has shape (3, 5)"),
    ],
)
def test_an_unusable_file_is_one_quarantine_entry(tmp_path, case, reason):
    images, look = gaze_h5_arrays(3)
    path = tmp_path / "gaze.h5"
    if case == "garbage":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    elif case == "no image":
        write_gaze_h5(path, images, look, keys=None)
        with h5py.File(path, "a") as file:
            del file["image"]
    elif case == "short look_vec":
        write_gaze_h5(path, images, look[:2], keys=["1", "2", "3"])
    else:
        write_gaze_h5(path, images, np.ones((3, 5)), keys=["1", "2", "3"])
    items, quarantined = gaze_h5.scan(path)
    assert items == [] and len(quarantined) == 1
    assert quarantined[0].source == str(path) and quarantined[0].reason.startswith(reason)


def test_a_file_that_breaks_after_scan_loses_each_sample_of_the_range(tmp_path):
    images, look = gaze_h5_arrays(5)
    path = write_gaze_h5(tmp_path / "gaze.h5", images, look, keys=[str(i) for i in range(1, 6)])
    items, _ = gaze_h5.scan(path, chunk=3)
    path.write_bytes(b"gone")
    results = gaze_h5.read(items[0])
    assert [r.source for r in results] == [f"{path}#1", f"{path}#2", f"{path}#3"]
    assert all(isinstance(r, Quarantined) and r.reason.startswith("cannot read HDF5 file") for r in results)
