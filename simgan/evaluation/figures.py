"""PNG figures drawn with Pillow (no plotting library in the core): cumulative curves and image grids.

Charts are drawn at twice their size and reduced with a Lanczos filter, which anti-aliases the lines
and text that Pillow's ImageDraw draws hard-edged.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from simgan.io import atomic_write

# Tableau 10: distinct for most colour-blind readers too
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
_SUPERSAMPLE = 2


def _font(size_px: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size_px)  # Pillow ≥ 10.1 with FreeType: a scalable font
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def nice_ticks(low: float, high: float, target: int = 6) -> np.ndarray:
    """Round tick values (1, 2, 2.5, 5 × 10^k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"axis range must be finite; got {low}, {high}")
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, target)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))  # 0.6 / 3 > 0.2 in floats
    start = math.floor(low / step + 1e-9) * step
    stop = math.ceil(high / step - 1e-9) * step
    return np.round(np.arange(start, stop + step / 2, step), 10)


def _xy(curve) -> tuple[np.ndarray, np.ndarray]:
    """A DataFrame (x = first column, y = `percent_within` if present, else the second) or an (x, y) pair."""
    if isinstance(curve, pd.DataFrame):
        y_column = "percent_within" if "percent_within" in curve.columns else curve.columns[1]
        x_column = next(c for c in curve.columns if c != y_column)
        x, y = curve[x_column].to_numpy(), curve[y_column].to_numpy()
    else:
        x, y = curve
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"a curve needs as many x as y values; got {x.size} and {y.size}")
    return x, y


def _base_name(name: str) -> str:
    return name.lower().replace("(paper)", "").replace("paper", "").strip(" :-")


def _colours(series: list) -> list[tuple[int, int, int]]:
    """One palette colour per curve; a reference named like a curve (e.g. "refined (paper)") shares its colour."""
    colours, by_name, next_index = [], {}, 0
    for name, _, _, is_reference in series:
        key = _base_name(name)
        if is_reference and key in by_name:
            colours.append(by_name[key])
            continue
        colour = PALETTE[next_index % len(PALETTE)]
        next_index += 1
        by_name.setdefault(key, colour)
        colours.append(colour)
    return colours


def _dashed(
    draw: ImageDraw.ImageDraw, points: Sequence[tuple[float, float]], colour, width: int, dash: float, gap: float
) -> None:
    """A polyline drawn as dashes of `dash` px separated by `gap` px, the pattern running across vertices."""
    phase = 0.0  # distance into the current dash + gap period
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        position = 0.0
        while position < length:
            in_dash = phase < dash
            run = min((dash - phase) if in_dash else (dash + gap - phase), length - position)
            if in_dash:
                t0, t1 = position / length, (position + run) / length
                draw.line(
                    [(x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0), (x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1)],
                    fill=colour,
                    width=width,
                )
            position += run
            phase = (phase + run) % (dash + gap)


