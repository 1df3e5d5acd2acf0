"""Plain image folder ("bring your own simulator"): PNG/JPEG/BMP files plus an optional labels.csv.

    root/
      0001.png  0002.png  ...  10.png       any names; id = file stem; sorted numeric-aware (2 before 10)
      labels.csv                            optional: an `id` column (= file stem) and numeric label columns

Labelled images must already have the task's prepared size: a wrong size is quarantined, never
resized, because resizing would silently move whatever the labels measure in pixels. Unlabelled images
(read with `labels=None`) have nothing to move, so `resize` may bring them to the size: a centre crop to
the task's aspect ratio (the largest centred window of height:width = H:W, so nothing is stretched),
then Pillow's resize with that filter (antialiased when shrinking). Colour images are converted to
8-bit grayscale ('L', ITU-R 601 luma) as the networks take one channel.
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
# Image files this reader does not take: quarantined with the reason rather than passed over in silence (their
# labels row would otherwise read as "no image with that stem"). Other files (notes, .csv, ...) are ignored.
UNSUPPORTED_IMAGE_SUFFIXES = (
    ".tif",
    ".tiff",
    ".gif",
    ".webp",
    ".jp2",
    ".j2k",
    ".jpf",
    ".jpx",
    ".jxl",
    ".heic",
    ".heif",
    ".avif",
    ".ppm",
    ".pgm",
    ".pbm",
    ".pnm",
    ".pfm",
    ".tga",
    ".ico",
    ".psd",
    ".exr",
    ".hdr",
    ".dng",
    ".raw",
    ".cr2",
    ".nef",
    ".arw",
    ".dds",
    ".svg",
    ".pcx",
    ".sgi",
    ".xbm",
    ".xpm",
    ".fits",
    ".dcm",
)
RESIZE_FILTERS = {
    "none": None,
    "nearest": Image.Resampling.NEAREST,  # depth crops: no invented depths between hand and background
    "bilinear": Image.Resampling.BILINEAR,  # as the MPIIGaze and UnityEyes readers resize eyes
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,  # area average
    "lanczos": Image.Resampling.LANCZOS,
}
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
    resize: str = "none"  # a key of RESIZE_FILTERS; "none": a wrong size is quarantined


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
        raise ValueError(
            f"{path}: no 'id' column; found columns {list(table.columns)}; expected 'id' (the image "
            f"file stem) and numeric label columns"
        )
    table["id"] = table["id"].str.strip()
    duplicated = sorted(set(table["id"][table["id"].duplicated()]), key=natural_key)
    if duplicated:
        raise ValueError(f"{path}: duplicate ids {duplicated}; each image must have at most one row")
    table = table.set_index("id")
    for column in table.columns:
        text = table[column].str.strip()
        numeric = pd.to_numeric(text, errors="coerce")  # "", "nan", "abc" -> NaN
        if numeric.notna().sum() == 0 and (text != "").any():
            raise ValueError(
                f"{path}: column {column!r} holds no numbers (e.g. {text[text != ''].iloc[0]!r}); "
                f"label columns must be numeric"
            )
        table[column] = numeric.astype(np.float64)  # non-numeric cells -> NaN -> that row is quarantined
    return table


def scan(
    root: str | Path, *, size: tuple[int, int], labels: str | Path | None = DEFAULT_LABELS, resize: str = "none"
) -> tuple[list[FolderImage], list[Quarantined]]:
    """Every PNG/JPEG/BMP directly in `root`, numeric-aware name order, matched to labels.csv by id.

    size: (H, W) every image must have. labels: the label file, relative to `root` or absolute;
    None for unlabelled images (a labels.csv there is then not read). The default labels.csv is
    optional; another name must exist. resize: a RESIZE_FILTERS key bringing images of another size to
    `size` (centre crop to the aspect, then resize); only with `labels=None`.
    Quarantined while listing: an image file of an unsupported format (.tif, .gif, .webp, ...), two files with
    the same stem, an image without a labels row, a row with a missing or non-numeric label, a row without an
    image. Duplicate ids raise ValueError.
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
    if resize not in RESIZE_FILTERS:
        raise ValueError(f"resize must be one of {sorted(RESIZE_FILTERS)}; got {resize!r}")
    if resize != "none" and labels is not None:
        raise ValueError(
            "labelled images are never resized (it would move what the labels measure in pixels); "
            "read them with labels=None to resize, or bring them to the size yourself"
        )

    table = None
    labels_path = None
    if labels is not None:
        labels_path = root / labels
        if labels_path.is_file():
            table = _read_labels(labels_path)
        elif str(labels) != DEFAULT_LABELS:
            raise FileNotFoundError(f"{labels_path}: label file not found")

    files = sorted((p for p in root.iterdir() if p.is_file()), key=lambda p: natural_key(p.name))
    paths = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    unsupported = [p for p in files if p.suffix.lower() in UNSUPPORTED_IMAGE_SUFFIXES]
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        by_stem[path.stem].append(path)

    items: list[FolderImage] = []
    quarantined: list[Quarantined] = [
        Quarantined(
            str(path),
            f"unsupported image format {path.suffix.lower()}; expected PNG/JPEG/BMP "
            f"({', '.join(IMAGE_SUFFIXES)}): convert it, e.g. to PNG",
        )
        for path in unsupported
    ]
    for path in paths:
        stem = path.stem
        if len(by_stem[stem]) > 1:
            quarantined.append(
                Quarantined(
                    str(path),
                    (f"id {stem!r} is shared by {[p.name for p in by_stem[stem]]}; ids (file stems) must be unique"),
                )
            )
            continue
        if table is None:
            items.append(FolderImage(str(path), stem, (height, width), resize=resize))
            continue
        if stem not in table.index:
            quarantined.append(Quarantined(str(path), f"no row in {labels_path.name} for id {stem!r}"))
            continue
        row = table.loc[stem]
        missing = [name for name, value in row.items() if not math.isfinite(value)]
        if missing:
            quarantined.append(
                Quarantined(
                    str(path),
                    (f"label(s) {missing} missing, NaN, infinite or not a number in {labels_path.name} row {stem!r}"),
                )
            )
            continue
        items.append(FolderImage(str(path), stem, (height, width), tuple((str(k), float(v)) for k, v in row.items())))

    if table is not None:
        quarantined_stems = {path.stem for path in unsupported}  # their row is not orphaned: the file is named above
        for stem in sorted(set(table.index) - set(by_stem) - quarantined_stems, key=natural_key):
            quarantined.append(
                Quarantined(
                    f"{labels_path}#{stem}",
                    (f"{labels_path.name} has a row for id {stem!r} but {root} has no image with that stem"),
                )
            )
    return items, quarantined


