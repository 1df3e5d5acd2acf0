"""One spec per task: what differs between gaze (eyes) and hand (depth) is data, looked up here.

A task is named once — "gaze" or "hand" — and that name keys the params sections, the artifact
folders, the networks' paper presets, the estimator and the metrics. Code asks the spec instead of
testing the name:

    spec = TASKS[task]
    spec.refiner, spec.discriminator      the paper's networks for this task (simgan.nn presets)
    spec.estimation                       the estimator, its targets, loss and prediction (simgan.training.estimator)
    spec.targets(manifest)                label columns -> the estimator's targets
    spec.metrics                          errors, summary, curve, headline, unit (simgan.evaluation)
    spec.preservation(syn, ref, targets)  how well refinement kept the labels

Adding a task is adding a spec (and a params section per stage), not a branch in every stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simgan.evaluation import gaze as gaze_evaluation
from simgan.evaluation import hand as hand_evaluation
from simgan.evaluation.preservation import hand_preservation, pupil_shift
from simgan.nn.configs import DISCRIMINATOR_PRESETS, REFINER_PRESETS, DiscriminatorConfig, RefinerConfig

if TYPE_CHECKING:
    from simgan.training.estimator import Estimation

GAZE_COLUMNS = ("gaze_x", "gaze_y", "gaze_z")


@dataclass(frozen=True)
class TaskMetrics:
    """How a task's estimator is scored on the real test split.

    errors: (predicted, truth) -> per-image (gaze, degrees) or per-joint (hand, pixels) errors.
    summary: errors -> the metrics dict (mean error, % within the paper's threshold, …).
    curve: errors -> DataFrame of `threshold_column` and percent_within (the paper's Fig. 7 / Fig. 9).
    headline: the summary key the pipeline compares and promotes on (% within the paper's threshold).
    """

    errors: Callable[[np.ndarray, np.ndarray], np.ndarray]
    summary: Callable[[np.ndarray], dict]
    curve: Callable[[np.ndarray], pd.DataFrame]
    threshold_column: str
    unit: str
    y_label: str
    headline: str


@dataclass(frozen=True)
class TaskSpec:
    name: str
    refiner: RefinerConfig
    discriminator: DiscriminatorConfig
    targets: Callable[[pd.DataFrame], np.ndarray]
    metrics: TaskMetrics
    preservation: Callable[[np.ndarray, np.ndarray, np.ndarray], dict]

    @property
    def estimation(self) -> Estimation:
        """The task's estimator (simgan.training.estimator), looked up when asked: it imports torch, and the
        params loader (simgan.config), which reads these specs, does not."""
        from simgan.training.estimator import ESTIMATIONS

        return ESTIMATIONS[self.name]


def gaze_targets(manifest: pd.DataFrame) -> np.ndarray:
    """(N, 3) unit gaze vectors."""
    return manifest[list(GAZE_COLUMNS)].to_numpy(np.float32)


def hand_targets(manifest: pd.DataFrame) -> np.ndarray:
    """(N, J, 2) joints (x, y) in crop pixels, joints in name order."""
    joints = sorted({c[: -len("_u")] for c in manifest.columns if c.startswith("joint_") and c.endswith("_u")})
    return np.stack([manifest[[f"{j}_u", f"{j}_v"]].to_numpy(np.float32) for j in joints], axis=1)


TASKS: dict[str, TaskSpec] = {
    "gaze": TaskSpec(
        name="gaze",
        refiner=REFINER_PRESETS["gaze"],
        discriminator=DISCRIMINATOR_PRESETS["gaze"],
        targets=gaze_targets,
        metrics=TaskMetrics(
            gaze_evaluation.angular_error_deg,
            gaze_evaluation.gaze_metrics,
            gaze_evaluation.gaze_curve,
            "threshold_deg",
            "degrees",
            "% of images within d",
            "within_7deg_pct",
        ),
        preservation=lambda synthetic, refined, targets: pupil_shift(synthetic, refined),
    ),
    "hand": TaskSpec(
        name="hand",
        refiner=REFINER_PRESETS["hand"],
        discriminator=DISCRIMINATOR_PRESETS["hand"],
        targets=hand_targets,
        metrics=TaskMetrics(
            hand_evaluation.joint_errors_px,
            hand_evaluation.hand_metrics,
            hand_evaluation.hand_curve,
            "threshold_px",
            "pixels",
            "% of joints within d",
            "within_5px_pct",
        ),
        preservation=hand_preservation,
    ),
}
