"""Hand metrics against hand-computed values: joint distances, % of joints within d px, pixel scale."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simgan.evaluation.hand import HAND_THRESHOLDS_PX, hand_curve, hand_metrics, joint_errors_px, scale_to_paper_px


def test_joint_errors_are_euclidean_pixels():
    predicted = np.array([[[3.0, 4.0], [1.0, 1.0]], [[0.0, 0.0], [-2.0, 5.0]]])
    target = np.array([[[0.0, 0.0], [1.0, 1.0]], [[6.0, 8.0], [1.0, 1.0]]])
    np.testing.assert_allclose(joint_errors_px(predicted, target), [[5, 0], [10, 5]])


def test_joint_errors_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(N, J, 2\)"):
        joint_errors_px(np.zeros((2, 14, 2)), np.zeros((2, 13, 2)))


def test_hand_curve_is_monotone_and_reaches_100():
    errors = np.random.default_rng(1).uniform(0, 20, size=(50, 14))
    curve = hand_curve(errors)
    assert list(curve.columns) == ["threshold_px", "percent_within"]
    np.testing.assert_array_equal(curve["threshold_px"], HAND_THRESHOLDS_PX)
    assert np.all(np.diff(curve["percent_within"]) >= 0) and curve["percent_within"].iloc[-1] == 100.0


def test_hand_metrics_by_hand():
    metrics = hand_metrics(np.array([[0.0, 5.0, 6.0], [1.0, 2.0, 10.0]]))
    assert metrics["mean_error_px"] == 4.0
    assert metrics["within_5px_pct"] == pytest.approx(100 * 4 / 6)
    assert (metrics["n_images"], metrics["n_joints"]) == (2, 3)
    json.dumps(metrics)


def test_scale_to_paper_px():
    np.testing.assert_allclose(scale_to_paper_px(np.array([1.0, 2.5]), image_size=112), [2.0, 5.0])
    np.testing.assert_allclose(scale_to_paper_px(np.array([3.0]), image_size=224), [3.0])
    with pytest.raises(ValueError):
        scale_to_paper_px(np.array([1.0]), image_size=0)
