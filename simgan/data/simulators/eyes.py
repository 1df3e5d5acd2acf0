"""Eye simulators: UnityEyes-format synthetic eyes and MPIIGaze-format "real" eyes from one eyeball model.

Geometry (shared by both sets; units of the eyeball radius R, origin at the eyeball centre, x right,
y DOWN, z away from the camera):
  - The gaze g (MPIIGaze frame, see simgan.data.geometry) places the iris as a disc centred at the
    eyeball surface point R·g, perpendicular to g: in the image it is an ellipse centred at
    (R·g_x, R·g_y) with semi-axes r_iris (across) and r_iris·|g_z| (along the gaze), the pupil a
    concentric smaller ellipse. With the eyeball centre at the image centre this is exactly GazeML's
    prediction (W/2 − R·cos p·sin y, H/2 − R·sin p) (DATA_FORMATS §1.3).
  - Eyelids: a closed contour between an inner corner (nose side, image-left, next to the caruncle)
    and an outer corner; the upper lid rises and the lower lid drops with the eye's pitch in the head
    (lids follow the eye), skewed bumps shape them; the pupil centre is always left visible. The head
    pose (pitch, yaw; same sign conventions as the gaze) moves the lids about 0.9 R the way the iris
    moves with the gaze and narrows the opening when turned; the eye's rotation in the head is kept
    within −25°..+20° pitch and ±32° yaw. Per-eye shape parameters (corner positions and tilt,
    openings, peak positions, crease, brow) vary per image (synthetic) or per person (real).

Synthetic set (UnityEyes format, `gaze/synthetic/N.jpg` + `N.json`, 200×150 RGB JPEG, R = 71.7593·200/800
px): flat, clean shading, the simulator look: uniform skin tone with a smooth light gradient, a soft
brow, a lid crease, white sclera with a mild lid shadow, flat-coloured iris with a radial gradient,
black pupil, pink caruncle. Gaze uniform over pitch −27°..+12°, yaw ±42° (covering MPIIGaze's range);
head pitch ±20°, yaw ±25°; iris size, pupil size, skin and iris colours, lighting vary per image.
The JSON copies the real UnityEyes schema key for key (every value a string,
landmarks "(x, y, z)" in y-UP pixels with 4 decimals, look_vec a 4-tuple with w = 0, scalars in C#
float formatting); its lighting, skin, iris and shape fields are the values this renderer used.

"Real" set (MPIIGaze format, `gaze/real/Data/Normalized/pXX/dayYY.mat`, 36×60 uint8 per eye) renders
the same geometry framed as MPIIGaze's normalised eyes are (eye width REAL_EYE_WIDTH_FACTOR = 1.2× the corner
distance over 60 px: the corners over about 5/6 of the width; a GazeML crop of UnityEyes leaves 2/3), with
the lids narrower than the synthetic eyes' (REAL_LID_OPENING: people at a laptop look down), then adds what
the synthetic renderer does not model:
  1. skin (per person): tone, a faint smooth + fine-grain texture map (±2 %, ±0.8 %), under-eye wrinkles,
     a dark lid crease above the upper lid, a hairy brow;
  2. eye (per person): a sclera in shadow, near the skin's grey level, with veins; a dark iris (the iris
     and pupil read as one dark blob, as in webcam eyes) with radial streaks and a dark limbal ring; a
     strong, wide shadow of the upper lid on the eyeball;
  3. lashes: per-person sets of many short dark strokes along the upper lid, which read as a thick dark lid
     margin at 60 px (fewer and shorter on the lower);
  4. glasses, for some persons: a dark frame rim crossing the crop, a lens haze and a soft lens reflection;
  5. glints (corneal reflections): one or two bright spots, their offset fixed per day by the light
     (mirrored for the right eye);
  6. illumination, per day: gain (with extreme under/over-exposed days that clip), gamma, and a strong
     directional brightness gradient (side light);
  7. defocus: Gaussian blur of a per-day + per-sample width;
  8. camera, a low-resolution webcam: the eye is imaged at 55–100 % of the final resolution, with
     Gaussian and signal-dependent sensor noise and 8-bit quantisation;
  9. jpeg: compression of that camera image (Pillow round trip, quality about 47–90: a per-person level
     ± 8 per image), then bilinear resampling to 36×60 (the normalisation warp);
 10. equalisation: histogram equalisation of every stored eye (as in MPIIGaze's normalised images).
(`render_real(..., factors=...)` renders with a subset of these, for ablations; the names are REAL_FACTORS.)
The look was matched to 2,467 real, unlabelled MPIIGaze eyes (no label read) by the kernel distance of
`simgan.evaluation.realism.kernel_inception_distance`, on 600 rendered eyes resized to 55×35: 20.2 ± 12.7
with the earlier look (GazeML framing, blotchy ±6 % skin texture, bright sclera, grey iris, long lashes,
JPEG quality 22–88, noise σ 2–6), 12.3 from the framing alone, 3.0 ± 0.4 with all of the above; the clean
synthetic renders score 40.5 (docs/results.md, "A realistic embedded default").
The right eye is stored as the mirror image of a left-eye render with gaze x negated (and head yaw and
light directions mirrored), with its own gaze (x not negated) in `gaze`, so readers that flip right eyes
and negate gaze x get a left-eye-like sample. Gaze: pitch mostly negative (people look down at a laptop
screen), per-person offsets, yaw ±38°, a vergence difference between the two eyes. `pose` is the head
rotation vector whose third rotation column gives hysts' head pitch/yaw.

Determinism: every image draws from its own `numpy.random.default_rng([seed, stream, ...])`, so the
output is byte-identical for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from scipy import ndimage
from scipy.spatial.transform import Rotation

from simgan.data.geometry import (
    UNITYEYES_EYEBALL_RADIUS_PX_AT_800x600,
    gaze_from_pitch_yaw,
    unity_look_vec_from_gaze,
)
from simgan.data.histogram import equalize_histogram
from simgan.io import atomic_write

SYNTHETIC_HEIGHT, SYNTHETIC_WIDTH = 150, 200
EYEBALL_RADIUS_PX = UNITYEYES_EYEBALL_RADIUS_PX_AT_800x600 * SYNTHETIC_WIDTH / 800.0
REAL_HEIGHT, REAL_WIDTH = 36, 60
_REAL_SUPERSAMPLE = 2
# The "real" eyes' framing: eye width REAL_EYE_WIDTH_FACTOR × the corner distance over 60 px. MPIIGaze's
# normalised eyes put the corners over about 5/6 of the width (1.2); GazeML's crop of UnityEyes images leaves
# 2/3 (1.5), which is what prepare.gaze.synthetic_eye_width_factor undoes on the synthetic side.
REAL_EYE_WIDTH_FACTOR = 1.2
REAL_LID_OPENING = (0.8, 0.85)  # upper, lower lid opening relative to the synthetic eyes' (see `narrowed`)

# Random streams (first entries of the seed sequences), so that no two parts share numbers.
STREAM_SYNTHETIC_EYE, STREAM_PERSON, STREAM_DAY, STREAM_REAL_EYE, STREAM_EVAL = 11, 12, 13, 14, 15

IRIS_TEXTURES = {  # name -> RGB of the iris' mid tone
    "eyeball_amber": (150, 105, 45),
    "eyeball_blue": (75, 110, 150),
    "eyeball_brown": (95, 60, 35),
    "eyeball_darkbrown": (55, 38, 28),
    "eyeball_green": (85, 115, 70),
    "eyeball_grey": (115, 120, 125),
}
SKIN_TEXTURES = {  # name -> RGB skin tone
    "f01_color": (232, 190, 165),
    "f02_color": (214, 165, 135),
    "f03_color": (190, 140, 105),
    "f04_color": (150, 100, 70),
    "f05_color": (105, 70, 50),
    "m01_color": (225, 180, 150),
    "m02_color": (205, 155, 120),
    "m03_color": (175, 125, 90),
    "m04_color": (135, 90, 62),
    "m05_color": (95, 62, 45),
}
SKYBOX_TEXTURES = ("bergen_2k", "cape_hill_2k", "garden_2k", "office_2k", "studio_2k")


# ------------------------------------------------------------------------------------ geometry


@dataclass(frozen=True)
class EyeShape:
    """One eye: gaze, head pose (radians) and shape (units of the eyeball radius, y down)."""

    pitch: float
    yaw: float
    head_pitch: float = 0.0
    head_yaw: float = 0.0
    iris_radius: float = 0.53
    pupil_fraction: float = 0.4  # pupil radius / iris radius
    inner_x: float = -0.95
    outer_x: float = 1.15
    inner_y: float = 0.12
    outer_y: float = 0.05
    upper_open: float = 0.72
    lower_open: float = 0.32
    upper_peak: float = 0.455  # position (0 inner .. 1 outer) of the highest point of the upper lid
    lower_peak: float = 0.55
    crease: float = 0.3
    brow: float = 2.2


SHAPE_MEANS = {
    "upper_open": 0.72,
    "lower_open": 0.32,
    "inner_x": -0.95,
    "outer_x": 1.15,
    "inner_y": 0.12,
    "outer_y": 0.05,
    "upper_peak": 0.455,
    "lower_peak": 0.55,
    "crease": 0.3,
    "brow": 2.2,
}


def random_shape(rng: np.random.Generator) -> dict[str, float]:
    """Shape parameters of one eye (the EyeShape fields after the pose)."""
    m = SHAPE_MEANS
    return {
        "inner_x": rng.normal(m["inner_x"], 0.06),
        "outer_x": rng.normal(m["outer_x"], 0.07),
        "inner_y": rng.normal(m["inner_y"], 0.04),
        "outer_y": rng.normal(m["outer_y"], 0.06),
        "upper_open": rng.normal(m["upper_open"], 0.07),
        "lower_open": rng.normal(m["lower_open"], 0.04),
        "upper_peak": rng.uniform(0.36, 0.55),
        "lower_peak": rng.uniform(0.45, 0.65),
        "crease": rng.uniform(0.2, 0.4),
        "brow": rng.uniform(1.9, 2.5),
    }


def _bump(t: np.ndarray, peak: float) -> np.ndarray:
    """0 at t = 0 and 1, maximum 1 at t = peak."""
    exponent = math.log(0.5) / math.log(peak)
    return np.sin(np.pi * np.clip(t, 0.0, 1.0) ** exponent) ** 0.85


@dataclass(frozen=True)
class EyeGeometry:
    """The placed eye: corners, lid heights, iris ellipse (all in R units, y down)."""

    shape: EyeShape
    gaze: np.ndarray  # (3,) unit, MPIIGaze frame
    xi: float
    yi: float
    xo: float
    yo: float
    upper: float
    lower: float

    def lids(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """t (0 inner .. 1 outer) -> (x, base y, upper lid y, lower lid y)."""
        t = np.asarray(t, dtype=np.float64)
        x = self.xi + (self.xo - self.xi) * t
        base = self.yi + (self.yo - self.yi) * np.clip(t, 0, 1)
        return (
            x,
            base,
            base - self.upper * _bump(t, self.shape.upper_peak),
            base + self.lower * _bump(t, self.shape.lower_peak),
        )

    @property
    def iris_centre(self) -> np.ndarray:
        return self.gaze[:2].copy()

    def interior_margin(self) -> np.ndarray:
        """(16, 2): 0..8 upper lid inner corner -> outer corner (8), 9..15 lower lid back to the inner."""
        t_up = np.linspace(0, 1, 9)
        x, _, up, _ = self.lids(t_up)
        t_lo = 1 - np.arange(1, 8) / 8
        xl, _, _, lo = self.lids(t_lo)
        return np.concatenate([np.stack([x, up], 1), np.stack([xl, lo], 1)])

    def caruncle(self) -> np.ndarray:
        """(7, 2) ring around the caruncle, just nose-side of the inner corner."""
        angle = np.linspace(0, 2 * np.pi, 7, endpoint=False) + 0.4
        centre = np.array([self.xi - 0.17, self.yi + 0.02])
        return centre + np.stack([0.14 * np.cos(angle), 0.11 * np.sin(angle)], 1)

    def iris_ring(self) -> np.ndarray:
        """(32, 3) limbus points (x, y, z), starting at the image-left point and going up first."""
        g = self.gaze
        e_x = np.array([1.0, 0, 0]) - g[0] * g
        e_x /= np.linalg.norm(e_x)
        e_y = np.array([0, 1.0, 0]) - g[1] * g - e_x[1] * e_x
        e_y /= np.linalg.norm(e_y)
        phi = np.pi + 2 * np.pi * np.arange(32) / 32
        radius = self.shape.iris_radius
        return g + radius * (np.cos(phi)[:, None] * e_x + np.sin(phi)[:, None] * e_y)


def head_shift(shape: EyeShape) -> tuple[float, float]:
    """How far (R units, x right, y down) the head pose moves the lids and brow in the image."""
    return (-0.9 * math.sin(shape.head_yaw) * math.cos(shape.head_pitch), -0.9 * math.sin(shape.head_pitch))


def brow_line(shape: EyeShape, xs: np.ndarray) -> np.ndarray:
    """y of the brow's centre line at x (R units)."""
    shift_x, shift_y = head_shift(shape)
    return -shape.brow + 0.18 * ((xs - 0.25 - shift_x) / 1.8) ** 2 + shift_y


