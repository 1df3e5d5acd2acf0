"""MPIIGaze normalised eye images: `Data/Normalized/pXX/dayYY.mat` (DATA_FORMATS.md §2).

Each day file holds, per eye, uint8 (N, 36, 60) images, (N, 3) unit gaze vectors in the normalised camera
frame (the frame this project's labels use) and (N, 3) Rodrigues head poses, plus N file names. Right eyes
are mirrored so that every sample looks like a left eye (hysts, §2.5): the image is flipped left-right and
the gaze x is negated, which negates yaw and keeps pitch. Images are resized 36×60 -> 35×55 with Pillow's
antialiased bilinear filter.

scipy returns the same file in several shapes (structured arrays by default, `mat_struct` objects with
`struct_as_record=False`, dicts with `simplify_cells=True`; with `squeeze_me=True` a one-sample day loses its
sample axis and its file name becomes a plain str). `day_arrays` accepts all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from scipy.spatial.transform import Rotation

from simgan.data import geometry
from simgan.data.formats import Quarantined, Sample

SIDES = ("left", "right")
STORED_SIZE = (36, 60)  # (H, W) of MPIIGaze's normalised eye images
RESAMPLE = Image.Resampling.BILINEAR  # antialiased in `resize`, as for UnityEyes crops
_PERSON = re.compile(r"p(\d+)")
_DAY = re.compile(r"day(\d+)")


@dataclass(frozen=True)
class MPIIGazeDay:
    """One day file of one person; `size` is the output (height, width), `eyes` the sides to read."""

    path: str
    person: str
    day: str
    size: tuple[int, int] = (35, 55)
    eyes: tuple[str, ...] = SIDES


def _normalized_folder(root: Path) -> Path:
    """The folder holding pXX/: accepts the MPIIGaze root, its Data/ or Data/Normalized itself."""
    for candidate in (root / "Data" / "Normalized", root / "Normalized"):
        if candidate.is_dir():
            return candidate
    return root


def scan(
    root: Path, size: tuple[int, int] = (35, 55), eyes: tuple[str, ...] | list[str] = SIDES
) -> tuple[list[MPIIGazeDay], list[Quarantined]]:
    """List the day files in (person, day) order; nothing is opened yet."""
    root = Path(root)
    if not root.is_dir():
        problem = "is not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(f"MPIIGaze folder {root} {problem} (expected Data/Normalized/pXX/dayYY.mat under it).")
    eyes = tuple(eyes)
    if not eyes or any(side not in SIDES for side in eyes) or len(set(eyes)) != len(eyes):
        raise ValueError(f"eyes must be a non-empty subset of {SIDES}; got {eyes!r}")
    height, width = (int(v) for v in size)
    folder = _normalized_folder(root)
    items = []
    for person_dir in sorted(
        (p for p in folder.iterdir() if p.is_dir() and _PERSON.fullmatch(p.name)), key=lambda p: int(p.name[1:])
    ):
        days = [p for p in person_dir.glob("day*.mat") if _DAY.fullmatch(p.stem)]
        for day in sorted(days, key=lambda p: int(p.stem[3:])):
            items.append(MPIIGazeDay(str(day), person_dir.name, day.stem, (height, width), eyes))
    return items, []


# ------------------------------------------------------------------------------------ .mat access


class _Bad(ValueError):
    """The whole day file is unusable; the message says why."""


def _unwrap(value):
    """Strip the 1-element object arrays scipy wraps cells and struct fields in."""
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def _field(container, name: str, where: str):
    """container.name for a dict, a scipy mat_struct or a structured array; _Bad naming `where` if absent."""
    container = _unwrap(container)
    if isinstance(container, dict):
        if name in container:
            return _unwrap(container[name])
    elif isinstance(container, np.ndarray) and container.dtype.names:
        if name in container.dtype.names and container.size == 1:
            return _unwrap(container.reshape(-1)[0][name])
    elif hasattr(container, "_fieldnames"):  # scipy.io.matlab.mat_struct
        if name in container._fieldnames:
            return _unwrap(getattr(container, name))
    raise _Bad(f"missing variable {where}.{name}" if where else f"missing variable {name}")


def _filenames(value) -> list[str]:
    """Cell (object array, any shape), char matrix or a squeezed str -> list of names."""
    value = _unwrap(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):  # simplify_cells=True
        value = np.array(value, dtype=object)
    if not isinstance(value, np.ndarray):
        raise _Bad(f"filenames is a {type(value).__name__}; expected a cell of strings")
    names = []
    for cell in value.reshape(-1) if value.dtype == object else value.reshape(value.shape[0] if value.ndim else 1, -1):
        cell = _unwrap(cell)
        if isinstance(cell, np.ndarray):
            cell = "".join(str(part) for part in cell.reshape(-1))
        names.append(str(cell).strip())
    return names


def day_arrays(mat: dict, eyes: tuple[str, ...] = SIDES) -> tuple[list[str], dict[str, dict[str, np.ndarray | None]]]:
    """loadmat's result (any of its shapes) -> (names, {side: {image (N, h, w), gaze (N, 3), pose (N, 3) | None}})."""
    names = _filenames(_field(mat, "filenames", ""))
    count = len(names)
    data = _field(mat, "data", "")
    sides = {}
    for side in eyes:
        eye = _field(data, side, "data")
        image = np.asarray(_field(eye, "image", f"data.{side}"))
        gaze = np.asarray(_field(eye, "gaze", f"data.{side}"), dtype=np.float64)
        if count == 1 and image.ndim == 2:  # squeeze_me=True collapsed the sample axis
            image, gaze = image[None], gaze.reshape(1, -1)
        if image.ndim != 3 or len(image) != count:
            raise _Bad(f"data.{side}.image has shape {image.shape}; expected ({count}, 36, 60) for {count} file names")
        if gaze.shape != (count, 3):
            raise _Bad(f"data.{side}.gaze has shape {gaze.shape}; expected ({count}, 3) for {count} file names")
        try:
            pose = np.asarray(_field(eye, "pose", f"data.{side}"), dtype=np.float64).reshape(count, 3)
        except (_Bad, ValueError, TypeError):
            pose = None  # head pose is optional metadata
        sides[side] = {"image": image, "gaze": gaze, "pose": pose}
    return names, sides


