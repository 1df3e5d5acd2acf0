"""Test set-up: telemetry off, tool homes in temporary folders, tiny model configs shared by the tests."""

from __future__ import annotations

import os

# Telemetry off and no writes to the user's home, before any tool is imported.
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# Under pytest-xdist (`make test`: one worker per core) each worker, and every stage process it starts,
# computes on one thread: two workers with torch's default of one thread per core each would fight over
# the cores. For the same reason evaluate's realism classifiers stay in the stage's own process (spawning one
# per core would only add torch imports to the tiny runs; test_eval_realism checks the parallel path).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("SIMGAN_EVALUATE_WORKERS", "1")

import numpy as np
import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

from simgan.nn.discriminator import DISCRIMINATOR_PRESETS
from simgan.nn.refiner import RefinerConfig
from simgan.training.refiner import TrainConfig

# The paper's eyes discriminator (cheap at 35×55) with a narrow refiner: fast, same code paths.
TINY_REFINER = RefinerConfig(width=8, num_blocks=1, input_size=(35, 55))
EYES_DISCRIMINATOR = DISCRIMINATOR_PRESETS["gaze"]


def tiny_train_config(**overrides) -> TrainConfig:
    values = dict(
        batch_size=8,
        refiner_pretrain_steps=3,
        discriminator_pretrain_steps=2,
        adversarial_rounds=4,
        history_capacity=16,
        log_every_steps=1,
        checkpoint_every_steps=1000,
        seed=0,
    )
    return TrainConfig(**{**values, **overrides})


def tiny_trainer(synthetic, real, *, device: str = "cpu", refiner_config=None, **overrides):
    """The tests' SimGANTrainer: the tiny refiner (or `refiner_config`), the paper's eyes discriminator,
    `tiny_train_config(**overrides)`."""
    from simgan.training.refiner import SimGANTrainer

    return SimGANTrainer(
        synthetic,
        real,
        refiner_config=refiner_config or TINY_REFINER,
        discriminator_config=EYES_DISCRIMINATOR,
        config=tiny_train_config(**overrides),
        device=device,
        progress=False,
    )


@pytest.fixture
def eye_images() -> tuple[np.ndarray, np.ndarray]:
    """(synthetic, real) uint8 (64, 35, 55) arrays with different statistics."""
    rng = np.random.default_rng(0)
    synthetic = rng.integers(60, 200, size=(64, 35, 55), dtype=np.uint8)
    real = np.clip(rng.normal(120, 40, size=(64, 35, 55)), 0, 255).astype(np.uint8)
    return synthetic, real


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
