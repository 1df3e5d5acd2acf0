"""params.yaml: its sections, and the one strict loader that checks every value before any stage runs.

One section per stage, keyed by task (`train.gaze.adversarial_rounds`): the section name is the stage
name and the module in simgan/stages/, so DVC's `params: [train.${item}]` names exactly what a stage
reads. Settings that are not a stage's own (device, threads) sit in the `runtime` section, which the
stages that read it declare in dvc.yaml.

Each knob is declared once. Where the library has a config for it, the section *is* that config's
fields — their types, bounds, meanings and paper defaults come from the library declaration
(`simgan.schema`), and a value left out takes the library's default:

    pretrain.<task>              TrainConfig's pretraining fields (simgan.training.configs), plus
      .refiner                   RefinerConfig fields over the task's paper refiner (simgan.nn.configs)
      .discriminator             DiscriminatorConfig fields over the task's paper discriminator
    train.<task>                 TrainConfig's adversarial-round fields (T, K_g, K_d, cadence)
    estimate.<task>.model        the task's estimator config fields (simgan.nn.configs)
    estimate.<task>.training     EstimatorTrainConfig fields (simgan.training.configs)

`input_size` of every network is `prepare.<task>.image_size`. The architecture and the first two phases
of Algorithm 1 live in `pretrain` and the adversarial rounds in `train`, so that changing the number of
rounds re-runs train and what follows, not pretraining.

Unknown, missing, mistyped or out-of-range values, a duplicated YAML key, and combinations that cannot
work (an image size the discriminator cannot take, fractions that leave nothing to train on) are
refused by `load_params`, each named by its dotted key.

Loading and checking params.yaml does not import torch: the library configs are declared in torch-free
modules (simgan.nn.configs, simgan.training.configs), so the stages that do not compute with torch
(prepare, validate, report) and `simgan check` start without its import (a test keeps it so).
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from simgan.data.formats.folder import RESIZE_FILTERS
from simgan.data.prepare import TEST_SPLITS, RealSplit, Source, source
from simgan.nn.configs import DiscriminatorConfig, GazeEstimatorConfig, HourglassConfig, RefinerConfig
from simgan.schema import Tuple, problems
from simgan.tasks import TASKS
from simgan.training.configs import ESTIMATOR_SPECS, EstimatorTrainConfig, TrainConfig

FORMATS = ("unityeyes", "mpiigaze", "gaze_h5", "nyu", "folder")
ROUND_FIELDS = (
    "adversarial_rounds",
    "refiner_steps_per_round",
    "discriminator_steps_per_round",
    "refiner_ema_decay",
    "checkpoint_every_steps",
    "log_every_steps",
)
"""TrainConfig fields of the `train` section; the other TrainConfig fields are `pretrain`'s."""

STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ConfigError(ValueError):
    """params.yaml does not match the sections below; the message names the dotted key."""


class _Section(BaseModel):
    model_config = STRICT


def fields_of(
    cls,
    name: str,
    *,
    include: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
    base: type[BaseModel] = _Section,
    **extra,
) -> type[BaseModel]:
    """A section model whose fields are the library config `cls`'s own declarations (type, bounds, meaning,
    default): the knob is declared once, in the library, and validated by the same declaration here."""
    chosen = {
        key: (info.annotation, copy.copy(info))
        for key, info in cls.__pydantic_fields__.items()
        if (include is None or key in include) and key not in exclude
    }
    return create_model(name, __base__=base, **chosen, **extra)


# ------------------------------------------------------------------------------------------ sections
class Runtime(_Section):
    """Where and how the stages compute; not a hyperparameter (results do not depend on it beyond
    floating-point rounding)."""

    device: Annotated[
        str,
        Field(
            pattern=r"^(auto|cpu|cuda(:\d+)?)$",
            description="'auto' (CUDA if present, else the CPU), 'cpu', 'cuda' or 'cuda:N'",
        ),
    ] = "auto"
    threads: Annotated[
        int, Field(ge=0, description="torch intra-op threads per stage process; 0 = torch's default (one per core)")
    ] = 0


