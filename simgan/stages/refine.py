"""Stage refine: every synthetic image through the trained refiner; the labels are the simulator's.

In this process, or on a Dask cluster when the environment names one (DASK_SCHEDULER_ADDRESS, or SIMGAN_DASK for
a local cluster; simgan.cluster), with the same bytes out.
"""

from __future__ import annotations

import sys

import numpy as np

from simgan import layout
from simgan.cluster import client_if_requested, refine_file
from simgan.data.prepare import pixel_statistics, write_sample_grid
from simgan.inference import RefinerRunner
from simgan.io import atomic_write, staging_folder
from simgan.stages.common import device, parse, prepared_images


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("refine", __doc__, argv)
    out = layout.refined(task)
    checkpoint = layout.trained(task) / "checkpoint.pt"
    batch_size = params.refine[task].batch_size
    synthetic, manifest = prepared_images(task, "synthetic")
    real, _ = prepared_images(task, "real")
    with staging_folder(out) as staging:  # the arrays, manifest and grid appear together or not at all
        with client_if_requested() as client:
            if client is None:
                runner = RefinerRunner.from_checkpoint(checkpoint, device=device(params), batch_size=batch_size)
                refined = runner.refine(synthetic)
                atomic_write(staging / "images.npy", lambda handle: np.save(handle, refined))
            else:  # workers refine row ranges of the memory-mapped array; the same bytes (simgan.cluster)
                source = layout.prepared(task, "synthetic") / "images.npy"
                refined = refine_file(
                    client, checkpoint, source, staging / "images.npy", batch_size=batch_size, device=device(params)
                )
        table = manifest.copy()
        table["domain"] = "refined"
        table[list(pixel_statistics(refined).columns)] = pixel_statistics(refined, table.index)
        text = table.to_csv(index=False)
        atomic_write(staging / "manifest.csv", lambda handle: handle.write(text.encode()))
        write_sample_grid(staging / "grid.png", [synthetic, refined, real])  # rows: synthetic, refined, real
    step = 65_536  # rows at a time: a large memory-mapped array never becomes one float copy
    total = sum(
        float(np.abs(refined[i : i + step].astype(np.float32) - synthetic[i : i + step]).sum())
        for i in range(0, len(refined), step)
    )
    change = total / max(refined.size, 1)
    print(f"refine@{task}: {len(refined)} images -> {out}; mean |refined − synthetic| = {change:.2f} grey levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
