"""Stage evaluate: every estimator of the task on the real test split (never seen by the refiner or the
estimators), how well refinement kept the simulator's labels, and how real the refined images look.

Writes artifacts/evaluate/<task>/: metrics.json (a DVC metric), curve.csv (a DVC plot: % of images
within d degrees, or % of joints within d pixels, one column per training set), results.json (what the
report stage reads) and figures/ (curve.png, grid.png, turing.html — a visual Turing test to take).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd

from simgan import layout
from simgan.evaluation.figures import image_grid_png, line_chart_png
from simgan.evaluation.realism import two_sample_test, visual_turing_test_html
from simgan.evaluation.report import paper_reference_points
from simgan.io import atomic_write
from simgan.stages.common import device, parse, prepared_images
from simgan.tasks import TASKS
from simgan.training.estimator import load_estimator, predict


def estimator_errors(
    task: str, name: str, images: np.ndarray, truth: np.ndarray, run_device: str, batch_size: int
) -> np.ndarray:
    _, model = load_estimator(layout.estimated(task) / "models" / name / "checkpoint.pt", device=run_device)
    return TASKS[task].metrics.errors(predict(task, model, images, batch_size=batch_size), truth)


def refined_rows(task: str, rows: np.ndarray) -> np.ndarray:
    """The refined versions of synthetic rows (refine keeps the synthetic row order)."""
    return np.asarray(np.load(layout.refined(task) / "images.npy", mmap_mode="r")[rows])


def write_json(path, value) -> None:
    text = json.dumps(value, indent=2, default=float) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("evaluate", __doc__, argv)
    section, spec = params.evaluate[task], TASKS[task]
    out = layout.evaluated(task)
    run_device = device(params)
    real, real_manifest = prepared_images(task, "real", splits=("test",))
    if len(real) == 0:
        raise SystemExit(
            f"evaluate@{task}: the real domain has no labelled test rows (split 'test' in "
            f"{layout.prepared(task, 'real') / 'manifest.csv'}); set prepare.{task}.test_persons "
            "or test_fraction"
        )
    truth = spec.targets(real_manifest)

    # 1. each estimator on the real test split
    estimators, curves = {}, {}
    for name in params.training_sets(task):
        errors = estimator_errors(task, name, real, truth, run_device, section.batch_size)
        estimators[name] = spec.metrics.summary(errors)
        curves[name] = spec.metrics.curve(errors)
    x_name = spec.metrics.threshold_column
    table = pd.DataFrame({"threshold": next(iter(curves.values()))[x_name]})  # one x name for both tasks' plots
    for name, curve in curves.items():
        table[name] = curve["percent_within"].to_numpy()
    csv = table.to_csv(index=False)
    atomic_write(out / "curve.csv", lambda handle: handle.write(csv.encode()))

    # 2. annotation preservation and realism, on a random sample of synthetic rows and their refined versions
    #    (the estimators are not involved, so every split may serve) against the real test rows
    synthetic_all, synthetic_manifest = prepared_images(task, "synthetic")
    pick = np.random.default_rng(section.seed)  # random subsets: the real rows are ordered by person
    count = min(section.realism_images, len(real), len(synthetic_all))
    real_rows = np.sort(pick.choice(len(real), count, replace=False))
    synthetic_rows = np.sort(pick.choice(len(synthetic_all), count, replace=False))
    synthetic = synthetic_all[synthetic_rows]
    refined = refined_rows(task, synthetic_manifest["row"].to_numpy()[synthetic_rows])
    preservation = spec.preservation(synthetic, refined, spec.targets(synthetic_manifest.iloc[synthetic_rows]))
    realism = {
        "real_vs_synthetic": two_sample_test(
            real[real_rows], synthetic, seed=section.seed, steps=section.realism_steps, device=run_device
        ),
        "real_vs_refined": two_sample_test(
            real[real_rows], refined, seed=section.seed, steps=section.realism_steps, device=run_device
        ),
    }

    # 3. figures
    figures = out / "figures"
    unit = spec.metrics.unit
    reference = paper_reference_points(task) or None  # the paper's values at 7° (gaze), as points
    line_chart_png(
        {name: (curve[x_name].to_numpy(), curve["percent_within"].to_numpy()) for name, curve in curves.items()},
        figures / "curve.png",
        x_label=f"error threshold d ({unit})",
        y_label=spec.metrics.y_label,
        title=f"{task}: estimators on the real test split ({len(real)} images)",
        reference=reference,
    )
    image_grid_png({"synthetic": synthetic, "refined": refined, "real": real}, figures / "grid.png")
    visual_turing_test_html(
        real,
        refined,
        figures / "turing.html",
        n_pairs=section.turing_pairs,
        seed=section.seed,
        title=f"SimGAN visual Turing test ({task}): real or refined?",
    )

    # 4. metrics (DVC) and the full results (report stage)
    headline = spec.metrics.headline
    metrics = {name: values for name, values in estimators.items()}
    if "refined" in estimators:  # one name in both tasks: the retrain flow promotes on it (flows/retrain.py)
        metrics["refined_within_pct"] = estimators["refined"][headline]
    if "synthetic" in estimators and "refined" in estimators:
        metrics["refined_minus_synthetic"] = {
            headline: estimators["refined"][headline] - estimators["synthetic"][headline]
        }
    metrics["preservation"] = preservation
    metrics["realism"] = {
        name: {"accuracy": test["accuracy"], "p_value": test["p_value"]} for name, test in realism.items()
    }
    write_json(out / "metrics.json", metrics)
    results = {
        "estimators": estimators,
        "preservation": preservation,
        "realism": realism,
        "test_images": len(real),
        "figures": {"curve": "figures/curve.png", "grid": "figures/grid.png", "turing": "figures/turing.html"},
    }
    write_json(out / "results.json", results)
    for name, values in estimators.items():
        print(
            f"evaluate@{task} {name}: "
            + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        )
    print(
        f"evaluate@{task} realism (classifier accuracy; 0.5 = indistinguishable): real vs synthetic "
        f"{realism['real_vs_synthetic']['accuracy']:.3f}, real vs refined {realism['real_vs_refined']['accuracy']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
