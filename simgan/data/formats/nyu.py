"""NYU Hand Pose reader (Tompson et al. 2014, the dataset's published layout).

A folder holds `joint_data.mat` (joint_uvd 3 × N × 36 × 3: kinect, frame, joint, (u px, v px, d mm))
and per-frame PNGs `depth_K_NNNNNNN.png` (real Kinect) / `synthdepth_K_NNNNNNN.png` (render of the
fitted hand model), K = kinect 1..3, NNNNNNN = frame, 1-based. Each PNG is 640×480 8-bit RGB with
depth_mm = G·256 + B.

What `read` makes of a frame (the SimGAN hand pipeline):
1. decode the depth PNG; for kind="depth" keep only the real pixels where the frame's synthdepth > 0
   (the paper "crops the pixels from real images using the synthetic images"), so real and synthetic
   crops show the same thing: the hand alone;
2. cut a DeepPrior cube of `cube_mm` around PALM_3 (joint 32): pixel bounds from ±cube/2 mm at the
   palm depth, zero padding outside the image, depth nearer than the cube clamped to its front face,
   farther than its back face → background;
3. resample to size × size with nearest neighbour (no blending of hand and background depths);
4. encode depth as uint8 with `depth_to_uint8` (near bright, background 0) and move the 14 evaluation
   joints into crop pixels with `uvd_to_crop`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from simgan.data.formats import Quarantined, Sample
from simgan.data.geometry import NYU_CROP_CENTRE_JOINT, NYU_EVAL_JOINTS, NYU_FX, NYU_FY, NYU_IMAGE_SIZE

KINDS = ("depth", "synthdepth")
NUM_JOINTS = 36
JOINT_FILE = "joint_data.mat"
EXPECTED_ENCODING = "640×480 8-bit RGB PNG with depth_mm = G·256 + B (NYU encoding)"
# Labels, in this order: joint_00_u, joint_00_v, joint_00_d, ..., joint_13_d (crop px, crop px, mm).
LABEL_NAMES = tuple(f"joint_{j:02d}_{c}" for j in range(len(NYU_EVAL_JOINTS)) for c in ("u", "v", "d"))


def frame_file(kind: str, kinect: int, frame: int) -> str:
    """The published file name of one frame, e.g. depth_1_0000001.png (frame is 1-based)."""
    return f"{kind}_{kinect}_{frame:07d}.png"


@dataclass(frozen=True)
class NyuFrame:
    """One frame to read: its PNG(s) and its own joints, so workers never reload joint_data.mat.

    uvd_bytes: the frame's (36, 3) float64 uvd as raw bytes (864 B: hashable and compact for the
    72,757 training frames); use the `uvd` property.
    mask_path: the frame's synthdepth PNG when kind == "depth" (real pixels are kept where it is > 0).
    """

    path: str
    mask_path: str | None
    kind: str
    kinect: int
    frame: int
    uvd_bytes: bytes
    size: int
    cube_mm: float

    @property
    def uvd(self) -> np.ndarray:
        """(36, 3) float64: u px, v px, d mm, in the 640×480 image."""
        return np.frombuffer(self.uvd_bytes, dtype=np.float64).reshape(NUM_JOINTS, 3)

    @property
    def id(self) -> str:
        return f"{self.kind}_{self.kinect}_{self.frame:07d}"


@dataclass(frozen=True)
class CropBounds:
    """The cube cut around PALM_3: pixel columns [u0, u1) and rows [v0, v1) of the 640×480 image
    (may reach outside it: zero padding), and the depth range [z0, z1] in mm."""

    u0: int
    u1: int
    v0: int
    v1: int
    z0: float
    z1: float


# ----------------------------------------------------------------------------------------- scan


def load_joint_uvd(path: str | Path, kinect: int = 1) -> np.ndarray:
    """joint_data.mat -> (N, 36, 3) float64 uvd of one Kinect (1-based).

    Reads only `joint_uvd` (the training file is ~190 MB per variable). A file written with N = 1
    and squeezed to (3, 36, 3), or (36, 3), is read as one frame. Raises FileNotFoundError or
    ValueError naming the file: without it the folder has no labels at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {JOINT_FILE}; an NYU folder needs it beside the depth_K_NNNNNNN.png files")
    try:
        mat = scipy.io.loadmat(path, variable_names=("joint_uvd",))
    except Exception as error:  # scipy raises ValueError, MatReadError, NotImplementedError (v7.3), ...
        raise ValueError(
            f"{path}: cannot read it as a MATLAB v5 file ({type(error).__name__}: {error}); expected "
            f"joint_uvd of shape 3×N×36×3"
        ) from error
    if "joint_uvd" not in mat:
        found = sorted(name for name, _, _ in scipy.io.whosmat(path))
        raise ValueError(f"{path}: no variable joint_uvd; found {found}; expected joint_uvd of shape 3×N×36×3")
    uvd = np.asarray(mat["joint_uvd"])
    if uvd.ndim < 2 or uvd.ndim > 4 or uvd.shape[-2:] != (NUM_JOINTS, 3) or not np.issubdtype(uvd.dtype, np.number):
        raise ValueError(
            f"{path}: joint_uvd has shape {uvd.shape} and dtype {uvd.dtype}; expected numbers of shape 3×N×36×3 "
            f"(kinect, frame, joint, uvd)"
        )
    if uvd.ndim == 2:  # (36, 3): one kinect, one frame
        uvd = uvd[None, None]
    elif uvd.ndim == 3:  # (K, 36, 3): the N = 1 squeeze
        uvd = uvd[:, None]
    if not 1 <= kinect <= uvd.shape[0]:
        raise ValueError(f"{path}: joint_uvd holds {uvd.shape[0]} Kinect(s); asked for kinect {kinect}")
    return np.ascontiguousarray(uvd[kinect - 1], dtype=np.float64)


