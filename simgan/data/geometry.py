"""Coordinate conventions shared by the readers and the simulators that write the same formats.

Gaze (the MPIIGaze and UnityEyes conventions, as their published readers use them): the MPIIGaze normalised
camera frame, x right, y down, z forward; a gaze vector points from the eye to the target (toward the camera: z < 0).
    pitch = asin(-g_y)        > 0 looking up
    yaw   = atan2(-g_x, -g_z) > 0 looking toward image-left
UnityEyes' look_vec is in Unity's frame (y up): g = (lx, -ly, lz). On the real UnityEyes sample,
look_vec (0.3404, 0.3879, -0.8566) gives pitch +22.82°, yaw -21.67°.

NYU hand (§4.5): Kinect intrinsics from the dataset's convert_xyz_to_uvd.m; xyz in mm with y UP,
v in pixels growing DOWN: u = FX·x/z + CX, v = CY − FY·y/z, d = z.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------------------- gaze


def pitch_yaw_from_gaze(gaze: np.ndarray) -> np.ndarray:
    """(..., 3) gaze vectors (need not be unit) -> (..., 2) (pitch, yaw) in radians."""
    gaze = np.asarray(gaze, dtype=np.float64)
    unit = gaze / np.linalg.norm(gaze, axis=-1, keepdims=True)
    pitch = np.arcsin(np.clip(-unit[..., 1], -1.0, 1.0))
    yaw = np.arctan2(-unit[..., 0], -unit[..., 2])
    return np.stack([pitch, yaw], axis=-1)


def gaze_labels(gaze: np.ndarray) -> dict[str, float]:
    """One gaze vector -> the gaze task's label columns (gaze_x/y/z as given, pitch_rad, yaw_rad), as every
    gaze reader writes them."""
    pitch, yaw = pitch_yaw_from_gaze(gaze)
    return {
        "gaze_x": float(gaze[0]),
        "gaze_y": float(gaze[1]),
        "gaze_z": float(gaze[2]),
        "pitch_rad": float(pitch),
        "yaw_rad": float(yaw),
    }


def gaze_from_pitch_yaw(pitch_yaw: np.ndarray) -> np.ndarray:
    """(..., 2) (pitch, yaw) radians -> (..., 3) unit gaze vectors, the inverse of `pitch_yaw_from_gaze`."""
    pitch_yaw = np.asarray(pitch_yaw, dtype=np.float64)
    pitch, yaw = pitch_yaw[..., 0], pitch_yaw[..., 1]
    return np.stack([-np.cos(pitch) * np.sin(yaw), -np.sin(pitch), -np.cos(pitch) * np.cos(yaw)], axis=-1)


def gaze_from_unity_look_vec(look_vec: np.ndarray) -> np.ndarray:
    """UnityEyes look_vec (..., 3 or 4) in Unity's y-up frame -> unit gaze (..., 3) in the MPIIGaze frame."""
    look = np.asarray(look_vec, dtype=np.float64)[..., :3]
    gaze = look * np.array([1.0, -1.0, 1.0])
    return gaze / np.linalg.norm(gaze, axis=-1, keepdims=True)


def unity_look_vec_from_gaze(gaze: np.ndarray) -> np.ndarray:
    """Unit gaze (..., 3) in the MPIIGaze frame -> UnityEyes look_vec (..., 3) (y up)."""
    return np.asarray(gaze, dtype=np.float64) * np.array([1.0, -1.0, 1.0])


# UnityEyes renders the eyeball centre at the image centre; GazeML's eyeball radius at 800×600.
UNITYEYES_EYEBALL_RADIUS_PX_AT_800x600 = 71.7593

# ----------------------------------------------------------------------------------------- NYU hand

NYU_FX, NYU_FY, NYU_CX, NYU_CY = 588.036865, 587.075073, 320.0, 240.0
NYU_IMAGE_SIZE = (480, 640)  # (H, W)
NYU_JOINT_NAMES = tuple(
    [f"F{f}_KNU{k}_{s}" for f in (1, 2, 3, 4) for k in (3, 2, 1) for s in ("A", "B")]
    + [f"TH_KNU{k}_{s}" for k in (3, 2, 1) for s in ("A", "B")]
    + [f"PALM_{i}" for i in range(1, 7)]
)
# The 14 joints every NYU evaluation uses (DeepPrior restrictedJointsEval); index 13 (PALM_3) is the crop centre.
NYU_EVAL_JOINTS = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)
NYU_CROP_CENTRE_JOINT = 32


def nyu_uvd_to_xyz(uvd: np.ndarray) -> np.ndarray:
    """(..., 3) (u px, v px, d mm) -> (..., 3) xyz mm, y up (convert_uvd_to_xyz.m)."""
    uvd = np.asarray(uvd, dtype=np.float64)
    z = uvd[..., 2]
    x = (uvd[..., 0] - NYU_CX) * z / NYU_FX
    y = (NYU_CY - uvd[..., 1]) * z / NYU_FY
    return np.stack([x, y, z], axis=-1)


def nyu_xyz_to_uvd(xyz: np.ndarray) -> np.ndarray:
    """(..., 3) xyz mm (y up) -> (..., 3) (u px, v px, d mm) (convert_xyz_to_uvd.m)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    z = xyz[..., 2]
    return np.stack([NYU_FX * xyz[..., 0] / z + NYU_CX, NYU_CY - NYU_FY * xyz[..., 1] / z, z], axis=-1)
