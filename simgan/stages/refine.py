"""Stage refine: every synthetic image through the trained refiner; the labels are the simulator's."""

from __future__ import annotations

import sys

import numpy as np

from simgan import layout
from simgan.data.prepare import pixel_statistics, write_sample_grid
from simgan.inference import RefinerRunner
from simgan.io import atomic_write, staging_folder
from simgan.stages.common import device, parse, prepared_images


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("refine", __doc__, argv)
    out = layout.refined(task)
    synthetic, manifest = prepared_images(task, "synthetic")
    runner = RefinerRunner.from_checkpoint(
        layout.trained(task) / "checkpoint.pt", device=device(params), batch_size=params.refine[task].batch_size
    )
    refined = runner.refine(synthetic)
    table = manifest.copy()
    table["domain"] = "refined"
    table[list(pixel_statistics(refined).columns)] = pixel_statistics(refined, table.index)
    text = table.to_csv(index=False)
    real, _ = prepared_images(task, "real")
    with staging_folder(out) as staging:  # the arrays, manifest and grid appear together or not at all
        atomic_write(staging / "images.npy", lambda handle: np.save(handle, refined))
        atomic_write(staging / "manifest.csv", lambda handle: handle.write(text.encode()))
        write_sample_grid(staging / "grid.png", [synthetic, refined, real])  # rows: synthetic, refined, real
    change = np.abs(refined.astype(np.float32) - synthetic).mean()
    print(f"refine@{task}: {len(refined)} images -> {out}; mean |refined − synthetic| = {change:.2f} grey levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
