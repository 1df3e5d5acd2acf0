"""Hand simulators in the NYU Hand Pose format: clean synthetic depth and Kinect-like "real" depth.

Hand model (millimetres; hand frame: origin at the wrist centre, +y toward the fingers, +x toward the
thumb, the palm facing −z, i.e. the camera, at the identity pose: a right hand):
  - palm, carpal block and thenar eminence: ellipsoids; the wrist and start of the forearm: a capsule;
    knuckles: short capsules;
  - five fingers of three capsule segments each (thumb: metacarpal, proximal, distal; fingers:
    proximal, middle, distal), radii tapering toward the tips;
  - per frame: global scale 0.9–1.1, per-finger curl (MCP, PIP, DIP = 0.7·PIP flexion plus noise, slight
    hyper-extension allowed), finger spread, thumb abduction / opposition / flexion, global rotation
    (palm or back toward the camera, roll ±120°, tilt ±50°) and the palm centre at 550–850 mm in front of
    the camera, inside the central part of the 640×480 image.
Rendering: exact perspective ray casting of every primitive (ellipsoids, capsules) over its
projected bounding box with the NYU Kinect intrinsics (geometry.NYU_FX, ...; pixel (row v, column u)
is the ray through (u, v)), kept in a z-buffer; depth = z in mm, rounded to integers when written.

Joints (NYU order, geometry.NYU_JOINT_NAMES), placed on the model's skeleton (bone axes, so a joint's
d is the depth of the bone centre, about one radius behind the visible surface): for each finger chain
J1 (MCP; thumb: CMC), J2 (PIP; thumb: MCP), J3 (DIP; thumb: IP) and the tip (end of the distal bone):
    KNU3_A tip, KNU3_B J3, KNU2_A midpoint J2–J3, KNU2_B J2, KNU1_A J1, KNU1_B midpoint J1–J2
(tip/DIP/PIP/MCP as in the chainer-NYU mapping; the two midpoints are this simulator's choice), and
    PALM_1 wrist little-finger side, PALM_2 wrist thumb side, PALM_3 palm centre (the crop centre),
    PALM_4 palm edge below the little finger, PALM_5 palm edge below the index, PALM_6 wrist centre.
joint_uvd[0] are the projections of those points; joint_xyz[0] = geometry.nyu_uvd_to_xyz(joint_uvd[0]).
Kinects 2 and 3 are two fixed virtual side cameras (one above, one to the right, both aimed at a point
750 mm in front of Kinect 1): joint_xyz[k] = R_k (xyz_1 − P_k), joint_uvd[k] its projection with the same
intrinsics (then xyz recomputed from uvd). Only Kinect-1 images are written.

Synthetic set (`hand/synthetic/`): synthdepth_1_NNNNNNN.png, the clean hand render, background 0.
"Real" set (`hand/real/`): other poses (own random stream: the two sets are unpaired), and for each frame
synthdepth_1_NNNNNNN.png (the clean render of that pose, used by readers as the hand mask) and
depth_1_NNNNNNN.png, what a Kinect v1 would see:
  1. a scene: the rest of the forearm (bent at the wrist back toward the body, usually leaving the
     image), a torso behind (1.05–1.35 m), a tilted wall (1.3–2.6 m), a table plane below and 0–3 boxes
     of clutter (0.9–1.8 m);
  2. projector shadows: pixels the IR projector (75 mm to the right) cannot see, left of every depth step,
     read 0;
  3. ragged edges: in blocky (4×4 px) random patterns along depth discontinuities pixels drop out (0),
     take the foreground or the background depth (edge fattening / flying pixels);
  4. holes: random blobs and steep (grazing-angle) surface pixels read 0;
  5. depth noise growing with z² (per pixel, σ = 0.5·z² + 0.3 mm with z in metres) plus a smooth wobble
     (σ = 1.5·z² mm), then disparity quantisation to 1/8 px (steps of z²/352800 mm) and whole
     millimetres; out-of-range (< 400 or > 4000 mm) reads 0.
PNG encoding (DATA_FORMATS §4.2): 640×480 RGB, depth_mm = G·256 + B, R = 0.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial.transform import Rotation

from simgan.data.geometry import (
    NYU_CX,
    NYU_CY,
    NYU_FX,
    NYU_FY,
    NYU_IMAGE_SIZE,
    NYU_JOINT_NAMES,
    nyu_uvd_to_xyz,
    nyu_xyz_to_uvd,
)
from simgan.data.simulators.eyes import save_mat
from simgan.io import atomic_write

HEIGHT, WIDTH = NYU_IMAGE_SIZE
STREAM = {"synthetic": 21, "real": 22}
_SCENE_STREAM = 23
BASELINE_MM = 75.0
_QUANT = 8 * NYU_FX * BASELINE_MM  # depth (mm) × disparity (1/8 px) of a Kinect v1

# finger geometry: name, MCP (x, y) in the hand frame, bone lengths, radii, spread direction
_FINGERS = (  # NYU order F1 little, F2 ring, F3 middle, F4 index
    ("F1", (-28.0, 80.0), (33.0, 19.0, 18.0), (8.5, 7.5, 6.5), -2.0),
    ("F2", (-10.0, 87.0), (42.0, 27.0, 21.0), (9.5, 8.5, 7.5), -1.0),
    ("F3", (9.0, 89.0), (45.0, 28.0, 21.0), (10.0, 9.0, 8.0), 0.0),
    ("F4", (27.0, 85.0), (40.0, 24.0, 20.0), (9.5, 8.5, 7.5), 1.0),
)
_THUMB_CMC = np.array([22.0, 14.0, -4.0])
_THUMB_LENGTHS, _THUMB_RADII = (42.0, 32.0, 26.0), (12.0, 10.5, 9.5)
_PALM_CENTRE = np.array([0.0, 45.0, 0.0])
_PALM_POINTS = np.array([[-25.0, 0, 0], [25.0, 0, 0], _PALM_CENTRE, [-32.0, 68, 0], [32.0, 68, 0], [0.0, 0, 0]])


def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@dataclass(frozen=True)
class HandPose:
    """Everything that fixes one frame's hand: global pose and joint angles (radians)."""

    rotation: np.ndarray  # (3, 3) hand frame -> camera frame (NYU xyz, y up)
    translation: np.ndarray  # (3,) mm
    scale: float
    curls: np.ndarray  # (4, 3) MCP, PIP, DIP flexion per finger (F1..F4)
    spread: float
    thumb: np.ndarray  # (4,) abduction, opposition, MCP flexion, IP flexion


