"""Writers of gaze fixtures in the published formats (shared/reference/DATA_FORMATS.md §1-§3, §5).

UnityEyes pairs are built from the real label file (embedded below, verbatim) with the look_vec set from a
chosen (pitch, yaw), the eyelid landmarks moved so their bounding box is centred on the image centre (the
eyeball centre) and the iris ring placed where that gaze puts it: R·(−cos p·sin y, −sin p) px from the
image centre (image rows, y down), R = 71.76 px at 800×600. The JPEG shows skin, a white eye opening, a
grey iris disc and a black pupil at the iris centre, so a test can find the pupil in a crop.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from PIL import Image, ImageDraw

from simgan.data.geometry import UNITYEYES_EYEBALL_RADIUS_PX_AT_800x600, gaze_from_pitch_yaw, unity_look_vec_from_gaze

SKIN, SCLERA, IRIS, PUPIL = 170, 230, 90, 10  # grey levels of the drawn UnityEyes render
PUPIL_FRACTION = 0.4  # pupil radius / iris radius

# ----------------------------------------------------------------------------------------- UnityEyes


def real_unityeyes_label() -> dict:
    """The real UnityEyes label file (shared/reference/samples/unityeyes_1.json), parsed."""
    return json.loads(REAL_UNITYEYES_JSON)


def _points(strings: list[str]) -> np.ndarray:
    return np.array([[float(v) for v in s.strip("()").split(",")] for s in strings])  # (n, 3)


def _strings(points: np.ndarray) -> list[str]:
    return ["({:.4f}, {:.4f}, {:.4f})".format(*p) for p in points]


def unityeyes_label(pitch: float, yaw: float, width: int = 800, height: int = 600) -> dict:
    """The real label with look_vec from (pitch, yaw) radians and landmarks placed for a width×height render."""
    label = real_unityeyes_label()
    scale = width / 800  # the sample's pixel coordinates are for 800×600
    look = unity_look_vec_from_gaze(gaze_from_pitch_yaw(np.array([pitch, yaw])))
    label["eye_details"]["look_vec"] = "({:.4f}, {:.4f}, {:.4f}, 0.0000)".format(*look)
    interior, caruncle, iris = (_points(label[k]) for k in ("interior_margin_2d", "caruncle_2d", "iris_2d"))
    # lids: scale about the origin, then shift the interior-margin bbox centre onto the image centre (y up)
    centre = np.array([width / 2, height / 2])
    lids_centre = (interior[:, :2].min(0) + interior[:, :2].max(0)) / 2 * scale
    for points in (interior, caruncle):
        points[:, :2] = points[:, :2] * scale - lids_centre + centre
    radius = UNITYEYES_EYEBALL_RADIUS_PX_AT_800x600 * scale
    iris_centre = np.array(
        [width / 2 - radius * np.cos(pitch) * np.sin(yaw), height / 2 + radius * np.sin(pitch)]
    )  # y up
    iris[:, :2] = (iris[:, :2] - iris[:, :2].mean(0)) * scale + iris_centre
    label["interior_margin_2d"], label["caruncle_2d"], label["iris_2d"] = map(_strings, (interior, caruncle, iris))
    return label


def unityeyes_image(
    label: dict, width: int = 800, height: int = 600, texture: float = 0.0, seed: int = 0
) -> np.ndarray:
    """uint8 (H, W, 3) render matching `label`: skin, eye opening, iris disc clipped by the lids, pupil.

    texture: std of smooth grey noise added everywhere (0: flat), to give JPEGs a realistic size.
    """

    def image_xy(key):  # y up -> image rows
        points = _points(label[key])[:, :2]
        return [(x, height - y) for x, y in points]

    opening = Image.new("L", (width, height), 0)
    ImageDraw.Draw(opening).polygon(image_xy("interior_margin_2d"), fill=255)
    ring = np.array(image_xy("iris_2d"))
    centre, radius = ring.mean(0), np.linalg.norm(ring - ring.mean(0), axis=1).mean()
    eye = Image.new("L", (width, height), SCLERA)
    draw = ImageDraw.Draw(eye)
    for r, value in ((radius, IRIS), (radius * PUPIL_FRACTION, PUPIL)):
        draw.ellipse([centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r], fill=value)
    grey = np.where(np.asarray(opening) > 0, np.asarray(eye), SKIN).astype(np.float64)
    if texture:
        rng = np.random.default_rng(seed)
        small = rng.normal(0, texture, (height // 4 + 1, width // 4 + 1)).astype(np.float32)
        grey += np.asarray(Image.fromarray(small, mode="F").resize((width, height), Image.Resampling.BICUBIC))
        grey += rng.normal(0, texture / 3, grey.shape)
    grey = np.clip(grey, 0, 255).astype(np.uint8)
    return np.stack([grey, grey, grey], axis=-1)


def write_unityeyes_pair(
    folder: Path,
    stem: str,
    pitch: float = 0.0,
    yaw: float = 0.0,
    width: int = 800,
    height: int = 600,
    label: dict | None = None,
    texture: float = 0.0,
    quality: int = 90,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write N.jpg (RGB JPEG) + N.json; `label` defaults to `unityeyes_label(pitch, yaw, width, height)`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    label = unityeyes_label(pitch, yaw, width, height) if label is None else label
    jpg, js = folder / f"{stem}.jpg", folder / f"{stem}.json"
    Image.fromarray(unityeyes_image(label, width, height, texture, seed)).save(jpg, "JPEG", quality=quality)
    js.write_text(json.dumps(label, indent=2))
    return jpg, js


# ----------------------------------------------------------------------------------------- MPIIGaze


def mpiigaze_day(count: int, seed: int = 0) -> dict:
    """Arrays of one day: filenames, and per side image (N, 36, 60) uint8, gaze (N, 3) unit (z < 0), pose (N, 3).

    Every image is a smooth random texture with a bright bar over its 10 leftmost columns, so a mirror
    moves the bar to the right.
    """
    rng = np.random.default_rng(seed)
    day = {"filenames": [f"{i + 1:04d}.jpg" for i in range(count)]}
    for side in ("left", "right"):
        pitch_yaw = np.column_stack([rng.uniform(-0.4, 0.1, count), rng.uniform(-0.5, 0.5, count)])
        image = rng.integers(40, 160, size=(count, 36, 60)).astype(np.uint8)
        image[:, :, :10] = 250
        day[side] = {
            "gaze": gaze_from_pitch_yaw(pitch_yaw),
            "image": image,
            "pose": rng.normal(0, 0.2, size=(count, 3)),
        }
    return day


def write_mpiigaze_day(path: Path, day: dict) -> Path:
    """savemat the way the dataset stores it: nested structs data.{left,right}.{gaze,image,pose}, a cell of names.

    Whatever fields `day[side]` holds are written, so a test can leave one out."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = np.empty((len(day["filenames"]), 1), dtype=object)
    for i, name in enumerate(day["filenames"]):
        names[i, 0] = name
    data = {side: dict(day[side]) for side in ("left", "right")}  # field order gaze, image, pose as stored
    scipy.io.savemat(path, {"data": data, "filenames": names}, do_compression=True)
    return path


