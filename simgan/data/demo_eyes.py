"""Built-in 35×55 eye images for `simgan demo`: a synthetic set and a "real-like" set, no downloads.

Both sets share one geometry: an almond-shaped eye opening, white sclera, an iris and a pupil whose
centre moves with the gaze (pitch, yaw). The synthetic set is rendered flat and clean, as a simple
simulator would. The real-like set adds what such a simulator does not model, so that a refiner
has a domain gap to learn:
  - skin texture: smooth random blotches (low-frequency noise) over skin and sclera;
  - uneven illumination: a random linear brightness ramp across the image;
  - defocus: a Gaussian blur of random width;
  - a specular glint on the cornea;
  - sensor noise: additive Gaussian noise, then 8-bit quantisation.
Deterministic for a given seed. The datasets issue replaces this with full simulators that write
the published UnityEyes and MPIIGaze formats.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

HEIGHT, WIDTH = 35, 55


def _eye_geometry(count: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    gaze = rng.uniform([-0.35, -0.6], [0.35, 0.6], size=(count, 2))  # (pitch, yaw) in radians
    return {
        "gaze": torch.tensor(gaze, dtype=torch.float32),
        "open": torch.tensor(rng.uniform(9.0, 14.0, count), dtype=torch.float32),  # half-height of the opening, px
        "half_width": torch.tensor(rng.uniform(20.0, 25.0, count), dtype=torch.float32),
        "iris": torch.tensor(rng.uniform(7.0, 9.0, count), dtype=torch.float32),
        "pupil": torch.tensor(rng.uniform(2.5, 3.8, count), dtype=torch.float32),
        "skin": torch.tensor(rng.uniform(120.0, 190.0, count), dtype=torch.float32),
        "iris_tone": torch.tensor(rng.uniform(50.0, 110.0, count), dtype=torch.float32),
    }


def _render(geometry: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat rendering -> (images float (N, H, W) in 0..255, masks of the eye opening)."""
    count = len(geometry["gaze"])
    y = torch.arange(HEIGHT, dtype=torch.float32).view(1, HEIGHT, 1) - (HEIGHT - 1) / 2
    x = torch.arange(WIDTH, dtype=torch.float32).view(1, 1, WIDTH) - (WIDTH - 1) / 2
    col = lambda key: geometry[key].view(count, 1, 1)  # noqa: E731  (N,) -> (N, 1, 1)
    # Almond opening: |y| below a parabola-like lid curve that closes at ±half_width.
    lid = col("open") * (1 - (x / col("half_width")) ** 2).clamp(min=0)
    opening = (y.abs() < lid).float()
    pitch, yaw = geometry["gaze"][:, 0].view(count, 1, 1), geometry["gaze"][:, 1].view(count, 1, 1)
    centre_x, centre_y = 14.0 * torch.sin(yaw), -10.0 * torch.sin(pitch)  # image y points down
    radius = ((x - centre_x) ** 2 + (y - centre_y) ** 2).sqrt()
    image = col("skin").expand(count, HEIGHT, WIDTH).clone()
    image = torch.where(opening.bool(), torch.full_like(image, 225.0), image)
    iris = opening.bool() & (radius < col("iris"))
    image = torch.where(iris, col("iris_tone").expand_as(image), image)
    image = torch.where(opening.bool() & (radius < col("pupil")), torch.full_like(image, 15.0), image)
    return image, opening


def synthetic_eyes(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 35, 55), gaze float32 (N, 2) pitch/yaw radians), clean flat rendering."""
    geometry = _eye_geometry(count, np.random.default_rng(seed))
    image, _ = _render(geometry)
    return image.round().clamp(0, 255).to(torch.uint8).numpy(), geometry["gaze"].numpy()


def real_like_eyes(count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 35, 55), gaze (N, 2)) with the appearance factors of the module docstring."""
    rng = np.random.default_rng(seed)
    geometry = _eye_geometry(count, rng)
    image, _ = _render(geometry)
    generator = torch.Generator().manual_seed(seed)
    # skin texture: 5×8 noise upsampled to the image (smooth blotches), ±18 grey levels
    blotches = F.interpolate(torch.randn(count, 1, 5, 8, generator=generator), size=(HEIGHT, WIDTH),
                             mode="bicubic", align_corners=False)[:, 0]
    image = image + 18.0 * blotches
    # uneven illumination: brightness ramp in a random direction, gain 0.6..1.1 across the image
    angle = torch.rand(count, 1, 1, generator=generator) * 2 * np.pi
    ramp = (torch.cos(angle) * torch.linspace(-1, 1, WIDTH).view(1, 1, WIDTH)
            + torch.sin(angle) * torch.linspace(-1, 1, HEIGHT).view(1, HEIGHT, 1))
    gain = 0.85 + 0.25 * ramp * torch.rand(count, 1, 1, generator=generator)
    image = image * gain
    # glint: a small bright spot near the pupil
    pitch, yaw = geometry["gaze"][:, 0].view(count, 1, 1), geometry["gaze"][:, 1].view(count, 1, 1)
    y = torch.arange(HEIGHT, dtype=torch.float32).view(1, HEIGHT, 1) - (HEIGHT - 1) / 2
    x = torch.arange(WIDTH, dtype=torch.float32).view(1, 1, WIDTH) - (WIDTH - 1) / 2
    glint_x, glint_y = 14.0 * torch.sin(yaw) + 2.0, -10.0 * torch.sin(pitch) - 2.0
    image = image + 90.0 * torch.exp(-((x - glint_x) ** 2 + (y - glint_y) ** 2) / 1.5)
    # defocus: Gaussian blur, sigma 0.6..1.2 px (one kernel per image via grouped conv)
    sigma = 0.6 + 0.6 * torch.rand(count, generator=generator)
    taps = torch.arange(-3, 4, dtype=torch.float32)
    kernel_1d = torch.exp(-(taps.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
    kernel_1d = kernel_1d / kernel_1d.sum(dim=1, keepdim=True)
    kernel = (kernel_1d[:, :, None] * kernel_1d[:, None, :]).unsqueeze(1)  # (N, 1, 7, 7)
    padded = F.pad(image.unsqueeze(0), (3, 3, 3, 3), mode="replicate")
    image = F.conv2d(padded, kernel, groups=count)[0]
    # sensor noise, then 8-bit quantisation
    image = image + 4.0 * torch.randn(image.shape, generator=generator)
    return image.round().clamp(0, 255).to(torch.uint8).numpy(), geometry["gaze"].numpy()
