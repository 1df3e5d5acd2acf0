"""Prepare a task's raw inputs: uint8 arrays, a manifest table and a quarantine table per domain.

For each domain (synthetic, real) of a task (gaze, hand), under `out/<task>/<domain>/`:
    images.npy       uint8 (N, H, W), memory-mappable (`np.load(path, mmap_mode="r")`)
    manifest.csv     one row per image, in array order: row, id, source, domain, split, person,
                     the label columns, height, width, pixel_mean, pixel_std, pixel_min, pixel_max,
                     then reader metadata (meta_*)
    quarantine.csv   file, reason: every input that could not be used
Count in = rows kept + rows quarantined, always (checked before anything is written).

Splits:
    synthetic  "train" / "val" by a stable hash of the id (`val_fraction`).
    real       "refiner" / "test". With person ids (MPIIGaze), the persons in `test_persons` are
               "test" and never reach the refiner; otherwise a stable hash of the id picks
               `test_fraction` of the rows. Label values of "refiner" rows are blanked (NaN): the
               refiner never sees real labels, and nothing downstream can leak them.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simgan.data.formats import Quarantined, Sample
from simgan.data.formats import folder, gaze_h5, mpiigaze, nyu, unityeyes
from simgan.io import atomic_write

READERS = {"unityeyes": unityeyes, "mpiigaze": mpiigaze, "gaze_h5": gaze_h5, "nyu": nyu, "folder": folder}
DOMAINS = ("synthetic", "real")


class DatasetError(ValueError):
    """A dataset with nothing usable, or configured wrongly; the message is one sentence."""


@dataclass(frozen=True)
class Source:
    """Where one domain of a task comes from: a reader (key of READERS), a path, the reader's options."""

    format: str
    path: Path
    options: dict = field(default_factory=dict)


def source(fmt: str, path: str | Path, domain: str, size: tuple[int, int]) -> Source:
    """One domain's reader at the prepared (height, width). NYU crops are square (one side) and read the
    synthetic renders' `synthdepth` images, or the real frames' `depth` images."""
    if fmt not in READERS:
        raise DatasetError(f"unknown data format {fmt!r}; expected one of {sorted(READERS)}")
    if fmt != "nyu":
        return Source(fmt, Path(path), {"size": tuple(size)})
    if size[0] != size[1]:
        raise DatasetError(f"NYU crops are square; got image size {size[0]}×{size[1]}")
    return Source(fmt, Path(path), {"size": size[0], "kind": "synthdepth" if domain == "synthetic" else "depth"})


@dataclass
class Prepared:
    """What `prepare_domain` wrote, with its counts."""

    folder: Path
    count_in: int
    kept: int
    quarantined: int
    manifest: pd.DataFrame


def _read_item(job: tuple[str, object]) -> list[Sample | Quarantined]:
    reader_name, item = job
    return READERS[reader_name].read(item)


