"""The real pipeline under real DVC: a temporary git repo with the project, a tiny profile, `dvc repro`.

Checks what users rely on: every stage runs for both tasks, `dvc status` is then clean, a second
`dvc repro` does nothing, a param change re-runs only the stages that read it, and a change under
data/ re-hashes data.dvc and re-runs that task's stages only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows.dvc_stages import DVC
from simgan import layout
from simgan.config import read_yaml
from simgan.data.simulators import simulate
from simgan.profiles import merge

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = [
    "simgan",
    "expectations",
    "dvc.yaml",
    "params.yaml",
    ".dvcignore",
    ".gitignore",
    "service.py",
    "bentofile.yaml",
]
pytestmark = pytest.mark.slow


def tiny_params(params: dict) -> dict:
    """The demo profile shrunk to seconds (profiles/tiny.yaml): narrow networks, a few steps, small hand crops."""
    return merge(params, read_yaml(ROOT / "profiles" / "tiny.yaml"))


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "BENTOML_HOME": str(repo / ".bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
    }  # the package stage's store
    result = subprocess.run(list(args), cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(repo, sys.executable, "-m", "dvc", *args, check=check)


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_repo(repo: Path, customise=None) -> Path:
    """The project (tiny profile) in a fresh git repository with DVC and simulated data/, committed.

    customise(repo, params): changes data/ and the params dict before anything is committed."""
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    params = tiny_params(yaml.safe_load((ROOT / "params.yaml").read_text()))
    simulate(repo / "data", profile="tiny", workers=1)
    if customise is not None:
        customise(repo, params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(repo, "git", "init", "-q")
    dvc(repo, "init", "-q")
    dvc(repo, "add", "-q", "data")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "project")
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("pipeline"))


@pytest.fixture(scope="module")
def first_repro(repo) -> subprocess.CompletedProcess:
    return dvc(repo, "repro")


def downstream(task: str, *stages: str) -> set[str]:
    """Those stages of `task`, and the cross-task report stage that reads every evaluation."""
    return {f"{stage}@{task}" for stage in stages} | set(layout.SUMMARY_STAGES)


def test_repro_runs_every_stage_for_both_tasks(repo, first_repro):
    expected = {f"{stage}@{task}" for stage in layout.STAGES for task in layout.TASKS} | set(layout.SUMMARY_STAGES)
    assert stages_run(first_repro.stdout) == expected
    for task in layout.TASKS:
        assert (repo / layout.refined(task) / "images.npy").is_file()
        assert (repo / layout.trained(task) / "checkpoint.pt").is_file()
        assert (repo / layout.reports(task) / "validation.json").is_file()
        for name in ("synthetic", "refined"):
            assert (repo / layout.estimated(task) / "models" / name / "checkpoint.pt").is_file()
        evaluation = json.loads((repo / layout.evaluated(task) / "metrics.json").read_text())
        assert {"synthetic", "refined", "refined_within_pct", "preservation", "realism"} <= set(evaluation)
        assert (repo / layout.evaluated(task) / "figures" / "turing.html").is_file()
    report = (repo / layout.report() / "report.md").read_text()
    assert "69.4" in report  # our numbers beside the paper's
    metrics = dvc(repo, "metrics", "show", "--json").stdout
    assert "train/gaze/dvclive/metrics.json" in metrics


def test_second_repro_is_a_no_op_and_status_is_clean(repo, first_repro):
    again = dvc(repo, "repro")
    assert stages_run(again.stdout) == set()
    status = dvc(repo, "status")
    assert "up to date" in status.stdout.lower()


def test_plots_show_renders_the_training_curves_offline(repo, first_repro):
    """`dvc plots show --json` (the HTML form loads vega from a CDN): each task's dvclive curves, with data."""
    shown = json.loads(dvc(repo, "plots", "show", "--json").stdout)
    assert set(shown) == {"data"}, shown.get("errors")  # DVC reports unreadable plots under "errors"
    for task in layout.TASKS:
        curves = {name: specs for name, specs in shown["data"].items() if f"train/{task}/dvclive/plots/metrics" in name}
        assert any(name.endswith("/discriminator_loss.tsv") for name in curves), sorted(shown["data"])
        for name, specs in curves.items():
            points = [point for spec in specs for point in spec["content"]["data"]["values"]]
            assert points and all("step" in point for point in points), name  # a curve with points over steps


def test_train_runs_on_two_processes_when_the_environment_asks(repo, first_repro, monkeypatch):
    """SIMGAN_NPROC=2: `dvc repro` runs train@gaze's one command, which re-runs itself under torchrun (two ranks,
    gloo); rank 0 writes the checkpoint with both history shards. The process count is not in the stage's hash:
    dvc.lock keeps the same command and params, and without the variable the stage is up to date."""
    from simgan.training.checkpoint import load_checkpoint

    before = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train@gaze"]
    monkeypatch.setenv("SIMGAN_NPROC", "2")
    result = dvc(repo, "repro", "-f", "-s", "train@gaze")
    output = result.stdout + result.stderr
    assert stages_run(result.stdout) == {"train@gaze"}
    assert "torch.distributed.run --standalone --nproc_per_node=2 -m simgan.stages.train" in output, output[-2000:]
    state = load_checkpoint(repo / layout.trained("gaze") / "checkpoint.pt")
    assert len(state["history_shards"]["sizes"]) == 2 and state["step"] == 5  # tiny: 2 + 1 pretraining, 2 rounds
    after = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train@gaze"]
    assert (after["cmd"], after["params"]) == (before["cmd"], before["params"])
    monkeypatch.delenv("SIMGAN_NPROC")
    assert "up to date" in dvc(repo, "status", "train@gaze").stdout.lower()


