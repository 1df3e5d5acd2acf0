"""The embedded simulators write the published formats, consistently with their own models, deterministically.

These tests read the files with scipy / Pillow / json directly (not with simgan.data.formats), so that a
reader bug and a writer bug cannot cancel out.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy import ndimage

from simgan.data import geometry
from simgan.data.simulators import PROFILES, eyes, hands, simulate

SEED = 0
# The real UnityEyes label file (shared/reference/samples/unityeyes_1.json), compacted.
REAL_SAMPLE = json.loads(
    '{"interior_margin_2d":["(371.4855, 296.4230, 8.8595)","(364.8002, 307.1421, 8.8963)","(377.6998, '
    '328.0000, 8.8956)","(405.9977, 352.2230, 8.9568)","(441.1661, 357.7870, 9.1683)","(467.5667, '
    '342.2133, 9.4351)","(483.2352, 324.5502, 9.6703)","(489.5518, 306.1135, 9.8769)","(489.8072, '
    '291.6013, 10.0333)","(488.4502, 285.3214, 9.8645)","(480.7827, 278.0810, 9.5506)","(465.4229, '
    '275.8344, 9.2366)","(445.8000, 275.4666, 9.0163)","(420.2020, 277.2814, 8.8672)","(392.7874, '
    '280.7436, 8.8285)","(377.1956, 285.5146, 8.8521)"],"caruncle_2d":["(364.5717, 284.7197, '
    '8.8818)","(364.8584, 288.3494, 8.8758)","(357.4482, 296.9649, 8.8906)","(349.9624, 289.0576, '
    '8.8963)","(353.7258, 283.3381, 8.8824)","(351.5754, 280.2595, 8.8752)","(346.2976, 282.7485, '
    '8.8394)"],"iris_2d":["(389.0269, 332.5428, 8.8831)","(388.8647, 339.9151, 8.9267)","(390.1854, '
    '346.9555, 8.9762)","(392.9381, 353.3934, 9.0297)","(397.0171, 358.9813, 9.0850)","(402.2656, '
    '363.5046, 9.1402)","(408.4820, 366.7894, 9.1929)","(415.4274, 368.7094, 9.2413)","(422.8348, '
    '369.1910, 9.2835)","(430.4196, 368.2155, 9.3178)","(437.8902, 365.8205, 9.3429)","(444.9597, '
    '362.0980, 9.3579)","(451.3564, 357.1910, 9.3622)","(456.8343, 351.2882, 9.3555)","(461.1831, '
    '344.6164, 9.3383)","(464.2355, 337.4319, 9.3111)","(465.8743, 330.0109, 9.2750)","(466.0365, '
    '322.6385, 9.2313)","(464.7159, 315.5981, 9.1818)","(461.9632, 309.1602, 9.1284)","(457.8842, '
    '303.5723, 9.0730)","(452.6357, 299.0490, 9.0179)","(446.4193, 295.7643, 8.9651)","(439.4739, '
    '293.8442, 8.9167)","(432.0665, 293.3626, 8.8746)","(424.4817, 294.3381, 8.8403)","(417.0110, '
    '296.7332, 8.8152)","(409.9415, 300.4557, 8.8002)","(403.5449, 305.3626, 8.7959)","(398.0670, '
    '311.2654, 8.8025)","(393.7182, 317.9373, 8.8197)","(390.6658, 325.1217, '
    '8.8470)"],"eye_details":{"look_vec":"(0.3404, 0.3879, -0.8566, 0.0000)","pupil_size":"0.1020631","ir'
    'is_size":"0.9349335","iris_texture":"eyeball_brown"},"lighting_details":{"skybox_texture":"bergen_2k'
    '","skybox_exposure":"1.191213","skybox_rotation":"231","ambient_intensity":"1.15163","light_rotation'
    '":"(30.0, 248.5, 0.0)","light_intensity":"0.8451564"},"eye_region_details":{"pca_shape_coeffs":["-0.'
    '01061361","0.009601755","0.01964062","0.0175013","-0.01174545","0.01343334","0.005124273","0.0021062'
    '55","0.002141998","0.004727394","-0.008374349","-0.002742675","0.006649553","-0.002045201","-0.00302'
    '2511","-0.005640308","-0.004294305","0.0002127625","0.002193088","1.924006E-17"],"primary_skin_textu'
    're":"f02_color"},"head_pose":"(355.0770, 203.8451, 0.0000)"}'
)


def _shared_sample() -> Path | None:
    """The real file itself, where shared/reference is beside this checkout."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "reference" / "samples" / "unityeyes_1.json"
        if candidate.is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("simulated")
    return root, simulate(root, profile="tiny", seed=SEED, workers=1)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _mats(root: Path) -> list[Path]:
    return sorted((root / "gaze/real/Data/Normalized").glob("p*/day*.mat"))


