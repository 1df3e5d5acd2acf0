"""A trainer continues a killed run from its checkpoint, and only a killed run of the same training
(simgan.training.loop.TrainingLoop.resume_if_unfinished, which the training stages call)."""

from __future__ import annotations

import dataclasses

import torch
from conftest import EYES_DISCRIMINATOR, TINY_REFINER, tiny_train_config, tiny_trainer

from simgan.stages.common import fingerprint
from simgan.training.refiner import SimGANTrainer


def stage_trainer(synthetic, real, **overrides) -> SimGANTrainer:
    """What build_trainer makes: a trainer that records the fingerprint of its data."""
    trainer = tiny_trainer(synthetic, real, **overrides)
    trainer.provenance["data_fingerprint"] = fingerprint(synthetic, real)
    return trainer


def resume_if_killed(trainer, checkpoint, description):
    trainer.description = description
    return trainer.resume_if_unfinished(checkpoint)


def test_a_killed_run_continues_to_the_weights_of_a_straight_run(eye_images, tmp_path):
    synthetic, real = eye_images
    checkpoint = tmp_path / "checkpoint.pt"
    straight = stage_trainer(synthetic, real)
    assert not resume_if_killed(straight, checkpoint, "train@gaze")  # nothing to continue
    straight.fit()

    killed = stage_trainer(synthetic, real)
    killed.fit(checkpoint_path=checkpoint, stop_at_step=3)  # the checkpoint a killed run leaves behind
    rerun = stage_trainer(synthetic, real)
    assert resume_if_killed(rerun, checkpoint, "train@gaze") and rerun.step == 3
    rerun.fit(checkpoint_path=checkpoint)
    for ours, theirs in zip(rerun.refiner.state_dict().values(), straight.refiner.state_dict().values()):
        assert torch.equal(ours, theirs)
    # finished: a later run (DVC re-runs a stage only when something changed) starts again
    assert not resume_if_killed(stage_trainer(synthetic, real), checkpoint, "train@gaze")


def test_only_a_run_of_the_same_networks_schedule_and_data_is_continued(eye_images, tmp_path, capsys):
    synthetic, real = eye_images
    checkpoint = tmp_path / "checkpoint.pt"
    stage_trainer(synthetic, real).fit(checkpoint_path=checkpoint, stop_at_step=2)
    assert resume_if_killed(stage_trainer(synthetic, real), checkpoint, "pretrain@gaze")
    assert "pretrain@gaze: resuming at step 2" in capsys.readouterr().err

    assert not resume_if_killed(stage_trainer(synthetic[::-1].copy(), real), checkpoint, "s")  # other data
    assert not resume_if_killed(stage_trainer(synthetic, real, lr=0.01), checkpoint, "s")  # another schedule
    other_refiner = SimGANTrainer(
        synthetic,
        real,
        refiner_config=dataclasses.replace(TINY_REFINER, width=4),
        discriminator_config=EYES_DISCRIMINATOR,
        config=tiny_train_config(),
        device="cpu",
        progress=False,
    )
    other_refiner.provenance["data_fingerprint"] = fingerprint(synthetic, real)
    assert not resume_if_killed(other_refiner, checkpoint, "s")  # other network: never loaded

    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated by a crash of the disk, say
    assert not resume_if_killed(stage_trainer(synthetic, real), checkpoint, "s")
    assert f"ignoring {checkpoint}" in capsys.readouterr().err
