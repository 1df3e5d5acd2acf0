"""Border lines: a refiner that draws a frame is caught; real-looking texture and shading are not."""

from __future__ import annotations

import numpy as np
import pytest

from simgan.evaluation.artifacts import border_lines, has_frame


def eyes(count: int = 200, seed: int = 0) -> np.ndarray:
    """Shaded, textured eye-like images: a dark blob, a vertical light gradient, noise and random skin texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:35, 0:55]
    images = []
    for _ in range(count):
        cy, cx = rng.uniform(12, 22), rng.uniform(20, 35)
        image = 90 + 2.0 * y + rng.uniform(-20, 20)  # light from below, per-image exposure
        image -= 70 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 18)
        image += rng.normal(0, 10, image.shape)
        images.append(np.clip(image, 0, 255))
    return np.stack(images).astype(np.uint8)


def draw_frame(images: np.ndarray, level: int, inset: int = 0) -> np.ndarray:
    """What a zero-padded refiner learns to do: a bright line along the top and bottom, a dark one left."""
    framed = images.astype(np.int16)
    framed[:, inset, :] += level
    framed[:, -1 - inset, :] += level
    framed[:, :, inset] -= level
    return np.clip(framed, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("inset", [0, 1])
def test_a_refiner_that_draws_a_frame_is_caught(inset):
    synthetic = eyes()
    real = eyes(seed=1)
    refined = draw_frame(synthetic, 20, inset)
    scores = {
        name: border_lines(images) for name, images in (("synthetic", synthetic), ("refined", refined), ("real", real))
    }
    assert has_frame(**scores), {name: s["score"] for name, s in scores.items()}


def test_texture_shading_and_an_unchanged_refiner_are_not_a_frame():
    synthetic, real = eyes(), eyes(seed=1)
    noisier = np.clip(synthetic + np.random.default_rng(2).normal(0, 15, synthetic.shape), 0, 255).astype(np.uint8)
    for refined in (synthetic, noisier):
        scores = {
            name: border_lines(images)
            for name, images in (("synthetic", synthetic), ("refined", refined), ("real", real))
        }
        assert not has_frame(**scores)
        assert scores["refined"]["score"] < 3


def test_lines_in_some_images_only_or_broken_along_the_row_are_not_a_line():
    """Signed averaging: a bright top row in half the images and a dark one in the other half cancel, as
    texture does; only a line in every image along its whole length stands out."""
    synthetic = eyes()
    flipped = synthetic.astype(np.int16)
    flipped[::2, 0, :] += 25
    flipped[1::2, 0, :] -= 25
    assert border_lines(np.clip(flipped, 0, 255).astype(np.uint8))["score"] < 3


def test_too_small_images_are_refused():
    with pytest.raises(ValueError, match="at least 7 px"):
        border_lines(np.zeros((3, 5, 40), np.uint8))
