"""The history buffer of paper §2.3: fixed B, b/2 from history without replacement, b/2 random slots replaced."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_trainer

from simgan.history import HistoryBuffer


def numbered(start: int, count: int) -> torch.Tensor:
    """Images whose every pixel is their serial number: identifiable after sampling."""
    return torch.arange(start, start + count, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 3).clone()


def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_fills_in_order_then_keeps_its_capacity():
    buffer, generator = HistoryBuffer(10, (1, 2, 3)), torch.Generator().manual_seed(0)
    buffer.push(numbered(0, 4), generator)
    buffer.push(numbered(4, 4), generator)
    assert len(buffer) == 8 and ids(buffer.images[:8]) == list(range(8))
    buffer.push(numbered(8, 4), generator)  # 2 free slots filled, 2 old ones replaced
    assert len(buffer) == 10 and buffer.images.shape[0] == 10
    assert {8, 9} <= set(ids(buffer.images)) and len(set(ids(buffer.images)) & {10, 11}) == 2
    for start in range(12, 200, 4):
        buffer.push(numbered(start, 4), generator)
        assert len(buffer) == 10 and buffer.images.shape[0] == 10


def test_push_replaces_exactly_half_batch_random_distinct_slots():
    capacity, half = 64, 8
    buffer, generator = HistoryBuffer(capacity, (1, 2, 3)), torch.Generator().manual_seed(1)
    buffer.push(numbered(0, capacity), generator)
    written_sets, hit = [], torch.zeros(capacity, dtype=torch.bool)
    for step in range(60):
        before = buffer.images.clone()
        slots = buffer.push(numbered(1000 + step * half, half), generator)
        changed = (buffer.images != before).flatten(1).any(dim=1).nonzero().flatten()
        assert len(set(slots.tolist())) == half and sorted(changed.tolist()) == sorted(slots.tolist())
        assert set(ids(buffer.images[slots])) == set(range(1000 + step * half, 1000 + (step + 1) * half))
        written_sets.append(frozenset(slots.tolist()))
        hit[slots] = True
    assert len(set(written_sets)) > 50  # random slots, not the same (oldest) ones each time
    assert hit.all()  # every slot gets replaced eventually


def test_sample_draws_distinct_images_uniformly():
    buffer, generator = HistoryBuffer(32, (1, 2, 3)), torch.Generator().manual_seed(2)
    buffer.push(numbered(0, 32), generator)
    counts = torch.zeros(32)
    for _ in range(400):
        drawn = ids(buffer.sample(16, generator))
        assert len(set(drawn)) == 16  # without replacement
        counts[drawn] += 1
    assert counts.min() > 120 and counts.max() < 280  # each image ~200 times of 400 (half drawn each time)
    with pytest.raises(ValueError, match="cannot draw 33 images from a history holding 32"):
        buffer.sample(33, generator)


def test_state_dict_round_trip_and_refusal():
    buffer, generator = HistoryBuffer(8, (1, 2, 3)), torch.Generator().manual_seed(3)
    buffer.push(numbered(0, 5), generator)
    restored = HistoryBuffer(8, (1, 2, 3))
    restored.load_state_dict(buffer.state_dict())
    assert len(restored) == 5 and torch.equal(restored.images, buffer.images)
    assert buffer.state_dict()["images"].shape[0] == 5  # only filled slots are saved
    with pytest.raises(ValueError, match="capacity 8 .* this run expects capacity 4"):
        HistoryBuffer(4, (1, 2, 3)).load_state_dict(buffer.state_dict())


def test_lives_on_the_training_device(eye_images):
    synthetic, real = eye_images
    trainer = tiny_trainer(synthetic, real)
    assert trainer.history.images.device == trainer.device
    assert trainer.history.images.shape == (16, 1, 35, 55)


@pytest.mark.gpu
def test_lives_on_cuda(eye_images):
    synthetic, real = eye_images
    trainer = tiny_trainer(synthetic, real, device="cuda")
    trainer.fit()
    assert trainer.history.images.is_cuda and len(trainer.history) > 0


def test_trainer_mixes_half_current_half_history(eye_images):
    """Each D batch: b/2 images from the current refiner + b/2 distinct ones from the buffer; b/2 pushed back."""
    _, real = eye_images
    # many distinct synthetic images, so that equal refined images mean the same slot, not a repeated draw
    synthetic = torch.randint(0, 256, (4096, 35, 55), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    b = 8
    trainer = tiny_trainer(synthetic, real, batch_size=b, history_capacity=12)
    assert len(trainer.history) == 0
    refined, current = trainer.discriminator_batch()
    assert len(refined) == b and refined is current  # empty history: all current
    trainer.discriminator_step()
    assert len(trainer.history) == b // 2
    for expected_size in (8, 12, 12, 12):
        stored = trainer.history.images[: len(trainer.history)].clone()
        refined, current = trainer.discriminator_batch()
        assert len(refined) == b and len(current) == b // 2
        assert torch.equal(refined[: b // 2], current)
        past = refined[b // 2 :]
        # every history image is one stored before this step (distinctness is proven on the buffer above;
        # here two slots may hold equal images when the same synthetic image was drawn twice)
        assert all((stored == image).flatten(1).all(dim=1).any() for image in past)
        assert not any((current == image).flatten(1).all(dim=1).any() for image in past)
        trainer.discriminator_step()
        assert len(trainer.history) == expected_size


def test_without_history_the_d_batch_is_all_current(eye_images):
    synthetic, real = eye_images
    trainer = tiny_trainer(synthetic, real, use_history=False)
    for _ in range(3):
        trainer.discriminator_step()
    refined, current = trainer.discriminator_batch()
    assert len(trainer.history) == 0 and refined is current and len(refined) == 8