def sample_pose(rng: np.random.Generator) -> HandPose:
    """A random plausible hand pose in front of the Kinect."""
    base = rng.uniform(0, 1)
    curls = np.zeros((4, 3))
    for f in range(4):
        curl = float(np.clip(base + rng.normal(0, 0.25), 0, 1)) if rng.random() > 0.2 else float(rng.uniform(0, 1))
        mcp = math.radians(curl * 80 + rng.normal(0, 8))
        pip = math.radians(curl * 100 + rng.normal(0, 8))
        curls[f] = [max(mcp, math.radians(-15)), max(pip, 0.0), max(0.7 * pip, 0.0)]
    thumb_curl = float(np.clip(base + rng.normal(0, 0.3), 0, 1))
    thumb = np.radians([rng.uniform(10, 60), rng.uniform(0, 50), thumb_curl * 50, thumb_curl * 70])
    back = rng.random() < 0.3
    yaw = math.radians(rng.uniform(-60, 60) + (180 if back else 0))
    rotation = _rz(math.radians(rng.uniform(-120, 120))) @ _ry(yaw) @ _rx(math.radians(rng.uniform(-50, 50)))
    scale = float(rng.uniform(0.9, 1.1))
    u, v, z = rng.uniform(200, 440), rng.uniform(150, 330), rng.uniform(550, 850)
    centre = nyu_uvd_to_xyz(np.array([u, v, z]))
    translation = centre - rotation @ (_PALM_CENTRE * scale)
    return HandPose(rotation, translation, scale, curls, float(math.radians(rng.uniform(-5, 20))), thumb)


