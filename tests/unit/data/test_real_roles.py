"""The two roles of real data: the refiner's unlabelled real images (any size, labels ignored) and the
optional labelled test images (same source by persons / fraction / MPIIGaze's Evaluation Subset, a
separate source, or none), with an unlabelled realism hold-out the refiner never sees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from simgan.data.formats import TASK_LABELS, folder
from simgan.data.formats.nyu import LABEL_NAMES
from simgan.data.prepare import DatasetError, RealSplit, prepare_domain, prepare_task, source
from simgan.data.simulators import simulate

GAZE = TASK_LABELS["gaze"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The tiny simulated world: MPIIGaze days with an Evaluation Subset, UnityEyes renders."""
    root = tmp_path_factory.mktemp("world") / "data"
    simulate(root, profile="tiny", workers=1)
    return root


def eye_folder(root, count: int = 12, size=(36, 60), labels: bool = False):
    """PNG eyes of MPIIGaze's stored size; a gradient so that crops are recognisable."""
    root.mkdir(parents=True)
    rows = []
    for number in range(count):
        pixels = (np.add.outer(np.arange(size[0]) * 3, np.arange(size[1]) * 2) + 7 * number) % 256
        Image.fromarray(pixels.astype(np.uint8)).save(root / f"{number:03d}.png")
        rows.append(
            {"id": f"{number:03d}", "gaze_x": 0.0, "gaze_y": 0.0, "gaze_z": -1.0, "pitch_rad": 0.0, "yaw_rad": 0.0}
        )
    if labels:
        pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def test_unlabelled_images_of_another_size_are_centre_cropped_and_resized(tmp_path):
    """60×36 eyes to 55×35: the middle 57 columns (aspect 55:35) of the full height, then resized."""
    images = eye_folder(tmp_path / "eyes", count=3)
    result = prepare_domain(
        source("folder", images, "real", (35, 55), unlabelled=True, resize="bilinear"),
        tmp_path / "out",
        "real",
        workers=1,
        progress=False,
        label_columns=GAZE,
    )
    assert (result.count_in, result.kept, result.quarantined) == (3, 3, 0)
    prepared = np.load(tmp_path / "out/images.npy")
    assert prepared.shape == (3, 35, 55)
    with Image.open(images / "001.png") as original:
        expected = np.asarray(original.crop((1, 0, 58, 36)).resize((55, 35), Image.Resampling.BILINEAR))
    assert np.array_equal(prepared[1], expected)
    manifest = result.manifest
    assert manifest[["meta_original_height", "meta_original_width"]].drop_duplicates().values.tolist() == [[36, 60]]
    assert list(manifest.columns[6:11]) == list(GAZE) and manifest[list(GAZE)].isna().all().all()


@pytest.mark.parametrize("shape, window", [((36, 60), (57, 36)), ((70, 55), (55, 35)), ((35, 55), (55, 35))])
def test_centre_crop_keeps_the_largest_window_of_the_task_aspect(shape, window):
    image = Image.fromarray(np.zeros(shape, np.uint8))
    calls = []
    original_crop = Image.Image.crop

    def crop(self, box):
        calls.append((box[2] - box[0], box[3] - box[1]))
        return original_crop(self, box)

    Image.Image.crop = crop
    try:
        assert folder.centre_crop_resize(image, (35, 55), "box").size == (55, 35)
    finally:
        Image.Image.crop = original_crop
    assert calls == [window]


def test_without_resize_another_size_is_quarantined_and_says_how_to_resize(tmp_path):
    images = eye_folder(tmp_path / "eyes", count=2)
    with pytest.raises(DatasetError, match="no usable real image"):
        prepare_domain(
            source("folder", images, "real", (35, 55), unlabelled=True),
            tmp_path / "out",
            "real",
            workers=1,
            progress=False,
        )
    reasons = pd.read_csv(tmp_path / "out/quarantine.rejected.csv")["reason"]
    assert reasons.str.contains(r"size 36x60, expected 35x55.*real_resize").all()


def test_labelled_images_are_never_resized(tmp_path):
    images = eye_folder(tmp_path / "eyes", count=2, labels=True)
    with pytest.raises(DatasetError, match="never resized"):
        source("folder", images, "real", (35, 55), resize="bilinear")
    with pytest.raises(ValueError, match="never resized"):
        folder.scan(images, size=(35, 55), resize="bilinear")
    items, quarantined = folder.scan(images, size=(35, 55))
    results = [r for item in items for r in folder.read(item)]
    assert all("labelled images are never resized" in r.reason for r in results)


