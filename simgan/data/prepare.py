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
    real       Two roles (`RealSplit`). The refiner's real images are unlabelled: any reader, labels
               ignored. Labelled real test images are optional, and come
                 - from the same source: the persons in `test_persons` (MPIIGaze), a stable hash of the
                   id (`test_fraction`), or MPIIGaze's Evaluation Subset lists (`evaluation_subset`);
                 - from a separate labelled source (`source`), prepared into the same arrays with ids
                   prefixed "test/";
                 - or nowhere (`none`): then the estimators cannot be compared on real images.
               "test" rows never reach the refiner. Of the other rows a stable hash of the id keeps
               `holdout_fraction` as "holdout", never shown to the refiner: the realism test's real side
               needs no labels. The rest are "refiner". Label values of every row but "test" are
               blanked (NaN): the refiner never sees real labels, and nothing downstream can leak them.
               Every real manifest has the task's label columns (formats.TASK_LABELS), blank when
               the images have none.
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

from simgan.data.formats import TASK_LABELS, Quarantined, Sample, folder, gaze_h5, mpiigaze, nyu, unityeyes
from simgan.io import atomic_write, staging_folder

READERS = {"unityeyes": unityeyes, "mpiigaze": mpiigaze, "gaze_h5": gaze_h5, "nyu": nyu, "folder": folder}
DOMAINS = ("synthetic", "real")
TEST_SPLITS = ("persons", "fraction", "evaluation_subset", "source", "none")
TEST_ID_PREFIX = "test/"  # ids of a separate labelled test source: unique beside the refiner's real ids


class DatasetError(ValueError):
    """A dataset with nothing usable, or configured wrongly; the message is one sentence."""


@dataclass(frozen=True)
class Source:
    """Where one domain of a task comes from: a reader (key of READERS), a path, the reader's options."""

    format: str
    path: Path
    options: dict = field(default_factory=dict)


def source(
    fmt: str,
    path: str | Path,
    domain: str,
    size: tuple[int, int],
    *,
    unlabelled: bool = False,
    resize: str = "none",
    crop: dict | None = None,
) -> Source:
    """One domain's reader at the prepared (height, width). NYU crops are square (one side) and read the
    synthetic renders' `synthdepth` images, or the real frames' `depth` images.

    unlabelled: the labels are not wanted (the refiner's real images): a folder's labels.csv is not read,
    and `resize` (a folder.RESIZE_FILTERS key) brings images of another size to the task size. Only
    the folder format takes images of any size; the other readers bring their own to it.
    crop: the unityeyes reader's crop options (eye_width_factor, equalize; see its docstring).
    """
    if fmt not in READERS:
        raise DatasetError(f"unknown data format {fmt!r}; expected one of {sorted(READERS)}")
    if fmt == "folder":
        if resize != "none" and not unlabelled:
            raise DatasetError("labelled images are never resized (it would move what the labels measure)")
        options = {"size": tuple(size)}
        if unlabelled:
            options.update(labels=None, resize=resize)
        return Source(fmt, Path(path), options)
    if crop and fmt != "unityeyes":
        raise DatasetError(f"crop options {sorted(crop)} apply to the unityeyes format, not {fmt}")
    if fmt != "nyu":
        return Source(fmt, Path(path), {"size": tuple(size), **(crop or {})})
    if size[0] != size[1]:
        raise DatasetError(f"NYU crops are square; got image size {size[0]}×{size[1]}")
    return Source(fmt, Path(path), {"size": size[0], "kind": "synthdepth" if domain == "synthetic" else "depth"})


@dataclass(frozen=True)
class RealSplit:
    """How the real images are divided between the refiner, the realism hold-out and the labelled test.

    test: where labelled test rows come from (TEST_SPLITS; see the module docstring).
    test_persons / test_fraction: for test "persons" / "fraction".
    holdout_fraction: of the rows that are not "test", the share kept as "holdout" for the realism test.
    """

    test: str = "none"
    test_persons: tuple[str, ...] = ()
    test_fraction: float = 0.0
    holdout_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.test not in TEST_SPLITS:
            raise DatasetError(f"test split {self.test!r}; expected one of {list(TEST_SPLITS)}")


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


