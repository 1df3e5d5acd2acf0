"""Speed of preparing UnityEyes renders: 800×600 jpg + json -> 35×55 grayscale crops.

Measured in one run on the same files:
    reader, one core     `simgan.data.formats.unityeyes` scan + read in this process (JPEG draft-mode
                         decode at reduced size, one resampling step)
    reader, all cores    `simgan.data.prepare.read_source` with a process per core
    baseline, one core   what a straightforward reader does: decode the full 800×600 JPEG, convert to
                         grayscale, crop the same box and resize with the same filter
The ratio is reader / baseline on one core. Target: >= 400 images/s per core.
The fixtures are 800×600 RGB JPEGs (quality 90, ±6 grey levels of noise) with the real UnityEyes label file beside each,
its eye drawn where its landmarks say. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np
from PIL import Image, ImageDraw

from simgan.data.formats import unityeyes
from simgan.data.prepare import Source, read_source

SAMPLE_JSON = Path(__file__).resolve().parents[1] / "tests/fixtures/unityeyes_1.json"  # the real UnityEyes label file
TARGET_PER_CORE = 400.0


def _points(values: list[str], height: int) -> list[tuple[float, float]]:
    """UnityEyes "(x, y, z)" strings in y-up pixels -> image (x, y) with y down."""
    points = []
    for text in values:
        x, y, _ = (float(v) for v in text.strip("()").split(","))
        points.append((x, height - y))
    return points


def write_fixtures(folder: Path, count: int, label_json: dict) -> None:
    """`count` 800×600 RGB JPEG + JSON pairs named 1..count, each with its own noise."""
    width, height = 800, 600
    rng = np.random.default_rng(0)
    margin = _points(label_json["interior_margin_2d"], height)
    iris = _points(label_json["iris_2d"], height)
    base = Image.new("RGB", (width, height), (150, 120, 110))
    draw = ImageDraw.Draw(base)
    draw.polygon(margin, fill=(235, 235, 230))
    draw.polygon(iris, fill=(70, 50, 40))
    centre = np.mean(iris, axis=0)
    draw.ellipse([centre[0] - 12, centre[1] - 12, centre[0] + 12, centre[1] + 12], fill=(10, 10, 10))
    pixels = np.asarray(base, dtype=np.int16)
    text = json.dumps(label_json)
    for index in range(1, count + 1):
        noisy = np.clip(pixels + rng.integers(-6, 7, size=pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{index}.jpg", quality=90)
        (folder / f"{index}.json").write_text(text)


def baseline_read(jpg: Path, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """Full-size decode, grayscale, crop, resize: the straightforward way."""
    with Image.open(jpg) as picture:
        grey = picture.convert("L")
    json.loads(jpg.with_suffix(".json").read_text())
    return np.asarray(grey.crop(box).resize((size[1], size[0]), Image.BILINEAR))


def crop_box(label_json: dict, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A 35:55 box around the eye's interior margin, 1.5 eye widths wide (same region as the reader)."""
    margin = np.array(_points(label_json["interior_margin_2d"], 600))
    centre = (margin.min(axis=0) + margin.max(axis=0)) / 2
    width = 1.5 * (margin[:, 0].max() - margin[:, 0].min())
    height = width * size[0] / size[1]
    return (centre[0] - width / 2, centre[1] - height / 2, centre[0] + width / 2, centre[1] + height / 2)


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400, help="number of 800×600 jpg+json pairs to prepare")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the median is shown")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for the all-cores figure")
    parser.add_argument("--keep", default=None, help="write the fixtures here and keep them (default: a temp dir)")
    args = parser.parse_args(argv)

    label_json = json.loads(SAMPLE_JSON.read_text())
    size = (35, 55)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="simgan-prepare-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        write_fixtures(folder, args.images, label_json)
        jpgs = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))
        box = crop_box(label_json, size)

        def reader_one_core():
            items, quarantined = unityeyes.scan(folder, size=size)
            results = [unityeyes.read(item) for item in items]
            assert not quarantined and len(results) == args.images

        def reader_all_cores():
            samples, quarantined = read_source(
                Source("unityeyes", folder, {"size": size}), workers=args.workers, progress=False
            )
            assert not quarantined and len(samples) == args.images

        def baseline_one_core():
            for jpg in jpgs:
                baseline_read(jpg, box, size)

        for function in (reader_one_core, baseline_one_core):  # warm the page cache and the imports
            function()
        one, base, many = [], [], []
        for _ in range(args.repeats):  # adjacent, so a burst of load hits every side alike
            one.append(timed(reader_one_core))
            base.append(timed(baseline_one_core))
            many.append(timed(reader_all_cores))
        rate_one = args.images / statistics.median(one)
        rate_base = args.images / statistics.median(base)
        rate_many = args.images / statistics.median(many)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    figures = {
        "images": args.images,
        "source_size": "800x600",
        "prepared_size": "35x55",
        "workers": args.workers,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "reader_images_per_s_one_core": round(rate_one, 1),
        "reader_images_per_s_all_cores": round(rate_many, 1),
        "baseline_images_per_s_one_core": round(rate_base, 1),
        "ratio_reader_vs_baseline": round(rate_one / rate_base, 3),
        "target_images_per_s_per_core": TARGET_PER_CORE,
        "target_met": rate_one >= TARGET_PER_CORE,
    }
    print(f"UnityEyes 800×600 jpg+json -> 35×55, {args.images} images, median of {args.repeats}")
    print(f"  reader, one core:        {rate_one:8.1f} images/s   ({1000 / rate_one:.2f} ms/image)")
    print(f"  reader, {args.workers} workers:       {rate_many:8.1f} images/s")
    print(f"  baseline, one core:      {rate_base:8.1f} images/s   (full-size decode, crop, resize)")
    print(
        f"  ratio reader / baseline: {rate_one / rate_base:.2f}   target >= {TARGET_PER_CORE:.0f} images/s per core: "
        f"{'met' if figures['target_met'] else 'NOT met'}"
    )
    print(json.dumps({"benchmark": "prepare", "figures": figures}))
    return figures


if __name__ == "__main__":
    main()
