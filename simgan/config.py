"""Typed, frozen models of params.yaml and the one strict loader.

One section per stage, keyed by task (`train.gaze.adversarial_rounds`): the section name is the stage
name, the module in simgan/stages/ and the field here, so DVC's `params: [train.${item}]` names
exactly what a stage reads. Unknown, missing or mistyped keys fail with the dotted key.

The architecture and the first two phases of Algorithm 1 live in `pretrain`; the adversarial rounds
in `train`, so that changing the number of rounds re-runs train and what follows, not pretraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simgan.nn.discriminator import DISCRIMINATOR_PRESETS, DiscriminatorConfig
from simgan.nn.estimators import GazeEstimatorConfig, HourglassConfig
from simgan.nn.refiner import REFINER_PRESETS, RefinerConfig
from simgan.training.estimator import EstimatorTrainConfig
from simgan.training.refiner import TrainConfig

Task = Literal["gaze", "hand"]


class ConfigError(ValueError):
    """params.yaml does not match the models below; the message names the dotted key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PrepareParams(_Strict):
    """Raw data -> prepared arrays (simgan.data.prepare)."""

    synthetic_format: str = Field(description="reader of the synthetic domain: unityeyes, gaze_h5, nyu, folder")
    synthetic_path: str = Field(description="its path, relative to the repository root")
    real_format: str = Field(description="reader of the real domain: mpiigaze, gaze_h5, nyu, folder")
    real_path: str
    image_size: list[int] = Field(description="(height, width) of the prepared images, pixels", min_length=2, max_length=2)
    val_fraction: float = Field(ge=0, lt=1, description="synthetic rows held out for validation")
    test_fraction: float = Field(ge=0, lt=1, description="real rows held out as labelled test when there are no persons")
    test_persons: list[str] = Field(description="real persons held out as labelled test; never shown to the refiner")
    workers: int = Field(ge=0, description="reader processes; 0 = every core")


class PretrainParams(_Strict):
    """The networks and Algorithm 1's pretraining phases (simgan.training.refiner.TrainConfig)."""

    refiner_preset: Literal["eyes", "hands"]
    refiner_width: int = Field(ge=1, description="feature maps of the refiner's convs (paper: 64)")
    refiner_blocks: int = Field(ge=0, description="ResNet blocks (paper: 4 eyes, 10 hands)")
    refiner_preserve_background: bool = Field(
        description="depth maps: background pixels (0) pass through unrefined (simgan.nn.refiner.RefinerConfig)")
    discriminator_preset: Literal["eyes", "hands"]
    discriminator_head: Literal["local", "global"] = Field(
        description="local: the paper's per-patch logits; global: one fully connected logit (the §3.3 ablation)")
    batch_size: int = Field(ge=2)
    optimizer: Literal["sgd", "adam"]
    lr: float = Field(gt=0)
    momentum: float = Field(ge=0)
    self_reg_weight: float = Field(ge=0, description="λ, on the scale of self_reg_reduction (simgan.losses)")
    self_reg_feature: Literal["identity", "channel_mean", "gradients"]
    self_reg_reduction: Literal["sum", "mean"]
    adversarial_reduction: Literal["sum", "mean"]
    history_capacity: int = Field(ge=1, description="B, refined images kept for the discriminator")
    use_history: bool
    refiner_pretrain_steps: int = Field(ge=0)
    discriminator_pretrain_steps: int = Field(ge=0)
    seed: int
    device: str = Field(description="'auto' (cuda if available), 'cpu' or 'cuda[:N]'")


class TrainParams(_Strict):
    """Algorithm 1's adversarial rounds."""

    adversarial_rounds: int = Field(ge=0, description="T")
    refiner_steps_per_round: int = Field(ge=1, description="K_g")
    discriminator_steps_per_round: int = Field(ge=1, description="K_d")
    checkpoint_every_steps: int = Field(ge=1)
    log_every_steps: int = Field(ge=1)


class RefineParams(_Strict):
    """Refining the synthetic set with the trained refiner."""

    batch_size: int = Field(ge=1, description="images per forward pass")


class PackageParams(_Strict):
    """The refinement service of a task (service.py): baked into its bento as arguments by the package stage."""

    max_image_pixels: int = Field(ge=1, description="uploads with more pixels (W·H, read from the header) are "
                                  "refused before decoding: decompression bombs")
    max_batch_size: int = Field(ge=1, description="images per refine_batch request, and per adaptive batch")
    max_latency_ms: int = Field(ge=1, description="adaptive batching's latency budget, ms: BentoML sheds (503) a "
                                "request it predicts would take longer")
    allowed_formats: list[Literal["PNG", "JPEG"]] = Field(min_length=1, description="upload formats /refine accepts")
    allowed_modes: list[Literal["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK", "YCbCr"]] = Field(
        min_length=1, description="PIL modes /refine accepts; each is converted to 8-bit grey")
    workers: int = Field(ge=1, description="server processes, each refining one request at a time")
    torch_threads: int = Field(ge=1, description="torch intra-op threads per worker")


