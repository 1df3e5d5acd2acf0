"""Training the paper's estimators (gaze CNN, stacked hourglass) on synthetic or refined images.

The point of SimGAN is measured here: the same estimator, same seed and schedule, trained once on the
simulator's images and once on their refined versions (labels unchanged), then tested on real images.
So the loop is deliberately plain — a fixed number of steps, one optimiser, no early stopping on real
labels (that would leak the test split into training) — and it is resumable exactly like the refiner's.

Glossary: `kind` is "gaze" (targets: unit 3-D gaze vectors, L2 loss, paper §3.1) or "hand" (targets:
14 joints (x, y) in crop pixels, heatmap MSE with intermediate supervision, paper §3.3).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from simgan.data.transforms import as_nchw_uint8, to_model
from simgan.nn.estimators import (
    GazeEstimator,
    GazeEstimatorConfig,
    HourglassConfig,
    StackedHourglass,
    heatmap_peaks,
    joint_heatmaps,
)
from simgan.training.checkpoint import (
    CheckpointError,
    config_from_state,
    load_checkpoint,
    load_module_state,
    save_checkpoint,
)
from simgan.training.refiner import progress_interval

log = logging.getLogger(__name__)

Kind = Literal["gaze", "hand"]
Report = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class EstimatorTrainConfig:
    """How an estimator is trained.

    steps: optimiser steps (a fixed budget: the same for synthetic and refined training).
    batch_size: images per step (paper: 512).
    optimizer, lr, momentum: paper: "a constant 0.001 learning rate"; SGD unless Adam is chosen.
    weight_decay: L2 on the weights (paper: unstated; 0 is the paper-literal reading).
    augment: hand only — random rotations within ±rotation_deg and crops that shift the hand by up to
        crop_shift_fraction of the crop and scale it by 1 ± crop_scale_fraction, with the joints moved
        by the same transform (paper §3.3: "random [−20, 20] degree rotations and crops"). The gaze
        CNN is trained without augmentation, as in the paper.
    heatmap_sigma_px: width of the target Gaussians, in heatmap pixels (Newell et al.: 1).
    seed: drives initialisation, batch sampling and augmentation.
    """

    steps: int = 2000
    batch_size: int = 512
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.001
    momentum: float = 0.0
    weight_decay: float = 0.0
    augment: bool = True
    rotation_deg: float = 20.0
    crop_shift_fraction: float = 0.1
    crop_scale_fraction: float = 0.1
    heatmap_sigma_px: float = 1.0
    seed: int = 0
    log_every_steps: int = 50
    checkpoint_every_steps: int = 500

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every_steps", "checkpoint_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"EstimatorTrainConfig.{name} must be >= 1; got {getattr(self, name)}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"EstimatorTrainConfig.optimizer must be 'sgd' or 'adam'; got {self.optimizer!r}")

    def to_dict(self) -> dict:
        return asdict(self)


ModelConfig = GazeEstimatorConfig | HourglassConfig


def build_estimator(kind: Kind, config: ModelConfig) -> torch.nn.Module:
    if kind == "gaze":
        return GazeEstimator(config)
    if kind == "hand":
        return StackedHourglass(config)
    raise ValueError(f"estimator kind must be 'gaze' or 'hand'; got {kind!r}")


def _model_config_class(kind: Kind):
    return GazeEstimatorConfig if kind == "gaze" else HourglassConfig


def check_targets(kind: Kind, images: torch.Tensor, targets: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
    """Targets as float32, one per image: (N, 3) unit gaze vectors or (N, J, 2) joints; finite."""
    targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))
    expected = "(N, 3)" if kind == "gaze" else "(N, J, 2)"
    shape_ok = targets.dim() == 2 and targets.shape[1] == 3 if kind == "gaze" else (
        targets.dim() == 3 and targets.shape[2] == 2)
    if not shape_ok or len(targets) != len(images):
        raise ValueError(f"{what}: expected {expected} targets for {len(images)} images; got {tuple(targets.shape)}")
    bad = ~torch.isfinite(targets).reshape(len(targets), -1).all(1)
    if bad.any():
        rows = bad.nonzero().flatten()[:5].tolist()
        raise ValueError(f"{what}: {int(bad.sum())} target row(s) are NaN or infinite (first rows: {rows})")
    return targets


class EstimatorTrainer:
    """Trains one estimator on (images, targets) for `config.steps` steps; exact resume from checkpoints."""

    def __init__(self, kind: Kind, model_config: ModelConfig, config: EstimatorTrainConfig,
                 images: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor, *,
                 device: str | torch.device | None = None, report: Report | None = None, progress: bool = True,
                 description: str = "estimator") -> None:
        self.kind, self.model_config, self.config = kind, model_config, config
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.images = as_nchw_uint8(images, channels=1, what=f"{description} images")  # uint8 on the host
        if tuple(self.images.shape[-2:]) != tuple(model_config.input_size):
            raise ValueError(f"{description} images: expected {tuple(model_config.input_size)} (H×W) as the "
                             f"estimator config says; got {tuple(self.images.shape[-2:])}")
        if len(self.images) == 0:
            raise ValueError(f"{description}: no training images")
        self.targets = check_targets(kind, self.images, targets, f"{description} targets")
        torch.manual_seed(config.seed)
        self.model = build_estimator(kind, model_config).to(self.device)
        parameters = self.model.parameters()
        if config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                                             weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.report, self.progress, self.description = report, progress, description
        self.step = 0
        self.extra_state: dict = {}  # saved alongside (e.g. which data it was trained on), never read back here

    # ---------------------------------------------------------------- one step
    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(self.images), (self.config.batch_size,), generator=self.generator)
        images = to_model(self.images[index].to(self.device, non_blocking=True))
        targets = self.targets[index].to(self.device)
        if self.kind == "hand" and self.config.augment:
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
        if self.kind == "gaze":
            return (self.model(images) - targets).pow(2).sum(1).mean()  # L2 on the 3-D vector (paper §3.1)
        wanted = joint_heatmaps(targets, self.model_config.input_size, self.model_config.heatmap_size,
                                self.config.heatmap_sigma_px)
        # intermediate supervision: the same target after every hourglass; ×1000 keeps the MSE of mostly
        # zero 64×64 maps on the scale of the gaze loss (the optimiser does not care, the logs do)
        return sum(F.mse_loss(heatmaps, wanted) for heatmaps in self.model(images)) * 1000

    def train_step(self) -> float:
        images, targets = self.batch()
        loss = self.loss(images, targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{self.description}: the loss became {loss.item()} at step {self.step}; "
                                     f"lower the learning rate ({self.config.lr})")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    # ---------------------------------------------------------------- the loop
    def fit(self, *, checkpoint_path: str | Path | None = None, stop_at_step: int | None = None) -> dict[str, float]:
        """Train from `self.step` to `config.steps` (or `stop_at_step`); checkpoints as the refiner's trainer
        does (atomic, every `checkpoint_every_steps`, at the end, and on Ctrl-C). Returns the last logged metrics."""
        c = self.config
        end = c.steps if stop_at_step is None else min(stop_at_step, c.steps)
        losses: list[torch.Tensor] = []
        metrics: dict[str, float] = {}
        bar = tqdm(total=c.steps, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True,
                   mininterval=progress_interval(), desc=self.description)
        self.model.train()
        try:
            while self.step < end:
                losses.append(self.train_step())
                self.step += 1
                bar.update(1)
                if self.step % c.log_every_steps == 0 or self.step == end:
                    metrics = {"loss": float(torch.stack(losses).mean())}
                    losses.clear()
                    bar.set_postfix(loss=f"{metrics['loss']:.4g}", refresh=False)
                    if self.report is not None:
                        self.report(self.step, metrics)
                if checkpoint_path is not None and (self.step % c.checkpoint_every_steps == 0 or self.step == end):
                    self.save(checkpoint_path)
        except KeyboardInterrupt:
            if checkpoint_path is not None:
                self.save(checkpoint_path)
                log.warning("interrupted at step %d; checkpoint written to %s", self.step, checkpoint_path)
            raise
        finally:
            bar.close()
        self.model.eval()
        return metrics

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"step": self.step, "kind": self.kind, "estimator_config": self.model_config.to_dict(),
                "train_config": self.config.to_dict(), "estimator": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": {"sampler": self.generator.get_state()},
                **self.extra_state}

    def save(self, path: str | Path) -> None:
        save_checkpoint(path, self.state_dict())

    def load(self, path: str | Path) -> None:
        """Resume: weights, optimiser, sampler state and step. The model config must match."""
        state = load_checkpoint(path, map_location=self.device)
        if state.get("kind") != self.kind:
            raise CheckpointError(f"{path}: a {state.get('kind')!r} estimator checkpoint; this run trains {self.kind!r}")
        theirs = config_from_state(_model_config_class(self.kind), state, "estimator_config", path)
        if theirs != self.model_config:
            raise CheckpointError(f"{path}: checkpoint was trained with {theirs}; this run asks for {self.model_config}")
        load_module_state(self.model, state["estimator"], what="estimator", path=path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["rng"]["sampler"].cpu())
        self.step = int(state["step"])


def load_estimator(path: str | Path, device: str | torch.device = "cpu") -> tuple[Kind, torch.nn.Module]:
    """An estimator rebuilt from its checkpoint alone (config inside), in eval mode."""
    state = load_checkpoint(path, map_location=device)
    kind = state.get("kind")
    if kind not in ("gaze", "hand"):
        raise CheckpointError(f"{path}: not an estimator checkpoint (kind {kind!r})")
    config = config_from_state(_model_config_class(kind), state, "estimator_config", path)
    model = build_estimator(kind, config).to(device)
    load_module_state(model, state["estimator"], what="estimator", path=path)
    return kind, model.eval()


@torch.no_grad()
def predict(kind: Kind, model: torch.nn.Module, images: np.ndarray | torch.Tensor, *, batch_size: int = 256) -> np.ndarray:
    """Unit gaze vectors (N, 3) or joints (N, J, 2) in input pixels, for uint8 images (N, H, W)."""
    model.eval()
    device = next(model.parameters()).device
    batch = as_nchw_uint8(images, channels=1, what="images to estimate")
    outputs = []
    for start in range(0, len(batch), batch_size):
        x = to_model(batch[start:start + batch_size].to(device))
        if kind == "gaze":
            outputs.append(F.normalize(model(x), dim=1).cpu())
        else:
            outputs.append(heatmap_peaks(model(x)[-1], model.config.input_size).cpu())
    if not outputs:
        return np.zeros((0, 3) if kind == "gaze" else (0, model.config.num_joints, 2), np.float32)
    return torch.cat(outputs).numpy()
