"""The package stage's own logic, without BentoML: deterministic names and the metadata it records.

Storing in the model store and `bentoml build` run for real in tests/integration/test_service.py.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import torch
from conftest import TINY_REFINER

from simgan.config import load_params
from simgan.nn.refiner import Refiner
from simgan.stages import package

ROOT = Path(__file__).resolve().parents[2]


def test_model_version_is_a_hash_of_config_and_weights():
    refiner = Refiner(TINY_REFINER)
    config = TINY_REFINER.to_dict()
    version = package.weights_digest(config, refiner.state_dict())
    assert re.fullmatch(r"[0-9a-f]{20}", version)  # a valid BentoML tag version
    assert package.weights_digest(config, copy.deepcopy(refiner).state_dict()) == version  # same weights, same tag
    changed = copy.deepcopy(refiner)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-6
    assert package.weights_digest(config, changed.state_dict()) != version
    assert package.weights_digest({**config, "output_activation": "none"}, refiner.state_dict()) != version


def test_bento_version_follows_the_service_code_and_arguments(tmp_path):
    for name in package.SERVICE_FILES:
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "simgan", tmp_path / "simgan", ignore=shutil.ignore_patterns("__pycache__"))
    params = load_params(ROOT / "params.yaml").package["gaze"]
    args = package.service_args("gaze", "simgan-refiner-gaze:0123", params)
    assert set(args) == {"task", "model", *params.model_dump()}
    version = package.files_digest(tmp_path, args)
    assert package.files_digest(tmp_path, dict(args)) == version
    assert package.files_digest(tmp_path, {**args, "max_batch_size": 1}) != version
    (tmp_path / "simgan/stages/package.py").write_text("# the stages are not in the bento\n")
    assert package.files_digest(tmp_path, args) == version
    (tmp_path / "simgan/inference.py").write_text((tmp_path / "simgan/inference.py").read_text() + "\n")
    assert package.files_digest(tmp_path, args) != version


def test_metadata_when_there_is_no_git_dvc_or_metrics(tmp_path):
    assert package.git_commit(tmp_path) == "unknown"
    assert package.data_version(tmp_path) == "unknown"
    assert package.training_metrics("gaze", tmp_path) == {}
    (tmp_path / "data.dvc").write_text("outs:\n- md5: abc.dir\n  path: data\n")
    assert package.data_version(tmp_path) == "abc.dir"
    metrics = tmp_path / "artifacts/train/gaze/dvclive/metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"step": 3}))
    assert package.training_metrics("gaze", tmp_path) == {"step": 3}
