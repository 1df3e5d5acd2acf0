"""SimGAN losses as pure functions of tensors (no state, no .backward(), no logging).

Equation numbers are the paper's (Shrivastava et al. 2017, §2.1–2.2):

    L_D(φ) = −Σ_i log D(x̃_i) − Σ_j log(1 − D(y_j))                       (2)
    L_R(θ) = Σ_i −log(1 − D(R(x_i))) + λ ‖ψ(R(x_i)) − ψ(x_i)‖₁             (4)

D(·) is the probability of class REFINED_LABEL = 1 (refined), 1 − D(·) of REAL_LABEL = 0, per
patch; "we sum the cross-entropy loss values over w × h local patches" (§2.2).

Reductions, and the scale of λ (`self_reg_weight`), which the paper does not give:
    reduction="sum"  (default, the paper's Σ and ‖·‖₁ read literally): per image, the adversarial
                     term sums the cross-entropy over the h×w patches and the self-regularisation
                     sums |ψ(x̃) − ψ(x)| over every pixel (and channel); both are then averaged over
                     the images of the batch, so the learning rate does not depend on b.
    reduction="mean": both are averaged over patches / pixels as well.
Going from "sum" to "mean" divides the adversarial term by h·w patches and the self-regularisation
term by C·H·W values, so λ_mean = λ_sum · (C·H·W) / (h·w) keeps the same balance
(eyes preset: C·H·W = 1,925 pixels, h·w = 36 patches, factor ≈ 53.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from simgan.nn.discriminator import REAL_LABEL, REFINED_LABEL
from simgan.training.configs import Reduction, SelfRegFeature  # declared with TrainConfig, whose knobs they are


def patch_cross_entropy(logits: torch.Tensor, target: int) -> torch.Tensor:
    """Per-patch 2-class cross-entropy: logits (N, 2, h, w), one target class for all -> (N, h, w)."""
    if logits.dim() != 4 or logits.shape[1] != 2:
        raise ValueError(f"expected logits of shape (N, 2, h, w); got {tuple(logits.shape)}")
    # log_softmax in float32: bf16 logits under autocast lose too much precision near ln 2.
    return -F.log_softmax(logits.float(), dim=1)[:, target]


def _reduce(per_element: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    """(N, ...) -> scalar: per-image sum ("sum") or mean ("mean") over the rest, then batch mean."""
    if reduction == "sum":
        return per_element.flatten(1).sum(dim=1).mean()
    if reduction == "mean":
        return per_element.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")


def local_adversarial_loss(logits: torch.Tensor, target: int, reduction: Reduction = "sum") -> torch.Tensor:
    """Cross-entropy of every patch's logits against one class (the local adversarial loss, §2.2)."""
    if target not in (REAL_LABEL, REFINED_LABEL):
        raise ValueError(f"target must be REAL_LABEL ({REAL_LABEL}) or REFINED_LABEL ({REFINED_LABEL}); got {target!r}")
    return _reduce(patch_cross_entropy(logits, target), reduction)


def discriminator_loss(
    refined_logits: torch.Tensor, real_logits: torch.Tensor, reduction: Reduction = "sum"
) -> torch.Tensor:
    """Eq. (2): refined patches toward REFINED_LABEL, real patches toward REAL_LABEL."""
    return local_adversarial_loss(refined_logits, REFINED_LABEL, reduction) + local_adversarial_loss(
        real_logits, REAL_LABEL, reduction
    )


def refiner_adversarial_loss(refined_logits: torch.Tensor, reduction: Reduction = "sum") -> torch.Tensor:
    """ℓ_real of Eq. (4): −log(1 − D(R(x))), i.e. refined patches toward REAL_LABEL."""
    return local_adversarial_loss(refined_logits, REAL_LABEL, reduction)


def feature_transform(images: torch.Tensor, feature: SelfRegFeature, level_weight: float = 0.0) -> torch.Tensor:
    """ψ of §2.1: identity (the paper's default), mean of the channels (Fig. 6), or image derivatives.

    "gradients" stacks the horizontal (N, C, H, W−1) and vertical (N, C, H−1, W) forward
    differences, flattened to (N, C·(H·(W−1) + (H−1)·W)); with `level_weight` α > 0 the image itself,
    times α, is stacked after them (TrainConfig.self_reg_level_weight says why).
    """
    if level_weight and feature != "gradients":
        raise ValueError(f"level_weight applies to the 'gradients' feature only; got {feature!r}")
    if feature == "identity":
        return images
    if feature == "channel_mean":
        return images.mean(dim=1, keepdim=True)
    if feature == "gradients":
        dx = images[..., :, 1:] - images[..., :, :-1]
        dy = images[..., 1:, :] - images[..., :-1, :]
        parts = [dx.flatten(1), dy.flatten(1)] + ([level_weight * images.flatten(1)] if level_weight else [])
        return torch.cat(parts, dim=1)
    raise ValueError(f"self-regularisation feature must be 'identity', 'channel_mean' or 'gradients'; got {feature!r}")


def self_regularization_loss(
    refined: torch.Tensor,
    synthetic: torch.Tensor,
    feature: SelfRegFeature = "identity",
    reduction: Reduction = "sum",
    level_weight: float = 0.0,
    cap: float = 0.0,
) -> torch.Tensor:
    """ℓ_reg = ‖ψ(x̃) − ψ(x)‖₁ (§2.1), reduced as the module docstring says; `level_weight`: see feature_transform.

    `cap` > 0 (TrainConfig.self_reg_cap, not in the paper): each element counts min(|ψ(x̃) − ψ(x)|, cap).
    """
    if refined.shape != synthetic.shape:
        raise ValueError(f"refined {tuple(refined.shape)} and synthetic {tuple(synthetic.shape)} differ in shape")
    difference = feature_transform(refined.float(), feature, level_weight) - feature_transform(
        synthetic.float(), feature, level_weight
    )
    absolute = difference.abs()
    return _reduce(absolute.clamp(max=cap) if cap else absolute, reduction)


def gaussian_region(centres: torch.Tensor, height: int, width: int, sigma_px: float) -> torch.Tensor:
    """(N, 2) centres (x = column, y = row, pixels) -> (N, 1, H, W) weights exp(−d²/2σ²), 1 at each centre."""
    rows = torch.arange(height, dtype=torch.float32, device=centres.device).view(1, height, 1)
    cols = torch.arange(width, dtype=torch.float32, device=centres.device).view(1, 1, width)
    x, y = centres[:, 0].float().view(-1, 1, 1), centres[:, 1].float().view(-1, 1, 1)
    return torch.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma_px**2)).unsqueeze(1)


def region_loss(
    refined: torch.Tensor, synthetic: torch.Tensor, weights: torch.Tensor, reduction: Reduction = "sum"
) -> torch.Tensor:
    """Σ w·|x̃ − x| per image, reduced as ℓ_reg is: the pupil-region term (TrainConfig.self_reg_pupil_weight)."""
    if refined.shape != synthetic.shape:
        raise ValueError(f"refined {tuple(refined.shape)} and synthetic {tuple(synthetic.shape)} differ in shape")
    return _reduce(weights * (refined.float() - synthetic.float()).abs(), reduction)
