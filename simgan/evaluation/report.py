"""report.md + report.html: our numbers beside the paper's (from its tables and text), one section per task.

`results` is what the evaluate stage collected (every key optional; missing ones show as "—"):

    {"meta": {name: value, ...},                                  # profile, seed, data, ... (listed as is)
     "gaze": {"estimators": {"synthetic": gaze_metrics(...), "refined": ..., "synthetic_4x": ...,
                             "refined_4x": ..., "refined_no_history": ..., <any other name>: ...},
              "preservation": pupil_shift(...),
              "realism": {"real_vs_synthetic": two_sample_test(...), "real_vs_refined": ...},
              "visual_turing_test": "relative/path.html",
              "figures": {"curve": "relative/path.png", "grid": "relative/path.png", ...}},
     "hand": {"estimators": {"synthetic": hand_metrics(...), "refined": ..., "real": ..., ...},
              "preservation": hand_preservation(...), "realism": {...}, "figures": {...}}}

Each task may also give "estimator_seed", the seed both of its estimators were trained at; the report names it
beside the gain, which is one draw of it.

Estimator names that match PAPER's keys get the paper's value beside them. Figure paths are relative
to `out_dir`: the Markdown links them, the HTML embeds them (base64) so the page stands alone.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from simgan.io import atomic_write

PAPER = {
    "gaze": {
        # % of MPIIGaze test images within 7°, CNN trained on UnityEyes (tables; "4×" = 4× the training data)
        "within_7deg_pct": {"synthetic": 62.3, "synthetic_4x": 64.9, "refined": 69.4, "refined_4x": 87.2},
        # mean angular error (text); refined without the history buffer: the ablation of §3.4
        "mean_error_deg": {"synthetic": 11.2, "refined": 7.8, "refined_no_history": 12.2},
        # pupil centre shift synthetic -> refined, 100 hand-labelled eyes, eye width 55 px (text)
        "pupil_shift_px": {"mean": 1.1, "std": 0.8, "n_images": 100, "eye_width_px": 55},
        # human subjects: correct answers (text); p = 0.148 is the one-sided binomial P(X >= 517)
        "visual_turing_test": {
            "real_vs_refined": {"n_correct": 517, "n_trials": 1000, "p_value": 0.148},
            "real_vs_synthetic": {"n_correct": 162, "n_trials": 200},
        },
    },
    "hand": {
        # NYU, stacked hourglass: refined synthetic beats training on real images by 8.8 points at 5 px (text)
        "within_5px_gain_vs_real_pct": 8.8,
        "crop_px": 224,
    },
}

CAVEAT = (
    "Our numbers come from the embedded simulated default data (the simgan simulators' UnityEyes- and "
    "MPIIGaze-format eyes and NYU-format hands) and the CPU demo profile; the paper's come from UnityEyes, "
    "MPIIGaze and NYU with its full schedules. Compare directions and gaps, not absolute values."
)


def paper_reference_points(task: str) -> dict[str, tuple[list[float], list[float]]]:
    """The paper's curve points for `figures.line_chart_png(reference=...)`: gaze, % within 7° per estimator."""
    # the hand paper gives no absolute curve values, only a gain: no points
    at_7deg = PAPER.get(task, {}).get("within_7deg_pct", {})
    return {f"{name} (paper)": ([7.0], [value]) for name, value in at_7deg.items()}


# ------------------------------------------------------------------------------------ formatting


def _number(value, digits: int = 1, suffix: str = "") -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "—"
    if isinstance(value, int):
        return f"{value}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def _p(value) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}"


def _pm(mean, std, digits: int = 2) -> str:
    if _number(mean) == "—":
        return "—"
    return f"{_number(mean, digits)} ± {_number(std, digits)}" if _number(std) != "—" else _number(mean, digits)


def _difference(a, b, digits: int = 1) -> str:
    if _number(a) == "—" or _number(b) == "—":
        return "—"
    return f"{a - b:+.{digits}f}"


# ------------------------------------------------------------------------------------ sections
# A section is a list of blocks: ("h2"|"h3"|"p", text), ("table", headers, rows), ("figure", title, path),
# ("link", text, path); render_markdown / render_html turn the same blocks into each format.


