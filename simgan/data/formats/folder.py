"""Plain image folder ("bring your own simulator"): PNG/JPEG/BMP files plus an optional labels.csv.

    root/
      0001.png  0002.png  ...  10.png       any names; id = file stem; sorted numeric-aware (2 before 10)
      labels.csv                            optional: an `id` column (= file stem) and numeric label columns

Images must already have the task's prepared size: a wrong size is quarantined, never resized,
because resizing would silently move whatever the labels measure in pixels. Colour images are
converted to 8-bit grayscale ('L', ITU-R 601 luma) as the networks take one channel.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from simgan.data.formats import Quarantined, Sample

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_LABELS = "labels.csv"
# 8-bit modes that convert to 'L' without losing range; 16-bit / 32-bit / float would be clipped.
EIGHT_BIT_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


@dataclass(frozen=True)
class FolderImage:
    """One image file to read; labels are (name, value) pairs from its labels.csv row (empty without labels.csv)."""

    path: str
    id: str
    size: tuple[int, int]  # (H, W)
    labels: tuple[tuple[str, float], ...] = ()


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: "img2" < "img10", then case-insensitively by text."""
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), name


def _read_labels(path: Path) -> pd.DataFrame:
    """labels.csv -> DataFrame indexed by id (str) with float columns; ValueError naming the file otherwise."""
    try:
        # Everything as text first: an id such as "NA" or "0001" must stay a string, not NaN or 1.
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # -sig: Excel's BOM
    except Exception as error:  # pandas raises ParserError, EmptyDataError, UnicodeDecodeError, ...
        raise ValueError(f"{path}: cannot read it as CSV ({type(error).__name__}: {error})") from error
    table.columns = [str(c).strip() for c in table.columns]
    if "id" not in table.columns:
        raise ValueError(f"{path}: no 'id' column; found columns {list(table.columns)}; expected 'id' (the image "
                         f"file stem) and numeric label columns")
    table["id"] = table["id"].str.strip()
    duplicated = sorted(set(table["id"][table["id"].duplicated()]), key=natural_key)
    if duplicated:
        raise ValueError(f"{path}: duplicate ids {duplicated}; each image must have at most one row")
    table = table.set_index("id")
    for column in table.columns:
        text = table[column].str.strip()
        numeric = pd.to_numeric(text, errors="coerce")  # "", "nan", "abc" -> NaN
        if numeric.notna().sum() == 0 and (text != "").any():
            raise ValueError(f"{path}: column {column!r} holds no numbers (e.g. {text[text != ''].iloc[0]!r}); "
                             f"label columns must be numeric")
        table[column] = numeric.astype(np.float64)  # non-numeric cells -> NaN -> that row is quarantined
    return table


def scan(root: str | Path, *, size: tuple[int, int], labels: str | Path | None = DEFAULT_LABELS
         ) -> tuple[list[FolderImage], list[Quarantined]]:
    """Every PNG/JPEG/BMP directly in `root`, numeric-aware name order, matched to labels.csv by id.

    size: (H, W) every image must have. labels: the label file, relative to `root` or absolute;
    None for unlabelled images. The default labels.csv is optional; another name must exist.
    Quarantined while listing: two files with the same stem, an image without a labels row, a row
    with a missing or non-numeric label, a row without an image. Duplicate ids raise ValueError.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; expected a folder of PNG/JPEG/BMP images")
    try:
        height, width = (int(x) for x in size)
        valid = height >= 1 and width >= 1 and (height, width) == tuple(size)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"image size must be two positive integers (H, W); got {size!r}")

    table = None
    labels_path = None
    if labels is not None:
        labels_path = root / labels
        if labels_path.is_file():
            table = _read_labels(labels_path)
        elif str(labels) != DEFAULT_LABELS:
            raise FileNotFoundError(f"{labels_path}: label file not found")

    paths = sorted((p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        by_stem[path.stem].append(path)

    items: list[FolderImage] = []
    quarantined: list[Quarantined] = []
    for path in paths:
        stem = path.stem
        if len(by_stem[stem]) > 1:
            quarantined.append(Quarantined(str(path), (
                f"id {stem!r} is shared by {[p.name for p in by_stem[stem]]}; ids (file stems) must be unique")))
            continue
        if table is None:
            items.append(FolderImage(str(path), stem, (height, width)))
            continue
        if stem not in table.index:
            quarantined.append(Quarantined(str(path), f"no row in {labels_path.name} for id {stem!r}"))
            continue
        row = table.loc[stem]
        missing = [name for name, value in row.items() if not math.isfinite(value)]
        if missing:
            quarantined.append(Quarantined(str(path), (
                f"label(s) {missing} missing, NaN, infinite or not a number in {labels_path.name} row {stem!r}")))
            continue
        items.append(FolderImage(str(path), stem, (height, width), tuple((str(k), float(v)) for k, v in row.items())))

    if table is not None:
        for stem in sorted(set(table.index) - set(by_stem), key=natural_key):
            quarantined.append(Quarantined(f"{labels_path}#{stem}", (
                f"{labels_path.name} has a row for id {stem!r} but {root} has no image with that stem")))
    return items, quarantined


def read(item: FolderImage) -> list[Sample | Quarantined]:
    """Decode one image to uint8 (H, W) grayscale -> [Sample], or [Quarantined] naming what is wrong."""
    height, width = item.size
    try:
        with Image.open(item.path) as image:
            image.load()  # force the decode: Image.open only reads the header, a truncated file fails here
            mode, (got_w, got_h) = image.mode, image.size
            if mode in EIGHT_BIT_MODES and (got_h, got_w) == (height, width):
                pixels = np.asarray(image if mode == "L" else image.convert("L"))  # (H, W) uint8
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, zlib/struct errors
        return [Quarantined(item.path, f"cannot decode the image ({type(error).__name__}: {error})")]
    if mode not in EIGHT_BIT_MODES:
        return [Quarantined(item.path, f"mode {mode!r}, expected an 8-bit image (grayscale or colour); "
                                       f"16-bit and float images would be clipped")]
    if (got_h, got_w) != (height, width):
        return [Quarantined(item.path, f"size {got_h}x{got_w}, expected {height}x{width} (height x width); "
                                       f"images are not resized")]
    return [Sample(id=item.id, source=item.path, image=np.ascontiguousarray(pixels, dtype=np.uint8),
                   labels=dict(item.labels))]
