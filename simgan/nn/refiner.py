"""The refiner R_θ (paper §2.1 and §3 implementation details).

Fully convolutional, no striding or pooling, so it edits pixels instead of re-synthesising the
image: conv k×k (width maps) → `num_blocks` ResNet blocks (two conv k×k, width maps each) →
conv 1×1 → `channels` maps → tanh. Presets `gaze` (eyes) and `hand` are the paper's. With
`noise_channels` > 0 (not in the paper; RefinerConfig says why) maps of noise go in beside the image; with
`hole_output` (not in the paper either) a second output samples the pixels that read nothing.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from simgan.data.transforms import from_model
from simgan.nn.checks import check_model_input

# The config and the paper's presets are declared without torch (simgan.nn.configs) and imported from here too.
from simgan.nn.configs import REFINER_PRESETS as REFINER_PRESETS
from simgan.nn.configs import RefinerConfig

# model-range value below which an input pixel is background (uint8 0 maps to −1, uint8 1 to −0.992)
BACKGROUND_LEVEL = -1.0 + 1.0 / 255.0
# the hole logit's initial bias (RefinerConfig.hole_output): sigmoid(-4) ≈ 0.018, a hole at about 1 pixel in 55
HOLE_LOGIT_INIT = -4.0
# clamp of the uniform variate behind a hole's logistic noise: log(u / (1 − u)) stays within ±16
_UNIFORM_EPS = 1e-7


def sample_holes(logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Hard 0/1 holes from (N, 1, H, W) logits and standard normal noise of the same shape.

    The normal noise is turned into logistic noise L (through its CDF), and a pixel is a hole where
    logit + L > 0: a Bernoulli(sigmoid(logit)) sample. While autograd records, the hard sample carries the
    gradient of sigmoid(logit + L), the relaxed Bernoulli at temperature 1 (straight-through Gumbel-sigmoid).
    """
    uniform = torch.special.ndtr(noise.float()).clamp(_UNIFORM_EPS, 1.0 - _UNIFORM_EPS)
    perturbed = logits.float() + torch.log(uniform) - torch.log1p(-uniform)
    hard = (perturbed > 0).to(logits.dtype)
    if not torch.is_grad_enabled() or not logits.requires_grad:
        return hard
    soft = torch.sigmoid(perturbed).to(logits.dtype)
    return hard + (soft - soft.detach())  # exactly `hard` in value: training and inference agree


def image_noise(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, channels, H, W) standard normal noise for model-range images (N, C, H, W), one stream per image.

    Each image's stream is seeded by a hash of its pixels as uint8 (the range the data comes in), so the
    noise of an image does not depend on its batch-mates, on the batch size or on the device: the refine
    stage and the service give one image the same refined output, and a refined set is reproducible.
    """
    n, _, height, width = images.shape
    pixels = from_model(images.detach()).cpu().contiguous()
    noise = torch.empty((n, channels, height, width))
    for i, image in enumerate(pixels.numpy()):
        digest = hashlib.blake2b(image.tobytes(), digest_size=8).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
        noise[i] = torch.randn((channels, height, width), generator=generator)
    return noise.to(images.device)


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

    With `noise_channels` > 0, `forward(x, noise)` takes the noise (N, noise_channels, H, W) beside the image;
    without it each image's own `image_noise` is used. `check_inputs` validates shape, dtype and range on every
    call; the inference path, which builds its input from uint8 itself, turns it off to avoid a device sync per
    batch.
    """

    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        self.config = config
        self.check_inputs = True
        c, k = config, config.kernel_size
        self.stem = nn.Sequential(
            nn.Conv2d(c.channels + c.noise_channels, c.width, k, padding=k // 2, padding_mode=c.padding_mode),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*(ResnetBlock(c.width, k, c.norm, c.padding_mode) for _ in range(c.num_blocks)))
        self.head = nn.Conv2d(c.width, c.channels, 1)
        self.hole_head = None
        if c.hole_output:
            self.hole_head = nn.Conv2d(c.width, 1, 1)
            nn.init.zeros_(self.hole_head.weight)
            nn.init.constant_(self.hole_head.bias, HOLE_LOGIT_INIT)
        self.output_activation = nn.Tanh() if c.output_activation == "tanh" else nn.Identity()

    def forward(
        self, x: torch.Tensor, noise: torch.Tensor | None = None, return_holes: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """The refined image; with `return_holes` also the (N, 1, H, W) 0/1 holes it has (None without hole_output).

        `noise`: (N, noise_maps, H, W), the first `noise_channels` maps fed to the network and the last one,
        with `hole_output`, sampling the holes; None draws each image's own (`image_noise`).
        """
        config = self.config
        if self.check_inputs:
            check_model_input(x, channels=config.channels, what="refiner input", check_range=True)
        maps = config.noise_maps
        if maps:
            if noise is None:
                noise = image_noise(x, maps)
            expected = (x.shape[0], maps, *x.shape[2:])
            if tuple(noise.shape) != expected:
                raise ValueError(f"refiner noise: expected shape {expected}; got {tuple(noise.shape)}")
            noise = noise.to(x.dtype)
        elif noise is not None:
            raise ValueError("refiner noise given to a refiner without noise_channels or hole_output")
        inputs = torch.cat([x, noise[:, : config.noise_channels]], dim=1) if config.noise_channels else x
        features = self.blocks(self.stem(inputs))
        refined = self.output_activation(self.head(features))
        holes = None
        if self.hole_head is not None:
            hole_noise = noise[:, config.noise_channels :]
            if config.hole_block > 1:  # one draw per block: the block's top-left pixel's
                block, (height, width) = config.hole_block, x.shape[2:]
                coarse = hole_noise[:, :, ::block, ::block]
                hole_noise = coarse.repeat_interleave(block, 2).repeat_interleave(block, 3)[:, :, :height, :width]
            holes = sample_holes(self.hole_head(features), hole_noise)
            refined = refined * (1 - holes) - holes  # a hole reads −1, the bottom of the range: depth 0
        if config.preserve_background:
            background = x <= BACKGROUND_LEVEL
            refined = torch.where(background, x, refined)
            if holes is not None:
                holes = holes * (~background).to(holes.dtype)
        return (refined, holes) if return_holes else refined
