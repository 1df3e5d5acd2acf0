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

import torch
from torch import nn

from simgan.nn.checks import check_model_input

# The configs and the paper's presets are declared without torch (simgan.nn.configs) and imported from here too.
from simgan.nn.configs import DISCRIMINATOR_PRESETS as DISCRIMINATOR_PRESETS
from simgan.nn.configs import DiscriminatorConfig, layer_padding, map_size
from simgan.nn.configs import Layer as Layer
from simgan.nn.configs import output_size as output_size
from simgan.nn.configs import receptive_field as receptive_field

REAL_LABEL = 0
REFINED_LABEL = 1


class Discriminator(nn.Module):
    """D_φ: float (N, C, H, W) in [-1, 1] -> logits (N, 2, h, w); (N, 2, 1, 1) for the global head."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.check_inputs = True
        # the map the logits layer (local) or the fully connected head (global) sees last
        # the map the fully connected head (global) sees; DiscriminatorConfig checked it is not empty
        size = map_size(config, config.layers if config.head == "local" else config.layers[:-1], config.input_size)
        trunk: list[nn.Module] = []
        channels = config.channels
        *body, last = config.layers
        for layer in body:
            kernel, stride = layer[1], layer[2]
            pad = layer_padding(config, kernel)
            if layer[0] == "conv":
                trunk += [nn.Conv2d(channels, layer[3], kernel, stride, pad), nn.ReLU(inplace=True)]
                channels = layer[3]
            else:
                trunk.append(nn.MaxPool2d(kernel, stride, pad))
        self.trunk = nn.Sequential(*trunk)
        if config.head == "local":
            pad = layer_padding(config, last[1])
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
