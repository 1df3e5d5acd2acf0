"""Prefect flows over a small temporary DVC project: order, failure and resume, retrain, promotion.

The project (not the real pipeline) is a git + DVC repository with data/ tracked by data.dvc and a dvc.yaml
with two foreach groups of cheap shell stages that append their name to log.txt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Before Prefect is imported (it creates its home when imported): the home in a temporary folder, no telemetry.
os.environ["PREFECT_HOME"] = _PREFECT_HOME = tempfile.mkdtemp(prefix="prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DVC_NO_ANALYTICS"] = "1"

import pytest
from dvc.repo import Repo
from prefect.artifacts import Artifact
from prefect.testing.utilities import prefect_test_harness

# `flows` is not an installed package: importable from the repository root (`python -m pytest` adds the cwd)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flows import dvc_stages
from flows.pipeline import pipeline
from flows.retrain import compare, retrain

# DVC 3.67 with pygtrie warns on every index build; not ours to fix.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:_NoneStep.value:DeprecationWarning")]

PREP = """\
  prep:
    foreach: [gaze, hand]
    do:
      cmd: sh step.sh prep ${item}
      deps: [step.sh, data]
      outs:
        - artifacts/prep/${item}
"""
TRAIN = """\
  train:
    foreach: [gaze, hand]
    do:
      cmd: sh step.sh train ${item}
      deps:
        - step.sh
        - artifacts/prep/${item}
      outs:
        - artifacts/train/${item}/grid.png
      metrics:
        - artifacts/train/${item}/metrics.json:
            cache: false
"""
DVC_YAML = "stages:\n" + PREP + TRAIN

# A stage fails when a file fail-<stage> exists (not a DVC dependency: removing it is "the fix").
STEP_SH = """\
set -e
echo "$1@$2" >> log.txt
if [ -e "fail-$1" ]; then echo "boom: $1@$2 cannot read its input" >&2; exit 3; fi
case "$1" in
  prep) mkdir -p "artifacts/prep/$2" && cp -r data/. "artifacts/prep/$2/" ;;
  train) mkdir -p "artifacts/train/$2" && printf 'png' > "artifacts/train/$2/grid.png" &&
         score=$(cat "artifacts/prep/$2/score.txt") &&
         echo "{\\"mean_error\\": $score, \\"rounds\\": 3}" > "artifacts/train/$2/metrics.json" ;;
