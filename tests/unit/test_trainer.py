"""Algorithm 1 as phases: schedule, self-reg-only pretraining, K_g/K_d, determinism, exact resume, D watch."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import EYES_DISCRIMINATOR, TINY_REFINER, tiny_train_config, tiny_trainer

from simgan.losses import self_regularization_loss
from simgan.nn.refiner import Refiner
from simgan.training.refiner import SimGANTrainer, StuckDiscriminatorWarning, TrainConfig, build_schedule


def make_trainer(images, **overrides) -> SimGANTrainer:
    synthetic, real = images
    return tiny_trainer(synthetic, real, **overrides)


def assert_refiner_took_the_sgd_step(trainer, expected: Refiner, loss, lr: float, what: str) -> None:
    """`expected` (a copy of the refiner before the step) takes a hand-made SGD step on `loss`; the trainer's
    refiner must hold the same weights."""
    loss.backward()
    with torch.no_grad():
        for p in expected.parameters():
            p -= lr * p.grad
    for (name, got), want in zip(trainer.refiner.state_dict().items(), expected.state_dict().values()):
        torch.testing.assert_close(got, want, msg=f"refiner.{name} differs from {what}")


class Calls:
    """Counts forward passes of a module and optimiser steps, by phase."""

    def __init__(self, trainer: SimGANTrainer):
        self.trainer, self.log = trainer, []
        trainer.discriminator.register_forward_hook(lambda *_: self.log.append((self.phase, "D forward")))
        trainer.refiner_optimizer.register_step_post_hook(lambda *_: self.log.append((self.phase, "R step")))
        trainer.discriminator_optimizer.register_step_post_hook(lambda *_: self.log.append((self.phase, "D step")))

    @property
    def phase(self) -> str:
        return self.trainer.phase_at(self.trainer.step).name

    def count(self, phase: str, what: str) -> int:
        return sum(1 for entry in self.log if entry == (phase, what))


def test_schedule_is_algorithm_1_with_paper_defaults():
    phases = build_schedule(TrainConfig())
    assert [(p.name, p.steps, p.refiner_updates, p.discriminator_updates, p.adversarial) for p in phases] == [
        ("refiner_pretrain", 1000, 1, 0, False),
        ("discriminator_pretrain", 200, 0, 1, False),
        ("adversarial", 10_000, 2, 1, True),
    ]
    defaults = TrainConfig()
    assert (
        defaults.optimizer,
        defaults.lr,
        defaults.refiner_steps_per_round,
        defaults.discriminator_steps_per_round,
    ) == ("sgd", 0.001, 2, 1)


def test_the_pupil_region_term_joins_the_refiner_step(eye_images):
    """With β > 0 a pretraining step is a hand-made step on λ·ℓ_reg + β·Σ m·|x̃ − x|, m at the located pupils."""
    from simgan.evaluation.preservation import pupil_centres
    from simgan.losses import gaussian_region, region_loss

    synthetic_images = eye_images[0].copy()
    synthetic_images[:, 15:20, 30:35] = 5  # a dark pupil to find, at (32, 17)
    trainer = make_trainer(
        (synthetic_images, eye_images[1]),
        refiner_pretrain_steps=1,
        self_reg_weight=0.5,
        self_reg_pupil_weight=3.0,
        self_reg_pupil_sigma=0.1,
        lr=0.01,
        optimizer="sgd",
    )
    centres = pupil_centres(synthetic_images)
    np.testing.assert_allclose(trainer._pupils.numpy(), centres)
    assert np.abs(centres - [32, 17]).max() < 1.0
    expected = Refiner(TINY_REFINER)
    expected.load_state_dict(trainer.refiner.state_dict())
    generator_copy = torch.Generator()
    generator_copy.set_state(trainer.generator.get_state())

    trainer.fit(stop_at_step=1)

    index = torch.randint(64, (8,), generator=generator_copy)
    synthetic = torch.from_numpy(synthetic_images)[index].unsqueeze(1).float() * (2 / 255) - 1
    refined = expected(synthetic)
    region = gaussian_region(torch.from_numpy(centres).float()[index], 35, 55, 0.1 * 55)
    loss = 0.5 * self_regularization_loss(refined, synthetic, "identity", "sum") + 3.0 * region_loss(
        refined, synthetic, region, "sum"
    )
    assert_refiner_took_the_sgd_step(trainer, expected, loss, 0.01, "a step with the pupil term")


def test_the_pupil_region_term_needs_grey_eyes(eye_images):
    colour = np.repeat(eye_images[0][:, None], 3, axis=1)
    with pytest.raises(ValueError, match="locates pupils in grey eyes; the synthetic images have 3 channels"):
        SimGANTrainer(
            colour,
            np.repeat(eye_images[1][:, None], 3, axis=1),
            refiner_config=replace(TINY_REFINER, channels=3),
            discriminator_config=replace(EYES_DISCRIMINATOR, channels=3),
            config=tiny_train_config(self_reg_pupil_weight=1.0),
            device="cpu",
            progress=False,
        )


def test_each_phase_does_what_it_says(eye_images):
    trainer = make_trainer(
        eye_images,
        refiner_pretrain_steps=3,
        discriminator_pretrain_steps=2,
        adversarial_rounds=2,
        refiner_steps_per_round=3,
        discriminator_steps_per_round=2,
    )
    calls = Calls(trainer)
    trainer.fit()
    # refiner pretraining: R steps only, and D is never even evaluated (no adversarial term)
    assert calls.count("refiner_pretrain", "R step") == 3
    assert calls.count("refiner_pretrain", "D forward") == 0 and calls.count("refiner_pretrain", "D step") == 0
    assert calls.count("discriminator_pretrain", "D step") == 2 and calls.count("discriminator_pretrain", "R step") == 0
    # adversarial rounds: K_g = 3 R steps (each evaluates D once) and K_d = 2 D steps per round
    assert calls.count("adversarial", "R step") == 2 * 3 and calls.count("adversarial", "D step") == 2 * 2
    assert calls.count("adversarial", "D forward") == 2 * 3 + 2 * 2
    assert trainer.step == trainer.total_steps == 7


def test_refiner_pretraining_minimises_self_regularisation_only(eye_images):
    """One pretraining step equals a hand-made SGD step on λ·ℓ_reg, whatever D says."""
    trainer = make_trainer(eye_images, refiner_pretrain_steps=1, self_reg_weight=0.5, lr=0.01, momentum=0.0)
    with torch.no_grad():  # a D that would give a huge adversarial gradient if it were used
        for p in trainer.discriminator.parameters():
            p.mul_(100)
    expected = Refiner(TINY_REFINER)
    expected.load_state_dict(trainer.refiner.state_dict())
    discriminator_before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    generator_copy = torch.Generator()
    generator_copy.set_state(trainer.generator.get_state())

    trainer.fit(stop_at_step=1)

    index = torch.randint(64, (8,), generator=generator_copy)
    synthetic = torch.from_numpy(eye_images[0])[index].unsqueeze(1).float() * (2 / 255) - 1
    loss = 0.5 * self_regularization_loss(expected(synthetic), synthetic, "identity", "sum")
    assert_refiner_took_the_sgd_step(trainer, expected, loss, 0.01, "a self-reg-only step")
    for name, value in trainer.discriminator.state_dict().items():
        assert torch.equal(value, discriminator_before[name])


def test_discriminator_pretraining_leaves_the_refiner_alone(eye_images):
    trainer = make_trainer(eye_images, refiner_pretrain_steps=0, discriminator_pretrain_steps=3, adversarial_rounds=0)
    before = {k: v.clone() for k, v in trainer.refiner.state_dict().items()}
    trainer.fit()
    assert all(torch.equal(v, before[k]) for k, v in trainer.refiner.state_dict().items())


def test_metrics_reach_the_callback(eye_images):
    reports = []
    synthetic, real = eye_images
    trainer = SimGANTrainer(
        synthetic,
        real,
        refiner_config=TINY_REFINER,
        discriminator_config=EYES_DISCRIMINATOR,
        config=tiny_train_config(log_every_steps=2),
        progress=False,
        report=lambda step, metrics: reports.append((step, metrics)),
    )
    trainer.fit()
    steps = [step for step, _ in reports]
    assert steps == [2, 3, 4, 5, 6, 8, 9]  # every 2 steps, plus the phase ends (3, 5) and the end (9)
    adversarial = reports[-1][1]
    assert {
        "refiner/adversarial",
        "refiner/self_reg",
        "discriminator/acc_real",
        "discriminator/acc_refined",
        "discriminator/loss",
        "discriminator/grad_norm",
    } <= set(adversarial)
    assert "refiner/adversarial" not in reports[0][1]  # pretraining has no adversarial term
    assert all(0 <= adversarial[k] <= 1 for k in ("discriminator/acc_real", "discriminator/acc_refined"))
    assert all(math.isfinite(v) for _, m in reports for v in m.values())


def test_same_seed_same_weights(eye_images):
    first, second = make_trainer(eye_images), make_trainer(eye_images)
    first.fit()
    second.fit()
    for (name, a), b in zip(first.refiner.state_dict().items(), second.refiner.state_dict().values()):
        assert torch.equal(a, b), name
    other = make_trainer(eye_images, seed=1)
    other.fit()
    assert not torch.equal(other.refiner.head.weight, first.refiner.head.weight)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_killed_run_resumes_exactly(eye_images, tmp_path, optimizer):
    """N steps straight == N/2 steps, a new process-like trainer loading the checkpoint, N/2 more."""
    overrides = dict(
        refiner_pretrain_steps=3,
        discriminator_pretrain_steps=3,
        adversarial_rounds=6,
        optimizer=optimizer,
        momentum=0.9 if optimizer == "sgd" else 0.0,
    )
    straight = make_trainer(eye_images, **overrides)
    straight.fit()
    total = straight.total_steps  # 12; the cut at 6 is inside the adversarial phase with a half-full history

    checkpoint = tmp_path / "run" / "checkpoint.pt"
    first_half = make_trainer(eye_images, **overrides)
    first_half.fit(checkpoint_path=checkpoint, stop_at_step=total // 2)
    del first_half
    resumed = make_trainer(
        eye_images, **overrides, seed=123
    )  # a different seed must not matter: state comes from the file
    resumed.load(checkpoint)
    assert resumed.step == total // 2 and len(resumed.history) > 0
    resumed.fit(checkpoint_path=checkpoint)

    for module in ("refiner", "discriminator"):
        for (name, a), b in zip(
            getattr(straight, module).state_dict().items(), getattr(resumed, module).state_dict().values()
        ):
            assert torch.equal(a, b), f"{module}.{name} differs after resume"
    assert torch.equal(straight.history.images, resumed.history.images)
    assert torch.equal(straight.generator.get_state(), resumed.generator.get_state())


def test_stuck_discriminator_is_reported(eye_images):
    """A D whose every weight is zero outputs chance with zero gradient: the warning says so."""
    trainer = make_trainer(eye_images, refiner_pretrain_steps=0, discriminator_pretrain_steps=3, adversarial_rounds=0)
    with torch.no_grad():
        for p in trainer.discriminator.parameters():
            p.zero_()
    with pytest.warns(StuckDiscriminatorWarning, match=r"cross-entropy per patch 0.6931 ≈ ln 2"):
        trainer.fit()


def test_healthy_discriminator_is_not_reported(eye_images, recwarn):
    make_trainer(eye_images, refiner_pretrain_steps=0, discriminator_pretrain_steps=3, adversarial_rounds=0).fit()
    assert not [w for w in recwarn if issubclass(w.category, StuckDiscriminatorWarning)]


@pytest.mark.parametrize(
    ("synthetic", "message"),
    [
        (
            np.zeros((8, 35, 55), dtype=np.float32),
            r"synthetic images: expected uint8 pixels \(0..255\); got dtype torch.float32",
        ),
        (np.zeros((8, 55, 35), dtype=np.uint8), r"synthetic images: expected H×W 35×55 .*; got 55×35"),
        (np.zeros((8, 3, 35, 55), dtype=np.uint8), r"synthetic images: expected 1 channel\(s\) .* got C=3"),
        (
            np.zeros((8, 1, 1, 35, 55), dtype=np.uint8),
            r"synthetic images: expected shape \(N, H, W\) or \(N, 1, H, W\)",
        ),
        (np.zeros((0, 35, 55), dtype=np.uint8), r"synthetic images: the batch is empty"),
    ],
)
def test_trainer_refuses_bad_data(eye_images, synthetic, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_trainer((synthetic, eye_images[1]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 1}, r"batch_size\n\s+Input should be greater than or equal to 2"),
        ({"optimizer": "rmsprop"}, r"optimizer\n\s+Input should be 'sgd' or 'adam'"),
        ({"history_capacity": 2}, r"history_capacity \(2\) must hold at least b/2 = 4"),
        ({"lr": 0.0}, r"lr\n\s+Input should be greater than 0"),
        ({"lr": float("inf")}, r"lr\n\s+Input should be a finite number"),
        ({"refiner_steps_per_round": 0}, r"refiner_steps_per_round\n\s+Input should be greater than or equal to 1"),
    ],
)
def test_train_config_refuses_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_train_config(**overrides)


def noisy_trainer(images, **overrides) -> SimGANTrainer:
    synthetic, real = images
    return SimGANTrainer(
        synthetic,
        real,
        refiner_config=replace(TINY_REFINER, noise_channels=1),
        discriminator_config=EYES_DISCRIMINATOR,
        config=tiny_train_config(**overrides),
        device="cpu",
        progress=False,
    )


def test_refiner_noise_is_drawn_afresh_for_every_batch_and_a_killed_run_resumes_exactly(eye_images, tmp_path):
    straight = noisy_trainer(eye_images)
    seen = []
    straight.refiner.register_forward_pre_hook(lambda _, args: seen.append(args[1].clone()))
    straight.fit()
    # 3 refiner pretraining steps, 2 D pretraining batches, 4 rounds of K_g = 2 refiner steps and one D batch
    assert len(seen) == 3 + 2 + 4 * 3 and all(noise is not None and noise.shape[1] == 1 for noise in seen)
    assert all(not torch.equal(a[:1], b[:1]) for i, a in enumerate(seen) for b in seen[i + 1 :])

    checkpoint = tmp_path / "run" / "checkpoint.pt"
    noisy_trainer(eye_images).fit(checkpoint_path=checkpoint, stop_at_step=straight.total_steps // 2)
    resumed = noisy_trainer(eye_images, seed=5)
    resumed.load(checkpoint)
    resumed.fit(checkpoint_path=checkpoint)
    for (name, a), b in zip(straight.refiner.state_dict().items(), resumed.refiner.state_dict().values()):
        assert torch.equal(a, b), f"refiner.{name} differs after resume"


def test_holes_are_not_charged_to_the_self_regularisation_and_a_hole_refiner_resumes_exactly(eye_images, tmp_path):
    """RefinerConfig.hole_output: a pixel that reads nothing costs λ·ℓ_reg nothing (the adversarial loss prices
    it), one more noise map is drawn per image, the hole rate is recorded, and a killed run resumes bit for bit."""
    synthetic, real = eye_images

    def hole_trainer(**overrides) -> SimGANTrainer:
        return SimGANTrainer(
            synthetic,
            real,
            refiner_config=replace(TINY_REFINER, hole_output=True),
            discriminator_config=EYES_DISCRIMINATOR,
            config=tiny_train_config(**overrides),
            device="cpu",
            progress=False,
        )

    trainer = hole_trainer()
    with torch.no_grad():
        trainer.refiner.hole_head.bias.fill_(30.0)  # every pixel a hole
    trainer.refiner_step(adversarial=False)
    assert float(trainer._pending["refiner/self_reg"][0]) == 0.0
    assert float(trainer._pending["refiner/holes"][0]) == 1.0
    with torch.no_grad():
        trainer.refiner.hole_head.bias.fill_(-30.0)  # none
    trainer.refiner_step(adversarial=False)
    assert float(trainer._pending["refiner/self_reg"][1]) > 0 and float(trainer._pending["refiner/holes"][1]) == 0.0

    straight = hole_trainer()
    seen = []
    straight.refiner.register_forward_pre_hook(lambda _, args: seen.append(args[1].shape[1]))
    straight.fit()
    assert seen and set(seen) == {1}
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    hole_trainer().fit(checkpoint_path=checkpoint, stop_at_step=straight.total_steps // 2)
    resumed = hole_trainer(seed=5)
    resumed.load(checkpoint)
    resumed.fit(checkpoint_path=checkpoint)
    for (name, a), b in zip(straight.refiner.state_dict().items(), resumed.refiner.state_dict().values()):
        assert torch.equal(a, b), f"refiner.{name} differs after resume"


def test_refiner_average_follows_the_adversarial_steps_resumes_exactly_and_is_what_load_refiner_builds(
    eye_images, tmp_path
):
    """θ̄ starts at the first adversarial R step's weights and then moves by d·θ̄ + (1 − d)·θ after each (by hand,
    from the weights each step left); pretraining steps do not touch it; a killed run resumes it bit for bit;
    load_refiner builds θ̄ from the checkpoint, and θ without an average."""
    from simgan.inference import load_refiner

    decay = 0.75
    straight = make_trainer(eye_images, refiner_ema_decay=decay)
    after = []  # (adversarial?, weights of the head after each R step)
    straight.refiner_optimizer.register_step_post_hook(
        lambda *_: after.append(
            (straight.phase_at(straight.step).adversarial, straight.refiner.head.weight.detach().clone())
        )
    )
    straight.fit()
    adversarial = [weights for is_adversarial, weights in after if is_adversarial]
    assert len(after) == 3 + 4 * 2 and len(adversarial) == 4 * 2
    expected = adversarial[0]
    for weights in adversarial[1:]:
        expected = decay * expected + (1 - decay) * weights
    torch.testing.assert_close(straight.refiner_average.module.head.weight, expected)
    assert not torch.allclose(expected, straight.refiner.head.weight)  # the average is not the last iterate

    checkpoint = tmp_path / "run" / "checkpoint.pt"
    make_trainer(eye_images, refiner_ema_decay=decay).fit(checkpoint_path=checkpoint, stop_at_step=3 + 2 + 2)
    resumed = make_trainer(eye_images, refiner_ema_decay=decay, seed=9)
    resumed.load(checkpoint)
    resumed.fit(checkpoint_path=checkpoint)
    for module in ("refiner", "refiner_average"):
        for (name, a), b in zip(
            getattr(straight, module).state_dict().items(), getattr(resumed, module).state_dict().values()
        ):
            assert torch.equal(a, b), f"{module}.{name} differs after resume"

    built = load_refiner(checkpoint)
    assert torch.equal(built.head.weight, straight.refiner_average.module.head.weight)
    plain = make_trainer(eye_images)
    plain.fit(checkpoint_path=tmp_path / "plain" / "checkpoint.pt")
    assert plain.refiner_average is None
    assert torch.equal(load_refiner(tmp_path / "plain" / "checkpoint.pt").head.weight, plain.refiner.head.weight)