def scan(
    root: str | Path, *, kind: str = "depth", kinect: int = 1, size: int = 224, cube_mm: float = 300.0
) -> tuple[list[NyuFrame], list[Quarantined]]:
    """One `NyuFrame` per frame of joint_data.mat, in frame order; missing PNGs quarantined here.

    kind: "depth" (real Kinect, masked by synthdepth) or "synthdepth" (the rendered hand).
    Quarantined while listing: a frame whose PNG is missing, a real frame whose synthdepth mask is
    missing, and a PNG of this kind and Kinect whose frame has no row in joint_data.mat.
    """
    if kind not in KINDS:
        raise ValueError(f"NYU kind must be one of {KINDS}; got {kind!r}")
    if kinect not in (1, 2, 3):
        raise ValueError(f"NYU kinect must be 1, 2 or 3; got {kinect!r}")
    if int(size) != size or size < 1:
        raise ValueError(f"NYU crop size must be a positive integer; got {size!r}")
    if not cube_mm > 0:
        raise ValueError(f"NYU cube_mm must be > 0; got {cube_mm!r}")
    root = Path(root)
    uvd = load_joint_uvd(root / JOINT_FILE, kinect)  # (N, 36, 3)
    names = {entry.name for entry in os.scandir(root) if entry.is_file()}

    pattern = re.compile(rf"{kind}_{kinect}_(\d{{7}})\.png")
    frames_on_disk = sorted(int(m.group(1)) for name in names if (m := pattern.fullmatch(name)))
    items: list[NyuFrame] = []
    quarantined: list[Quarantined] = []
    for index in range(uvd.shape[0]):
        frame = index + 1
        name = frame_file(kind, kinect, frame)
        if name not in names:
            quarantined.append(
                Quarantined(
                    str(root / name),
                    (f"missing: frame {frame} (kinect {kinect}) has a row in {JOINT_FILE} but no {name}"),
                )
            )
            continue
        mask_path = None
        if kind == "depth":
            mask_name = frame_file("synthdepth", kinect, frame)
            if mask_name not in names:
                quarantined.append(
                    Quarantined(
                        str(root / name), (f"no {mask_name} beside it: real depth is masked by the frame's synthdepth")
                    )
                )
                continue
            mask_path = str(root / mask_name)
        items.append(
            NyuFrame(
                path=str(root / name),
                mask_path=mask_path,
                kind=kind,
                kinect=kinect,
                frame=frame,
                uvd_bytes=uvd[index].tobytes(),
                size=int(size),
                cube_mm=float(cube_mm),
            )
        )
    for frame in frames_on_disk:
        if not 1 <= frame <= uvd.shape[0]:
            name = frame_file(kind, kinect, frame)
            quarantined.append(
                Quarantined(
                    str(root / name),
                    (f"no row in {JOINT_FILE}: it holds frames 1..{uvd.shape[0]}, this is frame {frame}"),
                )
            )
    return items, quarantined


