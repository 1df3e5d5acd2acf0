"""The history of refined images (paper §2.3).

"Let B be the size of the buffer and b be the mini-batch size ... At each iteration of
discriminator training, we compute the discriminator loss function by sampling b/2 images from the
current refiner network, and sampling an additional b/2 images from the buffer ... We keep the size
of the buffer, B, fixed. After each training iteration, we randomly replace b/2 samples in the
buffer with the newly generated refined images."

Choices the paper leaves open, made here:
- The buffer starts empty and fills in arrival order; while it holds fewer than b/2 images the
  trainer takes the rest of the D batch from the current refiner (`HistoryBuffer.sample` never
  repeats an image). Once full, each `push` overwrites b/2 slots drawn at random without
  replacement, so an image survives B/(b/2) D steps on average, not a fixed FIFO age.
- Images are stored as float32 in the model range on the training device, so a history image
  is exactly what the refiner produced when it was pushed (no re-quantisation D could learn from).
- All randomness comes from the caller's torch.Generator (CPU), so training is reproducible and a
  resumed run draws the same slots as an uninterrupted one.
"""

from __future__ import annotations

import torch


class HistoryBuffer:
    """Fixed-capacity store of past refined images, (B, C, H, W) float32 on `device`."""

    def __init__(self, capacity: int, image_shape: tuple[int, int, int], device: torch.device | str = "cpu") -> None:
        if capacity < 1:
            raise ValueError(f"history capacity B must be >= 1; got {capacity}")
        self.capacity = int(capacity)
        self.images = torch.zeros((self.capacity, *image_shape), dtype=torch.float32, device=device)
        self.size = 0  # filled slots; slots [0, size) hold images

    def __len__(self) -> int:
        return self.size

    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """`count` distinct stored images chosen uniformly at random (without replacement)."""
        if count > self.size:
            raise ValueError(f"cannot draw {count} images from a history holding {self.size}")
        slots = torch.randperm(self.size, generator=generator)[:count]
        return self.images[slots.to(self.images.device)]

    def push(self, refined: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Store `refined` (n, C, H, W): fill empty slots first, then overwrite n random slots.

        Returns the slot indices written (CPU), for tests and diagnostics.
        """
        count = refined.shape[0]
        if tuple(refined.shape[1:]) != tuple(self.images.shape[1:]):
            raise ValueError(
                f"history stores images of shape {tuple(self.images.shape[1:])}; got {tuple(refined.shape[1:])}"
            )
        if count > self.capacity:
            raise ValueError(f"cannot push {count} images into a history of capacity {self.capacity}")
        free = self.capacity - self.size
        fresh = torch.arange(self.size, self.size + min(free, count))
        replaced = torch.randperm(self.size, generator=generator)[: count - len(fresh)]
        slots = torch.cat([fresh, replaced])
        self.images[slots.to(self.images.device)] = refined.detach().to(self.images)
        self.size += len(fresh)
        return slots

    def state_dict(self) -> dict:
        """Only the filled slots are saved: a checkpoint early in training stays small."""
        return {"capacity": self.capacity, "size": self.size, "images": self.images[: self.size].cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity or tuple(state["images"].shape[1:]) != tuple(self.images.shape[1:]):
            raise ValueError(
                f"history in checkpoint has capacity {state['capacity']} and images "
                f"{tuple(state['images'].shape[1:])}; "
                f"this run expects capacity {self.capacity} and images {tuple(self.images.shape[1:])}"
            )
        self.size = int(state["size"])
        self.images.zero_()
        self.images[: self.size] = state["images"].to(self.images)
