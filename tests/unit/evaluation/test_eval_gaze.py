"""Gaze metrics against hand-computed values: angles, % within d degrees, the Fig. 7 curve."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from simgan.evaluation.gaze import GAZE_THRESHOLDS_DEG, angular_error_deg, gaze_curve, gaze_metrics, percent_within


def _rotated_about_y(vector: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    return rotation @ vector


def test_angular_error_of_known_pairs():
    forward = np.array([0.0, 0.0, -1.0])
    predicted = np.array(
        [[1.0, 0, 0], [0, 0, -1], [0, 0, 1], [0, 0, -5], _rotated_about_y(forward, 3.0), [1.0, 1.0, 0.0]]
    )
    target = np.array([[0, 1.0, 0], [0, 0, -1], [0, 0, -1], [0, 0, -1], forward, [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(angular_error_deg(predicted, target), [90, 0, 180, 0, 3, 45], atol=1e-9)


def test_angular_error_is_not_nan_when_rounding_pushes_the_cosine_past_one():
    v = np.array([[0.1, 0.2, -0.9]] * 3) * np.array([[1.0], [3.0], [1e-3]])
    errors = angular_error_deg(v, v[[1, 2, 0]])
    assert np.isfinite(errors).all() and np.all(errors < 1e-5)


def test_angular_error_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        angular_error_deg(np.zeros((4, 2)), np.zeros((4, 2)))


def test_percent_within_counts_errors_at_or_below_each_threshold():
    errors = np.array([0.5, 1.0, 2.0, 3.0, 10.0])
    np.testing.assert_allclose(percent_within(errors, np.array([0, 1, 2.5, 9.99, 10])), [0, 40, 60, 80, 100])
    # any shape is flattened: 2 of 6 values are <= 1
    np.testing.assert_allclose(percent_within(np.array([[0, 5, 9], [1, 2, 3]]), np.array([1])), [100 * 2 / 6])


@pytest.mark.parametrize("errors, message", [(np.array([]), "empty"), (np.array([1.0, np.nan]), "NaN")])
def test_percent_within_rejects_empty_and_nan(errors, message):
    with pytest.raises(ValueError, match=message):
        percent_within(errors, np.array([1.0]))


def test_gaze_curve_is_monotone_and_reaches_100_when_all_errors_are_within_25_degrees():
    errors = np.random.default_rng(0).uniform(0, 25, size=500)
    curve = gaze_curve(errors)
    assert list(curve.columns) == ["threshold_deg", "percent_within"]
    np.testing.assert_array_equal(curve["threshold_deg"], GAZE_THRESHOLDS_DEG)
    assert len(curve) == 26 and np.all(np.diff(curve["percent_within"]) >= 0)
    assert curve["percent_within"].iloc[-1] == 100.0 and curve["percent_within"].iloc[0] == 0.0


def test_gaze_metrics_by_hand():
    metrics = gaze_metrics(np.array([1.0, 2.0, 3.0, 10.0]))
    assert metrics == {"mean_error_deg": 4.0, "median_error_deg": 2.5, "within_7deg_pct": 75.0, "n_images": 4}
    assert all(type(v) in (float, int) for v in metrics.values())
    json.dumps(metrics)  # plain types
    assert gaze_metrics(np.array([7.0]))["within_7deg_pct"] == 100.0  # at the threshold counts as within
