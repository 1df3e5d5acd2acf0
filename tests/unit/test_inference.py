"""simgan.inference: a refiner rebuilt from the checkpoint file alone, refining uint8 batches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import TINY_REFINER, tiny_trainer

from simgan.data.transforms import from_model, to_model
from simgan.inference import RefinerRunner, build_refiner, load_refiner
from simgan.nn.refiner import Refiner
from simgan.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@pytest.fixture
def checkpoint(eye_images, tmp_path):
    synthetic, real = eye_images
    trainer = tiny_trainer(synthetic, real)
    trainer.fit(checkpoint_path=tmp_path / "c.pt")
    return tmp_path / "c.pt", trainer


def test_refines_like_the_trained_refiner(checkpoint, eye_images):
    path, trainer = checkpoint
    images = eye_images[0][:20]
    runner = RefinerRunner.from_checkpoint(path, device="cpu", batch_size=7)  # 3 uneven chunks
    refined = runner.refine(images)
    assert refined.shape == images.shape and refined.dtype == np.uint8
    with torch.no_grad():
        expected = from_model(trainer.refiner.eval()(to_model(torch.from_numpy(images).unsqueeze(1))))[:, 0].numpy()
    assert np.abs(refined.astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(runner.refine(images[:, None]), refined[:, None])  # (N, 1, H, W) in, same shape out


def test_uint8_round_trip_is_exact():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(from_model(to_model(pixels)), pixels)


def test_rebuilt_from_the_file_alone(checkpoint):
    path, _ = checkpoint
    refiner = load_refiner(path)
    assert refiner.config == TINY_REFINER and not refiner.training
    state = load_checkpoint(path)
    rebuilt = build_refiner(state["refiner_config"], state["refiner"])  # as a model store would hand them over
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), refiner.state_dict().values()))


def test_a_noise_input_refiner_refines_each_image_the_same_in_any_batch(eye_images):
    """With noise_channels each image's noise is seeded by its pixels: chunking and batch-mates change nothing,
    and a config without the field (a checkpoint from before it) still builds a plain refiner."""
    noisy = replace(TINY_REFINER, noise_channels=1)
    refiner = build_refiner(noisy.to_dict(), Refiner(noisy).state_dict())
    images = eye_images[0][:12]
    whole = RefinerRunner(refiner, device="cpu", batch_size=12).refine(images)
    chunks = RefinerRunner(refiner, device="cpu", batch_size=5).refine(images[::-1].copy())[::-1]
    assert np.array_equal(whole, chunks)
    plain = {k: v for k, v in TINY_REFINER.to_dict().items() if k != "noise_channels"}
    assert build_refiner(plain, Refiner(TINY_REFINER).state_dict()).config.noise_channels == 0


def test_a_hole_output_refiner_draws_each_images_holes_the_same_in_any_batch(eye_images):
    """RefinerConfig.hole_output samples holes from each image's own noise: chunking and batch-mates change
    nothing, the holes read 0, and a config from before the field builds a refiner without them."""
    holed = replace(TINY_REFINER, hole_output=True)
    refiner = build_refiner(holed.to_dict(), Refiner(holed).state_dict())
    with torch.no_grad():
        refiner.hole_head.bias.fill_(-1.0)  # a hole at about one pixel in four
    images = eye_images[0][:12]
    whole = RefinerRunner(refiner, device="cpu", batch_size=12).refine(images)
    chunks = RefinerRunner(refiner, device="cpu", batch_size=5).refine(images[::-1].copy())[::-1]
    assert np.array_equal(whole, chunks)
    assert 0.15 < float((whole == 0).mean()) < 0.35 and float((images == 0).mean()) < 0.01
    plain = {k: v for k, v in TINY_REFINER.to_dict().items() if k != "hole_output"}
    assert build_refiner(plain, Refiner(TINY_REFINER).state_dict()).hole_head is None


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 35, 55), dtype=np.float32), r"expected uint8 pixels \(0..255\); got dtype torch.float32"),
        (np.zeros((35, 55), dtype=np.uint8), r"expected shape \(N, H, W\) or \(N, 1, H, W\); got \(35, 55\)"),
        (np.zeros((2, 3, 35, 55), dtype=np.uint8), r"expected 1 channel\(s\) .* got C=3"),
        (np.zeros((0, 35, 55), dtype=np.uint8), "the batch is empty"),
        ([[1, 2], [3, 4]], "expected a numpy array or torch tensor; got list"),
    ],
)
def test_bad_images_are_refused(checkpoint, images, message):
    runner = RefinerRunner.from_checkpoint(checkpoint[0], device="cpu")
    with pytest.raises((ValueError, TypeError), match=message):
        runner.refine(images)


def test_checkpoint_without_refiner_is_refused(tmp_path):
    save_checkpoint(tmp_path / "d.pt", {"step": 0})
    with pytest.raises(CheckpointError, match="checkpoint has no 'refiner_config'"):
        load_refiner(tmp_path / "d.pt")


@pytest.mark.gpu
def test_cuda_bf16_matches_cpu_within_a_few_grey_levels(checkpoint, eye_images):
    cpu = RefinerRunner.from_checkpoint(checkpoint[0], device="cpu").refine(eye_images[0])
    gpu = RefinerRunner.from_checkpoint(checkpoint[0], device="cuda").refine(eye_images[0])
    assert np.abs(cpu.astype(int) - gpu.astype(int)).mean() < 2
