"""Gaze metrics (paper §3.1, Fig. 7): angular error between 3-D gaze vectors and % of images within d degrees.

Vectors are in the MPIIGaze normalised camera frame (simgan.data.geometry); their length is ignored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GAZE_THRESHOLDS_DEG = np.arange(0, 26)  # Fig. 7's x axis: 0..25 degrees
WITHIN_DEG = 7.0  # the paper's headline threshold ("% of images within 7 degrees")


def angular_error_deg(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, 3), (N, 3) -> (N,) angle between the vectors in degrees; zero vectors give NaN."""
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.shape[-1] != 3:
        raise ValueError(f"expected two (N, 3) arrays of gaze vectors; got {predicted.shape} and {target.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        unit_p = predicted / np.linalg.norm(predicted, axis=-1, keepdims=True)
        unit_t = target / np.linalg.norm(target, axis=-1, keepdims=True)
    cosine = np.clip((unit_p * unit_t).sum(axis=-1), -1.0, 1.0)  # rounding can push |cos| past 1 -> NaN in arccos
    return np.degrees(np.arccos(cosine))


def percent_within(errors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """% (0..100) of all errors (any shape, flattened) that are ≤ each threshold; (T,) for (T,) thresholds."""
    flat = np.sort(np.asarray(errors, dtype=np.float64).ravel())
    if flat.size == 0:
        raise ValueError("no errors to summarise (empty array)")
    if np.isnan(flat).any():
        raise ValueError(f"{int(np.isnan(flat).sum())} of {flat.size} errors are NaN (a zero or non-finite vector?)")
    counts = np.searchsorted(flat, np.asarray(thresholds, dtype=np.float64), side="right")
    return 100.0 * counts / flat.size


def gaze_curve(errors: np.ndarray, thresholds: np.ndarray = GAZE_THRESHOLDS_DEG) -> pd.DataFrame:
    """The cumulative curve of Fig. 7: columns threshold_deg, percent_within (one row per threshold)."""
    thresholds = np.asarray(thresholds)
    return pd.DataFrame({"threshold_deg": thresholds, "percent_within": percent_within(errors, thresholds)})


def gaze_metrics(errors: np.ndarray) -> dict:
    """Mean / median angular error (degrees), % within 7°, image count: plain Python numbers for JSON."""
    errors = np.asarray(errors, dtype=np.float64).ravel()
    within = percent_within(errors, np.array([WITHIN_DEG]))[0]  # also rejects empty / NaN input
    return {
        "mean_error_deg": float(errors.mean()),
        "median_error_deg": float(np.median(errors)),
        "within_7deg_pct": float(within),
        "n_images": int(errors.size),
    }