def head_pitch_yaw_deg(pose: np.ndarray) -> np.ndarray:
    """(N, 3) Rodrigues vectors -> (N, 2) head (pitch, yaw) in degrees, as hysts:
    v = R[:, 2], asin(v_y), atan2(v_x, v_z)."""
    if len(pose) == 0:
        return np.zeros((0, 2))
    with np.errstate(invalid="ignore"):
        v = Rotation.from_rotvec(pose).as_matrix()[:, :, 2]
        return np.degrees(np.stack([np.arcsin(np.clip(v[:, 1], -1, 1)), np.arctan2(v[:, 0], v[:, 2])], axis=1))


# ------------------------------------------------------------------------------------ reading


def read(item: MPIIGazeDay) -> list[Sample | Quarantined]:
    """One day file -> a Sample per (file name, eye), in file order, left before right; or one Quarantined for
    the file."""
    try:
        mat = scipy.io.loadmat(item.path)
    except Exception as error:  # scipy raises ValueError, TypeError, OSError, zlib/struct errors on bad files
        return [Quarantined(item.path, f"cannot read MAT file: {type(error).__name__}: {error}")]
    try:
        names, sides = day_arrays(mat, item.eyes)
    except _Bad as bad:
        return [Quarantined(item.path, str(bad))]
    poses = {
        side: head_pitch_yaw_deg(arrays["pose"]) if arrays["pose"] is not None else None
        for side, arrays in sides.items()
    }
    results: list[Sample | Quarantined] = []
    seen = set()
    for index, name in enumerate(names):
        duplicate = name in seen
        seen.add(name)
        for side in item.eyes:
            key = f"{name}/{side}"
            source = f"{item.path}#{key}"
            if duplicate:
                results.append(Quarantined(source, f"file name {name!r} occurs more than once in the day file"))
                continue
            problem, sample = _sample(item, sides[side], poses[side], index, name, side)
            results.append(Quarantined(source, problem) if problem else sample)
    return results


