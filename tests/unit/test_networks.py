"""Refiner and discriminators: paper layer lists, shapes, receptive fields, linear logits, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from simgan.nn.discriminator import (
    DISCRIMINATOR_PRESETS,
    Discriminator,
    DiscriminatorConfig,
    output_size,
    receptive_field,
)
from simgan.nn.refiner import REFINER_PRESETS, Refiner, RefinerConfig, image_noise


@pytest.mark.parametrize(
    ("preset", "kernel", "blocks", "size"), [("gaze", 3, 4, (35, 55)), ("hand", 7, 10, (224, 224))]
)
def test_refiner_presets_are_the_papers(preset, kernel, blocks, size):
    config = REFINER_PRESETS[preset]
    refiner = Refiner(config)
    convs = [m for m in refiner.modules() if isinstance(m, nn.Conv2d)]
    # conv k×k (64) -> blocks × two conv k×k (64) -> conv 1×1 (1)
    assert len(convs) == 1 + 2 * blocks + 1
    assert all(c.kernel_size == (kernel, kernel) and c.out_channels == 64 for c in convs[:-1])
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == 1
    assert all(c.stride == (1, 1) for c in convs)
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in refiner.modules())
    assert config.input_size == size
    x = torch.rand(1, 1, *size) * 2 - 1
    assert refiner(x).shape == (1, 1, *size)


def test_refiner_output_stays_in_input_range():
    refiner = Refiner(RefinerConfig(width=8, num_blocks=1))
    with torch.no_grad():
        for p in refiner.parameters():
            p.mul_(50)  # push pre-activations far out
    out = refiner(torch.rand(4, 1, 35, 55) * 2 - 1)
    assert out.min() >= -1 and out.max() <= 1
    assert out.abs().max() > 0.99  # tanh really saturates: the range is the activation's, not luck


def test_refiner_is_per_image():
    """No batch statistics: an image's refinement does not depend on its batch-mates."""
    refiner = Refiner(RefinerConfig(width=8, num_blocks=2)).train()
    batch = torch.rand(6, 1, 35, 55) * 2 - 1
    together = refiner(batch)
    alone = torch.cat([refiner(batch[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_preserve_background_keeps_depth_zero_exactly_and_still_refines_the_hand():
    refiner = Refiner(
        RefinerConfig(width=8, num_blocks=1, kernel_size=7, input_size=(32, 32), preserve_background=True)
    )
    depth = torch.full((2, 1, 32, 32), -1.0)  # uint8 0: no surface
    depth[..., 8:24, 10:20] = torch.rand(2, 1, 16, 10) * 1.5 - 0.5  # the hand
    refined = refiner(depth)
    assert torch.equal(refined[depth == -1], depth[depth == -1])  # background passes through, bit for bit
    assert not torch.allclose(refined[depth > -1], depth[depth > -1])  # the hand is refined
    plain = Refiner(RefinerConfig(width=8, num_blocks=1, kernel_size=7, input_size=(32, 32)))
    plain.load_state_dict(refiner.state_dict())
    assert (plain(depth)[depth == -1] != -1).any()  # without it, a tanh never gives exactly −1 back


def noisy_refiner(**overrides) -> Refiner:
    torch.manual_seed(0)
    return Refiner(RefinerConfig(width=8, num_blocks=1, kernel_size=7, input_size=(32, 32), **overrides)).eval()


def test_noise_channels_go_in_beside_the_image_and_change_the_output():
    refiner = noisy_refiner(noise_channels=2)
    assert refiner.stem[0].in_channels == 3 and refiner.head.out_channels == 1
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        one, other = refiner(x, torch.randn(3, 2, 32, 32)), refiner(x, torch.randn(3, 2, 32, 32))
        default = refiner(x)
    assert one.shape == x.shape and (one - other).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # every image differs
    torch.testing.assert_close(default, refiner(x, image_noise(x, 2)))  # no noise given: each image's own


def test_image_noise_is_seeded_by_each_images_pixels_alone():
    """The noise of an image does not depend on its batch-mates or position, and does on its pixels: the
    refine stage, another batch size and the service give one image one refined output."""
    images = torch.randint(0, 256, (5, 1, 32, 32), dtype=torch.uint8).float().div(127.5).sub(1)
    noise = image_noise(images, 2)
    assert noise.shape == (5, 2, 32, 32)
    assert abs(float(noise.mean())) < 0.05 and abs(float(noise.std()) - 1) < 0.05
    torch.testing.assert_close(image_noise(images.flip(0)[1:3], 2), noise.flip(0)[1:3], rtol=0, atol=0)
    changed = images.clone()
    changed[0, 0, 5, 5] += 2 / 255  # one grey level
    assert not torch.equal(image_noise(changed[:1], 2), noise[:1])
    refiner = noisy_refiner(noise_channels=1)
    with torch.no_grad():
        together = refiner(images)
        alone = torch.cat([refiner(images[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_refiner_noise_of_the_wrong_shape_or_without_noise_channels_is_refused():
    x = torch.zeros(2, 1, 32, 32)
    with pytest.raises(ValueError, match=r"refiner noise: expected shape \(2, 1, 32, 32\); got \(2, 2, 32, 32\)"):
        noisy_refiner(noise_channels=1)(x, torch.zeros(2, 2, 32, 32))
    with pytest.raises(ValueError, match="refiner noise given to a refiner without noise_channels"):
        noisy_refiner()(x, torch.zeros(2, 1, 32, 32))


def hole_refiner(**overrides) -> Refiner:
    return noisy_refiner(preserve_background=True, hole_output=True, **overrides)


def hand_depth(count: int = 4) -> torch.Tensor:
    depth = torch.full((count, 1, 32, 32), -1.0)  # uint8 0: no surface
    depth[..., 6:26, 8:24] = torch.rand(count, 1, 20, 16) * 1.5 - 0.5  # the hand
    return depth


def test_hole_output_draws_holes_that_read_no_depth_on_the_hand_only_the_same_in_training_and_inference():
    refiner = hole_refiner()
    assert refiner.config.noise_maps == 1 and refiner.stem[0].in_channels == 1  # the hole noise is not an input
    with torch.no_grad():  # a hole at every other pixel, by the logit alone
        refiner.hole_head.bias.fill_(0.0)
    depth = hand_depth()
    refined, holes = refiner.train()(depth, return_holes=True)
    hand = depth > -1
    assert set(holes.unique().tolist()) == {0.0, 1.0} and 0.35 < float(holes[hand].mean()) < 0.65
    assert torch.equal(refined[holes > 0], torch.full_like(refined[holes > 0], -1.0))  # depth 0: no reading
    assert not holes[~hand].any() and torch.equal(refined[~hand], depth[~hand])  # background stays background
    assert (refined[hand & (holes == 0)] > -1).all()
    with torch.no_grad():
        inferred, inferred_holes = refiner.eval()(depth, return_holes=True)
    assert torch.equal(inferred, refined.detach()) and torch.equal(inferred_holes, holes.detach())
    other = refiner(depth, torch.randn(4, 1, 32, 32))  # another draw of the noise: other holes, same logits
    assert not torch.equal(other, inferred)


def test_the_hole_logit_learns_from_the_output_through_the_hard_sample():
    """Straight-through: the output's gradient reaches the hole logits (a loss that wants the hand darker raises
    them), and at its initial bias a hole falls on about 1 hand pixel in 55."""
    from simgan.nn.refiner import HOLE_LOGIT_INIT

    refiner = hole_refiner().train()
    assert float(refiner.hole_head.bias) == HOLE_LOGIT_INIT and not refiner.hole_head.weight.any()
    depth = hand_depth(64)
    refined, holes = refiner(depth, return_holes=True)
    assert 0.01 < float(holes[depth > -1].mean()) < 0.03
    refined[depth > -1].sum().backward()  # lower is better: more holes
    assert float(refiner.hole_head.bias.grad) < 0  # descent raises the bias
    assert refiner.hole_head.weight.grad.abs().sum() > 0


def test_hole_block_shares_one_draw_per_block():
    """With flat logits every block of hole_block × hole_block pixels is a hole or not as a whole (the last,
    partial blocks of a 32 × 32 image at 3 too); at 1 the pixels of a block disagree."""
    depth = torch.rand(2, 1, 32, 32) * 1.5 - 0.5  # all hand
    for block in (1, 3):
        refiner = noisy_refiner(hole_output=True, hole_block=block)
        with torch.no_grad():
            refiner.hole_head.bias.fill_(0.0)
            _, holes = refiner(depth, return_holes=True)
        padded = torch.nn.functional.pad(holes, (0, 1, 0, 1), value=float("nan"))  # 33 = 11 blocks of 3
        blocks = padded.unfold(2, 3, 3).unfold(3, 3, 3).reshape(2, 11, 11, 9)
        spread = torch.nan_to_num(blocks, nan=0.5).amax(-1) - torch.nan_to_num(blocks, nan=0.5).amin(-1)
        uniform = (spread < 1).float().mean()
        assert (uniform == 1) if block == 3 else (uniform < 0.5)
        assert 0.3 < float(holes.mean()) < 0.7


def test_hole_noise_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"refiner noise: expected shape \(2, 2, 32, 32\); got \(2, 1, 32, 32\)"):
        hole_refiner(noise_channels=1)(hand_depth(2), torch.zeros(2, 1, 32, 32))


# Output map sizes and receptive fields, computed by hand from the paper's layer lists (valid padding):
#   eyes 35×55:   conv3 s2 -> 17×27, conv3 s2 -> 8×13, pool3 s1 -> 6×11, conv3 s1 -> 4×9;
#                 RF 3 -> 3+2·2=7 -> 7+2·4=15 -> 15+2·4=23
#   hands 224×224: conv7 s4 -> 55, conv5 s2 -> 26, pool3 s2 -> 12, conv3 s2 -> 5;
#                 RF 7 -> 7+4·4=23 -> 23+2·8=39 -> 39+2·16=71
@pytest.mark.parametrize(("preset", "map_size", "field"), [("gaze", (4, 9), 23), ("hand", (5, 5), 71)])
def test_local_discriminator_map_size_and_receptive_field(preset, map_size, field):
    config = DISCRIMINATOR_PRESETS[preset]
    discriminator = Discriminator(config)
    assert output_size(config) == map_size
    assert receptive_field(config) == field
    logits = discriminator(torch.zeros(2, 1, *config.input_size))
    assert logits.shape == (2, 2, *map_size)


@pytest.mark.parametrize("preset", ["gaze", pytest.param("hand", marks=pytest.mark.slow)])
def test_receptive_field_is_what_the_network_sees(preset):
    """Measured, not only computed: which input pixels change the centre logit of the map.

    Each row (column) of a window around where the centre logit's field should lie is perturbed in turn; the
    window is 8 pixels wider than the field on each side (clipped to the image), and the rows (columns) that
    change the logit must be a run of exactly `receptive_field` lying strictly inside it: a field that were
    larger would reach the window's edge, or show more rows, and one that were smaller would show fewer.
    """
    config = DISCRIMINATOR_PRESETS[preset]
    discriminator = Discriminator(config).double()
    with torch.no_grad():  # positive weights and inputs: every ReLU passes and a bigger pixel wins every max-pool
        for name, p in discriminator.named_parameters():
            p.copy_(torch.full_like(p, 0.0) if name.endswith("bias") else torch.rand_like(p) + 0.1)
    height, width = config.input_size
    map_h, map_w = output_size(config)
    cy, cx = map_h // 2, map_w // 2
    base = torch.rand(1, 1, height, width, dtype=torch.double) + 0.1
    field = receptive_field(config)
    jump = math.prod(layer[2] for layer in config.layers)  # input pixels between neighbouring logits
    margin = 8

    def influenced(axis: str) -> tuple[list[int], range]:
        """The rows (columns) of the window that change the centre logit, and the window."""
        count, centre = (height, cy) if axis == "row" else (width, cx)
        first = centre * jump  # valid padding: logit i's field would start at pixel i·jump
        window = range(max(first - margin, 0), min(first + field + margin, count))
        batch = base.repeat(len(window), 1, 1, 1)
        for k, i in enumerate(window):
            if axis == "row":
                batch[k, 0, i, :] += 1000.0
            else:
                batch[k, 0, :, i] += 1000.0
        with torch.no_grad():
            centre_logits = discriminator(batch)[:, 1, cy, cx]
            reference = discriminator(base)[0, 1, cy, cx]
        return [i for k, i in enumerate(window) if centre_logits[k] != reference], window

    for axis in ("row", "column"):
        lines, window = influenced(axis)
        assert len(lines) == field and lines == list(range(lines[0], lines[0] + len(lines))), (axis, lines)
        assert window[0] < lines[0] and lines[-1] < window[-1], (axis, lines, window)  # nothing beyond it counts


@pytest.mark.parametrize("preset", ["gaze", "hand"])
def test_discriminator_logits_are_linear(preset):
    """The logits layer is a conv with nothing after it: logits go negative and scale with its weights."""
    config = DISCRIMINATOR_PRESETS[preset]
    discriminator = Discriminator(config)
    assert isinstance(discriminator.logits, nn.Conv2d) and discriminator.logits.out_channels == 2
    x = torch.rand(4, 1, *config.input_size) * 2 - 1
    with torch.no_grad():
        discriminator.logits.bias.fill_(-5.0)
        logits = discriminator(x)
        assert (logits < 0).any()  # a ReLU would clip these to 0
        discriminator.logits.weight.neg_()
        discriminator.logits.bias.neg_()
        torch.testing.assert_close(discriminator(x), -logits)
    # Only the discriminator's trunk has activations; softmax lives in the loss.
    assert not any(isinstance(m, (nn.Softmax, nn.Sigmoid)) for m in discriminator.modules())


def test_global_discriminator_has_fully_connected_head():
    config = DiscriminatorConfig(**{**DISCRIMINATOR_PRESETS["gaze"].to_dict(), "head": "global"})
    discriminator = Discriminator(config)
    assert any(isinstance(m, nn.Linear) for m in discriminator.modules())
    assert output_size(config) == (1, 1)
    assert discriminator(torch.zeros(3, 1, 35, 55)).shape == (3, 2, 1, 1)
    with pytest.raises(ValueError, match=r"expected H×W \(35, 55\); got \(55, 35\)"):
        discriminator(torch.zeros(1, 1, 55, 35))


def test_discriminator_refuses_inputs_smaller_than_its_layers():
    with pytest.raises(ValueError, match="smaller than the discriminator.s layers allow"):
        Discriminator(DiscriminatorConfig(**{**DISCRIMINATOR_PRESETS["hand"].to_dict(), "input_size": (35, 55)}))


@pytest.mark.parametrize(
    ("bad_input", "message"),
    [
        (torch.zeros(35, 55), r"expected a 4-D \(N, C, H, W\) batch; got shape \(35, 55\)"),
        (torch.zeros(2, 3, 35, 55), r"expected 1 channel\(s\) .* got C=3"),
        (torch.zeros(2, 1, 35, 55, dtype=torch.uint8), r"expected float pixels in \[-1, 1\]; got dtype torch.uint8"),
        (torch.full((2, 1, 35, 55), 255.0), r"expected pixels in \[-1, 1\]; got min 255, max 255"),
        (torch.full((2, 1, 35, 55), float("nan")), r"expected pixels in \[-1, 1\]; got min nan"),
    ],
)
def test_refiner_refuses_bad_input(bad_input, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Refiner(RefinerConfig(width=4, num_blocks=0))(bad_input)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kernel_size": 4}, "kernel_size must be odd"),
        ({"width": 0}, r"width\n\s+Input should be greater than or equal to 1"),
        ({"norm": "layer"}, r"norm\n\s+Input should be 'none' or 'batch'"),
        ({"noise_channels": -1}, r"noise_channels\n\s+Input should be greater than or equal to 0"),
    ],
)
def test_refiner_config_refuses_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        RefinerConfig(**overrides)


@pytest.mark.parametrize("mode, border_differs", [("zeros", True), ("reflect", False), ("replicate", False)])
def test_padding_mode_decides_whether_the_border_has_a_signal_of_its_own(mode, border_differs):
    """A flat grey image in: with zero padding every conv sees a dark frame, so the output's border differs
    from its interior (what lets a refiner draw lines there); reflect/replicate padding leave it flat."""
    torch.manual_seed(0)
    refiner = Refiner(RefinerConfig(width=8, num_blocks=2, padding_mode=mode)).eval()
    with torch.no_grad():
        out = refiner(torch.full((1, 1, 35, 55), 0.3))[0, 0]
    spread = float(out.max() - out.min())
    assert (spread > 1e-3) is border_differs, spread
