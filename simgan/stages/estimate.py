"""Stage estimate: the task's estimator trained on each training set — synthetic and refined (and, per
params, training sets `larger_variant_factor` times larger) — with the same seed, subset and schedule,
so that evaluate can compare them on real images. Without labelled real test images nothing is
trained: training.json says why, and evaluate skips the comparison.

A killed run resumes: the checkpoints are a persistent DVC output, and a checkpoint is continued only
if it is unfinished and was written for the same estimator, training config and training data (else
training restarts; `TrainingLoop.resume_if_unfinished`).

The trainings are independent (one per training set), so on a node with several devices they run side by
side, one process and one device each (`estimator_devices`): every GPU of a multi-GPU node when
`runtime.device` is auto, or the list in SIMGAN_ESTIMATE_DEVICES (e.g. "cuda:0,cuda:1"; "cpu,cpu" runs two
CPU processes). The environment, not params.yaml, chooses, so the stage's hash does not depend on the machine.
Each training gets the same seed and data either way; curves and training.json are written in the set order.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from simgan import layout
from simgan.io import atomic_write
from simgan.stages.common import LiveReport, apply_runtime, device, fingerprint, parse, prepared_images, read_images
from simgan.tasks import TASKS
from simgan.training.estimator import EstimatorTrainer


def training_data(task: str, source: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The `train` split of `source` (synthetic or refined): all of it, or `count` rows drawn with `seed`.

    Refined rows are the synthetic rows refined, so the same seed picks the same scenes in both sets.
    """
    if source == "synthetic":
        images, manifest = prepared_images(task, "synthetic")
    else:
        images, manifest = read_images(layout.refined(task))
    rows = manifest.index[manifest["split"] == "train"].to_numpy()
    if count:
        if count > len(rows):
            raise SystemExit(
                f"estimate@{task}: {count} training images asked for, but {source} has only "
                f"{len(rows)} in its train split (lower estimate.{task}.train_images or "
                f"larger_variant_factor)"
            )
        rows = np.sort(np.random.default_rng(seed).choice(rows, count, replace=False))
    return np.asarray(images[rows]), TASKS[task].targets(manifest.loc[rows])


def labelled_test_rows(task: str) -> int:
    """How many real rows are labelled test rows (the manifest alone; no image is read)."""
    splits = pd.read_csv(layout.prepared(task, "real") / "manifest.csv", usecols=["split"])["split"]
    return int((splits == "test").sum())


DEVICES_ENV = "SIMGAN_ESTIMATE_DEVICES"


def estimator_devices(params) -> list[str]:
    """Where the independent trainings run: SIMGAN_ESTIMATE_DEVICES (comma-separated), else every GPU of a
    multi-GPU node when runtime.device is "auto", else the stage's one device (trainings one after another)."""
    listed = [name.strip() for name in os.environ.get(DEVICES_ENV, "").split(",") if name.strip()]
    if listed:
        import torch

        for name in listed:
            try:
                torch.device(name)
            except RuntimeError:
                raise SystemExit(f"{DEVICES_ENV}: {name!r} is not a torch device (e.g. cuda:0, cpu)") from None
        return listed
    if params.runtime.device == "auto":
        import torch

        if torch.cuda.device_count() > 1:
            return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return [device(params)]


_DEVICE: list[str] = []  # this worker process's device, claimed once from the queue


def _claim_device(devices) -> None:
    _DEVICE.append(devices.get())


def _train(task: str, params, name: str, source: str, count: int, on: str | None = None, live=None) -> dict:
    """One training set's estimator: trained (or resumed) to its checkpoint; its summary, and the curve points
    it reported unless `live` (a LiveReport) took them as they came."""
    on = on or _DEVICE[0]
    model_config, train_config = params.estimator_config(task), params.estimator_train_config(task)
    out = layout.estimated(task)
    images, labels = training_data(task, source, count, train_config.seed)
    curve: list[tuple[int, dict]] = []

    def report(step: int, metrics: dict) -> None:
        if live is not None:
            live(step, {f"{name}/{key}": value for key, value in metrics.items()})
        else:
            curve.append((step, dict(metrics)))

    trainer = EstimatorTrainer(
        task,
        model_config,
        train_config,
        images,
        labels,
        device=on,
        report=report,
        description=f"estimate@{task} {name}",
    )
    trainer.provenance.update(data_fingerprint=fingerprint(images, labels), training_set=name, images=len(images))
    checkpoint = out / "models" / name / "checkpoint.pt"
    trainer.resume_if_unfinished(checkpoint)
    metrics = trainer.fit(checkpoint_path=checkpoint)
    print(
        f"estimate@{task} {name}: {len(images)} {source} images, {trainer.step} steps on {on}, "
        f"final loss {metrics.get('loss', float('nan')):.4g} -> {checkpoint}",
        flush=True,
    )
    return {
        "summary": {"images": len(images), "steps": trainer.step, "final_loss": metrics.get("loss")},
        "curve": curve,
    }


def _train_in_worker(task: str, params_path: str, name: str, source: str, count: int) -> dict:
    """_train in a worker process, on the device it claimed; params are read again from their file (the
    loaded models are not picklable), with the strict loader the stage used."""
    from simgan.config import load_params

    params = load_params(params_path)
    apply_runtime(params)
    return _train(task, params, name, source, count)


def train_all(task: str, params, devices: list[str], live, params_path: str = "params.yaml") -> dict[str, dict]:
    """Every training set's estimator: one after another on one device, its curve going to `live` as it is
    trained; or side by side on `devices` (one process each), the curves written to `live` at the end, in the
    set order, so that the files are the same."""
    sets = params.training_sets(task)
    if len(devices) < 2 or len(sets) < 2:
        return {name: _train(task, params, name, *job, devices[0], live) for name, job in sets.items()}
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
    queue = context.Manager().Queue()
    for name in devices:
        queue.put(name)
    workers = min(len(devices), len(sets))
    print(f"estimate@{task}: {len(sets)} trainings on {workers} of {', '.join(devices)}, side by side", flush=True)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_claim_device, initargs=(queue,)) as pool:
        futures = {name: pool.submit(_train_in_worker, task, params_path, name, *job) for name, job in sets.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, result in results.items():
        for step, metrics in result["curve"]:
            live(step, {f"{name}/{key}": value for key, value in metrics.items()})
    return results


def main(argv: list[str] | None = None) -> int:
    task, params, args = parse("estimate", __doc__, argv)
    out = layout.estimated(task)
    if not labelled_test_rows(task):  # nothing real to compare the estimators on: do not train them
        reason = f"no labelled real test images (see prepare.{task}.test_split): estimators not trained"
        print(f"estimate@{task}: {reason}")
        note = f"{reason}\n"
        atomic_write(out / "models" / "SKIPPED.txt", lambda handle: handle.write(note.encode()))
        (out / "dvclive" / "plots" / "metrics").mkdir(parents=True, exist_ok=True)  # declared plots: no curve
        text = json.dumps({"skipped": reason}, indent=2) + "\n"
        atomic_write(out / "training.json", lambda handle: handle.write(text.encode()))
        return 0
    report = LiveReport(out / "dvclive")  # one curve per training set: <set>_loss
    results = train_all(task, params, estimator_devices(params), report, args.params)
    report.close()
    summary = {name: result["summary"] for name, result in results.items()}
    text = json.dumps(summary, indent=2) + "\n"
    atomic_write(out / "training.json", lambda handle: handle.write(text.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
