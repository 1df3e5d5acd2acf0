"""The GX data gate: every suite passes the tiny simulated manifests and names each kind of defect.

One session fixture simulates the tiny profile and prepares both tasks (hand crops 64×64); GX is
imported once, on the first validation. Each suite is fed ONE manifest carrying one defect of each
kind, each in its own rows, and every defect must show up as a failed expectation on the expected
column with the offending row among its examples.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simgan import layout
from simgan.data.prepare import RealSplit, prepare_task
from simgan.data.simulators import simulate, simulated_sources
from simgan.stages import validate
from simgan.validation import describe_failures, label_columns, validate_manifest

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "expectations"
HAND = 64
SIZES = {"gaze": (35, 55), "hand": (HAND, HAND)}
# suite -> (task, domain of the manifest it validates); refined_* validate a refined copy of the synthetic set
CASES = {
    "gaze_synthetic": ("gaze", "synthetic"),
    "gaze_real": ("gaze", "real"),
    "hand_synthetic": ("hand", "synthetic"),
    "hand_real": ("hand", "real"),
    "refined_gaze": ("gaze", "refined"),
    "refined_hand": ("hand", "refined"),
}
LABELLED = ("train", "val", "test")


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """A repository-shaped folder: data/ (tiny profile) and artifacts/prepared/<task>/<domain>/."""
    root = tmp_path_factory.mktemp("validate")
    simulate(root / layout.DATA, profile="tiny", workers=1)
    for task in layout.TASKS:
        prepare_task(
            task,
            root / layout.ARTIFACTS / "prepared",
            simulated_sources(task, root / layout.DATA, SIZES[task]),
            workers=1,
            progress=False,
            split=RealSplit("persons", ("p00", "p01", "p02"))
            if task == "gaze"
            else RealSplit("fraction", test_fraction=0.2),
        )
    return root


@pytest.fixture(scope="session")
def manifests(workspace) -> dict[tuple[str, str], pd.DataFrame]:
    return {
        (task, domain): validate.read_manifest(workspace / layout.prepared(task, domain) / "manifest.csv")
        for task in layout.TASKS
        for domain in layout.DOMAINS
    }


def check(case: str, frame: pd.DataFrame, reference: pd.DataFrame | None = None) -> dict:
    task, domain = CASES[case]
    if domain == "refined":
        return validate_manifest(frame, SUITES / "refined.json", image_size=SIZES[task], reference=reference)
    return validate_manifest(frame, SUITES / f"{case}.json", image_size=SIZES[task])


def grow(frame: pd.DataFrame, rows: int = 20) -> pd.DataFrame:
    """Enough rows for one defect each: copies of the manifest under new ids (same persons, same splits)."""
    copies = [frame] + [frame.assign(id=frame["id"] + f"~{k}") for k in range(1, math.ceil(rows / len(frame)))]
    grown = pd.concat(copies, ignore_index=True)
    grown["row"] = np.arange(len(grown))
    return grown


def labels(frame: pd.DataFrame) -> list[str]:
    return label_columns(frame)


# --------------------------------------------------------------------------- one defect of each kind
# Each takes the frame (modified in place) and `take(labelled=False, split=None)`, which hands out an
# unused row index (of a labelled row / of that split), and returns (expectation type, column, the offending rows
# as {"id": …} or {"row": …}).


def duplicate_id(f, take):
    a, b = take(), take()
    f.loc[b, "id"] = f.loc[a, "id"]
    return "expect_column_values_to_be_unique", "id", [{"row": f.loc[a, "row"]}, {"row": f.loc[b, "row"]}]


def wrong_height(f, take):
    r = take()
    f.loc[r, "height"] += 1
    return "expect_column_values_to_be_between", "height", [{"id": f.loc[r, "id"]}]


def blank_image(f, take):
    r = take()
    f.loc[r, ["pixel_mean", "pixel_std", "pixel_min", "pixel_max"]] = [0.0, 0.0, 0, 0]
    return "expect_column_values_to_be_between", "pixel_std", [{"id": f.loc[r, "id"]}]


def saturated_image(f, take):
    r = take()
    f.loc[r, ["pixel_mean", "pixel_std", "pixel_min", "pixel_max"]] = [254.6, 4.0, 200, 255]
    return "expect_column_values_to_be_between", "pixel_mean", [{"id": f.loc[r, "id"]}]


def null_id(f, take):
    r = take()
    f.loc[r, "id"] = pd.NA
    return "expect_column_values_to_not_be_null", "id", [{"row": f.loc[r, "row"]}]


def null_label(f, take):
    r = take(labelled=True)
    column = labels(f)[1]
    f.loc[r, column] = np.nan
    return "expect_column_values_to_not_be_null", column, [{"id": f.loc[r, "id"]}]


def non_unit_gaze(f, take):
    r = take(labelled=True)
    f.loc[r, "gaze_x"] = f.loc[r, "gaze_x"] + 0.5
    return "expect_column_values_to_be_between", "gaze_norm", [{"id": f.loc[r, "id"]}]


def implausible_pitch(f, take):
    r = take(labelled=True)
    f.loc[r, "pitch_rad"] = math.radians(75)
    return "expect_column_values_to_be_between", "pitch_rad", [{"id": f.loc[r, "id"]}]


def joint_outside_crop(f, take):
    r = take(labelled=True)
    f.loc[r, "joint_05_u"] = HAND + 3.5
    return "expect_column_values_to_be_between", "joint_05_u", [{"id": f.loc[r, "id"]}]


def person_in_both_splits(f, take):
    tested, leaked = take(labelled=True), take()
    f.loc[[tested, leaked], "person"] = "p_leak"
    f.loc[leaked, "split"] = "refiner"
    f.loc[leaked, labels(f)] = np.nan  # a well-formed refiner row: only the person leaks
    return (
        "expect_column_values_to_be_between",
        "person_splits",
        [{"id": f.loc[tested, "id"]}, {"id": f.loc[leaked, "id"]}],
    )


def label_on_refiner_row(f, take):
    r = take(split="refiner")
    f.loc[r, labels(f)[0]] = 12.0  # a real label leaked to the refiner
    return "expect_column_values_to_be_between", "label_count", [{"id": f.loc[r, "id"]}]


def changed_label(f, take):
    r = take()
    f.loc[r, labels(f)[0]] = f.loc[r, labels(f)[0]] + 0.25
    return "expect_column_values_to_be_in_set", "labels_match", [{"id": f.loc[r, "id"]}]


def missing_id(f, take):
    r = take()
    missing = f.loc[r, "id"]
    f.attrs.setdefault("drop", []).append(r)  # dropped once every defect is placed
    return "expect_column_values_to_be_in_set", "id_match", [{"id": missing}]


COMMON = [duplicate_id, wrong_height, blank_image, saturated_image, null_id]
DEFECTS = {
    "gaze_synthetic": COMMON + [null_label, non_unit_gaze, implausible_pitch],
    "gaze_real": COMMON
    + [null_label, non_unit_gaze, implausible_pitch, person_in_both_splits],  # no refiner rows in tiny
    "hand_synthetic": COMMON + [null_label, joint_outside_crop],
    "hand_real": COMMON + [null_label, joint_outside_crop, person_in_both_splits, label_on_refiner_row],
    "refined_gaze": COMMON + [changed_label, missing_id],
    "refined_hand": COMMON + [changed_label, missing_id],
}


@pytest.fixture(scope="session")
def defect_runs(manifests) -> dict[str, tuple[dict, dict]]:
    """suite -> (summary of ONE validation of a manifest with every defect, {defect: expected failure})."""
    runs = {}
    for case, defects in DEFECTS.items():
        task, domain = CASES[case]
        frame = grow(manifests[(task, "synthetic" if domain == "refined" else domain)])
        reference = frame.copy() if domain == "refined" else None
        used: set = set()

        def take(labelled: bool = False, split: str | None = None) -> int:
            splits = [split] if split else LABELLED if labelled else None
            free = [i for i in frame.index if i not in used and (splits is None or frame.loc[i, "split"] in splits)]
            used.add(free[0])
            return free[0]

        expected = {defect.__name__: defect(frame, take) for defect in defects}
        frame = frame.drop(index=frame.attrs.pop("drop", []))
        runs[case] = check(case, frame, reference), expected
    return runs


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case", list(CASES))
def test_clean_manifests_pass_every_suite(case, manifests):
    task, domain = CASES[case]
    if domain == "refined":
        synthetic = manifests[(task, "synthetic")]
        summary = check(case, synthetic.assign(domain="refined"), reference=synthetic)
    else:
        summary = check(case, manifests[(task, domain)])
    assert summary["success"], describe_failures([summary])
    assert summary["failed"] == 0 and summary["passed"] == summary["evaluated"] > 10
    assert summary["image_size"] == list(SIZES[task])


@pytest.mark.parametrize(("case", "defect"), [(c, d.__name__) for c, ds in DEFECTS.items() for d in ds])
def test_each_defect_fails_and_the_failure_names_it(case, defect, defect_runs):
    summary, expected = defect_runs[case]
    expectation, column, rows = expected[defect]
    assert not summary["success"]
    named = [f for f in summary["failures"] if f["expectation"] == expectation and f["column"] == column]
    assert named, f"{defect}: no failed {expectation} on {column}; failures: {describe_failures([summary])}"
    examples = named[0]["examples"]
    for row in rows:
        ((key, value),) = row.items()
        assert any(str(e.get(key)) == str(value) for e in examples), f"{defect}: {row} not among {examples}"


@pytest.mark.parametrize("case", list(CASES))
def test_too_few_rows_fails_the_row_count(case, manifests):
    task, domain = CASES[case]
    frame = manifests[(task, "synthetic" if domain == "refined" else domain)]
    summary = check(case, frame.iloc[:0], reference=frame if domain == "refined" else None)
    assert not summary["success"]
    (row_count,) = [f for f in summary["failures"] if f["expectation"] == "expect_table_row_count_to_be_between"]
    assert row_count["observed_value"] == 0


def test_a_missing_column_is_named(manifests):
    summary = check("gaze_synthetic", manifests[("gaze", "synthetic")].drop(columns=["pixel_std"]))
    columns = [f for f in summary["failures"] if f["expectation"] == "expect_table_columns_to_match_set"]
    assert columns and columns[0]["mismatched"]["missing"] == ["pixel_std"]
    assert "pixel_std" in describe_failures([summary])


def test_parse_size():
    assert validate.parse_size("35x55") == (35, 55) and validate.parse_size("64") == (64, 64)
    assert validate.configured_image_size("hand", REPO / "params.yaml")[0] == (128, 128)
    with pytest.raises(Exception):
        validate.parse_size("35x")


# --------------------------------------------------------------------------- the stage


def copy_prepared(workspace: Path, target: Path, task: str) -> None:
    for domain in layout.DOMAINS:
        (target / layout.prepared(task, domain)).mkdir(parents=True)
        text = (workspace / layout.prepared(task, domain) / "manifest.csv").read_text()
        (target / layout.prepared(task, domain) / "manifest.csv").write_text(text)


@pytest.fixture(scope="session")
def stage_runs(workspace, tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess, pd.DataFrame]]:
    """`python -m simgan.stages.validate --task gaze` on a clean and on a broken copy, run side by side."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("clean", "broken")}
    for folder in folders.values():
        copy_prepared(workspace, folder, "gaze")
    (folders["clean"] / "params.yaml").write_text((REPO / "params.yaml").read_text())  # prepare.gaze.image_size
    path = folders["broken"] / layout.prepared("gaze", "real") / "manifest.csv"
    broken = validate.read_manifest(path)
    broken.loc[3, "id"] = broken.loc[2, "id"]
    broken.loc[5, "height"] = 70
    broken.to_csv(path, index=False)
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(REPO)}
    arguments = {"clean": [], "broken": ["--image-size", "35x55"]}  # clean: the size from params.yaml
    processes = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simgan.stages.validate",
                "--task",
                "gaze",
                "--suites",
                str(SUITES),
                *arguments[name],
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, folder in folders.items()
    }
    runs = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        runs[name] = (
            folders[name],
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr),
            broken,
        )
    return runs