# ------------------------------------------------------------------------------------ layout


def test_layout_and_counts(tiny):
    root, result = tiny
    plan = PROFILES["tiny"]
    counts = result["counts"]
    assert counts["gaze_synthetic"] == plan.gaze_synthetic
    synthetic = root / "gaze/synthetic"
    for index in range(1, plan.gaze_synthetic + 1):  # numbering from 1, no zero padding
        assert (synthetic / f"{index}.jpg").is_file() and (synthetic / f"{index}.json").is_file()
    assert not (synthetic / "0.jpg").exists() and not (synthetic / f"{plan.gaze_synthetic + 1}.jpg").exists()
    persons = sorted(p.name for p in (root / "gaze/real/Data/Normalized").iterdir())
    assert persons == [f"p{i:02d}" for i in range(plan.persons)]
    lists = root / "gaze/real/Evaluation Subset/sample list for eye image"
    assert sorted(p.name for p in lists.iterdir()) == [f"p{i:02d}.txt" for i in range(plan.persons)]
    assert len(_mats(root)) == counts["gaze_real_days"]
    for domain, count in (("synthetic", plan.hand_synthetic), ("real", plan.hand_real)):
        folder = root / "hand" / domain
        assert (folder / "joint_data.mat").is_file()
        for index in range(1, count + 1):
            assert (folder / f"synthdepth_1_{index:07d}.png").is_file()
            assert (folder / f"depth_1_{index:07d}.png").is_file() == (domain == "real")
    assert result["bytes"] > 0 and result["seconds"]["total"] > 0
    assert not list(root.rglob("*.tmp")), "atomic writes left temporary files"


def test_unknown_profile_or_bad_seed_is_refused(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        simulate(tmp_path, profile="huge")
    with pytest.raises(ValueError, match="seed"):
        simulate(tmp_path, profile="tiny", seed=-1)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------ UnityEyes

_TRIPLE = re.compile(r"\((-?\d+\.\d{4}), (-?\d+\.\d{4}), (-?\d+\.\d{4})\)")
_CSHARP_FLOAT = re.compile(r"-?\d+(\.\d+)?(E[+-]\d\d)?")


def _structure(value):
    if isinstance(value, dict):
        return [(key, _structure(v)) for key, v in value.items()]
    if isinstance(value, list):
        return ("list", len(value), sorted({type(v).__name__ for v in value}))
    return type(value).__name__


def _floats(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.strip("()").split(",")])


def test_json_layout_matches_the_real_unityeyes_file():
    assert eyes.csharp_float(1.924006e-17) == "1.924006E-17" and eyes.csharp_float(0.0002127625) == "0.0002127625"
    assert eyes.csharp_float(0.8451564) == "0.8451564" and eyes.csharp_float(-0.01061361) == "-0.01061361"
    text = eyes.unityeyes_dumps(REAL_SAMPLE)
    assert text.startswith('{ \n  "interior_margin_2d": [ \n    "(371.4855, 296.4230, 8.8595)", \n')
    assert text.endswith('"head_pose": "(355.0770, 203.8451, 0.0000)"\n  }')
    shared = _shared_sample()
    if shared is not None:
        assert text == shared.read_text()  # SimpleJSON layout, byte for byte


