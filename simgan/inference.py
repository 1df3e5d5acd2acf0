"""Refine uint8 images with a trained refiner: what the CLI, the pipeline and the service call.

Uses the training preprocessing (`simgan.data.transforms`), so serving cannot drift from training.
Batches go through the network whole (no per-image Python loop) in inference mode, channels_last,
and in bf16 autocast on CUDA.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from simgan.data.transforms import as_nchw_uint8, from_model, to_model
from simgan.nn.refiner import Refiner, RefinerConfig
from simgan.training.checkpoint import config_from_state, load_checkpoint, load_module_state


def build_refiner(config: RefinerConfig | dict, state_dict: dict, *, source: str | Path = "state_dict") -> Refiner:
    """A refiner in eval mode from its config and weights (from a checkpoint or a model store)."""
    if isinstance(config, dict):
        config = config_from_state(RefinerConfig, {"refiner_config": config}, "refiner_config", source)
    refiner = Refiner(config)
    load_module_state(refiner, state_dict, what="refiner", path=source)
    return refiner.eval()


def load_refiner(path: str | Path, map_location: str | torch.device = "cpu") -> Refiner:
    """Rebuild the refiner of a training checkpoint from the file alone: the moving average of its weights
    when the run kept one (TrainConfig.refiner_ema_decay), else its weights."""
    state = load_checkpoint(path, map_location=map_location)
    config = config_from_state(RefinerConfig, state, "refiner_config", path)
    average = state.get("refiner_average")  # simgan.training.loop.average_state's dict
    weights = average["weights"] if average else state.get("refiner")
    if weights is None:
        raise ValueError(f"{path}: checkpoint has no refiner weights")
    return build_refiner(config, weights, source=path)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None: CUDA when present, else the CPU; a name ("cpu", "cuda:1") is refused with a one-line ValueError when
    it is not a torch device or this machine does not have it."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {str(device)!r} is not a torch device; use e.g. 'cpu', 'cuda' or 'cuda:0'") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA device(s); use 'cpu' or omit it")
    elif resolved.type != "cpu":
        try:
            torch.empty(1, device=resolved)
        except Exception as error:  # each backend fails in its own way (RuntimeError, AssertionError, ...)
            first = str(error).strip().splitlines()[0].split(". ")[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"device {str(device)!r} is not usable on this machine: {first}") from None
        if resolved.type == "meta":
            raise ValueError(f"device {str(device)!r} holds no data; use e.g. 'cpu' or 'cuda'")
    return resolved


def size_problem(height_width: tuple[int, ...], expected: tuple[int, int]) -> str | None:
    """'size h×w, expected H×W' when (h, w) is not `expected`, else None: the one wording of a size mismatch."""
    got = tuple(int(v) for v in height_width)
    if got == tuple(expected):
        return None
    return f"size {got[0]}×{got[1]}, expected {expected[0]}×{expected[1]}"


class RefinerRunner:
    """Refines uint8 batches on one device.

    batch_size: images per forward pass; bounds memory, not the size of a `refine` call.
    bf16: autocast to bfloat16 on CUDA (default on there; ignored on CPU).
    """

    def __init__(
        self,
        refiner: Refiner,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 1024,
        bf16: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.bf16 = (self.device.type == "cuda") if bf16 is None else (bf16 and self.device.type == "cuda")
        self.refiner = refiner.eval().to(self.device, memory_format=torch.channels_last)
        self.refiner.requires_grad_(False)
        self.refiner.check_inputs = False  # inputs come from to_model: range and shape are known
        self.config: RefinerConfig = refiner.config

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> RefinerRunner:
        return cls(load_refiner(path), **kwargs)

    def size_problem(self, shape: tuple[int, ...]) -> str | None:
        """None when images of `shape` (..., H, W) have the refiner's input size, else what is wrong.

        The refiner is fully convolutional and would run on any size, but it was trained on one: another
        (e.g. the other task's data) gives a silently meaningless result, so it is refused.
        """
        return size_problem(tuple(shape[-2:]), self.config.input_size)

    def refine(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 (N, H, W) or (N, C, H, W) -> refined uint8 numpy array of the same shape."""
        batch = as_nchw_uint8(images, channels=self.config.channels, what="images to refine")
        refined = self.refine_tensor(batch).numpy()
        return refined.reshape(images.shape)

    @torch.inference_mode()
    def refine_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) tensor -> refined uint8 (N, C, H, W) tensor on the CPU; another H×W than the
        refiner's input size is refused (ValueError)."""
        problem = self.size_problem(tuple(images.shape))
        if problem is not None:
            raise ValueError(f"images to refine: {problem} (H×W), the input size this refiner was trained on")
        output = torch.empty(images.shape, dtype=torch.uint8)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size].to(self.device, non_blocking=True)
            model_input = to_model(chunk).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
                refined = self.refiner(model_input)
            output[start : start + len(chunk)] = from_model(refined).cpu()
        return output
