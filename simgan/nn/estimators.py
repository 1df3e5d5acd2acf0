"""The estimators the paper trains on synthetic or refined images and tests on real ones (§3.1, §3.3).

Gaze (§3.1): 35×55 grayscale → conv3×3 (32) → conv3×3 (32) → conv3×3 (64) → maxpool3×3 s2 →
conv3×3 (80) → conv3×3 (192) → maxpool2×2 s2 → FC9600 → FC1000 → FC3, L2 loss on the 3-D gaze vector.
With valid padding the conv stack leaves 192×5×10 = 9,600 values, which is the paper's "FC9600": it
names the flattened input of the first fully connected layer, so that layer is 9600 → 1000.

Hand (§3.3): a stacked hourglass (Newell et al. 2016) with 2 hourglass blocks and 14 joint heatmaps at
64×64, trained with intermediate supervision (a heatmap loss after every block).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simgan.nn.checks import check_model_input

# The configs are declared without torch (simgan.nn.configs) and imported from here too.
from simgan.nn.configs import GazeEstimatorConfig, HourglassConfig


def _check(images: torch.Tensor, size: tuple[int, int], what: str) -> None:
    check_model_input(images, channels=1, what=what, check_range=False)
    if tuple(images.shape[-2:]) != tuple(size):
        raise ValueError(f"{what}: expected images of {size[0]}×{size[1]} (H×W); got {tuple(images.shape[-2:])}")


class GazeEstimator(nn.Module):
    """35×55 eye → unit 3-D gaze vector (the paper's CNN). `forward` returns the raw 3 outputs; the L2
    loss is taken on them against the unit target, and `predict` normalises."""

    def __init__(self, config: GazeEstimatorConfig = GazeEstimatorConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.features = nn.Sequential(
            nn.Conv2d(1, w[0], 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(w[0], w[1], 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(w[1], w[2], 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(w[2], w[3], 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(w[3], w[4], 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, stride=2),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 1, *config.input_size)).numel()
        if flat < 1:
            raise ValueError(f"GazeEstimatorConfig.input_size {config.input_size} is too small for the conv stack")
        self.flat_features = flat  # 9,600 at 35×55 with the paper's widths
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, config.hidden), nn.ReLU(inplace=True), nn.Linear(config.hidden, 3)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check(images, self.config.input_size, "GazeEstimator input")
        return self.head(self.features(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward(images), dim=1)


class _Residual(nn.Module):
    """Newell et al.'s bottleneck residual module (BN-ReLU-conv, pre-activation)."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        mid = max(channels_out // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_in, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels_out, 1),
        )
        self.skip = nn.Identity() if channels_in == channels_out else nn.Conv2d(channels_in, channels_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class _Hourglass(nn.Module):
    def __init__(self, depth: int, width: int) -> None:
        super().__init__()
        self.skip = _Residual(width, width)
        self.down = _Residual(width, width)
        self.inner = _Hourglass(depth - 1, width) if depth > 1 else _Residual(width, width)
        self.up = _Residual(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.skip(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


class StackedHourglass(nn.Module):
    """Depth crop → `num_stacks` heatmap sets (N, J, h, w); the last one is the prediction."""

    def __init__(self, config: HourglassConfig = HourglassConfig()) -> None:
        super().__init__()
        self.config = config
        width = config.width
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 7, stride=2, padding=3),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            _Residual(width, width),
        )
        self.hourglasses = nn.ModuleList(_Hourglass(config.depth, width) for _ in range(config.num_stacks))
        self.features = nn.ModuleList(
            nn.Sequential(
                _Residual(width, width), nn.Conv2d(width, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
            )
            for _ in range(config.num_stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(width, config.num_joints, 1) for _ in range(config.num_stacks))
        # intermediate supervision: features and heatmaps of one block are added back into the next one's input
        self.remap_features = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(config.num_stacks - 1))
        self.remap_heatmaps = nn.ModuleList(
            nn.Conv2d(config.num_joints, width, 1) for _ in range(config.num_stacks - 1)
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        _check(images, self.config.input_size, "StackedHourglass input")
        x = self.stem(images)
        if tuple(x.shape[-2:]) != self.config.heatmap_size:
            x = F.interpolate(x, size=self.config.heatmap_size, mode="bilinear", align_corners=False)
        outputs = []
        for index, hourglass in enumerate(self.hourglasses):
            features = self.features[index](hourglass(x))
            heatmaps = self.heads[index](features)
            outputs.append(heatmaps)
            if index + 1 < len(self.hourglasses):
                x = x + self.remap_features[index](features) + self.remap_heatmaps[index](heatmaps)
        return outputs


def joint_heatmaps(
    joints_px: torch.Tensor, input_size: tuple[int, int], heatmap_size: tuple[int, int], sigma_px: float = 1.0
) -> torch.Tensor:
    """Gaussian target heatmaps (N, J, h, w) for joints (N, J, 2) as (x, y) in input pixels.

    sigma_px is in heatmap pixels (Newell et al.: 1 at 64×64). A joint outside the crop gives an all-zero map.
    """
    height, width = heatmap_size
    scale = torch.tensor([width / input_size[1], height / input_size[0]], dtype=torch.float32, device=joints_px.device)
    centres = (joints_px.float() + 0.5) * scale - 0.5  # pixel centres stay centres across scales
    ys = torch.arange(height, dtype=torch.float32, device=joints_px.device).view(1, 1, height, 1)
    xs = torch.arange(width, dtype=torch.float32, device=joints_px.device).view(1, 1, 1, width)
    cx, cy = centres[..., 0, None, None], centres[..., 1, None, None]
    maps = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma_px**2))
    inside = (cx >= -0.5) & (cx <= width - 0.5) & (cy >= -0.5) & (cy <= height - 0.5)
    return maps * inside


def heatmap_peaks(heatmaps: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """(N, J, h, w) heatmaps → (N, J, 2) joints (x, y) in input pixels.

    The arg-max, moved a quarter pixel towards the higher neighbour (Newell et al.'s sub-pixel step),
    then scaled from heatmap to input pixels.
    """
    n, j, height, width = heatmaps.shape
    flat = heatmaps.reshape(n, j, -1).argmax(-1)
    ys, xs = (flat // width).float(), (flat % width).float()
    padded = F.pad(heatmaps, (1, 1, 1, 1), mode="replicate")
    iy, ix = (flat // width) + 1, (flat % width) + 1
    flat_padded = padded.reshape(n, j, -1)

    def gather(dy: int, dx: int) -> torch.Tensor:  # the neighbour (dy, dx) of each peak, (N, J)
        return flat_padded.gather(-1, ((iy + dy) * (width + 2) + (ix + dx)).unsqueeze(-1)).squeeze(-1)

    xs = xs + 0.25 * torch.sign(gather(0, 1) - gather(0, -1))
    ys = ys + 0.25 * torch.sign(gather(1, 0) - gather(-1, 0))
    scale_x, scale_y = input_size[1] / width, input_size[0] / height
    return torch.stack([(xs + 0.5) * scale_x - 0.5, (ys + 0.5) * scale_y - 0.5], dim=-1)