def test_unityeyes_json_has_the_sample_schema(tiny):
    root, _ = tiny
    sample = REAL_SAMPLE
    for path in sorted((root / "gaze/synthetic").glob("*.json")):
        text = path.read_text()
        record = json.loads(text)
        assert _structure(record) == _structure(sample), path.name  # keys, order, list lengths, all strings
        assert text == eyes.unityeyes_dumps(record)
        for key in ("interior_margin_2d", "caruncle_2d", "iris_2d"):
            assert all(_TRIPLE.fullmatch(v) for v in record[key]), key
        details = record["eye_details"]
        assert re.fullmatch(r"\((-?\d\.\d{4}, ){3}0\.0000\)", details["look_vec"])
        look = _floats(details["look_vec"])
        assert abs(np.linalg.norm(look[:3]) - 1) < 1e-3 and look[2] < 0
        assert _CSHARP_FLOAT.fullmatch(details["pupil_size"]) and _CSHARP_FLOAT.fullmatch(details["iris_size"])
        lighting = record["lighting_details"]
        assert re.fullmatch(r"\d+", lighting["skybox_rotation"])
        assert re.fullmatch(r"\(-?\d+\.\d, -?\d+\.\d, -?\d+\.\d\)", lighting["light_rotation"])
        assert all(_CSHARP_FLOAT.fullmatch(v) for v in record["eye_region_details"]["pca_shape_coeffs"])
        head = _floats(record["head_pose"])
        assert re.fullmatch(r"\((\d+\.\d{4}, ){2}0\.0000\)", record["head_pose"]) and np.all((head >= 0) & (head < 360))


def test_look_vec_agrees_with_iris_landmarks_and_pixels(tiny):
    root, _ = tiny
    for path in sorted((root / "gaze/synthetic").glob("*.json")):
        record = json.loads(path.read_text())
        image = Image.open(path.with_suffix(".jpg"))
        assert image.mode == "RGB"
        width, height = image.size
        radius = geometry.UNITYEYES_EYEBALL_RADIUS_PX_AT_800x600 * width / 800
        gaze = geometry.gaze_from_unity_look_vec(_floats(record["eye_details"]["look_vec"]))
        pitch, yaw = geometry.pitch_yaw_from_gaze(gaze)
        predicted = np.array([width / 2 - radius * np.cos(pitch) * np.sin(yaw), height / 2 - radius * np.sin(pitch)])
        iris = np.array([_floats(v)[:2] for v in record["iris_2d"]])
        iris[:, 1] = height - iris[:, 1]  # y-up -> image rows
        assert np.linalg.norm(iris.mean(0) - predicted) < 1.0, path.name
        # the darkest blob of the eye region (the pupil) sits at the iris centre
        margin = np.array([_floats(v)[:2] for v in record["interior_margin_2d"]])
        margin[:, 1] = height - margin[:, 1]
        (x0, y0), (x1, y1) = np.floor(margin.min(0)).astype(int), np.ceil(margin.max(0)).astype(int)
        grey = ndimage.uniform_filter(np.asarray(image.convert("L"), dtype=np.float64), 3)[y0 : y1 + 1, x0 : x1 + 1]
        row, col = np.unravel_index(np.argmin(grey), grey.shape)
        assert grey.min() < 60, path.name
        assert np.hypot(x0 + col + 0.5 - predicted[0], y0 + row + 0.5 - predicted[1]) < 0.25 * radius, path.name
        # the eye corners enclose the iris centre horizontally
        caruncle = np.array([_floats(v)[:2] for v in record["caruncle_2d"]])
        assert caruncle[:, 0].mean() < predicted[0] < margin[8, 0]


# ------------------------------------------------------------------------------------ MPIIGaze


def test_mpiigaze_mats_load_both_ways(tiny):
    root, _ = tiny
    sizes = []
    for path in _mats(root):
        assert path.read_bytes().startswith(b"MATLAB 5.0 MAT-file")
        hysts = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
        plain = scipy.io.loadmat(path)
        names = plain["filenames"]
        count = names.shape[0]
        sizes.append(count)
        assert names.shape == (count, 1) and names.dtype == object
        assert all(re.fullmatch(r"\d{4}\.jpg", str(cell[0])) for cell in names[:, 0])
        for side in ("left", "right"):
            struct = plain["data"][side][0, 0]
            image, gaze, pose = struct["image"][0, 0], struct["gaze"][0, 0], struct["pose"][0, 0]
            assert image.shape == (count, 36, 60) and image.dtype == np.uint8
            assert gaze.shape == (count, 3) and gaze.dtype == np.float64
            assert pose.shape == (count, 3) and pose.dtype == np.float64
            np.testing.assert_allclose(np.linalg.norm(gaze, axis=1), 1, atol=1e-9)
            assert np.all(gaze[:, 2] < 0)
            assert image.std() > 10  # not blank
            squeezed = getattr(hysts["data"], side)
            expected = (36, 60) if count == 1 else (count, 36, 60)
            assert squeezed.image.shape == expected and squeezed.gaze.shape == ((3,) if count == 1 else (count, 3))
        if count == 1:
            assert isinstance(hysts["filenames"], str)
        else:
            assert hysts["filenames"].shape == (count,)
    assert 1 in sizes, "no single-sample day"


