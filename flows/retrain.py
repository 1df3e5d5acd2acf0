"""Flow `retrain`: retrain when data/ changed, and promote the result only if it is not worse.

    1. Has data/ changed since the last successful run? `dvc status data.dvc` says whether data/ still
       matches data.dvc; the hash in data.dvc is compared with the one recorded by the last successful
       run in artifacts/retrain.json. Both unchanged: return {"status": "unchanged"} at once.
    2. data/ differs from data.dvc: `dvc add data` re-hashes it and rewrites data.dvc.
    3. The `pipeline` flow runs every dvc.yaml stage (DVC re-runs only what depends on what changed).
    4. The new metrics are compared with those of the last promotion (artifacts/promoted.json) on one
       metric and a direction (a task without labelled real test images: on realism, FALLBACK_METRIC).
       Not worse (or nothing to compare with yet): promote — `publish` points each packaged task's serving
       entry in artifacts/promoted.json at the model and bento this run packaged (simgan/promotion.py), with the
       metrics, the data hash and the git commit. Worse: refuse, and leave artifacts/promoted.json, and so
       what `simgan serve` serves, as it was.
    5. Either way artifacts/retrain.json records the decision and why, and a `retrain-decision` markdown
       artifact says the same in the Prefect UI.

Why a JSON file under artifacts/ and not a Prefect Variable for the state: it describes this workspace's
artifacts, so it lives and dies with them. A Variable is global to a Prefect server: two checkouts (or a
test's temporary project) would share one key, and a fresh or ephemeral server would forget it while the
artifacts are still there. `make clean` removes artifacts/ and with it the state, which correctly forces
a retrain. It needs no server to read (`cat artifacts/retrain.json`). artifacts/ is git-ignored and no DVC
stage declares these two files, so DVC never deletes or tracks them.

A failed pipeline (a stage failed, data rejected by validation, bad params) puts data.dvc back to the data last
accepted, and records in artifacts/retrain.json which data was rejected, by which stage, and how to get back
(`dvc checkout data.dvc`); its `data_hash` stays the last successful run's, so the next run tries again.
Code or params changes are not "data changed": run the `pipeline` flow (or `retrain(force=True)`) for those.

    python -m flows.retrain [REPO_ROOT] [--metric NAME --direction min|max] [--force]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows import dvc_stages
from flows.pipeline import pipeline
from simgan import promotion
from simgan.io import atomic_write

STATE_FILE = Path("artifacts") / "retrain.json"  # the last successful run: data hash, decision, reason
PROMOTED_FILE = promotion.PROMOTED  # what is served: per task model + bento tags, metrics, data hash, git commit
# The evaluation metric promotion is judged on, matched against `dvc metrics show` keys (see `select`):
# evaluate@<task> writes `refined_within_pct`, the % of real test images within 7° (gaze) or of joints
# within 5 px (hand) for the estimator trained on refined images — the paper's headline numbers.
DEFAULT_METRIC = "refined_within_pct"
DEFAULT_DIRECTION: Literal["min", "max"] = "max"
# A task without labelled real test images (prepare.<task>.test_split: none) has no such metric: its
# estimators are not compared. It is judged instead on realism: the kernel distance (KID) between real and
# refined images in a fixed feature space (evaluate@<task>: realism.real_vs_refined.kid; lower is more
# real, 0 = the same distribution), steadier from run to run than a classifier's accuracy.
# Promoting such a task without any comparison would let a collapsed
# refiner through; realism alone cannot see a refiner that moves the labels, which is why labelled
# test images remain the better gate.
FALLBACK_METRIC = "realism.real_vs_refined.kid"
FALLBACK_DIRECTION: Literal["min", "max"] = "min"


@task(name="data-status", cache_policy=NO_CACHE)
def data_status(repo_root: str, data: str = "data") -> dict:
    """{"changed": data/ differs from data.dvc, "hash": the hash data.dvc records (None if untracked)}."""
    return {"changed": dvc_stages.data_changed(repo_root, data), "hash": dvc_stages.recorded_data_hash(repo_root, data)}


@task(name="dvc-add-data", cache_policy=NO_CACHE)
def track_data(repo_root: str, data: str = "data") -> str:
    return dvc_stages.track_data(repo_root, data, log=get_run_logger().info)


def select(metrics: dict, metric: str) -> dict[str, float]:
    """The numeric metrics named `metric`: a full name (`artifacts/eval/gaze.json:mean_error`) or a key
    (`mean_error`, `test.mean_error`) matched in every file — one value per task in a foreach pipeline."""
    return {
        name: float(value)
        for name, value in metrics.items()
        if (name == metric or name.split(":", 1)[-1] == metric)
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


def compare(new: dict, promoted: dict | None, metric: str, direction: Literal["min", "max"]) -> tuple[bool, str]:
    """(promote?, why). Promote unless a value of `metric` present in both runs got worse; when the new run
    has no such metric, or nothing was promoted before, there is nothing to compare and it is promoted."""
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")
    candidates = select(new, metric)
    if not candidates:
        return True, f"no evaluation metric '{metric}' in `dvc metrics show` yet: promoted without comparison"
    if not promoted:
        return True, f"first promotion: {_values(candidates)}"
    before = select(promoted, metric)
    shared = sorted(set(candidates) & set(before))
    if not shared:
        return True, f"the last promotion has no '{metric}' to compare with: promoted ({_values(candidates)})"
    better = "lower" if direction == "min" else "higher"
    worse = [
        name
        for name in shared
        if (candidates[name] > before[name] if direction == "min" else candidates[name] < before[name])
    ]
    if worse:
        return False, (
            "not promoted: "
            + "; ".join(f"{name} got worse, {before[name]:g} -> {candidates[name]:g}" for name in worse)
            + f" ({better} is better)"
        )
    return True, (
        "not worse than the last promotion: "
        + "; ".join(f"{name} {before[name]:g} -> {candidates[name]:g}" for name in shared)
        + f" ({better} is better)"
    )


def decide(new: dict, promoted: dict | None, metric: str, direction: Literal["min", "max"]) -> tuple[bool, str]:
    """`compare` on `metric`, and, for the default metric, each metrics file (task) without it judged on
    FALLBACK_METRIC instead: promoted only if neither got worse."""
    primary = select(new, metric)
    if metric != DEFAULT_METRIC:
        return compare(new, promoted, metric, direction)
    with_metric = {name.split(":", 1)[0] for name in primary}
    rest = {name: value for name, value in new.items() if name.split(":", 1)[0] not in with_metric}
    if not select(rest, FALLBACK_METRIC):
        return compare(new, promoted, metric, direction)
    fallback_ok, fallback_why = compare(rest, promoted, FALLBACK_METRIC, FALLBACK_DIRECTION)
    fallback_why = f"without labelled real test images, on realism ({FALLBACK_METRIC}): {fallback_why}"
    if not primary:
        return fallback_ok, fallback_why
    primary_ok, primary_why = compare(new, promoted, metric, direction)
    return primary_ok and fallback_ok, f"{primary_why}; {fallback_why}"


def _values(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} = {value:g}" for name, value in metrics.items())


class PublishError(RuntimeError):
    """A promoted run's bento is not in the BentoML store: nothing is promoted (the pointer would dangle)."""