def _sample(
    item: MPIIGazeDay, arrays: dict, pose_deg: np.ndarray | None, index: int, name: str, side: str
) -> tuple[str, Sample | None]:
    """-> ("", Sample) or (reason, None) for one eye of one file name."""
    image = arrays["image"][index]
    if image.shape != STORED_SIZE:
        hint = "; looks transposed" if image.shape == STORED_SIZE[::-1] else ""
        return f"image is {image.shape[0]}×{image.shape[1]} (H×W); expected 36×60{hint}", None
    if image.dtype != np.uint8:
        if (
            not np.issubdtype(image.dtype, np.number)
            or not np.isfinite(image).all()
            or image.min() < 0
            or image.max() > 255
        ):
            return f"image has dtype {image.dtype} with values outside 0..255; expected uint8", None
        image = np.rint(image).astype(np.uint8)
    gaze = arrays["gaze"][index]
    norm = float(np.linalg.norm(gaze))
    if not np.isfinite(gaze).all() or norm == 0:
        return f"gaze {gaze.tolist()} is not a direction (NaN, infinite or zero)", None
    gaze = gaze / norm
    if side == "right":  # mirror to a left eye: flip columns, negate x (= negate yaw)
        image, gaze = image[:, ::-1], gaze * np.array([-1.0, 1.0, 1.0])
    height, width = item.size
    if (height, width) != image.shape:
        image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), RESAMPLE))
    labels = geometry.gaze_labels(gaze)
    metadata: dict[str, float | str] = {"day": item.day, "eye": side, "file": name}
    if pose_deg is not None and np.isfinite(pose_deg[index]).all():
        sign = -1.0 if side == "right" else 1.0
        metadata.update(head_pitch_deg=float(pose_deg[index, 0]), head_yaw_deg=sign * float(pose_deg[index, 1]))
    return "", Sample(
        id=f"{item.person}/{item.day}/{name}/{side}",
        source=f"{item.path}#{name}/{side}",
        image=np.ascontiguousarray(image, dtype=np.uint8),
        labels=labels,
        person=item.person,
        metadata=metadata,
    )


# ------------------------------------------------------------------------------------ evaluation subset

_EVAL_FOLDERS = (
    ("Evaluation Subset", "sample list for eye image"),
    ("Evaluation_Subset", "sample_list_for_eye_image"),
    ("Evaluation Subset",),
)


def read_evaluation_subset(root: Path) -> set[tuple[str, str, str, str]]:
    """The official 3000-per-person eye list -> {(person, day, file name, side)},
    e.g. ("p00", "day08", "0069.jpg", "left").

    Reads `Evaluation Subset/sample list for eye image/pXX.txt`, or the older `Evaluation Subset/pXX.txt`.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MPIIGaze folder {root} does not exist.")
    for parts in _EVAL_FOLDERS:
        folder = root.joinpath(*parts)
        lists = sorted(p for p in folder.glob("p*.txt") if _PERSON.fullmatch(p.stem)) if folder.is_dir() else []
        if lists:
            break
    else:
        raise FileNotFoundError(
            f"no evaluation list under {root}: expected 'Evaluation Subset/sample list for eye image/pXX.txt' "
            f"or 'Evaluation Subset/pXX.txt'."
        )
    subset = set()
    for path in lists:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split()
            day_file = fields[0].split("/") if fields else []
            if len(fields) != 2 or fields[1] not in SIDES or len(day_file) != 2:
                raise ValueError(f"{path}:{number}: expected 'dayNN/NNNN.jpg left|right'; found {line.strip()!r}")
            subset.add((path.stem, day_file[0], day_file[1], fields[1]))
    return subset
