"""The discriminators D_φ (paper §2.2 and §3 implementation details).

The local discriminator is fully convolutional and outputs a w×h map of 2-class **logits**, one
pair per image patch; class `REFINED_LABEL` (= 1) is "refined", class `REAL_LABEL` (= 0) is "real"
(paper: D(·) is the probability of the refined class; targets 1 for x̃, 0 for y). The paper's
"(7) Softmax" lives inside the cross-entropy of `simgan.losses`: the last layer is linear. A ReLU
on the logits (a bug of several public ports) can pin D's output at 0 and its loss at ln 2 with no
gradient.

The global discriminator for the ablation (paper §3.3) keeps the same conv trunk and replaces the
final 1×1 conv by a fully connected layer over the whole map: one logit pair per image.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from simgan.nn.checks import check_model_input
from simgan.schema import Tuple, schema

REAL_LABEL = 0
REFINED_LABEL = 1

# A layer is ("conv", kernel, stride, maps) or ("maxpool", kernel, stride); the last layer is the
# conv producing the 2 logits, with no activation after it.
Layer = tuple[str | int, ...]


@schema
class DiscriminatorConfig:
    """Shape of a discriminator; saved in every checkpoint.

    layers: the paper's layer list, in order, each ("conv", kernel, stride, maps) or ("maxpool",
        kernel, stride); ReLU after every conv but the last, which gives the 2 logits (linear).
    padding: "valid" (default: no padding, the Caffe/TF default the paper's layer list implies) so
        that every output logit sees a full image patch and none sees zero padding, which would let
        D tell borders from content. "same" pads convs and pools by k//2.
    head: "local" (the paper's per-patch logits) or "global" (one fully connected logit pair per
        image: the §3.3 ablation only).
    """

    channels: Annotated[int, Field(ge=1, description="input image channels")] = 1
    layers: Annotated[tuple[tuple[str | int, ...], ...], Tuple] = ()
    input_size: Annotated[
        tuple[int, int],
        Tuple,
        Field(description="(H, W) pixels of the images; fixes the global head's input and is checked before training"),
    ] = (35, 55)
    padding: Literal["valid", "same"] = "valid"
    head: Literal["local", "global"] = "local"

    def __post_init__(self) -> None:
        layers = self.layers
        if not layers or layers[-1][0] != "conv" or layers[-1][3] != 2:
            raise ValueError("DiscriminatorConfig.layers must end with a ('conv', k, s, 2) logits layer")
        for layer in layers:
            if (
                layer[0] not in ("conv", "maxpool")
                or len(layer) != (4 if layer[0] == "conv" else 3)
                or not all(isinstance(v, int) and v >= 1 for v in layer[1:])
            ):
                raise ValueError(
                    f"DiscriminatorConfig.layers: bad layer {layer!r}; use ('conv', k, s, maps) or ('maxpool', k, s)"
                )
        # the map the logits layer (local) or the fully connected head (global) sees last must exist
        size = _map_size(self, layers if self.head == "local" else layers[:-1], self.input_size)
        if min(size) < 1:
            raise ValueError(
                f"image size {self.input_size[0]}×{self.input_size[1]} is smaller than the discriminator's layers "
                f"allow (receptive field {receptive_field(self)} pixels)"
            )


def receptive_field(config: DiscriminatorConfig) -> int:
    """Side of the input square one output logit sees (same for H and W)."""
    field, jump = 1, 1
    for layer in config.layers:
        kernel, stride = layer[1], layer[2]
        field += (kernel - 1) * jump
        jump *= stride
    return field


def output_size(config: DiscriminatorConfig, input_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(h, w) of the local logit map for an (H, W) input; (1, 1) for the global head."""
    if config.head == "global":
        return (1, 1)
    return _map_size(config, config.layers, input_size or config.input_size)


def _padding(config: DiscriminatorConfig, kernel: int) -> int:
    return kernel // 2 if config.padding == "same" else 0


def _map_size(config: DiscriminatorConfig, layers, input_size: tuple[int, int]) -> tuple[int, int]:
    height, width = input_size
    for layer in layers:
        kernel, stride = layer[1], layer[2]
        pad = _padding(config, kernel)
        height = (height + 2 * pad - kernel) // stride + 1
        width = (width + 2 * pad - kernel) // stride + 1
    return height, width


class Discriminator(nn.Module):
    """D_φ: float (N, C, H, W) in [-1, 1] -> logits (N, 2, h, w); (N, 2, 1, 1) for the global head."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.check_inputs = True
        # the map the logits layer (local) or the fully connected head (global) sees last
        # the map the fully connected head (global) sees; DiscriminatorConfig checked it is not empty
        size = _map_size(config, config.layers if config.head == "local" else config.layers[:-1], config.input_size)
        trunk: list[nn.Module] = []
        channels = config.channels
        *body, last = config.layers
        for layer in body:
            kernel, stride = layer[1], layer[2]
            pad = _padding(config, kernel)
            if layer[0] == "conv":
                trunk += [nn.Conv2d(channels, layer[3], kernel, stride, pad), nn.ReLU(inplace=True)]
                channels = layer[3]
            else:
                trunk.append(nn.MaxPool2d(kernel, stride, pad))
        self.trunk = nn.Sequential(*trunk)
        if config.head == "local":
            pad = _padding(config, last[1])
            self.logits = nn.Conv2d(channels, 2, last[1], last[2], pad)  # linear: no activation follows
        else:
            features = channels * size[0] * size[1]
            self.logits = nn.Sequential(nn.Flatten(), nn.Linear(features, 2), nn.Unflatten(1, (2, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            check_model_input(x, channels=self.config.channels, what="discriminator input", check_range=False)
            if self.config.head == "global" and tuple(x.shape[-2:]) != self.config.input_size:
                raise ValueError(
                    f"global discriminator input: expected H×W {self.config.input_size}; got {tuple(x.shape[-2:])}"
                )
        return self.logits(self.trunk(x))


DISCRIMINATOR_PRESETS: dict[str, DiscriminatorConfig] = {
    # Paper §3.1: Conv3x3 s2 96, Conv3x3 s2 64, MaxPool3x3 s1, Conv3x3 s1 32, Conv1x1 32, Conv1x1 2.
    "gaze": DiscriminatorConfig(
        layers=(
            ("conv", 3, 2, 96),
            ("conv", 3, 2, 64),
            ("maxpool", 3, 1),
            ("conv", 3, 1, 32),
            ("conv", 1, 1, 32),
            ("conv", 1, 1, 2),
        ),
        input_size=(35, 55),
    ),
    # Paper §3.2: Conv7x7 s4 96, Conv5x5 s2 64, MaxPool3x3 s2, Conv3x3 s2 32, Conv1x1 32, Conv1x1 2.
    "hand": DiscriminatorConfig(
        layers=(
            ("conv", 7, 4, 96),
            ("conv", 5, 2, 64),
            ("maxpool", 3, 2),
            ("conv", 3, 2, 32),
            ("conv", 1, 1, 32),
            ("conv", 1, 1, 2),
        ),
        input_size=(224, 224),
    ),
}
