"""The one preprocessing path shared by training, inference and serving, so they cannot drift.

Images live as uint8 (0..255) on disk and in memory; the networks see float in [-1, 1]
(`MODEL_RANGE`). The refiner ends in tanh, so its output is in the same range as its input and
self-regularisation compares like with like (a [0, 1] input against a tanh output is a bug
several public ports have).
"""

from __future__ import annotations

import numpy as np
import torch

MODEL_RANGE = (-1.0, 1.0)


def to_model(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, C, H, W) in 0..255 -> float in [-1, 1]."""
    if images.dtype != torch.uint8:
        raise TypeError(f"to_model expects uint8 images; got {images.dtype}")
    return images.to(dtype).mul_(2.0 / 255.0).sub_(1.0)


def from_model(images: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 0..255, rounded to nearest and clamped."""
    return images.float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def as_nchw_uint8(images: np.ndarray | torch.Tensor, *, channels: int, what: str) -> torch.Tensor:
    """Accept (N, H, W) or (N, C, H, W) uint8 (numpy or torch) and return an (N, C, H, W) tensor.

    Refuses other dtypes, ranks and channel counts with a message naming `what` was passed.
    """
    if isinstance(images, np.ndarray):
        array = np.ascontiguousarray(images)
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())  # e.g. a read-only memmap
    else:
        tensor = images
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{what}: expected a numpy array or torch tensor; got {type(images).__name__}")
    if tensor.dtype != torch.uint8:
        raise TypeError(f"{what}: expected uint8 pixels (0..255); got dtype {tensor.dtype}")
    if tensor.dim() == 3 and channels == 1:
        tensor = tensor.unsqueeze(1)
    if tensor.dim() != 4:
        expected = "(N, H, W) or (N, 1, H, W)" if channels == 1 else f"(N, {channels}, H, W)"
        raise ValueError(f"{what}: expected shape {expected}; got {tuple(tensor.shape)}")
    if tensor.shape[1] != channels:
        raise ValueError(
            f"{what}: expected {channels} channel(s) in (N, C, H, W); got C={tensor.shape[1]} "
            f"in shape {tuple(tensor.shape)}"
        )
    if tensor.shape[0] == 0:
        raise ValueError(f"{what}: the batch is empty (shape {tuple(tensor.shape)})")
    return tensor