def test_gaze_range_is_mpiigaze_like(tiny):
    root, _ = tiny
    gazes = np.concatenate(
        [scipy.io.loadmat(p)["data"][side][0, 0]["gaze"][0, 0] for p in _mats(root) for side in ("left", "right")]
    )
    pitch, yaw = np.degrees(geometry.pitch_yaw_from_gaze(gazes)).T
    assert pitch.min() >= -26 and pitch.max() <= 9 and np.abs(yaw).max() <= 45
    assert np.median(pitch) < 0  # people look down at the screen


def test_right_eye_is_a_flipped_left_render_with_gaze_x_negated(tmp_path, monkeypatch):
    """The stored right eye is the mirror image of a left-eye render made with its gaze x negated."""
    calls = []

    def marker_render(person, day, shape, rng, mirror):
        calls.append((shape.pitch, shape.yaw, mirror))
        image = np.zeros((36, 60), np.uint8)
        image[:, :20] = 255  # a mark on the render's left
        return image

    monkeypatch.setattr(eyes, "render_real", marker_render)
    eyes.write_person(tmp_path, SEED, 0, [4], 2)
    data = scipy.io.loadmat(tmp_path / "Data/Normalized/p00/day01.mat")["data"]
    stored = {side: data[side][0, 0] for side in ("left", "right")}
    left, right = stored["left"]["image"][0, 0], stored["right"]["image"][0, 0]
    assert np.all(left[:, :, :20] == 255) and not left[:, :, 20:].any()
    assert np.all(right[:, :, -20:] == 255) and not right[:, :, :-20].any()
    for side, mirror in (("left", False), ("right", True)):
        pitch, yaw = geometry.pitch_yaw_from_gaze(stored[side]["gaze"][0, 0]).T
        rendered = np.array([(p, y) for p, y, m in calls if m == mirror])
        np.testing.assert_allclose(rendered[:, 0], pitch, atol=1e-9)
        np.testing.assert_allclose(rendered[:, 1], -yaw if mirror else yaw, atol=1e-9)  # −yaw ⇔ gaze x negated


def test_mirrored_render_matches_negated_gaze():
    """render_real(mirror=True) of a right eye is a left-eye render whose pupil follows −gaze_x."""
    person, day = eyes.make_person(SEED, 0), eyes.make_day(SEED, 0, 1)
    shape = eyes.EyeShape(pitch=0.0, yaw=np.radians(30), iris_radius=0.53, pupil_fraction=0.45, **person.shape)
    image = eyes.render_real(person, day, shape, np.random.default_rng(0), mirror=True).astype(float)
    shifted = eyes.render_real(
        person, day, eyes.EyeShape(**{**vars(shape), "yaw": np.radians(-30)}), np.random.default_rng(0), mirror=True
    ).astype(float)
    # yaw > 0 looks toward image-left: the dark iris mass is further left than for yaw < 0
    columns = np.arange(60)
    weight, weight_shifted = (255 - image).sum(0), (255 - shifted).sum(0)
    assert (columns * weight).sum() / weight.sum() < (columns * weight_shifted).sum() / weight_shifted.sum()


def test_evaluation_lists_name_existing_samples(tiny):
    root, _ = tiny
    lists = root / "gaze/real/Evaluation Subset/sample list for eye image"
    for listing in sorted(lists.glob("p*.txt")):
        lines = listing.read_text().splitlines()
        assert lines
        for line in lines:
            match = re.fullmatch(r"(day\d\d)/(\d{4}\.jpg) (left|right)", line)
            assert match, line
            day_file = root / "gaze/real/Data/Normalized" / listing.stem / f"{match.group(1)}.mat"
            assert day_file.is_file(), line
            names = [str(cell[0]) for cell in scipy.io.loadmat(day_file)["filenames"][:, 0]]
            assert match.group(2) in names, line
        assert len(set(line.split()[0] for line in lines)) == len(lines)  # distinct samples


# ------------------------------------------------------------------------------------ NYU hands


def _depth(path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path))
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
    assert not rgb[..., 0].any()  # R unused
    return rgb[..., 1].astype(np.int64) * 256 + rgb[..., 2]


