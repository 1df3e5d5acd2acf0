"""Stage evaluate: every estimator of the task on the real test split (never seen by the refiner or the
estimators), how well refinement kept the simulator's labels, and how real the refined images look.

Without labelled real test images (prepare.<task>.test_split: none) the estimator comparison is
skipped, and said so in one line (results.json "skipped", the report): its metrics are absent, never
zero. Realism uses the unlabelled real hold-out ("holdout" rows) when there is one, else the labelled
test rows; neither was shown to the refiner.

Writes artifacts/evaluate/<task>/: metrics.json (a DVC metric), curve.csv (a DVC plot: % of images
within d degrees, or % of joints within d pixels, one column per training set), results.json (what the
report stage reads) and figures/ (curve.png, grid.png, turing.html — a visual Turing test to take).

The realism classifiers run side by side on the CPU, one process per core (`realism_workers`; set
SIMGAN_EVALUATE_WORKERS to choose, 1: one after another). The environment, not params.yaml, chooses: the
numbers are the same, bit for bit, for any count, so the stage's hash does not depend on the machine.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd

from simgan import layout
from simgan.evaluation.artifacts import border_lines, has_frame
from simgan.evaluation.figures import image_grid_png, line_chart_png
from simgan.evaluation.realism import realism_report, visual_turing_test_html
from simgan.evaluation.report import paper_reference_points
from simgan.io import atomic_write
from simgan.procs import usable_cores
from simgan.stages.common import device, parse, prepared_images
from simgan.tasks import TASKS
from simgan.training.estimator import load_estimator, predict


def estimator_errors(
    task: str, name: str, images: np.ndarray, truth: np.ndarray, run_device: str, batch_size: int
) -> np.ndarray:
    _, model = load_estimator(layout.estimated(task) / "models" / name / "checkpoint.pt", device=run_device)
    return TASKS[task].metrics.errors(predict(task, model, images, batch_size=batch_size), truth)


WORKERS_ENV = "SIMGAN_EVALUATE_WORKERS"


def realism_workers() -> int:
    """Processes for the realism classifiers: SIMGAN_EVALUATE_WORKERS, else one per core this process may use."""
    value = os.environ.get(WORKERS_ENV, "").strip()
    if not value:
        return usable_cores()
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{WORKERS_ENV}: expected a whole number of processes, 1 or more; got {value!r}")
    return int(value)


def refined_rows(task: str, rows: np.ndarray) -> np.ndarray:
    """The refined versions of synthetic rows (refine keeps the synthetic row order)."""
    return np.asarray(np.load(layout.refined(task) / "images.npy", mmap_mode="r")[rows])


def no_labelled_test(task: str) -> str:
    """Why the estimators are not compared: the one line the report and the logs show."""
    return (
        f"no labelled real test images (see prepare.{task}.test_split); realism and annotation "
        "preservation need no labels and are reported"
    )


def write_json(path, value) -> None:
    text = json.dumps(value, indent=2, default=float) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("evaluate", __doc__, argv)
    section, spec = params.evaluate[task], TASKS[task]
    out = layout.evaluated(task)
    run_device = device(params)
    real, real_manifest = prepared_images(task, "real", splits=("test",))  # labelled; may be none
    realism_real, realism_split = prepared_images(task, "real", splits=("holdout",))[0], "holdout"
    if len(realism_real) == 0:  # no unlabelled hold-out: the labelled test rows (never seen by the refiner)
        realism_real, realism_split = real, "test"
    if len(realism_real) == 0:
        raise SystemExit(
            f"evaluate@{task}: no real image was held out from the refiner (no 'holdout' or 'test' rows in "
            f"{layout.prepared(task, 'real') / 'manifest.csv'}); set prepare.{task}.holdout_fraction > 0"
        )
    skipped = no_labelled_test(task) if len(real) == 0 else None

    # 1. each estimator on the real test split
    estimators, curves = {}, {}
    for name in params.training_sets(task) if skipped is None else ():
        errors = estimator_errors(task, name, real, spec.targets(real_manifest), run_device, section.batch_size)
        estimators[name] = spec.metrics.summary(errors)
        curves[name] = spec.metrics.curve(errors)
    x_name = spec.metrics.threshold_column
    table = pd.DataFrame({"threshold": next(iter(curves.values()))[x_name] if curves else []})  # one x name
    for name, curve in curves.items():
        table[name] = curve["percent_within"].to_numpy()
    csv = table.to_csv(index=False)  # without labelled test images: the header alone, no invented points
    atomic_write(out / "curve.csv", lambda handle: handle.write(csv.encode()))

    # 2. annotation preservation and realism, on a random sample of synthetic rows and their refined versions
    #    (the estimators are not involved, so every split may serve) against real rows the refiner never saw
    synthetic_all, synthetic_manifest = prepared_images(task, "synthetic")
    pick = np.random.default_rng(section.seed)  # random subsets: the real rows are ordered by person
    count = min(section.realism_images, len(realism_real), len(synthetic_all))
    real_rows = np.sort(pick.choice(len(realism_real), count, replace=False))
    synthetic_rows = np.sort(pick.choice(len(synthetic_all), count, replace=False))
    synthetic = synthetic_all[synthetic_rows]
    refined = refined_rows(task, synthetic_manifest["row"].to_numpy()[synthetic_rows])
    preservation = spec.preservation(synthetic, refined, spec.targets(synthetic_manifest.iloc[synthetic_rows]))
    real_side = realism_real[real_rows]
    realism = realism_report(
        real_side,
        {"real_vs_synthetic": synthetic, "real_vs_refined": refined},
        seed=section.seed,
        steps=section.realism_steps,
        budgets=tuple(section.realism_budgets),
        seeds=section.realism_seeds,
        device=run_device,
        workers=realism_workers(),
    )

    borders = {
        name: border_lines(images)
        for name, images in (("synthetic", synthetic), ("refined", refined), ("real", real_side))
    }

    # 3. figures
    figures = out / "figures"
    unit = spec.metrics.unit
    reference = paper_reference_points(task) or None  # the paper's values at 7° (gaze), as points
    if curves:
        line_chart_png(
            {name: (curve[x_name].to_numpy(), curve["percent_within"].to_numpy()) for name, curve in curves.items()},
            figures / "curve.png",
            x_label=f"error threshold d ({unit})",
            y_label=spec.metrics.y_label,
            title=f"{task}: estimators on the real test split ({len(real)} images)",
            reference=reference,
        )
    image_grid_png({"synthetic": synthetic, "refined": refined, "real": realism_real}, figures / "grid.png")
    visual_turing_test_html(
        realism_real,
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
    metrics["border_lines"] = {name: result["score"] for name, result in borders.items()}
    metrics["border_lines"]["frame"] = has_frame(**borders)
    metrics["realism"] = {
        name: {
            "accuracy": test["accuracy"],
            "p_value": test["p_value"],
            **{f"auc_{steps}": auc["mean"] for steps, auc in test["auc"]["budgets"].items()},
            "kid": test["kid"]["mean"],
        }
        for name, test in realism.items()
    }
    write_json(out / "metrics.json", metrics)
    results = {
        "estimators": estimators,
        "preservation": preservation,
        "border_lines": borders,
        "frame": metrics["border_lines"]["frame"],
        "realism": realism,
        "realism_real_split": realism_split,
        "test_images": len(real),
        "estimator_seed": params.estimate[task].training.seed,  # both estimators': the gain is one draw of it
        "figures": {"grid": "figures/grid.png", "turing": "figures/turing.html"},
    }
    if curves:
        results["figures"] = {"curve": "figures/curve.png", **results["figures"]}
    if skipped:
        results["skipped"] = skipped
        print(f"evaluate@{task}: estimator comparison skipped: {skipped}")
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
    print(
        f"evaluate@{task} border lines: "
        + ", ".join(f"{name} {result['score']:.1f}" for name, result in borders.items())
        + (" — the refiner draws a frame" if metrics["border_lines"]["frame"] else "")
    )
    for name, test in realism.items():
        aucs = ", ".join(f"{v['mean']:.3f}±{v['std']:.3f}@{k}" for k, v in test["auc"]["budgets"].items())
        kid = test["kid"]
        print(f"evaluate@{task} {name}: standardised AUC {aucs}; KID {kid['mean']:.4f}±{kid['std']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
