"""The refiner R_θ (paper §2.1 and §3 implementation details).

Fully convolutional, no striding or pooling, so it edits pixels instead of re-synthesising the
image: conv k×k (width maps) → `num_blocks` ResNet blocks (two conv k×k, width maps each) →
conv 1×1 → `channels` maps → tanh. Presets `gaze` (eyes) and `hand` are the paper's.
"""

from __future__ import annotations

import torch
from torch import nn

from simgan.nn.checks import check_model_input

# The config and the paper's presets are declared without torch (simgan.nn.configs) and imported from here too.
from simgan.nn.configs import REFINER_PRESETS as REFINER_PRESETS
from simgan.nn.configs import RefinerConfig

# model-range value below which an input pixel is background (uint8 0 maps to −1, uint8 1 to −0.992)
BACKGROUND_LEVEL = -1.0 + 1.0 / 255.0


class ResnetBlock(nn.Module):
    """conv → (norm) → ReLU → conv → (norm), plus the input, then ReLU (He et al. 2016)."""

    def __init__(self, width: int, kernel_size: int, norm: str, padding_mode: str = "zeros") -> None:
        super().__init__()
        conv = {"padding": kernel_size // 2, "bias": norm == "none", "padding_mode": padding_mode}
        layers: list[nn.Module] = [nn.Conv2d(width, width, kernel_size, **conv)]
        if norm == "batch":
            layers.append(nn.BatchNorm2d(width))
        layers += [nn.ReLU(inplace=True), nn.Conv2d(width, width, kernel_size, **conv)]
        if norm == "batch":
            layers.append(nn.BatchNorm2d(width))
        self.body = nn.Sequential(*layers)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x + self.body(x))


class Refiner(nn.Module):
    """R_θ: float (N, C, H, W) in [-1, 1] -> refined image of the same shape and range.

    `check_inputs` validates shape, dtype and range on every call; the inference path, which builds
    its input from uint8 itself, turns it off to avoid a device sync per batch.
    """

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        self.config = config
        self.check_inputs = True
        c, k = config, config.kernel_size
        self.stem = nn.Sequential(
            nn.Conv2d(c.channels, c.width, k, padding=k // 2, padding_mode=c.padding_mode), nn.ReLU(inplace=True)
        )
        self.blocks = nn.Sequential(*(ResnetBlock(c.width, k, c.norm, c.padding_mode) for _ in range(c.num_blocks)))
        self.head = nn.Conv2d(c.width, c.channels, 1)
        self.output_activation = nn.Tanh() if c.output_activation == "tanh" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            check_model_input(x, channels=self.config.channels, what="refiner input", check_range=True)
        refined = self.output_activation(self.head(self.blocks(self.stem(x))))
        if self.config.preserve_background:
            refined = torch.where(x <= BACKGROUND_LEVEL, x, refined)
        return refined
