"""One rank of the data-parallel checks in test_distributed.py, started by `torchrun --nproc_per_node=2` (gloo).

Everything the tests need from one launch (each launch costs seconds): writes into `out` (argv[1]) what the test
process then compares with single-process runs. argv[2] is a single-process checkpoint to re-shard.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: conftest's tiny trainer
from conftest import TINY_REFINER, tiny_trainer

from simgan.training import distributed, loop

PHASE_ENDS = (3, 5, 9)  # tiny_train_config: 3 R pretrain, 2 D pretrain, 4 adversarial rounds
INTERRUPT_AT = 6  # rank 1 alone gets SIGINT during this step
HOLE_REFINER = replace(TINY_REFINER, hole_output=True)


def eye_images():
    """conftest's `eye_images` fixture."""
    rng = np.random.default_rng(0)
    synthetic = rng.integers(60, 200, size=(64, 35, 55), dtype=np.uint8)
    real = np.clip(rng.normal(120, 40, size=(64, 35, 55)), 0, 255).astype(np.uint8)
    return synthetic, real


def weights(trainer) -> dict:
    return {
        "refiner": {k: v.clone() for k, v in trainer.refiner.state_dict().items()},
        "discriminator": {k: v.clone() for k, v in trainer.discriminator.state_dict().items()},
    }


def main() -> None:
    out, single_checkpoint = Path(sys.argv[1]), Path(sys.argv[2])
    distributed.setup("cpu")
    world = distributed.World.current()
    rank = world.rank
    synthetic, real = eye_images()
    facts: dict = {"world_size": world.size}

    writes = []  # every checkpoint write of this rank
    original_save = loop.save_checkpoint

    def counting_save(path, state):
        writes.append(str(path))
        original_save(path, state)

    loop.save_checkpoint = counting_save
    reports = []

    # 1. every phase, no history (its shards draw other slots than one buffer): weights at each phase end
    trainer = tiny_trainer(synthetic, real, use_history=False)
    snapshots = {}
    for end in PHASE_ENDS:
        trainer.fit(stop_at_step=end)
        snapshots[end] = weights(trainer)
    torch.save(snapshots, out / f"phases_rank{rank}.pt")

    # 2. with the history: a straight run, and one stopped at step 6 then resumed by a fresh trainer
    straight = tiny_trainer(synthetic, real)
    straight.report = lambda step, metrics: reports.append(step)
    straight.fit(checkpoint_path=out / "straight.pt")
    facts["history_shard_capacity"] = straight.history.capacity
    facts["history_shard_size"] = len(straight.history)
    torch.save(weights(straight), out / f"straight_rank{rank}.pt")

    first = tiny_trainer(synthetic, real)
    first.fit(checkpoint_path=out / "resumed.pt", stop_at_step=6)
    resumed = tiny_trainer(synthetic, real)
    facts["resumed"] = resumed.resume_if_unfinished(out / "resumed.pt")
    resumed.fit(checkpoint_path=out / "resumed.pt")
    torch.save(weights(resumed), out / f"resumed_rank{rank}.pt")
    facts["resumed_history_equal"] = bool(torch.equal(resumed.history.images, straight.history.images))

    # 3. an interrupt on one rank: every rank stops and saves at the same step
    interrupted = tiny_trainer(synthetic, real)
    step = interrupted.train_step

    def train_step():
        if rank == 1 and interrupted.step == INTERRUPT_AT - 1:
            signal.raise_signal(signal.SIGINT)
        step()

    interrupted.train_step = train_step
    try:
        interrupted.fit(checkpoint_path=out / "interrupted.pt")
        facts["interrupted_at"] = None
    except KeyboardInterrupt:
        facts["interrupted_at"] = interrupted.step

    # 4. a single-process checkpoint re-shards into W shards
    reshard = tiny_trainer(synthetic, real)
    reshard.load(single_checkpoint)
    facts["reshard_size"] = len(reshard.history)
    facts["reshard_images"] = reshard.history.images[: len(reshard.history)].sum().item()

    # 5. a refiner with hole_output (one more noise map, holes left out of the self-regularisation): every phase
    holed = tiny_trainer(synthetic, real, refiner_config=HOLE_REFINER, use_history=False)
    holed.fit()
    torch.save(weights(holed), out / f"holes_rank{rank}.pt")

    facts["writes"] = writes
    facts["reports"] = len(reports)
    (out / f"facts_rank{rank}.json").write_text(json.dumps(facts))
    distributed.teardown()


if __name__ == "__main__":
    main()