def place(shape: EyeShape) -> EyeGeometry:
    """Apply gaze and head pose to the shape: corners, lid heights (pupil centre kept visible)."""
    s = shape
    gaze = gaze_from_pitch_yaw(np.array([s.pitch, s.yaw]))
    # the lids sit about one eyeball radius in front of the eyeball centre: turning the head moves them
    # like the iris moves with the gaze (same sign conventions), and narrows the opening
    squeeze = 1 - 0.2 * abs(math.sin(s.head_yaw))
    shift_x, shift_y = head_shift(s)
    xi, xo = s.inner_x * squeeze + shift_x, s.outer_x * squeeze + shift_x
    yi, yo = s.inner_y + shift_y, s.outer_y + shift_y
    eye_pitch = s.pitch - s.head_pitch  # the lids follow the eye's rotation in the head
    upper = max(0.12, s.upper_open + 0.55 * math.sin(eye_pitch))
    lower = max(0.10, s.lower_open - 0.45 * math.sin(eye_pitch))
    geometry = EyeGeometry(s, gaze, xi, yi, xo, yo, upper, lower)
    # keep the pupil centre (and a bit of the pupil) inside the opening: the lids make way
    pupil_radius = s.iris_radius * s.pupil_fraction
    t = float(np.clip((gaze[0] - xi) / (xo - xi), 0.15, 0.85))
    _, base, _, _ = geometry.lids(np.array(t))
    upper = min(max(upper, float((base - gaze[1] + 0.6 * pupil_radius) / _bump(np.array(t), s.upper_peak))), 1.1)
    lower = min(max(lower, float((gaze[1] - base + 0.6 * pupil_radius) / _bump(np.array(t), s.lower_peak))), 0.9)
    return replace(geometry, upper=upper, lower=lower)


