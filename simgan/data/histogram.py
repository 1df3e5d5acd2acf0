"""Histogram equalisation of uint8 eye images, exactly as OpenCV's `equalizeHist` computes it.

MPIIGaze's normalised eye images are histogram-equalised (Zhang et al., "Appearance-based gaze estimation in
the wild", CVPR 2015, §4.2), and GazeML's UnityEyes preprocessing equalises its synthetic crops the same way;
the simulators use it for their "real" eyes and the UnityEyes reader offers it for synthetic crops.
"""

from __future__ import annotations

import numpy as np


def equalize_histogram(image: np.ndarray) -> np.ndarray:
    """OpenCV equalizeHist on one uint8 image: the lookup table of the scaled cumulative histogram."""
    histogram = np.bincount(image.ravel(), minlength=256)
    cdf = histogram.cumsum()
    cdf_min = cdf[np.nonzero(histogram)[0][0]]
    total = image.size
    if total == cdf_min:
        return image.copy()
    lut = np.clip(np.round((cdf - cdf_min) * 255.0 / (total - cdf_min)), 0, 255).astype(np.uint8)
    return lut[image]
