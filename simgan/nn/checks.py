"""Input checks that name what was expected and what came, instead of a shape error deep in torch."""

from __future__ import annotations

import torch

from simgan.data.transforms import MODEL_RANGE


def check_model_input(x: torch.Tensor, *, channels: int, what: str, check_range: bool) -> None:
    """A float (N, C, H, W) batch in the model range [-1, 1].

    The range check costs one reduction (and a device sync on CUDA); callers that build their
    input with `simgan.data.transforms.to_model` know the range already and skip it.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor; got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{what}: expected a 4-D (N, C, H, W) batch; got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(
            f"{what}: expected {channels} channel(s) in (N, C, H, W); got C={x.shape[1]} in shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{what}: expected float pixels in [-1, 1]; got dtype {x.dtype} "
            "(convert uint8 images with simgan.data.transforms.to_model)"
        )
    if check_range and x.numel():
        low, high = torch.aminmax(x.detach())
        low, high = float(low), float(high)
        if not (MODEL_RANGE[0] - 1e-3 <= low and high <= MODEL_RANGE[1] + 1e-3) or low != low or high != high:
            raise ValueError(
                f"{what}: expected pixels in [{MODEL_RANGE[0]:g}, {MODEL_RANGE[1]:g}]; got min {low:.4g}, "
                f"max {high:.4g} (uint8 images go through simgan.data.transforms.to_model)"
            )
