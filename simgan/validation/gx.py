"""The one adapter to great_expectations: load a JSON suite, validate a frame, summarise as plain JSON.

Each suite is read into an ephemeral GX context (one per process, progress bars off, analytics off
unless the environment says otherwise), so nothing is written under `gx/` and the suites stay plain
reviewable JSON files. The result is turned into plain JSON types (`summarise`) so that nothing past
this module sees a GX object.

great_expectations is imported inside functions only: its import takes ~3 s.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from simgan.validation.columns import derive_columns, join_refined

INDEX_COLUMNS = ("row", "id")  # what identifies an offending row in reports
EXAMPLES = 5  # offending rows listed per failed expectation


@functools.lru_cache(maxsize=1)
def _batch_definition():
    """One ephemeral context per process, progress bars off, with one in-memory dataframe asset."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("manifests").add_dataframe_asset("manifest")
    return asset.add_batch_definition_whole_dataframe("whole")


def load_suite(suite_path: Path):
    """The suite as GX reads it (`gx.ExpectationSuite(**json)`), unsaved."""
    import great_expectations as gx

    _batch_definition()  # a suite needs an active context
    document = json.loads(Path(suite_path).read_text())
    document.pop("id", None)
    return gx.ExpectationSuite(**document)


def validate_manifest(
    frame: pd.DataFrame, suite_path: Path, *, image_size: tuple[int, int], reference: pd.DataFrame | None = None
) -> dict:
    """Validate one manifest against one suite; return the JSON-able summary (see `summarise`).

    image_size: (height, width) the images must have; fills the suite parameters image_height/image_width.
    reference: for the refined suite, the synthetic manifest the refined one came from (joined by id).
    """
    table = join_refined(frame, reference) if reference is not None else frame
    suite = load_suite(suite_path)
    table = derive_columns(table).reset_index(drop=True)
    # only the columns the suite reads: pandas' row_condition query costs grow with the table's width
    used = _columns_used(suite, table.columns) | set(INDEX_COLUMNS)
    table = table[[c for c in table.columns if c in used]]
    height, width = (int(v) for v in image_size)
    index_columns = [c for c in INDEX_COLUMNS if c in table.columns]
    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": EXAMPLES,
        "unexpected_index_column_names": index_columns,
    }
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": table})
    result = batch.validate(
        suite, expectation_parameters={"image_height": height, "image_width": width}, result_format=result_format
    )
    return summarise(result, suite.name, rows=len(frame), image_size=(height, width))


def _columns_used(suite, columns) -> set[str]:
    """Columns named by the suite's expectations, their column sets and their row conditions."""
    used = set()
    for expectation in suite.expectations:
        kwargs = expectation.configuration.kwargs
        used |= {kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)}
        used |= set(kwargs.get("column_set") or ())
        condition = kwargs.get("row_condition")
        if condition:
            used |= set(re.findall(r"[A-Za-z_]\w*", str(condition))) & set(columns)
    return used


def summarise(result, suite_name: str, *, rows: int, image_size: tuple[int, int]) -> dict:
    """success, counts, and per expectation: type, column, unexpected count, a few offending rows."""
    checks = []
    for item in result.results:
        config = item.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
        outcome = item.result or {}
        check = {
            "expectation": config.type,
            "column": kwargs.get("column")
            or ", ".join(filter(None, [kwargs.get("column_A"), kwargs.get("column_B")]))
            or None,
            "success": bool(item.success),
            "kwargs": _jsonable(kwargs),
            "notes": config.notes,
        }
        if "unexpected_count" in outcome:
            check["unexpected_count"] = int(outcome["unexpected_count"])
            check["element_count"] = int(outcome.get("element_count") or 0)
            check["examples"] = _jsonable(outcome.get("partial_unexpected_index_list") or [])[:EXAMPLES]
            if not check["examples"]:
                check["examples"] = [{"value": v} for v in _jsonable(outcome.get("partial_unexpected_list") or [])][
                    :EXAMPLES
                ]
        if "observed_value" in outcome:
            check["observed_value"] = _jsonable(outcome["observed_value"])
            details = (outcome.get("details") or {}).get("mismatched")
            if details:
                check["mismatched"] = _jsonable(details)
        error = item.exception_info or {}
        if error.get("raised_exception") or any(
            isinstance(v, dict) and v.get("raised_exception") for v in error.values()
        ):
            messages = [error.get("exception_message")] + [
                v.get("exception_message") for v in error.values() if isinstance(v, dict)
            ]
            check["error"] = "; ".join(sorted({m for m in messages if m}))
        checks.append(check)
    failures = [c for c in checks if not c["success"]]
    return {
        "suite": suite_name,
        "success": not failures,
        "rows": int(rows),
        "image_size": list(image_size),
        "evaluated": len(checks),
        "passed": len(checks) - len(failures),
        "failed": len(failures),
        "failures": failures,
        "checks": checks,
    }


def _jsonable(value):
    """Plain JSON types (numpy scalars -> python, NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
