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

Data parallelism (torchrun, `simgan.training.distributed`), W processes:
    batches     the global batch stays b: every rank draws the same global index vector of b from the one
                shared seeded generator and computes its slice of b/W, so batches do not depend on W; losses
                are per-image batch means and DDP averages the gradients, which gives the global-batch gradient
    wrappers    R and D each wrapped in DistributedDataParallel, called only where their gradients are
                all-reduced: R's in the R step, D's in the D step; the R step calls the bare D, frozen
    history     one shard per rank, capacity B/W, push and sample b/(2W), each with its own generator
                (seed·W + rank + 1): an image's expected lifetime B/(b/2) is unchanged, no communication
    checkpoint  rank 0 writes it after gathering the shards and their generators and checking that every rank
                holds the same weights; resuming at the same W continues exactly, at another W (or from a
                single-process checkpoint) the history is re-split into W equal shards
A single process (W = 1) runs exactly the code and writes exactly the checkpoints it did before.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from simgan.data.transforms import as_nchw_uint8, to_model
from simgan.history import HistoryBuffer
from simgan.losses import (
    discriminator_loss,
    gaussian_region,
    patch_cross_entropy,
    refiner_adversarial_loss,
    region_loss,
    self_regularization_loss,
)
from simgan.nn.discriminator import REAL_LABEL, REFINED_LABEL, Discriminator, DiscriminatorConfig
from simgan.nn.refiner import Refiner, RefinerConfig
from simgan.training import distributed
from simgan.training.checkpoint import CheckpointError, config_from_state, load_checkpoint, load_module_state
from simgan.training.configs import TrainConfig  # declared without torch, for the params loader; imported from here too
from simgan.training.loop import Report, TrainingLoop, average_state, default_device, load_average, moving_average

log = logging.getLogger(__name__)


class StuckDiscriminatorWarning(RuntimeWarning):
    """D's loss sits at ln 2 per patch and its gradient vanished: it has stopped learning."""


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
        Phase(
            "adversarial",
            config.adversarial_rounds,
            config.refiner_steps_per_round,
            config.discriminator_steps_per_round,
            adversarial=True,
        ),
    ]


def patch_accuracy(logits: torch.Tensor, target: int) -> torch.Tensor:
    """Fraction of patches whose argmax class is `target`."""
    return (logits.argmax(dim=1) == target).float().mean()