def _gaze_blocks(gaze: dict) -> list[tuple]:
    paper = PAPER["gaze"]
    blocks: list[tuple] = [("h2", "Gaze (eyes)"), *_skipped_blocks(gaze)]
    estimators = gaze.get("estimators") or {}
    if estimators:
        rows = []
        paper_only = [n for n in (*paper["within_7deg_pct"], *paper["mean_error_deg"]) if n not in estimators]
        for name, m in {**estimators, **dict.fromkeys(paper_only)}.items():  # the paper's rows we lack: ours "—"
            m = m or {}
            rows.append(
                [
                    name,
                    _number(m.get("mean_error_deg"), 2),
                    _number(m.get("median_error_deg"), 2),
                    _number(m.get("within_7deg_pct")),
                    _number(m.get("n_images")),
                    _number(paper["within_7deg_pct"].get(name)),
                    _number(paper["mean_error_deg"].get(name)),
                ]
            )
        blocks += [
            ("h3", "Gaze estimation on the real test split"),
            (
                "table",
                [
                    "estimator (trained on)",
                    "mean error (°)",
                    "median error (°)",
                    "within 7° (%)",
                    "images",
                    "paper: within 7° (%)",
                    "paper: mean error (°)",
                ],
                rows,
            ),
        ]
        within = {name: (m or {}).get("within_7deg_pct") for name, m in estimators.items()}
        gains = []
        for label, ours_a, ours_b, paper_a, paper_b in (
            ("refined − synthetic", "refined", "synthetic", "refined", "synthetic"),
            ("refined 4× − synthetic 4×", "refined_4x", "synthetic_4x", "refined_4x", "synthetic_4x"),
        ):
            gains.append(
                [
                    label,
                    _difference(within.get(ours_a), within.get(ours_b)),
                    _difference(paper["within_7deg_pct"][paper_a], paper["within_7deg_pct"][paper_b]),
                ]
            )
        blocks.append(("table", ["gain in images within 7° (points)", "ours", "paper"], gains))
        blocks += _seed_blocks(gaze, "gaze")
    shift = gaze.get("preservation") or {}
    if shift:
        blocks += [
            ("h3", "Annotation preservation: pupil centre shift, synthetic → refined"),
            (
                "table",
                ["", "shift (px at eye width 55), mean ± std", "median (px)", "images", "how"],
                [
                    [
                        "ours",
                        _pm(shift.get("mean_px"), shift.get("std_px")),
                        _number(shift.get("median_px"), 2),
                        _number(shift.get("n_images")),
                        "deterministic pupil locator",
                    ],
                    [
                        "paper",
                        _pm(paper["pupil_shift_px"]["mean"], paper["pupil_shift_px"]["std"], 1),
                        "—",
                        _number(paper["pupil_shift_px"]["n_images"]),
                        "hand-labelled",
                    ],
                ],
            ),
        ]
    blocks += _realism_blocks(gaze, paper["visual_turing_test"])
    blocks += _border_blocks(gaze)
    blocks += _figure_blocks(gaze)
    return blocks


