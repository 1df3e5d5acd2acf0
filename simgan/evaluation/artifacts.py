"""Refinement artifacts a person sees at once and a realism score may not: a frame of lines along the border.

A refiner with zero-padded convolutions sees the image border as a dark frame and can learn to draw
bright or dark lines along it (the "frame" seen when a refiner is trained against real eyes). Comparing
the mean of a border ring with the interior does not catch it: real skin texture and shading vary as
much. A line is a *straight* structure: the step from a border row to its inner neighbour has the same
sign and size all along the row, and in every image. So `border_lines` measures, for each of the four
border lines (first and last row, first and last column), the step to the adjacent inner line averaged
along the line and over the images — signed, so texture and noise cancel and only a line that is there
in every image along its whole length remains — and divides it by the median of the same step between
interior neighbours across the same axis (the set's ordinary shading gradient in that direction).
A clean set scores about 1; a frame scores
several times more: real MPIIGaze eyes score about 4 (their first column steps consistently), the
simulator's clean eyes 2.0, a faint ±25-grey-level frame on them 45, and the demo refiner's eyes 27 (a
line along the bottom; docs/results.md, "Border lines").
`has_frame` calls it a frame when, along some edge, refined images score more than twice both their
synthetic inputs and the real images there (and more than 2): the real set's own border structure is
not held against a refiner. The refiner trained against real eyes (README, recipe (a)) scores 6.5 at the
top and 5.2 at the bottom where the real eyes score 1.7 and 0.9, the synthetic 2.0 and 0.7: a frame.
"""

from __future__ import annotations

import numpy as np


def _steps(images: np.ndarray, axis: int) -> np.ndarray:
    """|mean over images and along the line of (line i − line i+1)| for every pair of neighbouring lines
    across `axis` (1: rows, 2: columns)."""
    x = np.asarray(images, dtype=np.float64)
    difference = np.diff(x, axis=axis)  # line i+1 − line i
    along = 2 if axis == 1 else 1
    return np.abs(difference.mean(axis=(0, along)))


def border_lines(images: np.ndarray, *, depth: int = 2) -> dict:
    """How much stronger the steps at the border lines are than the interior's: {"score", "lines"}.

    images: uint8 or float (N, H, W). depth: how many lines from each edge count as border (a frame
    can sit one pixel in). score: the largest ratio over the border steps; lines: each edge's ratio.
    """
    images = np.asarray(images)
    if images.ndim != 3 or min(images.shape[1:]) < 2 * depth + 3:
        raise ValueError(f"expected (N, H, W) images at least {2 * depth + 3} px on a side; got {images.shape}")
    ratios, baselines = {}, {}
    for axis, (first, last) in ((1, ("top", "bottom")), (2, ("left", "right"))):
        s = _steps(images, axis)
        # against the interior steps across the same axis: a set shaded from top to bottom steps alike
        # at every row, and its border rows are no line
        baseline = float(np.median(s[depth:-depth])) + 1e-6
        baselines[first] = baselines[last] = baseline
        ratios[first], ratios[last] = float(s[:depth].max() / baseline), float(s[-depth:].max() / baseline)
    return {"score": max(ratios.values()), "lines": ratios, "baseline_steps": baselines}


def has_frame(refined: dict, synthetic: dict, real: dict) -> bool:
    """True when some border line of the refined set stands out against the same line of both inputs of the
    comparison (`border_lines` results: more than twice the larger of theirs, and more than 2): the
    refiner drew it. Line by line, so a real set's own structure along one edge (MPIIGaze eyes: the left
    column) does not hide a line the refiner drew along another."""
    return any(
        value > 2.0 * max(synthetic["lines"][name], real["lines"][name], 1.0)
        for name, value in refined["lines"].items()
    )