def test_stage_passes_on_prepared_data_and_writes_reports(stage_runs):
    folder, done, _ = stage_runs["clean"]
    assert done.returncode == 0, done.stderr
    assert "validation passed (35×55 images, size from params.yaml: prepare.gaze.image_size)" in done.stdout
    report = json.loads((folder / layout.reports("gaze") / "validation.json").read_text())
    assert report["success"] and set(report["suites"]) == {"gaze_synthetic", "gaze_real"}
    assert all(s["failed"] == 0 and s["rows"] > 0 for s in report["suites"].values())
    page = (folder / layout.reports("gaze") / "data_docs" / "index.html").read_text()
    assert "gaze_real" in page and "expect_column_values_to_be_unique" in page
    assert "http" not in page  # self-contained: opens offline, fetches nothing


def test_stage_fails_on_a_broken_manifest_with_a_readable_list(stage_runs):
    folder, done, frame = stage_runs["broken"]
    assert done.returncode == 1
    assert "suite gaze_real" in done.stderr and "gaze_synthetic" not in done.stderr
    assert (
        f"expect_column_values_to_be_unique column id: 2 of {len(frame)} rows, e.g. id={frame.loc[2, 'id']}"
        in done.stderr
    )
    assert (
        f"expect_column_values_to_be_between column height: 1 of {len(frame)} rows, e.g. id={frame.loc[5, 'id']}"
        in done.stderr
    )
    report = json.loads((folder / layout.reports("gaze") / "validation.json").read_text())
    assert not report["success"] and report["suites"]["gaze_real"]["failed"] == 2
    assert (folder / layout.reports("gaze") / "data_docs" / "index.html").exists()


