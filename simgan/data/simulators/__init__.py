"""Embedded default data: deterministic simulators that write the published dataset formats.

`simulate(root)` renders, under `root` (the project's data/ folder):

    gaze/synthetic/                 UnityEyes: 1.jpg + 1.json, 2.jpg + 2.json, ... (200×150 RGB)
    gaze/real/Data/Normalized/pXX/dayYY.mat                      MPIIGaze normalised eyes (36×60 uint8)
    gaze/real/Evaluation Subset/sample list for eye image/pXX.txt   "dayYY/NNNN.jpg left|right"
    hand/synthetic/                 NYU: synthdepth_1_NNNNNNN.png + joint_data.mat
    hand/real/                      NYU: depth_1_NNNNNNN.png (Kinect-like) + synthdepth_1_NNNNNNN.png
                                    (clean render of the same pose) + joint_data.mat

so that the project's readers run on them exactly as on the downloaded datasets. What each set models,
and what the "real" sets add that the synthetic ones leave out, is described in `eyes` and `hands`.

Deterministic: each image draws from its own random stream derived from (seed, part, index), so the same
seed gives byte-identical files whatever the number of worker processes or the folder (the .mat headers
carry a fixed text instead of a creation date, and the .mat files are not deflated, so they do not depend
on the system's zlib). What remains machine-dependent: the PNGs are deflated by the zlib Pillow links (the
system's libz.so.1, which manylinux wheels may use), so a machine with another zlib build (zlib-ng)
writes other PNG bytes for the same pixels, and data.dvc would record another hash there; the prepared
arrays, and every result, are the same. Every file is written atomically. A run replaces the simulated dataset:
files of these layouts' naming patterns in the four folders that the run did not write (left over from a
bigger profile) are removed, so a folder always holds one consistent render. That clean-up only ever
touches a folder a previous `simulate` wrote (it leaves the `MARKER` file there): a root holding
other gaze/ or hand/ data — a user's real datasets — is refused, never overwritten.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simgan.data.simulators import eyes, hands
from simgan.io import atomic_write
from simgan.procs import usable_cores

__all__ = ["LAYOUT", "PROFILES", "Profile", "simulate", "simulated_sources"]

LAYOUT = {  # task -> domain -> (reader format, folder under the root): what `simulate` writes
    "gaze": {"synthetic": ("unityeyes", "gaze/synthetic"), "real": ("mpiigaze", "gaze/real")},
    "hand": {"synthetic": ("nyu", "hand/synthetic"), "real": ("nyu", "hand/real")},
}


def simulated_sources(task: str, root: Path, size: tuple[int, int]) -> dict:
    """{domain: Source} reading a task's simulated data under `root` at the prepared (height, width)."""
    from simgan.data.prepare import source

    return {domain: source(fmt, Path(root) / folder, domain, size) for domain, (fmt, folder) in LAYOUT[task].items()}


@dataclass(frozen=True)
class Profile:
    """How much to render."""

    gaze_synthetic: int  # UnityEyes images
    persons: int  # MPIIGaze persons p00..
    samples_per_person: int  # (left, right) eye pairs per person, spread over its days
    max_days: int  # each person has max_days − 2 .. max_days days
    evaluation_lines: int  # lines per person in the Evaluation Subset list
    hand_synthetic: int  # NYU frames
    hand_real: int


PROFILES = {
    "default": Profile(
        gaze_synthetic=5000,
        persons=15,
        samples_per_person=200,
        max_days=6,
        evaluation_lines=100,
        hand_synthetic=1000,
        hand_real=1000,
    ),
    "tiny": Profile(
        gaze_synthetic=24,
        persons=3,
        samples_per_person=8,
        max_days=3,
        evaluation_lines=6,
        hand_synthetic=6,
        hand_real=6,
    ),
}

_EYE_CHUNK, _HAND_CHUNK = 250, 40
MARKER = ".simgan-simulated"  # written into root by simulate; its absence protects real data


def _refuse_foreign_data(root: Path) -> None:
    """Raise if `root` holds gaze/ or hand/ files that no earlier `simulate` wrote."""
    if (root / MARKER).is_file():
        return
    for folder in (root / "gaze", root / "hand"):
        if folder.is_dir() and any(path.is_file() for path in folder.rglob("*")):
            raise ValueError(
                f"{folder} already holds data that `simgan simulate` did not write (no {root / MARKER}); "
                "refusing to overwrite it: choose an empty or new output folder"
            )


def _run(task: tuple) -> tuple[tuple, object, float]:
    """One unit of work in a worker: returns (task, result, seconds)."""
    started = time.perf_counter()
    kind = task[0]
    if kind == "gaze_synthetic":
        _, folder, seed, start, stop = task
        result = eyes.write_synthetic(Path(folder), seed, range(start, stop))
    elif kind == "gaze_real":
        _, folder, seed, person, days, lines = task
        result = eyes.write_person(Path(folder), seed, person, days, lines)
    else:  # hand_synthetic / hand_real
        _, folder, seed, domain, start, stop = task
        result = hands.write_frames(Path(folder), seed, domain, range(start, stop))
    return task, result, time.perf_counter() - started


def _chunks(count: int, size: int):
    for start in range(1, count + 1, size):
        yield start, min(count + 1, start + size)


def _remove_stale(folder: Path, pattern: str, keep: set[str]) -> None:
    """Delete files in folder whose name matches pattern (full match) and that this run did not write."""
    if not folder.is_dir():
        return
    regex = re.compile(pattern)
    for path in folder.iterdir():
        if path.is_file() and regex.fullmatch(path.name) and path.name not in keep:
            path.unlink()


