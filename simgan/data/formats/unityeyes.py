"""UnityEyes renders: a flat folder of `N.jpg` + `N.json` pairs (DATA_FORMATS.md §1).

Labels come from `eye_details.look_vec` (Unity camera frame, y up), turned into the MPIIGaze frame and
(pitch, yaw) by `simgan.data.geometry`; `head_pose` is kept as metadata only (§1.5), never filtered on.

Crop (deterministic, GazeML `preprocess_entry` without its noise, DATA_FORMATS §1.6):
    landmarks are flipped to image rows, (x, H - y), with H the height of the decoded JPEG;
    eye width   w = f · |x(mean of caruncle_2d) - x(interior_margin_2d[8])|   (corner to corner × f, f = 1.5)
    eye centre  c = centre of the bounding box of interior_margin_2d
    crop box    w wide, w·h_out/w_out high, centred on c (so the 35:55 output keeps the aspect and the
                eye corners always span 1/f of the output width, whatever the render size)
The box is resampled to (h_out, w_out) with Pillow's antialiased bilinear `resize(box=...)`.

Two reader options bring the crops to another real set's conventions (both off by default, GazeML's crop):
    eye_width_factor  f above. MPIIGaze's normalised eyes are framed tighter than GazeML's crop: by eye, their
                      corners span about 5/6 of the width (f ≈ 1.2; docs/results.md compares 1.5 and 1.2 on
                      unlabelled real eyes). A refiner cannot learn a change of scale without moving the pupil,
                      so match the framing here, not in the refiner.
    equalize          histogram equalisation of each crop (simgan.data.histogram, OpenCV's equalizeHist), as
                      MPIIGaze's normalised images are equalised and GazeML equalises its UnityEyes crops.
For speed the JPEG is decoded in draft mode: grayscale (the JPEG's own luma, no RGB pass) and DCT-scaled by the largest
factor 1/2, 1/4 or 1/8 that still leaves at least one decoded pixel per output pixel across the eye.
A crop box that leaves the image is quarantined rather than padded, and so are landmarks that cannot belong
to the image they are paired with (outside it, or an eye far from the centre a UnityEyes render puts it at).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from simgan.data import geometry
from simgan.data.formats import Quarantined, Sample
from simgan.data.histogram import equalize_histogram

EYE_WIDTH_FACTOR = 1.5  # crop width / corner-to-corner distance (GazeML)
LOOK_VEC_NORM_TOLERANCE = 0.01  # |‖look_vec‖ - 1| above this: not a direction, quarantined
DRAFT_SCALES = (8, 4, 2, 1)  # the DCT scalings libjpeg offers, largest first
RESAMPLE = Image.Resampling.BILINEAR  # antialiased (triangle filter scaled to the reduction) in `resize`
_INTEGER_STEM = re.compile(r"\d+")
# How far a render's eye opening may sit from the image centre, as a fraction of each side: real renders and the
# embedded simulator stay within ~6 % (the eyeball is at the centre; lids move by under a radius, 9 % of the width).
EYE_CENTRE_TOLERANCE = 0.2
# Corner-to-corner distance over the render width: ~17 % in real renders (136 px at 800), 17-23 % simulated.
EYE_WIDTH_FRACTION = (0.05, 0.5)


@dataclass(frozen=True)
class UnityEyesItem:
    """One jpg + json pair; `size` is the crop's (height, width) in pixels."""

    image: str
    label: str
    stem: str
    size: tuple[int, int] = (35, 55)
    eye_width_factor: float = EYE_WIDTH_FACTOR
    equalize: bool = False


def _stem_order(stem: str) -> tuple:
    # "2" < "11" (numbers first, by value), then any non-numeric stems by name
    return (0, int(stem), stem) if _INTEGER_STEM.fullmatch(stem) else (1, 0, stem)