def _ellipse(dx, dy, centre, axis, along, across):
    """Normalised radius q (1 on the ellipse), |grad q| (per unit), polar angle; (level - q) / |grad q| is
    the signed distance (units, > 0 inside) to the ellipse scaled by `level`."""
    a = (dx - centre[0]) * axis[0] + (dy - centre[1]) * axis[1]
    b = -(dx - centre[0]) * axis[1] + (dy - centre[1]) * axis[0]
    qa, qb = a / along, b / across
    q = np.sqrt(qa * qa + qb * qb) + 1e-9
    gradient = np.sqrt((a / along**2) ** 2 + (b / across**2) ** 2) / q + 1e-9
    return q, gradient, np.arctan2(qb, qa)


def layers(geometry: EyeGeometry, xs: np.ndarray, ys: np.ndarray, px_per_unit: float) -> dict[str, np.ndarray]:
    """Anti-aliased coverage maps (0..1) and helper fields of the eye on a grid of R-unit coordinates."""
    g = geometry
    s = g.shape
    aa = lambda distance: np.clip(0.5 + distance * px_per_unit, 0.0, 1.0)  # noqa: E731
    t = (xs - g.xi) / (g.xo - g.xi)
    x, base, up, lo = g.lids(t)
    inside_t = np.minimum(t, 1 - t) * (g.xo - g.xi)
    opening = aa(np.minimum(np.minimum(ys - up, lo - ys), inside_t))
    centre = g.iris_centre
    norm = float(np.hypot(*centre))
    axis = centre / norm if norm > 1e-6 else np.array([1.0, 0.0])
    foreshortening = max(abs(float(g.gaze[2])), 0.05)
    q, gradient, angle = _ellipse(xs, ys, centre, axis, s.iris_radius * foreshortening, s.iris_radius)
    iris = aa((1 - q) / gradient) * opening
    pupil = aa((s.pupil_fraction - q) / gradient) * opening
    car = g.caruncle().mean(0)
    caruncle_q = np.sqrt(((xs - car[0]) / 0.16) ** 2 + ((ys - car[1]) / 0.12) ** 2)
    caruncle = aa((1 - caruncle_q) * 0.12) * (1 - opening)
    # distance below the upper lid (units, clipped to the lid's x range) for shadows and lashes
    below_upper = np.where((t > 0) & (t < 1), ys - up, 9.0)
    crease_y = up - s.crease * np.clip(4 * t * (1 - t), 0, 1) ** 0.5
    brow_y = brow_line(s, xs)
    return {
        "t": t,
        "up": up,
        "lo": lo,
        "opening": opening,
        "iris": iris,
        "pupil": pupil,
        "iris_q": q,
        "iris_angle": angle,
        "caruncle": caruncle,
        "below_upper": below_upper,
        "crease_y": crease_y,
        "brow_y": brow_y,
    }


# ------------------------------------------------------------------------------------ synthetic


def csharp_float(value: float) -> str:
    """C# float.ToString(): 7 significant digits, exponent form E-05 outside 1e-5 <= |x| < 1e7."""
    text = f"{float(np.float32(value)):.7g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}E{exponent[0]}{int(exponent[1:]):02d}"
    return text


def _tuple(values, decimals: int = 4) -> str:
    parts = []
    for v in values:
        part = f"{float(v):.{decimals}f}"
        parts.append(part[1:] if part.startswith("-") and float(part) == 0 else part)
    return "(" + ", ".join(parts) + ")"


