"""Stage prepare: raw inputs in their published formats -> uint8 arrays, manifests, quarantine tables."""

from __future__ import annotations

import sys
from pathlib import Path

from simgan import layout
from simgan.data.prepare import DatasetError, Source, prepare_task
from simgan.stages.common import parse


def main() -> int:
    task, params, _ = parse("prepare", __doc__)
    p = params.prepare[task]
    size = tuple(p.image_size)
    sources = {}
    for domain, fmt, path in (("synthetic", p.synthetic_format, p.synthetic_path), ("real", p.real_format, p.real_path)):
        options = {"size": size[0] if fmt == "nyu" else size}
        if fmt == "nyu":
            options["kind"] = "synthdepth" if domain == "synthetic" else "depth"
        sources[domain] = Source(fmt, Path(path), options)
    if not Path(p.synthetic_path).exists() or not Path(p.real_path).exists():
        print(f"prepare@{task}: {layout.DATA}/ is missing; render the embedded default with "
              f"`simgan simulate --out {layout.DATA}` (or run `make demo`), then `dvc repro`", file=sys.stderr)
        return 1
    try:
        prepare_task(task, layout.DATA, layout.ARTIFACTS / "prepared", sources=sources, workers=p.workers or None,
                     val_fraction=p.val_fraction, test_fraction=p.test_fraction, test_persons=p.test_persons,
                     log=print)
    except (DatasetError, FileNotFoundError) as error:
        print(f"prepare@{task}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