class SimGANTrainer(TrainingLoop):
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
        super().__init__(report=report, progress=progress, description="refiner")
        self.refiner_config, self.discriminator_config, self.config = refiner_config, discriminator_config, config
        self._check_world(config)
        self.device = torch.device(device) if device is not None else default_device()
        if discriminator_config.channels != refiner_config.channels:
            raise ValueError(
                f"refiner works on {refiner_config.channels} channel(s) but the discriminator on "
                f"{discriminator_config.channels}"
            )
        self._synthetic = self._check_images(synthetic, "synthetic images")
        self._real = self._check_images(real, "real images")
        self._pupils = self._locate_pupils() if config.self_reg_pupil_weight else None

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
        world = self.world.size
        # θ̄ (TrainConfig.refiner_ema_decay): updated after each adversarial R step, saved beside θ
        self.refiner_average = moving_average(self.refiner, config.refiner_ema_decay, buffers=True)
        self.history = HistoryBuffer(
            config.history_capacity // world, (refiner_config.channels, *refiner_config.input_size), self.device
        )
        self.generator = torch.Generator().manual_seed(config.seed)  # every sample drawn in training
        # Forward passes whose gradients are all-reduced go through these (the bare modules when W = 1);
        # optimisers and checkpoints keep the bare modules, so a checkpoint has no `module.` prefix.
        self.refiner_parallel: torch.nn.Module = self.refiner
        self.discriminator_parallel: torch.nn.Module = self.discriminator
        self.history_generator = self.generator  # W = 1: the one generator, as always
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device] if self._cuda else None
            # no batch statistics in R or D (no BatchNorm): nothing to broadcast before each forward
            self.refiner_parallel = DistributedDataParallel(self.refiner, device_ids=ids, forward_sync_buffers=False)
            self.discriminator_parallel = DistributedDataParallel(
                self.discriminator, device_ids=ids, forward_sync_buffers=False
            )
            self.history_generator = torch.Generator().manual_seed(self._history_seed())
        self.schedule = build_schedule(config)
        self._stuck_warned = False

    # ---------------------------------------------------------------- data parallelism
    def _check_world(self, config: TrainConfig) -> None:
        world = self.world.size
        if world == 1:
            return
        problems = []
        if config.batch_size % world:
            problems.append(f"batch_size b = {config.batch_size} is not a multiple of it")
        if config.use_history and (config.batch_size // 2) % world:
            problems.append(f"b/2 = {config.batch_size // 2} history images per D step do not split evenly")
        if config.use_history and config.history_capacity % world:
            problems.append(f"history_capacity B = {config.history_capacity} does not split into equal shards")
        if problems:
            raise ValueError(f"training on {world} processes: " + "; ".join(problems))

    def _history_seed(self) -> int:
        """Each rank's history generator: distinct per rank (one shared generator would pick the same slots)."""
        return self.config.seed * self.world.size + self.world.rank + 1

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

    def _locate_pupils(self) -> torch.Tensor:
        """(N, 2) pupil centres of the synthetic eyes, for the pupil-region term (TrainConfig says why)."""
        from simgan.evaluation.preservation import pupil_centres  # numpy and scipy; needed by this term only

        if self._synthetic.shape[1] != 1:
            raise ValueError(
                "self_reg_pupil_weight (β) locates pupils in grey eyes; the synthetic images have "
                f"{self._synthetic.shape[1]} channels"
            )
        log.info("locating the pupils of %d synthetic eyes for the pupil-region term", len(self._synthetic))
        centres = pupil_centres(self._synthetic[:, 0].cpu().numpy())
        return torch.from_numpy(centres).float().to(self.device)

    def _sample(self, images: torch.Tensor, count: int) -> torch.Tensor:
        """`count` images drawn uniformly with replacement (Algorithm 1: "sample a mini-batch")."""
        return self._sample_with_index(images, count)[0]

    def _sample_with_index(self, images: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`_sample`'s batch and the rows of `images` it holds."""
        index = torch.randint(len(images), (count,), generator=self.generator)
        if self.world.size > 1:  # the same global draw on every rank; each computes its rows
            index = index[distributed.rank_slice(count, self.world)]
        index = index.to(images.device)
        batch = to_model(images[index])
        if self._cuda and self.config.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch, index

    def _noise(self, count: int) -> torch.Tensor | None:
        """The refiner's noise for a batch of `count` images drawn by `_sample` (None without noise maps).

        Drawn afresh from the sampling generator for every batch, the whole batch on every rank and each rank
        keeping its rows, as the indices are, so that the noise does not depend on W either.
        """
        channels = self.refiner_config.noise_maps
        if not channels:
            return None
        noise = torch.randn((count, channels, *self.refiner_config.input_size), generator=self.generator)
        if self.world.size > 1:
            noise = noise[distributed.rank_slice(count, self.world)]
        noise = noise.to(self.device)
        if self._cuda and self.config.channels_last:
            noise = noise.contiguous(memory_format=torch.channels_last)
        return noise

    def _autocast(self):
        if self._cuda and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- updates
    def refiner_step(self, adversarial: bool) -> None:
        """One SGD step on L_R (Eq. 4); with adversarial=False on λ·ℓ_reg alone and D is not run.

        φ is fixed while θ is updated: D's weights stop requiring gradients before D's forward, so autograd
        records no graph for them and computes no weight gradients only to throw them away; gradients still
        flow through D's activations to the refined images.
        """
        cfg = self.config
        synthetic, index = self._sample_with_index(self._synthetic, cfg.batch_size)
        self.discriminator.requires_grad_(False)
        try:
            with self._autocast():
                refined, holes = self.refiner_parallel(synthetic, self._noise(cfg.batch_size), return_holes=True)
                # holes (RefinerConfig.hole_output) are priced by the adversarial loss alone: the
                # self-regularisation sees the synthetic pixel there
                kept = refined if holes is None else torch.where(holes.detach() > 0, synthetic, refined)
                self_reg = self_regularization_loss(
                    kept,
                    synthetic,
                    cfg.self_reg_feature,
                    cfg.self_reg_reduction,
                    cfg.self_reg_level_weight,
                    cfg.self_reg_cap,
                )
                loss = cfg.self_reg_weight * self_reg
                if self._pupils is not None:
                    height, width = synthetic.shape[-2:]
                    region = gaussian_region(self._pupils[index], height, width, cfg.self_reg_pupil_sigma * width)
                    pupil_region = region_loss(kept, synthetic, region, cfg.self_reg_reduction)
                    loss = loss + cfg.self_reg_pupil_weight * pupil_region
                    self.record("refiner/pupil_region", pupil_region)
                if holes is not None and not adversarial:
                    # the hole logits get no gradient before D runs; a zero term keeps them in the graph, as
                    # DistributedDataParallel expects of every parameter
                    loss = loss + 0.0 * holes.sum()
                if adversarial:
                    adversarial_loss = refiner_adversarial_loss(self.discriminator(refined), cfg.adversarial_reduction)
                    loss = loss + adversarial_loss
                    self.record("refiner/adversarial", adversarial_loss)
            self.refiner_optimizer.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.discriminator.requires_grad_(True)
        self.refiner_optimizer.step()
        if adversarial and self.refiner_average is not None:
            self.refiner_average.update_parameters(self.refiner)
        self.record("refiner/self_reg", self_reg)
        self.record("refiner/loss", loss)
        if holes is not None:
            self.record("refiner/holes", holes.detach().float().mean())

    def discriminator_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The refined half of a D batch: (b − k current refined ‖ k from the history), and the current part.

        k = b/2 once the history holds b/2 images (§2.3), fewer before, 0 without history. With W ranks each
        computes b/W rows, k/W of them from its own shard (the shards fill at the same pace).
        """
        cfg = self.config
        world = self.world.size
        from_history = min(cfg.batch_size // 2 // world, len(self.history)) if cfg.use_history else 0
        with torch.no_grad(), self._autocast():
            count = cfg.batch_size - from_history * world
            current = self.refiner(self._sample(self._synthetic, count), self._noise(count)).float()
        if not from_history:
            return current, current
        past = self.history.sample(from_history, self.history_generator)
        if self._cuda and self.config.channels_last:
            past = past.contiguous(memory_format=torch.channels_last)
        return torch.cat([current, past]), current

    def discriminator_step(self) -> None:
        """One SGD step on L_D (Eq. 2), then b/2 fresh refined images go into the history."""
        cfg = self.config
        refined, current = self.discriminator_batch()
        real = self._sample(self._real, cfg.batch_size)
        with self._autocast():
            logits = self.discriminator_parallel(torch.cat([refined, real]))  # one pass: D has no batch statistics
            refined_logits, real_logits = logits[: len(refined)], logits[len(refined) :]
            loss = discriminator_loss(refined_logits, real_logits, cfg.adversarial_reduction)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.discriminator.parameters() if p.grad is not None]
        self.record("discriminator/grad_norm", torch.nn.utils.get_total_norm(grads))
        self.discriminator_optimizer.step()
        if cfg.use_history:
            self.history.push(current[: cfg.batch_size // 2 // self.world.size], self.history_generator)
        with torch.no_grad():
            per_patch = torch.cat(
                [
                    patch_cross_entropy(refined_logits, REFINED_LABEL).flatten(),
                    patch_cross_entropy(real_logits, REAL_LABEL).flatten(),
                ]
            ).mean()
            self.record("discriminator/loss", loss)
            self.record("discriminator/ce_per_patch", per_patch)
            self.record("discriminator/acc_real", patch_accuracy(real_logits, REAL_LABEL))
            self.record("discriminator/acc_refined", patch_accuracy(refined_logits, REFINED_LABEL))

    # ---------------------------------------------------------------- the loop (simgan.training.loop)
    @property
    def total_steps(self) -> int:
        return sum(phase.steps for phase in self.schedule)

    @property
    def log_every_steps(self) -> int:
        return self.config.log_every_steps

    @property
    def checkpoint_every_steps(self) -> int:
        return self.config.checkpoint_every_steps

    def phases(self) -> list[tuple[str, int]]:
        return [(phase.name, phase.steps) for phase in self.schedule]

    def phase_at(self, step: int) -> Phase:
        """The phase that step number `step` (0-based) belongs to."""
        name = self.phase_name(step)
        return next(phase for phase in self.schedule if phase.name == name)

    def train_step(self) -> None:
        phase = self.phase_at(self.step)
        for _ in range(phase.refiner_updates):
            self.refiner_step(adversarial=phase.adversarial)
        for _ in range(phase.discriminator_updates):
            self.discriminator_step()

    def set_mode(self, training: bool) -> None:
        self.refiner.train(training)
        self.discriminator.train(training)

    def on_metrics(self, metrics: dict[str, float], bar) -> None:
        short = {
            "refiner/self_reg": "reg",
            "refiner/adversarial": "adv",
            "discriminator/loss": "D",
            "discriminator/acc_real": "acc_real",
            "discriminator/acc_refined": "acc_ref",
        }
        bar.set_postfix({short[k]: f"{v:.3g}" for k, v in metrics.items() if k in short}, refresh=False)
        self._watch_discriminator(metrics)

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
        state = {
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
        }
        if self.refiner_average is not None and int(self.refiner_average.n_averaged):
            # what simgan.inference.load_refiner builds when present; θ above stays for resuming
            state["refiner_average"] = average_state(self.refiner_average)
        if self.world.size > 1:
            state.update(self._gather_history())
            distributed.check_consistency(self.refiner, "refiner")
            distributed.check_consistency(self.discriminator, "discriminator")
        return state

    def _gather_history(self) -> dict:
        """Every rank's shard as one history of capacity B (loadable by a single process, in rank order) and,
        under `history_shards`, each shard's size and generator, so that the same W continues exactly."""
        shard = self.history.state_dict()
        images = distributed.gather(shard["images"])
        generators = distributed.gather(self.history_generator.get_state().unsqueeze(0))
        return {
            "history": {
                "capacity": self.config.history_capacity,
                "size": sum(len(part) for part in images),
                "images": torch.cat(images),
            },
            "history_shards": {
                "sizes": [len(part) for part in images],
                "generators": torch.cat(generators),
            },
        }

    def _load_history_shard(self, state: dict, path: str | Path) -> None:
        """This rank's shard from a checkpoint: its own when the checkpoint has W shards, else an equal share of the
        saved images (a change of W, or a single-process checkpoint; a remainder of fewer than W images is dropped)
        and a fresh generator."""
        history, shards, world, rank = state["history"], state.get("history_shards"), self.world.size, self.world.rank
        if history["capacity"] != self.config.history_capacity:
            raise CheckpointError(
                f"{path}: history in checkpoint has capacity {history['capacity']}; "
                f"this run expects capacity {self.config.history_capacity}"
            )
        if shards is not None and len(shards["sizes"]) == world:
            start = sum(shards["sizes"][:rank])
            size = shards["sizes"][rank]
            # a row of the stacked states must be copied out: set_state on a view at an offset crashed (torch 2.13)
            self.history_generator.set_state(shards["generators"][rank].clone().cpu())
        else:
            size = history["size"] // world
            start = rank * size
            self.history_generator.manual_seed(self._history_seed())
        shard = {"capacity": self.history.capacity, "size": size, "images": history["images"][start : start + size]}
        try:
            self.history.load_state_dict(shard)
        except ValueError as error:
            raise CheckpointError(f"{path}: {error}") from None

    def identity(self) -> dict:
        return {
            "refiner_config": self.refiner_config.to_dict(),
            "discriminator_config": self.discriminator_config.to_dict(),
            "train_config": self.config.to_dict(),
        }

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
        if self.refiner_average is not None and "refiner_average" in state:
            # (none yet before the first adversarial step: the average then starts from the live weights)
            load_average(self.refiner_average, state["refiner_average"], what="refiner average", path=path)
        if self.world.size > 1:
            self._load_history_shard(state, path)
        else:
            try:
                self.history.load_state_dict(state["history"])
            except ValueError as error:
                raise CheckpointError(f"{path}: {error}") from None
        self.generator.set_state(state["rng"]["sampler"].cpu())
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if self._cuda and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.step = int(state["step"])