def unityeyes_dumps(value, indent: int = 0) -> str:
    """SimpleJSON ToJSON(0) layout, as in the real UnityEyes label files (no trailing newline)."""
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        body = ", \n".join(f"{pad}{json.dumps(k)}: {unityeyes_dumps(v, indent + 2)}" for k, v in value.items())
        return "{ \n" + body + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        body = ", \n".join(pad + unityeyes_dumps(v, indent + 2) for v in value)
        return "[ \n" + body + "\n" + pad + "]"
    return json.dumps(value)


@dataclass(frozen=True)
class SyntheticEye:
    shape: EyeShape
    pupil_size: float
    iris_size: float
    iris_texture: str
    skin_texture: str
    skybox_texture: str
    skybox_exposure: float
    skybox_rotation: int
    ambient_intensity: float
    light_rotation: tuple[float, float, float]
    light_intensity: float
    pca: tuple[float, ...]
    camera_distance: float


def sample_synthetic_eye(seed: int, index: int) -> SyntheticEye:
    """The parameters of UnityEyes image `index` (1-based) for `seed`."""
    rng = np.random.default_rng([seed, STREAM_SYNTHETIC_EYE, index])
    pitch_deg, yaw_deg = rng.uniform(-27, 12), rng.uniform(-42, 42)
    # head pose, with the eye's rotation in the head kept within -25°..+20° (pitch) and ±32° (yaw)
    head_pitch_deg = rng.uniform(max(-20, pitch_deg - 20), min(20, pitch_deg + 25))
    head_yaw_deg = rng.uniform(max(-25, yaw_deg - 32), min(25, yaw_deg + 32))
    pitch, yaw, head_pitch, head_yaw = np.radians([pitch_deg, yaw_deg, head_pitch_deg, head_yaw_deg])
    pupil_size = float(np.clip(rng.normal() / 5, -0.45, 0.45))
    iris_size = float(rng.uniform(0.9, 1.0))
    shape_values = random_shape(rng)
    shape = EyeShape(
        pitch=float(pitch),
        yaw=float(yaw),
        head_pitch=float(head_pitch),
        head_yaw=float(head_yaw),
        iris_radius=0.56 * iris_size,
        pupil_fraction=0.4 + 0.35 * pupil_size,
        **shape_values,
    )
    pca = [(shape_values[k] - SHAPE_MEANS[k]) * 0.1 for k in SHAPE_MEANS]
    pca += list(rng.normal(0, 0.004, 9)) + [float(rng.normal()) * 1e-17]
    light_rotation = (round(float(rng.uniform(15, 55)), 1), round(float(rng.uniform(0, 360)), 1), 0.0)
    return SyntheticEye(
        shape=shape,
        pupil_size=pupil_size,
        iris_size=iris_size,
        iris_texture=str(rng.choice(sorted(IRIS_TEXTURES))),
        skin_texture=str(rng.choice(sorted(SKIN_TEXTURES))),
        skybox_texture=str(rng.choice(SKYBOX_TEXTURES)),
        skybox_exposure=float(rng.uniform(0.8, 1.3)),
        skybox_rotation=int(rng.integers(0, 360)),
        ambient_intensity=float(rng.uniform(0.8, 1.25)),
        light_rotation=light_rotation,
        light_intensity=float(rng.uniform(0.6, 1.2)),
        pca=tuple(pca),
        camera_distance=float(rng.uniform(9.6, 10.4)),
    )


