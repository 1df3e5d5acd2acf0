"""The real pipeline under real DVC: a temporary git repo with the project, a tiny profile, `dvc repro`.

Checks what users rely on: every stage runs for both tasks, `dvc status` is then clean, a second
`dvc repro` does nothing, a param change re-runs only the stages that read it, and a change under
data/ re-hashes data.dvc and re-runs that task's stages only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simgan import layout
from simgan.data.simulators import simulate

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ["simgan", "expectations", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"]
pytestmark = pytest.mark.slow


def tiny_params(params: dict) -> dict:
    """The demo profile shrunk to seconds: narrow networks, a few steps, small hand crops."""
    for task in layout.TASKS:
        params["prepare"][task]["workers"] = 1
        params["pretrain"][task].update(refiner_width=4, refiner_blocks=1, batch_size=4, history_capacity=16,
                                        refiner_pretrain_steps=2, discriminator_pretrain_steps=1, device="cpu")
        params["train"][task].update(adversarial_rounds=2, log_every_steps=1)
    params["prepare"]["hand"]["image_size"] = [96, 96]
    params["prepare"]["gaze"]["test_persons"] = ["p00"]
    return params


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "false", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    result = subprocess.run(list(args), cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(repo, sys.executable, "-m", "dvc", *args, check=check)


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("pipeline")
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    params = tiny_params(yaml.safe_load((ROOT / "params.yaml").read_text()))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    simulate(repo / "data", profile="tiny", workers=1)
    run(repo, "git", "init", "-q")
    dvc(repo, "init", "-q")
    dvc(repo, "add", "-q", "data")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "project")
    return repo


@pytest.fixture(scope="module")
def first_repro(repo) -> subprocess.CompletedProcess:
    return dvc(repo, "repro")


def test_repro_runs_every_stage_for_both_tasks(repo, first_repro):
    expected = {f"{stage}@{task}" for stage in layout.STAGES for task in layout.TASKS}
    assert stages_run(first_repro.stdout) == expected
    for task in layout.TASKS:
        assert (repo / layout.refined(task) / "images.npy").is_file()
        assert (repo / layout.trained(task) / "checkpoint.pt").is_file()
        assert (repo / layout.reports(task) / "validation.json").is_file()
    metrics = dvc(repo, "metrics", "show", "--json").stdout
    assert "train/gaze/dvclive/metrics.json" in metrics


def test_second_repro_is_a_no_op_and_status_is_clean(repo, first_repro):
    again = dvc(repo, "repro")
    assert stages_run(again.stdout) == set()
    status = dvc(repo, "status")
    assert "up to date" in status.stdout.lower()


def test_a_param_change_reruns_only_its_dependents(repo, first_repro):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["gaze"]["adversarial_rounds"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = dvc(repo, "repro")
    assert stages_run(result.stdout) == {"train@gaze", "refine@gaze", "validate_refined@gaze"}


def test_changed_data_rehashes_and_reruns_that_task(repo, first_repro):
    before = (repo / "data.dvc").read_text()
    image = next((repo / "data/gaze/synthetic").glob("*.jpg"))
    image.write_bytes(image.read_bytes() + b"\0")  # trailing bytes: still a valid JPEG, a different file
    result = dvc(repo, "repro")
    assert (repo / "data.dvc").read_text() != before  # data.dvc updated with the new hash
    ran = stages_run(result.stdout)
    assert "prepare@gaze" in ran and not any(stage.endswith("@hand") for stage in ran)


def test_validation_failure_stops_before_training(repo, first_repro):
    """A simulator that renders blank frames: validate fails naming the check, and pretrain never starts."""
    from PIL import Image

    for jpg in (repo / "data/gaze/synthetic").glob("*.jpg"):
        with Image.open(jpg) as picture:
            size = picture.size
        Image.new("RGB", size, (128, 128, 128)).save(jpg)
    result = dvc(repo, "repro", "pretrain@gaze", check=False)
    assert result.returncode != 0
    assert "validate@gaze" in stages_run(result.stdout) and "pretrain@gaze" not in stages_run(result.stdout)
    assert "pixel_std" in result.stdout + result.stderr  # the failed expectation is named
