"""The columns the suites check that are functions of several cells, computed in pandas before validation.

GX checks one row (or one column) at a time, so a norm over three columns, a count over the label
columns, a person's number of splits or a comparison with another table is derived here as a column
of its own, which a plain single-column expectation then checks.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

LABEL_COLUMN = re.compile(r"^(gaze_[xyz]|pitch_rad|yaw_rad|joint_\d\d_[uvd])$")


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
        # on how many sides of the test line (test / not test) the row's person appears: refiner and
        # holdout may share persons (both unlabelled, neither the estimators' test); test may not.
        # A blank person gets a blank count: groupby leaves blank keys out.
        side = frame["split"].eq("test").where(frame["split"].notna())
        frame["person_splits"] = side.groupby(frame["person"]).transform("nunique").astype(np.float64)
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
    merged["id_match"] = (
        merged["id_match"]
        .map({"both": "both", "left_only": "refined_only", "right_only": "synthetic_only"})
        .astype(object)
    )
    same = np.ones(len(merged), dtype=bool)
    for column in labels:
        ours = (
            pd.to_numeric(merged[column], errors="coerce")
            if column in merged
            else pd.Series(np.nan, index=merged.index)
        )
        theirs = pd.to_numeric(merged[f"{column}__synthetic"], errors="coerce")
        ours, theirs = ours.to_numpy(np.float64), theirs.to_numpy(np.float64)
        same &= np.isclose(ours, theirs, rtol=1e-9, atol=1e-12) | (np.isnan(ours) & np.isnan(theirs))
    merged["labels_match"] = pd.Series(same, index=merged.index, dtype=object).where(merged["id_match"] == "both", None)
    return merged.drop(columns=[f"{c}__synthetic" for c in labels])