def _pixel_grid(height: int, width: int, centre_px, px_per_unit: float, origin_units=(0.0, 0.0)):
    """R-unit coordinates of pixel centres."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return (
        (xs + 0.5 - centre_px[0]) / px_per_unit + origin_units[0],
        (ys + 0.5 - centre_px[1]) / px_per_unit + origin_units[1],
    )


def render_synthetic(eye: SyntheticEye) -> tuple[np.ndarray, EyeGeometry]:
    """(uint8 (150, 200, 3) image, placed geometry): the flat, clean simulator look."""
    geometry = place(eye.shape)
    r = EYEBALL_RADIUS_PX
    xs, ys = _pixel_grid(SYNTHETIC_HEIGHT, SYNTHETIC_WIDTH, (SYNTHETIC_WIDTH / 2, SYNTHETIC_HEIGHT / 2), r)
    brightness = 0.55 + 0.2 * eye.ambient_intensity + 0.2 * eye.light_intensity * eye.skybox_exposure
    light = math.radians(eye.light_rotation[1])
    shading = 1 + 0.05 * (math.cos(light) * xs + math.sin(light) * ys)
    socket = 1 - 0.10 * np.exp(-(((xs - 0.1) / 2.0) ** 2) - ((ys + 0.2) / 1.2) ** 2)
    brow_y = brow_line(eye.shape, xs)
    brow_window = 1 / (1 + np.exp(-(1.8 - np.abs(xs - 0.25 - head_shift(eye.shape)[0])) * 4))
    brow = 1 - 0.35 * np.exp(-(((ys - brow_y) / 0.25) ** 2)) * brow_window
    image = np.asarray(SKIN_TEXTURES[eye.skin_texture], np.float64) * (brightness * shading * socket * brow)[..., None]
    # the eye itself, in a window around the lids
    outline = np.concatenate([geometry.interior_margin(), geometry.caruncle()])
    x0, x1 = outline[:, 0].min() - 0.3, outline[:, 0].max() + 0.3
    y0, y1 = outline[:, 1].min() - eye.shape.crease - 0.3, outline[:, 1].max() + 0.3
    half_h, half_w = SYNTHETIC_HEIGHT / 2, SYNTHETIC_WIDTH / 2
    rows = slice(max(0, int(y0 * r + half_h)), min(SYNTHETIC_HEIGHT, int(y1 * r + half_h) + 2))
    cols = slice(max(0, int(x0 * r + half_w)), min(SYNTHETIC_WIDTH, int(x1 * r + half_w) + 2))
    L = layers(geometry, xs[rows, cols], ys[rows, cols], r)
    crease = 1 - 0.18 * np.exp(-(((ys[rows, cols] - L["crease_y"]) / 0.07) ** 2)) * (L["below_upper"] < 9)
    margin = 1 - 0.30 * np.exp(-((L["below_upper"] / 0.05) ** 2))
    lid_shadow = (1 - 0.18 * np.exp(-np.clip(L["below_upper"], 0, None) / 0.15))[..., None]
    sclera = np.array([238.0, 232, 226]) * min(brightness, 1.05) * lid_shadow
    iris_tone = np.asarray(IRIS_TEXTURES[eye.iris_texture], np.float64)
    q = np.clip(L["iris_q"], 0, 1)[..., None]
    iris = iris_tone * (1.25 - 0.45 * q**2) * (1 - 0.35 * np.clip((q - 0.82) / 0.18, 0, 1)) * lid_shadow
    pupil = np.array([12.0, 11, 12])
    window = image[rows, cols] * (crease * margin)[..., None]
    window = window + (sclera - window) * L["opening"][..., None]
    window = window + (iris - window) * L["iris"][..., None]
    window = window + (pupil - window) * L["pupil"][..., None]
    window = window + (np.array([205.0, 125, 120]) * brightness - window) * L["caruncle"][..., None]
    image[rows, cols] = window
    return np.clip(np.round(image), 0, 255).astype(np.uint8), geometry


def unityeyes_record(eye: SyntheticEye, geometry: EyeGeometry) -> dict:
    """The UnityEyes JSON (key order and string formatting of the real files) of a rendered eye."""
    r, width, height = EYEBALL_RADIUS_PX, SYNTHETIC_WIDTH, SYNTHETIC_HEIGHT
    tilt = 0.4 * math.sin(eye.shape.head_yaw)

    def screen(points: np.ndarray, depth: np.ndarray) -> list[str]:
        x = width / 2 + points[:, 0] * r
        y_up = height - (height / 2 + points[:, 1] * r)
        z = eye.camera_distance + 1.2 * (depth + tilt * points[:, 0])
        return [_tuple(p) for p in np.stack([x, y_up, z], 1)]

    def lid_depth(points: np.ndarray) -> np.ndarray:
        return -np.sqrt(np.clip(1.15**2 - (points**2).sum(1), 0.05, None))

    margin, caruncle, iris = geometry.interior_margin(), geometry.caruncle(), geometry.iris_ring()
    look = unity_look_vec_from_gaze(geometry.gaze)
    head_pitch, head_yaw = math.degrees(eye.shape.head_pitch), math.degrees(eye.shape.head_yaw)
    return {
        "interior_margin_2d": screen(margin, lid_depth(margin)),
        "caruncle_2d": screen(caruncle, lid_depth(caruncle) - 0.05),
        "iris_2d": screen(iris[:, :2], iris[:, 2]),
        "eye_details": {
            "look_vec": _tuple([*look, 0.0]),
            "pupil_size": csharp_float(eye.pupil_size),
            "iris_size": csharp_float(eye.iris_size),
            "iris_texture": eye.iris_texture,
        },
        "lighting_details": {
            "skybox_texture": eye.skybox_texture,
            "skybox_exposure": csharp_float(eye.skybox_exposure),
            "skybox_rotation": str(eye.skybox_rotation),
            "ambient_intensity": csharp_float(eye.ambient_intensity),
            "light_rotation": _tuple(eye.light_rotation, 1),
            "light_intensity": csharp_float(eye.light_intensity),
        },
        "eye_region_details": {
            "pca_shape_coeffs": [csharp_float(c) for c in eye.pca],
            "primary_skin_texture": eye.skin_texture,
        },
        "head_pose": _tuple([head_pitch % 360.0, (180.0 + head_yaw) % 360.0, 0.0]),
    }


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def write_synthetic(folder: Path, seed: int, indices: range) -> int:
    """Render UnityEyes images `indices` (1-based) into folder as N.jpg + N.json; returns the count."""
    folder = Path(folder)
    for index in indices:
        eye = sample_synthetic_eye(seed, index)
        image, geometry = render_synthetic(eye)
        data = _jpeg(image, 92)
        text = unityeyes_dumps(unityeyes_record(eye, geometry)).encode()
        atomic_write(folder / f"{index}.jpg", lambda handle, data=data: handle.write(data))
        atomic_write(folder / f"{index}.json", lambda handle, text=text: handle.write(text))
    return len(indices)


# ------------------------------------------------------------------------------------ real (MPIIGaze)


@dataclass(frozen=True)
class Person:
    """Fixed per-person appearance of the "real" set."""

    index: int
    shape: dict
    skin: float
    sclera: float
    iris: float
    brow_dark: float
    texture: np.ndarray  # (64, 96) smooth skin blotches, about ±1, over x ∈ [-3.5, 3.5], y ∈ [-2.6, 2.6]
    grain: np.ndarray  # (96, 144) fine texture
    lashes: np.ndarray  # (K, 4): t on the lid, lean (rad), length, width (units)
    lower_lashes: np.ndarray
    lash_dark: float
    glasses: bool
    pitch_mean: float
    yaw_scale: float
    head_mean: tuple[float, float]
    jpeg_quality: int
    resolution: float
    noise: float
    wrinkles: tuple[float, float]


def narrowed(shape: dict[str, float]) -> dict[str, float]:
    """A person's lids: the synthetic eyes' openings times REAL_LID_OPENING (people at a laptop look down and
    half-close their eyes; MPIIGaze's eyes are narrower than UnityEyes' wide-open renders)."""
    upper, lower = REAL_LID_OPENING
    return {**shape, "upper_open": shape["upper_open"] * upper, "lower_open": shape["lower_open"] * lower}


def make_person(seed: int, index: int) -> Person:
    rng = np.random.default_rng([seed, STREAM_PERSON, index])
    texture = ndimage.gaussian_filter(rng.normal(size=(64, 96)), 2.5, mode="wrap")
    texture /= texture.std() + 1e-9
    grain = ndimage.gaussian_filter(rng.normal(size=(96, 144)), 0.8, mode="wrap")
    grain /= grain.std() + 1e-9
    count = int(rng.integers(60, 110))
    t = np.sort(rng.uniform(0.08, 1.0, count))
    lashes = np.stack(
        [
            t,
            (t - 0.3) * 1.3 + rng.normal(0, 0.12, count),
            rng.uniform(0.06, 0.16, count) * rng.uniform(0.8, 1.3),
            rng.uniform(0.012, 0.025, count),
        ],
        1,
    )
    lower_count = int(rng.integers(6, 16))
    t_low = np.sort(rng.uniform(0.3, 1.0, lower_count))
    lower = np.stack(
        [
            t_low,
            np.pi - (t_low - 0.4) * 1.0 + rng.normal(0, 0.15, lower_count),
            rng.uniform(0.08, 0.18, lower_count),
            rng.uniform(0.012, 0.022, lower_count),
        ],
        1,
    )
    return Person(
        index=index,
        shape=narrowed(random_shape(rng)),
        skin=float(rng.uniform(85, 190)),
        sclera=float(rng.uniform(110, 165)),
        iris=float(rng.uniform(15, 45)),
        brow_dark=float(rng.uniform(0.3, 0.75)),
        texture=texture,
        grain=grain,
        lashes=lashes,
        lower_lashes=lower,
        lash_dark=float(rng.uniform(0.45, 0.85)),
        glasses=bool(rng.random() < 0.25),
        pitch_mean=float(rng.uniform(-13, -5)),
        yaw_scale=float(rng.uniform(0.8, 1.0)),
        head_mean=(float(rng.uniform(-6, 6)), float(rng.uniform(-8, 8))),
        jpeg_quality=int(rng.integers(55, 105)),
        resolution=float(rng.uniform(0.55, 1.0)),
        noise=float(rng.uniform(0.8, 2.4)),
        wrinkles=(float(rng.uniform(0.0, 0.25)), float(rng.uniform(0.45, 0.7))),
    )


@dataclass(frozen=True)
class Day:
    gain: float
    gamma: float
    gradient: float
    gradient_angle: float
    glint: tuple[float, float]
    second_glint: bool
    blur: float


def make_day(seed: int, person: int, day: int) -> Day:
    rng = np.random.default_rng([seed, STREAM_DAY, person, day])
    gain = float(np.exp(rng.normal(0, 0.25)))
    extreme = rng.random()
    if extreme < 0.08:
        gain *= 0.45  # a dark evening
    elif extreme < 0.16:
        gain *= 1.8  # a sunlit, over-exposed day
    return Day(
        gain=gain,
        gamma=float(rng.uniform(0.8, 1.25)),
        gradient=float(rng.uniform(0.0, 0.5)),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
        glint=(float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.35, 0.0))),
        second_glint=bool(rng.random() < 0.3),
        blur=float(rng.uniform(0.3, 0.9)),
    )


def _sample_grid(field: np.ndarray, xs: np.ndarray, ys: np.ndarray, half_x: float = 3.5, half_y: float = 2.6):
    rows, cols = field.shape
    r = (ys + half_y) / (2 * half_y) * (rows - 1)
    c = (xs + half_x) / (2 * half_x) * (cols - 1)
    return ndimage.map_coordinates(field, [r.ravel(), c.ravel()], order=1, mode="reflect").reshape(xs.shape)


def _strokes(segments: np.ndarray, widths: np.ndarray, grid: tuple, shape: tuple) -> np.ndarray:
    """Anti-aliased coverage (0..1) of tapered line strokes: points along each segment are splatted
    bilinearly (ink = width × spacing, in pixels²) and slightly blurred. segments (K, 2, 2) in R units."""
    centre_px, px_per_unit, origin = grid
    height, width = shape
    ink = np.zeros(shape, np.float64)
    if len(segments) == 0:
        return ink
    steps = np.linspace(0.0, 1.0, 12)
    points = segments[:, :1, :] + steps[None, :, None] * (segments[:, 1:, :] - segments[:, :1, :])  # (K, 12, 2)
    length_px = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1) * px_per_unit
    weight = (widths[:, None] * px_per_unit) * (1 - 0.6 * steps[None]) * (length_px[:, None] / 11.0)
    col = (points[..., 0] - origin[0]) * px_per_unit + centre_px[0] - 0.5
    row = (points[..., 1] - origin[1]) * px_per_unit + centre_px[1] - 0.5
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    fc, fr = col - c0, row - r0
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        r, c = r0 + dr, c0 + dc
        keep = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        np.add.at(ink, (r[keep], c[keep]), (weight * w)[keep])
    ink = ndimage.gaussian_filter(ink, 0.5, mode="constant")
    return 1 - np.exp(-1.5 * ink)


REAL_FACTORS = frozenset(
    {"skin", "eye", "lashes", "glasses", "glints", "illumination", "defocus", "camera", "jpeg", "equalisation"}
)


def render_real(
    person: Person,
    day: Day,
    shape: EyeShape,
    rng: np.random.Generator,
    mirror: bool,
    factors: frozenset[str] = REAL_FACTORS,
) -> np.ndarray:
    """One 36×60 uint8 "real" left-eye image (mirror=True: rendered for the right eye, before the flip).

    factors: the appearance factors to apply (module docstring; names in REAL_FACTORS), all by default;
    leaving some out gives ablations (an empty set: the eye as the synthetic renderer would draw it, in
    grey). The random draws do not depend on the factors, so an ablation changes nothing else.
    """
    geometry = place(shape)
    sign = -1.0 if mirror else 1.0
    margin = geometry.interior_margin()
    left_corner = geometry.caruncle().mean(0)
    eye_width = REAL_EYE_WIDTH_FACTOR * abs(margin[8, 0] - left_corner[0])
    px = REAL_WIDTH / eye_width * rng.uniform(0.92, 1.08)
    middle = (margin.min(0) + margin.max(0)) / 2 + rng.normal(0, 0.04, 2)
    s = _REAL_SUPERSAMPLE
    xs, ys = _pixel_grid(REAL_HEIGHT * s, REAL_WIDTH * s, (REAL_WIDTH * s / 2, REAL_HEIGHT * s / 2), px * s, middle)
    L = layers(geometry, xs, ys, px * s)
    # random draws, all up front
    glint_draws = rng.uniform([0.045, 150, 0.045, 150], [0.08, 255, 0.08, 255])
    rim_offset, reflection = rng.normal(0, 0.1), rng.uniform([-1.5, -0.8, 15], [1.5, 0.8, 60])
    gain_jitter, blur_jitter, noise_jitter = rng.uniform(0.9, 1.1), rng.uniform(0.0, 0.4), rng.uniform(0.7, 1.3)
    quality = int(np.clip(person.jpeg_quality + rng.integers(-8, 9), 20, 90))
    noise_seed = int(rng.integers(2**31))
    # 1. skin: tone, person texture, wrinkles, hairy brow (else a flat tone and a soft brow, as synthetic)
    skin_tone = person.skin
    if "skin" in factors:
        skin = skin_tone * (
            1 + 0.02 * _sample_grid(person.texture, sign * xs, ys) + 0.008 * _sample_grid(person.grain, sign * xs, ys)
        )
        wrinkle_depth, wrinkle_at = person.wrinkles
        wrinkle_y = L["lo"] + wrinkle_at * np.clip(4 * L["t"] * (1 - L["t"]), 0, 1)
        skin *= 1 - wrinkle_depth * np.exp(-(((ys - wrinkle_y) / 0.05) ** 2)) * ((L["t"] > 0.1) & (L["t"] < 0.95))
        brow_hairs = 0.6 + 0.4 * np.sin(40 * xs + 6 * ys + person.index) ** 2
        skin *= 1 - person.brow_dark * brow_hairs * np.exp(-(((ys - L["brow_y"]) / 0.3) ** 2))
    else:
        skin = np.full_like(xs, skin_tone) * (1 - 0.35 * np.exp(-(((ys - L["brow_y"]) / 0.25) ** 2)))
    skin *= 1 - 0.35 * np.exp(-(((ys - L["crease_y"]) / 0.1) ** 2)) * (L["below_upper"] < 9)
    skin *= 1 - 0.35 * np.exp(-((L["below_upper"] / 0.05) ** 2))
    # 2. eyeball: sclera with veins and a strong upper-lid shadow, streaky iris, limbal ring (else flat)
    below = np.clip(L["below_upper"], 0, None)
    q = np.clip(L["iris_q"], 0, 1)
    if "eye" in factors:
        shadow = 1 - 0.6 * np.exp(-below / 0.3)
        sclera = person.sclera * (1 - 0.06 * np.abs(_sample_grid(person.grain, ys * 2, sign * xs * 2))) * shadow
        streaks = np.sin(L["iris_angle"] * 23 + person.index) * np.sin(L["iris_angle"] * 9 + 2.0 * person.index)
        iris = person.iris * (1.2 - 0.35 * q + 0.18 * streaks * q) * (1 - 0.5 * np.clip((q - 0.8) / 0.2, 0, 1)) * shadow
    else:
        shadow = 1 - 0.18 * np.exp(-below / 0.15)
        sclera = 225.0 * shadow
        iris = 90.0 * (1.25 - 0.45 * q**2) * (1 - 0.35 * np.clip((q - 0.82) / 0.18, 0, 1)) * shadow
    image = skin
    image = image + (sclera - image) * L["opening"]
    image = image + (iris - image) * L["iris"]
    image = image + (8.0 - image) * L["pupil"]
    image = image + (skin_tone * 0.85 - image) * L["caruncle"]
    # 5. corneal glints (physical light side: mirrored for the right eye's render)
    if "glints" in factors:
        centre = geometry.iris_centre
        glints = [(sign * day.glint[0], day.glint[1], *glint_draws[:2])]
        if day.second_glint:
            glints.append((sign * (day.glint[0] + 0.18), day.glint[1] + 0.05, *glint_draws[2:]))
        for gx, gy, radius, strength in glints:
            spot = np.exp(
                -(
                    (xs - centre[0] - gx * shape.iris_radius * 2) ** 2
                    + (ys - centre[1] - gy * shape.iris_radius * 2) ** 2
                )
                / (2 * radius**2)
            )
            image = image + strength * spot * L["opening"]
    # 3. eyelashes along the upper lid (and a few on the lower lid)
    if "lashes" in factors:

        def lash_segments(lashes, lid):
            x, _, up, lo = geometry.lids(lashes[:, 0])
            starts = np.stack([x, up if lid == "upper" else lo], 1)
            direction = np.stack([np.sin(lashes[:, 1]), -np.cos(lashes[:, 1])], 1)
            return np.stack([starts, starts + direction * lashes[:, 2:3]], 1), lashes[:, 3]

        grid = ((REAL_WIDTH * s / 2, REAL_HEIGHT * s / 2), px * s, middle)
        upper, lower = lash_segments(person.lashes, "upper"), lash_segments(person.lower_lashes, "lower")
        lash = np.maximum(_strokes(*upper, grid, xs.shape), 0.7 * _strokes(*lower, grid, xs.shape))
        image = image * (1 - person.lash_dark * lash)
    # 4. glasses: frame rim, lens haze and a soft lens reflection
    if person.glasses and "glasses" in factors:
        rim_y = (1.25 if person.index % 2 else -1.6) + 0.1 * xs + rim_offset
        image = image * 0.88 + 12
        image = image * (1 - 0.6 * np.exp(-(((ys - rim_y) / 0.12) ** 4)))
        rx, ry, strength = reflection
        image = image + strength * np.exp(-((xs - rx) ** 2 / 0.6 + (ys - ry) ** 2 / 0.15))
    # 6. illumination: gamma, gain (clipping on extreme days), directional gradient
    if "illumination" in factors:
        extent_x, extent_y = (xs - middle[0]) * px / REAL_WIDTH * 2, (ys - middle[1]) * px / REAL_HEIGHT * 2
        angle = day.gradient_angle
        ramp = 1 + day.gradient * (sign * math.cos(angle) * extent_x + math.sin(angle) * extent_y) / 1.4
        image = 255.0 * (np.clip(image, 0, None) / 255.0) ** day.gamma * day.gain * gain_jitter * ramp
    # 7. defocus
    if "defocus" in factors:
        image = ndimage.gaussian_filter(image, sigma=s * (day.blur + blur_jitter), mode="nearest")
    # 8. low-resolution webcam with sensor noise
    if "camera" in factors:
        size = (max(16, round(REAL_WIDTH * person.resolution)), max(10, round(REAL_HEIGHT * person.resolution)))
    else:
        size = (REAL_WIDTH * s, REAL_HEIGHT * s)
    camera = np.asarray(
        Image.fromarray(np.clip(image, 0, None).astype(np.float32)).resize(size, Image.Resampling.BOX), dtype=np.float64
    )
    if "camera" in factors:
        noise = np.random.default_rng(noise_seed).normal(0, 1, camera.shape)
        camera = camera + noise * np.sqrt((person.noise * noise_jitter) ** 2 + 0.15 * camera)
    camera = np.clip(np.round(camera), 0, 255).astype(np.uint8)  # saturation after the noise: flat whites
    # 9. JPEG round trip, then the normalisation warp to 36×60
    picture = Image.open(io.BytesIO(_jpeg(camera, quality))) if "jpeg" in factors else Image.fromarray(camera)
    resample = Image.Resampling.BILINEAR if "camera" in factors else Image.Resampling.BOX
    eye = np.asarray(picture.resize((REAL_WIDTH, REAL_HEIGHT), resample), dtype=np.uint8)
    # 10. histogram equalisation
    return equalize_histogram(eye) if "equalisation" in factors else eye


def _rvec(head_pitch: float, head_yaw: float) -> np.ndarray:
    """Head rotation vector whose third column gives hysts' (pitch, yaw): v = R[:, 2]."""
    rotation = Rotation.from_euler("y", head_yaw) * Rotation.from_euler("x", -head_pitch)
    return rotation.as_rotvec()


