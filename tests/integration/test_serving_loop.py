"""Acceptance of the loop new data -> retrain -> gate -> what the API serves, with the real tools on 127.0.0.1.

A real `prefect server start`, the deployment from the repository's prefect.yaml (`prefect deploy --all`), a
process worker, runs triggered with `prefect deployment run --watch`, and `simgan serve` answering /info, on a
tiny DVC project: the repository's simgan/, flows/, service.py, bentofile.yaml, prefect.yaml and params.yaml
(tiny profile), with a three-stage dvc.yaml per task, here for gaze only (cost):

    train@gaze     a tiny refiner trained for a few steps, seeded by data/gaze/score.txt (new data: new weights,
                   so a new model and bento tag)
    package@gaze   the real package stage: the refiner into the BentoML store, then its bento
    evaluate@gaze  metrics.json with refined_within_pct = the number in data/gaze/score.txt

The evaluation is the one thing not real: the metric is read from the data the test writes, so "the metric
gets worse" is a data change the test controls (score 40 -> 60 -> 50), deterministic where a tiny real
evaluation would be noise. Everything around it is what a user runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from simgan.config import read_yaml
from simgan.profiles import merge

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

DVC_YAML = """\
stages:
  train:
    foreach: [gaze]
    do:
      cmd: python make_refiner.py ${item}
      deps: [make_refiner.py, data]
      outs:
        - artifacts/train/${item}/checkpoint.pt
  package:
    foreach: [gaze]
    do:
      cmd: python -m simgan.stages.package --task ${item}
      deps:
        - artifacts/train/${item}/checkpoint.pt
      outs:
        - artifacts/package/${item}/bento.json:
            cache: false
  evaluate:
    foreach: [gaze]
    do:
      cmd: sh evaluate.sh ${item}
      deps:
        - evaluate.sh
        - data
        - artifacts/package/${item}/bento.json
      metrics:
        - artifacts/evaluate/${item}/metrics.json:
            cache: false
"""

MAKE_REFINER = """\
import sys
from pathlib import Path

import numpy as np

from simgan.nn.discriminator import DISCRIMINATOR_PRESETS
from simgan.nn.refiner import RefinerConfig
from simgan.training.refiner import SimGANTrainer, TrainConfig

task = sys.argv[1]
seed = int(float(Path(f"data/{task}/score.txt").read_text()) * 1000)
rng = np.random.default_rng(seed)
synthetic = rng.integers(60, 200, size=(8, 35, 55), dtype=np.uint8)
real = rng.integers(0, 255, size=(8, 35, 55), dtype=np.uint8)
config = TrainConfig(batch_size=4, refiner_pretrain_steps=1, discriminator_pretrain_steps=1, adversarial_rounds=1,
                     history_capacity=8, log_every_steps=1, checkpoint_every_steps=1000, seed=seed)
trainer = SimGANTrainer(synthetic, real, refiner_config=RefinerConfig(width=4, num_blocks=1, input_size=(35, 55)),
                        discriminator_config=DISCRIMINATOR_PRESETS["gaze"], config=config, device="cpu",
                        progress=False)
trainer.fit(checkpoint_path=Path(f"artifacts/train/{task}/checkpoint.pt"))
"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(ready, what: str, process: subprocess.Popen | None = None, log: Path | None = None, limit=180):
    deadline = time.monotonic() + limit  # a guard against hanging, not a timing assertion
    while not ready():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: exited {process.returncode}\n" + (log.read_text()[-3000:] if log else ""))
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not ready\n" + (log.read_text()[-3000:] if log else ""))
        time.sleep(0.25)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> float:
    """One signal to a `simgan run`/`simgan serve` process; the seconds it took to exit."""
    started = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"{process.args} did not stop within 60 s of one signal") from None
    return time.monotonic() - started


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("simgan", "flows"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("service.py", "bentofile.yaml", "prefect.yaml"):
        shutil.copy2(ROOT / name, root / name)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), read_yaml(ROOT / "profiles" / "tiny.yaml"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "make_refiner.py").write_text(MAKE_REFINER)
    (root / "evaluate.sh").write_text(
        'mkdir -p "artifacts/evaluate/$1"\n'
        'printf \'{"refined_within_pct": %s}\' "$(cat "data/$1/score.txt")" > "artifacts/evaluate/$1/metrics.json"\n'
    )
    (root / "data" / "gaze").mkdir(parents=True)
    (root / "data" / "gaze" / "score.txt").write_text("40\n")
    (root / ".gitignore").write_text("/artifacts/\n/.bentoml/\n/.prefect/\n*.log\n")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PREFECT_HOME": str(tmp_path / "prefect_home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # pick a triggered run up within a second (default 10)
        "DVC_NO_ANALYTICS": "1",
        "BENTOML_HOME": str(root / ".bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    env.pop("PREFECT_API_URL", None)

    def run(*args: str) -> None:
        subprocess.run(args, cwd=root, env=env, check=True, capture_output=True, timeout=120)

    run("git", "init", "-q")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "add", "-q", "data")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "project")
    return root, env


