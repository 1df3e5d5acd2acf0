"""validate / validate_refined: gate the manifests with the Great Expectations suites in `expectations/`.

    python -m simgan.stages.validate --task gaze              # prepared synthetic + real manifests
    python -m simgan.stages.validate --task gaze --refined    # refined manifest vs its synthetic input

Each manifest is checked against `expectations/<task>_<domain>.json` (refined: `expectations/refined.json`)
in an ephemeral GX context: nothing under `gx/`, the suites stay plain reviewable JSON. Before validation
some columns are derived in pandas, because GX checks one row (or one column) at a time:

    gaze_norm      |(gaze_x, gaze_y, gaze_z)|                           (gaze manifests)
    label_count    how many label columns the row fills                 (every manifest with labels)
    person_splits  number of splits the row's person appears in; blank  (every manifest with person, split)
                   without a person (GX skips blanks)
    id_match       refined only, on the outer join with the synthetic manifest by id: "both",
                   "refined_only" (an id the synthetic set lacks), "synthetic_only" (an image never refined)
    labels_match   refined only: every label column equals the synthetic one (blank unless id_match is
                   "both"); so the cross-table check is a GX expectation on the merged frame

Suites reference the image size as GX suite parameters `{"$PARAMETER": "image_height"}` and
`{"$PARAMETER": "image_width"}`, filled at run time from `image_size`: the stage takes it from
`--image-size`, else params.yaml's `prepare.<task>.image_size` (the size prepare wrote), else, with no
params file, the size `simgan.data.prepare.default_sources` prepares (35×55 gaze, 224×224 hand).

Writes `<reports>/validation.json` (a DVC metric: per suite success and counts, plus each failed
expectation with its column, unexpected count and a few offending ids) and a self-contained
`<reports>/data_docs/index.html` (GX's own data docs pull jQuery/Bootstrap/Vega from CDNs and a logo
from S3, so they are neither offline nor quiet). Exits 1 with a readable list on stderr when any
expectation fails, so DVC stops before training.

great_expectations is imported inside functions only: its import takes ~3 s.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from simgan import layout
from simgan.io import atomic_write

SUITES = Path("expectations")  # relative to the repository root, like every path in simgan.layout
LABEL_COLUMN = re.compile(r"^(gaze_[xyz]|pitch_rad|yaw_rad|joint_\d\d_[uvd])$")
INDEX_COLUMNS = ("row", "id")  # what identifies an offending row in reports
EXAMPLES = 5  # offending rows listed per failed expectation
LISTED = 15  # failed expectations listed per suite on stderr (all of them are in validation.json)
TEXT_COLUMNS = {"id": "string", "source": "string", "domain": "string", "split": "string", "person": "string"}


class ValidationFailed(RuntimeError):
    """One or more suites failed; the message is the readable list."""


# --------------------------------------------------------------------------- derived columns

def label_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if LABEL_COLUMN.match(str(c))]


def derive_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns the suites check that are functions of several cells (a copy; `frame` is unchanged)."""
    frame = frame.copy()
    if {"gaze_x", "gaze_y", "gaze_z"} <= set(frame.columns):
        xyz = frame[["gaze_x", "gaze_y", "gaze_z"]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        frame["gaze_norm"] = np.sqrt((xyz**2).sum(axis=1))  # NaN where a label is blank (GX skips those)
    labels = label_columns(frame)
    if labels:
        frame["label_count"] = frame[labels].notna().sum(axis=1)
    if {"person", "split"} <= set(frame.columns):
        # a blank person gets a blank count: groupby leaves blank keys out
        frame["person_splits"] = frame.groupby("person")["split"].transform("nunique").astype(np.float64)
    return frame


def join_refined(refined: pd.DataFrame, synthetic: pd.DataFrame) -> pd.DataFrame:
    """Outer join of a refined manifest with the synthetic one it came from, adding id_match and labels_match."""
    labels = label_columns(synthetic)
    left = refined.copy()
    left["id"] = left["id"].astype("string") if "id" in left else pd.Series(pd.NA, index=left.index, dtype="string")
    right = synthetic[["id", *labels]].copy()
    right["id"] = right["id"].astype("string")
    right = right.rename(columns={c: f"{c}__synthetic" for c in labels})
    merged = left.merge(right, on="id", how="outer", indicator="id_match")
    if "row" in merged:  # NaN for synthetic_only rows; keep the others integers in reports
        merged["row"] = pd.to_numeric(merged["row"], errors="coerce").astype("Int64")
    merged["id_match"] = merged["id_match"].map(
        {"both": "both", "left_only": "refined_only", "right_only": "synthetic_only"}).astype(object)
    same = np.ones(len(merged), dtype=bool)
    for column in labels:
        ours = pd.to_numeric(merged[column], errors="coerce") if column in merged else pd.Series(np.nan, index=merged.index)
        theirs = pd.to_numeric(merged[f"{column}__synthetic"], errors="coerce")
        ours, theirs = ours.to_numpy(np.float64), theirs.to_numpy(np.float64)
        same &= np.isclose(ours, theirs, rtol=1e-9, atol=1e-12) | (np.isnan(ours) & np.isnan(theirs))
    merged["labels_match"] = pd.Series(same, index=merged.index, dtype=object).where(merged["id_match"] == "both", None)
    return merged.drop(columns=[f"{c}__synthetic" for c in labels])


# --------------------------------------------------------------------------- GX

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


def validate_manifest(frame: pd.DataFrame, suite_path: Path, *, image_size: tuple[int, int],
                      reference: pd.DataFrame | None = None) -> dict:
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
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES,
                     "unexpected_index_column_names": index_columns}
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": table})
    result = batch.validate(suite, expectation_parameters={"image_height": height, "image_width": width},
                            result_format=result_format)
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
            "column": kwargs.get("column") or ", ".join(filter(None, [kwargs.get("column_A"), kwargs.get("column_B")])) or None,
            "success": bool(item.success),
            "kwargs": _jsonable(kwargs),
            "notes": config.notes,
        }
        if "unexpected_count" in outcome:
            check["unexpected_count"] = int(outcome["unexpected_count"])
            check["element_count"] = int(outcome.get("element_count") or 0)
            check["examples"] = _jsonable(outcome.get("partial_unexpected_index_list") or [])[:EXAMPLES]
            if not check["examples"]:
                check["examples"] = [{"value": v} for v in _jsonable(outcome.get("partial_unexpected_list") or [])][:EXAMPLES]
        if "observed_value" in outcome:
            check["observed_value"] = _jsonable(outcome["observed_value"])
            details = (outcome.get("details") or {}).get("mismatched")
            if details:
                check["mismatched"] = _jsonable(details)
        error = item.exception_info or {}
        if error.get("raised_exception") or any(isinstance(v, dict) and v.get("raised_exception") for v in error.values()):
            messages = [error.get("exception_message")] + [v.get("exception_message") for v in error.values() if isinstance(v, dict)]
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


