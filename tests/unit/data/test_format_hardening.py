"""Readers under careless input (issue 16): files of a format the folder reader does not take are quarantined
with the reason; UnityEyes landmarks that cannot belong to the image they are paired with are quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gaze_fixtures import unityeyes_label, write_unityeyes_pair
from PIL import Image

from simgan.data.formats import folder, read_all, unityeyes

SIZE = (35, 55)


def _image(path: Path, fmt: str) -> None:
    Image.new("L", (SIZE[1], SIZE[0]), 100).save(path, format=fmt)


@pytest.mark.parametrize("name, fmt", [("2.tif", "TIFF"), ("2.TIFF", "TIFF"), ("2.gif", "GIF"), ("2.webp", "WEBP")])
def test_an_image_of_an_unsupported_format_is_quarantined_not_ignored(tmp_path, name, fmt):
    _image(tmp_path / "1.png", "PNG")
    _image(tmp_path / name, fmt)
    (tmp_path / "notes.txt").write_text("not an image: still ignored")
    (tmp_path / "labels.csv").write_text("id,x\n1,0.5\n2,0.25\n")

    items, quarantined = folder.scan(tmp_path, size=SIZE)

    assert [item.id for item in items] == ["1"]
    assert [Path(q.source).name for q in quarantined] == [name]  # once, as the file; its row is not an orphan
    suffix = Path(name).suffix.lower()
    assert quarantined[0].reason.startswith(f"unsupported image format {suffix}; expected PNG/JPEG/BMP")
    assert not any("no image with that stem" in q.reason for q in quarantined)


def test_unlabelled_and_resized_folders_quarantine_it_too(tmp_path):
    _image(tmp_path / "a.png", "PNG")
    _image(tmp_path / "b.tiff", "TIFF")
    items, quarantined = folder.scan(tmp_path, size=(20, 20), labels=None, resize="bilinear")
    assert [item.id for item in items] == ["a"] and items[0].resize == "bilinear"
    assert len(quarantined) == 1 and "unsupported image format .tiff" in quarantined[0].reason


def test_unityeyes_landmarks_of_a_small_render_on_a_huge_image_are_quarantined(tmp_path):
    """The issue's case: an 8000×6000 JPEG paired with the JSON of a 200×150 render. The crop box fits inside
    the big image (bottom-left corner), so only checking the landmarks against the image size catches it."""
    Image.new("L", (8000, 6000), 128).save(tmp_path / "1.jpg", "JPEG", quality=50)
    (tmp_path / "1.json").write_text(json.dumps(unityeyes_label(0.0, 0.0, 200, 150)))
    write_unityeyes_pair(tmp_path, "2", width=200, height=150)  # a matching pair next to it: kept

    samples, quarantined = read_all(unityeyes, tmp_path)

    assert [s.id for s in samples] == ["2"]
    (bad,) = quarantined
    assert Path(bad.source).name == "1.jpg"
    assert bad.reason.startswith("landmarks do not fit the 8000×6000 image")
    assert "render of another size" in bad.reason


def test_unityeyes_landmarks_of_a_half_size_render_are_quarantined(tmp_path):
    write_unityeyes_pair(tmp_path, "1", width=800, height=600, label=unityeyes_label(0.0, 0.0, 400, 300))
    samples, quarantined = read_all(unityeyes, tmp_path)
    assert samples == [] and "the eye is centred at (200, 450)" in quarantined[0].reason  # image rows, y down


def test_landmark_misfit_names_each_problem():
    xs = np.r_[np.linspace(70, 130, 9), np.linspace(125, 75, 7)]  # interior_margin_2d[8]: the outer corner
    interior = np.column_stack([xs, np.full(16, 75.0)])
    caruncle = np.array([[65.0, 75.0], [66.0, 76.0]])
    assert unityeyes.landmark_misfit(interior, caruncle, 200, 150) is None
    outside = caruncle - [70.0, 0.0]
    assert "caruncle_2d[0] at (-5.0, 75.0) lies outside it" in unityeyes.landmark_misfit(interior, outside, 200, 150)
    tiny = (interior - 100) * 0.05 + 100  # corners 3.2 px apart in a 200 px wide render
    tiny_caruncle = (caruncle - 100) * 0.05 + 100
    assert "eye corners are 1.6% of the width apart" in unityeyes.landmark_misfit(tiny, tiny_caruncle, 200, 150)
