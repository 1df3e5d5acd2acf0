"""Where the pipeline reads and writes. Paths are not params: this module names them, and a test
checks it against dvc.yaml so the two cannot drift.

All paths are relative to the repository root (DVC runs every stage there).

    data/<task>/{synthetic,real}/          raw inputs in their published formats (tracked by data.dvc)
    artifacts/prepared/<task>/<domain>/    images.npy, manifest.csv, quarantine.csv (prepare)
    artifacts/prepared/<task>/summary.json, samples.png
    artifacts/reports/<task>/              validation.json (a DVC metric), data_docs/ (validate)
    artifacts/pretrain/<task>/             checkpoint.pt, dvclive/ (pretrain: refiner and discriminator pretraining)
    artifacts/train/<task>/                checkpoint.pt, dvclive/ (train: adversarial rounds)
    artifacts/refined/<task>/              images.npy, manifest.csv, grid.png (refine)
    artifacts/reports/<task>/refined/      validation.json (validate_refined)
    artifacts/estimate/<task>/             models/<set>/checkpoint.pt, training.json, dvclive/ (estimate)
    artifacts/evaluate/<task>/             metrics.json, curve.csv, figures/ (evaluate, on the real test split)
    artifacts/reports/report.md, .html     our numbers beside the paper's, both tasks (report)
    artifacts/package/<task>/              bento.json: the model and bento tags in the BentoML store (package)
"""

from __future__ import annotations

from pathlib import Path

TASKS = ("gaze", "hand")
DOMAINS = ("synthetic", "real")
DATA = Path("data")
ARTIFACTS = Path("artifacts")

# dvc.yaml stage names, in pipeline order; each runs as `python -m simgan.stages.<module> --task <task>`
STAGES = ("prepare", "validate", "pretrain", "train", "refine", "validate_refined", "estimate", "evaluate", "package")
# stages over both tasks at once (no foreach), after the per-task ones
SUMMARY_STAGES = ("report",)


def prepared(task: str, domain: str | None = None) -> Path:
    folder = ARTIFACTS / "prepared" / task
    return folder / domain if domain else folder


def reports(task: str) -> Path:
    return ARTIFACTS / "reports" / task


def pretrained(task: str) -> Path:
    return ARTIFACTS / "pretrain" / task


def trained(task: str) -> Path:
    return ARTIFACTS / "train" / task


def refined(task: str) -> Path:
    return ARTIFACTS / "refined" / task


def refined_reports(task: str) -> Path:
    return reports(task) / "refined"


def packaged(task: str) -> Path:
    return ARTIFACTS / "package" / task


def estimated(task: str) -> Path:
    return ARTIFACTS / "estimate" / task


def evaluated(task: str) -> Path:
    return ARTIFACTS / "evaluate" / task


def report() -> Path:
    return ARTIFACTS / "reports"