def frame_pose(seed: int, domain: str, index: int) -> HandPose:
    """The pose of frame `index` (1-based) of a domain ("synthetic" or "real") for `seed`."""
    return sample_pose(np.random.default_rng([seed, STREAM[domain], index]))


def _chains(pose: HandPose) -> list[np.ndarray]:
    """Per finger (F1..F4, then thumb) the chain J1, J2, J3, tip in the hand frame (mm, unscaled)."""
    chains = []
    for f, (_, mcp, lengths, _, spread_sign) in enumerate(_FINGERS):
        abduction = _rz(-pose.spread * spread_sign * (1 - 0.7 * pose.curls[f, 0] / math.radians(80)))
        points = [np.array([mcp[0], mcp[1], 0.0])]
        angle = 0.0
        for k in range(3):
            angle += pose.curls[f, k]
            points.append(points[-1] + lengths[k] * (abduction @ np.array([0, math.cos(angle), -math.sin(angle)])))
        chains.append(np.stack(points))
    abduction, opposition, flex_mcp, flex_ip = pose.thumb
    d0 = _rz(-abduction) @ np.array([0.0, 1.0, 0.0])
    d0 = d0 * math.cos(opposition) + np.array([0.0, 0.0, -1.0]) * math.sin(opposition)
    d0 /= np.linalg.norm(d0)
    target = np.array([-0.6, 0.2, -0.8])
    axis = np.cross(d0, target)
    axis /= np.linalg.norm(axis)
    points, angle = [_THUMB_CMC.copy()], 0.0
    for k, flex in enumerate((0.0, flex_mcp, flex_ip)):
        angle += flex
        direction = Rotation.from_rotvec(axis * angle).apply(d0)
        points.append(points[-1] + _THUMB_LENGTHS[k] * direction)
    chains.append(np.stack(points))
    return chains


def _to_camera(pose: HandPose, points: np.ndarray) -> np.ndarray:
    return (np.asarray(points) * pose.scale) @ pose.rotation.T + pose.translation


def joints_xyz(pose: HandPose) -> np.ndarray:
    """(36, 3) NYU joints in Kinect-1 camera coordinates (mm, y up)."""
    rows = []
    for chain in _chains(pose):
        j1, j2, j3, tip = chain
        rows += [tip, j3, (j2 + j3) / 2, j2, j1, (j1 + j2) / 2]
    rows += list(_PALM_POINTS)
    assert len(rows) == len(NYU_JOINT_NAMES)
    return _to_camera(pose, np.stack(rows))


def joints_uvd(pose: HandPose) -> np.ndarray:
    """(36, 3) (u px, v px, d mm) of the joints for Kinect 1."""
    return nyu_xyz_to_uvd(joints_xyz(pose))


