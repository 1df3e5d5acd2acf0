"""The repository's own files are not hidden by .gitignore (a bare `data/` once hid `simgan/data/`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_source_file_is_git_ignored():
    sources = [
        str(p.relative_to(ROOT))
        for folder in ("simgan", "tests", "benchmarks")
        for p in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    ]
    result = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.split() == []


def test_dvc_yaml_and_layout_name_the_same_paths():
    """Paths are written once in simgan/layout.py; dvc.yaml must declare exactly those."""
    import yaml

    from simgan import layout

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert tuple(stages) == layout.STAGES + layout.SUMMARY_STAGES
    for name in layout.SUMMARY_STAGES:
        assert stages.pop(name)["cmd"] == f"python -m simgan.stages.{name}"
    for name, stage in stages.items():
        assert stage["foreach"] == list(layout.TASKS), name
        assert stage["do"]["cmd"].startswith(f"python -m simgan.stages.{name.replace('validate_refined', 'validate')} ")
    for task in layout.TASKS:

        def declared(stage: str, key: str) -> set[str]:
            entries = stages[stage]["do"].get(key, [])
            return {(next(iter(e)) if isinstance(e, dict) else e).replace("${item}", task) for e in entries}

        assert declared("prepare", "outs") == {str(layout.prepared(task))}
        assert declared("validate", "metrics") == {str(layout.reports(task) / "validation.json")}
        assert declared("pretrain", "outs") == {str(layout.pretrained(task) / "checkpoint.pt")}
        assert declared("train", "outs") == {str(layout.trained(task) / "checkpoint.pt")}
        assert declared("refine", "outs") == {str(layout.refined(task))}
        assert declared("validate_refined", "metrics") == {str(layout.refined_reports(task) / "validation.json")}
        assert declared("estimate", "outs") == {str(layout.estimated(task) / "models")}
        assert declared("estimate", "metrics") == {str(layout.estimated(task) / "training.json")}
        assert declared("evaluate", "metrics") == {str(layout.evaluated(task) / "metrics.json")}
        assert declared("evaluate", "plots") == {str(layout.evaluated(task) / "curve.csv")}
        assert declared("evaluate", "outs") == {
            str(layout.evaluated(task) / name) for name in ("figures", "results.json")
        }
        assert declared("package", "outs") == {str(layout.packaged(task) / "bento.json")}
        assert f"data/{task}" in declared("prepare", "deps") and str(layout.DATA / task) == f"data/{task}"