def read_source(source: Source, *, workers: int | None = None, progress: bool = True,
                description: str = "") -> tuple[list[Sample], list[Quarantined]]:
    """Scan a source and read every item, on all cores (ordered, so the arrays are deterministic)."""
    if source.format not in READERS:
        raise DatasetError(f"unknown data format {source.format!r}; expected one of {sorted(READERS)}")
    items, quarantined = READERS[source.format].scan(Path(source.path), **source.options)
    quarantined = list(quarantined)
    samples: list[Sample] = []
    workers = workers or os.cpu_count() or 1
    jobs = [(source.format, item) for item in items]
    bar = tqdm(total=len(jobs), desc=description or str(source.path), unit="file", disable=not progress,
               dynamic_ncols=True, mininterval=0.1 if sys.stderr.isatty() else 30.0)  # sparse in logs
    with _pool(workers, len(jobs)) as pool:
        mapper = pool.imap if pool is not None else map
        chunk = {"chunksize": max(1, min(64, len(jobs) // (workers * 8) or 1))} if pool is not None else {}
        for results in mapper(_read_item, jobs, **chunk):
            for result in results:
                (samples if isinstance(result, Sample) else quarantined).append(result)
            bar.update(1)
    bar.close()
    return samples, quarantined


class _pool:
    """A process pool when it pays (several workers and items), else None (read in this process)."""

    def __init__(self, workers: int, jobs: int) -> None:
        self.pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 and jobs > 1 else None

    def __enter__(self):
        return self.pool

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate() if exc[0] else self.pool.close()
            self.pool.join()


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by `key` alone: splits that do not move when data are added."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def assign_splits(samples: Sequence[Sample], domain: str, *, val_fraction: float, test_fraction: float,
                  test_persons: Sequence[str], where: str = "") -> list[str]:
    """Synthetic: train/val by id hash. Real: test persons (each must exist) or a hash of the id."""
    if domain == "synthetic":
        return ["val" if stable_fraction(s.id) < val_fraction else "train" for s in samples]
    if test_persons:
        persons = {s.person for s in samples if s.person}
        if not persons:
            raise DatasetError(f"test_persons {list(test_persons)} given, but {where or 'the real data'} has no "
                               "person ids; leave test_persons empty to split by test_fraction")
        missing = sorted(set(test_persons) - persons)
        if missing:
            raise DatasetError(f"test_persons {missing} not among the persons of {where or 'the real data'} "
                               f"(found {len(persons)}: {', '.join(sorted(persons)[:8])}{'…' if len(persons) > 8 else ''})")
        test = set(test_persons)
        return ["test" if s.person in test else "refiner" for s in samples]
    return ["test" if stable_fraction(s.id) < test_fraction else "refiner" for s in samples]


def build_manifest(samples: Sequence[Sample], images: np.ndarray, domain: str, splits: Sequence[str],
                   source_root: Path) -> pd.DataFrame:
    """One row per image in array order; pixel statistics computed on the prepared uint8 pixels."""
    table = pd.DataFrame({
        "row": np.arange(len(samples)),
        "id": [s.id for s in samples],
        "source": [_relative(s.source, source_root) for s in samples],
        "domain": domain,
        "split": list(splits),
        "person": [s.person for s in samples],
    })
    labels = pd.DataFrame([s.labels for s in samples], index=table.index)
    if domain == "real" and len(labels.columns):
        labels.loc[table["split"] != "test"] = np.nan  # the refiner never sees real labels
    metadata = pd.DataFrame([s.metadata for s in samples], index=table.index).add_prefix("meta_")
    return pd.concat([table, labels, pixel_statistics(images, table.index), metadata], axis=1)


def pixel_statistics(images: np.ndarray, index=None) -> pd.DataFrame:
    """height, width, pixel_mean, pixel_std, pixel_min, pixel_max of uint8 (N, H, W) images."""
    flat = np.asarray(images).reshape(len(images), -1).astype(np.float32)
    return pd.DataFrame({
        "height": images.shape[1], "width": images.shape[2],
        "pixel_mean": flat.mean(axis=1), "pixel_std": flat.std(axis=1),
        "pixel_min": flat.min(axis=1).astype(np.int64), "pixel_max": flat.max(axis=1).astype(np.int64),
    }, index=index)


def _relative(source: str, root: Path) -> str:
    try:
        return str(Path(source).relative_to(root))
    except ValueError:
        return source


def prepare_domain(source: Source, out: Path, domain: str, *, workers: int | None = None, progress: bool = True,
                   val_fraction: float = 0.1, test_fraction: float = 0.2, test_persons: Sequence[str] = (),
                   description: str = "") -> Prepared:
    """Read one domain and write images.npy, manifest.csv and quarantine.csv under `out` (atomically)."""
    samples, quarantined = read_source(source, workers=workers, progress=progress, description=description)
    count_in = len(samples) + len(quarantined)
    out = Path(out)
    quarantine = pd.DataFrame({"file": [_relative(q.source, Path(source.path)) for q in quarantined],
                               "reason": [q.reason for q in quarantined]})
    _write_csv(out / "quarantine.csv", quarantine)
    if not samples:
        first = f" (first: {quarantine['file'].iloc[0]}: {quarantine['reason'].iloc[0]})" if len(quarantine) else ""
        raise DatasetError(
            f"{source.path}: no usable {domain} image among {count_in} input(s); "
            f"reasons are in {out / 'quarantine.csv'}{first}"
        )
    shapes = {s.image.shape for s in samples}
    if len(shapes) != 1:
        raise DatasetError(f"{source.path}: the reader returned images of several sizes {sorted(shapes)}")
    images = np.stack([s.image for s in samples]).astype(np.uint8, copy=False)
    splits = assign_splits(samples, domain, val_fraction=val_fraction, test_fraction=test_fraction,
                           test_persons=test_persons, where=str(source.path))
    manifest = build_manifest(samples, images, domain, splits, Path(source.path))
    if manifest["id"].duplicated().any():
        duplicate = manifest.loc[manifest["id"].duplicated(), "id"].iloc[0]
        raise DatasetError(f"{source.path}: sample id {duplicate!r} occurs more than once")
    assert len(manifest) + len(quarantine) == count_in  # nothing dropped silently
    atomic_write(out / "images.npy", lambda handle: np.save(handle, images))
    _write_csv(out / "manifest.csv", manifest)
    return Prepared(out, count_in, len(manifest), len(quarantine), manifest)


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    text = table.to_csv(index=False)
    atomic_write(path, lambda handle: handle.write(text.encode()))


def prepare_task(task: str, out_root: Path, sources: dict[str, Source], *, workers: int | None = None,
                 progress: bool = True, val_fraction: float = 0.1, test_fraction: float = 0.2,
                 test_persons: Sequence[str] = (), log: Callable[[str], None] | None = None) -> dict[str, Prepared]:
    """Prepare both domains of `task`, write a summary and a grid of samples (synthetic row, real row)."""
    out = Path(out_root) / task
    prepared = {}
    for domain in DOMAINS:
        prepared[domain] = prepare_domain(
            sources[domain], out / domain, domain, workers=workers, progress=progress, val_fraction=val_fraction,
            test_fraction=test_fraction, test_persons=test_persons, description=f"{task} {domain}")
        if log:
            p = prepared[domain]
            log(f"{task} {domain}: {p.count_in} in, {p.kept} kept, {p.quarantined} quarantined -> {p.folder}")
    summary = {domain: {"count_in": p.count_in, "kept": p.kept, "quarantined": p.quarantined,
                        "splits": p.manifest["split"].value_counts().sort_index().to_dict()}
               for domain, p in prepared.items()}
    atomic_write(out / "summary.json", lambda handle: handle.write(json.dumps(summary, indent=2).encode()))
    write_sample_grid(out / "samples.png", [np.load(p.folder / "images.npy", mmap_mode="r") for p in prepared.values()])
    return prepared


def write_sample_grid(path: Path, rows: Sequence[np.ndarray], columns: int = 12, scale: int = 0) -> None:
    """A PNG people can look at: one row of evenly spaced samples per array (synthetic, then real)."""
    from PIL import Image

    tiles = []
    for images in rows:
        picks = np.linspace(0, len(images) - 1, num=min(columns, len(images))).round().astype(int)
        strip = np.concatenate([np.asarray(images[i]) for i in picks], axis=1)
        tiles.append(np.pad(strip, ((2, 2), (0, columns * images.shape[2] - strip.shape[1]))))
    grid = np.concatenate(tiles, axis=0)
    scale = scale or max(1, math.ceil(160 / grid.shape[0]))
    picture = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