# ----------------------------------------------------------------------------------------- pixels


def decode_depth_png(path: str | Path) -> np.ndarray:
    """An NYU depth PNG -> (480, 640) uint16 depth in mm (0 = no depth).

    Raises ValueError with the reason (undecodable, wrong mode, wrong size). The bytes are cast to
    uint16 before the shift: with NumPy 2, uint8 · 256 overflows instead of promoting.
    """
    try:
        with Image.open(path) as image:
            image.load()  # force the decode: a truncated file fails here, not later
            fmt, mode, (width, height) = image.format, image.mode, image.size
            if fmt == "PNG" and mode == "RGB" and (height, width) == NYU_IMAGE_SIZE:
                rgb = np.asarray(image)  # (480, 640, 3) uint8
    except FileNotFoundError:
        raise
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, zlib/struct errors
        raise ValueError(
            f"cannot decode it ({type(error).__name__}: {error}); expected a {EXPECTED_ENCODING}"
        ) from error
    if fmt != "PNG":
        raise ValueError(f"format {fmt}, expected a {EXPECTED_ENCODING}")
    if mode != "RGB":
        what = {"I;16": "16-bit grayscale", "I": "32-bit grayscale", "L": "8-bit grayscale"}.get(mode, mode)
        raise ValueError(f"mode {mode!r} ({what}), expected a {EXPECTED_ENCODING}")
    if (height, width) != NYU_IMAGE_SIZE:
        raise ValueError(f"size {width}×{height}, expected a {EXPECTED_ENCODING}")
    return (rgb[..., 1].astype(np.uint16) << 8) | rgb[..., 2]


def encode_depth_png(path: str | Path, depth_mm: np.ndarray) -> None:
    """(H, W) depth in mm (0..65535) -> RGB PNG with R = 0, G = depth >> 8, B = depth & 255 (the NYU encoding)."""
    depth = np.asarray(depth_mm)
    if depth.ndim != 2 or not np.isfinite(depth).all() or depth.min(initial=0) < 0 or depth.max(initial=0) > 65535:
        raise ValueError(
            f"depth for {path}: expected (H, W) values in 0..65535 mm; got shape {depth.shape}, "
            f"range {depth.min(initial=0)}..{depth.max(initial=0)}"
        )
    depth = np.rint(depth).astype(np.uint16)
    rgb = np.zeros(depth.shape + (3,), np.uint8)
    rgb[..., 1] = depth >> 8
    rgb[..., 2] = depth & 255
    Image.fromarray(rgb).save(path, format="PNG")


def crop_bounds(com_uvd: np.ndarray, cube_mm: float = 300.0) -> CropBounds:
    """DeepPrior's `comToBounds`: ±cube/2 mm at the centre's depth, projected with fx / fy.

    u0 = floor(u − (cube/2)·fx/d + 0.5), u1 = floor(u + (cube/2)·fx/d + 0.5); v likewise with fy.
    fx and fy differ by 0.16 %, so the box is square to within 1 px and is stretched to the square
    crop (DeepPrior instead pads to keep the aspect: a difference below one crop pixel).
    """
    u, v, d = (float(x) for x in com_uvd[:3])
    half = cube_mm / 2.0
    return CropBounds(
        u0=math.floor(u - half * NYU_FX / d + 0.5),
        u1=math.floor(u + half * NYU_FX / d + 0.5),
        v0=math.floor(v - half * NYU_FY / d + 0.5),
        v1=math.floor(v + half * NYU_FY / d + 0.5),
        z0=d - half,
        z1=d + half,
    )


