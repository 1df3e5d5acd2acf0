"""The report: the paper's numbers (checked against shared/paper/NOTES.md), ours beside them, any key missing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from simgan.evaluation.figures import line_chart_png
from simgan.evaluation.report import PAPER, paper_reference_points, write_report

PAPER_NUMBERS = (
    "62.3",
    "64.9",
    "69.4",
    "87.2",
    "11.2",
    "7.8",
    "12.2",
    "1.1 ± 0.8",
    "517 / 1000",
    "p = 0.148",
    "162 / 200",
    "+8.8",
    "+22.3",
)


def _notes() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "paper" / "NOTES.md"
        if candidate.is_file():
            return candidate
    return None


def test_paper_numbers_are_the_notes_numbers():
    assert PAPER["gaze"]["within_7deg_pct"] == {
        "synthetic": 62.3,
        "synthetic_4x": 64.9,
        "refined": 69.4,
        "refined_4x": 87.2,
    }
    assert PAPER["gaze"]["mean_error_deg"] == {"synthetic": 11.2, "refined": 7.8, "refined_no_history": 12.2}
    assert (PAPER["gaze"]["pupil_shift_px"]["mean"], PAPER["gaze"]["pupil_shift_px"]["std"]) == (1.1, 0.8)
    assert PAPER["gaze"]["visual_turing_test"]["real_vs_refined"] == {
        "n_correct": 517,
        "n_trials": 1000,
        "p_value": 0.148,
    }
    assert PAPER["hand"]["within_5px_gain_vs_real_pct"] == 8.8
    notes = _notes()
    if notes is None:
        pytest.skip("shared/paper/NOTES.md is not beside this checkout")
    text = notes.read_text()
    for number in ("62.3", "64.9", "69.4", "87.2", "11.2", "7.8", "12.2", "1.1 ± 0.8", "517", "0.148", "162", "8.8"):
        assert number in text, number


def _results(figure: str) -> dict:
    gaze = {"mean_error_deg": 9.5, "median_error_deg": 8.0, "within_7deg_pct": 41.25, "n_images": 600}
    return {
        "meta": {"profile": "demo", "seed": 0},
        "gaze": {
            "estimators": {
                "synthetic": gaze,
                "refined": {**gaze, "within_7deg_pct": 52.5},
                "refined_4x": {**gaze, "within_7deg_pct": 60.0},
            },
            "preservation": {"mean_px": 0.73, "std_px": 0.41, "median_px": 0.6, "n_images": 600},
            "realism": {
                "real_vs_synthetic": {
                    "accuracy": 0.99,
                    "n_test": 400,
                    "n_correct": 396,
                    "p_value": 1e-100,
                    "p_value_greater": 1e-100,
                },
                "real_vs_refined": {
                    "accuracy": 0.7,
                    "n_test": 400,
                    "n_correct": 280,
                    "p_value": 1e-15,
                    "p_value_greater": 5e-16,
                },
            },
            "visual_turing_test": "gaze/visual_turing_test.html",
            "figures": {"curve": figure, "grid": "gaze/missing_grid.png", "turing": "gaze/turing.html"},
        },
        "hand": {
            "estimators": {
                "synthetic": {"mean_error_px": 4.2, "within_5px_pct": 61.0, "n_images": 90, "n_joints": 14},
                "refined": {"mean_error_px": 3.9, "within_5px_pct": 66.5, "n_images": 90, "n_joints": 14},
            },
            "preservation": {
                "joint_depth_grey_mean": 3.0,
                "joint_depth_grey_std": 1.0,
                "joint_depth_mm_mean": 3.5,
                "joint_depth_mm_std": 1.2,
                "silhouette_shift_px_mean": 0.2,
                "silhouette_shift_px_std": 0.1,
                "n_images": 90,
                "n_joints_on_hand": 1200,
            },
        },
    }


def test_report_puts_our_numbers_beside_the_papers(tmp_path):
    line_chart_png(
        {"refined": (np.arange(26), np.linspace(0, 100, 26))},
        tmp_path / "gaze" / "curve.png",
        x_label="x",
        y_label="y",
        title="t",
        reference=paper_reference_points("gaze"),
    )
    md_path, html_path = write_report(_results("gaze/curve.png"), tmp_path)
    assert (md_path, html_path) == (tmp_path / "report.md", tmp_path / "report.html")
    markdown, page = md_path.read_text(), html_path.read_text()
    for text in (markdown, page):
        for number in PAPER_NUMBERS:
            assert number in text, number
        assert "41.2" in text and "52.5" in text and "0.73 ± 0.41" in text  # ours
        assert "+11.2" in text  # our gain: refined − synthetic within 7°
        assert "+5.5" in text  # hand: refined − synthetic at 5 px
        assert "simulated" in text  # the caveat
    assert "![Cumulative error curve](gaze/curve.png)" in markdown
    assert "(gaze/visual_turing_test.html)" in markdown
    assert "](gaze/turing.html)" in markdown and "![" not in markdown.split("turing.html")[0].splitlines()[-1]
    assert '<a href="gaze/turing.html">' in page
    assert page.count("data:image/png;base64,") == 1  # the existing figure embedded ...
    assert 'src="gaze/missing_grid.png"' in page  # ... a missing one linked relatively
    assert not re.search(r"https?://", page)


@pytest.mark.parametrize(
    "results",
    [
        {},
        {"gaze": {}},
        {"gaze": {"estimators": {"synthetic": {}}}},
        {"hand": {"estimators": {"real": None}, "realism": {"real_vs_refined": {}}}},
    ],
)
def test_report_tolerates_missing_tasks_and_keys(tmp_path, results):
    md_path, html_path = write_report(results, tmp_path)
    assert md_path.read_text().startswith("# SimGAN") and "</html>" in html_path.read_text()


def test_report_names_the_estimators_seed_beside_the_gain(tmp_path):
    results = _results("gaze/curve.png")
    results["hand"]["estimator_seed"] = 3  # the gaze section gives none
    md_path, html_path = write_report(results, tmp_path)
    markdown = md_path.read_text()
    hand = markdown.split("## Hand pose (depth)")[1]
    assert "trained at seed 3 (estimate.hand.training.seed)" in hand
    assert "dvc exp run -S estimate.hand.training.seed=1 evaluate@hand" in hand
    assert "trained at seed 3 (estimate.hand.training.seed)" in html_path.read_text()
    assert hand.index("trained at seed 3") > hand.index("gain in joints within 5 px")  # beside the gain table
    assert "estimate.gaze.training.seed" not in markdown  # no seed given, no claim about one
