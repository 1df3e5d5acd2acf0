"""Stage prepare: raw inputs in their published formats -> uint8 arrays, manifests, quarantine tables.

The files are read by a local process pool, or on a Dask cluster when the environment names one
(DASK_SCHEDULER_ADDRESS, or SIMGAN_DASK for a local cluster; simgan.cluster): the outputs are the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from simgan import layout
from simgan.cluster import client_if_requested
from simgan.data.prepare import DatasetError, prepare_task
from simgan.stages.common import parse


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("prepare", __doc__, argv)
    p = params.prepare[task]
    paths = [p.synthetic_path, p.real_path, *([p.test_path] if p.test_path else [])]
    if not all(Path(path).exists() for path in paths):
        missing = next(path for path in paths if not Path(path).exists())
        hint = (
            f"render the embedded default with `simgan simulate --out {layout.DATA}` (or run `make demo`), then "
            "`dvc repro`"
            if missing.startswith(f"{layout.DATA}/")
            else "fix the path in params.yaml"
        )
        print(f"prepare@{task}: prepare.{task}: {missing} does not exist; {hint}", file=sys.stderr)
        return 1
    try:
        with client_if_requested() as client:  # Dask when the environment names one (simgan.cluster)
            prepare_task(
                task,
                layout.ARTIFACTS / "prepared",
                p.sources(),
                workers=p.workers or None,
                val_fraction=p.val_fraction,
                split=p.real_split(),
                log=print,
                client=client,
            )
    except (DatasetError, FileNotFoundError, ValueError) as error:
        print(f"prepare@{task}: prepare.{task}: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a full disk, a read-only place: io names the folder, which is left as it was
        print(f"prepare@{task}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
