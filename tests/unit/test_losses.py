"""Losses on hand-made inputs, the label convention, reductions and ψ."""

from __future__ import annotations

import math

import pytest
import torch

from simgan.losses import (
    discriminator_loss,
    feature_transform,
    local_adversarial_loss,
    patch_cross_entropy,
    refiner_adversarial_loss,
    self_regularization_loss,
)
from simgan.nn.discriminator import REAL_LABEL, REFINED_LABEL


def logits_with_refined_probability(p: float, shape=(2, 4, 9)) -> torch.Tensor:
    """(N, 2, h, w) logits whose softmax gives P(refined) = p on every patch."""
    n, h, w = shape
    logits = torch.zeros(n, 2, h, w)
    logits[:, REFINED_LABEL] = math.log(p / (1 - p))
    return logits


def test_label_convention_is_the_papers():
    assert (REFINED_LABEL, REAL_LABEL) == (1, 0)


def test_patch_cross_entropy_by_hand():
    logits = logits_with_refined_probability(0.75)
    torch.testing.assert_close(patch_cross_entropy(logits, REFINED_LABEL), torch.full((2, 4, 9), -math.log(0.75)))
    torch.testing.assert_close(patch_cross_entropy(logits, REAL_LABEL), torch.full((2, 4, 9), -math.log(0.25)))


def test_local_adversarial_reductions():
    logits = torch.zeros(3, 2, 4, 9)  # chance on each of 36 patches
    assert local_adversarial_loss(logits, REAL_LABEL, "mean").item() == pytest.approx(math.log(2))
    # "sum": over the 36 patches of each image, averaged over the 3 images
    assert local_adversarial_loss(logits, REAL_LABEL, "sum").item() == pytest.approx(36 * math.log(2))


def test_sum_reduction_sums_patches_per_image_and_averages_images():
    logits = torch.zeros(2, 2, 1, 2)
    logits[0, REFINED_LABEL] = math.log(3)  # image 0: P(refined) = 3/4 on both patches
    expected = (2 * -math.log(0.75) + 2 * -math.log(0.5)) / 2
    assert local_adversarial_loss(logits, REFINED_LABEL, "sum").item() == pytest.approx(expected)


def test_discriminator_loss_is_equation_2():
    refined = logits_with_refined_probability(0.8)
    real = logits_with_refined_probability(0.3)
    # L_D = −log D(x̃) − log(1 − D(y)) per patch, summed over 36 patches, averaged over images
    expected = 36 * (-math.log(0.8) - math.log(1 - 0.3))
    assert discriminator_loss(refined, real, "sum").item() == pytest.approx(expected, rel=1e-5)


def test_refiner_adversarial_loss_is_minus_log_one_minus_d():
    logits = logits_with_refined_probability(0.9)
    assert refiner_adversarial_loss(logits, "mean").item() == pytest.approx(-math.log(1 - 0.9), rel=1e-5)


def test_gradient_directions_follow_the_convention():
    """D learns to call refined patches refined and real ones real; R learns to look real."""
    refined = torch.zeros(1, 2, 1, 1, requires_grad=True)
    real = torch.zeros(1, 2, 1, 1, requires_grad=True)
    discriminator_loss(refined, real).backward()
    assert refined.grad[0, REFINED_LABEL] < 0 < refined.grad[0, REAL_LABEL]  # descent raises the refined logit
    assert real.grad[0, REAL_LABEL] < 0 < real.grad[0, REFINED_LABEL]
    fooled = torch.zeros(1, 2, 1, 1, requires_grad=True)
    refiner_adversarial_loss(fooled).backward()
    assert fooled.grad[0, REAL_LABEL] < 0 < fooled.grad[0, REFINED_LABEL]


def test_self_regularization_identity_by_hand():
    synthetic = torch.zeros(2, 1, 2, 3)
    refined = synthetic.clone()
    refined[0, 0, 0, 0] = 0.5
    refined[1, 0, 1, 2] = -0.25
    refined[1, 0, 0, 1] = 0.25
    # per-image L1 sums: 0.5 and 0.5 -> batch mean 0.5; mean over all 12 values: 1.0 / 12
    assert self_regularization_loss(refined, synthetic, "identity", "sum").item() == pytest.approx(0.5)
    assert self_regularization_loss(refined, synthetic, "identity", "mean").item() == pytest.approx(1.0 / 12)


def test_self_regularization_channel_mean_ignores_colour_shifts_that_cancel():
    synthetic = torch.zeros(1, 3, 2, 2)
    refined = synthetic.clone()
    refined[0, 0] += 0.3
    refined[0, 1] -= 0.3  # channel mean unchanged
    assert self_regularization_loss(refined, synthetic, "channel_mean").item() == pytest.approx(0.0)
    assert self_regularization_loss(refined, synthetic, "identity").item() == pytest.approx(0.3 * 8)