def day_sizes(seed: int, persons: int, samples_per_person: int, max_days: int) -> list[list[int]]:
    """Samples per day for each person; person 0's last day has exactly one sample."""
    sizes = []
    for person in range(persons):
        rng = np.random.default_rng([seed, STREAM_PERSON, person, 1])
        days = int(rng.integers(max(2, max_days - 2), max_days + 1))
        weights = rng.uniform(0.3, 1.0, days)
        counts = np.maximum(1, np.floor(weights / weights.sum() * samples_per_person)).astype(int)
        counts = [int(c) for c in counts]
        if person == 0:
            counts[-1] = 1
        sizes.append(counts)
    return sizes


def save_mat(path: Path, variables: dict) -> None:
    """scipy savemat (level-5 MAT) with a fixed header text, so the bytes depend only on the data.

    Uncompressed: compressed MAT elements are deflated by the zlib Python links, the system's, and
    another zlib build (zlib 1.3, zlib-ng) writes other bytes for the same data, so data.dvc's hash
    would depend on the machine. Readers (scipy, MATLAB) take both forms.
    """
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=False, oned_as="column")
    data = bytearray(buffer.getvalue())
    header = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: simgan simulators"
    data[:116] = header.ljust(116, b" ")
    atomic_write(path, lambda handle: handle.write(bytes(data)))