class PrepareParams(_Section):
    """Raw data -> prepared arrays (simgan.data.prepare). The real data has two roles: the refiner's real
    images (`real_*`: unlabelled, any supported format, labels ignored) and, optionally, labelled real
    test images (`test_split`), which alone let the estimators be compared on real data."""

    synthetic_format: Literal[FORMATS] = Field(description="reader of the synthetic domain")
    synthetic_path: str = Field(min_length=1, description="its path, relative to the repository root")
    synthetic_eye_width_factor: float = Field(
        default=1.5,
        ge=1.0,
        le=3.0,
        description="unityeyes only: crop width over the eye's corner-to-corner distance (GazeML: 1.5; "
        "MPIIGaze's normalised eyes are framed tighter, ≈ 1.2): match the real images' framing, which a "
        "refiner cannot learn without moving the pupil",
    )
    synthetic_equalize: bool = Field(
        default=False,
        description="unityeyes only: histogram-equalise each synthetic crop (OpenCV equalizeHist), as "
        "MPIIGaze's normalised eyes are and as GazeML does to UnityEyes crops",
    )
    real_format: Literal[FORMATS] = Field(description="reader of the real images (labels are not used)")
    real_path: str = Field(min_length=1, description="its path, relative to the repository root")
    real_resize: Literal[tuple(RESIZE_FILTERS)] = Field(
        default="none",
        description="unlabelled folder images of another size: centre-cropped to the task's aspect, then "
        "resized with this filter ('none': quarantined). 'nearest' for depth; labelled images are never resized",
    )
    image_size: Annotated[tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]], Tuple] = Field(
        description="(height, width) of the prepared images, pixels"
    )
    val_fraction: float = Field(ge=0, lt=1, description="synthetic rows held out for validation")
    test_split: Literal[TEST_SPLITS] = Field(
        description="where labelled real test images come from: persons (test_persons of the real data), "
        "fraction (test_fraction of the real data by id hash), evaluation_subset (MPIIGaze's standard "
        "per-person test lists under real_path), source (test_format/test_path), none (no labelled real "
        "images: the estimator comparison is skipped)"
    )
    test_persons: list[str] = Field(
        default=[], description="test_split persons: real persons held out as labelled test; each must exist"
    )
    test_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="test_split fraction: share of the real rows held out as labelled test"
    )
    test_format: Literal[FORMATS] | None = Field(default=None, description="test_split source: its reader")
    test_path: str | None = Field(default=None, min_length=1, description="test_split source: its path")
    holdout_fraction: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="share of the non-test real rows never shown to the refiner, kept for the realism test "
        "(needs no labels); 0: the realism test uses the labelled test rows",
    )
    workers: int = Field(ge=0, description="reader processes; 0 = every core")

    @model_validator(mode="after")
    def _fractions(self):
        formats = (self.synthetic_format, self.real_format, self.test_format)
        if "nyu" in formats and self.image_size[0] != self.image_size[1]:
            raise ValueError(f"image_size must be square for NYU crops; got {list(self.image_size)}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 (got {self.val_fraction} + "
                f"{self.test_fraction}): nothing would be left to train on"
            )
        if self.test_fraction + self.holdout_fraction >= 1:
            raise ValueError(
                f"test_fraction + holdout_fraction must be < 1 (got {self.test_fraction} + "
                f"{self.holdout_fraction}): no real image would be left for the refiner"
            )
        if self.test_split == "evaluation_subset" and self.real_format != "mpiigaze":
            raise ValueError(
                f"test_split evaluation_subset reads MPIIGaze's lists: real_format must be mpiigaze, "
                f"not {self.real_format}"
            )
        needs = {
            "persons": ("test_persons", bool(self.test_persons)),
            "fraction": ("test_fraction", self.test_fraction > 0),
            "source": ("test_format and test_path", self.test_format is not None and self.test_path is not None),
        }
        if self.test_split in needs and not needs[self.test_split][1]:
            raise ValueError(f"test_split {self.test_split} needs {needs[self.test_split][0]}")
        for split, (keys, given) in needs.items():
            if given and split != self.test_split:
                raise ValueError(
                    f"{keys} given, but test_split is {self.test_split}: they are read only with test_split {split}"
                )
        crop_options = {"synthetic_eye_width_factor", "synthetic_equalize"} & self.model_fields_set
        if crop_options and self.synthetic_format != "unityeyes":
            raise ValueError(
                f"{', '.join(sorted(crop_options))} apply to the unityeyes format; synthetic_format is "
                f"{self.synthetic_format}"
            )
        if self.real_resize != "none" and self.real_format != "folder":
            raise ValueError(
                f"real_resize applies to the folder format (the others bring images to the size "
                f"themselves); real_format is {self.real_format}"
            )
        if self.real_resize != "none" and self.test_split in ("persons", "fraction"):
            raise ValueError(
                f"real_resize {self.real_resize}: the real images are labelled test images too "
                f"(test_split {self.test_split}), and labelled images are never resized"
            )
        return self

    def real_split(self) -> RealSplit:
        return RealSplit(self.test_split, tuple(self.test_persons), self.test_fraction, self.holdout_fraction)

    def sources(self) -> dict[str, Source]:
        """The readers of synthetic, real (unlabelled unless its rows are the test rows too) and test."""
        size = tuple(self.image_size)
        unlabelled = self.test_split not in ("persons", "fraction", "evaluation_subset")
        sources = {
            "synthetic": source(
                self.synthetic_format,
                self.synthetic_path,
                "synthetic",
                size,
                crop={"eye_width_factor": self.synthetic_eye_width_factor, "equalize": self.synthetic_equalize}
                if self.synthetic_format == "unityeyes"
                else None,
            ),
            "real": source(
                self.real_format, self.real_path, "real", size, unlabelled=unlabelled, resize=self.real_resize
            ),
        }
        if self.test_split == "source":
            sources["test"] = source(self.test_format, self.test_path, "real", size)
        return sources


