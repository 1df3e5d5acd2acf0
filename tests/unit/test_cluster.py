"""Dask for prepare and refine (simgan.cluster): the same bytes as the single-process paths.

The clusters here are local ones of two worker threads (processes=False): seconds to start, the same code paths
as worker processes apart from pickling.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_trainer

from simgan.cluster import client, map_ordered, refine_file, requested
from simgan.data.prepare import prepare_task
from simgan.data.simulators import simulate, simulated_sources
from simgan.inference import RefinerRunner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dask():
    with client(2, processes=False) as connected:
        yield connected


def test_results_come_back_in_submission_order_with_a_bounded_window(dask):
    assert list(map_ordered(dask, lambda x: x * x, range(20), window=3)) == [x * x for x in range(20)]


def test_only_the_environment_asks_for_dask():
    assert not requested({})
    assert requested({"SIMGAN_DASK": "0"}) and requested({"DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:8786"})


def test_prepare_on_dask_writes_the_same_bytes(dask, tmp_path):
    simulate(tmp_path / "data", profile="tiny", workers=1)
    sources = simulated_sources("gaze", tmp_path / "data", (35, 55))
    prepare_task("gaze", tmp_path / "single", sources, workers=1, progress=False)
    prepare_task("gaze", tmp_path / "dask", sources, progress=False, client=dask)
    single = sorted(p.relative_to(tmp_path / "single") for p in (tmp_path / "single").rglob("*") if p.is_file())
    assert single and single == sorted(
        p.relative_to(tmp_path / "dask") for p in (tmp_path / "dask").rglob("*") if p.is_file()
    )
    for name in single:
        assert (tmp_path / "single" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name


def test_refine_on_dask_writes_the_same_bytes_as_one_process(dask, tmp_path, eye_images):
    synthetic, real = eye_images
    trainer = tiny_trainer(synthetic, real)
    trainer.fit(stop_at_step=2)
    trainer.save(tmp_path / "checkpoint.pt")
    images = np.random.default_rng(1).integers(0, 256, size=(150, 35, 55), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    single = RefinerRunner.from_checkpoint(tmp_path / "checkpoint.pt", device="cpu", batch_size=16).refine(images)
    np.save(tmp_path / "single.npy", single)
    refined = refine_file(
        dask,
        tmp_path / "checkpoint.pt",
        tmp_path / "images.npy",
        tmp_path / "dask.npy",
        batch_size=16,
        rows_per_task=40,
    )
    assert isinstance(refined, np.memmap) and refined.shape == images.shape
    assert (tmp_path / "dask.npy").read_bytes() == (tmp_path / "single.npy").read_bytes()
