"""UnityEyes reader: pairing and numeric order, labels on the real sample, crop geometry, speed, quarantine."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from gaze_fixtures import PUPIL, REAL_UNITYEYES_JSON, real_unityeyes_label, unityeyes_label, write_unityeyes_pair

from simgan.data.formats import Quarantined, Sample, read_all, unityeyes
from simgan.data.geometry import UNITYEYES_EYEBALL_RADIUS_PX_AT_800x600
from simgan.data.histogram import equalize_histogram

SHARED_SAMPLE = Path("reference/samples/unityeyes_1.json")


def _read_all(root: Path, **options) -> tuple[list[Sample], list[Quarantined]]:
    return read_all(unityeyes, root, **options)


def test_embedded_label_is_the_real_sample():
    """tests/fixtures/unityeyes_1.json is a byte copy of shared/reference/samples/unityeyes_1.json."""
    vendored = Path(__file__).resolve().parents[2] / "fixtures" / "unityeyes_1.json"
    assert json.loads(vendored.read_text()) == json.loads(REAL_UNITYEYES_JSON)
    shared = [parent / "shared" / SHARED_SAMPLE for parent in vendored.parents]
    original = next((p for p in shared if p.is_file()), None)
    if original is not None:  # beside a workspace checkout: the copy has not drifted
        assert original.read_bytes() == vendored.read_bytes()


def test_real_sample_labels(tmp_path):
    jpg, _ = write_unityeyes_pair(tmp_path, "17", label=real_unityeyes_label())
    (sample,) = unityeyes.read(unityeyes.scan(tmp_path)[0][0])
    assert isinstance(sample, Sample)
    assert sample.id == "17" and sample.source == str(jpg) and sample.person == ""
    assert math.degrees(sample.labels["pitch_rad"]) == pytest.approx(22.82, abs=0.01)
    assert math.degrees(sample.labels["yaw_rad"]) == pytest.approx(-21.67, abs=0.01)
    gaze = np.array([sample.labels[k] for k in ("gaze_x", "gaze_y", "gaze_z")])
    expected = np.array([0.3404, -0.3879, -0.8566])
    np.testing.assert_allclose(gaze, expected / np.linalg.norm(expected), atol=1e-12)
    assert sample.metadata["head_pitch_deg"] == pytest.approx(-4.923)  # (355.0770, 203.8451) -> GazeML's wrap
    assert sample.metadata["head_yaw_deg"] == pytest.approx(23.8451)
    assert (sample.metadata["render_width"], sample.metadata["render_height"]) == (800, 600)
    assert sample.image.shape == (35, 55) and sample.image.dtype == np.uint8


def test_scan_pairs_in_numeric_order_and_quarantines_orphans(tmp_path):
    for stem in range(1, 12):
        if stem != 2:
            (tmp_path / f"{stem}.jpg").touch()
        if stem != 5:
            (tmp_path / f"{stem}.json").touch()
    (tmp_path / "notes.txt").touch()
    items, quarantined = unityeyes.scan(tmp_path)
    assert [item.stem for item in items] == ["1", "3", "4", "6", "7", "8", "9", "10", "11"]
    assert all(Path(i.image).name == f"{i.stem}.jpg" and Path(i.label).name == f"{i.stem}.json" for i in items)
    assert quarantined == [
        Quarantined(str(tmp_path / "2.json"), "2.json has no 2.jpg"),
        Quarantined(str(tmp_path / "5.jpg"), "5.jpg has no 5.json"),
    ]


def test_scan_missing_root_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        unityeyes.scan(tmp_path / "nowhere")


def _expected_pupil(label: dict, pitch: float, yaw: float, width: int) -> np.ndarray:
    """Where the pupil must land in the 35×55 crop: (x, y) pixel indices, computed from the fixture geometry."""
    interior = np.array([[float(v) for v in s.strip("()").split(",")] for s in label["interior_margin_2d"]])
    caruncle = np.array([[float(v) for v in s.strip("()").split(",")] for s in label["caruncle_2d"]])
    eye_width = 1.5 * abs(caruncle[:, 0].mean() - interior[8, 0])
    radius = UNITYEYES_EYEBALL_RADIUS_PX_AT_800x600 * width / 800
    offset = radius * np.array([-math.cos(pitch) * math.sin(yaw), -math.sin(pitch)])  # from the lid centre, y down
    return np.array([27.0, 17.0]) + offset * 55 / eye_width  # the crop centre is pixel (27, 17) + 0.5


@pytest.mark.parametrize(
    "pitch, yaw, width, height",
    [
        (0.0, 0.0, 800, 600),
        (0.0, 0.0, 400, 300),
        (0.0, 0.0, 640, 480),
        (0.2, 0.3, 800, 600),
        (-0.25, -0.35, 800, 600),
        (0.15, -0.3, 400, 300),
    ],
)
def test_crop_is_centred_on_the_eye_and_moves_with_the_gaze(tmp_path, pitch, yaw, width, height):
    label = unityeyes_label(pitch, yaw, width, height)
    write_unityeyes_pair(tmp_path, "1", label=label, width=width, height=height)
    (sample,) = unityeyes.read(unityeyes.scan(tmp_path)[0][0])
    assert sample.image.shape == (35, 55) and sample.image.dtype == np.uint8
    assert (sample.metadata["render_width"], sample.metadata["render_height"]) == (width, height)
    rows, cols = np.nonzero(sample.image < (PUPIL + 40))
    assert len(rows) > 10
    centroid = np.array([cols.mean(), rows.mean()])
    expected = _expected_pupil(label, pitch, yaw, width)
    np.testing.assert_allclose(centroid, expected, atol=1.0)
    # signs: yaw > 0 looks toward image-left, pitch > 0 looks up (smaller rows)
    assert np.sign(round(centroid[0] - 27.0)) == -np.sign(yaw)
    assert np.sign(round(centroid[1] - 17.0)) == -np.sign(pitch)
    assert sample.labels["pitch_rad"] == pytest.approx(pitch, abs=2e-4)
    assert sample.labels["yaw_rad"] == pytest.approx(yaw, abs=2e-4)


def test_reduced_decode_matches_full_decode(tmp_path, monkeypatch):
    write_unityeyes_pair(tmp_path, "1", 0.1, 0.2, texture=6.0)
    item = unityeyes.scan(tmp_path)[0][0]
    assert unityeyes._draft_scale(1.5 * 135.7, 55) == 2  # the real sample's eye width at 800×600
    (drafted,) = unityeyes.read(item)
    monkeypatch.setattr(unityeyes, "DRAFT_SCALES", (1,))
    (full,) = unityeyes.read(item)
    difference = np.abs(drafted.image.astype(int) - full.image.astype(int))
    assert difference.mean() < 1.5, difference.mean()  # a one-pixel shift gives ~7


def test_items_and_samples_pickle(tmp_path):
    write_unityeyes_pair(tmp_path, "3")
    items, _ = unityeyes.scan(tmp_path)
    results = unityeyes.read(items[0])
    for thing in (items, results):
        assert pickle.loads(pickle.dumps(thing)) is not None
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(results))[0].image, results[0].image)


def test_every_bad_input_is_quarantined_with_its_reason(tmp_path):
    write_unityeyes_pair(tmp_path, "1")
    jpg, _ = write_unityeyes_pair(tmp_path, "2")
    jpg.unlink()  # 2.json without 2.jpg
    _, js = write_unityeyes_pair(tmp_path, "3")
    js.unlink()  # 3.jpg without 3.json
    jpg, _ = write_unityeyes_pair(tmp_path, "4")
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])  # truncated JPEG
    jpg, _ = write_unityeyes_pair(tmp_path, "5")
    jpg.write_bytes(b"this is not a jpeg" * 20)
    _, js = write_unityeyes_pair(tmp_path, "6")
    js.write_text(js.read_text()[:-40])  # malformed JSON
    label = unityeyes_label(0.0, 0.0)
    del label["eye_details"]["look_vec"]
    write_unityeyes_pair(tmp_path, "7", label=label)
    label = unityeyes_label(0.0, 0.0)
    label["eye_details"]["look_vec"] = "(nan, 0.1000, -0.9000, 0.0000)"
    write_unityeyes_pair(tmp_path, "8", label=label)
    label = unityeyes_label(0.0, 0.0)
    label["eye_details"]["look_vec"] = "(0.3000, 0.2000, -0.4000, 0.0000)"  # norm 0.5385
    write_unityeyes_pair(tmp_path, "9", label=label)
    label = unityeyes_label(0.0, 0.0)
    label["interior_margin_2d"] = label["interior_margin_2d"][:10]
    write_unityeyes_pair(tmp_path, "10", label=label)
    label = real_unityeyes_label()  # landmarks for 800×600 on a 320×240 render: the crop leaves the image
    write_unityeyes_pair(tmp_path, "11", label=label, width=320, height=240)

    samples, quarantined = _read_all(tmp_path)
    assert [s.id for s in samples] == ["1"]
    reasons = {Path(q.source).name: q.reason for q in quarantined}
    assert len(quarantined) == len(reasons) == 10  # one entry per bad pair, 11 stems in
    assert reasons["2.json"] == "2.json has no 2.jpg"
    assert reasons["3.jpg"] == "3.jpg has no 3.json"
    assert reasons["4.jpg"].startswith("cannot decode image") and "truncated" in reasons["4.jpg"]
    assert reasons["5.jpg"].startswith("cannot decode image")
    assert reasons["6.json"].startswith("malformed JSON")
    assert reasons["7.json"] == "missing eye_details.look_vec"
    assert "NaN" in reasons["8.json"]
    assert "norm 0.5385" in reasons["9.json"]
    assert reasons["10.json"] == "interior_margin_2d has 10 points; expected 16"
    assert "leaves the 320×240 image" in reasons["11.jpg"]


def test_a_tighter_crop_magnifies_the_eye_about_its_centre(tmp_path):
    """eye_width_factor f: the corners span 1/f of the width, so going from 1.5 to 1.2 scales the pupil's
    offset from the crop centre, and its dark area, by 1.5 / 1.2 (as MPIIGaze frames its eyes)."""
    write_unityeyes_pair(tmp_path, "1", 0.2, 0.3)

    def pupil(factor: float) -> tuple[np.ndarray, int]:
        (sample,) = unityeyes.read(unityeyes.scan(tmp_path, eye_width_factor=factor)[0][0])
        rows, cols = np.nonzero(sample.image < (PUPIL + 40))
        return np.array([cols.mean() - 27.0, rows.mean() - 17.0]), len(rows)

    (offset_wide, area_wide), (offset_tight, area_tight) = pupil(1.5), pupil(1.2)
    np.testing.assert_allclose(offset_tight, offset_wide * 1.5 / 1.2, atol=0.6)
    assert area_tight / area_wide == pytest.approx((1.5 / 1.2) ** 2, rel=0.2)


def test_equalize_gives_opencvs_equalised_crop(tmp_path):
    write_unityeyes_pair(tmp_path, "1", 0.1, -0.2, texture=6.0)
    (plain,) = unityeyes.read(unityeyes.scan(tmp_path)[0][0])
    (equalised,) = unityeyes.read(unityeyes.scan(tmp_path, equalize=True)[0][0])
    np.testing.assert_array_equal(equalised.image, equalize_histogram(plain.image))
    assert equalised.image.min() == 0 and equalised.image.max() == 255 and plain.image.max() < 255
    assert equalised.labels == plain.labels


def test_equalize_histogram_is_opencvs_formula():
    image = np.array([[10, 10, 20], [20, 20, 30]], dtype=np.uint8)  # cdf 2, 5, 6 over 6 pixels, cdf_min 2
    np.testing.assert_array_equal(equalize_histogram(image), [[0, 0, 191], [191, 191, 255]])
    np.testing.assert_array_equal(equalize_histogram(np.full((2, 2), 7, np.uint8)), np.full((2, 2), 7))


@pytest.mark.parametrize("factor", [0.9, 3.5, "1.2"])
def test_an_eye_width_factor_out_of_range_is_refused(tmp_path, factor):
    write_unityeyes_pair(tmp_path, "1")
    with pytest.raises(ValueError, match="eye_width_factor must be in"):
        unityeyes.scan(tmp_path, eye_width_factor=factor)