def test_an_unlabelled_read_ignores_labels_csv(tmp_path):
    images = eye_folder(tmp_path / "eyes", count=4, size=(35, 55), labels=True)
    result = prepare_domain(
        source("folder", images, "real", (35, 55), unlabelled=True),
        tmp_path / "out",
        "real",
        workers=1,
        progress=False,
        split=RealSplit("none"),
        label_columns=GAZE,
    )
    assert result.kept == 4 and result.manifest[list(GAZE)].isna().all().all()


def test_holdout_is_unlabelled_disjoint_from_test_and_stable(data, tmp_path):
    split = RealSplit("persons", ("p00",), holdout_fraction=0.3)
    real = source("mpiigaze", data / "gaze/real", "real", (35, 55))
    first = prepare_domain(real, tmp_path / "a", "real", workers=1, progress=False, split=split).manifest
    counts = first["split"].value_counts()
    assert set(counts.index) == {"refiner", "holdout", "test"} and counts["holdout"] > 0
    assert set(first.loc[first["split"] == "test", "person"]) == {"p00"}
    assert first.loc[first["split"] != "test", list(GAZE)].isna().all().all()
    assert first.loc[first["split"] == "test", list(GAZE)].notna().all().all()
    again = prepare_domain(real, tmp_path / "b", "real", workers=1, progress=False, split=split).manifest
    assert again["split"].tolist() == first["split"].tolist()
    # the test rows do not move when a hold-out is added: it is drawn from the other rows only
    without = prepare_domain(
        real, tmp_path / "c", "real", workers=1, progress=False, split=RealSplit("persons", ("p00",))
    ).manifest
    assert (without["split"] == "test").tolist() == (first["split"] == "test").tolist()


def test_mpiigaze_evaluation_subset_is_the_labelled_test_set(data, tmp_path):
    from simgan.data.formats.mpiigaze import read_evaluation_subset

    listed = {f"{p}/{d}/{n}/{s}" for p, d, n, s in read_evaluation_subset(data / "gaze/real")}
    manifest = prepare_domain(
        source("mpiigaze", data / "gaze/real", "real", (35, 55)),
        tmp_path / "out",
        "real",
        workers=1,
        progress=False,
        split=RealSplit("evaluation_subset"),
    ).manifest
    test = manifest[manifest["split"] == "test"]
    assert set(test["id"]) == listed & set(manifest["id"]) and len(test) > 0
    assert set(manifest.loc[manifest["split"] != "test", "id"]).isdisjoint(listed)
    assert test[list(GAZE)].notna().all().all()


def test_a_separate_labelled_test_source_joins_the_real_arrays_with_prefixed_ids(data, tmp_path):
    unlabelled = eye_folder(tmp_path / "eyes", count=6)
    sources = {
        "synthetic": source("unityeyes", data / "gaze/synthetic", "synthetic", (35, 55)),
        "real": source("folder", unlabelled, "real", (35, 55), unlabelled=True, resize="box"),
        "test": source("mpiigaze", data / "gaze/real", "real", (35, 55)),
    }
    prepared = prepare_task(
        "gaze", tmp_path / "prepared", sources, workers=1, progress=False, split=RealSplit("source")
    )
    manifest = prepared["real"].manifest
    test = manifest[manifest["split"] == "test"]
    assert test["id"].str.startswith("test/").all() and test[list(GAZE)].notna().all().all()
    assert set(manifest.loc[manifest["split"] == "refiner", "id"]) == {f"{n:03d}" for n in range(6)}
    assert prepared["real"].count_in == prepared["real"].kept + prepared["real"].quarantined


def test_labelled_test_rows_must_carry_labels(tmp_path):
    images = eye_folder(tmp_path / "eyes", count=20, size=(35, 55))
    with pytest.raises(DatasetError, match="test images of .* have no labels"):
        prepare_domain(
            source("folder", images, "real", (35, 55)),
            tmp_path / "out",
            "real",
            workers=1,
            progress=False,
            split=RealSplit("fraction", test_fraction=0.5),
        )
    assert not (tmp_path / "out/images.npy").exists()


def test_label_columns_of_each_task_are_the_readers():
    assert TASK_LABELS["hand"] == LABEL_NAMES
    assert GAZE == ("gaze_x", "gaze_y", "gaze_z", "pitch_rad", "yaw_rad")
