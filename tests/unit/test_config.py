"""params.yaml: one strict loader; problems named by their dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simgan.config import ConfigError, load_params, model_configs, train_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, edit) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_the_repository_params_load_and_build_the_models():
    params = load_params(ROOT / "params.yaml")
    for task in ("gaze", "hand"):
        refiner, discriminator = model_configs(params.pretrain[task], tuple(params.prepare[task].image_size))
        assert refiner.input_size == discriminator.input_size == tuple(params.prepare[task].image_size)
        config = train_config(params.pretrain[task], params.train[task])
        assert config.adversarial_rounds == params.train[task].adversarial_rounds
        assert train_config(params.pretrain[task], None).adversarial_rounds == 0  # pretrain stage: no rounds


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p["train"]["gaze"].update(adversarial_roundz=3), r"train\.gaze\.adversarial_roundz: Extra inputs"),
        (lambda p: p["pretrain"]["hand"].pop("lr"), r"pretrain\.hand\.lr: Field required"),
        (lambda p: p["pretrain"]["gaze"].update(batch_size="32"), r"pretrain\.gaze\.batch_size: Input should be a valid integer"),
        (lambda p: p["pretrain"]["gaze"].update(optimizer="rmsprop"), r"pretrain\.gaze\.optimizer: Input should be 'sgd' or 'adam'"),
        (lambda p: p["prepare"].update(face=p["prepare"]["gaze"]), r"prepare\.face"),
        (lambda p: p.update(evaluat={}), r"evaluat: Extra inputs"),  # a misspelt section
        (lambda p: p["estimate"]["gaze"].update(widths=[32, 32]), r"estimate\.gaze\.widths: List should have at least 5"),
        (lambda p: p["estimate"]["hand"].pop("rotation_deg"), r"estimate\.hand\.rotation_deg: Field required"),
    ],
)
def test_unknown_missing_and_mistyped_keys_are_named(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        load_params(write(tmp_path, edit))


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")


def test_the_paper_profile_loads_with_the_papers_numbers():
    params = load_params(ROOT / "params-paper.yaml")
    gaze, hand = params.pretrain["gaze"], params.pretrain["hand"]
    assert (gaze.refiner_width, gaze.refiner_blocks, gaze.optimizer, gaze.lr, gaze.batch_size) == (64, 4, "sgd", 0.001, 512)
    assert (gaze.refiner_pretrain_steps, gaze.discriminator_pretrain_steps) == (1000, 200)
    assert (hand.refiner_blocks, hand.refiner_pretrain_steps, params.prepare["hand"].image_size) == (10, 500, [224, 224])
    assert params.train["gaze"].refiner_steps_per_round == 2 and params.train["gaze"].discriminator_steps_per_round == 1


def test_estimators_of_both_profiles():
    from simgan.config import estimator_config, estimator_train_config

    paper = load_params(ROOT / "params-paper.yaml")
    gaze = estimator_config("gaze", paper)
    assert (gaze.widths, gaze.hidden, gaze.input_size) == ((32, 32, 64, 80, 192), 1000, (35, 55))
    hand = estimator_config("hand", paper)
    assert (hand.num_stacks, hand.num_joints, hand.heatmap_size, hand.input_size) == (2, 14, (64, 64), (224, 224))
    assert (paper.estimate["gaze"].larger_variant_factor, paper.estimate["hand"].larger_variant_factor) == (4, 3)
    assert estimator_train_config("hand", paper).rotation_deg == 20
    assert estimator_train_config("gaze", paper).augment is False  # the paper's gaze CNN: no augmentation
    demo = load_params(ROOT / "params.yaml")
    assert estimator_config("hand", demo).input_size == tuple(demo.prepare["hand"].image_size)