# --------------------------------------------------------------------------- reporting

def describe_failures(summaries: list[dict]) -> str:
    """The readable list: suite, expectation, column, how many rows, a few offending ids."""
    lines = []
    for summary in summaries:
        if summary["success"]:
            continue
        lines.append(f"suite {summary['suite']} ({summary.get('manifest', '')}): "
                     f"{summary['failed']} of {summary['evaluated']} expectations failed on {summary['rows']} rows")
        for check in summary["failures"][:LISTED]:
            where = (f" column {check['column']}" if check["column"] else "") + _condition_text(check["kwargs"])
            if "error" in check:
                how = f"could not run: {check['error']}"
            elif "unexpected_count" in check:
                how = f"{check['unexpected_count']} of {check['element_count']} rows"
                ids = [_example(e) for e in check.get("examples", [])]
                if ids:
                    how += ", e.g. " + ", ".join(ids)
            elif check.get("mismatched", {}).get("missing"):
                how = "missing columns " + ", ".join(check["mismatched"]["missing"])
            else:
                how = f"observed {json.dumps(check.get('observed_value'))}"
            lines.append(f"  - {check['expectation']}{where}: {how}")
        if summary["failed"] > LISTED:
            lines.append(f"  … and {summary['failed'] - LISTED} more, listed in validation.json")
    return "\n".join(lines)