def test_nyu_pngs_hold_the_rendered_depth(tiny):
    root, _ = tiny
    for domain, count in (("synthetic", PROFILES["tiny"].hand_synthetic), ("real", PROFILES["tiny"].hand_real)):
        for index in range(1, count + 1):
            rendered = hands.clean_depth_mm(hands.frame_pose(SEED, domain, index)).astype(np.int64)
            decoded = _depth(root / "hand" / domain / f"synthdepth_1_{index:07d}.png")
            np.testing.assert_array_equal(decoded, rendered)
            assert (decoded > 0).sum() > 500 and decoded[decoded > 0].min() > 300


def test_synthetic_and_real_poses_differ(tiny):
    root, _ = tiny
    synthetic = scipy.io.loadmat(root / "hand/synthetic/joint_data.mat")["joint_uvd"][0]
    real = scipy.io.loadmat(root / "hand/real/joint_data.mat")["joint_uvd"][0]
    assert not np.allclose(synthetic[: len(real)], real[: len(synthetic)])


def test_joint_data_mat(tiny):
    root, _ = tiny
    for domain, count in (("synthetic", PROFILES["tiny"].hand_synthetic), ("real", PROFILES["tiny"].hand_real)):
        mat = scipy.io.loadmat(root / "hand" / domain / "joint_data.mat")
        names = mat["joint_names"]
        assert names.shape == (1, 36) and names.dtype == object
        assert tuple(str(cell[0]) for cell in names[0]) == geometry.NYU_JOINT_NAMES
        uvd, xyz = mat["joint_uvd"], mat["joint_xyz"]
        assert uvd.shape == xyz.shape == (3, count, 36, 3) and uvd.dtype == xyz.dtype == np.float64
        np.testing.assert_allclose(xyz, geometry.nyu_uvd_to_xyz(uvd), rtol=0, atol=1e-6)
        for index in range(count):
            np.testing.assert_allclose(uvd[0, index], hands.joints_uvd(hands.frame_pose(SEED, domain, index + 1)))
        # kinects 2 and 3 see the same skeleton (same bone lengths) from elsewhere
        bones = lambda points: np.linalg.norm(points[:, 0] - points[:, 1], axis=-1)  # noqa: E731  tip–DIP
        np.testing.assert_allclose(bones(xyz[1]), bones(xyz[0]), atol=1e-6)
        assert not np.allclose(xyz[1], xyz[0])
        # the joints are where the hand is: in the image, at hand depths
        assert np.all((uvd[0, ..., 2] > 350) & (uvd[0, ..., 2] < 1100))
        assert np.all((uvd[0, ..., 0] > 0) & (uvd[0, ..., 0] < 640) & (uvd[0, ..., 1] > 0) & (uvd[0, ..., 1] < 480))


def test_palm_joint_lies_on_the_rendered_palm():
    """PALM_3 (the crop centre) is on the palm's mid-plane: the pixel under it shows the palm surface,
    about half a palm thickness (≈ 14 mm) nearer, unless a finger covers it."""
    gaps = []
    for index in range(1, 31):
        pose = hands.frame_pose(SEED, "synthetic", index)
        depth = hands.clean_depth_mm(pose)
        u, v, d = hands.joints_uvd(pose)[geometry.NYU_CROP_CENTRE_JOINT]
        pixel = depth[int(round(v)), int(round(u))]
        assert pixel > 0
        gaps.append(d - float(pixel))
    gaps = np.array(gaps)
    assert np.all(gaps > -1)  # never behind the joint's depth
    assert np.median(gaps) < 25 and np.mean(gaps < 30) > 0.7


def test_real_depth_has_kinect_artifacts_but_agrees_inside_the_hand(tiny):
    root, _ = tiny
    for index in range(1, PROFILES["tiny"].hand_real + 1):
        real = _depth(root / f"hand/real/depth_1_{index:07d}.png")
        synth = _depth(root / f"hand/real/synthdepth_1_{index:07d}.png")
        hand = synth > 0
        assert not np.array_equal(real, synth)
        assert (real[~hand] > 0).mean() > 0.3  # background clutter where the clean render is empty
        assert (real == 0).mean() > 0.005  # holes and shadows
        both = hand & (real > 0)
        difference = np.abs(real[both] - synth[both])
        assert np.median(difference) <= 5 and np.mean(difference < 15) > 0.7
        assert np.mean(difference > 0) > 0.2  # noise and quantisation inside the hand
        # ragged edges: along the hand's outline, readings are missing or off
        outline = hand & ~ndimage.binary_erosion(hand, iterations=2)
        off = (real[outline] == 0) | (np.abs(real[outline] - synth[outline]) > 20)
        assert off.mean() > 0.05