def hand_primitives(pose: HandPose) -> list[tuple]:
    """The hand's solids in camera coordinates: ("ellipsoid", centre, axes (3×3 columns), radii) and
    ("capsule", a, b, radius)."""
    s, rot = pose.scale, pose.rotation
    solids = []

    def ellipsoid(centre, radii, local=np.eye(3)):
        solids.append(("ellipsoid", _to_camera(pose, centre), rot @ local, np.asarray(radii) * s))

    ellipsoid([0.0, 45.0, 0.0], [40.0, 50.0, 14.0])  # palm
    ellipsoid([0.0, 8.0, 1.0], [30.0, 22.0, 17.0])  # carpals
    solids.append(("capsule", _to_camera(pose, [0.0, -2.0, 2.0]), _to_camera(pose, [0.0, -45.0, 2.0]), 23.0 * s))
    ellipsoid([21.0, 32.0, -5.0], [16.0, 25.0, 12.0], _rz(-0.35))  # thenar eminence
    chains = _chains(pose)
    for (_, _, _, radii, _), chain in zip(_FINGERS, chains[:4]):
        solids.append(("capsule", _to_camera(pose, chain[0] - [0, 8, 0]), _to_camera(pose, chain[0]), 11.0 * s))
        for k in range(3):
            solids.append(("capsule", _to_camera(pose, chain[k]), _to_camera(pose, chain[k + 1]), radii[k] * s))
    for k in range(3):
        solids.append(
            ("capsule", _to_camera(pose, chains[4][k]), _to_camera(pose, chains[4][k + 1]), _THUMB_RADII[k] * s)
        )
    return solids


_RAYS: tuple[np.ndarray, np.ndarray] | None = None