def _check_size(size) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width) in pixels; got {size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive (height, width) in pixels; got {size!r}")
    return height, width


def scan(
    root: Path, size: tuple[int, int] = (35, 55), *, eye_width_factor: float = EYE_WIDTH_FACTOR, equalize: bool = False
) -> tuple[list[UnityEyesItem], list[Quarantined]]:
    """List the pairs in numeric stem order; a stem missing its jpg or json is quarantined at once.
    eye_width_factor, equalize: the crop options of the module docstring."""
    root = Path(root)
    if not (isinstance(eye_width_factor, int | float) and 1.0 <= eye_width_factor <= 3.0):
        raise ValueError(
            f"eye_width_factor must be in [1, 3] (crop width over corner distance); got {eye_width_factor!r}"
        )
    if not root.is_dir():
        problem = "is not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(f"UnityEyes folder {root} {problem} (expected a folder of N.jpg + N.json pairs).")
    size = _check_size(size)
    images, labels = {}, {}
    for path in root.iterdir():
        if path.suffix == ".jpg":
            images[path.stem] = path
        elif path.suffix == ".json":
            labels[path.stem] = path
    items, quarantined = [], []
    for stem in sorted(images.keys() | labels.keys(), key=_stem_order):
        if stem not in images:
            quarantined.append(Quarantined(str(labels[stem]), f"{stem}.json has no {stem}.jpg"))
        elif stem not in labels:
            quarantined.append(Quarantined(str(images[stem]), f"{stem}.jpg has no {stem}.json"))
        else:
            items.append(
                UnityEyesItem(str(images[stem]), str(labels[stem]), stem, size, float(eye_width_factor), bool(equalize))
            )
    return items, quarantined


class _Bad(ValueError):
    """A problem with one input; `source` is the file to name in the quarantine."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(reason)
        self.source, self.reason = source, reason


def parse_tuple(text, lengths: tuple[int, ...] = (3,)) -> np.ndarray:
    """'(x, y, z)' (Unity's Vector.ToString) -> float64 array; the number of components must be in `lengths`."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string like '(x, y, z)'; found {type(text).__name__} {text!r}")
    body = text.strip()
    if not (body.startswith("(") and body.endswith(")")):
        raise ValueError(f"expected a string like '(x, y, z)'; found {text!r}")
    try:
        values = np.array([float(part) for part in body[1:-1].split(",")])
    except ValueError:
        raise ValueError(f"expected numbers in {text!r}") from None
    if len(values) not in lengths:
        raise ValueError(f"expected {' or '.join(map(str, lengths))} numbers; found {len(values)} in {text!r}")
    return values


def _points(label: dict, key: str, count: int | None, source: str) -> np.ndarray:
    """label[key], a list of '(x, y, z)' strings -> (n, 2) x, y in Unity screen pixels (y up)."""
    values = label.get(key)
    if not isinstance(values, list) or not values:
        raise _Bad(source, f"missing or empty {key} (expected a list of '(x, y, z)' strings)")
    if count is not None and len(values) != count:
        raise _Bad(source, f"{key} has {len(values)} points; expected {count}")
    try:
        points = np.stack([parse_tuple(value, (3,)) for value in values])[:, :2]
    except ValueError as error:
        raise _Bad(source, f"{key}: {error}") from None
    if not np.isfinite(points).all():
        raise _Bad(source, f"{key} contains NaN or infinite coordinates")
    return points


def _parse_label(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """-> (look_vec (3,), interior margin (16, 2), caruncle (n, 2), head-pose metadata), y up as stored."""
    try:
        label = json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _Bad(path, f"malformed JSON: {error}") from None
    if not isinstance(label, dict):
        raise _Bad(path, f"malformed JSON: expected an object at the top level; found {type(label).__name__}")
    details = label.get("eye_details")
    if not isinstance(details, dict) or "look_vec" not in details:
        raise _Bad(path, "missing eye_details.look_vec")
    try:
        look = parse_tuple(details["look_vec"], (3, 4))[:3]
    except ValueError as error:
        raise _Bad(path, f"eye_details.look_vec: {error}") from None
    norm = float(np.linalg.norm(look))
    if not np.isfinite(look).all():
        raise _Bad(path, f"eye_details.look_vec contains NaN or infinity: {details['look_vec']!r}")
    if abs(norm - 1.0) > LOOK_VEC_NORM_TOLERANCE:
        raise _Bad(
            path, f"eye_details.look_vec has norm {norm:.4f}; expected a unit vector (±{LOOK_VEC_NORM_TOLERANCE})"
        )
    interior = _points(label, "interior_margin_2d", 16, path)
    caruncle = _points(label, "caruncle_2d", None, path)
    return look, interior, caruncle, _head_pose(label.get("head_pose"))


def _head_pose(text) -> dict[str, float]:
    """Camera Euler angles in degrees, [0, 360) -> GazeML's head pitch/yaw in degrees (0, 0 = frontal).

    {} if unreadable."""
    try:
        pitch, yaw = parse_tuple(text, (3,))[:2]
    except ValueError:
        return {}
    if not (math.isfinite(pitch) and math.isfinite(yaw)):
        return {}
    return {"head_pitch_deg": float(pitch - 360.0 if pitch > 180.0 else pitch), "head_yaw_deg": float(yaw - 180.0)}


def crop_box(
    interior: np.ndarray,
    caruncle: np.ndarray,
    output_size: tuple[int, int],
    eye_width_factor: float = EYE_WIDTH_FACTOR,
) -> tuple[float, float, float, float]:
    """Landmarks in image pixels (y down) -> (left, top, right, bottom) of the eye crop in the same pixels."""
    height, width = output_size
    eye_width = eye_width_factor * abs(float(caruncle[:, 0].mean()) - float(interior[8, 0]))
    centre_x = (interior[:, 0].min() + interior[:, 0].max()) / 2
    centre_y = (interior[:, 1].min() + interior[:, 1].max()) / 2
    eye_height = eye_width * height / width
    return (
        float(centre_x - eye_width / 2),
        float(centre_y - eye_height / 2),
        float(centre_x + eye_width / 2),
        float(centre_y + eye_height / 2),
    )


def landmark_misfit(interior: np.ndarray, caruncle: np.ndarray, width: int, height: int) -> str | None:
    """Why the landmarks (image pixels) cannot belong to this width×height render, or None when they can.

    A UnityEyes render centres the eyeball (GazeML takes the image centre as the eyeball centre), with the eyeball
    radius a fixed fraction of the render width (71.76 px at 800×600). Landmarks of another render (an 8000×6000
    JPEG with the JSON of a 200×150 render) would otherwise crop the wrong place without a word. Checked: every
    landmark lies in the image; the eye opening is centred within EYE_CENTRE_TOLERANCE of the image size;
    the corner-to-corner distance is a plausible fraction of the width (EYE_WIDTH_FRACTION).
    """
    hint = "is the JSON from a render of another size?"
    for key, points in (("interior_margin_2d", interior), ("caruncle_2d", caruncle)):
        x_out, y_out = (points[:, 0] < 0) | (points[:, 0] > width), (points[:, 1] < 0) | (points[:, 1] > height)
        outside = np.flatnonzero(x_out | y_out)
        if len(outside):
            x, y = points[outside[0]]
            return (
                f"landmarks do not fit the {width}×{height} image: {key}[{outside[0]}] at ({x:.1f}, {y:.1f}) lies "
                f"outside it; {hint}"
            )
    centre = (interior.min(0) + interior.max(0)) / 2
    off_x, off_y = abs(centre[0] - width / 2) / width, abs(centre[1] - height / 2) / height
    if max(off_x, off_y) > EYE_CENTRE_TOLERANCE:
        return (
            f"landmarks do not fit the {width}×{height} image: the eye is centred at ({centre[0]:.0f}, "
            f"{centre[1]:.0f}), {off_x:.0%} of the width and {off_y:.0%} of the height from the image centre; a "
            f"UnityEyes render centres the eye (at most {EYE_CENTRE_TOLERANCE:.0%}); {hint}"
        )
    fraction = abs(float(caruncle[:, 0].mean()) - float(interior[8, 0])) / width
    low, high = EYE_WIDTH_FRACTION
    if not low <= fraction <= high:
        return (
            f"landmarks do not fit the {width}×{height} image: the eye corners are {fraction:.1%} of the width "
            f"apart; a UnityEyes render shows them {low:.0%} to {high:.0%} apart; {hint}"
        )
    return None


def _draft_scale(box_width: float, output_width: int) -> int:
    """Largest DCT reduction that keeps at least one decoded pixel per output pixel across the box."""
    return next(scale for scale in DRAFT_SCALES if box_width / scale >= output_width or scale == 1)


def _crop(
    image_path: str,
    interior: np.ndarray,
    caruncle: np.ndarray,
    size: tuple[int, int],
    eye_width_factor: float = EYE_WIDTH_FACTOR,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode (reduced, grayscale) and crop -> (uint8 (h, w) crop, (W, H) of the full render)."""
    try:
        with Image.open(image_path) as image:
            full_width, full_height = image.size
            interior = np.column_stack([interior[:, 0], full_height - interior[:, 1]])  # y up -> y down
            caruncle = np.column_stack([caruncle[:, 0], full_height - caruncle[:, 1]])
            box = crop_box(interior, caruncle, size, eye_width_factor)
            box_width = box[2] - box[0]
            if not (np.isfinite(box).all() and box_width >= 1.0):
                raise _Bad(image_path, f"eye width from the corner landmarks is {box_width:.2f} px; expected ≥ 1 px")
            if box[0] < 0 or box[1] < 0 or box[2] > full_width or box[3] > full_height:
                raise _Bad(
                    image_path,
                    "eye crop ({:.1f}, {:.1f})-({:.1f}, {:.1f}) leaves the {}×{} image".format(
                        *box, full_width, full_height
                    ),
                )
            misfit = landmark_misfit(interior, caruncle, full_width, full_height)
            if misfit is not None:
                raise _Bad(image_path, misfit)
            scale = _draft_scale(box_width, size[1])
            drafted = image.draft("L", (full_width // scale, full_height // scale))
            scale = full_width / drafted[1][2] if drafted else 1.0  # None: not a JPEG, decoded at full size
            image.load()  # forces the decode here, so truncated/corrupt data raise inside this try
            gray = image if image.mode == "L" else image.convert("L")
            reduced_box = tuple(min(v / scale, limit) for v, limit in zip(box, gray.size * 2))
            crop = gray.resize((size[1], size[0]), RESAMPLE, box=reduced_box)
            return np.asarray(crop, dtype=np.uint8), (full_width, full_height)
    except _Bad:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:  # Pillow's ways to fail
        raise _Bad(image_path, f"cannot decode image: {type(error).__name__}: {error}") from None


def read(item: UnityEyesItem) -> list[Sample | Quarantined]:
    """One pair -> [Sample] with the 35×55 crop and gaze labels, or [Quarantined] naming the bad file."""
    try:
        look, interior, caruncle, metadata = _parse_label(item.label)
        pixels, (full_width, full_height) = _crop(item.image, interior, caruncle, item.size, item.eye_width_factor)
    except _Bad as bad:
        return [Quarantined(bad.source, bad.reason)]
    if item.equalize:
        pixels = equalize_histogram(pixels)
    gaze = geometry.gaze_from_unity_look_vec(look)
    labels = geometry.gaze_labels(gaze)
    metadata = {**metadata, "render_width": full_width, "render_height": full_height}
    return [Sample(id=item.stem, source=item.image, image=pixels, labels=labels, metadata=metadata)]