RefinerOverrides = fields_of(RefinerConfig, "RefinerOverrides", exclude=("input_size",))
DiscriminatorOverrides = fields_of(DiscriminatorConfig, "DiscriminatorOverrides", exclude=("input_size",))
PretrainParams = fields_of(
    TrainConfig,
    "PretrainParams",
    exclude=ROUND_FIELDS,
    refiner=(RefinerOverrides, Field(default_factory=RefinerOverrides, description="over the task's paper refiner")),
    discriminator=(
        DiscriminatorOverrides,
        Field(default_factory=DiscriminatorOverrides, description="over the task's paper discriminator"),
    ),
)
TrainParams = fields_of(TrainConfig, "TrainParams", include=ROUND_FIELDS)
EstimatorTraining = fields_of(EstimatorTrainConfig, "EstimatorTraining")


class RefineParams(_Section):
    """Refining the synthetic set with the trained refiner."""

    batch_size: int = Field(ge=1, description="images per forward pass")


class PackageParams(_Section):
    """The refinement service of a task (service.py): baked into its bento as arguments by the package stage."""

    max_image_pixels: int = Field(
        ge=1,
        description="uploads with more pixels (W·H, read from the header) are "
        "refused before decoding: decompression bombs",
    )
    max_batch_size: int = Field(ge=1, description="images per refine_batch request, and per adaptive batch")
    max_latency_ms: int = Field(
        ge=1,
        description="adaptive batching's latency budget, ms: BentoML sheds (503) a "
        "request it predicts would take longer",
    )
    allowed_formats: list[Literal["PNG", "JPEG"]] = Field(min_length=1, description="upload formats /refine accepts")
    allowed_modes: list[Literal["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK", "YCbCr"]] = Field(
        min_length=1, description="PIL modes /refine accepts; each is converted to 8-bit grey"
    )
    workers: int = Field(ge=1, description="server processes, each refining one request at a time")
    torch_threads: int = Field(ge=1, description="torch intra-op threads per worker")