def _source_index(start: int, stop: int, size: int) -> np.ndarray:
    """Nearest-neighbour sampling of [start, stop) into `size` pixels: output i reads pixel
    start + floor((i + 0.5)·(stop − start)/size), exactly Pillow's Image.NEAREST rule."""
    return start + np.floor((np.arange(size) + 0.5) * ((stop - start) / size)).astype(np.int64)


def crop_resize(depth: np.ndarray, bounds: CropBounds, size: int) -> np.ndarray:
    """(H, W) depth -> (size, size) nearest-neighbour resample of the box [v0, v1) × [u0, u1), 0 outside the image.

    Sampling the box directly (instead of cutting, padding, then Image.resize) costs size² reads
    however large the box is (a palm at 100 mm makes a box of ~1,800 px).
    """
    rows = _source_index(bounds.v0, bounds.v1, size)  # (size,)
    cols = _source_index(bounds.u0, bounds.u1, size)  # (size,)
    row_in = (rows >= 0) & (rows < depth.shape[0])
    col_in = (cols >= 0) & (cols < depth.shape[1])
    out = np.zeros((size, size), depth.dtype)
    out[np.ix_(row_in, col_in)] = depth[np.ix_(rows[row_in], cols[col_in])]
    return out


def uvd_to_crop(uvd: np.ndarray, bounds: CropBounds, size: int) -> np.ndarray:
    """(..., 3) uvd in the 640×480 image -> (..., 3) (u, v) in pixels of the size × size crop, d unchanged (mm).

    Integer coordinates are pixel centres in both images, so the joint lands on the crop pixel that
    `crop_resize` fills from the joint's own image pixel: u' = (u − u0 + 0.5)·size/(u1 − u0) − 0.5.
    """
    uvd = np.asarray(uvd, dtype=np.float64)
    u = (uvd[..., 0] - bounds.u0 + 0.5) * (size / (bounds.u1 - bounds.u0)) - 0.5
    v = (uvd[..., 1] - bounds.v0 + 0.5) * (size / (bounds.v1 - bounds.v0)) - 0.5
    return np.stack([u, v, uvd[..., 2]], axis=-1)


def depth_to_uint8(depth_mm: np.ndarray, z0: float, z1: float) -> np.ndarray:
    """Depth in mm -> uint8: background 0, the cube's depth range [z0, z1] onto 255 (near) .. 1 (far).

    value = round(255 − 254·(clip(d, z0, z1) − z0)/(z1 − z0)) for 0 < d ≤ z1; 0 for d = 0 (no depth,
    masked out, padding) and d > z1 (behind the cube). Pixels nearer than z0 clamp to 255 (DeepPrior).
    Near is bright so the map is monotone with background as the farthest value, as DeepPrior fills
    background with the back face; 1 keeps the back face apart from background. Step ≈ 1.18 mm
    for a 300 mm cube. `uint8_to_depth` inverts it.
    """
    depth = np.asarray(depth_mm, dtype=np.float32)
    scaled = 255.0 - 254.0 * (np.clip(depth, z0, z1) - z0) / (z1 - z0)
    foreground = (depth > 0) & (depth <= z1)
    return np.where(foreground, np.rint(scaled), 0).astype(np.uint8)


def uint8_to_depth(image: np.ndarray, z0: float, z1: float) -> np.ndarray:
    """Inverse of `depth_to_uint8`: uint8 -> float32 depth in mm, background (0) -> 0."""
    image = np.asarray(image)
    depth = z0 + (255.0 - image.astype(np.float32)) * ((z1 - z0) / 254.0)
    return np.where(image > 0, depth, 0.0).astype(np.float32)


