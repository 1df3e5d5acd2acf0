"""Calibrate the realism measures (simgan/evaluation/realism.py) on a folder of real eye images.

    python benchmarks/realism_calibration.py REAL_EYES_FOLDER [WORKSPACE]

REAL_EYES_FOLDER: real eyes of any size (e.g. 2,467 MPIIGaze eyes, 60×36), split in halves by a stable
hash of the file name. WORKSPACE: a repository after `make demo` (default: .), whose prepared synthetic
and "real" eyes and refined eyes are measured against half A. Prints the standardised and raw-pixel
classifier AUC at several budgets (3 seeds) and KID per set; docs/results.md, "Realism measure".
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from simgan.data.formats import folder, read_all
from simgan.data.prepare import stable_fraction
from simgan.evaluation.realism import classifier_auc, kernel_inception_distance

if len(sys.argv) < 2 or not Path(sys.argv[1]).is_dir():
    raise SystemExit(__doc__)
dev = Path(sys.argv[1])
fresh = Path(sys.argv[2] if len(sys.argv) > 2 else ".")
samples, _ = read_all(folder, dev, size=(35, 55), labels=None, resize="bilinear")
ids = [s.id for s in samples]
images = np.stack([s.image for s in samples])
half = np.array([stable_fraction("calib:" + i) < 0.5 for i in ids])
real_a, real_b = images[half], images[~half]
synthetic = np.load(fresh / "artifacts/prepared/gaze/synthetic/images.npy")
default_real = np.load(fresh / "artifacts/prepared/gaze/real/images.npy")
refined = np.load(fresh / "artifacts/refined/gaze/images.npy")
rng = np.random.default_rng(0)


def pick(x):
    return x[np.sort(rng.choice(len(x), min(len(x), 1200), replace=False))]


sets = {
    "real (other half)": real_b,
    "synthetic (default)": pick(synthetic),
    "default 'real' eyes": pick(default_real),
    "refined (demo refiner)": pick(refined),
}
out = {}
for name, other in sets.items():
    t = time.perf_counter()
    for std in (True, False):
        auc = classifier_auc(real_a, other, budgets=(30, 100, 300, 1000), standardised=std)
        out[f"{name} std={std}"] = {k: f"{v['mean']:.3f}±{v['std']:.3f}" for k, v in auc["budgets"].items()}
    kid = kernel_inception_distance(real_a, other)
    out[f"{name} KID"] = f"{kid['mean']:.4f}±{kid['std']:.4f}"
    print(
        name,
        json.dumps({k: v for k, v in out.items() if k.startswith(name)}),
        f"{time.perf_counter() - t:.0f}s",
        flush=True,
    )