esac
"""

ORDER = ["prep@gaze", "prep@hand", "train@gaze", "train@hand"]


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory):
    """A temporary Prefect server and database for the session (about 10 s to start on an idle machine; with
    4-9 processes per core on 2 cores it took over 60 s, so the wait allows 180 — a wait, not a measured time)."""
    os.environ["DVC_SITE_CACHE_DIR"] = str(tmp_path_factory.mktemp("dvc_site_cache"))
    with prefect_test_harness(server_startup_timeout=180):
        yield
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "score.txt").write_text("0.5\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "step.sh").write_text(STEP_SH)
    (root / ".gitignore").write_text("/artifacts/\n/log.txt\n/fail-*\n")
    sh(root, "git", "init", "-q")
    Repo.init(str(root)).close()  # in process: 0.1 s, where each `dvc` command costs 0.7 s to start
    with Repo(str(root)) as repo:
        repo.add(str(root / "data"))  # data/ tracked by data.dvc, as in the real project
    sh(root, "git", "add", "-A")
    sh(root, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "project")
    return root


def log(root: Path) -> list[str]:
    path = root / "log.txt"
    return path.read_text().split() if path.exists() else []


def test_pipeline_runs_every_stage_in_dag_order(project):
    assert dvc_stages.stage_order(project) == ORDER
    assert dvc_stages.stage_order(project, ["train@hand"]) == ["prep@hand", "train@hand"]

    summary = pipeline(repo_root=str(project))

    assert log(project) == ORDER
    assert [(run["stage"], run["ran"]) for run in summary["stages"]] == [(stage, True) for stage in ORDER]
    assert summary["metrics"] == {
        "artifacts/train/gaze/metrics.json:mean_error": 0.5,
        "artifacts/train/gaze/metrics.json:rounds": 3,
        "artifacts/train/hand/metrics.json:mean_error": 0.5,
        "artifacts/train/hand/metrics.json:rounds": 3,
    }
    assert summary["images"] == {
        "train@gaze": ["artifacts/train/gaze/grid.png"],
        "train@hand": ["artifacts/train/hand/grid.png"],
    }
    report = Artifact.get("pipeline-report")
    assert "`train@hand` | ran" in report.data and "mean_error" in report.data
    assert "artifacts/train/gaze/grid.png" in Artifact.get("pipeline-images").data

    # Declared in the wrong order, the stages still run after what they depend on (declaration order breaks ties).
    (project / "dvc.yaml").write_text("stages:\n" + TRAIN + PREP)
    assert dvc_stages.stage_order(project) == ["prep@gaze", "train@gaze", "prep@hand", "train@hand"]


def test_a_fresh_clone_without_data_gets_a_one_line_hint_and_nothing_runs(project):
    shutil.rmtree(project / "data")  # what a fresh clone looks like: data.dvc, no data/, no cache
    with pytest.raises(dvc_stages.DvcError) as error:
        pipeline(str(project))
    message = str(error.value)
    assert "\n" not in message and "data/ is absent" in message and "simgan simulate --out data" in message
    assert log(project) == []


def test_failing_stage_stops_the_flow_and_a_rerun_resumes_there(project):
    (project / "fail-train").touch()

    with pytest.raises(dvc_stages.StageFailed, match="boom: train@gaze cannot read its input") as failure:
        pipeline(repo_root=str(project))

    assert failure.value.stage == "train@gaze"
    assert log(project) == ["prep@gaze", "prep@hand", "train@gaze"]  # train@hand never started
    assert "**failed at train@gaze**" in Artifact.get("pipeline-report").data

    (project / "fail-train").unlink()
    summary = pipeline(repo_root=str(project))

    assert [(run["stage"], run["ran"]) for run in summary["stages"]] == [
        ("prep@gaze", False),
        ("prep@hand", False),
        ("train@gaze", True),
        ("train@hand", True),
    ]
    assert log(project) == ["prep@gaze", "prep@hand", "train@gaze", "train@gaze", "train@hand"]


def test_retrain_skips_unchanged_data_and_reruns_after_data_changes(project):
    first = retrain(repo_root=str(project), metric="mean_error", direction="min")
    hash_before = dvc_stages.recorded_data_hash(project)
    assert first["status"] == "promoted" and first["data_hash"] == hash_before
    promoted = json.loads((project / "artifacts" / "promoted.json").read_text())
    assert promoted["data_hash"] == hash_before
    assert promoted["git"]["commit"] == sh(project, "git", "rev-parse", "HEAD").strip()
    assert promoted["selected"] == {
        "artifacts/train/gaze/metrics.json:mean_error": 0.5,
        "artifacts/train/hand/metrics.json:mean_error": 0.5,
    }
    assert log(project) == ORDER

    second = retrain(repo_root=str(project), metric="mean_error", direction="min")
    assert second["status"] == "unchanged"
    assert log(project) == ORDER  # no stage ran

    (project / "data" / "score.txt").write_text("0.25\n")  # better: lower mean_error
    third = retrain(repo_root=str(project), metric="mean_error", direction="min")

    hash_after = dvc_stages.recorded_data_hash(project)  # data.dvc was rewritten by `dvc add data`
    assert hash_after != hash_before and third["data_hash"] == hash_after
    assert third["status"] == "promoted", third["reason"]
    assert log(project) == ORDER + ORDER
    assert json.loads((project / "artifacts" / "promoted.json").read_text())["data_hash"] == hash_after


def test_promotion_is_refused_when_the_metric_gets_worse(project):
    # A promotion recorded earlier with a better mean_error than this data gives (0.5); saves a first full run.
    promoted_file = project / "artifacts" / "promoted.json"
    promoted_file.parent.mkdir()
    promoted_file.write_text(
        json.dumps(
            {
                "data_hash": "earlier",
                "metrics": {
                    "artifacts/train/gaze/metrics.json:mean_error": 0.25,
                    "artifacts/train/hand/metrics.json:mean_error": 0.5,
                },
            }
        )
    )
    promoted_before = promoted_file.read_text()

    result = retrain(repo_root=str(project), metric="mean_error", direction="min")

    assert log(project) == ORDER
    assert result["status"] == "refused"
    assert result["reason"] == (
        "not promoted: artifacts/train/gaze/metrics.json:mean_error got worse, 0.25 -> 0.5 (lower is better)"
    )  # hand: 0.5 -> 0.5 is not worse
    assert promoted_file.read_text() == promoted_before
    state = json.loads((project / "artifacts" / "retrain.json").read_text())
    assert state["status"] == "refused" and state["reason"] == result["reason"]
    assert "**refused**" in Artifact.get("retrain-decision").data
    # the refused run did train on this data: unchanged data does not retrain again
    assert retrain(repo_root=str(project))["status"] == "unchanged"
    # with higher-is-better the same values would have been promoted
    assert compare(state["metrics"], json.loads(promoted_before)["metrics"], "mean_error", "max")[0]


def test_a_stage_past_its_timeout_is_interrupted_and_its_retry_is_not_blocked(project):
    with (project / "dvc.yaml").open("a") as f:
        f.write("  slow:\n    cmd: echo slow >> log.txt && sleep 60\n    outs: [slow.txt]\n")

    # 5 s, not 1: on a loaded 2-core machine DVC's own start-up can take longer than a second, and a SIGINT that
    # lands before the stage starts (or while DVC writes its lock) tests nothing this test is about
    with pytest.raises(dvc_stages.StageFailed, match="'slow' timed out after 5 s") as failure:
        pipeline(repo_root=str(project), targets=["slow"], timeout_s=5, retries=1, retry_delay_seconds=0)

    # DVC got SIGINT, not SIGKILL: it removed its lock, so the retry ran the stage again instead of
    # failing with "is busy"
    assert log(project) == ["slow", "slow"]
    assert "is busy" not in str(failure.value)
    assert json.loads((project / ".dvc" / "tmp" / "rwlock").read_text()) == {"read": {}}


def test_the_timeout_interrupt_works_in_a_flow_started_with_ctrl_c_ignored(project):
    """A flow started in the background by a non-interactive shell (`cmd &`, nohup) inherits SIGINT ignored;
    DVC must still get Ctrl-C from the timeout and remove its lock, not be SIGKILLed holding it."""
    with (project / "dvc.yaml").open("a") as f:
        f.write("  slow:\n    cmd: echo slow >> log.txt && sleep 60\n    outs: [slow.txt]\n")
    child = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "from flows import dvc_stages\n"
        "code, tail, timed_out = dvc_stages.run_dvc(sys.argv[1], ['repro', '-s', 'slow'], timeout_s=5)\n"
        "print('timed out' if timed_out else f'exit {code}')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", child, str(project)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "timed out", result.stdout + result.stderr
    assert log(project) == ["slow"]
    # stopped by SIGINT: DVC removed its lock (SIGKILL leaves the entry for the next run to find dead)
    assert json.loads((project / ".dvc" / "tmp" / "rwlock").read_text()) == {"read": {}}


def test_rejected_data_fails_at_once_and_the_record_says_how_to_get_back(project):
    """A validation stage that rejects the data is not retried (the same suite on the same data gives the same
    verdict); data.dvc goes back to the data last accepted, retrain.json names the rejected data and the way back,
    and what is promoted does not change."""
    with (project / "dvc.yaml").open("a") as f:
        f.write("  validate:\n    cmd: sh step.sh validate all\n    deps: [step.sh, data]\n")
    assert retrain(repo_root=str(project), metric="mean_error", direction="min")["status"] == "promoted"
    accepted_dvc = (project / "data.dvc").read_text()
    accepted_hash = dvc_stages.recorded_data_hash(project)
    promoted_before = (project / "artifacts" / "promoted.json").read_text()

    (project / "fail-validate").touch()
    (project / "data" / "score.txt").write_text("0.1\n")
    with pytest.raises(dvc_stages.StageFailed, match="boom: validate@all"):
        retrain(repo_root=str(project), metric="mean_error", direction="min", retries=2)

    assert log(project).count("validate@all") == 2  # once when accepted, once now: no retry
    assert (project / "data.dvc").read_text() == accepted_dvc
    state = json.loads((project / "artifacts" / "retrain.json").read_text())
    assert state["status"] == "failed" and state["rejected"]["stage"] == "validate"
    assert state["rejected"]["permanent"] and state["rejected"]["data_hash"] not in (None, accepted_hash)
    assert "dvc checkout data.dvc" in state["how_to_get_back"] and state["data_hash"] == accepted_hash
    assert (project / "artifacts" / "promoted.json").read_text() == promoted_before
    assert "**failed**" in Artifact.get("retrain-decision").data

    (project / "fail-validate").unlink()  # the data fixed: the next run tries again and promotes
    assert retrain(repo_root=str(project), metric="mean_error", direction="min")["status"] == "promoted"


def test_the_images_artifact_embeds_thumbnails_not_paths(tmp_path):
    from PIL import Image

    from flows.pipeline import _images, thumbnail_uri

    Image.new("L", (1200, 400), 128).save(tmp_path / "grid.png")
    (tmp_path / "broken.png").write_bytes(b"png")
    uri = thumbnail_uri(tmp_path / "grid.png")
    assert uri.startswith("data:image/png;base64,")
    import base64
    import io

    assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size == (360, 120)
    markdown = _images(str(tmp_path), {"refine@gaze": ["grid.png", "broken.png"]})
    assert "](data:image/png;base64," in markdown and "file://" not in markdown
    assert "`broken.png`" in markdown and thumbnail_uri(tmp_path / "broken.png") is None
