"""NYU hand reader on fixtures written in the published format (DATA_FORMATS.md §4, §5)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import scipy.io
from nyu_fixtures import (
    CLUTTER_DV_PX,
    CLUTTER_MM,
    MARKER_OFFSET_MM,
    PALM,
    REAL_OFFSET_MM,
    hand_uvd,
    kinect_views,
    make_nyu_folder,
    render_real,
    render_synthdepth,
    write_depth_png,
    write_frame,
    write_joint_data,
)
from PIL import Image

from simgan.data.formats import Quarantined, nyu, read_items
from simgan.data.geometry import NYU_EVAL_JOINTS, NYU_FX, NYU_FY

PALM_UVD = (300.0, 220.0, 800.0)
# DeepPrior comToBounds for PALM_UVD, by hand: ±150 mm at 800 mm = ±110.26 px (fx), ±110.08 px (fy).
BOUNDS_800 = (190, 410, 110, 330)  # u0, u1, v0, v1


def read_all(items):
    return read_items(nyu, items)


def encode(depth_mm, z0=650.0, cube=300.0):
    """The documented mapping, written out: near face 255, back face 1."""
    return int(round(255 - 254 * (depth_mm - z0) / cube))


# ----------------------------------------------------------------------------------------- depth PNG


def test_depth_png_decodes_high_byte_from_green_low_byte_from_blue(tmp_path):
    values = np.array([0, 1, 255, 256, 257, 1234, 4095, 32001, 65535], dtype=np.uint16)
    depth = np.zeros((480, 640), np.uint16)
    depth[7, :9] = values
    write_depth_png(tmp_path / "d.png", depth)

    rgb = np.asarray(Image.open(tmp_path / "d.png"))
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[7, 5]) == (0, 4, 210)  # 1234 = 4·256 + 210

    decoded = nyu.decode_depth_png(tmp_path / "d.png")
    assert decoded.dtype == np.uint16 and decoded.shape == (480, 640)
    np.testing.assert_array_equal(decoded[7, :9], values)  # no uint8 overflow at ≥ 256 mm
    assert decoded.sum(dtype=np.int64) == values.sum(dtype=np.int64)


def test_encode_depth_png_is_the_inverse(tmp_path):
    depth = np.random.default_rng(0).integers(0, 65536, size=(480, 640)).astype(np.uint16)
    nyu.encode_depth_png(tmp_path / "d.png", depth)
    np.testing.assert_array_equal(nyu.decode_depth_png(tmp_path / "d.png"), depth)


def test_depth_to_uint8_mapping_and_inverse():
    z0, z1 = 650.0, 950.0
    depth = np.array([0, 500, 650, 800, 950, 951, 2000, 32001], dtype=np.float32)
    np.testing.assert_array_equal(nyu.depth_to_uint8(depth, z0, z1), [0, 255, 255, 128, 1, 0, 0, 0])
    ramp = np.arange(650, 951, dtype=np.float32)
    encoded = nyu.depth_to_uint8(ramp, z0, z1)
    assert np.all(np.diff(encoded.astype(int)) <= 0)  # near bright, monotone
    back = nyu.uint8_to_depth(encoded, z0, z1)
    assert np.abs(back - ramp).max() <= 300 / 254 / 2 + 1e-3
    assert nyu.uint8_to_depth(np.array([0], np.uint8), z0, z1)[0] == 0


# ----------------------------------------------------------------------------------------- geometry


def test_crop_bounds_follow_deepprior():
    bounds = nyu.crop_bounds(np.array(PALM_UVD), 300.0)
    assert (bounds.u0, bounds.u1, bounds.v0, bounds.v1) == BOUNDS_800
    assert (bounds.z0, bounds.z1) == (650.0, 950.0)
    u, v, d = 123.4, 345.6, 1100.0
    b = nyu.crop_bounds(np.array([u, v, d]), 250.0)
    assert b.u0 == math.floor(u - 125 * NYU_FX / d + 0.5) and b.u1 == math.floor(u + 125 * NYU_FX / d + 0.5)
    assert b.v0 == math.floor(v - 125 * NYU_FY / d + 0.5) and b.v1 == math.floor(v + 125 * NYU_FY / d + 0.5)


def test_uvd_to_crop_maps_pixel_centres():
    bounds = nyu.CropBounds(100, 200, 50, 150, 0.0, 1.0)
    uvd = np.array([[100.0, 50.0, 700.0], [199.0, 149.0, 710.0], [149.5, 99.5, 720.0], [250.0, 0.0, 5.0]])
    crop = nyu.uvd_to_crop(uvd, bounds, 50)
    np.testing.assert_allclose(
        crop, [[-0.25, -0.25, 700.0], [49.25, 49.25, 710.0], [24.5, 24.5, 720.0], [74.75, -25.25, 5.0]]
    )
    assert nyu.uvd_to_crop(uvd[None], bounds, 50).shape == (1, 4, 3)


def test_crop_resize_matches_pillow_nearest_and_zero_pads():
    image = np.random.default_rng(1).integers(0, 256, size=(480, 640)).astype(np.uint8)
    for box, size in [((190, 110, 410, 330), 64), ((190, 110, 410, 330), 224), ((3, 5, 600, 470), 96)]:
        bounds = nyu.CropBounds(box[0], box[2], box[1], box[3], 0.0, 1.0)
        expected = np.asarray(Image.fromarray(image).resize((size, size), Image.NEAREST, box=box))
        np.testing.assert_array_equal(nyu.crop_resize(image, bounds, size), expected)

    flat = np.full((480, 640), 800, np.uint16)
    out = nyu.crop_resize(flat, nyu.CropBounds(-70, 150, 110, 330, 0.0, 1.0), 64)  # 70 px left of the image
    assert out.shape == (64, 64) and out.dtype == np.uint16
    assert (out[:, :20] == 0).all() and (out[:, 20:] == 800).all()  # (i + 0.5)·220/64 < 70  ⇔  i ≤ 19


# ----------------------------------------------------------------------------------------- scan


def test_scan_one_item_per_frame_with_its_own_joints(tmp_path):
    uvd = np.stack([hand_uvd((300.0 + 10 * i, 220.0, 800.0 + 20 * i)) for i in range(3)])
    write_joint_data(tmp_path, kinect_views(uvd))
    for kinect in (1, 2):
        for frame in (1, 2, 3):
            for kind in ("depth", "synthdepth"):
                (tmp_path / f"{kind}_{kinect}_{frame:07d}.png").touch()  # scan does not open PNGs
    (tmp_path / "rgb_1_0000001.png").touch()

    items, quarantined = nyu.scan(tmp_path, kind="depth", kinect=1, size=64)
    assert quarantined == []
    assert [item.id for item in items] == ["depth_1_0000001", "depth_1_0000002", "depth_1_0000003"]
    assert [item.frame for item in items] == [1, 2, 3]
    for index, item in enumerate(items):
        np.testing.assert_array_equal(item.uvd, uvd[index])
        assert item.path == str(tmp_path / f"depth_1_{index + 1:07d}.png")
        assert item.mask_path == str(tmp_path / f"synthdepth_1_{index + 1:07d}.png")
        assert item.size == 64 and item.cube_mm == 300.0
        assert pickle.loads(pickle.dumps(item)) == item
        assert len(pickle.dumps(item)) < 1500  # small: workers get the frame, not the .mat

    synth, _ = nyu.scan(tmp_path, kind="synthdepth", kinect=2)
    assert [item.id for item in synth] == ["synthdepth_2_0000001", "synthdepth_2_0000002", "synthdepth_2_0000003"]
    assert synth[0].mask_path is None
    np.testing.assert_allclose(synth[1].uvd, uvd[1] + [5.0, 0.0, 0.0])  # Kinect 2's row, not Kinect 1's


@pytest.mark.parametrize("squeeze", [False, True])
def test_scan_single_frame_joint_data(tmp_path, squeeze):
    uvd = hand_uvd(PALM_UVD)[None]  # N = 1
    write_joint_data(tmp_path, kinect_views(uvd), squeeze=squeeze)
    raw = scipy.io.loadmat(tmp_path / "joint_data.mat")
    assert raw["joint_uvd"].shape == ((3, 36, 3) if squeeze else (3, 1, 36, 3))
    assert raw["joint_names"].shape == (1, 36)
    write_frame(tmp_path, 1, 1, uvd[0])
    write_frame(tmp_path, 3, 1, kinect_views(uvd)[2, 0])

    items, quarantined = nyu.scan(tmp_path, kind="synthdepth", kinect=1, size=64)
    assert quarantined == [] and len(items) == 1
    np.testing.assert_array_equal(items[0].uvd, uvd[0])
    items3, _ = nyu.scan(tmp_path, kind="synthdepth", kinect=3, size=64)
    np.testing.assert_allclose(items3[0].uvd, uvd[0] + [0.0, 5.0, 0.0])
    samples, bad = read_all(items + items3)
    assert len(samples) == 2 and bad == []


def test_missing_or_unreadable_joint_data_is_an_error(tmp_path):
    write_frame(tmp_path, 1, 1, hand_uvd())
    with pytest.raises(FileNotFoundError, match="joint_data.mat"):
        nyu.scan(tmp_path)
    (tmp_path / "joint_data.mat").write_bytes(b"this is not a MAT file" * 20)
    with pytest.raises(ValueError, match=r"joint_data\.mat.*cannot read"):
        nyu.scan(tmp_path)
    scipy.io.savemat(tmp_path / "joint_data.mat", {"joint_xyz": np.zeros((3, 1, 36, 3))})
    with pytest.raises(ValueError, match=r"no variable joint_uvd; found \['joint_xyz'\]"):
        nyu.scan(tmp_path)
    scipy.io.savemat(tmp_path / "joint_data.mat", {"joint_uvd": np.zeros((3, 2, 14, 3))})
    with pytest.raises(ValueError, match=r"shape \(3, 2, 14, 3\).*3×N×36×3"):
        nyu.scan(tmp_path)


def test_scan_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        nyu.scan(tmp_path, kind="rgb")
    with pytest.raises(ValueError, match="kinect"):
        nyu.scan(tmp_path, kinect=4)


# ----------------------------------------------------------------------------------------- read


def test_read_shapes_labels_and_metadata(tmp_path):
    uvd = make_nyu_folder(tmp_path, [PALM_UVD, (350.0, 260.0, 1000.0)])
    items, quarantined = nyu.scan(tmp_path, kind="depth", size=64)
    samples, bad = read_all(items)
    assert quarantined == [] and bad == [] and len(samples) == 2

    sample = samples[0]
    assert sample.id == "depth_1_0000001" and sample.source == str(tmp_path / "depth_1_0000001.png")
    assert sample.image.shape == (64, 64) and sample.image.dtype == np.uint8
    assert list(sample.labels) == [f"joint_{j:02d}_{c}" for j in range(14) for c in "uvd"]
    assert all(type(v) is float for v in sample.labels.values())
    meta = sample.metadata
    assert meta["kinect"] == 1 and meta["frame"] == 1 and meta["kind"] == "depth"
    assert (meta["com_u"], meta["com_v"], meta["com_z"]) == PALM_UVD
    assert (meta["crop_u0"], meta["crop_u1"], meta["crop_v0"], meta["crop_v1"]) == BOUNDS_800
    assert (meta["crop_z0"], meta["crop_z1"]) == (650.0, 950.0)
    # d labels are the joints' own depths in mm
    np.testing.assert_allclose([sample.labels[f"joint_{j:02d}_d"] for j in range(14)], uvd[0, list(NYU_EVAL_JOINTS), 2])

    clone = pickle.loads(pickle.dumps(sample))
    assert clone.id == sample.id and clone.labels == sample.labels and clone.metadata == sample.metadata
    np.testing.assert_array_equal(clone.image, sample.image)


def test_palm_lands_at_crop_centre_and_joints_follow_the_crop(tmp_path):
    uvd = make_nyu_folder(tmp_path, [PALM_UVD])[0]
    items, _ = nyu.scan(tmp_path, kind="synthdepth", size=224)
    (sample,) = nyu.read(items[0])
    image = sample.image
    assert image.shape == (224, 224)

    # PALM_3 is eval joint 13; its label is the crop centre (to the 1/2 px of an even-sized box)
    assert abs(sample.labels["joint_13_u"] - 111.5) < 0.6 and abs(sample.labels["joint_13_v"] - 111.5) < 0.6
    # the single marker pixel at PALM_3 appears exactly once, on the centre pixel
    marker = encode(PALM_UVD[2] + MARKER_OFFSET_MM)
    assert marker != encode(PALM_UVD[2])
    assert np.argwhere(image == marker).tolist() == [[112, 112]]
    assert round(sample.labels["joint_13_u"]) == 112 and round(sample.labels["joint_13_v"]) == 112

    u0, u1, v0, v1 = BOUNDS_800
    for j, joint in enumerate(NYU_EVAL_JOINTS):
        u, v, d = uvd[joint]
        expected_u = (u - u0 + 0.5) * 224 / (u1 - u0) - 0.5
        expected_v = (v - v0 + 0.5) * 224 / (v1 - v0) - 0.5
        assert sample.labels[f"joint_{j:02d}_u"] == pytest.approx(expected_u, abs=1e-9)
        assert sample.labels[f"joint_{j:02d}_v"] == pytest.approx(expected_v, abs=1e-9)
        assert sample.labels[f"joint_{j:02d}_d"] == pytest.approx(d)
        if joint != PALM:  # each joint's disc shows its own depth under its label
            assert image[round(expected_v), round(expected_u)] == encode(round(d))
    # signs: fingers are above the palm (xyz y up -> smaller v); the grid's x grows to the right (larger u)
    assert all(sample.labels[f"joint_{j:02d}_v"] < sample.labels["joint_13_v"] for j in range(13))
    assert sample.labels["joint_01_u"] > sample.labels["joint_00_u"]  # joint 3 is 90 mm right of joint 0


def test_real_depth_is_masked_by_synthdepth(tmp_path):
    make_nyu_folder(tmp_path, [PALM_UVD])
    (real,) = nyu.read(nyu.scan(tmp_path, kind="depth", size=96)[0][0])
    (synth,) = nyu.read(nyu.scan(tmp_path, kind="synthdepth", size=96)[0][0])
    assert real.metadata["mask"] == str(tmp_path / "synthdepth_1_0000001.png")

    # same silhouette: only pixels of the hand survive (wall and clutter are gone)
    np.testing.assert_array_equal(real.image > 0, synth.image > 0)
    # but the values are the real ones (10 mm farther than the render)
    bounds = nyu.crop_bounds(np.array(PALM_UVD), 300.0)
    centre = nyu.uvd_to_crop(np.array([[300.0, 220.0 + 12, 800.0]]), bounds, 96)[0]  # inside the palm disc
    r, c = round(centre[1]), round(centre[0])
    assert synth.image[r, c] == encode(800) == 128
    assert real.image[r, c] == encode(800 + REAL_OFFSET_MM) == 120

    # the clutter is in the unmasked real depth, inside the cube, and absent after masking
    clutter = nyu.uvd_to_crop(np.array([[300.0, 220.0 + CLUTTER_DV_PX, 0.0]]), bounds, 96)[0]
    r, c = round(clutter[1]), round(clutter[0])
    unmasked = nyu.crop_resize(nyu.decode_depth_png(tmp_path / "depth_1_0000001.png"), bounds, 96)
    assert unmasked[r, c] == CLUTTER_MM and nyu.depth_to_uint8(unmasked, 650, 950)[r, c] > 0
    assert real.image[r, c] == 0


def test_palm_near_the_border_is_zero_padded(tmp_path):
    make_nyu_folder(tmp_path, [(20.0, 460.0, 800.0)])
    (sample,) = nyu.read(nyu.scan(tmp_path, kind="synthdepth", size=64)[0][0])
    assert sample.metadata["crop_u0"] < 0 and sample.metadata["crop_v1"] > 480
    assert sample.image.shape == (64, 64)
    assert (sample.image[:, :10] == 0).all() and (sample.image[-10:, :] == 0).all()
    assert sample.image[32, 32] > 0


# ----------------------------------------------------------------------------------------- corruption


def test_every_bad_input_is_quarantined_with_its_reason(tmp_path):
    """11 inputs for kind="depth": 1 good frame, 10 bad ones, each counted once."""
    palms = [(300.0 + 5 * i, 220.0, 800.0) for i in range(10)]
    uvd = make_nyu_folder(tmp_path, palms)  # frames 1..10, both kinds
    # frame 2: real PNG missing; frame 3: synthdepth missing
    (tmp_path / "depth_1_0000002.png").unlink()
    (tmp_path / "synthdepth_1_0000003.png").unlink()
    # frame 4: truncated real PNG
    data = (tmp_path / "depth_1_0000004.png").read_bytes()
    (tmp_path / "depth_1_0000004.png").write_bytes(data[: len(data) // 2])
    # frame 5: 8-bit grayscale; frame 6: 16-bit grayscale (a common depth format, but not NYU's)
    Image.fromarray(np.full((480, 640), 80, np.uint8)).save(tmp_path / "depth_1_0000005.png")
    Image.fromarray(np.full((480, 640), 800, np.uint16)).save(tmp_path / "depth_1_0000006.png")
    assert Image.open(tmp_path / "depth_1_0000006.png").mode == "I;16"
    # frame 7: right encoding, wrong size
    write_depth_png(tmp_path / "depth_1_0000007.png", np.full((240, 320), 800, np.uint16))
    # frame 8: NaN joints; frame 9: every joint outside the image
    uvd[7, 5, 0] = np.nan
    uvd[8, :, 0] += 2000.0
    write_joint_data(tmp_path, kinect_views(uvd))
    # frame 10: the synthdepth mask is corrupt
    (tmp_path / "synthdepth_1_0000010.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    # frame 11: PNGs without a joint row; a PNG of another Kinect is not this scan's business
    write_frame(tmp_path, 1, 11, hand_uvd())
    write_frame(tmp_path, 2, 1, hand_uvd())

    items, scanned = nyu.scan(tmp_path, kind="depth", size=64)
    samples, read_bad = read_all(items)
    assert len(items) == 8 and len(scanned) == 3
    assert [s.id for s in samples] == ["depth_1_0000001"]
    quarantined = scanned + read_bad
    assert len(samples) + len(quarantined) == 11

    def reason(name):
        (match,) = [q.reason for q in quarantined if q.source == str(tmp_path / name)]
        return match

    assert "missing" in reason("depth_1_0000002.png") and "depth_1_0000002.png" in reason("depth_1_0000002.png")
    assert "synthdepth_1_0000003.png" in reason("depth_1_0000003.png")
    assert "cannot decode" in reason("depth_1_0000004.png") and "truncated" in reason("depth_1_0000004.png")
    assert "mode 'L'" in reason("depth_1_0000005.png") and "G·256 + B" in reason("depth_1_0000005.png")
    assert "mode 'I;16'" in reason("depth_1_0000006.png") and "8-bit RGB" in reason("depth_1_0000006.png")
    assert "size 320×240" in reason("depth_1_0000007.png") and "640×480" in reason("depth_1_0000007.png")
    assert "not finite" in reason("depth_1_0000008.png") and "[5]" in reason("depth_1_0000008.png")
    assert "outside the 640×480 image" in reason("depth_1_0000009.png")
    assert "synthdepth mask of depth_1_0000010.png" in reason("synthdepth_1_0000010.png")
    assert "no row in joint_data.mat" in reason("depth_1_0000011.png")
    assert all(pickle.loads(pickle.dumps(q)) == q for q in quarantined)

    # the same folder read as synthdepth: only its own files matter
    items, scanned = nyu.scan(tmp_path, kind="synthdepth", size=64)
    samples, read_bad = read_all(items)
    assert [s.id for s in samples] == [f"synthdepth_1_{f:07d}" for f in (1, 2, 4, 5, 6, 7)]
    assert sorted(q.source.rsplit("/", 1)[1] for q in scanned + read_bad) == [
        f"synthdepth_1_{f:07d}.png" for f in (3, 8, 9, 10, 11)
    ]


def test_joints_that_miss_the_hand_leave_an_empty_crop(tmp_path):
    uvd = hand_uvd(PALM_UVD)
    write_frame(tmp_path, 1, 1, uvd)
    uvd[:, 2] -= 300.0  # the row says 500 mm; the hand is at 800 mm, behind the cube
    write_joint_data(tmp_path, kinect_views(uvd[None]))
    (result,) = nyu.read(nyu.scan(tmp_path, kind="synthdepth", size=64)[0][0])
    assert isinstance(result, Quarantined) and "no depth pixel within the 300 mm cube" in result.reason


def test_rendered_fixture_is_what_the_spec_describes():
    """Guards the fixture itself: real = synth + 10 on the hand, wall elsewhere, clutter at 850 mm."""
    uvd = hand_uvd(PALM_UVD)
    synth = render_synthdepth(uvd)
    real = render_real(synth, uvd)
    assert synth[220, 300] == 800 + MARKER_OFFSET_MM and synth[225, 300] == 800
    hand = synth > 0
    np.testing.assert_array_equal(real[hand], synth[hand] + REAL_OFFSET_MM)
    assert real[220 + CLUTTER_DV_PX, 300] == CLUTTER_MM and synth[220 + CLUTTER_DV_PX, 300] == 0
    assert real[0, 0] == 2000