def _clean(root: Path, profile: Profile, day_sizes: list[list[int]]) -> None:
    gaze_synthetic = root / "gaze" / "synthetic"
    _remove_stale(
        gaze_synthetic,
        r"\d+\.(jpg|json)",
        {f"{i}.{ext}" for i in range(1, profile.gaze_synthetic + 1) for ext in ("jpg", "json")},
    )
    normalized = root / "gaze" / "real" / "Data" / "Normalized"
    if normalized.is_dir():
        for person_folder in normalized.iterdir():
            match = re.fullmatch(r"p(\d\d)", person_folder.name)
            if not (person_folder.is_dir() and match):
                continue
            person = int(match.group(1))
            days = len(day_sizes[person]) if person < len(day_sizes) else 0
            _remove_stale(person_folder, r"day\d\d\.mat", {f"day{d:02d}.mat" for d in range(1, days + 1)})
            if days == 0 and not any(person_folder.iterdir()):
                person_folder.rmdir()
    _remove_stale(
        root / "gaze" / "real" / "Evaluation Subset" / "sample list for eye image",
        r"p\d\d\.txt",
        {f"p{p:02d}.txt" for p in range(profile.persons)},
    )
    for domain, count in (("synthetic", profile.hand_synthetic), ("real", profile.hand_real)):
        keep = {f"{kind}_1_{i:07d}.png" for i in range(1, count + 1) for kind in ("synthdepth", "depth")}
        if domain == "synthetic":
            keep = {name for name in keep if name.startswith("synthdepth")}
        _remove_stale(root / "hand" / domain, r"(synth)?depth_\d_\d{7}\.png", keep)


def _folder_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def simulate(root: Path, profile: str = "default", seed: int = 0, workers: int | None = None) -> dict:
    """Render the embedded default datasets into `root` in their published formats.

    profile: "default" (the product's demo data) or "tiny" (a few dozen images per set, for tests).
    workers: processes (default: the CPUs this process may use; 1 = render in this process).
    Returns the counts per set, the seconds spent (wall clock in total, process seconds per set),
    the bytes written and the worker count. Prints nothing.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    seed = int(seed)
    plan = PROFILES[profile]
    root = Path(root)
    started = time.perf_counter()
    if workers is None:
        workers = usable_cores()
    workers = max(1, int(workers))
    day_sizes = eyes.day_sizes(seed, plan.persons, plan.samples_per_person, plan.max_days)
    _refuse_foreign_data(root)
    marker = json.dumps({"profile": profile, "seed": seed}).encode()
    atomic_write(root / MARKER, lambda handle: handle.write(marker))  # first, so a killed run can be re-run
    _clean(root, plan, day_sizes)

    gaze_synthetic, gaze_real = root / "gaze" / "synthetic", root / "gaze" / "real"
    hand_folders = {"synthetic": root / "hand" / "synthetic", "real": root / "hand" / "real"}
    # the slowest tasks first, so that the pool ends together
    tasks: list[tuple] = [
        ("hand_real", str(hand_folders["real"]), seed, "real", a, b) for a, b in _chunks(plan.hand_real, _HAND_CHUNK)
    ]
    tasks += [
        ("gaze_real", str(gaze_real), seed, person, days, plan.evaluation_lines)
        for person, days in enumerate(day_sizes)
    ]
    tasks += [
        ("hand_synthetic", str(hand_folders["synthetic"]), seed, "synthetic", a, b)
        for a, b in _chunks(plan.hand_synthetic, _HAND_CHUNK)
    ]
    tasks += [("gaze_synthetic", str(gaze_synthetic), seed, a, b) for a, b in _chunks(plan.gaze_synthetic, _EYE_CHUNK)]
    for folder in (gaze_synthetic, gaze_real, *hand_folders.values()):
        folder.mkdir(parents=True, exist_ok=True)

    seconds = {"gaze_synthetic": 0.0, "gaze_real": 0.0, "hand_synthetic": 0.0, "hand_real": 0.0}
    persons: list[dict] = []
    uvd: dict[str, list[tuple[int, np.ndarray]]] = {"synthetic": [], "real": []}
    if workers > 1 and len(tasks) > 1:
        with multiprocessing.get_context("fork").Pool(min(workers, len(tasks))) as pool:
            results = list(pool.imap_unordered(_run, tasks, chunksize=1))
    else:
        results = [_run(task) for task in tasks]
    for task, result, spent in results:
        seconds[task[0]] += spent
        if task[0] == "gaze_real":
            persons.append(result)
        elif task[0].startswith("hand"):
            uvd[task[3]].append((task[4], result))
    joint_started = time.perf_counter()
    for domain, parts in uvd.items():
        parts.sort(key=lambda part: part[0])
        stacked = np.concatenate([part[1] for part in parts]) if parts else np.zeros((0, 36, 3))
        hands.write_joint_data(hand_folders[domain], stacked)
    seconds["hand_joint_data"] = time.perf_counter() - joint_started
    seconds["total"] = time.perf_counter() - started
    counts = {
        "gaze_synthetic": plan.gaze_synthetic,
        "gaze_real_persons": plan.persons,
        "gaze_real_days": sum(p["days"] for p in persons),
        "gaze_real_samples": sum(p["samples"] for p in persons),
        "gaze_real_eye_images": 2 * sum(p["samples"] for p in persons),
        "gaze_real_evaluation_lines": sum(p["evaluation_lines"] for p in persons),
        "hand_synthetic": plan.hand_synthetic,
        "hand_real": plan.hand_real,
    }
    return {
        "profile": profile,
        "seed": seed,
        "root": str(root),
        "workers": workers,
        "counts": counts,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "bytes": _folder_bytes(root),
    }
