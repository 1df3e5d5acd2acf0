"""Training the paper's estimators (gaze CNN, stacked hourglass) on synthetic or refined images.

The point of SimGAN is measured here: the same estimator, same seed and schedule, trained once on the
simulator's images and once on their refined versions (labels unchanged), then tested on real images.
So the loop is deliberately plain — a fixed number of steps, one optimiser, no early stopping on real
labels (that would leak the test split into training) — and it is resumable exactly like the refiner's
(both run on `simgan.training.loop`).

What differs between the tasks is data, one `Estimation` per task in `ESTIMATIONS`: the gaze CNN
(targets: unit 3-D gaze vectors, L2 loss, paper §3.1) and the stacked hourglass (targets: 14 joints
(x, y) in crop pixels, heatmap MSE or softmax cross-entropy with intermediate supervision, paper §3.3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simgan.data.transforms import as_nchw_uint8, to_model
from simgan.nn.estimators import (
    GazeEstimator,
    GazeEstimatorConfig,
    HourglassConfig,
    StackedHourglass,
    heatmap_peaks,
    joint_heatmaps,
)
from simgan.training.checkpoint import CheckpointError, config_from_state, load_checkpoint, load_module_state

# the configs are declared without torch, for the params loader (simgan.config), and imported from here too
from simgan.training.configs import ESTIMATOR_SPECS, EstimatorSpec, EstimatorTrainConfig
from simgan.training.loop import Report, TrainingLoop, average_state, default_device, load_average, moving_average

ModelConfig = GazeEstimatorConfig | HourglassConfig


def _gaze_loss(model, model_config, config, images, targets) -> torch.Tensor:
    return (model(images) - targets).pow(2).sum(1).mean()  # L2 on the 3-D vector (paper §3.1)


def _hand_loss(model, model_config, config, images, targets) -> torch.Tensor:
    wanted = joint_heatmaps(targets, model_config.input_size, model_config.heatmap_size, config.heatmap_sigma_px)
    # intermediate supervision: the same target after every hourglass
    if config.heatmap_loss == "softmax":
        return sum(heatmap_cross_entropy(heatmaps, wanted) for heatmaps in model(images))
    # ×1000 keeps the MSE of mostly zero 64×64 maps on the scale of the gaze loss (the optimiser does not
    # care, the logs do)
    return sum(F.mse_loss(heatmaps, wanted) for heatmaps in model(images)) * 1000


def heatmap_cross_entropy(logits: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """Mean over images and joints of the cross-entropy between softmax(logits) over each map's pixels and the
    target map normalised to sum 1 (N, J, h, w both). A joint outside the crop (an all-zero target) adds 0."""
    wanted = wanted.flatten(2)
    wanted = wanted / wanted.sum(-1, keepdim=True).clamp_min(1e-12)
    return -(wanted * F.log_softmax(logits.flatten(2), -1)).sum(-1).mean()


@dataclass(frozen=True)
class Estimation:
    """One task's estimator: its network, targets, loss and prediction.

    spec: its config class and whether its targets move with the pixels (simgan.training.configs, where the
        params loader reads them without torch); `config_class` and `augments` read them from it.
    target_shape: the shape of one target, -1 for "any length" (the number of joints).
    predict: the network's output for a batch -> targets in the same units as the labels.
    """

    task: str
    spec: EstimatorSpec
    build: Callable[[ModelConfig], torch.nn.Module]
    target_shape: tuple[int, ...]
    loss: Callable[..., torch.Tensor]
    predict: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]

    @property
    def config_class(self) -> type:
        return self.spec.config_class

    @property
    def augments(self) -> bool:
        """Whether targets move with the pixels, so rotations and crops can be applied to both."""
        return self.spec.augments

    def empty_prediction(self, model: torch.nn.Module) -> np.ndarray:
        shape = tuple(getattr(model.config, "num_joints", 0) if size == -1 else size for size in self.target_shape)
        return np.zeros((0, *shape), np.float32)

    def check_targets(self, images: torch.Tensor, targets: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
        """Targets as float32, one per image, of `target_shape`, finite."""
        targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))
        shape_ok = targets.dim() == 1 + len(self.target_shape) and all(
            want in (-1, got) for want, got in zip(self.target_shape, targets.shape[1:], strict=True)
        )
        if not shape_ok or len(targets) != len(images):
            expected = "(N, " + ", ".join("J" if size == -1 else str(size) for size in self.target_shape) + ")"
            raise ValueError(
                f"{what}: expected {expected} targets for {len(images)} images; got {tuple(targets.shape)}"
            )
        bad = ~torch.isfinite(targets).reshape(len(targets), -1).all(1)
        if bad.any():
            rows = bad.nonzero().flatten()[:5].tolist()
            raise ValueError(f"{what}: {int(bad.sum())} target row(s) are NaN or infinite (first rows: {rows})")
        return targets


ESTIMATIONS: dict[str, Estimation] = {
    "gaze": Estimation(
        "gaze",
        ESTIMATOR_SPECS["gaze"],
        GazeEstimator,
        (3,),
        _gaze_loss,
        lambda model, x: F.normalize(model(x), dim=1),
    ),
    "hand": Estimation(
        "hand",
        ESTIMATOR_SPECS["hand"],
        StackedHourglass,
        (-1, 2),
        _hand_loss,
        lambda model, x: heatmap_peaks(model(x)[-1], model.config.input_size),
    ),
}


def estimation(task: str) -> Estimation:
    if task not in ESTIMATIONS:
        raise ValueError(f"estimator task must be one of {sorted(ESTIMATIONS)}; got {task!r}")
    return ESTIMATIONS[task]


class EstimatorTrainer(TrainingLoop):
    """Trains one estimator on (images, targets) for `config.steps` steps; exact resume from checkpoints."""

    def __init__(
        self,
        task: str,
        model_config: ModelConfig,
        config: EstimatorTrainConfig,
        images: np.ndarray | torch.Tensor,
        targets: np.ndarray | torch.Tensor,
        *,
        device: str | torch.device | None = None,
        report: Report | None = None,
        progress: bool = True,
        description: str = "estimator",
    ) -> None:
        super().__init__(report=report, progress=progress, description=description)
        self.task, self.estimation = task, estimation(task)
        self.model_config, self.config = model_config, config
        self.device = torch.device(device) if device else default_device()
        self.images = as_nchw_uint8(images, channels=1, what=f"{description} images")  # uint8 on the host
        if tuple(self.images.shape[-2:]) != tuple(model_config.input_size):
            raise ValueError(
                f"{description} images: expected {tuple(model_config.input_size)} (H×W) as the "
                f"estimator config says; got {tuple(self.images.shape[-2:])}"
            )
        if len(self.images) == 0:
            raise ValueError(f"{description}: no training images")
        self.targets = self.estimation.check_targets(self.images, targets, f"{description} targets")
        torch.manual_seed(config.seed)
        self.model = self.estimation.build(model_config).to(self.device)
        parameters = self.model.parameters()
        if config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(
                parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
            )
        self.generator = torch.Generator().manual_seed(config.seed)
        # θ̄ (EstimatorTrainConfig.weight_average_decay): the weights only; batch-norm statistics are the model's
        self.average = moving_average(self.model, config.weight_average_decay, buffers=False)

    # ---------------------------------------------------------------- one step
    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(self.images), (self.config.batch_size,), generator=self.generator)
        images = to_model(self.images[index].to(self.device, non_blocking=True))
        targets = self.targets[index].to(self.device)
        if self.estimation.augments and self.config.augment:
            images, targets = self._rotate_and_crop(images, targets)
        return images, targets

    def _rotate_and_crop(self, images: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One random similarity transform per image (rotation, scale, shift) applied to pixels and joints.

        Pixels outside the source crop become background (−1 = depth 0). Joints are (x, y) in pixels.
        """
        n, _, height, width = images.shape
        c = self.config
        draws = torch.rand(n, 4, generator=self.generator).to(self.device) * 2 - 1  # uniform in [-1, 1]
        angle = draws[:, 0] * math.radians(c.rotation_deg)
        scale = 1 + draws[:, 1] * c.crop_scale_fraction
        shift = draws[:, 2:] * c.crop_shift_fraction * 2  # in normalised coordinates ([-1, 1] spans the crop)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # affine_grid maps output coordinates to input coordinates (normalised, align_corners=False)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        warped = F.grid_sample(images + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
        # joints: input -> output is the inverse map: p_out = A^-1 (p_in - t), in normalised coordinates
        size = torch.tensor([width, height], dtype=joints.dtype, device=joints.device)
        normalised = (joints + 0.5) / size * 2 - 1
        inverse = torch.linalg.inv(theta[:, :, :2])
        moved = torch.einsum("nij,nkj->nki", inverse, normalised - shift[:, None, :])
        return warped, (moved + 1) / 2 * size - 0.5

    def loss(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.estimation.loss(self.model, self.model_config, self.config, images, targets)

    def train_step(self) -> None:
        images, targets = self.batch()
        loss = self.loss(images, targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{self.description}: the loss became {loss.item()} at step {self.step}; "
                f"lower the learning rate ({self.config.lr})"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.record("loss", loss)
        if self.average is not None:
            self.average.update_parameters(self.model)
        if self.step + 1 == self.total_steps:
            if self.average is not None:  # the average replaces the weights: the last step's work is done
                with torch.no_grad():
                    for own, averaged in zip(self.model.parameters(), self.average.module.parameters()):
                        own.copy_(averaged)
            if self.config.precise_bn_batches:
                self.recompute_batch_norm()

    def recompute_batch_norm(self) -> None:
        """Batch-norm statistics as plain averages over `precise_bn_batches` training batches with the current
        weights (EstimatorTrainConfig.precise_bn_batches says why); done as part of the last step, so the
        final checkpoint holds them and a resumed run does it once."""
        batches = (self.batch()[0] for _ in range(self.config.precise_bn_batches))
        torch.optim.swa_utils.update_bn(batches, self.model)

    # ---------------------------------------------------------------- the loop (simgan.training.loop)
    @property
    def total_steps(self) -> int:
        return self.config.steps

    @property
    def log_every_steps(self) -> int:
        return self.config.log_every_steps

    @property
    def checkpoint_every_steps(self) -> int:
        return self.config.checkpoint_every_steps

    def set_mode(self, training: bool) -> None:
        self.model.train(training)

    def on_metrics(self, metrics: dict[str, float], bar) -> None:
        bar.set_postfix(loss=f"{metrics['loss']:.4g}", refresh=False)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "kind": self.task,
            "estimator_config": self.model_config.to_dict(),
            "train_config": self.config.to_dict(),
            "estimator": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {"sampler": self.generator.get_state()},
            **({"average": average_state(self.average)} if self.average is not None else {}),
        }

    def identity(self) -> dict:
        return {
            "kind": self.task,
            "estimator_config": self.model_config.to_dict(),
            "train_config": self.config.to_dict(),
        }

    def load(self, path: str | Path) -> None:
        """Resume: weights, optimiser, sampler state and step. The model config must match."""
        state = load_checkpoint(path, map_location=self.device)
        if state.get("kind") != self.task:
            raise CheckpointError(
                f"{path}: a {state.get('kind')!r} estimator checkpoint; this run trains {self.task!r}"
            )
        theirs = config_from_state(self.estimation.config_class, state, "estimator_config", path)
        if theirs != self.model_config:
            raise CheckpointError(
                f"{path}: checkpoint was trained with {theirs}; this run asks for {self.model_config}"
            )
        load_module_state(self.model, state["estimator"], what="estimator", path=path)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.average is not None and "average" in state:
            load_average(self.average, state["average"], what="estimator average", path=path)
        self.generator.set_state(state["rng"]["sampler"].cpu())
        self.step = int(state["step"])


def load_estimator(path: str | Path, device: str | torch.device = "cpu") -> tuple[str, torch.nn.Module]:
    """(task, estimator) rebuilt from its checkpoint alone (config inside), in eval mode."""
    state = load_checkpoint(path, map_location=device)
    task = state.get("kind")
    if task not in ESTIMATIONS:
        raise CheckpointError(f"{path}: not an estimator checkpoint (kind {task!r})")
    config = config_from_state(ESTIMATIONS[task].config_class, state, "estimator_config", path)
    model = ESTIMATIONS[task].build(config).to(device)
    load_module_state(model, state["estimator"], what="estimator", path=path)
    return task, model.eval()


@torch.no_grad()
def predict(
    task: str, model: torch.nn.Module, images: np.ndarray | torch.Tensor, *, batch_size: int = 256
) -> np.ndarray:
    """Unit gaze vectors (N, 3) or joints (N, J, 2) in input pixels, for uint8 images (N, H, W)."""
    model.eval()
    device = next(model.parameters()).device
    batch = as_nchw_uint8(images, channels=1, what="images to estimate")
    outputs = [
        estimation(task).predict(model, to_model(batch[start : start + batch_size].to(device))).cpu()
        for start in range(0, len(batch), batch_size)
    ]
    if not outputs:
        return estimation(task).empty_prediction(model)
    return torch.cat(outputs).numpy()