def write_person(root: Path, seed: int, person_index: int, days: list[int], evaluation_lines: int) -> dict:
    """Write pXX/dayYY.mat for one person and its evaluation list; returns counts."""
    person = make_person(seed, person_index)
    name = f"p{person_index:02d}"
    folder = Path(root) / "Data" / "Normalized" / name
    listed: list[str] = []
    for day_number, count in enumerate(days, start=1):
        day = make_day(seed, person_index, day_number)
        rng = np.random.default_rng([seed, STREAM_REAL_EYE, person_index, day_number])
        numbers = np.sort(rng.choice(np.arange(1, 3 * count + 2), size=count, replace=False))
        filenames = [f"{n:04d}.jpg" for n in numbers]
        sides = {"left": ([], [], []), "right": ([], [], [])}
        for number in numbers:
            sample_rng = np.random.default_rng([seed, STREAM_REAL_EYE, person_index, day_number, int(number)])
            pitch = np.clip(person.pitch_mean + sample_rng.normal(0, 7), -25, 8)
            yaw = sample_rng.uniform(-38, 38) * person.yaw_scale
            vergence = sample_rng.uniform(4, 9)
            head_pitch = person.head_mean[0] + sample_rng.normal(0, 5)
            head_yaw = person.head_mean[1] + sample_rng.normal(0, 7)
            pupil = float(np.clip(0.4 + sample_rng.normal(0, 0.06), 0.25, 0.55))
            jitter = {
                k: v + sample_rng.normal(0, 0.015) for k, v in person.shape.items() if k in ("upper_open", "lower_open")
            }
            for side, yaw_eye, mirror in (("left", yaw + vergence / 2, False), ("right", yaw - vergence / 2, True)):
                gaze = gaze_from_pitch_yaw(np.radians([pitch, yaw_eye]))
                # the right eye is rendered as a left eye with gaze x negated and the head yaw mirrored
                render_yaw = -yaw_eye if mirror else yaw_eye
                render_head_yaw = -head_yaw if mirror else head_yaw
                shape = EyeShape(
                    pitch=math.radians(pitch),
                    yaw=math.radians(render_yaw),
                    head_pitch=math.radians(head_pitch),
                    head_yaw=math.radians(render_head_yaw),
                    iris_radius=0.53,
                    pupil_fraction=pupil,
                    **(person.shape | jitter),
                )
                image = render_real(person, day, shape, sample_rng, mirror)
                if mirror:
                    image = image[:, ::-1]
                images, gazes, poses = sides[side]
                images.append(np.ascontiguousarray(image))
                gazes.append(gaze)
                poses.append(_rvec(math.radians(head_pitch), math.radians(head_yaw)))
        data = {
            side: {
                "gaze": np.asarray(g, np.float64),
                "image": np.asarray(i, np.uint8),
                "pose": np.asarray(p, np.float64),
            }
            for side, (i, g, p) in sides.items()
        }
        names = np.empty((count, 1), dtype=object)
        for k, filename in enumerate(filenames):
            names[k, 0] = filename
        save_mat(folder / f"day{day_number:02d}.mat", {"data": data, "filenames": names})
        listed += [f"day{day_number:02d}/{f}" for f in filenames]
    # evaluation subset: distinct samples, alternately left and right, sorted like a file listing
    rng = np.random.default_rng([seed, STREAM_EVAL, person_index])
    chosen = rng.permutation(len(listed))[:evaluation_lines]
    lines = sorted(f"{listed[k]} {'left' if n % 2 == 0 else 'right'}" for n, k in enumerate(chosen))
    text = ("\n".join(lines) + "\n").encode()
    atomic_write(
        Path(root) / "Evaluation Subset" / "sample list for eye image" / f"{name}.txt",
        lambda handle, text=text: handle.write(text),
    )
    return {"days": len(days), "samples": int(sum(days)), "evaluation_lines": len(lines)}