def bento_store(root: Path) -> Path:
    """Where the package stage put the bentos: $BENTOML_HOME, else <repo>/.bentoml (the stage's own default)."""
    return Path(os.environ.get("BENTOML_HOME") or root / ".bentoml")


def publish(repo_root: str | Path, record: dict, previous: dict | None) -> dict:
    """Where a promoted model leaves the pipeline: the new promotion record, which points each task's serving
    entry at the model and bento that this run packaged (artifacts/package/<task>/bento.json), keeping the
    entries it replaces for `simgan rollback` (simgan/promotion.py says why the pointer is a file).

    Every bento named must be whole in the store (its bento.yaml present): a dangling pointer raises
    PublishError before anything is written. A project without a package stage promotes metrics only.
    Running servers are not touched: a bento is served as it was at start, so `simgan serve --task T` is
    restarted to serve a new promotion (docs/orchestration.md, "Serving what was promoted").
    """
    root = Path(repo_root)
    tags = promotion.packaged(root)
    store = bento_store(root)
    for which, tag in tags.items():
        name, version = tag["bento"].split(":", 1)
        if not (store / "bentos" / name / version / "bento.yaml").is_file():
            raise PublishError(
                f"{which}: bento {tag['bento']} (artifacts/package/{which}/bento.json) is not in the BentoML "
                f"store {store}; run `dvc repro -f package@{which}` with BENTOML_HOME={store}, then force a retrain"
            )
    new = promotion.promote(previous, record, tags)
    changed = {
        task: entry["bento"]
        for task, entry in new["serving"].items()
        if ((previous or {}).get("serving") or {}).get(task, {}).get("bento") != entry["bento"]
    }
    new["publish"] = {
        "published": bool(tags),
        "store": str(store),
        "changed": changed,
        "note": "restart `simgan serve --task <task>` to serve a changed bento" if changed else "nothing new to serve",
    }
    get_run_logger().info("publish: serving %s", {task: entry["model"] for task, entry in new["serving"].items()})
    return new


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _write_json(path: Path, value: dict) -> None:
    _write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode()))  # a crash never leaves half a file


