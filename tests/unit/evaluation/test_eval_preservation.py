"""Annotation preservation: the pupil locator on simulator eyes with known centres, pupil shift, hand shifts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simgan.data.formats import Sample, unityeyes
from simgan.data.simulators import eyes
from simgan.evaluation.preservation import hand_preservation, pupil_centres, pupil_shift

N_EYES = 80


def _landmarks(values: list[str], height: int) -> np.ndarray:
    """UnityEyes '(x, y, z)' strings, y up -> (n, 2) x, y down in continuous pixels of the render."""
    xy = np.stack([unityeyes.parse_tuple(value)[:2] for value in values])
    return np.column_stack([xy[:, 0], height - xy[:, 1]])


def _eyes_with_known_pupils(folder: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Simulator eyes through the real path (UnityEyes jpg + json -> the reader's crop), and the truth: the
    centre of the json's iris_2d ring (the pupil is concentric) mapped into the crop, (x, y) pixel-centre
    coordinates like the locator's."""
    if not any(folder.glob("*.jpg")):
        eyes.write_synthetic(folder, seed=3, indices=range(1, N_EYES + 1))
    items, _ = unityeyes.scan(folder, size=size)
    images, centres = [], []
    for item in items:
        (sample,) = unityeyes.read(item)
        assert isinstance(sample, Sample)
        label = json.loads(Path(item.label).read_text())
        height = sample.metadata["render_height"]
        interior, caruncle, iris_ring = (
            _landmarks(label[key], height) for key in ("interior_margin_2d", "caruncle_2d", "iris_2d")
        )
        left, top, right, bottom = unityeyes.crop_box(interior, caruncle, size)
        iris = iris_ring.mean(axis=0)
        centres.append(
            [(iris[0] - left) * size[1] / (right - left) - 0.5, (iris[1] - top) * size[0] / (bottom - top) - 0.5]
        )
        images.append(sample.image)
    return np.stack(images), np.array(centres)


@pytest.fixture(scope="module")
def eye_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("unityeyes")


@pytest.fixture(scope="module")
def known_eyes(eye_folder) -> tuple[np.ndarray, np.ndarray]:
    return _eyes_with_known_pupils(eye_folder, (35, 55))


def test_pupil_locator_finds_simulator_pupils_within_a_fraction_of_a_pixel(known_eyes):
    images, truth = known_eyes
    error = np.linalg.norm(pupil_centres(images) - truth, axis=1)
    assert error.mean() < 0.5, f"mean error {error.mean():.2f} px at 35×55"  # measured ~0.2 px
    assert np.percentile(error, 95) < 1.0 and error.max() < 2.0


def test_pupil_locator_scales_with_the_image(eye_folder):
    images, truth = _eyes_with_known_pupils(eye_folder, (70, 110))
    error = np.linalg.norm(pupil_centres(images) - truth, axis=1) * 55 / 110
    assert error.mean() < 0.5, f"mean error {error.mean():.2f} px at eye width 55"


def test_pupil_locator_ignores_gain_and_offset(known_eyes):
    images, _ = known_eyes
    darker = np.clip(np.rint(images * 0.6 + 60), 0, 255).astype(np.uint8)
    moved = np.linalg.norm(pupil_centres(darker) - pupil_centres(images), axis=1)
    assert moved.max() < 0.3  # uint8 rounding only


def test_pupil_shift_is_zero_for_identical_images(known_eyes):
    images, _ = known_eyes
    result = pupil_shift(images, images.copy())
    assert result["mean_px"] == 0.0 and result["std_px"] == 0.0 and result["n_images"] == len(images)


@pytest.mark.parametrize("size, shift_px", [((35, 55), 2), ((70, 110), 4)])
def test_pupil_shift_of_a_translated_copy_is_k_times_55_over_width(eye_folder, size, shift_px):
    images, _ = _eyes_with_known_pupils(eye_folder, size)
    width = size[1]
    moved = np.pad(images, ((0, 0), (0, 0), (shift_px, 0)), mode="edge")[:, :, :width]  # content moves right
    result = pupil_shift(images, moved)
    assert result["mean_px"] == pytest.approx(shift_px * 55 / width, abs=0.02)
    assert result["std_px"] < 0.02


def test_pupil_shift_needs_paired_images(known_eyes):
    images, _ = known_eyes
    with pytest.raises(ValueError, match="paired"):
        pupil_shift(images, images[:-1])


def test_hand_preservation_by_hand():
    synthetic = np.zeros((2, 8, 8), np.uint8)
    synthetic[:, 2:6, 2:6] = 200  # a square hand, silhouette centroid (3.5, 3.5)
    refined = synthetic.copy()
    refined[0, 2:6, 2:6] = 210  # image 0: 10 grey levels nearer, same silhouette
    refined[1] = 0
    refined[1, 2:6, 4:8] = 200  # image 1: the hand moved 2 px right
    # (x, y): two joints on the hand per image, one on the background (left out)
    joints = np.array([[[3, 3], [4.4, 4.2], [0, 0]], [[4, 3], [2, 3], [7, 0]]], dtype=np.float64)
    result = hand_preservation(synthetic, refined, joints, depth_range_mm=300)
    grey = np.array([10, 10, 0, 200])  # image 1: (4, 3) still on the hand; (2, 3) now background
    assert result["joint_depth_grey_mean"] == pytest.approx(grey.mean())
    assert result["joint_depth_grey_std"] == pytest.approx(grey.std())
    assert result["joint_depth_mm_mean"] == pytest.approx(grey.mean() * 300 / 254)
    assert result["silhouette_shift_px_mean"] == pytest.approx(1.0)
    assert result["silhouette_shift_px_std"] == pytest.approx(1.0)
    assert (result["n_images"], result["n_joints_on_hand"], result["n_images_empty"]) == (2, 4, 0)
    json.dumps(result)


def test_hand_preservation_of_identical_maps_is_zero_and_empty_images_are_counted():
    synthetic = np.zeros((3, 16, 16), np.uint8)
    synthetic[:2, 4:12, 5:9] = 180
    joints = np.full((3, 14, 2), 6.0)
    result = hand_preservation(synthetic, synthetic.copy(), joints)
    assert result["joint_depth_grey_mean"] == 0.0 and result["silhouette_shift_px_mean"] == 0.0
    assert result["n_images_empty"] == 1 and result["n_joints_on_hand"] == 28
