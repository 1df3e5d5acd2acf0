"""Data-parallel refiner training (simgan.training.distributed) on the CPU: two ranks over gloo, one torchrun launch.

ddp_worker.py runs every scenario in that one launch and leaves weights and facts behind; the tests here compare
them with single-process runs of the same tiny trainer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ddp_worker
import pytest
import torch
from conftest import tiny_trainer

from simgan.training.checkpoint import load_checkpoint
from simgan.training.distributed import World, rank_slice

WORKER = Path(__file__).with_name("ddp_worker.py")
WORLD = 2
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    """torchrun --standalone --nproc_per_node=2 ddp_worker.py: its output folder and each rank's facts."""
    out = tmp_path_factory.mktemp("ddp")
    synthetic, real = ddp_worker.eye_images()
    single = tiny_trainer(synthetic, real)
    single.fit(checkpoint_path=out / "single.pt", stop_at_step=7)  # a single-process checkpoint to re-shard
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}"]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, str(WORKER), str(out), str(out / "single.pt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    print(f"torchrun, {WORLD} ranks: {time.perf_counter() - started:.1f} s")
    facts = [json.loads((out / f"facts_rank{rank}.json").read_text()) for rank in range(WORLD)]
    return out, facts


def assert_close(ours: dict, theirs: dict, atol: float) -> None:
    for name in ours:
        for key, value in ours[name].items():
            difference = (value - theirs[name][key]).abs().max().item()
            assert difference <= atol, f"{name}.{key}: max |Δ| {difference:.2e} > {atol:g}"


def test_two_ranks_train_the_weights_one_process_trains_in_every_phase(launch, eye_images):
    out, facts = launch
    assert facts[0]["world_size"] == WORLD
    synthetic, real = eye_images
    single = tiny_trainer(synthetic, real, use_history=False)
    snapshots = torch.load(out / "phases_rank0.pt", weights_only=True)
    for end in sorted(snapshots):  # refiner pretraining, D pretraining, adversarial rounds
        single.fit(stop_at_step=end)
        ours = {"refiner": single.refiner.state_dict(), "discriminator": single.discriminator.state_dict()}
        assert_close(snapshots[end], ours, atol=1e-5)


def test_a_hole_output_refiner_trains_on_two_ranks_as_in_one_process(launch, eye_images):
    """The hole noise is split over the ranks as the images are, and the hole logits, which get no gradient
    before the adversarial phase, stay in DistributedDataParallel's graph."""
    out, _ = launch
    synthetic, real = eye_images
    single = tiny_trainer(synthetic, real, refiner_config=ddp_worker.HOLE_REFINER, use_history=False)
    single.fit()
    ours = {"refiner": single.refiner.state_dict(), "discriminator": single.discriminator.state_dict()}
    assert_close(torch.load(out / "holes_rank0.pt", weights_only=True), ours, atol=1e-5)
    assert float(single.refiner.hole_head.weight.abs().sum()) > 0  # the adversarial steps moved them


def test_every_rank_holds_the_same_weights(launch):
    out, _ = launch
    for name in ("phases", "straight", "resumed"):
        first, second = (torch.load(out / f"{name}_rank{rank}.pt", weights_only=True) for rank in range(WORLD))
        if name == "phases":
            first, second = first[max(first)], second[max(second)]
        for net in first:
            for key in first[net]:
                assert torch.equal(first[net][key], second[net][key]), f"{name}: {net}.{key}"


def test_a_resumed_run_at_the_same_world_size_is_bit_exact(launch):
    out, facts = launch
    assert all(rank["resumed"] and rank["resumed_history_equal"] for rank in facts)
    straight = torch.load(out / "straight_rank0.pt", weights_only=True)
    resumed = torch.load(out / "resumed_rank0.pt", weights_only=True)
    for net in straight:
        for key in straight[net]:
            assert torch.equal(straight[net][key], resumed[net][key]), f"{net}.{key}"
    a, b = load_checkpoint(out / "straight.pt"), load_checkpoint(out / "resumed.pt")
    assert torch.equal(a["history"]["images"], b["history"]["images"])
    assert torch.equal(a["history_shards"]["generators"], b["history_shards"]["generators"])


def test_only_rank_0_writes_checkpoints_and_metrics(launch):
    out, facts = launch
    assert facts[1]["writes"] == [] and facts[1]["reports"] == 0
    assert facts[0]["writes"] and facts[0]["reports"] == 9  # log_every_steps 1, 9 steps
    assert not list(out.glob("*.lock"))


def test_the_history_is_sharded_per_rank_and_saved_whole(launch, eye_images):
    out, facts = launch
    capacity = 16  # tiny_train_config's B
    assert [rank["history_shard_capacity"] for rank in facts] == [capacity // WORLD] * WORLD
    state = load_checkpoint(out / "straight.pt")
    assert state["history"]["capacity"] == capacity
    assert state["history_shards"]["sizes"] == [rank["history_shard_size"] for rank in facts]
    assert state["history"]["size"] == sum(state["history_shards"]["sizes"])
    # a single process continues a checkpoint of two ranks: the shards are one history of capacity B
    synthetic, real = eye_images
    single = tiny_trainer(synthetic, real)
    single.load(out / "straight.pt")
    assert len(single.history) == state["history"]["size"]


def test_a_single_process_checkpoint_is_split_into_equal_shards(launch):
    out, facts = launch
    saved = load_checkpoint(out / "single.pt")["history"]
    share = saved["size"] // WORLD
    assert [rank["reshard_size"] for rank in facts] == [share] * WORLD
    expected = saved["images"][: share * WORLD].sum().item()
    assert sum(rank["reshard_images"] for rank in facts) == pytest.approx(expected, rel=1e-6)


def test_an_interrupt_on_one_rank_stops_every_rank_at_the_same_step(launch):
    out, facts = launch
    assert [rank["interrupted_at"] for rank in facts] == [6, 6]
    assert load_checkpoint(out / "interrupted.pt")["step"] == 6


def test_a_global_batch_splits_into_equal_consecutive_slices():
    assert [rank_slice(8, World(rank, 2)) for rank in (0, 1)] == [slice(0, 4), slice(4, 8)]
    with pytest.raises(ValueError, match="does not split"):
        rank_slice(6, World(0, 4))
    assert World().writer and not World(1, 2).writer


def test_the_launcher_comes_from_the_environment():
    from types import SimpleNamespace

    from simgan.stages.common import launcher

    params = SimpleNamespace(runtime=SimpleNamespace(device="cpu"))
    assert launcher(params, {}) is None  # no GPU asked for: one process
    assert launcher(params, {"SIMGAN_NPROC": "1"}) is None
    assert launcher(params, {"SIMGAN_NPROC": "2"})[1:] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
    ]
    slurm = "srun --ntasks-per-node=1 torchrun --nnodes=2 --nproc_per_node=4 --rdzv_endpoint='head:29500'"
    assert launcher(params, {"SIMGAN_LAUNCHER": slurm, "SIMGAN_NPROC": "2"})[-1] == "--rdzv_endpoint=head:29500"
    with pytest.raises(SystemExit, match="SIMGAN_NPROC='two'"):
        launcher(params, {"SIMGAN_NPROC": "two"})
