"""The refiner R_θ (paper §2.1 and §3 implementation details).

Fully convolutional, no striding or pooling, so it edits pixels instead of re-synthesising the
image: conv k×k (width maps) → `num_blocks` ResNet blocks (two conv k×k, width maps each) →
conv 1×1 → `channels` maps → tanh. Presets `gaze` (eyes) and `hand` are the paper's.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from simgan.nn.checks import check_model_input
from simgan.schema import Tuple, schema


@schema
class RefinerConfig:
    """Shape of a refiner; saved in every checkpoint so the network can be rebuilt from the file.

    norm: "none" (default) or "batch". The paper names no normalisation. Without it the refiner is a
        fixed per-image function: a refined image does not depend on its batch-mates and training
        and inference agree exactly, which the service relies on. "batch" adds BatchNorm after each
        block conv as in the cited ResNet.
    output_activation: "tanh" keeps the output in the input range [-1, 1] (paper: unstated).
    padding_mode: how the k×k convs see beyond the border (paper: unstated). "zeros" (default, PyTorch's
        and the public ports') shows every conv a dark frame around the image, and a refiner can learn to
        draw lines along the border from it (simgan.evaluation.artifacts.border_lines measures them);
        "reflect" and "replicate" give the border no signal of its own.
    preserve_background: depth maps only. Input pixels at the bottom of the range (−1: depth 0, no
        surface) are copied to the output, so the background stays exactly background and only the
        hand is refined. Real depth is cropped with the synthetic silhouette (paper §3.2), so both
        domains have an exact-zero background; a tanh never reaches −1 exactly, and a refined
        background of 1–3 grey levels would be a give-away no patch of real depth has. It does not
        make refined hands look real by itself (docs/results.md, "Hands").
    """

    channels: Annotated[int, Field(ge=1, description="image channels in and out (1: grey eyes, 1: depth hands)")] = 1
    width: Annotated[int, Field(ge=1, description="feature maps of every k×k conv (paper: 64)")] = 64
    num_blocks: Annotated[int, Field(ge=0, description="ResNet blocks (paper: 4 eyes, 10 hands)")] = 4
    kernel_size: Annotated[
        int, Field(ge=1, description="k of the k×k convs (paper: 3 eyes, 7 hands); odd, padding k//2 keeps H×W")
    ] = 3
    input_size: Annotated[
        tuple[int, int],
        Tuple,
        Field(
            description="(H, W) pixels the refiner is trained on "
            "(paper: 35×55 eyes, 224×224 hands); recorded so data of another size is refused"
        ),
    ] = (35, 55)
    norm: Literal["none", "batch"] = "none"
    output_activation: Literal["tanh", "none"] = "tanh"
    preserve_background: bool = False
    padding_mode: Literal["zeros", "reflect", "replicate"] = "zeros"

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"RefinerConfig.kernel_size must be odd to keep H×W; got {self.kernel_size}")
        if min(self.input_size) < 1:
            raise ValueError(f"RefinerConfig.input_size must be positive; got {self.input_size}")


# model-range value below which an input pixel is background (uint8 0 maps to −1, uint8 1 to −0.992)
BACKGROUND_LEVEL = -1.0 + 1.0 / 255.0

REFINER_PRESETS: dict[str, RefinerConfig] = {
    # Paper §3.1: 35×55 grayscale, 3×3 convs with 64 maps, 4 ResNet blocks, 1×1 conv to 1 map.
    "gaze": RefinerConfig(channels=1, width=64, num_blocks=4, kernel_size=3, input_size=(35, 55)),
    # Paper §3.2: "the same as for eye gaze estimation, except ... 224×224, filter size 7×7, 10 blocks".
    "hand": RefinerConfig(channels=1, width=64, num_blocks=10, kernel_size=7, input_size=(224, 224)),
}


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