def test_promotion_decides_what_is_served_through_the_scheduled_deployment(project):
    root, env = project
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    logs = root.parent

    def prefect(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            cwd=root,
            env={**env, "PREFECT_API_URL": api},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(log_name: str, *command: str, extra_env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "simgan", *command],
            cwd=root,
            env={**env, **(extra_env or {})},
            stdout=(logs / log_name).open("w"),
            stderr=subprocess.STDOUT,
        )

    def retrain_run() -> dict:
        """A run of the deployment now, picked up by the worker; the state it left (retrain.json)."""
        result = prefect("deployment", "run", "retrain/retrain-nightly", "--watch", "--watch-timeout", "300")
        worker_log = (logs / "worker.log").read_text()[-3000:]
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + worker_log
        return json.loads((root / "artifacts" / "retrain.json").read_text())

    def served_model(*serve_args: str) -> str:
        serve_port = free_port()
        server = start("serve.log", "serve", "--task", "gaze", "--port", str(serve_port), *serve_args)
        try:
            url = f"http://127.0.0.1:{serve_port}"
            wait_until(lambda: answers(f"{url}/readyz"), "simgan serve", server, logs / "serve.log")
            request = urllib.request.Request(f"{url}/info", data=b"{}", headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())["model"]
        finally:
            stop(server)

    def promoted_model() -> str:
        return json.loads((root / "artifacts" / "promoted.json").read_text())["serving"]["gaze"]["model"]

    server = start("server.log", "run", "--", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port))
    worker = None
    try:
        wait_until(lambda: answers(f"{api}/health"), "prefect server", server, logs / "server.log")
        for args in (("work-pool", "create", "simgan-local", "--type", "process"), ("--no-prompt", "deploy", "--all")):
            result = prefect(*args)
            assert result.returncode == 0, result.stdout + result.stderr
        worker = start(
            "worker.log", "run", "--", "prefect", "worker", "start", "--pool", "simgan-local",
            extra_env={"PREFECT_API_URL": api},
        )  # fmt: skip

        first = retrain_run()  # nothing promoted yet: trained, packaged, promoted
        assert first["status"] == "promoted", first
        model_a = promoted_model()
        lock = (root / "dvc.lock").read_text()
        # "unchanged" returns at once, rewriting neither the state nor anything DVC records
        assert retrain_run() == first and (root / "dvc.lock").read_text() == lock
        assert "unchanged since the last successful run" in (logs / "worker.log").read_text()

        (root / "data" / "gaze" / "score.txt").write_text("60\n")  # better data: a new refiner, a higher metric
        second = retrain_run()
        assert second["status"] == "promoted", second
        model_b = promoted_model()
        assert model_b != model_a and second["serving"] == {"gaze": model_b}
        assert served_model() == model_b

        (root / "data" / "gaze" / "score.txt").write_text("50\n")  # worse: packaged, then refused
        third = retrain_run()
        assert third["status"] == "refused", third
        latest = json.loads((root / "artifacts" / "package" / "gaze" / "bento.json").read_text())["model"]
        assert latest not in (model_a, model_b)  # the refused run did package a new model ...
        assert promoted_model() == model_b and served_model() == model_b  # ... which is not served after a restart

        rollback = subprocess.run(
            [sys.executable, "-m", "simgan", "rollback", "--task", "gaze"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rollback.returncode == 0, rollback.stderr
        assert promoted_model() == model_a and served_model() == model_a
    finally:
        # one SIGTERM each stops the worker and the server (and their children): not the 20-35 s an idle worker took
        if worker is not None:
            worker_s = stop(worker)
        server_s = stop(server)
    print(f"stopped by one SIGTERM: worker in {worker_s:.1f} s, server in {server_s:.1f} s")