def _read_items(jobs: list[tuple[str, object]]) -> list[list[Sample | Quarantined]]:
    return [_read_item(job) for job in jobs]


def read_source(
    source: Source, *, workers: int | None = None, progress: bool = True, description: str = "", client=None
) -> tuple[list[Sample], list[Quarantined]]:
    """Scan a source and read every item, on all cores (ordered, so the arrays are deterministic).

    client: a Dask client (simgan.cluster): the items are read in chunks on its workers instead of a local
    process pool, gathered in submission order, so the result is the same.
    """
    if source.format not in READERS:
        raise DatasetError(f"unknown data format {source.format!r}; expected one of {sorted(READERS)}")
    items, quarantined = READERS[source.format].scan(Path(source.path), **source.options)
    quarantined = list(quarantined)
    samples: list[Sample] = []
    workers = workers or os.cpu_count() or 1
    jobs = [(source.format, item) for item in items]
    bar = tqdm(
        total=len(jobs),
        desc=description or str(source.path),
        unit="file",
        disable=not progress,
        dynamic_ncols=True,
        mininterval=0.1 if sys.stderr.isatty() else 30.0,
    )  # sparse in logs
    if client is not None:
        from simgan.cluster import map_ordered

        size = max(1, min(256, -(-len(jobs) // (4 * max(1, sum(client.nthreads().values()))))))
        for chunk in map_ordered(client, _read_items, (jobs[i : i + size] for i in range(0, len(jobs), size))):
            for results in chunk:
                for result in results:
                    (samples if isinstance(result, Sample) else quarantined).append(result)
                bar.update(1)
        bar.close()
        return samples, quarantined
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


def assign_splits(
    samples: Sequence[Sample],
    domain: str,
    *,
    val_fraction: float = 0.1,
    split: RealSplit = RealSplit(),
    test_ids: frozenset[str] = frozenset(),
    where: str = "",
) -> list[str]:
    """Synthetic: train/val by id hash. Real: "test" by `split.test` (each test person must exist; test
    rows must be labelled), then "holdout" by a hash of the id, the rest "refiner"."""
    if domain == "synthetic":
        return ["val" if stable_fraction(s.id) < val_fraction else "train" for s in samples]
    where = where or "the real data"
    if split.test == "persons":
        persons = {s.person for s in samples if s.person}
        if not persons:
            raise DatasetError(
                f"test_persons {list(split.test_persons)} given, but {where} has no person ids; "
                "use test_split: fraction (a hash of the id) or none"
            )
        missing = sorted(set(split.test_persons) - persons)
        if missing:
            raise DatasetError(
                f"test_persons {missing} not among the persons of {where} "
                f"(found {len(persons)}: {', '.join(sorted(persons)[:8])}{'…' if len(persons) > 8 else ''})"
            )
        test = [s.person in set(split.test_persons) for s in samples]
    elif split.test == "fraction":
        test = [stable_fraction(s.id) < split.test_fraction for s in samples]
    else:  # evaluation_subset: the listed ids; source: the rows of the test source; none: nothing
        test = [s.id in test_ids for s in samples]
    unlabelled = sum(1 for s, t in zip(samples, test, strict=True) if t and not s.labels)
    if unlabelled:
        raise DatasetError(
            f"test_split {split.test}: {unlabelled} of the test images of {where} have no labels; "
            "labelled test images must carry labels (use test_split: none for unlabelled real "
            "images, or give a labelled test source)"
        )
    return [
        "test" if t else "holdout" if stable_fraction(f"holdout:{s.id}") < split.holdout_fraction else "refiner"
        for s, t in zip(samples, test, strict=True)
    ]


def build_manifest(
    samples: Sequence[Sample],
    images: np.ndarray,
    domain: str,
    splits: Sequence[str],
    source_root: Path,
    label_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per image in array order; pixel statistics computed on the prepared uint8 pixels.

    label_columns: columns every row gets (blank where a sample has no such label), in this order first.
    """
    table = pd.DataFrame(
        {
            "row": np.arange(len(samples)),
            "id": [s.id for s in samples],
            "source": [_relative(s.source, source_root) for s in samples],
            "domain": domain,
            "split": list(splits),
            "person": [s.person for s in samples],
        }
    )
    labels = pd.DataFrame([s.labels for s in samples], index=table.index)
    if label_columns:
        labels = labels.reindex(columns=[*label_columns, *(c for c in labels.columns if c not in label_columns)])
    if domain == "real" and len(labels.columns):
        labels.loc[table["split"] != "test"] = np.nan  # the refiner never sees real labels
    metadata = pd.DataFrame([s.metadata for s in samples], index=table.index).add_prefix("meta_")
    return pd.concat([table, labels, pixel_statistics(images, table.index), metadata], axis=1)


def pixel_statistics(images: np.ndarray, index=None) -> pd.DataFrame:
    """height, width, pixel_mean, pixel_std, pixel_min, pixel_max of uint8 (N, H, W) images.

    Computed over blocks of rows (each row's figures depend on that row alone, so the values are the same), so a
    large memory-mapped array never becomes one float copy in memory.
    """
    columns: dict[str, list[np.ndarray]] = {"pixel_mean": [], "pixel_std": [], "pixel_min": [], "pixel_max": []}
    for start in range(0, max(len(images), 1), STATISTICS_ROWS):
        flat = np.asarray(images[start : start + STATISTICS_ROWS]).reshape(-1, int(np.prod(images.shape[1:])))
        flat = flat.astype(np.float32)
        columns["pixel_mean"].append(flat.mean(axis=1))
        columns["pixel_std"].append(flat.std(axis=1))
        columns["pixel_min"].append(flat.min(axis=1).astype(np.int64))
        columns["pixel_max"].append(flat.max(axis=1).astype(np.int64))
    return pd.DataFrame(
        {
            "height": images.shape[1],
            "width": images.shape[2],
            **{name: np.concatenate(parts) for name, parts in columns.items()},
        },
        index=index,
    )


STATISTICS_ROWS = 65_536  # rows per block in pixel_statistics: ≈ 500 MB of float32 at 35×55


def _relative(source: str, root: Path) -> str:
    try:
        return str(Path(source).relative_to(root))
    except ValueError:
        return source


def prepare_domain(
    source: Source,
    out: Path,
    domain: str,
    *,
    workers: int | None = None,
    progress: bool = True,
    val_fraction: float = 0.1,
    split: RealSplit = RealSplit(),
    test_source: Source | None = None,
    label_columns: Sequence[str] = (),
    description: str = "",
    rejected: Path | None = None,
    client=None,
) -> Prepared:
    """Read one domain and write images.npy, manifest.csv and quarantine.csv under `out` (each atomically).

    Real: `split` assigns refiner/holdout/test; `test_source` (for split.test "source") is read as well,
    its rows prefixed "test/" and all "test". Nothing is written unless the whole domain is usable; when
    nothing at all could be read, the reasons go to `<rejected>/quarantine.rejected.csv` (default: `out`),
    beside a previous run's tables, and DatasetError is raised. `client`: read on a Dask cluster (`read_source`).
    """
    samples, quarantined = read_source(
        source, workers=workers, progress=progress, description=description, client=client
    )
    test_ids: frozenset[str] = frozenset()
    roots = [Path(source.path)]
    if domain == "real" and split.test == "evaluation_subset":
        listed = mpiigaze.read_evaluation_subset(Path(source.path))
        test_ids = frozenset(f"{person}/{day}/{name}/{side}" for person, day, name, side in listed)
    if domain == "real" and split.test == "source":
        if test_source is None:
            raise DatasetError("test_split source needs a labelled test source (test_format, test_path)")
        more, more_quarantined = read_source(
            test_source, workers=workers, progress=progress, description=f"{description} (labelled test)", client=client
        )
        more = [Sample(f"{TEST_ID_PREFIX}{m.id}", m.source, m.image, m.labels, m.person, m.metadata) for m in more]
        test_ids = frozenset(m.id for m in more)
        samples, quarantined = [*samples, *more], [*quarantined, *more_quarantined]
        roots.append(Path(test_source.path))
    count_in = len(samples) + len(quarantined)
    out = Path(out)
    quarantine = pd.DataFrame(
        {"file": [_relative_any(q.source, roots) for q in quarantined], "reason": [q.reason for q in quarantined]}
    )
    if not samples:
        first = f" (first: {quarantine['file'].iloc[0]}: {quarantine['reason'].iloc[0]})" if len(quarantine) else ""
        rejected = Path(rejected or out) / "quarantine.rejected.csv"  # beside, not over, a previous run's set
        _write_csv(rejected, quarantine)
        raise DatasetError(
            f"{source.path}: no usable {domain} image among {count_in} input(s); reasons are in {rejected}{first}"
        )
    shapes = {s.image.shape for s in samples}
    if len(shapes) != 1:
        raise DatasetError(f"{source.path}: the reader returned images of several sizes {sorted(shapes)}")
    splits = assign_splits(
        samples, domain, val_fraction=val_fraction, split=split, test_ids=test_ids, where=str(source.path)
    )
    if split.test == "evaluation_subset" and domain == "real":
        found = sum(1 for s in splits if s == "test")
        if not found:
            raise DatasetError(
                f"{source.path}: none of the {len(test_ids)} eyes of MPIIGaze's Evaluation Subset "
                "is among the images read"
            )
    images = np.stack([s.image for s in samples]).astype(np.uint8, copy=False)
    manifest = build_manifest(samples, images, domain, splits, Path(source.path), label_columns)
    if manifest["id"].duplicated().any():
        duplicate = manifest.loc[manifest["id"].duplicated(), "id"].iloc[0]
        raise DatasetError(f"{source.path}: sample id {duplicate!r} occurs more than once")
    assert len(manifest) + len(quarantine) == count_in  # nothing dropped silently
    atomic_write(out / "images.npy", lambda handle: np.save(handle, images))
    _write_csv(out / "manifest.csv", manifest)
    _write_csv(out / "quarantine.csv", quarantine)
    return Prepared(out, count_in, len(manifest), len(quarantine), manifest)


def _relative_any(source: str, roots: Sequence[Path]) -> str:
    for root in roots:
        relative = _relative(source, root)
        if relative != source:
            return relative
    return source


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    text = table.to_csv(index=False)
    atomic_write(path, lambda handle: handle.write(text.encode()))


def prepare_task(
    task: str,
    out_root: Path,
    sources: dict[str, Source],
    *,
    workers: int | None = None,
    progress: bool = True,
    val_fraction: float = 0.1,
    split: RealSplit = RealSplit(),
    log: Callable[[str], None] | None = None,
    client=None,
) -> dict[str, Prepared]:
    """Prepare both domains of `task` (`sources`: synthetic, real, and "test" for split.test "source"),
    write a summary and a grid of samples (synthetic row, real row).

    The whole `<out_root>/<task>` folder is built in a hidden sibling and swapped in at the end
    (simgan.io.staging_folder): a run that fails or is killed leaves the previous folder whole, or none,
    never a mix. `client`: read on a Dask cluster (see `read_source`). Only the reasons of a domain with nothing
    usable are written beside the previous set
    (`<task>/<domain>/quarantine.rejected.csv`, see prepare_domain).
    """
    out = Path(out_root) / task
    prepared = {}
    with staging_folder(out) as staging:
        for domain in DOMAINS:
            p = prepare_domain(
                sources[domain],
                staging / domain,
                domain,
                workers=workers,
                progress=progress,
                val_fraction=val_fraction,
                split=split,
                test_source=sources.get("test"),
                label_columns=TASK_LABELS.get(task, ()) if domain == "real" else (),
                description=f"{task} {domain}",
                rejected=out / domain,
                client=client,
            )
            p.folder = out / domain  # where it will be once published
            prepared[domain] = p
            if log:
                counts = ", ".join(f"{n} {k}" for k, n in p.manifest["split"].value_counts().sort_index().items())
                log(
                    f"{task} {domain}: {p.count_in} in, {p.kept} kept ({counts}), {p.quarantined} quarantined "
                    f"-> {p.folder}"
                )
        summary = {
            domain: {
                "count_in": p.count_in,
                "kept": p.kept,
                "quarantined": p.quarantined,
                "splits": p.manifest["split"].value_counts().sort_index().to_dict(),
            }
            for domain, p in prepared.items()
        }
        atomic_write(staging / "summary.json", lambda handle: handle.write(json.dumps(summary, indent=2).encode()))
        write_sample_grid(
            staging / "samples.png", [np.load(staging / domain / "images.npy", mmap_mode="r") for domain in DOMAINS]
        )
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
