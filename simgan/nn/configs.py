"""The networks' configs and the paper's presets, without torch.

A config is what params.yaml's sections are made of (simgan.config) and what a checkpoint records, so
it is declared here, where reading and checking params.yaml costs no torch import: the stages that do not
compute with torch (prepare, validate, report) and `simgan check` load params.yaml and never import it.
The networks themselves are built from these configs in simgan.nn.refiner, simgan.nn.discriminator and
simgan.nn.estimators, which import every name below from here, so `from simgan.nn.refiner import
RefinerConfig` keeps working.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from simgan.schema import Tuple, schema


# ------------------------------------------------------------------------------------------ refiner
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
    noise_channels: maps of standard normal noise fed beside the image (paper: none, 0). Not in the paper.
        The refiner is a deterministic function of its input, but some real-domain artifacts are random
        given the clean render: a Kinect's dropouts and flying pixels along depth steps and its holes
        differ from frame to frame of the same pose. A deterministic refiner can draw only one fixed
        version of them (or their average, a blur); with noise beside the image it can draw a different
        sample for each image, as the noise input z of conditional GANs does (Mirza & Osindero 2014;
        Isola et al. 2017). In training the noise is drawn afresh for every batch; at inference each
        image's noise is seeded by a hash of its own pixels (`image_noise`), so that a refined image still
        depends on that image alone: the same for its batch-mates, its batch size and the service. Not
        used by either profile: on the embedded default's hands the dropouts a refiner drew with it were
        mostly the same under two different noises (docs/results.md, "Now, the hand refiner").
    hole_output: meant for depth maps (paper: no, False). A second output, a linear logit per pixel that the
        pixel reads "no reading" (depth 0, the bottom of the range), beside the refined image. A Kinect
        loses its reading at random pixels, clustered along depth steps, in projector shadows and on steep
        surfaces; the hole is random given the scene, and it costs the refined image its whole depth there.
        Drawn by the image output, each hole would cost the L1 self-regularisation the pixel's whole depth
        and would be one fixed function of the render; drawn here, the refiner learns *where* holes are
        likely (a probability per pixel), each image gets its own sample of them, and the self-regularisation
        is not charged for the pixels that read nothing (SimGANTrainer.refiner_step gives ψ the synthetic
        pixel there): the adversarial loss alone prices them, as the real frames' own rate of holes does.
        Sampling uses one more noise map (`noise_maps`): in training a hard sample with the gradient of a
        relaxed Bernoulli (straight-through Gumbel-sigmoid, Jang et al. 2017; Maddison et al. 2017), at
        inference the same hard sample from the image's own noise (`image_noise`), so training's forward and
        inference agree.
        The logit is initialised at `HOLE_LOGIT_INIT` (a hole at about 1 pixel in 55) so the pretrained
        refiner starts from nearly no holes.
    hole_block: with `hole_output`, pixels in each hole_block × hole_block block share one draw of the hole
        noise (1: every pixel its own). A Kinect loses its reading in small blocks, not single pixels (its
        disparity is matched over a window); with shared noise a hole covers the part of a block whose
        logit is high enough, so holes come out blocky where the logits are flat and follow a depth step
        where they are not.
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
    noise_channels: Annotated[
        int, Field(ge=0, description="maps of noise fed beside the image (paper: 0; see the class docstring)")
    ] = 0
    hole_output: bool = False
    hole_block: Annotated[
        int, Field(ge=1, description="pixels per side of a block sharing one hole draw (1: per pixel; see above)")
    ] = 1

    @property
    def noise_maps(self) -> int:
        """Noise maps a forward pass takes: `noise_channels` fed to the network, one more to sample holes."""
        return self.noise_channels + int(self.hole_output)

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"RefinerConfig.kernel_size must be odd to keep H×W; got {self.kernel_size}")
        if min(self.input_size) < 1:
            raise ValueError(f"RefinerConfig.input_size must be positive; got {self.input_size}")


REFINER_PRESETS: dict[str, RefinerConfig] = {
    # Paper §3.1: 35×55 grayscale, 3×3 convs with 64 maps, 4 ResNet blocks, 1×1 conv to 1 map.
    "gaze": RefinerConfig(channels=1, width=64, num_blocks=4, kernel_size=3, input_size=(35, 55)),
    # Paper §3.2: "the same as for eye gaze estimation, except ... 224×224, filter size 7×7, 10 blocks".
    "hand": RefinerConfig(channels=1, width=64, num_blocks=10, kernel_size=7, input_size=(224, 224)),
}


# ------------------------------------------------------------------------------------ discriminator
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
        size = map_size(self, layers if self.head == "local" else layers[:-1], self.input_size)
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
    return map_size(config, config.layers, input_size or config.input_size)


def layer_padding(config: DiscriminatorConfig, kernel: int) -> int:
    """Pixels a conv or pool of side `kernel` pads each border with."""
    return kernel // 2 if config.padding == "same" else 0


def map_size(config: DiscriminatorConfig, layers, input_size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of the map `layers` (a prefix of the config's) leave of an (H, W) input."""
    height, width = input_size
    for layer in layers:
        kernel, stride = layer[1], layer[2]
        pad = layer_padding(config, kernel)
        height = (height + 2 * pad - kernel) // stride + 1
        width = (width + 2 * pad - kernel) // stride + 1
    return height, width


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


# ------------------------------------------------------------------------------------- estimators
@schema
class GazeEstimatorConfig:
    """Shape of the gaze CNN. The paper's 35×55 input gives exactly the 9,600-value flatten."""

    input_size: Annotated[tuple[int, int], Tuple, Field(description="(H, W) pixels of the eye images")] = (35, 55)
    widths: Annotated[
        tuple[int, int, int, int, int], Tuple, Field(description="maps of the five convs (paper: 32, 32, 64, 80, 192)")
    ] = (32, 32, 64, 80, 192)
    hidden: Annotated[int, Field(ge=1, description="units of the hidden fully connected layer (paper: 1000)")] = 1000

    def __post_init__(self) -> None:
        if min(self.widths) < 1:
            raise ValueError(f"GazeEstimatorConfig.widths must be positive; got {self.widths}")


@schema
class HourglassConfig:
    """Shape of the stacked hourglass. The stem halves the input with a stride-2 conv and then resizes
    to `heatmap_size` (exact for a 128×128 input; 224 → 112 → 64)."""

    input_size: Annotated[
        tuple[int, int], Tuple, Field(description="(H, W) pixels of the depth crops (paper: 224×224)")
    ] = (224, 224)
    num_joints: Annotated[int, Field(ge=1, description="heatmaps (paper: 14, NYU's evaluation joints)")] = 14
    num_stacks: Annotated[int, Field(ge=1, description="hourglass blocks (paper: 2)")] = 2
    width: Annotated[int, Field(ge=1, description="feature maps throughout (Newell et al.: 256)")] = 128
    depth: Annotated[
        int, Field(ge=1, description="down-sampling levels inside each hourglass (Newell et al.: 4 at 64×64)")
    ] = 4
    heatmap_size: Annotated[
        tuple[int, int], Tuple, Field(description="(h, w) of the output heatmaps (paper: 64×64)")
    ] = (64, 64)

    def __post_init__(self) -> None:
        if min(self.heatmap_size) >> self.depth < 1:
            raise ValueError(f"HourglassConfig: heatmap_size {self.heatmap_size} cannot be halved {self.depth} times")
