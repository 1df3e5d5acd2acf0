"""Which look factor of the simulated "real" eyes the gaze estimators cannot cross (docs/results.md, "Why the
gaze gain did not come").

Renders a separate, labelled validation world with the embedded simulator (seed 777 — not the data's seed, so
none of these eyes is a test eye; 20 persons × 40 left eyes, one day each), once per variant, and scores the
estimators a workspace trained (artifacts/estimate/gaze/models/{synthetic,refined}) on each. A variant leaves
out look factors of `simgan.data.simulators.eyes.render_real` (`no_eye`: all but the eyeball's appearance,
`only_eye`: that one alone, `none`: the geometry as the synthetic renderer draws it) or widens the lids back
to the synthetic eyes' (`wide_lids`). The baseline is `all`, the look of the embedded default's "real" eyes.

    python benchmarks/gaze_factor_gap.py WORKSPACE                     # all, none, wide_lids
    python benchmarks/gaze_factor_gap.py WORKSPACE all no_eye only_eye no_lashes

Printed per estimator: % within 7°, mean angular error, mean signed pitch and yaw error (bias) and the
correlation of predicted with true yaw and pitch — an estimator that has lost the iris predicts a near
constant yaw (correlation near 0). These labels come from the simulator's own validation world: they
diagnose the simulator's gap and are never used to choose a profile value.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from simgan.data.geometry import gaze_from_pitch_yaw
from simgan.data.simulators import eyes
from simgan.training.estimator import load_estimator, predict

SEED, PERSONS, PER_PERSON = 777, 20, 40


def world(factors: frozenset[str], wide_lids: bool) -> tuple[np.ndarray, np.ndarray]:
    """(N, 35, 55) uint8 left eyes as prepare resizes MPIIGaze's, and their (N, 2) (pitch, yaw) in radians."""
    images, labels = [], []
    for index in range(PERSONS):
        person = eyes.make_person(SEED, index)
        if wide_lids:
            upper, lower = eyes.REAL_LID_OPENING
            opening = {
                "upper_open": person.shape["upper_open"] / upper,
                "lower_open": person.shape["lower_open"] / lower,
            }
            person = replace(person, shape=person.shape | opening)
        day = eyes.make_day(SEED, index, 1)
        for n in range(PER_PERSON):
            rng = np.random.default_rng([SEED, 99, index, n])  # the stream write_person draws a sample from
            pitch = float(np.clip(person.pitch_mean + rng.normal(0, 7), -25, 8))
            yaw = float(rng.uniform(-38, 38) * person.yaw_scale)
            head = (person.head_mean[0] + rng.normal(0, 5), person.head_mean[1] + rng.normal(0, 7))
            pupil = float(np.clip(0.4 + rng.normal(0, 0.06), 0.25, 0.55))
            shape = eyes.EyeShape(
                pitch=math.radians(pitch),
                yaw=math.radians(yaw),
                head_pitch=math.radians(head[0]),
                head_yaw=math.radians(head[1]),
                pupil_fraction=pupil,
                **person.shape,
            )
            image = eyes.render_real(person, day, shape, rng, False, factors=factors)
            images.append(np.asarray(Image.fromarray(image).resize((55, 35), Image.Resampling.BILINEAR)))
            labels.append((pitch, yaw))
    return np.stack(images), np.radians(np.array(labels))


def variant(name: str) -> tuple[frozenset[str], bool]:
    everything = eyes.REAL_FACTORS
    if name == "all":
        return everything, False
    if name == "none":
        return frozenset(), False
    if name == "wide_lids":
        return everything, True
    for prefix, pick in (("no_", lambda f: everything - {f}), ("only_", lambda f: frozenset({f}))):
        if name.startswith(prefix) and name[len(prefix) :] in everything:
            return pick(name[len(prefix) :]), False
    raise SystemExit(
        f"unknown variant {name!r}: all, none, wide_lids, no_<factor> or only_<factor>, factors "
        f"{', '.join(sorted(everything))}"
    )


def scores(model, images: np.ndarray, truth: np.ndarray) -> str:
    gaze = np.asarray(predict("gaze", model, images, batch_size=256))
    gaze /= np.linalg.norm(gaze, axis=1, keepdims=True)
    error = np.degrees(np.arccos(np.clip((gaze * gaze_from_pitch_yaw(truth)).sum(1), -1, 1)))
    pitch, yaw = -np.arcsin(gaze[:, 1]), np.arctan2(-gaze[:, 0], -gaze[:, 2])
    return (
        f"{np.mean(error < 7) * 100:5.1f} % within 7°, {error.mean():5.1f}° mean, bias pitch "
        f"{np.degrees(pitch - truth[:, 0]).mean():+5.1f}° yaw {np.degrees(yaw - truth[:, 1]).mean():+5.1f}°, "
        f"corr yaw {np.corrcoef(yaw, truth[:, 1])[0, 1]:.2f} pitch {np.corrcoef(pitch, truth[:, 0])[0, 1]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path, help="a workspace after estimate@gaze (its artifacts/ is read)")
    parser.add_argument("variants", nargs="*", default=["all", "none", "wide_lids"])
    args = parser.parse_args()
    models = {}
    for name in ("synthetic", "refined"):
        path = args.workspace / "artifacts/estimate/gaze/models" / name / "checkpoint.pt"
        if not path.exists():
            raise SystemExit(f"{path}: no estimator; run `dvc repro estimate@gaze` in {args.workspace} first")
        models[name] = load_estimator(path, device="cpu")[1]
    for name in args.variants:
        images, truth = world(*variant(name))
        for model_name, model in models.items():
            print(f"{name:12s} {model_name:9s} {scores(model, images, truth)}", flush=True)


if __name__ == "__main__":
    main()
