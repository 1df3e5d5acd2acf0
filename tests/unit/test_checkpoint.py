"""Checkpoints: atomic writes, weights_only loading, clear refusal of corrupt or foreign files."""

from __future__ import annotations

import pytest
import torch
from conftest import EYES_DISCRIMINATOR, TINY_REFINER, tiny_train_config, tiny_trainer

from simgan.io import atomic_write
from simgan.nn.refiner import RefinerConfig
from simgan.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from simgan.training.refiner import SimGANTrainer


def trained(images, refiner_config=TINY_REFINER, **overrides) -> SimGANTrainer:
    synthetic, real = images
    trainer = SimGANTrainer(
        synthetic,
        real,
        refiner_config=refiner_config,
        discriminator_config=EYES_DISCRIMINATOR,
        config=tiny_train_config(**overrides),
        device="cpu",
        progress=False,
    )
    trainer.fit(stop_at_step=2)
    return trainer


def test_interrupted_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    save_checkpoint(target, {"step": 1})

    def crash_halfway(handle):
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the process is stopped mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash_halfway)
    assert load_checkpoint(target)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind


def test_checkpoint_holds_everything_needed_to_resume(eye_images, tmp_path):
    trainer = trained(eye_images)
    trainer.save(tmp_path / "c.pt")
    state = load_checkpoint(tmp_path / "c.pt")
    assert {
        "refiner_config",
        "discriminator_config",
        "train_config",
        "refiner",
        "discriminator",
        "refiner_optimizer",
        "discriminator_optimizer",
        "history",
        "rng",
        "step",
    } <= set(state)
    assert state["step"] == 2 and RefinerConfig(**state["refiner_config"]) == TINY_REFINER


@pytest.mark.parametrize("damage", ["garbage", "short text", "truncated", "empty"])
def test_corrupt_files_are_refused_with_their_path(eye_images, tmp_path, damage):
    path = tmp_path / "damaged.pt"
    if damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint at all" * 10)
    elif damage == "short text":  # the weights-only unpickler fails on it with an IndexError
        path.write_bytes(b"truncated")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        trained(eye_images).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"{path}: not a readable simgan checkpoint"):
        load_checkpoint(path)


def test_pickled_code_is_never_run(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "simgan-checkpoint", "payload": torch.nn.Linear(2, 2)}, path)  # a pickled module
    with pytest.raises(CheckpointError, match="not a readable simgan checkpoint"):
        load_checkpoint(path)


def test_foreign_and_missing_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a simgan checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_other_architecture_is_refused(eye_images, tmp_path):
    trained(eye_images).save(tmp_path / "c.pt")
    wider = RefinerConfig(width=16, num_blocks=1, input_size=(35, 55))
    synthetic, real = eye_images
    other = SimGANTrainer(
        synthetic,
        real,
        refiner_config=wider,
        discriminator_config=EYES_DISCRIMINATOR,
        config=tiny_train_config(),
        device="cpu",
        progress=False,
    )
    with pytest.raises(CheckpointError, match=r"c.pt: checkpoint was trained with RefinerConfig\(.*width=8"):
        other.load(tmp_path / "c.pt")


def test_other_history_capacity_is_refused(eye_images, tmp_path):
    trained(eye_images).save(tmp_path / "c.pt")
    synthetic, real = eye_images
    other = tiny_trainer(synthetic, real, history_capacity=32)
    with pytest.raises(CheckpointError, match="history in checkpoint has capacity 16"):
        other.load(tmp_path / "c.pt")
