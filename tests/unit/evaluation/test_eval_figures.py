"""Figures drawn with Pillow: ticks, a line chart with reference points, a labelled image grid."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from simgan.evaluation.figures import PALETTE, image_grid_png, line_chart_png, nice_ticks
from simgan.evaluation.gaze import gaze_curve


def test_nice_ticks():
    np.testing.assert_allclose(nice_ticks(0, 25), [0, 5, 10, 15, 20, 25])
    np.testing.assert_allclose(nice_ticks(0, 100), [0, 20, 40, 60, 80, 100])
    np.testing.assert_allclose(nice_ticks(0.3, 0.9, target=3), [0.2, 0.4, 0.6, 0.8, 1.0])
    assert len(nice_ticks(5, 5)) >= 2  # a flat range still gets an axis


def _has_colour(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 30) -> bool:
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    return bool((np.abs(pixels - colour).max(axis=1) <= tolerance).any())


def test_line_chart_draws_curves_and_reference_points(tmp_path):
    rng = np.random.default_rng(0)
    curves = {"synthetic": gaze_curve(rng.gamma(3, 3.5, 300)), "refined": (np.arange(26), np.linspace(0, 100, 26))}
    reference = {"refined (paper)": ([7.0], [69.4]), "other paper curve": ([0, 10, 20], [0, 60, 90])}
    path = line_chart_png(
        curves,
        tmp_path / "curve.png",
        x_label="threshold (degrees)",
        y_label="% of images",
        title="Fig. 7",
        reference=reference,
        size_px=(800, 500),
    )
    image = Image.open(path)
    assert image.size == (800, 500) and image.format == "PNG"
    for colour in PALETTE[:3]:  # two curves and one reference of its own colour
        assert _has_colour(image, colour)
    assert not _has_colour(image, PALETTE[3])  # "refined (paper)" reuses refined's colour
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png"]  # atomic: no temporary file left


def test_line_chart_rejects_nothing_to_draw(tmp_path):
    with pytest.raises(ValueError, match="nothing to draw"):
        line_chart_png({}, tmp_path / "x.png", x_label="x", y_label="y", title="t")


def test_image_grid_has_one_labelled_row_per_set(tmp_path):
    rng = np.random.default_rng(0)
    rows = {
        "synthetic": rng.integers(0, 256, (10, 35, 55), dtype=np.uint8),
        "refined": rng.integers(0, 256, (10, 35, 55), dtype=np.uint8),
        "real": np.full((3, 35, 55), 255, np.uint8),
    }
    image = Image.open(image_grid_png(rows, tmp_path / "grid.png", n=4, scale=2))
    gap = 4
    assert image.height == 3 * (70 + gap) + gap
    assert image.width > 4 * (110 + gap)
    # the first synthetic tile sits at the right of the label column, enlarged 2× with nearest neighbour
    pixels = np.asarray(image.convert("L"))
    left = image.width - gap - 4 * (110 + gap) + gap
    tile = pixels[gap : gap + 70, left : left + 110]
    np.testing.assert_array_equal(tile, np.kron(rows["synthetic"][0], np.ones((2, 2), np.uint8)))
