"""Refine throughput on a local Dask cluster against one process, on the same machine and the same array.

single   `RefinerRunner.refine` in this process on the whole array, torch's default threads (one per core): what
         the refine stage does without Dask.
dask     `simgan.cluster.refine_file` on a LocalCluster of `--workers` processes with one thread each (the refine
         stage under SIMGAN_DASK): workers read row ranges of the memory-mapped .npy, refine them, and this process
         writes the blocks into the output .npy. The cluster's start (and each worker's first model load) is
         measured apart: it is paid once per stage, not per image.

The paper's eyes refiner (35×55, 64 maps, 4 blocks), random weights (speed does not depend on them). `--repeats`
pairs of runs, adjacent in time, alternating which goes first; the ratio is the median of the per-pair ratios
(a burst of load from another process hits both sides of a pair). The two outputs are checked byte-identical.
Target on 2 cores: dask >= 0.9 × single.

The last line printed is one JSON object {"benchmark": "dask_refine", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np
import torch

from simgan.cluster import client, refine_file
from simgan.inference import RefinerRunner
from simgan.nn.refiner import REFINER_PRESETS, Refiner
from simgan.training.checkpoint import save_checkpoint

RATIO_TARGET = 0.9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2048, help="images in the array (35×55 uint8)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Dask worker processes")
    parser.add_argument("--batch-size", type=int, default=1024, help="images per forward pass (refine.<task>)")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="simgan-dask-bench-") as folder:
        folder = Path(folder)
        torch.manual_seed(0)
        refiner = Refiner(REFINER_PRESETS["gaze"])
        checkpoint = folder / "checkpoint.pt"
        save_checkpoint(checkpoint, {"refiner_config": refiner.config.to_dict(), "refiner": refiner.state_dict()})
        images_path = folder / "images.npy"
        rng = np.random.default_rng(0)
        np.save(images_path, rng.integers(0, 256, size=(args.images, 35, 55), dtype=np.uint8))
        warm_path = folder / "warm.npy"
        np.save(warm_path, rng.integers(0, 256, size=(args.batch_size * args.workers, 35, 55), dtype=np.uint8))
        images = np.load(images_path, mmap_mode="r")

        runner = RefinerRunner.from_checkpoint(checkpoint, device="cpu", batch_size=args.batch_size)
        runner.refine(np.asarray(images[: args.batch_size]))  # warm-up

        def single() -> float:
            start = time.perf_counter()
            refined = runner.refine(np.asarray(images))
            np.save(folder / "single.npy", refined)
            return args.images / (time.perf_counter() - start)

        started = time.perf_counter()
        with client(args.workers) as dask:
            refine_file(dask, checkpoint, warm_path, folder / "warm_out.npy", batch_size=args.batch_size)
            startup_s = time.perf_counter() - started

            def on_dask() -> float:
                start = time.perf_counter()
                refine_file(dask, checkpoint, images_path, folder / "dask.npy", batch_size=args.batch_size)
                return args.images / (time.perf_counter() - start)

            pairs = []
            for repeat in range(args.repeats):
                first, second = (single, on_dask) if repeat % 2 == 0 else (on_dask, single)
                a, b = first(), second()
                rates = {first.__name__: a, second.__name__: b}
                pairs.append((rates["single"], rates["on_dask"]))
                print(f"pair {repeat + 1}: single {rates['single']:,.0f} img/s, dask {rates['on_dask']:,.0f} img/s")
        identical = (folder / "single.npy").read_bytes() == (folder / "dask.npy").read_bytes()

    ratio = statistics.median(d / s for s, d in pairs)
    figures = {
        "images": args.images,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "cores": os.cpu_count(),
        "torch_threads_single": torch.get_num_threads(),
        "single_images_per_s": round(statistics.median(s for s, _ in pairs)),
        "dask_images_per_s": round(statistics.median(d for _, d in pairs)),
        "dask_over_single": round(ratio, 3),
        "target": RATIO_TARGET,
        "cluster_start_s": round(startup_s, 2),
        "byte_identical": identical,
    }
    print(
        f"refine, {args.images} eyes: single {figures['single_images_per_s']:,} img/s, "
        f"dask ({args.workers} workers) {figures['dask_images_per_s']:,} img/s, "
        f"ratio {ratio:.2f} (target >= {RATIO_TARGET}); cluster start {startup_s:.1f} s; "
        f"outputs {'byte-identical' if identical else 'DIFFER'}"
    )
    print(json.dumps({"benchmark": "dask_refine", "figures": figures}))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
