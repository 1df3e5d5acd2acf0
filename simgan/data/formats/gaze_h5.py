"""The Kaggle 4quant eye-gaze files `gaze.h5` (UnityEyes) and `real_gaze.h5` (MPIIGaze) (DATA_FORMATS.md §3).

`image` is either a group of per-sample (35, 55) datasets or one (N, 35, 55) dataset; `look_vec` (N, 3 or 4),
when present, holds UnityEyes look vectors (Unity frame, y up) row-aligned with the samples; `path` (N,), when
present, the source file of each sample. Without `look_vec` (real_gaze.h5) samples are unlabelled.

Order: h5py lists group members lexicographically ("1", "10", "11", "2", ...), which misaligns unpadded keys
with `look_vec`; keys are sorted by the integers they contain (then by name), so row i of `look_vec` belongs
to the i-th key in numeric order. Images are used as stored, never resized: one that is not (35, 55) is
quarantined (a (55, 35) one is reported as looking transposed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from simgan.data import geometry
from simgan.data.formats import Quarantined, Sample

LOOK_VEC_NORM_TOLERANCE = 0.01  # as for UnityEyes json: |‖look_vec‖ - 1| above this is quarantined
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class GazeH5Range:
    """Samples [start, stop) of one file. keys: the group member names of those samples (numeric order),
    or None when `image` is one array dataset; `labelled`/`has_path`: read look_vec / path rows too."""

    path: str
    start: int
    stop: int
    keys: tuple[str, ...] | None
    size: tuple[int, int] = (35, 55)
    labelled: bool = False
    has_path: bool = False


def key_order(key: str) -> tuple:
    """Sort key: by the integers in the name ("2" < "10", "img_2" < "img_10"), names without digits last."""
    numbers = tuple(int(run) for run in _DIGITS.findall(key))
    return (not numbers, numbers, key)


def _resolve(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".h5", ".hdf5") and p.is_file())
        if len(files) == 1:
            return files[0]
        found = ", ".join(p.name for p in files) or "none"
        raise FileNotFoundError(f"{path} is a folder; expected one .h5 file in it (found: {found}).")
    raise FileNotFoundError(f"gaze h5 file {path} does not exist (expected gaze.h5 or real_gaze.h5).")


def scan(
    path: Path, size: tuple[int, int] = (35, 55), chunk: int = 1000
) -> tuple[list[GazeH5Range], list[Quarantined]]:
    """Split the file into ranges of `chunk` samples; a file that cannot be used at all is one Quarantined."""
    path = _resolve(Path(path))
    size = tuple(int(v) for v in size)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of samples; got {chunk}")
    try:
        with h5py.File(path, "r") as file:
            keys, count, labelled, has_path = _layout(file, size)
    except _Bad as bad:
        return [], [Quarantined(str(path), str(bad))]
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError on damaged files
        return [], [Quarantined(str(path), f"cannot read HDF5 file: {type(error).__name__}: {error}")]
    items = [
        GazeH5Range(
            str(path),
            start,
            min(start + chunk, count),
            None if keys is None else tuple(keys[start : start + chunk]),
            size,
            labelled,
            has_path,
        )
        for start in range(0, count, chunk)
    ]
    return items, []


class _Bad(ValueError):
    """The whole file is unusable; the message says why."""


def _layout(file: h5py.File, size: tuple[int, int]) -> tuple[list[str] | None, int, bool, bool]:
    """-> (sorted group keys or None for an array, sample count, has a usable look_vec, has a usable path)."""
    if "image" not in file:
        raise _Bad(f"no 'image' group or dataset (found: {', '.join(file.keys()) or 'nothing'})")
    image = file["image"]
    if isinstance(image, h5py.Group):
        keys = sorted(image.keys(), key=key_order)
        count = len(keys)
    elif image.ndim in (3, 4):
        keys, count = None, int(image.shape[0])
    else:
        raise _Bad(
            f"'image' dataset has shape {image.shape}; expected (N, {size[0]}, {size[1]}) "
            f"or a group of ({size[0]}, {size[1]}) datasets"
        )
    labelled = "look_vec" in file
    if labelled:
        look = file["look_vec"]
        if not isinstance(look, h5py.Dataset) or look.ndim != 2 or look.shape[1] not in (3, 4):
            raise _Bad(f"'look_vec' has shape {getattr(look, 'shape', 'none (a group)')}; expected (N, 3) or (N, 4)")
        if look.shape[0] != count:
            raise _Bad(f"'look_vec' has {look.shape[0]} rows but 'image' has {count} samples; cannot align labels")
    paths = file.get("path")
    has_path = isinstance(paths, h5py.Dataset) and paths.shape == (count,)
    return keys, count, labelled, has_path


def check_image(array: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray | None, str]:
    """-> (uint8 (H, W) image, "") or (None, reason); a trailing channel axis of 1 is dropped."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.shape != size:
        expected = f"expected {size[0]}×{size[1]} (H×W)"
        if array.shape == size[::-1]:
            return None, f"image is {array.shape[0]}×{array.shape[1]} (H×W); {expected}; looks transposed"
        return None, f"image has shape {array.shape}; {expected}"
    if array.dtype != np.uint8:
        if (
            not np.issubdtype(array.dtype, np.number)
            or not np.isfinite(array).all()
            or array.min() < 0
            or array.max() > 255
        ):
            return None, f"image has dtype {array.dtype} with values outside 0..255; expected uint8"
        array = np.rint(array).astype(np.uint8)
    return np.ascontiguousarray(array), ""


