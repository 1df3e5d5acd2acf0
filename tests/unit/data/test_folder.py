"""Plain image folder reader ("bring your own simulator") on fixture folders."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from simgan.data.formats import Quarantined, folder, read_items

SIZE = (35, 55)  # (H, W), the gaze task's prepared size


def write_image(path, value=100, size=SIZE, mode="L", fmt=None):
    """A flat image of `value` (an int, or an (R, G, B) triple for colour modes) at `size` (H, W)."""
    height, width = size
    Image.new(mode, (width, height), value).save(path, format=fmt)


def write_labels(path, text):
    path.write_text(text.strip() + "\n")


def read_all(items):
    return read_items(folder, items)


def test_scan_orders_names_numerically_and_ignores_other_files(tmp_path):
    for name in ["10.png", "2.png", "1.png", "img_10.bmp", "img_2.jpg", "img_1.JPEG", "b.png", "A.png"]:
        write_image(tmp_path / name, fmt={"bmp": "BMP", "jpg": "JPEG", "JPEG": "JPEG"}.get(name.rsplit(".")[1], "PNG"))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    write_image(tmp_path / "sub" / "3.png")

    items, quarantined = folder.scan(tmp_path, size=SIZE)
    assert quarantined == []
    assert [item.id for item in items] == ["1", "2", "10", "A", "b", "img_1", "img_2", "img_10"]
    assert all(item.labels == () and item.size == SIZE for item in items)
    samples, bad = read_all(items)
    assert bad == [] and [s.id for s in samples] == [item.id for item in items]
    assert all(s.labels == {} for s in samples)


def test_read_converts_to_grayscale_at_the_exact_size(tmp_path):
    write_image(tmp_path / "1.png", value=(200, 100, 50), mode="RGB")
    write_image(tmp_path / "2.png", value=(10, 20, 30, 255), mode="RGBA")
    gradient = np.tile(np.arange(55, dtype=np.uint8) * 4, (35, 1))  # (35, 55), varies along W
    Image.fromarray(gradient).save(tmp_path / "3.bmp")
    items, _ = folder.scan(tmp_path, size=SIZE)
    samples, bad = read_all(items)
    assert bad == []
    for sample in samples:
        assert sample.image.shape == SIZE and sample.image.dtype == np.uint8
    # ITU-R 601 luma, as Pillow's convert("L"): (200·299 + 100·587 + 50·114) / 1000 = 124.4
    assert samples[0].image[0, 0] == 124
    assert samples[1].image[0, 0] == round((10 * 299 + 20 * 587 + 30 * 114) / 1000)
    np.testing.assert_array_equal(samples[2].image, gradient)  # rows are H, columns are W: no transpose
    assert samples[2].source == str(tmp_path / "3.bmp")


def test_labels_are_matched_by_id_and_kept_as_floats(tmp_path):
    for name in ["0001.png", "0002.png", "NA.png"]:
        write_image(tmp_path / name)
    write_labels(
        tmp_path / "labels.csv",
        """
id,gaze_x,gaze_y,gaze_z
0002,0.1,-0.2,-0.97
0001,-0.3,0.4,-0.86
NA,0,0,-1
""",
    )
    items, quarantined = folder.scan(tmp_path, size=SIZE)
    samples, bad = read_all(items)
    assert quarantined == [] and bad == []
    assert [s.id for s in samples] == ["0001", "0002", "NA"]  # ids stay text: no 1, no NaN
    assert samples[0].labels == {"gaze_x": -0.3, "gaze_y": 0.4, "gaze_z": -0.86}
    assert samples[1].labels == {"gaze_x": 0.1, "gaze_y": -0.2, "gaze_z": -0.97}
    assert all(type(v) is float for s in samples for v in s.labels.values())
    assert pickle.loads(pickle.dumps(items)) == items
    clone = pickle.loads(pickle.dumps(samples[0]))
    assert clone.labels == samples[0].labels and (clone.image == samples[0].image).all()


def test_every_bad_input_is_quarantined_with_its_reason(tmp_path):
    """10 inputs (9 files + 1 orphan label row): 3 good, 7 quarantined, each counted once."""
    for name in ["1.png", "2.png", "3.jpg"]:
        write_image(tmp_path / name, fmt="JPEG" if name.endswith("jpg") else "PNG")
    write_image(tmp_path / "4.png", size=(36, 55))  # wrong size
    write_image(tmp_path / "5.png")  # no labels row
    write_image(tmp_path / "6.png")  # NaN label
    data = np.random.default_rng(0).integers(0, 256, size=(35, 55), dtype=np.uint8)
    Image.fromarray(data).save(tmp_path / "7.png")
    raw = (tmp_path / "7.png").read_bytes()
    (tmp_path / "7.png").write_bytes(raw[: len(raw) // 2])  # truncated: the header still opens
    Image.fromarray(data).save(tmp_path / "8.jpg")
    raw = (tmp_path / "8.jpg").read_bytes()
    (tmp_path / "8.jpg").write_bytes(raw[: len(raw) // 2])
    Image.fromarray(np.full(SIZE, 1000, np.uint16)).save(tmp_path / "9.png")  # 16-bit
    write_labels(
        tmp_path / "labels.csv",
        """