def _condition_text(kwargs: dict) -> str:
    """" (rows where split == test)" for a suite's row_condition; "" without one."""
    condition = kwargs.get("row_condition")
    if not condition:
        return ""
    if isinstance(condition, dict) and condition.get("type") == "comparison":
        condition = f"{condition['column']['name']} {condition['operator']} {condition['parameter']}"
    elif isinstance(condition, dict):
        condition = condition.get("pass_through_filter") or json.dumps(condition)
    return f" (rows where {condition})"


def _example(example: dict) -> str:
    if example.get("id") is not None:
        return f"id={example['id']}"
    if example.get("row") is not None:
        return f"row={example['row']}"
    return json.dumps(example)


STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:2em}
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f0f0f0}
tr.fail td{background:#fde8e8}.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}
code{font-size:12px}small{color:#666}"""


def render_html(report: dict, title: str) -> str:
    """A self-contained page (no scripts, no external links): one table per suite, every expectation."""
    escape = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>",
             f"<p>Overall: <span class='{'ok' if report['success'] else 'bad'}'>"
             f"{'passed' if report['success'] else 'FAILED'}</span></p>"]
    for name, summary in report["suites"].items():
        status = "<span class='ok'>passed</span>" if summary["success"] else "<span class='bad'>FAILED</span>"
        parts.append(f"<h2>{escape(name)} — {status}</h2><p><small>{escape(summary.get('manifest', ''))} · "
                     f"{summary['rows']} rows · image size {summary['image_size'][0]}×{summary['image_size'][1]} · "
                     f"{summary['passed']}/{summary['evaluated']} expectations passed</small></p>")
        parts.append("<table><tr><th></th><th>expectation</th><th>column</th><th>arguments</th>"
                     "<th>unexpected / rows</th><th>examples</th><th>why</th></tr>")
        for check in summary["checks"]:
            arguments = {k: v for k, v in check["kwargs"].items()
                         if k not in ("column", "column_A", "column_B", "row_condition")}
            if "unexpected_count" in check:
                counted = f"{check['unexpected_count']} / {check['element_count']}"
            elif check["expectation"] == "expect_table_columns_to_match_set":
                missing = check.get("mismatched", {}).get("missing")
                counted = f"missing {', '.join(missing)}" if missing else "all present"
            elif "observed_value" in check:
                counted = f"observed {json.dumps(check['observed_value'])[:200]}"
            else:
                counted = ""
            examples = ", ".join(_example(e) for e in check.get("examples", []))
            if "error" in check:
                examples = f"error: {check['error']}"
            parts.append(
                f"<tr class='{'' if check['success'] else 'fail'}'><td>{'✓' if check['success'] else '✗'}</td>"
                f"<td><code>{escape(check['expectation'])}</code></td>"
                f"<td>{escape((check['column'] or '') + _condition_text(check['kwargs']))}</td>"
                f"<td><code>{escape(json.dumps(arguments))}</code></td><td>{escape(counted)}</td>"
                f"<td>{escape(examples)}</td><td><small>{escape(str(check['notes'] or ''))}</small></td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def write_reports(report: dict, folder: Path, title: str) -> None:
    folder = Path(folder)
    text = json.dumps(report, indent=2) + "\n"
    atomic_write(folder / "validation.json", lambda handle: handle.write(text.encode()))
    page = render_html(report, title)
    atomic_write(folder / "data_docs" / "index.html", lambda handle: handle.write(page.encode()))


# --------------------------------------------------------------------------- stage

def read_manifest(path: Path) -> pd.DataFrame:
    """A manifest with its text columns as text (ids like "1" stay strings)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no manifest; run the stage that writes it first")
    header = pd.read_csv(path, nrows=0).columns
    # only an empty cell is blank (as the stages read it): an id "NA" stays an id
    return pd.read_csv(path, dtype={c: t for c, t in TEXT_COLUMNS.items() if c in header},
                       keep_default_na=False, na_values=[""])


def default_image_size(task: str) -> tuple[int, int]:
    """The size prepare writes by default (35×55 eyes, 224×224 hands): `default_sources` decides."""
    from simgan.data.prepare import default_sources  # imports every format reader (scipy, h5py): only when needed

    size = default_sources(task, layout.DATA)["synthetic"].options["size"]
    return (size, size) if isinstance(size, int) else tuple(size)


def configured_image_size(task: str, params: Path) -> tuple[tuple[int, int], str]:
    """(height, width) from params.yaml's `prepare.<task>.image_size`, or prepare's default without one."""
    if Path(params).is_file():
        from simgan.config import load_params  # pydantic and torch: only when there is a params file

        return tuple(load_params(params).prepare[task].image_size), f"{params}: prepare.{task}.image_size"
    return default_image_size(task), f"prepare's default ({params} not found)"


def parse_size(text: str) -> tuple[int, int]:
    """"35x55" -> (35, 55); "64" -> (64, 64)."""
    try:
        parts = [int(p) for p in text.lower().replace("×", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH or SIZE (e.g. 35x55, 224), got {text!r}")
    return parts[0], parts[1]


def run(task: str, *, image_size: tuple[int, int], refined: bool = False, suites: Path = SUITES) -> dict:
    """Validate the task's manifests, write the reports; raise ValidationFailed when any suite fails."""
    image_size = tuple(image_size)
    summaries = []
    if refined:
        synthetic = read_manifest(layout.prepared(task, "synthetic") / "manifest.csv")
        manifest = layout.refined(task) / "manifest.csv"
        summary = validate_manifest(read_manifest(manifest), Path(suites) / "refined.json", image_size=image_size,
                                    reference=synthetic)
        summaries.append({"manifest": str(manifest), **summary})
        folder, title = layout.refined_reports(task), f"{task}: refined manifest"
    else:
        for domain in layout.DOMAINS:
            manifest = layout.prepared(task, domain) / "manifest.csv"
            summary = validate_manifest(read_manifest(manifest), Path(suites) / f"{task}_{domain}.json",
                                        image_size=image_size)
            summaries.append({"manifest": str(manifest), **summary})
        folder, title = layout.reports(task), f"{task}: prepared manifests"
    report = {"success": all(s["success"] for s in summaries),
              "suites": {s["suite"]: s for s in summaries}}
    write_reports(report, folder, title)
    if not report["success"]:
        raise ValidationFailed(describe_failures(summaries))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgan.stages.validate", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=layout.TASKS)
    parser.add_argument("--refined", action="store_true", help="validate the refined manifest (validate_refined)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file giving prepare.<task>.image_size (default: %(default)s)")
    parser.add_argument("--image-size", type=parse_size, default=None,
                        help="HEIGHTxWIDTH or SIZE the images must have, instead of the params file's")
    parser.add_argument("--suites", type=Path, default=SUITES, help="folder of the suites (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        image_size, origin = ((args.image_size, "--image-size") if args.image_size
                              else configured_image_size(args.task, args.params))
    except ValueError as problem:  # simgan.config.ConfigError: names the dotted key
        print(f"validate@{args.task}: {problem}", file=sys.stderr)
        return 2
    try:
        report = run(args.task, refined=args.refined, image_size=image_size, suites=args.suites)
    except ValidationFailed as failure:
        print(f"validation failed; the data must be fixed before training:\n{failure}", file=sys.stderr)
        return 1
    except FileNotFoundError as missing:  # a manifest or a suite
        print(f"validate@{args.task}: {missing}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{name} {s['passed']}/{s['evaluated']} on {s['rows']} rows" for name, s in report["suites"].items())
    print(f"validation passed ({image_size[0]}×{image_size[1]} images, size from {origin}): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
