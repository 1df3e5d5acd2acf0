"""validate / validate_refined: gate the manifests with the Great Expectations suites in `expectations/`.

    python -m simgan.stages.validate --task gaze              # prepared synthetic + real manifests
    python -m simgan.stages.validate --task gaze --refined    # refined manifest vs its synthetic input

Each manifest is checked against `expectations/<task>_<domain>.json` (refined: `expectations/refined.json`)
by `simgan.validation`; the refined one is joined by id with the synthetic manifest it came from.

The image size the suites require comes from `--image-size`, else params.yaml's `prepare.<task>.image_size`
(the size prepare wrote).

Writes `<reports>/validation.json` (a DVC metric: per suite success and counts, plus each failed
expectation with its column, unexpected count and a few offending ids) and a self-contained
`<reports>/data_docs/index.html`. Exits 1 with a readable list on stderr when any expectation fails,
so DVC stops before training; 2 when the params, a manifest or a suite cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from simgan import layout
from simgan.io import atomic_write
from simgan.validation import describe_failures, render_html, validate_manifest

SUITES = Path("expectations")  # relative to the repository root, like every path in simgan.layout
TEXT_COLUMNS = {"id": "string", "source": "string", "domain": "string", "split": "string", "person": "string"}


class ValidationFailed(RuntimeError):
    """One or more suites failed; the message is the readable list."""


def read_manifest(path: Path) -> pd.DataFrame:
    """A manifest with its text columns as text (ids like "1" stay strings)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no manifest; run the stage that writes it first")
    header = pd.read_csv(path, nrows=0).columns
    # only an empty cell is blank (as the stages read it): an id "NA" stays an id
    return pd.read_csv(
        path, dtype={c: t for c, t in TEXT_COLUMNS.items() if c in header}, keep_default_na=False, na_values=[""]
    )


def configured_image_size(task: str, params: Path) -> tuple[tuple[int, int], str]:
    """(height, width) from params.yaml's `prepare.<task>.image_size` (checked whole, like every stage's)."""
    from simgan.config import load_params  # pydantic and the data readers: only when the size is not given

    return tuple(load_params(params).prepare[task].image_size), f"{params}: prepare.{task}.image_size"


def parse_size(text: str) -> tuple[int, int]:
    """ "35x55" -> (35, 55); "64" -> (64, 64)."""
    try:
        parts = [int(p) for p in text.lower().replace("×", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH or SIZE (e.g. 35x55, 224), got {text!r}")
    return parts[0], parts[1]


def write_reports(report: dict, folder: Path, title: str) -> None:
    folder = Path(folder)
    text = json.dumps(report, indent=2) + "\n"
    atomic_write(folder / "validation.json", lambda handle: handle.write(text.encode()))
    page = render_html(report, title)
    atomic_write(folder / "data_docs" / "index.html", lambda handle: handle.write(page.encode()))


def run(task: str, *, image_size: tuple[int, int], refined: bool = False, suites: Path = SUITES) -> dict:
    """Validate the task's manifests, write the reports; raise ValidationFailed when any suite fails."""
    image_size = tuple(image_size)
    summaries = []
    if refined:
        synthetic = read_manifest(layout.prepared(task, "synthetic") / "manifest.csv")
        manifest = layout.refined(task) / "manifest.csv"
        summary = validate_manifest(
            read_manifest(manifest), Path(suites) / "refined.json", image_size=image_size, reference=synthetic
        )
        summaries.append({"manifest": str(manifest), **summary})
        folder, title = layout.refined_reports(task), f"{task}: refined manifest"
    else:
        for domain in layout.DOMAINS:
            manifest = layout.prepared(task, domain) / "manifest.csv"
            summary = validate_manifest(
                read_manifest(manifest), Path(suites) / f"{task}_{domain}.json", image_size=image_size
            )
            summaries.append({"manifest": str(manifest), **summary})
        folder, title = layout.reports(task), f"{task}: prepared manifests"
    report = {"success": all(s["success"] for s in summaries), "suites": {s["suite"]: s for s in summaries}}
    write_reports(report, folder, title)
    if not report["success"]:
        raise ValidationFailed(describe_failures(summaries))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgan.stages.validate", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=layout.TASKS)
    parser.add_argument("--refined", action="store_true", help="validate the refined manifest (validate_refined)")
    parser.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="params file giving prepare.<task>.image_size (default: %(default)s)",
    )
    parser.add_argument(
        "--image-size",
        type=parse_size,
        default=None,
        help="HEIGHTxWIDTH or SIZE the images must have, instead of the params file's",
    )
    parser.add_argument("--suites", type=Path, default=SUITES, help="folder of the suites (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        image_size, origin = (
            (args.image_size, "--image-size") if args.image_size else configured_image_size(args.task, args.params)
        )
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
    counts = ", ".join(
        f"{name} {s['passed']}/{s['evaluated']} on {s['rows']} rows" for name, s in report["suites"].items()
    )
    print(f"validation passed ({image_size[0]}×{image_size[1]} images, size from {origin}): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