def _labels(look: np.ndarray) -> tuple[dict[str, float], str]:
    """One look_vec row -> (gaze labels, "") or ({}, reason)."""
    look = np.asarray(look, dtype=np.float64)[:3]
    if not np.isfinite(look).all():
        return {}, f"look_vec {look.tolist()} contains NaN or infinity"
    norm = float(np.linalg.norm(look))
    if abs(norm - 1.0) > LOOK_VEC_NORM_TOLERANCE:
        return {}, f"look_vec has norm {norm:.4f}; expected a unit vector (±{LOOK_VEC_NORM_TOLERANCE})"
    gaze = geometry.gaze_from_unity_look_vec(look)
    return geometry.gaze_labels(gaze), ""


def read(item: GazeH5Range) -> list[Sample | Quarantined]:
    """One range -> a Sample or a Quarantined ("file#key") per sample, in numeric key order."""
    names = list(item.keys) if item.keys is not None else [str(i) for i in range(item.start, item.stop)]
    try:
        with h5py.File(item.path, "r") as file:
            looks = file["look_vec"][item.start : item.stop] if item.labelled else None
            paths = file["path"][item.start : item.stop] if item.has_path else None
            if item.keys is None:
                pixels = list(file["image"][item.start : item.stop])
            else:
                group = file["image"]
                pixels = [_member(group, key) for key in item.keys]
    except Exception as error:  # the file changed or broke since scan: every sample of the range is lost
        reason = f"cannot read HDF5 file: {type(error).__name__}: {error}"
        return [Quarantined(f"{item.path}#{name}", reason) for name in names]
    results: list[Sample | Quarantined] = []
    for offset, (name, stored) in enumerate(zip(names, pixels)):
        source = f"{item.path}#{name}"
        if isinstance(stored, str):  # _member's reason
            results.append(Quarantined(source, stored))
            continue
        image, problem = check_image(stored, item.size)
        labels = {}
        if not problem and looks is not None:
            labels, problem = _labels(looks[offset])
        if problem:
            results.append(Quarantined(source, problem))
            continue
        metadata = {"original_path": _text(paths[offset])} if paths is not None else {}
        results.append(Sample(id=name, source=source, image=image, labels=labels, metadata=metadata))
    return results


def _member(group: h5py.Group, key: str) -> np.ndarray | str:
    """group[key] as an array, or a reason why it cannot be one."""
    member = group.get(key)
    if not isinstance(member, h5py.Dataset):
        return f"image/{key} is {'missing' if member is None else 'a group'}; expected a 2-D image dataset"
    try:
        return member[()]
    except Exception as error:  # a damaged chunk fails only this sample
        return f"cannot read image/{key}: {type(error).__name__}: {error}"


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
