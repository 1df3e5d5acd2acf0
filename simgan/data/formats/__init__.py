"""Readers of the published dataset formats, one module per format, all with the same two functions.

    scan(root, **options) -> (items, quarantined)
        Cheap enumeration of what `root` holds. Each item is a small picklable object (a dataclass of
        paths, indices and options) describing one unit of work: one UnityEyes jpg+json pair, one
        MPIIGaze day file, one range of an h5 file, one NYU frame. Problems seen while listing (a
        `2.json` without `2.jpg`, a missing label file) are returned as `Quarantined` right away.
    read(item) -> list[Sample | Quarantined]
        The heavy part (decode, check, crop, resize), run in worker processes by `prepare`. Every input
        sample ends up either as a `Sample` or as a `Quarantined` naming its file and what is wrong:
        nothing is dropped silently, and count in = samples + quarantined.

Label names (columns of the manifest) and their units:
    gaze:  gaze_x, gaze_y, gaze_z   unit gaze vector in the MPIIGaze normalised camera frame
                                    (x right, y down, z forward; eye -> target, so z < 0)
           pitch_rad, yaw_rad       pitch = asin(-g_y) (> 0 looking up), yaw = atan2(-g_x, -g_z)
                                    (the hysts / GazeML convention: see simgan.data.geometry)
    hand:  joint_JJ_u, joint_JJ_v   the 14 evaluation joints (NYU_EVAL_JOINTS order, JJ = 00..13) in
                                    pixels of the prepared crop (u right, v down)
           joint_JJ_d               their depth in millimetres
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HAND_JOINTS = 14
TASK_LABELS: dict[str, tuple[str, ...]] = {
    "gaze": ("gaze_x", "gaze_y", "gaze_z", "pitch_rad", "yaw_rad"),
    "hand": tuple(f"joint_{j:02d}_{c}" for j in range(HAND_JOINTS) for c in ("u", "v", "d")),
}
"""Each task's label columns: every real manifest carries them (blank where a row has no label), so one
suite checks labelled and unlabelled real data alike."""


@dataclass(frozen=True)
class Sample:
    """One image ready for the prepared arrays.

    id: unique within its dataset and stable across runs (e.g. "17" for UnityEyes 17.jpg,
        "p03/day02/0005.jpg/left" for MPIIGaze).
    source: the file the pixels came from, with "#key" for a sample inside a container file.
    image: uint8 (H, W), already at the task's prepared size (gaze 35×55; hand S×S).
    labels: task labels, names and units as in this module's docstring; {} for unlabelled data.
    person: person id for person-independent splits ("" when unknown or synthetic).
    metadata: anything else worth keeping in the manifest (head pose, day, eye side, kinect).
    """

    id: str
    source: str
    image: np.ndarray
    labels: dict[str, float] = field(default_factory=dict)
    person: str = ""
    metadata: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Quarantined:
    """An input that could not be used: the file (with "#key" inside containers) and why, in words."""

    source: str
    reason: str


def read_items(reader, items) -> tuple[list[Sample], list[Quarantined]]:
    """Read `items` with a reader module in this process; results split into samples and quarantined."""
    samples: list[Sample] = []
    quarantined: list[Quarantined] = []
    for item in items:
        for result in reader.read(item):
            (samples if isinstance(result, Sample) else quarantined).append(result)
    return samples, quarantined


def read_all(reader, root, **options) -> tuple[list[Sample], list[Quarantined]]:
    """`reader.scan(root, **options)` then every item read in this process (prepare does it in parallel)."""
    items, quarantined = reader.scan(root, **options)
    samples, more = read_items(reader, items)
    return samples, [*quarantined, *more]
