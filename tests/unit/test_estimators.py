"""The paper's estimators and their trainer: shapes, heatmap geometry, augmentation, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simgan.nn.estimators import (
    GazeEstimator,
    GazeEstimatorConfig,
    HourglassConfig,
    StackedHourglass,
    heatmap_peaks,
    joint_heatmaps,
)
from simgan.training.checkpoint import CheckpointError
from simgan.training.estimator import (
    EstimatorTrainConfig,
    EstimatorTrainer,
    heatmap_cross_entropy,
    load_estimator,
    predict,
)

TINY_HOURGLASS = HourglassConfig(
    input_size=(32, 32), num_joints=3, num_stacks=2, width=8, depth=2, heatmap_size=(16, 16)
)


def test_gaze_cnn_is_the_papers_with_a_9600_value_flatten():
    net = GazeEstimator()
    assert net.flat_features == 9600  # 192 maps × 5 × 10: the paper's "FC9600"
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 80, 192] and all(c.padding == (0, 0) for c in convs)
    linears = [m for m in net.head if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(9600, 1000), (1000, 3)]
    assert net(torch.zeros(2, 1, 35, 55)).shape == (2, 3)
    with pytest.raises(ValueError, match="35×55"):
        net(torch.zeros(2, 1, 36, 60))


def test_hourglass_gives_one_heatmap_set_per_stack_at_the_heatmap_size():
    outputs = StackedHourglass(HourglassConfig(input_size=(128, 128), width=8, heatmap_size=(64, 64)))(
        torch.zeros(2, 1, 128, 128)
    )
    assert [tuple(o.shape) for o in outputs] == [(2, 14, 64, 64)] * 2
    resized = StackedHourglass(HourglassConfig(input_size=(96, 96), width=8, depth=2, heatmap_size=(64, 64)))
    assert tuple(resized(torch.zeros(1, 1, 96, 96))[-1].shape) == (1, 14, 64, 64)


def test_heatmap_peaks_invert_joint_heatmaps():
    joints = torch.tensor([[[10.0, 20.0], [100.0, 5.0], [63.5, 64.5]]])
    maps = joint_heatmaps(joints, (128, 128), (64, 64))
    assert maps.shape == (1, 3, 64, 64) and torch.allclose(maps.amax((-1, -2)), torch.ones(1, 3), atol=0.15)
    assert torch.allclose(heatmap_peaks(maps, (128, 128)), joints, atol=0.6)  # within the sub-pixel step
    outside = joint_heatmaps(torch.tensor([[[-20.0, 5.0]]]), (128, 128), (64, 64))
    assert outside.abs().sum() == 0


def _blob_images(joints: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images with a bright Gaussian blob at each joint (x, y)."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    maps = torch.exp(-((xs - joints[..., 0, None, None]) ** 2 + (ys - joints[..., 1, None, None]) ** 2) / 8.0)
    return (maps.amax(1) * 255).round().to(torch.uint8)


def test_augmentation_moves_the_joints_with_the_pixels():
    generator = torch.Generator().manual_seed(3)
    joints = 8 + torch.rand(16, 3, 2, generator=generator) * 16
    images = _blob_images(joints, 32)
    config = EstimatorTrainConfig(
        steps=1,
        batch_size=16,
        optimizer="adam",
        rotation_deg=20,
        crop_shift_fraction=0.1,
        crop_scale_fraction=0.1,
        seed=0,
    )
    trainer = EstimatorTrainer("hand", TINY_HOURGLASS, config, images, joints, device="cpu", progress=False)
    model_input = images.float().div(127.5).sub(1).unsqueeze(1)
    warped, moved = trainer._rotate_and_crop(model_input, joints)
    assert not torch.allclose(moved, joints)  # it did transform
    # the brightest pixel near each moved joint is where the blob went: within a pixel
    picture = (warped[:, 0] + 1) * 127.5
    for n in range(16):
        for j in range(3):
            x, y = moved[n, j].tolist()
            if 2 <= x <= 29 and 2 <= y <= 29:
                assert picture[n, round(y), round(x)] > 150, (n, j, x, y)


def test_heatmap_cross_entropy_is_least_at_the_target_and_ignores_joints_outside():
    joints = torch.tensor([[[10.0, 20.0], [-20.0, 5.0]]])  # the second joint is outside the crop
    wanted = joint_heatmaps(joints, (32, 32), (16, 16), 1.0)
    logits = wanted.clamp_min(1e-9).log()
    assert heatmap_cross_entropy(logits, wanted) < heatmap_cross_entropy(logits.roll(3, dims=-1), wanted)
    # whatever the outside joint's logits, it adds 0 (the mean is over both joints)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        logits[:, 1] = torch.randn(16, 16, generator=generator) * 5
        assert torch.isclose(
            heatmap_cross_entropy(logits, wanted), heatmap_cross_entropy(logits[:, :1], wanted[:, :1]) / 2
        )


def _hand_error_after(steps: int, heatmap_loss: str) -> tuple[float, float]:
    """(mean joint error on held-out images, the mean training pose's) of the tiny hourglass trained `steps`
    steps on one blob per image, its three joints at the blob and 5 px right of and below it."""
    generator = torch.Generator().manual_seed(0)
    centres = 8 + torch.rand(96, 1, 2, generator=generator) * 16
    joints = centres + torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    images = _blob_images(centres, 32)
    config = EstimatorTrainConfig(
        steps=steps, batch_size=16, optimizer="adam", lr=0.005, augment=False, heatmap_loss=heatmap_loss
    )
    trainer = EstimatorTrainer("hand", TINY_HOURGLASS, config, images[:64], joints[:64], device="cpu", progress=False)
    trainer.fit()
    held_out = joints[64:].numpy()
    error = np.linalg.norm(predict("hand", trainer.model, images[64:]) - held_out, axis=-1).mean()
    return float(error), float(np.linalg.norm(joints[:64].mean(0).numpy() - held_out, axis=-1).mean())


def test_precise_bn_replaces_the_running_averages_by_plain_ones_over_fresh_batches_and_keeps_the_weights():
    generator = torch.Generator().manual_seed(0)
    centres = 8 + torch.rand(48, 1, 2, generator=generator) * 16
    images, joints = _blob_images(centres, 32), centres + torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    config = EstimatorTrainConfig(steps=12, batch_size=8, optimizer="adam", lr=0.005, heatmap_loss="softmax")
    plain = EstimatorTrainer("hand", TINY_HOURGLASS, config, images, joints, device="cpu", progress=False)
    plain.fit()
    precise = EstimatorTrainer(
        "hand", TINY_HOURGLASS, config.__class__(**{**config.to_dict(), "precise_bn_batches": 5}), images, joints,
        device="cpu", progress=False,
    )  # fmt: skip
    precise.fit()
    for (name, a), b in zip(plain.model.named_parameters(), precise.model.parameters()):
        assert torch.equal(a, b), name  # the weights are those of training
    # the same 5 batches, drawn by hand from where the plain trainer's sampler stopped: the first batch norm's
    # statistics are the plain average of their batch means
    first = next(m for m in plain.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    trained = first.running_mean.clone()  # training's exponential averages
    means = []
    first.register_forward_pre_hook(lambda module, inputs: means.append(inputs[0].mean(dim=(0, 2, 3))))
    plain.model.train()
    with torch.no_grad():
        for _ in range(5):
            plain.model(plain.batch()[0])
    expected = torch.stack(means).mean(0)
    precise_first = next(m for m in precise.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.allclose(precise_first.running_mean, expected, atol=1e-5)
    assert not torch.allclose(trained, expected, atol=1e-3)  # training's averages were elsewhere
    assert precise_first.momentum == first.momentum  # restored after the pass


def test_the_softmax_heatmap_loss_learns_the_joints_in_a_few_steps():
    # the demo's problem in small: after a few steps the MSE's heatmaps are still near zero everywhere, so the
    # arg-max is not yet at the joint; the softmax cross-entropy has it within about a pixel
    softmax, mean_pose = _hand_error_after(30, "softmax")
    mse, _ = _hand_error_after(30, "mse")
    assert softmax < 1.5 < 6 < mean_pose
    assert mse > 2 * softmax


def _gaze_data(count: int = 64):
    generator = torch.Generator().manual_seed(0)
    targets = torch.nn.functional.normalize(
        torch.randn(count, 3, generator=generator) * torch.tensor([0.3, 0.3, 1.0]) - torch.tensor([0.0, 0.0, 1.0]),
        dim=1,
    )
    # the pupil's position encodes the gaze: a learnable task
    centres = torch.stack([27 + 20 * targets[:, 0], 17 + 12 * targets[:, 1]], 1)[:, None, :]
    images = 255 - _blob_images(centres, 55)[:, :35, :]
    return images, targets


TINY_GAZE = GazeEstimatorConfig(widths=(8, 8, 8, 8, 16), hidden=32)


def test_gaze_training_learns_and_resumes_exactly(tmp_path):
    images, targets = _gaze_data()
    config = EstimatorTrainConfig(steps=80, batch_size=16, optimizer="adam", lr=0.003, seed=1, log_every_steps=10)
    logged = []
    straight = EstimatorTrainer(
        "gaze",
        TINY_GAZE,
        config,
        images,
        targets,
        device="cpu",
        progress=False,
        report=lambda step, metrics: logged.append(metrics["loss"]),
    )
    straight.fit()
    assert len(logged) == 8 and logged[-1] < logged[0] / 2  # it learns where the pupil is

    halves = EstimatorTrainer(
        "gaze",
        TINY_GAZE,
        config.__class__(**{**config.to_dict(), "steps": 40}),
        images,
        targets,
        device="cpu",
        progress=False,
    )
    halves.fit(checkpoint_path=tmp_path / "half.pt")
    resumed = EstimatorTrainer("gaze", TINY_GAZE, config, images, targets, device="cpu", progress=False)
    resumed.load(tmp_path / "half.pt")
    assert resumed.step == 40
    resumed.fit()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_rebuilds_the_estimator_and_predicts_unit_vectors(tmp_path):
    images, targets = _gaze_data(16)
    trainer = EstimatorTrainer(
        "gaze",
        TINY_GAZE,
        EstimatorTrainConfig(steps=2, batch_size=4, optimizer="adam"),
        images,
        targets,
        device="cpu",
        progress=False,
    )
    trainer.fit(checkpoint_path=tmp_path / "gaze.pt")
    kind, model = load_estimator(tmp_path / "gaze.pt")
    predicted = predict(kind, model, images.numpy())
    assert kind == "gaze" and predicted.shape == (16, 3)
    assert np.allclose(np.linalg.norm(predicted, axis=1), 1, atol=1e-5)
    other = EstimatorTrainer(
        "hand",
        TINY_HOURGLASS,
        EstimatorTrainConfig(steps=1, batch_size=2),
        np.zeros((4, 32, 32), np.uint8),
        np.full((4, 3, 2), 16.0),
        device="cpu",
        progress=False,
    )
    with pytest.raises(CheckpointError, match="'gaze' estimator checkpoint"):
        other.load(tmp_path / "gaze.pt")


def test_hand_predictions_are_joints_in_input_pixels(tmp_path):
    joints = torch.full((4, 3, 2), 16.0)
    trainer = EstimatorTrainer(
        "hand",
        TINY_HOURGLASS,
        EstimatorTrainConfig(steps=1, batch_size=2),
        _blob_images(joints, 32),
        joints,
        device="cpu",
        progress=False,
    )
    trainer.fit(checkpoint_path=tmp_path / "hand.pt")
    kind, model = load_estimator(tmp_path / "hand.pt")
    predicted = predict(kind, model, np.zeros((5, 32, 32), np.uint8), batch_size=2)
    assert predicted.shape == (5, 3, 2) and (predicted >= -1).all() and (predicted <= 32).all()


def test_bad_targets_are_refused_naming_the_rows():
    images = np.zeros((4, 35, 55), np.uint8)
    targets = np.zeros((4, 3), np.float32)
    targets[2, 1] = math.nan
    with pytest.raises(ValueError, match=r"1 target row\(s\) are NaN or infinite \(first rows: \[2\]\)"):
        EstimatorTrainer("gaze", TINY_GAZE, EstimatorTrainConfig(steps=1), images, targets, device="cpu")
    with pytest.raises(ValueError, match=r"expected \(N, 3\) targets for 4 images"):
        EstimatorTrainer("gaze", TINY_GAZE, EstimatorTrainConfig(steps=1), images, np.zeros((3, 3)), device="cpu")
    with pytest.raises(ValueError, match="expected \\(35, 55\\)"):
        EstimatorTrainer(
            "gaze",
            TINY_GAZE,
            EstimatorTrainConfig(steps=1),
            np.zeros((4, 36, 60), np.uint8),
            np.zeros((4, 3)),
            device="cpu",
        )


def test_weight_average_replaces_the_weights_after_the_last_step_and_resumes_exactly(tmp_path):
    """θ̄ = the first step's weights, then d·θ̄ + (1 − d)·θ after each step (by hand, from what each step left); the
    trained model holds θ̄, not the last step's weights; a run killed half-way resumes it bit for bit."""
    generator = torch.Generator().manual_seed(0)
    centres = 8 + torch.rand(48, 1, 2, generator=generator) * 16
    images, joints = _blob_images(centres, 32), centres + torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    decay = 0.6
    config = EstimatorTrainConfig(
        steps=8, batch_size=8, optimizer="adam", lr=0.005, heatmap_loss="softmax", weight_average_decay=decay
    )
    straight = EstimatorTrainer("hand", TINY_HOURGLASS, config, images, joints, device="cpu", progress=False)
    after = []
    straight.optimizer.register_step_post_hook(
        lambda *_: after.append([p.detach().clone() for p in straight.model.parameters()])
    )
    straight.fit()
    assert len(after) == 8
    expected = after[0]
    for weights in after[1:]:
        expected = [decay * a + (1 - decay) * w for a, w in zip(expected, weights)]
    for (name, got), want in zip(straight.model.named_parameters(), expected):
        torch.testing.assert_close(got, want, msg=name)
    assert not all(torch.allclose(a, b) for a, b in zip(expected, after[-1]))  # not the last step's weights

    killed = EstimatorTrainer("hand", TINY_HOURGLASS, config, images, joints, device="cpu", progress=False)
    killed.fit(checkpoint_path=tmp_path / "run.pt", stop_at_step=4)
    resumed = EstimatorTrainer("hand", TINY_HOURGLASS, config, images, joints, device="cpu", progress=False)
    resumed.load(tmp_path / "run.pt")
    resumed.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
