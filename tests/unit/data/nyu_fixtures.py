"""Writers of NYU hand fixtures in the published format (shared/reference/DATA_FORMATS.md §4, §5).

The "hand" is a palm disc around PALM_3 plus one small disc per joint, each at its joint's depth, with
the joints on a grid above the palm so no two discs overlap (any crop pixel can be traced to a joint).
The synthdepth PNG holds the hand alone; the real depth PNG holds the hand 10 mm farther, a wall and a
clutter disc in front of the wall that the synthdepth mask must remove.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from simgan.data.geometry import NYU_CROP_CENTRE_JOINT, NYU_JOINT_NAMES, nyu_uvd_to_xyz, nyu_xyz_to_uvd

H, W = 480, 640
PALM = NYU_CROP_CENTRE_JOINT
PALM_RADIUS_PX = 20
JOINT_RADIUS_PX = 4
REAL_OFFSET_MM = 10  # real hand = synthdepth + 10 mm, so a test can tell which one it sees
WALL_MM = 2000
CLUTTER_MM = 850  # inside the 300 mm cube of a palm at 800 mm: only the mask removes it
CLUTTER_DV_PX = 60  # clutter disc centre: PALM_3 + 60 px down (below the hand)
CLUTTER_RADIUS_PX = 8
MARKER_OFFSET_MM = -5  # the single pixel at PALM_3 (rounded) is 5 mm nearer than the palm disc


def hand_uvd(palm_uvd=(300.0, 220.0, 800.0)) -> np.ndarray:
    """(36, 3) uvd: PALM_3 at `palm_uvd`, the other joints on a 6×6 grid 40..140 mm above it (xyz y up)."""
    palm_xyz = nyu_uvd_to_xyz(np.asarray(palm_uvd, dtype=np.float64))
    j = np.arange(36)
    offsets = np.stack([-75.0 + 30.0 * (j % 6), 40.0 + 20.0 * (j // 6), 15.0 * (j % 5 - 2)], axis=-1)  # mm
    uvd = nyu_xyz_to_uvd(palm_xyz + offsets)
    uvd[PALM] = palm_uvd
    return uvd


def _disc(zbuffer: np.ndarray, u: float, v: float, radius: float, depth: float) -> None:
    rows, cols = np.ogrid[:H, :W]
    inside = (cols - u) ** 2 + (rows - v) ** 2 <= radius**2
    zbuffer[inside] = np.minimum(zbuffer[inside], depth)


def render_synthdepth(uvd: np.ndarray) -> np.ndarray:
    """(480, 640) uint16 mm: the hand only, background 0."""
    zbuffer = np.full((H, W), np.inf)
    palm = uvd[PALM]
    _disc(zbuffer, palm[0], palm[1], PALM_RADIUS_PX, palm[2])
    for joint in range(36):
        if joint != PALM:
            _disc(zbuffer, uvd[joint, 0], uvd[joint, 1], JOINT_RADIUS_PX, round(uvd[joint, 2]))
    u, v = int(round(palm[0])), int(round(palm[1]))
    if 0 <= u < W and 0 <= v < H:
        zbuffer[v, u] = palm[2] + MARKER_OFFSET_MM
    return np.where(np.isfinite(zbuffer), zbuffer, 0).astype(np.uint16)


def render_real(synth: np.ndarray, uvd: np.ndarray) -> np.ndarray:
    """(480, 640) uint16 mm: the hand 10 mm farther than synth, a wall, and clutter the mask must remove."""
    zbuffer = np.where(synth > 0, synth.astype(np.float64) + REAL_OFFSET_MM, WALL_MM)
    _disc(zbuffer, uvd[PALM, 0], uvd[PALM, 1] + CLUTTER_DV_PX, CLUTTER_RADIUS_PX, CLUTTER_MM)
    return zbuffer.astype(np.uint16)


def write_depth_png(path: Path, depth_mm: np.ndarray) -> None:
    """The NYU encoding, written by hand (not by the reader's helper): R = 0, G = depth >> 8, B = depth & 255."""
    depth = np.asarray(depth_mm, dtype=np.uint16)
    rgb = np.zeros(depth.shape + (3,), np.uint8)
    rgb[..., 1] = depth >> 8
    rgb[..., 2] = depth & 0xFF
    Image.fromarray(rgb, mode="RGB").save(path, format="PNG")


def kinect_views(uvd: np.ndarray) -> np.ndarray:
    """(N, 36, 3) Kinect-1 uvd -> (3, N, 36, 3): Kinects 2 and 3 shifted (+5 px in u, +5 px in v) to be told apart."""
    return np.stack([uvd, uvd + [5.0, 0.0, 0.0], uvd + [0.0, 5.0, 0.0]])


def write_joint_data(root: Path, uvd_all: np.ndarray, *, squeeze: bool = False) -> Path:
    """joint_data.mat as the NYU build script saves it: joint_names (1, 36) cell, joint_uvd/joint_xyz (3, N, 36, 3)."""
    uvd_all = np.asarray(uvd_all, dtype=np.float64)
    names = np.empty((1, 36), dtype=object)
    for j, name in enumerate(NYU_JOINT_NAMES):
        names[0, j] = name
    xyz_all = nyu_uvd_to_xyz(uvd_all)
    if squeeze:  # a writer that dropped the N = 1 axis
        uvd_all, xyz_all = uvd_all.squeeze(1), xyz_all.squeeze(1)
    path = root / "joint_data.mat"
    scipy.io.savemat(path, {"joint_names": names, "joint_uvd": uvd_all, "joint_xyz": xyz_all})
    return path


def write_frame(root: Path, kinect: int, frame: int, uvd: np.ndarray, *, kinds=("depth", "synthdepth")) -> None:
    """The frame's depth and/or synthdepth PNGs rendered from its (36, 3) uvd."""
    synth = render_synthdepth(uvd)
    if "synthdepth" in kinds:
        write_depth_png(root / f"synthdepth_{kinect}_{frame:07d}.png", synth)
    if "depth" in kinds:
        write_depth_png(root / f"depth_{kinect}_{frame:07d}.png", render_real(synth, uvd))


def make_nyu_folder(root: Path, palms, kinect: int = 1) -> np.ndarray:
    """A folder with joint_data.mat and both PNGs for each palm uvd in `palms`; returns (N, 36, 3) Kinect-1 uvd."""
    root.mkdir(parents=True, exist_ok=True)
    uvd = np.stack([hand_uvd(p) for p in palms])
    write_joint_data(root, kinect_views(uvd))
    for index in range(len(uvd)):
        write_frame(root, kinect, index + 1, kinect_views(uvd)[kinect - 1, index])
    return uvd