def _ray_cache() -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) ray directions with d_z = 1 (so the ray parameter is the depth z), their squared lengths."""
    global _RAYS
    if _RAYS is None:
        v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
        rays = np.stack([(u - NYU_CX) / NYU_FX, (NYU_CY - v) / NYU_FY, np.ones_like(u)], -1)
        _RAYS = (rays, (rays * rays).sum(-1))
    return _RAYS


def _bbox(centre: np.ndarray, radius: float):
    """Pixel window (row slice, column slice) that holds the projection of a sphere, or None."""
    z = centre[2]
    if z - radius <= 10:
        return None
    u, v, _ = nyu_xyz_to_uvd(centre)
    r_px = NYU_FX * radius / (z - radius) + 2
    rows = slice(max(0, int(v - r_px)), min(HEIGHT, int(v + r_px) + 2))
    cols = slice(max(0, int(u - r_px)), min(WIDTH, int(u + r_px) + 2))
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return None
    return rows, cols


def _hit_sphere(d, dd, c, r):
    dc = d @ c
    disc = dc * dc - dd * (c @ c - r * r)
    return np.where(disc >= 0, (dc - np.sqrt(np.clip(disc, 0, None))) / dd, np.inf)


def _hit_capsule(d, dd, a, b, r):
    axis = b - a
    length = float(np.linalg.norm(axis))
    w = axis / max(length, 1e-9)
    m = -a
    dw, mw = d @ w, float(m @ w)
    A = dd - dw * dw
    B = 2 * (d @ m - dw * mw)
    C = float(m @ m) - mw * mw - r * r
    disc = B * B - 4 * A * C
    t = (-B - np.sqrt(np.clip(disc, 0, None))) / (2 * np.maximum(A, 1e-12))
    along = t * dw + mw
    cylinder = np.where((disc >= 0) & (along >= 0) & (along <= length), t, np.inf)
    return np.minimum(cylinder, np.minimum(_hit_sphere(d, dd, a, r), _hit_sphere(d, dd, b, r)))


def _hit_ellipsoid(d, c, axes, radii):
    local_d = (d @ axes) / radii
    local_o = (-c @ axes) / radii
    A = (local_d * local_d).sum(-1)
    B = 2 * (local_d @ local_o)
    C = float(local_o @ local_o) - 1
    disc = B * B - 4 * A * C
    return np.where(disc >= 0, (-B - np.sqrt(np.clip(disc, 0, None))) / (2 * A), np.inf)


def render(solids: list[tuple], depth: np.ndarray | None = None) -> np.ndarray:
    """Z-buffer the solids into `depth` (float64 (480, 640), inf = nothing), returned."""
    if depth is None:
        depth = np.full((HEIGHT, WIDTH), np.inf)
    rays, squared = _ray_cache()
    for solid in solids:
        kind = solid[0]
        if kind == "ellipsoid":
            _, c, axes, radii = solid
            window = _bbox(c, float(np.max(radii)))
        else:
            _, a, b, r = solid
            window = _bbox((a + b) / 2, float(np.linalg.norm(b - a)) / 2 + r)
        if window is None:
            continue
        d = rays[window]
        t = _hit_ellipsoid(d, c, axes, radii) if kind == "ellipsoid" else _hit_capsule(d, squared[window], a, b, r)
        np.minimum(depth[window], t, out=depth[window])
    return depth


def render_hand(pose: HandPose) -> np.ndarray:
    """Clean depth of the hand model, float64 mm, 0 where there is no hand."""
    depth = render(hand_primitives(pose))
    depth[~np.isfinite(depth)] = 0
    return depth


# ------------------------------------------------------------------------------------ Kinect-like


def _smooth_noise(rng, sigma: float) -> np.ndarray:
    """Unit-variance smooth random field over the image: Gaussian-filtered noise on a quarter-resolution grid,
    repeated over 4×4-pixel blocks (Kinect depth is blocky at that scale anyway)."""
    field = ndimage.gaussian_filter(
        rng.standard_normal((HEIGHT // 4, WIDTH // 4), dtype=np.float32), sigma, mode="wrap"
    )
    field /= field.std() + 1e-9
    return np.repeat(np.repeat(field, 4, 0), 4, 1)


def _neighbourhood(values: np.ndarray, op) -> np.ndarray:
    """op (np.minimum, np.maximum, np.logical_or) over each pixel and its 4 neighbours."""
    out = values.copy()
    op(out[1:], values[:-1], out=out[1:])
    op(out[:-1], values[1:], out=out[:-1])
    op(out[:, 1:], values[:, :-1], out=out[:, 1:])
    op(out[:, :-1], values[:, 1:], out=out[:, :-1])
    return out


def scene(pose: HandPose, hand: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Depth of the hand (its clean render, 0 = none) and its surroundings (float, inf = nothing)."""
    solids = []
    # the rest of the forearm, bent at the wrist so that it goes back toward the body (away from the
    # camera), in pieces (smaller windows to ray-cast)
    wrist = _to_camera(pose, [0.0, -30.0, 2.0])
    direction = pose.rotation @ np.array([0.0, -1.0, 0.0])
    direction[2] = max(direction[2], 0.0) + rng.uniform(0.3, 0.7)
    direction /= np.linalg.norm(direction)
    for k in range(4):
        solids.append(
            ("capsule", wrist + direction * 100 * k, wrist + direction * 100 * (k + 1), (25.0 + 3 * k) * pose.scale)
        )
    depth = render(solids, np.where(hand > 0, hand, np.inf))
    # rays are separable: d_x depends on the column only, d_y on the row only
    ray_x = ((np.arange(WIDTH) - NYU_CX) / NYU_FX)[None, :]
    ray_y = ((NYU_CY - np.arange(HEIGHT)) / NYU_FY)[:, None]
    # a torso behind: a front-facing half-ellipsoid (260 × 380 × 130 mm), bulging toward the camera
    x0, y0, z0 = rng.uniform(-250, 250), rng.uniform(-550, -250), rng.uniform(1050, 1350)
    q = ((ray_x * z0 - x0) / 260.0) ** 2 + ((ray_y * z0 - y0) / 380.0) ** 2
    inside = q < 1
    depth[inside] = np.minimum(depth[inside], z0 - 130.0 * np.sqrt(1 - q[inside]))
    # wall z = D + a·x + b·y  ->  along the ray (x, y) = z·(d_x, d_y)
    distance, a, b = rng.uniform(1300, 2600), rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)
    wall = distance / np.clip(1 - a * ray_x - b * ray_y, 0.2, None)
    # table top y = height (below the camera), from 350 mm to the wall
    height = rng.uniform(-450, -260)
    table = np.where(ray_y < -1e-6, height / np.minimum(ray_y, -1e-6), np.inf)  # (H, 1)
    table = np.where((table >= 350) & (table <= wall), table, np.inf)
    np.minimum(depth, np.minimum(wall, table), out=depth)
    for _ in range(int(rng.integers(0, 4))):  # boxes of clutter: their front faces
        z = rng.uniform(900, 1800)
        x0, y0 = rng.uniform(-700, 600), rng.uniform(-500, 300)
        u0, v1, _ = nyu_xyz_to_uvd(np.array([x0, y0, z]))
        u1, v0, _ = nyu_xyz_to_uvd(np.array([x0 + rng.uniform(100, 400), y0 + rng.uniform(100, 400), z]))
        rows = slice(int(np.clip(v0, 0, HEIGHT)), int(np.clip(v1, 0, HEIGHT)))
        cols = slice(int(np.clip(u0, 0, WIDTH)), int(np.clip(u1, 0, WIDTH)))
        np.minimum(depth[rows, cols], z, out=depth[rows, cols])
    return depth