def test_self_regularization_gradients_ignore_constant_offsets():
    synthetic = torch.arange(12.0).view(1, 1, 3, 4) / 12
    shifted = synthetic + 0.2
    assert self_regularization_loss(shifted, synthetic, "gradients").item() == pytest.approx(0.0, abs=1e-6)
    bumped = synthetic.clone()
    bumped[0, 0, 1, 1] += 0.1  # a bump changes 2 horizontal and 2 vertical differences by 0.1
    assert self_regularization_loss(bumped, synthetic, "gradients").item() == pytest.approx(0.4, rel=1e-5)
    assert feature_transform(synthetic, "gradients").shape == (1, 3 * 3 + 2 * 4)


def test_self_regularization_level_weight_prices_a_level_change_at_alpha_per_pixel():
    synthetic = torch.arange(12.0).view(1, 1, 3, 4) / 12
    shifted = synthetic + 0.2  # 12 pixels, no derivative changed
    loss = self_regularization_loss(shifted, synthetic, "gradients", level_weight=0.5)
    assert loss.item() == pytest.approx(0.5 * 0.2 * 12, rel=1e-5)
    bumped = synthetic.clone()
    bumped[0, 0, 1, 1] += 0.1  # 4 differences and one level, each by 0.1
    assert self_regularization_loss(bumped, synthetic, "gradients", level_weight=0.5).item() == pytest.approx(
        0.4 + 0.05, rel=1e-5
    )
    assert feature_transform(synthetic, "gradients", 0.5).shape == (1, 3 * 3 + 2 * 4 + 12)
    with pytest.raises(ValueError, match="'gradients' feature only"):
        feature_transform(synthetic, "identity", 0.5)


def test_the_cap_bounds_each_pixels_price_and_stops_its_gradient_beyond_it():
    synthetic = torch.zeros(1, 1, 2, 3)
    # a dropout, a small lowering, a mid lowering, no change, a small and a large raise
    refined = torch.tensor([[[[-1.5, -0.05, -0.3], [0.0, 0.05, 0.6]]]], requires_grad=True)
    loss = self_regularization_loss(refined, synthetic, "identity", cap=0.2)
    assert loss.item() == pytest.approx(0.2 + 0.05 + 0.2 + 0.05 + 0.2)
    loss.backward()
    assert refined.grad.flatten().tolist() == [0.0, -1.0, 0.0, 0.0, 1.0, 0.0]  # beyond τ nothing pulls a pixel back
    uncapped = 1.5 + 0.05 + 0.3 + 0.05 + 0.6
    assert self_regularization_loss(refined, synthetic, "identity").item() == pytest.approx(uncapped)


def test_the_level_weight_needs_the_gradients_feature():
    from simgan.training.configs import TrainConfig

    assert TrainConfig(self_reg_feature="gradients", self_reg_level_weight=1.0).self_reg_level_weight == 1.0
    with pytest.raises(ValueError, match="self_reg_level_weight"):
        TrainConfig(self_reg_feature="identity", self_reg_level_weight=1.0)


def test_the_pupil_region_is_a_unit_gaussian_at_each_centre():
    from simgan.losses import gaussian_region

    region = gaussian_region(torch.tensor([[2.0, 1.0], [0.0, 0.0]]), 3, 5, sigma_px=1.5)
    assert region.shape == (2, 1, 3, 5)
    assert region[0, 0, 1, 2].item() == pytest.approx(1.0) and region[1, 0, 0, 0].item() == pytest.approx(1.0)
    # one pixel to the side of the first centre, and at (x, y) = (4, 2) from the second: exp(−d² / 2σ²)
    assert region[0, 0, 1, 3].item() == pytest.approx(math.exp(-1 / (2 * 1.5**2)))
    assert region[1, 0, 2, 4].item() == pytest.approx(math.exp(-20 / (2 * 1.5**2)))


def test_the_pupil_region_term_weighs_each_pixels_change():
    from simgan.losses import region_loss

    synthetic = torch.zeros(2, 1, 2, 3)
    refined = synthetic.clone()
    refined[0, 0, 0, 0] = 0.5  # weighted 1: counts in full
    refined[1, 0, 1, 2] = -0.5  # weighted 0.2
    weights = torch.zeros(2, 1, 2, 3)
    weights[0, 0, 0, 0], weights[1, 0, 1, 2], weights[1, 0, 0, 0] = 1.0, 0.2, 1.0
    assert region_loss(refined, synthetic, weights, "sum").item() == pytest.approx((0.5 + 0.1) / 2)
    assert region_loss(refined, synthetic, weights, "mean").item() == pytest.approx((0.5 + 0.1) / 12)
    with pytest.raises(ValueError, match="differ in shape"):
        region_loss(refined[:1], synthetic, weights)


def test_bad_reduction_feature_and_target_are_refused():
    logits = torch.zeros(1, 2, 1, 1)
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        local_adversarial_loss(logits, REAL_LABEL, "max")
    with pytest.raises(ValueError, match="target must be REAL_LABEL"):
        local_adversarial_loss(logits, 2)
    with pytest.raises(ValueError, match="feature must be"):
        self_regularization_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "vgg")
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, 2, h, w\)"):
        patch_cross_entropy(torch.zeros(1, 1, 4, 9), REAL_LABEL)
