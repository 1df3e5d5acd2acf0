"""Dask (`distributed`) for the work that splits into independent pieces: reading raw files (prepare) and refining
rows of a prepared array (refine). The one module that imports Dask, and only inside its functions.

Which engine (from the environment, so that it never enters a stage's hash — the outputs are byte-identical
either way):
    DASK_SCHEDULER_ADDRESS=tcp://host:8786   connect to that cluster (dask-jobqueue on Slurm/PBS, dask-kubernetes,
                                             `dask scheduler` + `dask worker` by hand); every worker needs this
                                             package installed and the repository's files at the same paths
    SIMGAN_DASK=N                            a local cluster of N worker processes, one thread each (0: a worker
                                             per core), on 127.0.0.1 without a dashboard
    neither                                  no Dask: the single-process path (prepare's own process pool)

References: Dask distributed docs, "Client" (connecting by address; `DASK_SCHEDULER_ADDRESS` is the
`scheduler-address` config key) and "LocalCluster"; "Futures" (`Client.submit`, `as_completed`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
LOCAL_VARIABLE = "SIMGAN_DASK"


def requested(environ=None) -> bool:
    """Whether the environment asks for Dask (a scheduler address, or SIMGAN_DASK for a local cluster)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(ADDRESS_VARIABLE, "").strip() or environ.get(LOCAL_VARIABLE, "").strip())


@contextlib.contextmanager
def client(workers: int | None = None, *, processes: bool = True) -> Iterator[Any]:
    """A `distributed.Client`: to DASK_SCHEDULER_ADDRESS when set, else to a new local cluster of `workers` single-
    threaded workers (default: SIMGAN_DASK, 0 or unset meaning one per core) that is closed with the block.

    processes=False keeps the local workers as threads of this process (cheap to start; for tests).
    """
    from distributed import Client, LocalCluster

    address = os.environ.get(ADDRESS_VARIABLE, "").strip()
    if address:
        with Client(address) as connected:
            yield connected
        return
    if workers is None:
        value = os.environ.get(LOCAL_VARIABLE, "").strip() or "0"
        if not value.isdigit():
            raise ValueError(f"{LOCAL_VARIABLE}={value!r}: expected a number of local Dask workers (0: one per core)")
        workers = int(value)
    workers = workers or os.cpu_count() or 1
    loopback = {"host": "127.0.0.1"} if processes else {}  # threads talk in-process (inproc://), not over TCP
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None, **loopback
        ) as cluster,
        Client(cluster) as local,
    ):
        yield local


@contextlib.contextmanager
def client_if_requested() -> Iterator[Any]:
    """`client()` when the environment asks for Dask (`requested`), else None."""
    if not requested():
        yield None
        return
    with client() as connected:
        yield connected


def map_ordered(client, function: Callable, items: Iterable, *, window: int | None = None) -> Iterator[Any]:
    """`function(item)` for every item on the cluster's workers, yielded in the items' order.

    At most `window` tasks (default: twice the workers' threads) are in flight, so results waiting to be consumed
    stay bounded however many items there are.
    """
    from collections import deque

    if window is None:
        window = 2 * max(1, sum(client.nthreads().values()))
    pending: deque = deque()
    for item in items:
        pending.append(client.submit(function, item, pure=False))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


# ------------------------------------------------------------------------------------ refine on a cluster
_RUNNERS: dict[tuple, Any] = {}


def _runner(checkpoint: str, device: str, batch_size: int):
    """The refiner of `checkpoint`, loaded once per worker process (keyed by the file's path and mtime)."""
    from simgan.inference import RefinerRunner

    key = (checkpoint, os.stat(checkpoint).st_mtime_ns, device, batch_size)
    if key not in _RUNNERS:
        _RUNNERS.clear()
        _RUNNERS[key] = RefinerRunner.from_checkpoint(checkpoint, device=device, batch_size=batch_size)
    return _RUNNERS[key]


def _refine_rows(job: tuple[str, str, str, int, int, int]) -> tuple[int, np.ndarray]:
    checkpoint, images, device, batch_size, start, stop = job
    rows = np.load(images, mmap_mode="r")[start:stop]
    return start, _runner(checkpoint, device, batch_size).refine(np.asarray(rows))


def refine_file(
    client,
    checkpoint: str | Path,
    images: str | Path,
    out: str | Path,
    *,
    batch_size: int,
    device: str = "cpu",
    rows_per_task: int | None = None,
) -> np.ndarray:
    """Refine the uint8 array in the .npy file `images` into the .npy file `out` on the cluster; returns `out`
    memory-mapped.

    Workers read their rows from the memory-mapped file and refine them in batches of `batch_size`, as
    `RefinerRunner.refine` does in one process; a task's rows are a multiple of `batch_size`, so every batch holds
    the same images as in one process and the file is byte-identical to `np.save(out, runner.refine(images))`.
    Blocks are written into `out` as they arrive, a bounded number in flight: memory does not grow with the array.
    """
    from numpy.lib.format import open_memmap

    source = np.load(images, mmap_mode="r")
    if rows_per_task is None:
        workers = max(1, sum(client.nthreads().values()))
        rows_per_task = max(1, -(-len(source) // (4 * workers)))  # ≈ 4 tasks per worker
    rows_per_task = max(batch_size, rows_per_task // batch_size * batch_size)
    refined = open_memmap(out, mode="w+", dtype=np.uint8, shape=source.shape)
    jobs = (
        (str(checkpoint), str(images), device, batch_size, start, min(start + rows_per_task, len(source)))
        for start in range(0, len(source), rows_per_task)
    )
    for start, block in map_ordered(client, _refine_rows, jobs):
        refined[start : start + len(block)] = block
    refined.flush()
    return refined
