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
from simgan.nn.refiner import REFINER_PRESETS, RefinerConfig
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
    discriminator_preset: Literal["eyes", "hands"]
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


class Params(_Strict):
    prepare: dict[Task, PrepareParams]
    pretrain: dict[Task, PretrainParams]
    train: dict[Task, TrainParams]
    refine: dict[Task, RefineParams]


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
    refiner.update(width=params.refiner_width, num_blocks=params.refiner_blocks, input_size=tuple(image_size))
    discriminator = DISCRIMINATOR_PRESETS[params.discriminator_preset].to_dict()
    discriminator.update(input_size=tuple(image_size))
    return RefinerConfig(**refiner), DiscriminatorConfig(**discriminator)


def train_config(pretrain: PretrainParams, train: TrainParams | None) -> TrainConfig:
    """One TrainConfig from both sections; without `train`, the schedule stops after pretraining."""
    rounds = dict(adversarial_rounds=0, refiner_steps_per_round=2, discriminator_steps_per_round=1,
                  checkpoint_every_steps=500, log_every_steps=10)
    if train is not None:
        rounds = train.model_dump()
    fields = pretrain.model_dump(exclude={"refiner_preset", "refiner_width", "refiner_blocks", "discriminator_preset",
                                          "device"})
    return TrainConfig(**fields, **rounds)