def read(item: FolderImage) -> list[Sample | Quarantined]:
    """Decode one image to uint8 (H, W) grayscale -> [Sample], or [Quarantined] naming what is wrong."""
    height, width = item.size
    try:
        with Image.open(item.path) as image:
            image.load()  # force the decode: Image.open only reads the header, a truncated file fails here
            mode, (got_w, got_h) = image.mode, image.size
            resized = mode in EIGHT_BIT_MODES and (got_h, got_w) != (height, width) and item.resize != "none"
            if mode in EIGHT_BIT_MODES and ((got_h, got_w) == (height, width) or resized):
                grey = image if mode == "L" else image.convert("L")
                pixels = np.asarray(centre_crop_resize(grey, (height, width), item.resize) if resized else grey)
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, zlib/struct errors
        return [Quarantined(item.path, f"cannot decode the image ({type(error).__name__}: {error})")]
    if mode not in EIGHT_BIT_MODES:
        return [
            Quarantined(
                item.path,
                f"mode {mode!r}, expected an 8-bit image (grayscale or colour); "
                f"16-bit and float images would be clipped",
            )
        ]
    if (got_h, got_w) != (height, width) and not resized:
        why = (
            "labelled images are never resized"
            if item.labels
            else "unlabelled images are resized only when asked (prepare.<task>.real_resize)"
        )
        return [Quarantined(item.path, f"size {got_h}x{got_w}, expected {height}x{width} (height x width); {why}")]
    metadata = {"original_height": got_h, "original_width": got_w} if resized else {}
    return [
        Sample(
            id=item.id,
            source=item.path,
            image=np.ascontiguousarray(pixels, dtype=np.uint8),
            labels=dict(item.labels),
            metadata=metadata,
        )
    ]


def centre_crop_resize(image: Image.Image, size: tuple[int, int], method: str) -> Image.Image:
    """The largest centred window with the aspect of `size` (H, W), resized to it with RESIZE_FILTERS[method].

    A 60×36 (W×H) MPIIGaze eye to 55×35: aspect 55/35 = 1.571 < 60/36 = 1.667, so the full height (36) and
    the middle round(36 · 55/35) = 57 columns are kept (1 left, 2 right dropped), then resized to 55×35.
    """
    height, width = size
    got_w, got_h = image.size
    if got_w * height > got_h * width:  # too wide: keep the full height
        crop_w, crop_h = max(1, round(got_h * width / height)), got_h
    else:  # too tall (or the same aspect): keep the full width
        crop_w, crop_h = got_w, max(1, round(got_w * height / width))
    left, top = (got_w - crop_w) // 2, (got_h - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), RESIZE_FILTERS[method])