def kinect(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Kinect v1 artifacts on a clean scene depth (float, inf = nothing) -> uint16 mm, 0 = no reading."""
    z = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
    valid = z > 0
    # projector shadows: projector column x' = x − disparity; a pixel is hidden when a closer pixel to its
    # right maps to a projector column left of its own
    disparity = np.zeros_like(z)
    np.divide(np.float32(NYU_FX * BASELINE_MM), z, out=disparity, where=valid)
    projector = np.arange(WIDTH, dtype=np.float32)[None, :] - disparity
    right_min = np.minimum.accumulate(projector[:, ::-1], axis=1)[:, ::-1]
    shadow = np.zeros_like(valid)
    shadow[:, :-1] = valid[:, :-1] & (right_min[:, 1:] < projector[:, :-1] - 0.5)
    # ragged, blocky edges along depth discontinuities
    big = np.where(valid, z, np.float32(1e5))
    near, far = _neighbourhood(big, np.minimum), _neighbourhood(big, np.maximum)
    band = far - near > 25
    for _ in range(int(rng.integers(1, 3))):
        band = _neighbourhood(band, np.logical_or)
    blocks = np.repeat(np.repeat(rng.random((HEIGHT // 4, WIDTH // 4), dtype=np.float32), 4, 0), 4, 1)
    pick = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    out = z.copy()
    ragged = band & (blocks < 0.55)
    out[ragged & (pick < 0.45)] = 0
    fatten = ragged & (pick >= 0.45) & (pick < 0.75) & (near < 1e5)
    out[fatten] = near[fatten]
    bleed = ragged & (pick >= 0.75) & (far < 1e5)
    out[bleed] = far[bleed]
    out[ragged & (pick >= 0.75) & (far >= 1e5)] = 0
    out[shadow] = 0
    # holes: random blobs and steep (grazing-angle) surface pixels
    blobs = _smooth_noise(rng, 1.5) > rng.uniform(2.0, 2.6)
    slope = np.zeros_like(z)
    slope[:, 1:] = np.abs(np.diff(z, axis=1))
    slope[1:, :] = np.maximum(slope[1:, :], np.abs(np.diff(z, axis=0)))
    steep = valid & (slope > np.maximum(12.0, 0.02 * z)) & (slope < 25)
    out[blobs | (steep & (pick < 0.6))] = 0
    # noise growing with z², a smooth wobble, disparity quantisation to 1/8 px, whole millimetres
    has = out > 0
    metres = out * np.float32(1e-3)
    squared = metres * metres
    unit_noise = (rng.random((HEIGHT, WIDTH), dtype=np.float32) - 0.5) * np.float32(math.sqrt(12))  # variance 1
    noisy = out + unit_noise * (0.5 * squared + 0.3) + _smooth_noise(rng, 5.0) * 1.5 * squared
    noisy = np.where(has, noisy, 1.0).astype(np.float64)
    quantised = _QUANT / np.maximum(np.round(_QUANT / noisy), 1.0)
    result = np.where(has, np.round(quantised), 0)
    result[(result < 400) | (result > 4000)] = 0
    return result.astype(np.uint16)


# ------------------------------------------------------------------------------------ files


def encode_depth_png(depth_mm: np.ndarray, compress_level: int = 6) -> bytes:
    """uint16 mm -> NYU RGB PNG bytes (R = 0, G = high byte, B = low byte)."""
    depth_mm = np.asarray(depth_mm, dtype=np.uint16)
    rgb = np.stack(
        [np.zeros_like(depth_mm, dtype=np.uint8), (depth_mm >> 8).astype(np.uint8), (depth_mm & 255).astype(np.uint8)],
        -1,
    )
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", compress_level=compress_level)
    return buffer.getvalue()


def clean_depth_mm(pose: HandPose) -> np.ndarray:
    """What synthdepth_1_*.png holds for a pose: the hand render in whole mm, background 0."""
    return np.round(render_hand(pose)).astype(np.uint16)


def write_frames(folder: Path, seed: int, domain: str, indices: range) -> np.ndarray:
    """Write frames `indices` (1-based) of a domain; returns their Kinect-1 joint uvd (n, 36, 3)."""
    folder = Path(folder)
    uvd = []
    for index in indices:
        pose = frame_pose(seed, domain, index)
        synth = clean_depth_mm(pose)
        data = encode_depth_png(synth, compress_level=3)
        atomic_write(folder / f"synthdepth_1_{index:07d}.png", lambda handle, data=data: handle.write(data))
        if domain == "real":
            rng = np.random.default_rng([seed, _SCENE_STREAM, index])
            real = encode_depth_png(kinect(scene(pose, synth.astype(np.float64), rng), rng), compress_level=4)
            atomic_write(folder / f"depth_1_{index:07d}.png", lambda handle, real=real: handle.write(real))
        uvd.append(joints_uvd(pose))
    return np.stack(uvd) if uvd else np.zeros((0, len(NYU_JOINT_NAMES), 3))


def _look_at(position, target, up):
    forward = np.asarray(target, float) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(up, forward)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward])


# Kinects 2 ("top") and 3 ("side"): rotation rows = (right, up, forward) in Kinect-1 coordinates, position
KINECTS = (
    (_look_at(np.array([0.0, 650.0, 300.0]), [0, 0, 750], np.array([0.0, 0.0, 1.0])), np.array([0.0, 650.0, 300.0])),
    (_look_at(np.array([650.0, 0.0, 350.0]), [0, 0, 750], np.array([0.0, 1.0, 0.0])), np.array([650.0, 0.0, 350.0])),
)


def joint_arrays(uvd1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kinect-1 uvd (N, 36, 3) -> joint_uvd, joint_xyz (3, N, 36, 3) float64."""
    uvd1 = np.asarray(uvd1, dtype=np.float64)
    xyz1 = nyu_uvd_to_xyz(uvd1)
    uvd_all, xyz_all = [uvd1], [xyz1]
    for rotation, position in KINECTS:
        uvd_k = nyu_xyz_to_uvd((xyz1 - position) @ rotation.T)
        uvd_all.append(uvd_k)
        xyz_all.append(nyu_uvd_to_xyz(uvd_k))
    return np.stack(uvd_all), np.stack(xyz_all)


def write_joint_data(folder: Path, uvd1: np.ndarray) -> None:
    """joint_data.mat as MATLAB saves it: joint_names (1, 36) cell, joint_uvd / joint_xyz (3, N, 36, 3)."""
    joint_uvd, joint_xyz = joint_arrays(uvd1)
    names = np.empty((1, len(NYU_JOINT_NAMES)), dtype=object)
    for j, name in enumerate(NYU_JOINT_NAMES):
        names[0, j] = name
    save_mat(Path(folder) / "joint_data.mat", {"joint_names": names, "joint_uvd": joint_uvd, "joint_xyz": joint_xyz})
