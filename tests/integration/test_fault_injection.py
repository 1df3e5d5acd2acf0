"""Fault injection (issue 16): `kill -9` of the real stage commands at seeded random moments.

One small project (test_dvc_pipeline's `make_repo`, tiny profile) runs prepare, pretrain, train, refine and
package for gaze once, uninterrupted: the reference. Each test then kills one stage (`python -m
simgan.stages.<stage> --task gaze`, SIGKILL to its process group) twice at moments drawn by
`random.Random(0)`, checks that no partial output is visible in between (every declared output absent, the
previous one, or whole), reruns it to the end and compares with the reference. A last test fills a small
tmpfs under `simgan refine` (skipped where this process cannot mount one).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from test_dvc_pipeline import make_repo, run

from simgan import layout
from simgan.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

TASK = "gaze"
STAGES = ("prepare", "pretrain", "train", "refine", "package")
KILLS = 2  # kill points per stage
ROUNDS = 6  # adversarial rounds of train@gaze, one checkpoint per step: a kill mid-training has steps to lose


@dataclass
class Project:
    repo: Path
    reference: Path  # copies of the uninterrupted run's outputs
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each uninterrupted stage
    training_seconds: float = 0.0  # train@gaze from its first checkpoint to its end


def stage_command(stage: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", f"simgan.stages.{stage}", "--task", TASK, *extra]


def stage_env(repo: Path) -> dict[str, str]:
    """As test_dvc_pipeline's `run` sets it: the project's own BentoML store, no telemetry."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "BENTOML_HOME": str(repo / ".bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONUNBUFFERED": "1",
    }