def _hand_blocks(hand: dict) -> list[tuple]:
    paper = PAPER["hand"]
    blocks: list[tuple] = [("h2", "Hand pose (depth)"), *_skipped_blocks(hand)]
    estimators = hand.get("estimators") or {}
    if estimators:
        rows = [
            [
                name,
                _number((m or {}).get("mean_error_px"), 2),
                _number((m or {}).get("within_5px_pct")),
                _number((m or {}).get("n_images")),
                _number((m or {}).get("n_joints")),
            ]
            for name, m in estimators.items()
        ]
        blocks += [
            ("h3", "Hand pose estimation on the real test split"),
            (
                "p",
                (
                    f"Errors in pixels of our input crop; the paper's crops are {paper['crop_px']}×"
                    f"{paper['crop_px']} (simgan.evaluation.hand.scale_to_paper_px converts)."
                ),
            ),
            (
                "table",
                ["estimator (trained on)", "mean error (px)", "joints within 5 px (%)", "images", "joints per image"],
                rows,
            ),
        ]
        within = {name: (m or {}).get("within_5px_pct") for name, m in estimators.items()}
        gains = [["refined − synthetic", _difference(within.get("refined"), within.get("synthetic")), "—"]]
        gains.append(
            [
                "refined − real",
                _difference(within.get("refined"), within.get("real")),
                f"{paper['within_5px_gain_vs_real_pct']:+.1f}",
            ]
        )
        blocks.append(("table", ["gain in joints within 5 px (points)", "ours", "paper"], gains))
        blocks += _seed_blocks(hand, "hand")
    keep = hand.get("preservation") or {}
    if keep:
        blocks += [
            ("h3", "Annotation preservation: synthetic → refined"),
            (
                "table",
                ["measure", "ours, mean ± std", "paper"],
                [
                    [
                        "|Δ depth| at the joints (mm)",
                        _pm(keep.get("joint_depth_mm_mean"), keep.get("joint_depth_mm_std")),
                        "—",
                    ],
                    [
                        "|Δ depth| at the joints (grey levels)",
                        _pm(keep.get("joint_depth_grey_mean"), keep.get("joint_depth_grey_std")),
                        "—",
                    ],
                    [
                        "hand silhouette centroid shift (px)",
                        _pm(keep.get("silhouette_shift_px_mean"), keep.get("silhouette_shift_px_std")),
                        "—",
                    ],
                ],
            ),
            (
                "p",
                (
                    f"{_number(keep.get('n_images'))} images, "
                    f"{_number(keep.get('n_joints_on_hand'))} joints on the hand. "
                    "The paper reports no number for hands."
                ),
            ),
        ]
    blocks += _realism_blocks(hand, None)
    blocks += _border_blocks(hand)
    blocks += _figure_blocks(hand)
    return blocks


def _seed_blocks(task: dict, task_name: str) -> list[tuple]:
    """Which seed trained both estimators: a gain of one training is one draw of that seed, not the recipe's."""
    seed = task.get("estimator_seed")
    if seed is None:
        return []
    return [
        (
            "p",
            (
                f"Both estimators were trained at seed {seed} (estimate.{task_name}.training.seed), so the gain is "
                "one draw of that seed: estimators trained on one set and tested on another spread from seed to "
                "seed, on the embedded default's hands by several points (docs/results.md). For the spread, run "
                f"other seeds: dvc exp run -S estimate.{task_name}.training.seed=1 evaluate@{task_name}."
            ),
        )
    ]


def _border_blocks(task: dict) -> list[tuple]:
    """One line on lines drawn along the border (simgan.evaluation.artifacts.border_lines)."""
    borders = task.get("border_lines") or {}
    if not borders:
        return []
    scores = ", ".join(f"{name} {_number((r or {}).get('score'), 1)}" for name, r in borders.items())
    verdict = "the refiner draws lines along the border" if task.get("frame") else "no frame of lines along the border"
    what = "Border lines (step at the border over the interior's; real MPIIGaze eyes ≈ 4)"
    return [("p", f"{what}: {scores}: {verdict}.")]


def _skipped_blocks(task: dict) -> list[tuple]:
    """One line saying what was not measured and why (no labelled real test images): absent, never zero."""
    return [("p", f"Estimator comparison skipped: {task['skipped']}")] if task.get("skipped") else []