# ----------------------------------------------------------------------------------------- read


def _check_joints(uvd: np.ndarray) -> str | None:
    """Why a frame's joints cannot be used, or None."""
    if not np.isfinite(uvd).all():
        bad = sorted({int(j) for j in np.argwhere(~np.isfinite(uvd))[:, 0]})
        return f"joints not finite (NaN or inf) in {JOINT_FILE}: joint indices {bad}"
    com_d = uvd[NYU_CROP_CENTRE_JOINT, 2]
    if com_d <= 0:
        return f"PALM_3 (joint {NYU_CROP_CENTRE_JOINT}) depth is {com_d:g} mm; expected > 0"
    joints = uvd[list(NYU_EVAL_JOINTS)]
    height, width = NYU_IMAGE_SIZE
    inside = (joints[:, 0] >= 0) & (joints[:, 0] < width) & (joints[:, 1] >= 0) & (joints[:, 1] < height)
    if not inside.any():
        return f"all {len(NYU_EVAL_JOINTS)} evaluation joints lie outside the {width}×{height} image"
    return None


def read(item: NyuFrame) -> list[Sample | Quarantined]:
    """Decode, mask, crop and encode one frame -> [Sample] or [Quarantined] (see the module docstring)."""
    uvd = item.uvd
    reason = _check_joints(uvd)
    if reason is not None:
        return [Quarantined(item.path, f"frame {item.frame} (kinect {item.kinect}): {reason}")]
    bounds = crop_bounds(uvd[NYU_CROP_CENTRE_JOINT], item.cube_mm)
    if bounds.u1 <= bounds.u0 or bounds.v1 <= bounds.v0:
        return [Quarantined(item.path, f"empty crop {bounds} around PALM_3 at {uvd[NYU_CROP_CENTRE_JOINT]}")]

    try:
        depth = crop_resize(decode_depth_png(item.path), bounds, item.size)  # (S, S) uint16 mm
    except (ValueError, FileNotFoundError) as error:
        return [Quarantined(item.path, str(error))]
    if item.mask_path is not None:
        try:
            mask = crop_resize(decode_depth_png(item.mask_path), bounds, item.size)  # (S, S) uint16 mm
        except (ValueError, FileNotFoundError) as error:
            return [Quarantined(item.mask_path, f"synthdepth mask of {Path(item.path).name}: {error}")]
        depth = np.where(mask > 0, depth, 0)

    image = depth_to_uint8(depth, bounds.z0, bounds.z1)  # (S, S) uint8
    if not image.any():
        return [
            Quarantined(
                item.path,
                (
                    f"no depth pixel within the {item.cube_mm:g} mm cube around PALM_3 "
                    f"(depth {bounds.z0:g}..{bounds.z1:g} mm"
                    f"{', after masking by synthdepth' if item.mask_path else ''})"
                ),
            )
        ]

    joints = uvd_to_crop(uvd[list(NYU_EVAL_JOINTS)], bounds, item.size)  # (14, 3) crop px, crop px, mm
    labels = dict(zip(LABEL_NAMES, (float(x) for x in joints.reshape(-1))))
    com = uvd[NYU_CROP_CENTRE_JOINT]
    metadata: dict[str, float | str] = {
        "kind": item.kind,
        "kinect": item.kinect,
        "frame": item.frame,
        "com_u": float(com[0]),
        "com_v": float(com[1]),
        "com_z": float(com[2]),
        "cube_mm": item.cube_mm,
        "crop_u0": bounds.u0,
        "crop_u1": bounds.u1,
        "crop_v0": bounds.v0,
        "crop_v1": bounds.v1,
        "crop_z0": bounds.z0,
        "crop_z1": bounds.z1,
    }
    if item.mask_path is not None:
        metadata["mask"] = item.mask_path
    return [Sample(id=item.id, source=item.path, image=image, labels=labels, metadata=metadata)]