def start(repo: Path, stage: str, log: Path) -> subprocess.Popen:
    """The stage in the background, in its own process group (what it starts dies with it), output in `log`."""
    with open(log, "w") as handle:
        return subprocess.Popen(
            stage_command(stage),
            cwd=repo,
            env=stage_env(repo),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_9(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # it had finished
        pass
    process.wait(60)


def mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def wait_until(process: subprocess.Popen, done, timeout: float = 120) -> bool:
    """Poll until done() (True) or the process has ended (False)."""
    deadline = time.monotonic() + timeout
    while not done():
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return True


def files(folder: Path) -> dict[str, bytes]:
    """Every visible file under `folder`, by relative path."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refiner_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["refiner"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    def longer_training(repo: Path, params: dict) -> None:
        params["train"][TASK].update(adversarial_rounds=ROUNDS, checkpoint_every_steps=1)

    root = tmp_path_factory.mktemp("faults")
    (root / "repo").mkdir()
    project = Project(make_repo(root / "repo", longer_training), root / "reference")
    repo, checkpoint = project.repo, project.repo / layout.trained(TASK) / "checkpoint.pt"
    for stage in STAGES:
        started = time.monotonic()
        process = start(repo, stage, root / f"{stage}.log")
        if stage == "train":
            assert wait_until(process, checkpoint.exists), (root / "train.log").read_text()[-2000:]
            first_checkpoint = time.monotonic()
        assert process.wait(300) == 0, (root / f"{stage}.log").read_text()[-3000:]
        project.seconds[stage] = time.monotonic() - started
        if stage == "train":
            project.training_seconds = time.monotonic() - first_checkpoint
    project.reference.mkdir()
    shutil.copytree(repo / layout.prepared(TASK), project.reference / "prepared")
    shutil.copy2(checkpoint, project.reference / "train.pt")
    shutil.copytree(repo / layout.refined(TASK), project.reference / "refined")
    shutil.copy2(repo / layout.packaged(TASK) / "bento.json", project.reference / "bento.json")
    return project


def assert_prepared_whole(folder: Path) -> None:
    """Each domain's arrays, manifest and quarantine agree with each other and with summary.json."""
    summary = json.loads((folder / "summary.json").read_text())
    for domain in ("synthetic", "real"):
        images = np.load(folder / domain / "images.npy")
        manifest = pd.read_csv(folder / domain / "manifest.csv")
        quarantine = pd.read_csv(folder / domain / "quarantine.csv")
        assert len(images) == len(manifest) == summary[domain]["kept"]
        assert len(manifest) + len(quarantine) == summary[domain]["count_in"]
        assert manifest["split"].value_counts().to_dict() == summary[domain]["splits"]


def test_a_killed_prepare_leaves_the_previous_folder_or_the_new_one_and_a_rerun_completes(project, tmp_path):
    """The stage's folder is swapped in whole (simgan.io.staging_folder): after each kill it is the previous
    run's (here: the same data prepared with another val_fraction) or the finished new one, never a mix."""
    repo, target = project.repo, project.repo / layout.prepared(TASK)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["prepare"][TASK]["val_fraction"] = 0.5
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(repo, *stage_command("prepare", "--params", str(tmp_path / "other.yaml")))
    previous, reference = files(target), files(project.reference / "prepared")
    assert previous != reference  # the two outcomes can be told apart
    rng = random.Random(0)
    for kill in range(KILLS):
        process = start(repo, "prepare", tmp_path / f"kill{kill}.log")
        time.sleep(rng.uniform(0.2, 0.95) * project.seconds["prepare"])
        kill_9(process)
        seen = files(target)
        assert seen in (previous, reference), sorted(seen)
        assert_prepared_whole(target)
    run(repo, *stage_command("prepare"))
    assert files(target) == reference  # byte-identical to the uninterrupted run
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(f".{TASK}.")] == []  # leftovers tidied


def test_a_killed_training_resumes_to_the_weights_of_an_uninterrupted_run(project, tmp_path):
    """train@gaze from the start (no checkpoint of its own), killed twice mid-training (a random share of the
    training left, after the run's first checkpoint): each time its checkpoint is absent or loads whole; later
    runs resume from it, and the last one ends on the reference weights."""
    repo = project.repo
    checkpoint = repo / layout.trained(TASK) / "checkpoint.pt"
    reference = load_checkpoint(project.reference / "train.pt")
    start_step = load_checkpoint(repo / layout.pretrained(TASK) / "checkpoint.pt")["step"]
    total = reference["step"]
    checkpoint.unlink()
    rng, logs = random.Random(0), []
    try:
        for kill in range(KILLS):
            done = load_checkpoint(checkpoint)["step"] if checkpoint.exists() else start_step
            left = project.training_seconds * (total - done) / (total - start_step)
            before = mtime(checkpoint)
            process = start(repo, "train", tmp_path / f"kill{kill}.log")
            if wait_until(process, lambda: mtime(checkpoint) != before):  # this run's first checkpoint
                time.sleep(rng.uniform(0.0, 0.9) * left)
            kill_9(process)
            logs.append((tmp_path / f"kill{kill}.log").read_text())
            if checkpoint.exists():
                state = load_checkpoint(checkpoint)  # whole: a CheckpointError here is a torn write
                assert start_step < state["step"] <= total and state["refiner"].keys() == reference["refiner"].keys()
        rerun = run(repo, *stage_command("train"))
        logs.append(rerun.stderr)
        assert any("resuming at step" in log for log in logs[1:]), logs[-1][-2000:]  # some run continued
        final = refiner_weights(checkpoint)
        for name, weights in reference["refiner"].items():
            assert torch.equal(final[name], weights), name
    finally:
        shutil.copy2(project.reference / "train.pt", checkpoint)  # what the later tests refine with


def test_a_killed_refine_leaves_only_whole_files_and_a_rerun_gives_the_same_bytes(project, tmp_path):
    """refine@gaze with its outputs removed first (as DVC does before running a stage): after each kill, each
    of images.npy and manifest.csv is absent or whole, and they agree when both are there."""
    repo, out = project.repo, project.repo / layout.refined(TASK)
    shutil.rmtree(out)
    rng = random.Random(0)
    for kill in range(KILLS):
        process = start(repo, "refine", tmp_path / f"kill{kill}.log")
        time.sleep(rng.uniform(0.2, 0.95) * project.seconds["refine"])
        kill_9(process)
        images = np.load(out / "images.npy") if (out / "images.npy").exists() else None
        manifest = pd.read_csv(out / "manifest.csv") if (out / "manifest.csv").exists() else None
        if images is not None and manifest is not None:
            assert len(images) == len(manifest)
    run(repo, *stage_command("refine"))
    reference = project.reference / "refined"
    for name in ("images.npy", "manifest.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_a_killed_package_leaves_no_torn_record_and_a_rerun_succeeds(project, tmp_path):
    """package@gaze with its record removed and an empty model store (the model and the bento are built again
    under the kills): bento.json is absent or whole after each kill; the rerun writes the reference record."""
    repo, record = project.repo, project.repo / layout.packaged(TASK) / "bento.json"
    rng = random.Random(0)
    for kill in range(KILLS):
        record.unlink(missing_ok=True)
        shutil.rmtree(repo / ".bentoml", ignore_errors=True)
        process = start(repo, "package", tmp_path / f"kill{kill}.log")
        time.sleep(rng.uniform(0.2, 0.95) * project.seconds["package"])
        kill_9(process)
        if record.exists():
            assert json.loads(record.read_text())["bento"].startswith(f"simgan-{TASK}:")
    run(repo, *stage_command("package"))
    assert record.read_bytes() == (project.reference / "bento.json").read_bytes()


def test_a_bento_half_saved_into_the_store_by_a_killed_package_is_built_again(project):
    repo = project.repo
    tag = json.loads((project.reference / "bento.json").read_text())["bento"]
    entry = repo / ".bentoml" / "bentos" / Path(*tag.split(":"))
    assert entry.is_dir()
    for path in entry.iterdir():  # what a kill inside Store.register leaves: the folder, not yet its files
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    try:
        result = run(repo, *stage_command("package"), check=False)
        assert result.returncode == 0, result.stderr[-1000:]
    finally:
        shutil.rmtree(entry, ignore_errors=True)  # no broken entry for whoever packages next


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs, unmounted afterwards; skipped where this process may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"cannot mount a small tmpfs to fill: {error}")
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs privileges): {made.stderr.strip() or made.returncode}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def refine_cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    checkpoint = str(repo / layout.trained(TASK) / "checkpoint.pt")
    return subprocess.run(
        [sys.executable, "-m", "simgan.cli", "refine", "--checkpoint", checkpoint, *args],
        cwd=repo,
        env=stage_env(repo),
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_no_space(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "No space left on device" in lines[0], lines[0]


def test_refine_onto_a_full_disk_is_one_line_and_leaves_no_partial_set(project, small_disk, tmp_path):
    """`simgan refine` into a 64 KiB tmpfs: ten eyes fit once; a second set beside them does not, and the
    first stays whole; the 24-image array does not fit either. One line each, no file left half-written."""
    images = np.load(project.repo / layout.prepared(TASK, "synthetic") / "images.npy")
    eyes = tmp_path / "eyes"
    eyes.mkdir()
    for number, image in enumerate(images[:10]):
        Image.fromarray(image).save(eyes / f"eye_{number:02d}.png")
    np.save(tmp_path / "eyes.npy", images)

    first = refine_cli(project.repo, str(eyes), str(small_disk / "refined"))
    assert first.returncode == 0, first.stderr[-2000:]
    whole = files(small_disk / "refined")
    assert len(whole) == 10

    assert_one_line_no_space(refine_cli(project.repo, str(eyes), str(small_disk / "again")))
    assert_one_line_no_space(refine_cli(project.repo, str(tmp_path / "eyes.npy"), str(small_disk / "eyes.npy")))
    assert sorted(os.listdir(small_disk)) == ["refined"]  # no partial folder, array or temporary file
    assert files(small_disk / "refined") == whole
