"""Hand pose metrics (paper §3.2, Fig. 9): 2-D joint error in pixels and % of joints within d pixels.

Pixel scale: errors are measured in pixels of the estimator's input crop. The paper's NYU crops are
224 × 224 (Fig. 9's 0..20 px axis is at that size); the CPU demo profile uses a smaller crop of the same
300 mm cube, so one of our pixels covers 224 / size of the paper's. `scale_to_paper_px` converts errors
before comparing thresholds with the paper's (the `within_5px_pct` of `hand_metrics` is at the crop's
own scale; pass scaled errors to compare at the paper's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simgan.evaluation.gaze import percent_within

HAND_THRESHOLDS_PX = np.arange(0, 21)  # Fig. 9's x axis: 0..20 pixels
WITHIN_PX = 5.0  # the paper's headline threshold
PAPER_CROP_PX = 224


def joint_errors_px(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, J, 2), (N, J, 2) (x, y) pixels -> (N, J) Euclidean distances in pixels."""
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.ndim != 3 or predicted.shape[-1] != 2:
        raise ValueError(f"expected two (N, J, 2) arrays of joint positions; got {predicted.shape} and {target.shape}")
    return np.linalg.norm(predicted - target, axis=-1)


def scale_to_paper_px(errors: np.ndarray, image_size: int, paper_size: int = PAPER_CROP_PX) -> np.ndarray:
    """Errors in pixels of an `image_size` crop -> pixels of the paper's `paper_size` crop of the same cube."""
    if image_size <= 0:
        raise ValueError(f"image_size must be a positive number of pixels; got {image_size}")
    return np.asarray(errors, dtype=np.float64) * (paper_size / image_size)


def hand_curve(errors: np.ndarray, thresholds: np.ndarray = HAND_THRESHOLDS_PX) -> pd.DataFrame:
    """The cumulative curve of Fig. 9: columns threshold_px, percent_within (% of all joints)."""
    thresholds = np.asarray(thresholds)
    return pd.DataFrame({"threshold_px": thresholds, "percent_within": percent_within(errors, thresholds)})


def hand_metrics(errors: np.ndarray) -> dict:
    """Mean joint error (px), % of all N·J joints within 5 px, n_images = N, n_joints = J (per image); for JSON."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2:
        raise ValueError(f"expected (N images, J joints) errors; got shape {errors.shape}")
    within = percent_within(errors, np.array([WITHIN_PX]))[0]
    return {
        "mean_error_px": float(errors.mean()),
        "within_5px_pct": float(within),
        "n_images": int(errors.shape[0]),
        "n_joints": int(errors.shape[1]),
    }
