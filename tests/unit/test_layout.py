"""The repository's own files are not hidden by .gitignore (a bare `data/` once hid `simgan/data/`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_source_file_is_git_ignored():
    sources = [str(p.relative_to(ROOT)) for folder in ("simgan", "tests", "benchmarks")
               for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts]
    result = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.split() == []