def write_evaluation_list(root: Path, person: str, lines: list[str], old_layout: bool = False) -> Path:
    """Evaluation Subset/sample list for eye image/pXX.txt (or the older Evaluation Subset/pXX.txt)."""
    folder = Path(root) / "Evaluation Subset"
    if not old_layout:
        folder = folder / "sample list for eye image"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{person}.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


# ----------------------------------------------------------------------------------------- 4quant h5


def gaze_h5_arrays(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 35, 55), image i = 10·i + 5 plus a 0..4 texture (so N ≤ 25), look_vec (N, 4) unit, y up)."""
    rng = np.random.default_rng(seed)
    images = (
        rng.integers(0, 5, size=(count, 35, 55)).astype(np.uint8)
        + (10 * np.arange(count) + 5).astype(np.uint8)[:, None, None]
    )
    pitch_yaw = np.column_stack([np.linspace(-0.3, 0.3, count), np.linspace(0.4, -0.4, count)])
    look = np.column_stack([unity_look_vec_from_gaze(gaze_from_pitch_yaw(pitch_yaw)), np.zeros(count)])
    return images, look


def write_gaze_h5(
    path: Path,
    images: np.ndarray,
    look_vec: np.ndarray | None = None,
    keys: list[str] | None = None,
    paths: list[str] | None = None,
) -> Path:
    """image as a group of per-sample datasets named `keys` (created in that order), or as one (N, H, W)
    dataset when keys is None; look_vec (N, k) and path (N,) bytes when given."""
    path = Path(path)
    with h5py.File(path, "w") as file:
        if keys is None:
            file.create_dataset("image", data=images)
        else:
            group = file.create_group("image")
            for key, image in zip(keys, images):
                group.create_dataset(key, data=image)
        if look_vec is not None:
            file.create_dataset("look_vec", data=look_vec)
        if paths is not None:
            file.create_dataset("path", data=np.array([p.encode() for p in paths], dtype="S"))
    return path


# The real label file, verbatim (DATA_FORMATS.md: from david-wb/gaze-estimation test/data/imgs/1.json).
REAL_UNITYEYES_JSON = """{ 
  "interior_margin_2d": [ 
    "(371.4855, 296.4230, 8.8595)", 
    "(364.8002, 307.1421, 8.8963)", 
    "(377.6998, 328.0000, 8.8956)", 
    "(405.9977, 352.2230, 8.9568)", 
    "(441.1661, 357.7870, 9.1683)", 
    "(467.5667, 342.2133, 9.4351)", 
    "(483.2352, 324.5502, 9.6703)", 
    "(489.5518, 306.1135, 9.8769)", 
    "(489.8072, 291.6013, 10.0333)", 
    "(488.4502, 285.3214, 9.8645)", 
    "(480.7827, 278.0810, 9.5506)", 
    "(465.4229, 275.8344, 9.2366)", 
    "(445.8000, 275.4666, 9.0163)", 
    "(420.2020, 277.2814, 8.8672)", 
    "(392.7874, 280.7436, 8.8285)", 
    "(377.1956, 285.5146, 8.8521)"
    ], 
  "caruncle_2d": [ 
    "(364.5717, 284.7197, 8.8818)", 
    "(364.8584, 288.3494, 8.8758)", 
    "(357.4482, 296.9649, 8.8906)", 
    "(349.9624, 289.0576, 8.8963)", 
    "(353.7258, 283.3381, 8.8824)", 
    "(351.5754, 280.2595, 8.8752)", 
    "(346.2976, 282.7485, 8.8394)"
    ], 
  "iris_2d": [ 
    "(389.0269, 332.5428, 8.8831)", 
    "(388.8647, 339.9151, 8.9267)", 
    "(390.1854, 346.9555, 8.9762)", 
    "(392.9381, 353.3934, 9.0297)", 
    "(397.0171, 358.9813, 9.0850)", 
    "(402.2656, 363.5046, 9.1402)", 
    "(408.4820, 366.7894, 9.1929)", 
    "(415.4274, 368.7094, 9.2413)", 
    "(422.8348, 369.1910, 9.2835)", 
    "(430.4196, 368.2155, 9.3178)", 
    "(437.8902, 365.8205, 9.3429)", 
    "(444.9597, 362.0980, 9.3579)", 
    "(451.3564, 357.1910, 9.3622)", 
    "(456.8343, 351.2882, 9.3555)", 
    "(461.1831, 344.6164, 9.3383)", 
    "(464.2355, 337.4319, 9.3111)", 
    "(465.8743, 330.0109, 9.2750)", 
    "(466.0365, 322.6385, 9.2313)", 
    "(464.7159, 315.5981, 9.1818)", 
    "(461.9632, 309.1602, 9.1284)", 
    "(457.8842, 303.5723, 9.0730)", 
    "(452.6357, 299.0490, 9.0179)", 
    "(446.4193, 295.7643, 8.9651)", 
    "(439.4739, 293.8442, 8.9167)", 
    "(432.0665, 293.3626, 8.8746)", 
    "(424.4817, 294.3381, 8.8403)", 
    "(417.0110, 296.7332, 8.8152)", 
    "(409.9415, 300.4557, 8.8002)", 
    "(403.5449, 305.3626, 8.7959)", 
    "(398.0670, 311.2654, 8.8025)", 
    "(393.7182, 317.9373, 8.8197)", 
    "(390.6658, 325.1217, 8.8470)"
    ], 
  "eye_details": { 
    "look_vec": "(0.3404, 0.3879, -0.8566, 0.0000)", 
    "pupil_size": "0.1020631", 
    "iris_size": "0.9349335", 
    "iris_texture": "eyeball_brown"
    }, 
  "lighting_details": { 
    "skybox_texture": "bergen_2k", 
    "skybox_exposure": "1.191213", 
    "skybox_rotation": "231", 
    "ambient_intensity": "1.15163", 
    "light_rotation": "(30.0, 248.5, 0.0)", 
    "light_intensity": "0.8451564"
    }, 
  "eye_region_details": { 
    "pca_shape_coeffs": [ 
      "-0.01061361", 
      "0.009601755", 
      "0.01964062", 
      "0.0175013", 
      "-0.01174545", 
      "0.01343334", 
      "0.005124273", 
      "0.002106255", 
      "0.002141998", 
      "0.004727394", 
      "-0.008374349", 
      "-0.002742675", 
      "0.006649553", 
      "-0.002045201", 
      "-0.003022511", 
      "-0.005640308", 
      "-0.004294305", 
      "0.0002127625", 
      "0.002193088", 
      "1.924006E-17"
      ], 
    "primary_skin_texture": "f02_color"
    }, 
  "head_pose": "(355.0770, 203.8451, 0.0000)"
  }"""