def test_estimators_train_side_by_side_when_the_environment_lists_devices(repo, first_repro, monkeypatch):
    """SIMGAN_ESTIMATE_DEVICES=cpu,cpu: estimate@gaze trains its estimators (synthetic, refined) in two processes at
    once, one device each; the same training sets, steps and losses as one after another, the curves written in
    the set order, and the device list is not in the stage's hash."""
    out = repo / layout.estimated("gaze")
    before = json.loads((out / "training.json").read_text())
    curves_before = sorted(p.relative_to(out).as_posix() for p in (out / "dvclive").rglob("*.tsv"))
    lock_before = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["estimate@gaze"]
    monkeypatch.setenv("SIMGAN_ESTIMATE_DEVICES", "cpu,cpu")
    result = dvc(repo, "repro", "-f", "-s", "estimate@gaze")
    assert stages_run(result.stdout) == {"estimate@gaze"}
    assert "2 trainings on 2 of cpu, cpu, side by side" in result.stdout, result.stdout[-2000:]
    after = json.loads((out / "training.json").read_text())
    assert list(after) == list(before) == ["synthetic", "refined"]
    for name in before:
        assert (after[name]["images"], after[name]["steps"]) == (before[name]["images"], before[name]["steps"])
        assert after[name]["final_loss"] == pytest.approx(before[name]["final_loss"], rel=1e-3)
    assert sorted(p.relative_to(out).as_posix() for p in (out / "dvclive").rglob("*.tsv")) == curves_before
    lock_after = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["estimate@gaze"]
    assert (lock_after["cmd"], lock_after["params"]) == (lock_before["cmd"], lock_before["params"])


def test_a_param_change_reruns_only_its_dependents(repo, first_repro):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["gaze"]["adversarial_rounds"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = dvc(repo, "repro")
    assert stages_run(result.stdout) == downstream(
        "gaze", "train", "refine", "validate_refined", "estimate", "evaluate", "package"
    )
    params["evaluate"]["hand"]["turing_pairs"] = 6
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # only the Turing page changes: results.json is byte-identical, so DVC does not re-run the report
    assert stages_run(dvc(repo, "repro").stdout) == {"evaluate@hand"}


def test_changed_data_rehashes_and_reruns_that_task(repo, first_repro):
    before = (repo / "data.dvc").read_text()
    image = next((repo / "data/gaze/synthetic").glob("*.jpg"))
    image.write_bytes(image.read_bytes() + b"\0")  # trailing bytes: still a valid JPEG, a different file
    result = dvc(repo, "repro")
    assert (repo / "data.dvc").read_text() != before  # data.dvc updated with the new hash
    ran = stages_run(result.stdout)
    assert "prepare@gaze" in ran and not any(stage.endswith("@hand") for stage in ran)


def start_repro(repo: Path, log_path: Path, *targets: str) -> subprocess.Popen:
    """`dvc repro` in the background, in its own process group, its output in `log_path`."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with open(log_path, "w") as log:
        # flows' launcher: Ctrl-C works even when pytest itself was started in the background
        return subprocess.Popen(
            [*DVC, "repro", *targets], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for(process: subprocess.Popen, log_path: Path, done, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert process.poll() is None and time.monotonic() < deadline, (
            f"waiting for {what}:\n" + log_path.read_text()[-2000:]
        )
        time.sleep(0.2)


def test_a_second_run_is_refused_and_a_killed_run_resumes_from_its_checkpoint(repo, first_repro):
    """Two `dvc repro` in one workspace: DVC's lock refuses the second with a clear message. The first,
    killed with Ctrl-C mid-training, leaves its checkpoint (a persistent output), and the next `dvc repro`
    of the same params continues from it. With the params back, train@hand trains again from the start
    (the checkpoint left behind is of another schedule) and gets the very same model back."""
    checkpoint = repo / layout.trained("hand") / "checkpoint.pt"
    model_before = hashlib.md5(checkpoint.read_bytes()).hexdigest()
    original = (repo / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["train"]["hand"]["adversarial_rounds"] = 100_000  # long enough to still hold the lock below
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log_path = repo.parent / "first-run.log"
    written_before = checkpoint.stat().st_mtime_ns
    first = start_repro(repo, log_path, "train@hand")
    try:
        wait_for(first, log_path, lambda: "Running stage 'train@hand'" in log_path.read_text(), "the stage to start")
        second = dvc(repo, "repro", check=False)
        assert second.returncode != 0
        refusal = second.stdout + second.stderr
        # which run holds the lock, by PID and command line
        assert "is busy" in refusal and f"(PID {first.pid})" in refusal and "repro train@hand" in refusal, refusal
        assert first.poll() is None  # the first run was not disturbed
        wait_for(
            first,
            log_path,
            lambda: checkpoint.exists() and checkpoint.stat().st_mtime_ns != written_before,
            "a checkpoint of the long run",
        )
    finally:
        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C: the trainer writes its checkpoint, DVC releases its lock
        first.wait(60)

    again = start_repro(repo, log_path, "train@hand")
    try:
        wait_for(again, log_path, lambda: "train@hand: resuming at step" in log_path.read_text(), "the resume")
    finally:
        os.killpg(again.pid, signal.SIGINT)
        again.wait(60)
    resumed_at = int(re.search(r"resuming at step (\d+)", log_path.read_text()).group(1))
    assert resumed_at > 3  # past where train starts (pretraining ends at step 3): no training was lost

    (repo / "params.yaml").write_text(original)
    rerun = dvc(repo, "repro")
    assert stages_run(rerun.stdout) <= {"train@hand"}
    assert "resuming" not in rerun.stdout + rerun.stderr
    assert hashlib.md5(checkpoint.read_bytes()).hexdigest() == model_before
    assert "up to date" in dvc(repo, "status").stdout.lower()


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
