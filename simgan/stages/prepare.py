"""Stage prepare: raw inputs in their published formats -> uint8 arrays, manifests, quarantine tables."""

from __future__ import annotations

import sys
from pathlib import Path

from simgan import layout
from simgan.data.prepare import DatasetError, prepare_task, source
from simgan.stages.common import parse


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("prepare", __doc__, argv)
    p = params.prepare[task]
    if not Path(p.synthetic_path).exists() or not Path(p.real_path).exists():
        print(
            f"prepare@{task}: {layout.DATA}/ is missing; render the embedded default with "
            f"`simgan simulate --out {layout.DATA}` (or run `make demo`), then `dvc repro`",
            file=sys.stderr,
        )
        return 1
    try:
        sources = {
            "synthetic": source(p.synthetic_format, p.synthetic_path, "synthetic", p.image_size),
            "real": source(p.real_format, p.real_path, "real", p.image_size),
        }
        prepare_task(
            task,
            layout.ARTIFACTS / "prepared",
            sources,
            workers=p.workers or None,
            val_fraction=p.val_fraction,
            test_fraction=p.test_fraction,
            test_persons=p.test_persons,
            log=print,
        )
    except (DatasetError, FileNotFoundError) as error:
        print(f"prepare@{task}: prepare.{task}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