def test_refined_stage_checks_ids_and_labels_against_the_synthetic_manifest(workspace, tmp_path, monkeypatch, capsys):
    copy_prepared(workspace, tmp_path, "hand")
    synthetic = validate.read_manifest(tmp_path / layout.prepared("hand", "synthetic") / "manifest.csv")
    refined = tmp_path / layout.refined("hand") / "manifest.csv"
    refined.parent.mkdir(parents=True)
    synthetic.assign(domain="refined").to_csv(refined, index=False)
    monkeypatch.chdir(tmp_path)
    assert validate.main(["--task", "hand", "--refined", "--image-size", str(HAND), "--suites", str(SUITES)]) == 0
    assert json.loads((tmp_path / layout.refined_reports("hand") / "validation.json").read_text())["success"]
    assert (tmp_path / layout.refined_reports("hand") / "data_docs" / "index.html").exists()

    broken = synthetic.drop(index=[0])
    broken.loc[1, "joint_03_v"] += 1.0
    broken.to_csv(refined, index=False)
    assert validate.main(["--task", "hand", "--refined", "--image-size", str(HAND), "--suites", str(SUITES)]) == 1
    stderr = capsys.readouterr().err
    assert (
        "expect_column_values_to_be_in_set column id_match: "
        f"1 of {len(synthetic)} rows, e.g. id={synthetic.loc[0, 'id']}" in stderr
    )
    assert f"column labels_match: 1 of {len(synthetic)} rows, e.g. id={synthetic.loc[1, 'id']}" in stderr