def test_kinect_shadow_falls_left_of_a_near_object():
    scene = np.full((480, 640), 1500.0)
    scene[200:280, 300:360] = 700.0
    depth = hands.kinect(scene, np.random.default_rng(0)).astype(float)
    left, right = depth[230:250, 270:295], depth[230:250, 366:390]
    assert (left == 0).mean() > 0.8 and (right > 0).mean() > 0.8


# ------------------------------------------------------------------------------------ determinism


def test_same_seed_same_bytes_whatever_the_workers(tiny, tmp_path):
    root, _ = tiny
    again = tmp_path / "again"
    stale = again / "gaze/synthetic" / "999.jpg"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over from a bigger profile")
    (again / ".simgan-simulated").write_text("{}")  # as the earlier, bigger run left it
    simulate(again, profile="tiny", seed=SEED, workers=2)
    assert not stale.exists()
    assert _hashes(again) == _hashes(root)
    other = tmp_path / "other"
    simulate(other, profile="tiny", seed=SEED + 1, workers=1)
    first, second = _hashes(root), _hashes(other)
    shared = first.keys() & second.keys()
    assert sum(first[k] != second[k] for k in shared) > 0.9 * len(shared)


def test_mat_files_do_not_depend_on_the_system_zlib(tmp_path, monkeypatch):
    """A fresh clone on another machine rendered data/ with another hash than data.dvc: compressed MAT
    elements are deflated by the system's zlib, whose output differs between builds. The writer must
    not deflate at all, and what it writes still loads."""
    import zlib

    import scipy.io

    from simgan.data.simulators.eyes import save_mat

    def refuse(*args, **kwargs):
        raise AssertionError("save_mat deflated: its bytes would depend on the zlib build")

    monkeypatch.setattr(zlib, "compress", refuse)
    monkeypatch.setattr(zlib, "compressobj", refuse)
    save_mat(tmp_path / "day01.mat", {"data": np.arange(12, dtype=np.uint8).reshape(3, 4)})
    assert (tmp_path / "day01.mat").read_bytes().startswith(b"MATLAB 5.0 MAT-file, Platform: posix, Created by: simgan")
    assert scipy.io.loadmat(tmp_path / "day01.mat")["data"].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_real_factors_can_be_left_out():
    """Ablations: without any factor the real renderer draws the clean eye, in grey, at the same framing."""
    person, day = eyes.make_person(SEED, 1), eyes.make_day(SEED, 1, 1)
    shape = eyes.EyeShape(pitch=-0.1, yaw=0.2, iris_radius=0.53, pupil_fraction=0.4, **person.shape)

    def render(factors):
        return eyes.render_real(person, day, shape, np.random.default_rng(3), False, factors).astype(float)

    clean, full = render(frozenset()), render(eyes.REAL_FACTORS)
    assert clean.shape == full.shape == (36, 60)
    assert np.abs(clean - full).mean() > 10
    roughness = lambda image: np.abs(np.diff(image, axis=1)).mean()  # noqa: E731
    assert roughness(full) > 1.5 * roughness(clean)
    without_lashes = render(eyes.REAL_FACTORS - {"lashes"})
    assert np.abs(without_lashes - full).mean() > 1


def test_a_folder_of_real_data_is_never_overwritten(tmp_path):
    """simulate cleans up only after itself: a root with gaze/ or hand/ files it did not write is refused."""
    from simgan.data.simulators import MARKER, simulate

    real = tmp_path / "mine" / "hand" / "real"
    real.mkdir(parents=True)
    (real / "depth_1_0000001.png").write_bytes(b"a user's own frame")
    with pytest.raises(ValueError, match="already holds data that `simgan simulate` did not write"):
        simulate(tmp_path / "mine", profile="tiny", workers=1)
    assert (real / "depth_1_0000001.png").read_bytes() == b"a user's own frame"
    simulate(tmp_path / "ours", profile="tiny", workers=1)
    assert (tmp_path / "ours" / MARKER).is_file()
    simulate(tmp_path / "ours", profile="tiny", workers=1)  # its own output: re-rendered in place