def _realism_blocks(task: dict, human: dict | None) -> list[tuple]:
    blocks: list[tuple] = []
    realism = task.get("realism") or {}
    if realism:
        rows = []
        for name, r in realism.items():
            r = r or {}
            correct = f"{_number(r.get('n_correct'))} / {_number(r.get('n_test'))}"
            paper = "—"
            if human and name in human:
                h = human[name]
                paper = f"{h['n_correct']} / {h['n_trials']} ({100 * h['n_correct'] / h['n_trials']:.1f} %)"
                paper += f", p = {h['p_value']} (one-sided)" if "p_value" in h else ""
            accuracy = r.get("accuracy")
            accuracy_pct = 100 * accuracy if isinstance(accuracy, (int, float)) else None
            budgets = (r.get("auc") or {}).get("budgets") or {}
            auc = " / ".join(f"{_pm(v.get('mean'), v.get('std'))}" for v in budgets.values()) or "—"
            kid = r.get("kid") or {}
            rows.append(
                [
                    name.replace("_", " "),
                    _number(accuracy_pct),
                    correct,
                    _p(r.get("p_value")),
                    _p(r.get("p_value_greater")),
                    f"{auc} ({', '.join(budgets)} steps)" if budgets else auc,
                    _pm(kid.get("mean"), kid.get("std"), 3) if kid else "—",
                    paper,
                ]
            )
        blocks += [
            ("h3", "Realism: classifier two-sample test on held-out images"),
            (
                "p",
                (
                    "A fresh small CNN learns to tell the two sets apart; 50 % held-out accuracy means it "
                    "cannot (indistinguishable). p: binomial test of the correct count against chance. AUC: "
                    "the same classifier on per-image standardised images (brightness and contrast do not "
                    "count), held-out ROC AUC after short training budgets, mean ± std over seeds (0.5: "
                    "indistinguishable). KID: kernel distance in a fixed random-CNN feature space (0: same "
                    "distribution). The paper's column is its human visual Turing test (a weaker judge)."
                ),
            ),
            (
                "table",
                [
                    "sets",
                    "accuracy (%)",
                    "correct / held out",
                    "p (two-sided)",
                    "p (one-sided)",
                    "AUC, standardised",
                    "KID",
                    "paper: humans correct",
                ],
                rows,
            ),
        ]
    if task.get("visual_turing_test"):
        blocks.append(
            ("link", "Visual Turing test page (open it and classify the images yourself)", task["visual_turing_test"])
        )
    return blocks


def _figure_blocks(task: dict) -> list[tuple]:
    figures = task.get("figures") or {}
    titles = {
        "curve": "Cumulative error curve",
        "grid": "Synthetic | refined | real",
        "turing": "Visual Turing test page (open it and classify the images yourself)",
    }
    # a page (the visual Turing test) is linked, an image shown
    return [
        (
            "link" if str(path).lower().endswith((".html", ".htm")) else "figure",
            titles.get(name, name.replace("_", " ")),
            path,
        )
        for name, path in figures.items()
        if path
    ]


def _blocks(results: dict) -> list[tuple]:
    blocks: list[tuple] = [("h1", "SimGAN: evaluation report"), ("p", CAVEAT)]
    meta = results.get("meta") or {}
    if meta:
        blocks.append(("table", ["setting", "value"], [[str(k), str(v)] for k, v in meta.items()]))
    if results.get("gaze"):
        blocks += _gaze_blocks(results["gaze"])
    if results.get("hand"):
        blocks += _hand_blocks(results["hand"])
    if not (results.get("gaze") or results.get("hand")):
        blocks.append(("p", "No task results were given."))
    return blocks


# ------------------------------------------------------------------------------------ rendering


def _markdown_row(cells) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def render_markdown(blocks: list[tuple]) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines.append(_markdown_row(headers))
            lines.append("|" + "|".join(["---"] * len(headers)) + "|")
            lines += [_markdown_row(row) for row in rows]
            lines.append("")
        elif kind == "figure":
            lines += [f"![{block[1]}]({block[2]})", ""]
        elif kind == "link":
            lines += [f"[{block[1]}]({block[2]})", ""]
    return "\n".join(lines)


def render_html(blocks: list[tuple], out_dir: Path) -> str:
    body: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            body.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block[1])
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in block[2]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "figure":
            title, path = block[1], block[2]
            file = out_dir / path
            if file.is_file() and file.suffix.lower() == ".png":
                source = "data:image/png;base64," + base64.b64encode(file.read_bytes()).decode("ascii")
            else:
                source = html.escape(str(path))  # not there (yet): link it relatively
            body.append(
                f'<figure><img src="{source}" alt="{html.escape(title)}">'
                f"<figcaption>{html.escape(title)}</figcaption></figure>"
            )
        elif kind == "link":
            body.append(f'<p><a href="{html.escape(str(block[2]))}">{html.escape(block[1])}</a></p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>SimGAN evaluation report</title>\n'
        "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.8em 0}"
        "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%}"
        "figure{margin:1em 0}figcaption{color:#666}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(results: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write out_dir/report.md and out_dir/report.html (atomically); returns their paths."""
    out_dir = Path(out_dir)
    blocks = _blocks(results or {})
    markdown, page = render_markdown(blocks), render_html(blocks, out_dir)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write(md_path, lambda handle: handle.write(markdown.encode("utf-8")))
    atomic_write(html_path, lambda handle: handle.write(page.encode("utf-8")))
    return md_path, html_path