class _EstimateBase(_Section):
    """The task's estimator trained on each training set, same seed and schedule (simgan.training.estimator)."""

    train_on: list[Literal["synthetic", "refined"]] = Field(
        min_length=1, description="training sets; each gets its own estimator, same seed and schedule"
    )
    train_images: int = Field(
        ge=0, description="training images per estimator (a random subset, the same for every training set); 0 = all"
    )
    larger_variant_factor: int = Field(
        ge=0, description="also train on this many times train_images (paper: 4× gaze, 3× hand); 0 = off"
    )
    training: EstimatorTraining = Field(default_factory=EstimatorTraining)

    @model_validator(mode="after")
    def _variant(self):
        if self.larger_variant_factor > 0 and self.train_images == 0:
            raise ValueError(
                "larger_variant_factor needs train_images > 0 (the larger set is that many times train_images)"
            )
        return self


ESTIMATE_SECTIONS = {
    "gaze": fields_of(GazeEstimatorConfig, "GazeModel", exclude=("input_size",)),
    "hand": fields_of(HourglassConfig, "HourglassModel", exclude=("input_size",)),
}
GazeEstimateParams = create_model(
    "GazeEstimateParams",
    __base__=_EstimateBase,
    model=(ESTIMATE_SECTIONS["gaze"], Field(default_factory=ESTIMATE_SECTIONS["gaze"])),
)
HandEstimateParams = create_model(
    "HandEstimateParams",
    __base__=_EstimateBase,
    model=(ESTIMATE_SECTIONS["hand"], Field(default_factory=ESTIMATE_SECTIONS["hand"])),
)


class EvaluateParams(_Section):
    """Evaluation on the real test split, annotation preservation and realism (simgan.evaluation)."""

    realism_images: int = Field(ge=20, description="images per side of the classifier two-sample test (at most)")
    realism_steps: int = Field(ge=1, description="training steps of the two-sample test's classifier")
    realism_budgets: list[Annotated[int, Field(ge=1)]] = Field(
        default=[30, 100, 300],
        min_length=1,
        description="training budgets (steps) at which the standardised classifier's held-out AUC is "
        "reported: short budgets do not saturate on real data (simgan.evaluation.realism.classifier_auc)",
    )
    realism_seeds: int = Field(default=3, ge=1, description="classifier seeds per AUC (mean ± std over them)")
    turing_pairs: int = Field(ge=2, description="images on the visual Turing test page")
    seed: int
    batch_size: int = Field(ge=1, description="images per forward pass when estimating")


S = TypeVar("S")
G = TypeVar("G")
H = TypeVar("H")


class PerTask(_Section, Generic[G, H]):
    """One entry per task, both required."""

    gaze: G
    hand: H

    def __getitem__(self, task: str):
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
        return getattr(self, task)