def line_chart_png(
    curves: Mapping[str, pd.DataFrame | tuple],
    path: str | Path,
    *,
    x_label: str,
    y_label: str,
    title: str,
    reference: Mapping[str, tuple] | None = None,
    size_px: tuple[int, int] = (900, 540),
) -> Path:
    """A line chart of `curves` (name -> DataFrame or (x, y)) with solid lines, and of `reference`
    (name -> (x, y), e.g. the paper's values) as dashed lines with diamond markers (markers alone for a
    single point); axes, ticks, grid, legend at the right; written atomically as PNG."""
    reference = dict(reference or {})
    series = [(name, *_xy(curve), False) for name, curve in curves.items()]
    series += [(name, *_xy(curve), True) for name, curve in reference.items()]
    if not series:
        raise ValueError("nothing to draw: no curves and no reference curves")
    k = _SUPERSAMPLE
    width, height = size_px[0] * k, size_px[1] * k
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small, big = _font(15 * k), _font(13 * k), _font(18 * k)

    all_x = np.concatenate([s[1] for s in series])
    all_y = np.concatenate([s[2] for s in series])
    finite = np.isfinite(all_x) & np.isfinite(all_y)
    if not finite.any():
        raise ValueError("nothing to draw: no finite point")
    x_ticks = nice_ticks(float(all_x[finite].min()), float(all_x[finite].max()))
    y_ticks = nice_ticks(min(0.0, float(all_y[finite].min())), float(all_y[finite].max()))
    x_min, x_max, y_min, y_max = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    colours = _colours(series)
    legend_entries = [
        (name + (" (paper)" if is_reference and "paper" not in name.lower() else ""), i, is_reference)
        for i, (name, _, _, is_reference) in enumerate(series)
    ]
    legend_width = max(_text_size(draw, label, small)[0] for label, _, _ in legend_entries) + 50 * k
    left, right = 80 * k, width - legend_width - 30 * k
    top, bottom = 50 * k, height - 65 * k
    if right - left < 150 * k:
        raise ValueError("the legend leaves no room for the plot; shorten the curve names or widen size_px")

    def to_px(x, y):
        return (
            left + (x - x_min) / (x_max - x_min) * (right - left),
            bottom - (y - y_min) / (y_max - y_min) * (bottom - top),
        )

    # grid, ticks and tick labels
    for value in x_ticks:
        px = to_px(value, y_min)[0]
        draw.line([(px, top), (px, bottom)], fill=(225, 225, 225), width=k)
        label = f"{value:g}"
        w, _ = _text_size(draw, label, small)
        draw.line([(px, bottom), (px, bottom + 5 * k)], fill="black", width=k)
        draw.text((px - w / 2, bottom + 9 * k), label, fill="black", font=small)
    for value in y_ticks:
        py = to_px(x_min, value)[1]
        draw.line([(left, py), (right, py)], fill=(225, 225, 225), width=k)
        label = f"{value:g}"
        w, h = _text_size(draw, label, small)
        draw.line([(left - 5 * k, py), (left, py)], fill="black", width=k)
        draw.text((left - 9 * k - w, py - h / 2 - 2 * k), label, fill="black", font=small)
    draw.rectangle([left, top, right, bottom], outline="black", width=k)

    # titles: the y label is drawn on its own image and turned
    w, _ = _text_size(draw, title, big)
    draw.text(((left + right) / 2 - w / 2, 15 * k), title, fill="black", font=big)
    w, _ = _text_size(draw, x_label, font)
    draw.text(((left + right) / 2 - w / 2, bottom + 32 * k), x_label, fill="black", font=font)
    w, h = _text_size(draw, y_label, font)
    label_image = Image.new("RGB", (w + 4 * k, h + 8 * k), "white")
    ImageDraw.Draw(label_image).text((2 * k, 0), y_label, fill="black", font=font)
    label_image = label_image.rotate(90, expand=True)
    image.paste(label_image, (12 * k, int((top + bottom) / 2 - label_image.height / 2)))

    # the curves (the ticks cover every point, so nothing leaves the box)
    for i, (_name, x, y, is_reference) in enumerate(series):
        colour = colours[i]
        keep = np.isfinite(x) & np.isfinite(y)
        points = [to_px(a, b) for a, b in zip(x[keep], y[keep])]
        if is_reference:
            if len(points) > 1:
                _dashed(draw, points, colour, 2 * k, 9 * k, 6 * k)
            for px, py in points:
                r = 6 * k
                draw.polygon([(px, py - r), (px + r, py), (px, py + r), (px - r, py)], fill=colour)
        elif len(points) > 1:
            draw.line(points, fill=colour, width=3 * k, joint="curve")
        elif points:
            px, py = points[0]
            draw.ellipse([px - 4 * k, py - 4 * k, px + 4 * k, py + 4 * k], fill=colour)

    # legend
    x0, y0 = right + 25 * k, top + 5 * k
    for label, i, is_reference in legend_entries:
        colour = colours[i]
        _, h = _text_size(draw, label, small)
        mid = y0 + 9 * k
        if is_reference:
            _dashed(draw, [(x0, mid), (x0 + 30 * k, mid)], colour, 2 * k, 9 * k, 6 * k)
            r = 5 * k
            draw.polygon(
                [(x0 + 15 * k, mid - r), (x0 + 15 * k + r, mid), (x0 + 15 * k, mid + r), (x0 + 15 * k - r, mid)],
                fill=colour,
            )
        else:
            draw.line([(x0, mid), (x0 + 30 * k, mid)], fill=colour, width=3 * k)
        draw.text((x0 + 38 * k, mid - h / 2 - 3 * k), label, fill="black", font=small)
        y0 += 24 * k

    image = image.resize(size_px, Image.Resampling.LANCZOS)
    return _write_png(image, path)


def image_grid_png(rows: Mapping[str, np.ndarray], path: str | Path, *, n: int = 8, scale: int | None = None) -> Path:
    """One labelled row per entry of `rows` (name -> uint8 (N, H, W)): n evenly spaced images of each, enlarged
    `scale`× with nearest neighbour (default: tiles about 96 px high), written atomically as PNG. Pass
    paired arrays (synthetic, its refined version) to see the same images in a column."""
    if not rows:
        raise ValueError("no rows to draw")
    arrays = {}
    for name, images in rows.items():
        images = np.asarray(images)
        if images.ndim != 3 or len(images) == 0:
            raise ValueError(f"row {name!r}: expected a non-empty uint8 (N, H, W) array; got shape {images.shape}")
        arrays[name] = images
    cell_h = max(a.shape[1] for a in arrays.values())
    cell_w = max(a.shape[2] for a in arrays.values())
    scale = scale or max(1, round(96 / cell_h))
    cell_h, cell_w, gap = cell_h * scale, cell_w * scale, 4
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font(16)
    label_w = max(_text_size(probe, name, font)[0] for name in arrays) + 20
    columns = min(n, max(len(a) for a in arrays.values()))
    width = label_w + columns * (cell_w + gap) + gap
    height = len(arrays) * (cell_h + gap) + gap
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for r, (name, images) in enumerate(arrays.items()):
        y = gap + r * (cell_h + gap)
        _, h = _text_size(draw, name, font)
        draw.text((10, y + cell_h / 2 - h / 2 - 3), name, fill="black", font=font)
        picks = np.linspace(0, len(images) - 1, num=min(columns, len(images))).round().astype(int)
        for c, index in enumerate(picks):
            tile = Image.fromarray(np.asarray(images[index], dtype=np.uint8))
            tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
            image.paste(tile.convert("RGB"), (label_w + gap + c * (cell_w + gap), y))
    return _write_png(image, path)


def _write_png(image: Image.Image, path: str | Path) -> Path:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    path = Path(path)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return path
