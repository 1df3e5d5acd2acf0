"""The training configs, without torch: Algorithm 1's (TrainConfig) and the estimators' (EstimatorTrainConfig).

Declared here, where reading and checking params.yaml (simgan.config) costs no torch import; the trainers
in simgan.training.refiner and simgan.training.estimator import them from here, and so can their callers.
`ESTIMATOR_SPECS` is what the params loader needs to know of each task's estimator without building it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from simgan.nn.configs import GazeEstimatorConfig, HourglassConfig
from simgan.schema import Tuple, schema

Reduction = Literal["sum", "mean"]
"""How simgan.losses reduces a loss over patches or pixels (its docstring gives the scales)."""
SelfRegFeature = Literal["identity", "channel_mean", "gradients"]
"""ψ of Eq. (4): the feature transform simgan.losses.feature_transform applies before the L1 distance."""


@schema
class TrainConfig:
    """Hyperparameters of Algorithm 1. Units are in the names; paper values are the defaults.

    refiner_steps_per_round, discriminator_steps_per_round: K_g = 2, K_d = 1 (§3.1's "K_g is set to 50"
        contradicts its own "twice"; simgan.training.refiner says why 2).
    self_reg_weight: λ of Eq. (4), on the scale of `self_reg_reduction` (see simgan.losses): with
        "sum", per image |ψ(x̃) − ψ(x)| summed over pixels; the paper does not state λ. 0.01 with
        "sum" (≈ 0.53 in "mean" terms on 35×55 eyes) leaves the adversarial term room to act
        while keeping SGD at lr 0.001 stable.
    self_reg_level_weight: α, not in the paper. ψ = image derivatives (§2.1 names them) lets the refiner
        change a whole region's grey level, which a sclera shadowed to skin grey needs, but alone it held
        the pupil less well on real eyes than the identity; stacking α·x onto the derivatives keeps a
        price on moving dark pixels while a level change costs α per pixel instead of 1. Studied at λ 0.5
        (docs/results.md): α 0.5 still gained on the simulated default but moved real eyes' pupils
        2.6 px; α 1.0 nearly held them (1.5–1.9 px) and lost the gain, so the demo does not use it.
    self_reg_cap: τ, not in the paper (0: off, the paper's L1). Each pixel's |ψ(x̃) − ψ(x)| counts at most τ
        (model range: 2 is the whole 0..255). For depth maps, where 0 is "no reading": a depth camera's
        dropouts are large edits that move no label, a pixel jumping from the hand's depth to 0. An
        uncapped L1 charges each its whole depth, so at a λ that keeps a hand's depth structure the refiner
        cannot afford the ~7 % of hand pixels a Kinect drops (the embedded default's), and at a λ low enough
        to afford them it redrew the whole hand. Capped, a large edit costs at most λ·τ while small edits
        cost as before. The cap is symmetric, so a refiner can also raise a pixel to the near end of the
        cube, which no depth camera reads; capping only lowered pixels removed those and, with them, every
        dropout the refiner drew. Not used by either profile: on the embedded default's hands (with
        noise_channels 1, τ 0.1) the refiner drew dropouts in 2 runs of 4, and over its runs it gained no
        more than the paper's L1 (docs/results.md, "Now, the hand refiner").
    self_reg_pupil_weight, self_reg_pupil_sigma: β and σ, not in the paper; eyes only. Adds
        β·Σ m·|x̃ − x| to L_R beside λ·ℓ_reg (β is not scaled by λ), m a Gaussian of σ·width around each
        synthetic eye's pupil centre, found once by the deterministic locator of
        simgan.evaluation.preservation (0.19 px mean error on clean renders): the label a gaze refiner must
        keep is where the pupil is, so that region is held by the pixels themselves whatever ψ frees
        elsewhere. With ψ = derivatives alone the refiner was free to darken a sclera (what the simulated
        default needed) but moved real eyes' pupils 1.6–4.8 px; the region term held them at 0.45–0.69 px
        (docs/results.md, "the pupil-region term"). 0: the paper's L_R.
    refiner_ema_decay: d, not in the paper (0: off, the paper's final weights). The refined set, the service
        and every evaluation use an exponential moving average of the refiner's weights over its adversarial
        steps, θ̄ ← d·θ̄ + (1 − d)·θ after each R update (Yazıcı et al., "The Unusual Effectiveness of
        Averaging in GAN Training", ICLR 2019; Karras et al., "Progressive Growing of GANs", 2018). The
        last iterate of an adversarial game oscillates around where it is heading, so which refiner a run
        ends with depends on where in a swing it stopped; the average does not. Training itself is
        unchanged: R and D keep learning from the live weights, and a checkpoint holds both. Weight 1 − d,
        so the average spans about 1/(1 − d) refiner steps. Not used by either profile: on the embedded
        default's hands, d 0.99 gained +1.3 and +1.3 points on the Kinect-rendered val split at refiner
        seeds 0 and 1, where the same runs without it gained +1.6 and +4.6 (docs/results.md, "Now, the
        hand refiner"): averaging did not take the seed's luck away, it took the good seed's gain.
    history_capacity: B, unstated in the paper. 25,600 = 100 D steps of b/2 = 256: a stored image
        lives 100 D steps on average.
    stuck_tolerance, stuck_grad_norm: warn when |CE per patch − ln 2| < tolerance and D's gradient
        norm < stuck_grad_norm, averaged over a logging window.
    """

    batch_size: Annotated[
        int,
        Field(
            ge=2,
            description="b, images per R batch and per D batch of refined (and of "
            "real) images; paper: 512 for all networks (§3.1)",
        ),
    ] = 512
    refiner_pretrain_steps: Annotated[
        int, Field(ge=0, description="R steps on λ·ℓ_reg only (paper: 1,000 eyes, 500 hands)")
    ] = 1000
    discriminator_pretrain_steps: Annotated[
        int, Field(ge=0, description="D steps against the pretrained R (paper: 200)")
    ] = 200
    adversarial_rounds: Annotated[
        int, Field(ge=0, description="T of Algorithm 1; the paper trains until the validation error converges")
    ] = 10_000
    refiner_steps_per_round: Annotated[int, Field(ge=1, description="K_g, R updates per round")] = 2
    discriminator_steps_per_round: Annotated[int, Field(ge=1, description="K_d, D updates per round")] = 1
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: Annotated[float, Field(gt=0, description="learning rate of both networks (paper: 0.001)")] = 0.001
    momentum: Annotated[float, Field(ge=0, lt=1, description="SGD momentum; the paper says plain SGD, so 0")] = 0.0
    adam_betas: Annotated[tuple[float, float], Tuple, Field(description="Adam's (β1, β2); used by 'adam' only")] = (
        0.9,
        0.999,
    )
    self_reg_weight: Annotated[float, Field(ge=0, description="λ of Eq. (4), on the scale of self_reg_reduction")] = (
        0.01
    )
    self_reg_feature: SelfRegFeature = "identity"
    self_reg_level_weight: Annotated[
        float,
        Field(
            ge=0,
            description="α: with ψ 'gradients', the grey level joins the derivatives, ψ(x) = [∂x x, ∂y x, α·x] "
            "(not in the paper); 0: the derivatives alone",
        ),
    ] = 0.0
    self_reg_cap: Annotated[
        float,
        Field(ge=0, description="τ: each pixel's |ψ(x̃) − ψ(x)| counts at most τ (not in the paper); 0: off"),
    ] = 0.0
    self_reg_pupil_weight: Annotated[
        float,
        Field(
            ge=0,
            description="β: L_R += β·Σ m·|x̃ − x|, m a Gaussian at each synthetic eye's pupil (not in the "
            "paper; grey eyes only); 0: off",
        ),
    ] = 0.0
    self_reg_pupil_sigma: Annotated[
        float, Field(gt=0, le=1, description="σ of the pupil region's Gaussian, a fraction of the image width")
    ] = 0.08
    self_reg_reduction: Reduction = "sum"
    adversarial_reduction: Annotated[
        Reduction, Field(description="'sum' over patches, the paper's text (§2.2); or 'mean'")
    ] = "sum"
    refiner_ema_decay: Annotated[
        float,
        Field(
            ge=0,
            lt=1,
            description="d: refine with an exponential moving average of R's weights over the adversarial "
            "steps, weight 1 − d per step (not in the paper); 0: off, the final weights",
        ),
    ] = 0.0
    history_capacity: Annotated[int, Field(ge=1, description="B, refined images kept for D (§2.3)")] = 25_600
    use_history: Annotated[bool, Field(description="False: the §3.3 ablation without the history buffer")] = True
    seed: Annotated[int, Field(description="seeds the initial weights and every sample drawn (checkpointed)")] = 0
    checkpoint_every_steps: Annotated[
        int, Field(ge=1, description="write the checkpoint this often (and at each phase end and at the end)")
    ] = 500
    log_every_steps: Annotated[
        int, Field(ge=1, description="average metrics over this many steps before reporting them")
    ] = 10
    amp: Annotated[bool, Field(description="bf16 autocast on CUDA (ignored on CPU)")] = True
    channels_last: Annotated[bool, Field(description="NHWC tensors on CUDA (ignored on CPU)")] = True
    stuck_tolerance: Annotated[float, Field(gt=0)] = 0.01
    stuck_grad_norm: Annotated[float, Field(gt=0)] = 1e-4

    def __post_init__(self) -> None:
        if self.self_reg_level_weight and self.self_reg_feature != "gradients":
            raise ValueError(
                "TrainConfig.self_reg_level_weight (α) applies to self_reg_feature 'gradients' only; got "
                f"{self.self_reg_level_weight} with {self.self_reg_feature!r}"
            )
        if not 0 <= self.adam_betas[0] < 1 or not 0 <= self.adam_betas[1] < 1:
            raise ValueError(f"TrainConfig.adam_betas must each be in [0, 1); got {self.adam_betas}")
        if self.use_history and self.history_capacity < self.batch_size // 2:
            raise ValueError(
                f"TrainConfig.history_capacity ({self.history_capacity}) must hold at least "
                f"b/2 = {self.batch_size // 2} images"
            )


@schema
class EstimatorTrainConfig:
    """How an estimator is trained.

    optimizer, lr, momentum: paper: "a constant 0.001 learning rate"; SGD unless Adam is chosen.
    augment: random rotations within ±rotation_deg and crops that shift the subject by up to
        crop_shift_fraction of the crop and scale it by 1 ± crop_scale_fraction, with the joints moved
        by the same transform (paper §3.3: "random [−20, 20] degree rotations and crops"). Only tasks
        whose targets move with the pixels support it (hand); the gaze CNN is trained without, as in
        the paper.
    heatmap_loss (hand): "mse", Newell et al.'s squared error between each heatmap and its target Gaussian;
        "softmax", the cross-entropy between each heatmap taken as logits over its pixels (a softmax) and
        the target Gaussian normalised to sum 1. The mean squared error of mostly zero maps first teaches
        the network to output zeros and leaves that slowly: after the demo's 300 steps its loss was 8 %
        below an all-zero output's and its joints were worse than the mean training pose's; the softmax
        loss has a gradient toward every joint's peak from the first step. Prediction is the same for
        both (the arg-max, which a softmax does not move).
    precise_bn_batches: batch norm predicts with running averages of the batch statistics, updated by
        an exponential average (momentum 0.1) while the weights change under it; after a short budget
        at a high rate on small batches those averages describe the weights of the last few steps
        only, and an estimator that agrees with its siblings on clean held-out frames can fall apart
        on depth frames with holes (the hourglass trained on Kinect-rendered frames: 20.7 % of joints
        within 5 px at one seed of three, 36.1 % once recomputed; docs/results.md). With n > 0 the
        statistics are recomputed after the last step as plain averages over n training batches
        (sampled and augmented as in training) with the final weights, which is "precise BN" (Wu &
        Johnson, "Rethinking 'Batch' in BatchNorm", 2021), by torch.optim.swa_utils.update_bn. The
        weights are untouched; a network without batch norm (the gaze CNN) is unaffected.
    weight_average_decay: d, not in the paper (0: off, the last step's weights). The estimator kept is an
        exponential moving average of its weights over the training steps, θ̄ ← d·θ̄ + (1 − d)·θ after
        each step (Polyak averaging; Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
        Generalization", 2018, for why it helps), put in place of the weights after the last step and
        before precise_bn_batches recomputes the batch-norm statistics for them. At a constant learning
        rate the last iterate is one draw from where SGD wanders; which draw it is differs by seed, and so
        did the estimators' scores, by more than the refined-minus-synthetic gain to be measured. Not used
        by either profile: on the embedded default's Kinect-rendered hands (d 0.98, 6 seeds) it made the
        estimator better on every training set (synthetic-trained 31.2 → 33.5 % of joints within 5 px) but
        its spread over seeds hardly narrowed (2.4 → 1.9 points), and the demo's refined hands gained less
        against it than against the last-step estimator (docs/results.md, "Now, the hand refiner").
    """

    steps: Annotated[
        int, Field(ge=1, description="optimiser steps (a fixed budget: the same for synthetic and refined training)")
    ] = 2000
    batch_size: Annotated[int, Field(ge=1, description="images per step (paper: 512)")] = 512
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: Annotated[float, Field(gt=0, description="learning rate (paper: a constant 0.001)")] = 0.001
    momentum: Annotated[float, Field(ge=0, lt=1, description="SGD momentum")] = 0.0
    weight_decay: Annotated[
        float, Field(ge=0, description="L2 on the weights (paper: unstated; 0 is the paper-literal reading)")
    ] = 0.0
    augment: bool = True
    rotation_deg: Annotated[float, Field(ge=0, le=180, description="paper: random rotations within ±20°")] = 20.0
    crop_shift_fraction: Annotated[float, Field(ge=0, lt=1, description="largest shift, fraction of the crop")] = 0.1
    crop_scale_fraction: Annotated[float, Field(ge=0, lt=1, description="largest scale change, fraction")] = 0.1
    heatmap_sigma_px: Annotated[
        float, Field(gt=0, description="width of the target Gaussians, heatmap pixels (Newell et al.: 1)")
    ] = 1.0
    heatmap_loss: Literal["mse", "softmax"] = "mse"
    precise_bn_batches: Annotated[
        int,
        Field(
            ge=0,
            description="after the last step, batch-norm statistics recomputed over this many training batches "
            "with the final weights (not in the paper); 0: off, the running averages of training",
        ),
    ] = 0
    weight_average_decay: Annotated[
        float,
        Field(
            ge=0,
            lt=1,
            description="d: keep an exponential moving average of the weights, weight 1 − d per step, in "
            "place of the last step's (not in the paper); 0: off",
        ),
    ] = 0.0
    seed: Annotated[int, Field(description="drives initialisation, batch sampling and augmentation")] = 0
    log_every_steps: Annotated[int, Field(ge=1, description="average the loss over this many steps")] = 50
    checkpoint_every_steps: Annotated[int, Field(ge=1, description="write the checkpoint this often")] = 500


@dataclass(frozen=True)
class EstimatorSpec:
    """A task's estimator as far as params.yaml is concerned (the network, loss and prediction are
    simgan.training.estimator's `Estimation`, which holds this).

    config_class: the network's config (simgan.nn.configs); estimate.<task>.model holds its fields.
    augments: whether the targets move with the pixels (joints do, a gaze vector does not), so that
        rotations and crops can be applied to both (EstimatorTrainConfig.augment).
    """

    config_class: type
    augments: bool


ESTIMATOR_SPECS: dict[str, EstimatorSpec] = {
    "gaze": EstimatorSpec(GazeEstimatorConfig, augments=False),
    "hand": EstimatorSpec(HourglassConfig, augments=True),
}