class Params(_Section):
    runtime: Runtime = Field(default_factory=Runtime)
    prepare: PerTask[PrepareParams, PrepareParams]
    pretrain: PerTask[PretrainParams, PretrainParams]
    train: PerTask[TrainParams, TrainParams]
    refine: PerTask[RefineParams, RefineParams]
    package: PerTask[PackageParams, PackageParams]
    estimate: PerTask[GazeEstimateParams, HandEstimateParams]
    evaluate: PerTask[EvaluateParams, EvaluateParams]

    @model_validator(mode="after")
    def _pupils_are_eyes(self):
        if self.pretrain.hand.self_reg_pupil_weight:
            raise ValueError(
                f"pretrain.hand.self_reg_pupil_weight is {self.pretrain.hand.self_reg_pupil_weight}: the "
                "pupil-region term needs eyes (it locates each synthetic eye's pupil); set it to 0 for hands"
            )
        return self

    # ---------------------------------------------------------------- the library configs, built from params
    def image_size(self, task: str) -> tuple[int, int]:
        return tuple(self.prepare[task].image_size)

    def refiner_config(self, task: str) -> RefinerConfig:
        """The task's paper refiner with this profile's overrides, at the prepared image size."""
        overrides = self.pretrain[task].refiner.model_dump(exclude_unset=True)
        return RefinerConfig(**{**TASKS[task].refiner.to_dict(), **overrides, "input_size": self.image_size(task)})

    def discriminator_config(self, task: str) -> DiscriminatorConfig:
        overrides = self.pretrain[task].discriminator.model_dump(exclude_unset=True)
        return DiscriminatorConfig(
            **{**TASKS[task].discriminator.to_dict(), **overrides, "input_size": self.image_size(task)}
        )

    def train_config(self, task: str, *, with_rounds: bool = True) -> TrainConfig:
        """Algorithm 1's config; without rounds (the pretrain stage) the schedule stops after pretraining."""
        pretrain = self.pretrain[task].model_dump(exclude={"refiner", "discriminator"}, exclude_unset=True)
        rounds = self.train[task].model_dump(exclude_unset=True) if with_rounds else {"adversarial_rounds": 0}
        return TrainConfig(**pretrain, **rounds)

    def estimator_config(self, task: str) -> GazeEstimatorConfig | HourglassConfig:
        model = self.estimate[task].model.model_dump(exclude_unset=True)
        return ESTIMATOR_SPECS[task].config_class(**model, input_size=self.image_size(task))

    def estimator_train_config(self, task: str) -> EstimatorTrainConfig:
        return EstimatorTrainConfig(**self.estimate[task].training.model_dump(exclude_unset=True))

    def training_sets(self, task: str) -> dict[str, tuple[str, int]]:
        """{name: (source, images)} the estimate stage trains on: `synthetic`, `refined` and, with
        larger_variant_factor k, `synthetic_kx`-style sets of k × train_images (0 images = all)."""
        section = self.estimate[task]
        sets = {name: (name, section.train_images) for name in section.train_on}
        if section.larger_variant_factor > 0:
            factor = section.larger_variant_factor
            sets |= {f"{name}_{factor}x": (name, section.train_images * factor) for name in section.train_on}
        return sets

    def check(self) -> list[str]:
        """Build every library config of every task; the problems found, each with its dotted key."""
        found = []
        for task in TASKS:
            builders = (
                (f"pretrain.{task}.refiner", partial(self.refiner_config, task)),
                (f"pretrain.{task}.discriminator", partial(self.discriminator_config, task)),
                (f"pretrain.{task}", partial(self.train_config, task, with_rounds=False)),
                (f"train.{task}", partial(self.train_config, task)),
                (f"estimate.{task}.model", partial(self.estimator_config, task)),
                (f"estimate.{task}.training", partial(self.estimator_train_config, task)),
            )
            failed = set()
            for key, build in builders:
                if key == f"train.{task}" and f"pretrain.{task}" in failed:
                    continue  # the same TrainConfig problem, already named under pretrain
                try:
                    build()
                except ValidationError as error:
                    failed.add(key)
                    found += [_blame_size(line, task) for line in problems(error, key)]
            training = self.estimate[task].training
            if training.augment and not ESTIMATOR_SPECS[task].augments:
                found.append(
                    f"estimate.{task}.training.augment: {task} targets do not move with the pixels, so "
                    "rotations and crops would corrupt the labels; set it to false"
                )
        return found


def _blame_size(line: str, task: str) -> str:
    """An image size a network cannot take is prepare.<task>.image_size's fault, not the network's."""
    if "image size" in line:
        return f"prepare.{task}.image_size (as {line.split(':', 1)[0]} sees it):{line.split(':', 1)[1]}"
    return line


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML itself keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (first {seen[key]}, again {key_node.start_mark})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read params.yaml once; every problem is reported with its dotted key, none goes unchecked."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such params file")
    raw = read_yaml(path)
    try:
        params = Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path}: " + "; ".join(problems(error))) from None
    found = params.check()
    if found:
        raise ConfigError(f"{path}: " + "; ".join(found))
    return params
