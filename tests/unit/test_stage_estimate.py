"""The estimate stage's choices: which training sets, and when a checkpoint may be continued."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from simgan.config import ConfigError, load_params
from simgan.nn.estimators import GazeEstimatorConfig
from simgan.stages.common import fingerprint
from simgan.training.estimator import EstimatorTrainConfig, EstimatorTrainer

ROOT = Path(__file__).resolve().parents[2]


def params_with(tmp_path, **gaze):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["estimate"]["gaze"].update(gaze)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    return load_params(tmp_path / "params.yaml")


def test_training_sets_include_the_larger_variants_only_when_asked(tmp_path):
    assert params_with(tmp_path).training_sets("gaze") == {"synthetic": ("synthetic", 0), "refined": ("refined", 0)}
    larger = params_with(tmp_path, train_images=100, larger_variant_factor=4).training_sets("gaze")
    assert larger == {
        "synthetic": ("synthetic", 100),
        "refined": ("refined", 100),
        "synthetic_4x": ("synthetic", 400),
        "refined_4x": ("refined", 400),
    }
    with pytest.raises(ConfigError, match=r"estimate\.gaze: larger_variant_factor needs train_images > 0"):
        params_with(tmp_path, larger_variant_factor=4)


def test_only_an_unfinished_checkpoint_of_the_same_model_config_and_data_is_continued(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (8, 35, 55), dtype=np.uint8)
    labels = np.tile(np.array([[0.0, 0.0, -1.0]], np.float32), (8, 1))
    model = GazeEstimatorConfig(widths=(2, 2, 2, 2, 2), hidden=4)
    config = EstimatorTrainConfig(steps=2, batch_size=2, optimizer="adam")

    def trainer(train_config=config, data=(images, labels)):
        made = EstimatorTrainer("gaze", model, train_config, *data, device="cpu", progress=False)
        made.provenance["data_fingerprint"] = fingerprint(*data)
        return made

    def resumable(path, trainer, _=None):
        return trainer.resume_if_unfinished(path)

    path = tmp_path / "checkpoint.pt"
    assert not resumable(path, trainer(), fingerprint(images, labels))
    first = trainer()
    first.fit(checkpoint_path=path, stop_at_step=1)  # killed after one of its two steps
    assert resumable(path, trainer(), fingerprint(images, labels))
    assert not resumable(path, trainer(data=(images[::-1].copy(), labels)))  # other data
    assert not resumable(
        path, trainer(EstimatorTrainConfig(steps=2, batch_size=2, optimizer="sgd")), fingerprint(images, labels)
    )  # another schedule
    first.fit(checkpoint_path=path)
    assert not resumable(path, trainer(), fingerprint(images, labels))  # finished: a re-run starts again
    path.write_bytes(b"truncated")
    assert not resumable(path, trainer(), fingerprint(images, labels))  # unreadable: start again, said on stderr