class _EstimateCommon(_Strict):
    """Training the task's estimator on each training set (simgan.training.estimator.EstimatorTrainConfig)."""

    train_on: list[Literal["synthetic", "refined"]] = Field(
        min_length=1, description="training sets; each gets its own estimator, same seed and schedule")
    train_images: int = Field(ge=0, description="training images per estimator (a random subset, the same for every "
                              "training set); 0 = all")
    larger_variant_factor: int = Field(ge=0, description="also train on this many times train_images (paper: 4× "
                                       "gaze, 3× hand); 0 = off")
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1, description="paper: 512")
    optimizer: Literal["sgd", "adam"]
    lr: float = Field(gt=0, description="paper: a constant 0.001")
    momentum: float = Field(ge=0)
    weight_decay: float = Field(ge=0)
    seed: int
    device: str = Field(description="'auto' (cuda if available), 'cpu' or 'cuda[:N]'")
    log_every_steps: int = Field(ge=1)
    checkpoint_every_steps: int = Field(ge=1)


class GazeEstimateParams(_EstimateCommon):
    widths: list[int] = Field(min_length=5, max_length=5, description="maps of the five convs (paper: 32 32 64 80 192)")
    hidden: int = Field(ge=1, description="units of the hidden fully connected layer (paper: 1000)")


class HandEstimateParams(_EstimateCommon):
    width: int = Field(ge=1, description="feature maps of the hourglass (Newell et al.: 256)")
    depth: int = Field(ge=1, description="down-sampling levels per hourglass (Newell et al.: 4)")
    num_stacks: int = Field(ge=1, description="hourglass blocks (paper: 2)")
    heatmap_size: list[int] = Field(min_length=2, max_length=2, description="(h, w) of the heatmaps (paper: 64×64)")
    heatmap_sigma_px: float = Field(gt=0, description="target Gaussian width, heatmap pixels (Newell et al.: 1)")
    augment: bool
    rotation_deg: float = Field(ge=0, description="paper: random rotations within ±20°")
    crop_shift_fraction: float = Field(ge=0, lt=1)
    crop_scale_fraction: float = Field(ge=0, lt=1)


class EstimateSection(_Strict):
    gaze: GazeEstimateParams
    hand: HandEstimateParams

    def __getitem__(self, task: str) -> GazeEstimateParams | HandEstimateParams:
        return getattr(self, task)


class EvaluateParams(_Strict):
    """Evaluation on the real test split, annotation preservation and realism (simgan.evaluation)."""

    realism_images: int = Field(ge=20, description="images per side of the classifier two-sample test (at most)")
    realism_steps: int = Field(ge=1, description="training steps of the two-sample test's classifier")
    turing_pairs: int = Field(ge=2, description="images on the visual Turing test page")
    seed: int
    batch_size: int = Field(ge=1, description="images per forward pass when estimating")


class Params(_Strict):
    prepare: dict[Task, PrepareParams]
    pretrain: dict[Task, PretrainParams]
    train: dict[Task, TrainParams]
    refine: dict[Task, RefineParams]
    package: dict[Task, PackageParams]
    estimate: EstimateSection
    evaluate: dict[Task, EvaluateParams]


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read params.yaml once; every problem is reported with its dotted key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such params file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        problems = [f"{'.'.join(str(part) for part in e['loc']) or '(top level)'}: {e['msg']}"
                    + (f" (got {e['input']!r})" if e["type"] != "missing" and not isinstance(e["input"], dict) else "")
                    for e in error.errors()]
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None


def model_configs(params: PretrainParams, image_size: tuple[int, int]) -> tuple[RefinerConfig, DiscriminatorConfig]:
    """The paper presets with this profile's width, blocks and image size."""
    refiner = REFINER_PRESETS[params.refiner_preset].to_dict()
    refiner.update(width=params.refiner_width, num_blocks=params.refiner_blocks, input_size=tuple(image_size),
                   preserve_background=params.refiner_preserve_background)
    discriminator = DISCRIMINATOR_PRESETS[params.discriminator_preset].to_dict()
    discriminator.update(input_size=tuple(image_size), head=params.discriminator_head)
    return RefinerConfig(**refiner), DiscriminatorConfig(**discriminator)


def train_config(pretrain: PretrainParams, train: TrainParams | None) -> TrainConfig:
    """One TrainConfig from both sections; without `train`, the schedule stops after pretraining."""
    rounds = dict(adversarial_rounds=0, refiner_steps_per_round=2, discriminator_steps_per_round=1,
                  checkpoint_every_steps=500, log_every_steps=10)
    if train is not None:
        rounds = train.model_dump()
    fields = pretrain.model_dump(exclude={"refiner_preset", "refiner_width", "refiner_blocks",
                                          "refiner_preserve_background", "discriminator_preset", "discriminator_head",
                                          "device"})
    return TrainConfig(**fields, **rounds)


def estimator_config(task: str, params: Params) -> GazeEstimatorConfig | HourglassConfig:
    """The task's estimator shape at the prepared image size."""
    image_size = tuple(params.prepare[task].image_size)
    section = params.estimate[task]
    if task == "gaze":
        return GazeEstimatorConfig(input_size=image_size, widths=tuple(section.widths), hidden=section.hidden)
    return HourglassConfig(input_size=image_size, width=section.width, depth=section.depth,
                           num_stacks=section.num_stacks, heatmap_size=tuple(section.heatmap_size))


def estimator_train_config(task: str, params: Params) -> EstimatorTrainConfig:
    section = params.estimate[task]
    fields = section.model_dump(include={"steps", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "seed",
                                         "log_every_steps", "checkpoint_every_steps"})
    if task == "hand":
        fields.update(section.model_dump(include={"augment", "rotation_deg", "crop_shift_fraction",
                                                  "crop_scale_fraction", "heatmap_sigma_px"}))
    else:
        fields["augment"] = False  # the paper trains the gaze CNN without augmentation
    return EstimatorTrainConfig(**fields)