@flow(name="retrain")
def retrain(
    repo_root: str = ".",
    metric: str = DEFAULT_METRIC,
    direction: Literal["min", "max"] = DEFAULT_DIRECTION,
    data: str = "data",
    force: bool = False,
    retries: int = 0,
    timeout_s: float | None = None,
) -> dict:
    """Retrain if data/ changed since the last successful run; promote if the metric is not worse.

    metric, direction: the evaluation metric (see `select`) and whether lower ("min") or higher ("max") is better.
    data: the DVC-tracked input folder (`<data>.dvc` tracks it). force: run even if data/ is unchanged.
    retries, timeout_s: passed to the `pipeline` flow for every stage.

    Returns {"status": "unchanged" | "promoted" | "refused", "reason", "data_hash", "metrics": the selected metric}.
    """
    logger = get_run_logger()
    root = Path(repo_root).resolve()
    last = _read_json(root / STATE_FILE)
    status = data_status(str(root), data)
    last_hash = last.get("data_hash") if last else None

    if not force and not status["changed"] and status["hash"] is not None and status["hash"] == last_hash:
        reason = f"{data}/ unchanged since the last successful run ({status['hash']}, {last.get('finished_at')})"
        logger.info("%s: nothing to do", reason)
        return {"status": "unchanged", "reason": reason, "data_hash": status["hash"], "metrics": {}}

    data_dvc = dvc_stages.data_dvc_file(root, data)
    accepted_dvc = data_dvc.read_text() if data_dvc.exists() else None  # to put back if this data is rejected
    if status["changed"]:
        logger.info("%s/ differs from %s.dvc: `dvc add %s`", data, data, data)
        data_hash = track_data(str(root), data)
    else:
        data_hash = status["hash"]
    why = "forced" if force else f"last successful run: {last_hash or 'none'}"
    logger.info("%s/ is %s (%s); running the pipeline", data, data_hash, why)

    try:
        summary = pipeline(repo_root=str(root), retries=retries, timeout_s=timeout_s)
    except Exception as error:
        _record_failure(root, data, data_dvc, accepted_dvc, data_hash, last, error)
        raise

    promoted = _read_json(root / PROMOTED_FILE)
    promote, reason = decide(summary["metrics"], promoted.get("metrics") if promoted else None, metric, direction)
    record = {
        "status": "promoted" if promote else "refused",
        "reason": reason,
        "metric": metric,
        "direction": direction,
        "selected": select(summary["metrics"], metric),
        "metrics": summary["metrics"],
        "data_hash": data_hash,
        "git": dvc_stages.git_commit(root),
        "flow_run_id": str(flow_run.get_id()),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if promote:
        record["previous"] = {k: promoted.get(k) for k in ("data_hash", "git", "finished_at")} if promoted else None
        new = publish(root, record, promoted)
        promotion.write(root, new)
        record["serving"] = {task: entry["model"] for task, entry in new["serving"].items()}
    else:
        record["serving"] = {
            task: entry.get("model") for task, entry in ((promoted or {}).get("serving") or {}).items()
        }  # unchanged: a refusal changes nothing that is served
    _write_json(root / STATE_FILE, record)
    logger.info("%s: %s", record["status"], reason)
    create_markdown_artifact(
        key="retrain-decision",
        markdown=_decision_markdown(root, record, promoted),
        description=f"retrain in {root}: {record['status']}",
    )
    return {
        "status": record["status"],
        "reason": reason,
        "data_hash": data_hash,
        "metrics": record["selected"],
        "serving": record["serving"],
    }


def _record_failure(
    root: Path, data: str, data_dvc: Path, accepted_dvc: str | None, data_hash: str | None, last: dict | None, error
) -> None:
    """After a failed pipeline: put data.dvc back to the data last accepted (when this run re-hashed it), and
    say in artifacts/retrain.json and a `retrain-decision` artifact which data was rejected, by which stage, and
    how to get back. The last successful run's hash stays the state's `data_hash`, so the next run tries again
    (data/ still differs from data.dvc); promoted.json, and so what is served, is untouched."""
    accepted_hash = None
    restored = False
    if accepted_dvc is not None and data_dvc.exists() and data_dvc.read_text() != accepted_dvc:
        _write_text(data_dvc, accepted_dvc)
        restored = True
    accepted_hash = dvc_stages.recorded_data_hash(root, data) if data_dvc.exists() else None
    stage = getattr(error, "stage", None)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if restored:
        back = (
            f"{data}.dvc was put back to the data last accepted ({accepted_hash}); `dvc checkout {data}.dvc` restores "
            f"{data}/ to it from the DVC cache (or fix {data}/ and run again: it differs from {data}.dvc, so the next "
            f"run retries)"
        )
    else:
        back = "fix the cause and run again (the next run retries: nothing was recorded as successful)"
    record = {
        **(last or {}),
        "status": "failed",
        "reason": f"{'stage ' + stage if stage else 'the pipeline'} failed: {first_line}",
        "rejected": {
            "data_hash": data_hash,
            "stage": stage,
            "permanent": not dvc_stages.retriable(error),
            "error": str(error).strip().splitlines()[-20:],
        },
        "data_dvc_restored": restored,
        "how_to_get_back": back,
        "data_hash": (last or {}).get("data_hash"),  # the last successful run's: the next run is not "unchanged"
        "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "flow_run_id": str(flow_run.get_id()),
    }
    _write_json(root / STATE_FILE, record)
    get_run_logger().error("retrain failed on %s/ %s: %s. %s", data, data_hash, record["reason"], back)
    try:
        create_markdown_artifact(
            key="retrain-decision",
            markdown=(
                f"# Retrain in `{root}`: **failed**\n\n{record['reason']}\n\n- rejected data hash: `{data_hash}`\n"
                f"- stage: `{stage}`\n- to get back: {back}\n- state: `{STATE_FILE}`; promotion: `{PROMOTED_FILE}` "
                "(unchanged: what is served did not change)\n"
            ),
            description=f"retrain in {root}: failed",
        )
    except Exception as problem:  # never hide the pipeline's own error
        get_run_logger().warning("could not publish the retrain-decision artifact: %s", problem)


def _decision_markdown(root: Path, record: dict, promoted_before: dict | None) -> str:
    before = select(promoted_before.get("metrics", {}), record["metric"]) if promoted_before else {}
    lines = [
        f"# Retrain in `{root}`: **{record['status']}**",
        "",
        record["reason"],
        "",
        f"- data hash: `{record['data_hash']}`",
        f"- git commit: `{record['git'].get('commit')}`"
        + (" (with uncommitted changes)" if record["git"].get("dirty") else ""),
        f"- metric: `{record['metric']}` ({'lower' if record['direction'] == 'min' else 'higher'} is better)",
        f"- state: `{STATE_FILE}`; promotion: `{PROMOTED_FILE}`"
        + (" (updated)" if record["status"] == "promoted" else " (unchanged)"),
    ]
    for name, model in sorted((record.get("serving") or {}).items()):
        lines.append(f"- serves `{name}`: `{model}` (`simgan serve --task {name}`; restart a running server)")
    lines.append("")
    names = sorted(set(before) | set(record["selected"]))
    if names:
        lines += ["| metric | last promoted | this run |", "|---|---|---|"]
        lines += [f"| `{name}` | {before.get(name, '')} | {record['selected'].get(name, '')} |" for name in names]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.retrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("repo_root", nargs="?", default=".")
    parser.add_argument("--metric", default=DEFAULT_METRIC)
    parser.add_argument("--direction", choices=("min", "max"), default=DEFAULT_DIRECTION)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(retrain(repo_root=args.repo_root, metric=args.metric, direction=args.direction, force=args.force)))


if __name__ == "__main__":
    main()