id,pitch_rad,yaw_rad
1,0.1,0.2
2,0.3,-0.4
3,-0.1,0.0
4,0.0,0.0
6,0.5,nan
7,0,0
8,0,0
9,0,0
12,0.2,0.2
""",
    )
    items, scanned = folder.scan(tmp_path, size=SIZE)
    samples, read_bad = read_all(items)
    quarantined = scanned + read_bad
    assert [s.id for s in samples] == ["1", "2", "3"]
    assert len(scanned) == 3 and len(read_bad) == 4
    assert len(samples) + len(quarantined) == 10

    reasons = {q.source.rsplit("/", 1)[1]: q.reason for q in quarantined}
    assert "size 36x55, expected 35x55" in reasons["4.png"]
    assert "no row in labels.csv" in reasons["5.png"]
    assert "yaw_rad" in reasons["6.png"] and "NaN" in reasons["6.png"]
    assert "cannot decode" in reasons["7.png"] and "truncated" in reasons["7.png"]
    assert "cannot decode" in reasons["8.jpg"]
    assert "mode 'I;16'" in reasons["9.png"]
    assert "labels.csv#12" in reasons and "'12'" in reasons["labels.csv#12"] and "no image" in reasons["labels.csv#12"]
    assert all(pickle.loads(pickle.dumps(q)) == q for q in quarantined)


def test_wrong_size_is_not_resized(tmp_path):
    write_image(tmp_path / "big.png", size=(70, 110))
    (result,) = folder.read(folder.scan(tmp_path, size=SIZE)[0][0])
    assert isinstance(result, Quarantined) and result.reason.startswith("size 70x110, expected 35x55")


def test_two_files_with_one_stem_are_both_quarantined(tmp_path):
    write_image(tmp_path / "1.png")
    write_image(tmp_path / "1.jpg", fmt="JPEG")
    write_image(tmp_path / "2.png")
    items, quarantined = folder.scan(tmp_path, size=SIZE)
    assert [item.id for item in items] == ["2"]
    assert len(quarantined) == 2 and all("shared by" in q.reason for q in quarantined)


def test_bad_label_files_are_errors(tmp_path):
    write_image(tmp_path / "1.png")
    write_labels(tmp_path / "labels.csv", "id,x\n1,0.5\n2,0.1\n1,0.7\n2,0.2\n")
    with pytest.raises(ValueError, match=r"labels\.csv: duplicate ids \['1', '2'\]"):
        folder.scan(tmp_path, size=SIZE)
    write_labels(tmp_path / "labels.csv", "name,x\n1,0.5\n")
    with pytest.raises(ValueError, match=r"labels\.csv: no 'id' column; found columns \['name', 'x'\]"):
        folder.scan(tmp_path, size=SIZE)
    write_labels(tmp_path / "labels.csv", "id,x,split\n1,0.5,train\n")
    with pytest.raises(ValueError, match=r"column 'split' holds no numbers"):
        folder.scan(tmp_path, size=SIZE)
    with pytest.raises(FileNotFoundError, match="other.csv"):
        folder.scan(tmp_path, size=SIZE, labels="other.csv")
    items, _ = folder.scan(tmp_path, size=SIZE, labels=None)  # labels=None ignores labels.csv
    assert items[0].labels == ()
    with pytest.raises(FileNotFoundError, match="not a folder"):
        folder.scan(tmp_path / "missing", size=SIZE)
