"""Stage report: both tasks' evaluation in one page, our numbers beside the paper's
(artifacts/reports/report.md and report.html)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from simgan import layout
from simgan.evaluation.report import write_report


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m simgan.stages.report", description=__doc__)
    parser.parse_args()
    out = layout.report()
    results = {}
    for task in layout.TASKS:
        path = layout.evaluated(task) / "results.json"
        if not path.is_file():
            raise SystemExit(f"report: {path} is missing; run `dvc repro evaluate@{task}` first")
        task_results = json.loads(path.read_text())
        # figure paths: relative to the evaluate folder there, relative to the report here
        task_results["figures"] = {
            name: os.path.relpath(layout.evaluated(task) / relative, out)
            for name, relative in task_results.get("figures", {}).items()
        }
        results[task] = task_results
    markdown, html = write_report(results, out)
    print(f"report: {markdown} and {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
