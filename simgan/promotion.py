"""What is served: the promotion record, artifacts/promoted.json, and the pointer it holds for each task.

The retrain flow (flows/retrain.py) promotes a run whose evaluation is not worse than the last promotion;
packaging a trained refiner (the package stage, every run) is not releasing it. The record says which model
and bento each task serves:

    {"serving": {"gaze": {"model": "simgan-refiner-gaze:<hash>", "bento": "simgan-gaze:<hash>",
                          "data_hash", "git", "flow_run_id", "promoted_at", "metrics": {this task's metrics}}},
     "history": {"gaze": [the entries it replaced, newest first]},
     "metrics": {every metric of the promoted state, what the next retrain is compared with}, ...}

`simgan serve --task T` serves `serving.T.bento`; `simgan rollback --task T` puts `history.T[0]` back.

Why a pointer file and not a pointer inside the BentoML store: BentoML 1.4's local store has no alias or
movable tag. Labels are written once, into model.yaml / bento.yaml, when an entry is saved, and the public API
(`bentoml.models`, `bentoml.bentos`, `bentoml models|list`) has no call to change them; the only name that
moves is `<name>:latest`, which the store points at the newest entry by creation time, i.e. the last
*packaged* bento, which after a refused retrain is exactly the one that must not be served. The entries
themselves are immutable and content-addressed (the package stage names them by a hash), so a file naming two
tags is a stable pointer: whatever it names cannot change under it. It lives beside the metrics it was judged
on (artifacts/, git-ignored, written by no DVC stage, so DVC never deletes it), is written whole or not at all,
and needs no server or store to read.

No Prefect, DVC or BentoML here: the flow, `simgan serve` and `simgan rollback` share these functions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from simgan import layout
from simgan.io import atomic_write

PROMOTED = layout.ARTIFACTS / "promoted.json"
BENTO_RECORD = "bento.json"  # artifacts/package/<task>/bento.json, the package stage's record of its tags
HISTORY_LIMIT = 20  # previous promotions kept per task for `simgan rollback`


class PromotionError(ValueError):
    """Nothing promoted to serve or roll back to, or an unreadable record: one line, naming the file."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read(root: str | Path = ".") -> dict | None:
    """artifacts/promoted.json under root, or None when nothing was ever promoted."""
    path = Path(root) / PROMOTED
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PromotionError(f"{path} is not valid JSON ({error}); restore it or run the retrain flow again") from None
    if not isinstance(record, dict):
        raise PromotionError(f"{path} holds {type(record).__name__}, expected a JSON object")
    return record


def write(root: str | Path, record: dict) -> None:
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    atomic_write(Path(root) / PROMOTED, lambda handle: handle.write(text.encode()))


def packaged(root: str | Path = ".") -> dict[str, dict]:
    """{task: {"model", "bento"}} from the package stage's records (artifacts/package/<task>/bento.json)."""
    found = {}
    for task in layout.TASKS:
        path = Path(root) / layout.packaged(task) / BENTO_RECORD
        if path.is_file():
            try:
                record = json.loads(path.read_text())
                found[task] = {"model": str(record["model"]), "bento": str(record["bento"])}
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise PromotionError(f"{path} is not a package record ({type(error).__name__}: {error})") from None
    return found


def belongs_to(metric: str, task: str) -> bool:
    """Whether a `dvc metrics show` name (`artifacts/evaluate/gaze/metrics.json:key`) is one task's: a folder of
    its file is named after the task, as every per-task output is (simgan/layout.py)."""
    return task in PurePosixPath(metric.split(":", 1)[0]).parts[:-1]


def promote(previous: dict | None, record: dict, tags: dict[str, dict]) -> dict:
    """The new promotion record: `record` (the retrain's decision: metrics, data hash, git, run id, ...) with
    `serving` pointing each packaged task at `tags[task]`, and the entries it replaces pushed onto `history`.

    A task packaged again with the same bento keeps its entry (and its history); a task not packaged in this
    run (tags without it) keeps what it served.
    """
    previous = previous or {}
    serving = dict(previous.get("serving") or {})
    history = {task: list(entries) for task, entries in (previous.get("history") or {}).items()}
    metrics = record.get("metrics") or {}
    for task, tag in tags.items():
        before = serving.get(task)
        if before and before.get("bento") == tag["bento"] and before.get("model") == tag["model"]:
            continue
        if before:
            history[task] = [before, *history.get(task, [])][:HISTORY_LIMIT]
        serving[task] = {
            "model": tag["model"],
            "bento": tag["bento"],
            "data_hash": record.get("data_hash"),
            "git": record.get("git"),
            "flow_run_id": record.get("flow_run_id"),
            "promoted_at": record.get("finished_at") or now(),
            "metrics": {name: value for name, value in metrics.items() if belongs_to(name, task)},
        }
    return {**record, "serving": serving, "history": history}


def served(root: str | Path, task: str) -> dict:
    """The serving entry of `task` ({"model", "bento", ...}); PromotionError saying what to do when none."""
    record = read(root)
    path = Path(root) / PROMOTED
    if record is None:
        raise PromotionError(
            f"nothing is promoted yet ({path} does not exist): run the retrain flow (`python -m flows.retrain .`), "
            f"or serve the last packaged bento with --latest"
        )
    entry = (record.get("serving") or {}).get(task)
    if not entry or not entry.get("bento"):
        raise PromotionError(
            f"{path} promotes no {task} bento (serving.{task}): run the retrain flow after `dvc repro package@{task}` "
            f"has packaged one, or serve the last packaged bento with --latest"
        )
    return entry


def rollback(root: str | Path, task: str) -> tuple[dict, dict]:
    """Serve the previous promoted model of `task` again: history[task][0] becomes serving[task], and the
    task's metrics in `metrics` become that promotion's (so the next retrain is compared with what is served).
    Returns (the entry rolled back from, the entry now served). Rolling back again goes further back."""
    record = read(root)
    current = served(root, task)
    assert record is not None
    history = {name: list(entries) for name, entries in (record.get("history") or {}).items()}
    if not history.get(task):
        raise PromotionError(
            f"{Path(root) / PROMOTED}: no earlier {task} promotion to roll back to (history.{task} is empty); "
            f"{current['model']} stays served"
        )
    target = history[task].pop(0)
    metrics = {name: value for name, value in (record.get("metrics") or {}).items() if not belongs_to(name, task)}
    metrics.update(target.get("metrics") or {})
    rolled = {"task": task, "from": current, "to_model": target.get("model"), "at": now()}
    write(
        root,
        {
            **record,
            "metrics": metrics,
            "serving": {**record["serving"], task: target},
            "history": history,
            "rollbacks": [rolled, *(record.get("rollbacks") or [])][:HISTORY_LIMIT],
        },
    )
    return current, target
