"""Adversarial training of the refiner: the paper's Algorithm 1 as a list of named phases.

Phases (walked in order by `SimGANTrainer.fit`; a step's meaning depends on its phase):
    refiner_pretrain        1 R update per step on λ·ℓ_reg only — no discriminator is evaluated
                            (paper: 1,000 steps eyes, 500 hands)
    discriminator_pretrain  1 D update per step against the pretrained refiner (paper: 200)
    adversarial             one round per step: K_g R updates on L_R (Eq. 4), then K_d D updates on
                            L_D (Eq. 2) with half of each D batch from the history (§2.3); T rounds

K_g: §3.1 says "for each update of D_φ, we update R_θ twice, i.e. K_d is set to 1, and K_g is set to
50" — "twice" and 50 contradict each other; §3.2 (hands) says twice and K_g = 2 consistently, and
public ports that used 50 report collapse. Default K_g = 2, K_d = 1; K_g is a parameter.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from simgan.data.transforms import as_nchw_uint8, to_model
from simgan.history import HistoryBuffer
from simgan.losses import (
    Reduction,
    SelfRegFeature,
    discriminator_loss,
    patch_cross_entropy,
    refiner_adversarial_loss,
    self_regularization_loss,
)
from simgan.nn.discriminator import REAL_LABEL, REFINED_LABEL, Discriminator, DiscriminatorConfig
from simgan.nn.refiner import Refiner, RefinerConfig
from simgan.training.checkpoint import (
    CheckpointError,
    config_from_state,
    load_checkpoint,
    load_module_state,
    save_checkpoint,
)

log = logging.getLogger(__name__)

Report = Callable[[int, dict[str, float]], None]
"""Metrics leave the trainer through `report(step, {name: value})`, every `log_every_steps`."""


class StuckDiscriminatorWarning(RuntimeWarning):
    """D's loss sits at ln 2 per patch and its gradient vanished: it has stopped learning."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of Algorithm 1. Units are in the names; paper values are the defaults.

    batch_size: b, images per R batch and per D batch of refined (and of real) images. The paper
        gives 512 for "all networks" (§3.1).
    refiner_pretrain_steps, discriminator_pretrain_steps: paper 1,000 (eyes; 500 hands) and 200.
    adversarial_rounds: T of Algorithm 1; the paper trains "until the validation error converges".
    refiner_steps_per_round, discriminator_steps_per_round: K_g = 2, K_d = 1 (see module docstring).
    optimizer: "sgd" (paper) or "adam". lr: 0.001 (paper). momentum: SGD momentum; the paper says
        plain SGD, so 0. adam_betas: used by "adam" only.
    self_reg_weight: λ of Eq. (4), on the scale of `self_reg_reduction` (see simgan.losses): with
        "sum", per image |ψ(x̃) − ψ(x)| summed over pixels; the paper does not state λ. 0.01 with
        "sum" (≈ 0.53 in "mean" terms on 35×55 eyes) leaves the adversarial term room to act
        while keeping SGD at lr 0.001 stable.
    self_reg_feature: ψ, "identity" (paper default), "channel_mean" or "gradients".
    adversarial_reduction: "sum" over patches, the paper's text (§2.2); or "mean".
    history_capacity: B, unstated in the paper. 25,600 = 100 D steps of b/2 = 256: a stored image
        lives 100 D steps on average. use_history: False for the §3.3 ablation.
    seed: seeds the initial weights and every sample drawn (one torch.Generator, checkpointed).
    checkpoint_every_steps: write the checkpoint this often (and at each phase end and at the end).
    log_every_steps: average metrics over this many steps before `report` and the progress bar.
    amp: bf16 autocast on CUDA (ignored on CPU). channels_last: NHWC tensors on CUDA.
    stuck_tolerance, stuck_grad_norm: warn when |CE per patch − ln 2| < tolerance and D's gradient
        norm < stuck_grad_norm, averaged over a logging window.
    """

    batch_size: int = 512
    refiner_pretrain_steps: int = 1000
    discriminator_pretrain_steps: int = 200
    adversarial_rounds: int = 10_000
    refiner_steps_per_round: int = 2
    discriminator_steps_per_round: int = 1
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.001
    momentum: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    self_reg_weight: float = 0.01
    self_reg_feature: SelfRegFeature = "identity"
    self_reg_reduction: Reduction = "sum"
    adversarial_reduction: Reduction = "sum"
    history_capacity: int = 25_600
    use_history: bool = True
    seed: int = 0
    checkpoint_every_steps: int = 500
    log_every_steps: int = 10
    amp: bool = True
    channels_last: bool = True
    stuck_tolerance: float = 0.01
    stuck_grad_norm: float = 1e-4

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"TrainConfig.batch_size must be >= 2 (b/2 current + b/2 history); got {self.batch_size}")
        for name in ("refiner_pretrain_steps", "discriminator_pretrain_steps", "adversarial_rounds",
                     "refiner_steps_per_round", "discriminator_steps_per_round"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0; got {getattr(self, name)}")
        for name in ("history_capacity", "checkpoint_every_steps", "log_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1; got {getattr(self, name)}")
        if self.use_history and self.history_capacity < self.batch_size // 2:
            raise ValueError(
                f"TrainConfig.history_capacity ({self.history_capacity}) must hold at least b/2 = {self.batch_size // 2} images"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be one of {sorted(OPTIMIZERS)}; got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0; got {self.lr}")
        if self.self_reg_weight < 0:
            raise ValueError(f"TrainConfig.self_reg_weight must be >= 0; got {self.self_reg_weight}")

    def to_dict(self) -> dict:
        return asdict(self)


OPTIMIZERS: dict[str, Callable[[list[torch.nn.Parameter], TrainConfig], torch.optim.Optimizer]] = {
    "sgd": lambda params, cfg: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum),
    "adam": lambda params, cfg: torch.optim.Adam(params, lr=cfg.lr, betas=cfg.adam_betas),
}


@dataclass(frozen=True)
class Phase:
    """One named stretch of Algorithm 1: `steps` steps of `refiner_updates` R and `discriminator_updates` D updates."""

    name: str
    steps: int
    refiner_updates: int
    discriminator_updates: int
    adversarial: bool  # the refiner loss includes ℓ_real (False: self-regularisation only)


def build_schedule(config: TrainConfig) -> list[Phase]:
    """Algorithm 1 with its pretraining, as data."""
    return [
        Phase("refiner_pretrain", config.refiner_pretrain_steps, 1, 0, adversarial=False),
        Phase("discriminator_pretrain", config.discriminator_pretrain_steps, 0, 1, adversarial=False),
        Phase("adversarial", config.adversarial_rounds, config.refiner_steps_per_round,
              config.discriminator_steps_per_round, adversarial=True),
    ]


def patch_accuracy(logits: torch.Tensor, target: int) -> torch.Tensor:
    """Fraction of patches whose argmax class is `target`."""
    return (logits.argmax(dim=1) == target).float().mean()


class SimGANTrainer:
    """Trains a refiner and a discriminator on uint8 synthetic and real images.

    synthetic, real: uint8 (N, H, W) or (N, C, H, W), numpy or torch; H×W must be the configs'
    input_size. Both sets are moved to `device` once; batches are converted with `to_model`.
    """

    def __init__(
        self,
        synthetic: np.ndarray | torch.Tensor,
        real: np.ndarray | torch.Tensor,
        *,
        refiner_config: RefinerConfig,
        discriminator_config: DiscriminatorConfig,
        config: TrainConfig,
        device: str | torch.device | None = None,
        report: Report | None = None,
        progress: bool = True,
    ) -> None:
        self.refiner_config, self.discriminator_config, self.config = refiner_config, discriminator_config, config
        self.device = torch.device(device) if device is not None else _default_device()
        self.report, self.progress = report, progress
        if discriminator_config.channels != refiner_config.channels:
            raise ValueError(
                f"refiner works on {refiner_config.channels} channel(s) but the discriminator on {discriminator_config.channels}"
            )
        self._synthetic = self._check_images(synthetic, "synthetic images")
        self._real = self._check_images(real, "real images")

        torch.manual_seed(config.seed)  # initial weights
        self.refiner = Refiner(refiner_config).to(self.device)
        self.discriminator = Discriminator(discriminator_config).to(self.device)
        # Batches come from to_model (range known): skip the per-call checks and their device sync.
        self.refiner.check_inputs = self.discriminator.check_inputs = False
        self._cuda = self.device.type == "cuda"
        if self._cuda and config.channels_last:
            self.refiner.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        make_optimizer = OPTIMIZERS[config.optimizer]
        self.refiner_optimizer = make_optimizer(list(self.refiner.parameters()), config)
        self.discriminator_optimizer = make_optimizer(list(self.discriminator.parameters()), config)
        self.history = HistoryBuffer(
            config.history_capacity, (refiner_config.channels, *refiner_config.input_size), self.device
        )
        self.generator = torch.Generator().manual_seed(config.seed)  # every sample drawn in training
        self.schedule = build_schedule(config)
        self.step = 0  # completed schedule steps, over all phases
        self._pending: dict[str, list[torch.Tensor]] = {}
        self._stuck_warned = False
        self.extra_state: dict = {}  # saved alongside (e.g. which data it was trained on), never read back here

    # ---------------------------------------------------------------- data
    def _check_images(self, images, what: str) -> torch.Tensor:
        tensor = as_nchw_uint8(images, channels=self.refiner_config.channels, what=what)
        expected = self.refiner_config.input_size
        if tuple(tensor.shape[-2:]) != expected or tuple(self.discriminator_config.input_size) != expected:
            raise ValueError(
                f"{what}: expected H×W {expected[0]}×{expected[1]} (refiner input_size; discriminator input_size "
                f"{self.discriminator_config.input_size[0]}×{self.discriminator_config.input_size[1]}); "
                f"got {tensor.shape[-2]}×{tensor.shape[-1]}"
            )
        return tensor.to(self.device)

    def _sample(self, images: torch.Tensor, count: int) -> torch.Tensor:
        """`count` images drawn uniformly with replacement (Algorithm 1: "sample a mini-batch")."""
        index = torch.randint(len(images), (count,), generator=self.generator)
        batch = to_model(images[index.to(images.device)])
        if self._cuda and self.config.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def _autocast(self):
        if self._cuda and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- updates
    def refiner_step(self, adversarial: bool) -> None:
        """One SGD step on L_R (Eq. 4); with adversarial=False on λ·ℓ_reg alone and D is not run."""
        cfg = self.config
        synthetic = self._sample(self._synthetic, cfg.batch_size)
        with self._autocast():
            refined = self.refiner(synthetic)
            self_reg = self_regularization_loss(refined, synthetic, cfg.self_reg_feature, cfg.self_reg_reduction)
            loss = cfg.self_reg_weight * self_reg
            if adversarial:
                adversarial_loss = refiner_adversarial_loss(self.discriminator(refined), cfg.adversarial_reduction)
                loss = loss + adversarial_loss
                self._record("refiner/adversarial", adversarial_loss)
        self.refiner_optimizer.zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)  # φ fixed while θ is updated: no D weight gradients
        try:
            loss.backward()
        finally:
            self.discriminator.requires_grad_(True)
        self.refiner_optimizer.step()
        self._record("refiner/self_reg", self_reg)
        self._record("refiner/loss", loss)

    def discriminator_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The refined half of a D batch: (b − k current refined ‖ k from the history), and the current part.

        k = b/2 once the history holds b/2 images (§2.3), fewer before, 0 without history.
        """
        cfg = self.config
        from_history = min(cfg.batch_size // 2, len(self.history)) if cfg.use_history else 0
        with torch.no_grad(), self._autocast():
            current = self.refiner(self._sample(self._synthetic, cfg.batch_size - from_history)).float()
        if not from_history:
            return current, current
        past = self.history.sample(from_history, self.generator)
        if self._cuda and self.config.channels_last:
            past = past.contiguous(memory_format=torch.channels_last)
        return torch.cat([current, past]), current

    def discriminator_step(self) -> None:
        """One SGD step on L_D (Eq. 2), then b/2 fresh refined images go into the history."""
        cfg = self.config
        refined, current = self.discriminator_batch()
        real = self._sample(self._real, cfg.batch_size)
        with self._autocast():
            logits = self.discriminator(torch.cat([refined, real]))  # one pass: D has no batch statistics
            refined_logits, real_logits = logits[: len(refined)], logits[len(refined):]
            loss = discriminator_loss(refined_logits, real_logits, cfg.adversarial_reduction)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.discriminator.parameters() if p.grad is not None]
        self._record("discriminator/grad_norm", torch.nn.utils.get_total_norm(grads))
        self.discriminator_optimizer.step()
        if cfg.use_history:
            self.history.push(current[: cfg.batch_size // 2], self.generator)
        with torch.no_grad():
            per_patch = torch.cat([patch_cross_entropy(refined_logits, REFINED_LABEL).flatten(),
                                   patch_cross_entropy(real_logits, REAL_LABEL).flatten()]).mean()
            self._record("discriminator/loss", loss)
            self._record("discriminator/ce_per_patch", per_patch)
            self._record("discriminator/acc_real", patch_accuracy(real_logits, REAL_LABEL))
            self._record("discriminator/acc_refined", patch_accuracy(refined_logits, REFINED_LABEL))

    # ---------------------------------------------------------------- loop
    @property
    def total_steps(self) -> int:
        return sum(phase.steps for phase in self.schedule)

    def phase_at(self, step: int) -> Phase:
        """The phase that step number `step` (0-based) belongs to."""
        for phase in self.schedule:
            if step < phase.steps:
                return phase
            step -= phase.steps
        raise IndexError(f"step {step} is past the schedule's {self.total_steps} steps")

    def fit(self, *, checkpoint_path: str | Path | None = None, stop_at_step: int | None = None) -> dict[str, float]:
        """Walk the schedule from `self.step` to its end (or `stop_at_step`); returns the last metrics.

        With `checkpoint_path`, a checkpoint is written atomically every `checkpoint_every_steps`,
        at each phase end, at the end, and when interrupted (Ctrl-C), so a killed run loses at most
        `checkpoint_every_steps` steps.
        """
        end = self.total_steps if stop_at_step is None else min(stop_at_step, self.total_steps)
        boundaries = set(itertools.accumulate(phase.steps for phase in self.schedule))
        last_metrics: dict[str, float] = {}
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True,
                   mininterval=progress_interval())
        self.refiner.train()
        self.discriminator.train()
        shown_phase = None
        try:
            while self.step < end:
                phase = self.phase_at(self.step)
                if phase is not shown_phase:
                    bar.set_description(phase.name)
                    shown_phase = phase
                for _ in range(phase.refiner_updates):
                    self.refiner_step(adversarial=phase.adversarial)
                for _ in range(phase.discriminator_updates):
                    self.discriminator_step()
                self.step += 1
                bar.update(1)
                if self.step % self.config.log_every_steps == 0 or self.step in boundaries or self.step == end:
                    last_metrics = self._flush_metrics(bar) or last_metrics
                if checkpoint_path is not None and (
                    self.step % self.config.checkpoint_every_steps == 0 or self.step in boundaries or self.step == end
                ):
                    self.save(checkpoint_path)
        except KeyboardInterrupt:
            if checkpoint_path is not None:
                self.save(checkpoint_path)
                log.warning("interrupted at step %d; checkpoint written to %s", self.step, checkpoint_path)
            raise
        finally:
            bar.close()
        return last_metrics

    # ---------------------------------------------------------------- metrics
    def _record(self, name: str, value: torch.Tensor) -> None:
        self._pending.setdefault(name, []).append(value.detach().float())

    def _flush_metrics(self, bar) -> dict[str, float]:
        """Average the pending metrics (one device sync), report them, update the bar, watch for a stuck D."""
        if not self._pending:
            return {}
        names = list(self._pending)
        means = torch.stack([torch.stack(self._pending[name]).mean() for name in names]).tolist()
        metrics = dict(zip(names, means))
        self._pending.clear()
        if self.report is not None:
            self.report(self.step, metrics)
        short = {"refiner/self_reg": "reg", "refiner/adversarial": "adv", "discriminator/loss": "D",
                 "discriminator/acc_real": "acc_real", "discriminator/acc_refined": "acc_ref"}
        bar.set_postfix({short[k]: f"{v:.3g}" for k, v in metrics.items() if k in short}, refresh=False)
        self._watch_discriminator(metrics)
        return metrics

    def _watch_discriminator(self, metrics: dict[str, float]) -> None:
        per_patch, grad_norm = metrics.get("discriminator/ce_per_patch"), metrics.get("discriminator/grad_norm")
        if per_patch is None or grad_norm is None or self._stuck_warned:
            return
        if abs(per_patch - math.log(2)) < self.config.stuck_tolerance and grad_norm < self.config.stuck_grad_norm:
            self._stuck_warned = True
            message = (
                f"step {self.step}: the discriminator looks stuck — cross-entropy per patch {per_patch:.4f} ≈ ln 2 "
                f"and gradient norm {grad_norm:.2e}; it outputs chance everywhere and no longer learns "
                "(dead units before the logits, a learning rate too high, or inputs with no signal)"
            )
            log.warning(message)
            warnings.warn(message, StuckDiscriminatorWarning, stacklevel=2)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        rng = {"sampler": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self._cuda:
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "step": self.step,
            "refiner_config": self.refiner_config.to_dict(),
            "discriminator_config": self.discriminator_config.to_dict(),
            "train_config": self.config.to_dict(),
            "refiner": self.refiner.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "refiner_optimizer": self.refiner_optimizer.state_dict(),
            "discriminator_optimizer": self.discriminator_optimizer.state_dict(),
            "history": self.history.state_dict(),
            "rng": rng,
            **self.extra_state,
        }

    def save(self, path: str | Path) -> None:
        save_checkpoint(path, self.state_dict())

    def load(self, path: str | Path) -> None:
        """Resume from a checkpoint of this same architecture: weights, optimisers, history, RNG, step.

        The training config may differ (e.g. more adversarial rounds); the model configs may not.
        """
        state = load_checkpoint(path, map_location=self.device)
        for key, own in (("refiner_config", self.refiner_config), ("discriminator_config", self.discriminator_config)):
            theirs = config_from_state(type(own), state, key, path)
            if theirs != own:
                raise CheckpointError(f"{path}: checkpoint was trained with {theirs}; this run asks for {own}")
        load_module_state(self.refiner, state["refiner"], what="refiner", path=path)
        load_module_state(self.discriminator, state["discriminator"], what="discriminator", path=path)
        self.refiner_optimizer.load_state_dict(state["refiner_optimizer"])
        self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        try:
            self.history.load_state_dict(state["history"])
        except ValueError as error:
            raise CheckpointError(f"{path}: {error}") from None
        self.generator.set_state(state["rng"]["sampler"].cpu())
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if self._cuda and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.step = int(state["step"])


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live in a terminal, every 30 s in a log (DVC, CI, Prefect)."""
    return 0.1 if sys.stderr.isatty() else 30.0


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
