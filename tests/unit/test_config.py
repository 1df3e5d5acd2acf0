"""params.yaml: one strict loader; the library configs built from it; problems named by their dotted key."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from simgan.config import ConfigError, Params, load_params, read_yaml
from simgan.nn.discriminator import DISCRIMINATOR_PRESETS
from simgan.nn.refiner import REFINER_PRESETS

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(PARAMS.read_text())


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params(PARAMS)


def write(tmp_path: Path, tree: dict, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def edited(raw: dict, edit) -> dict:
    tree = copy.deepcopy(raw)
    edit(tree)
    return tree


def refusal(tmp_path: Path, raw: dict, edit) -> str:
    """The message load_params refuses the edited params.yaml with (without the file's path)."""
    path = write(tmp_path, edited(raw, edit))
    with pytest.raises(ConfigError) as caught:
        load_params(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


# ------------------------------------------------------------------------------ the repository's params
def test_the_repository_params_build_the_gaze_networks(params):
    refiner = params.refiner_config("gaze")
    assert (refiner.width, refiner.num_blocks, refiner.kernel_size, refiner.input_size) == (32, 4, 3, (35, 55))
    assert refiner.preserve_background is False
    discriminator = params.discriminator_config("gaze")
    assert discriminator.layers == DISCRIMINATOR_PRESETS["gaze"].layers  # the paper's layer list, untouched
    assert (discriminator.head, discriminator.input_size) == ("local", (35, 55))


def test_the_repository_params_build_the_hand_networks(params):
    refiner = params.refiner_config("hand")
    assert (refiner.width, refiner.num_blocks, refiner.kernel_size) == (16, 2, 7)  # kernel: the paper's hand preset
    assert refiner.preserve_background is True
    assert refiner.input_size == (128, 128)  # prepare.hand.image_size, not the preset's 224×224
    discriminator = params.discriminator_config("hand")
    assert discriminator.layers == DISCRIMINATOR_PRESETS["hand"].layers
    assert discriminator.input_size == (128, 128)


def test_train_config_with_and_without_rounds(params):
    gaze = params.train_config("gaze")
    assert gaze.adversarial_rounds == 250
    assert (gaze.refiner_steps_per_round, gaze.discriminator_steps_per_round) == (2, 1)
    assert (gaze.batch_size, gaze.optimizer, gaze.lr, gaze.history_capacity) == (32, "adam", 0.001, 1024)
    assert (gaze.refiner_pretrain_steps, gaze.discriminator_pretrain_steps) == (100, 50)
    assert (gaze.checkpoint_every_steps, gaze.log_every_steps) == (50, 10)
    pretrain = params.train_config("gaze", with_rounds=False)  # the pretrain stage: no rounds
    assert pretrain.adversarial_rounds == 0
    assert (pretrain.batch_size, pretrain.refiner_pretrain_steps, pretrain.self_reg_weight) == (32, 100, 0.5)
    assert params.train_config("hand").adversarial_rounds == 200
    assert params.train_config("hand", with_rounds=False).adversarial_rounds == 0
    assert params.train_config("hand").self_reg_weight == 0.05


def test_estimator_configs(params):
    gaze = params.estimator_config("gaze")
    assert (gaze.widths, gaze.hidden, gaze.input_size) == ((16, 16, 32, 40, 96), 256, (35, 55))
    hand = params.estimator_config("hand")
    assert (hand.width, hand.depth, hand.num_stacks, hand.num_joints) == (16, 4, 2, 14)
    assert (hand.heatmap_size, hand.input_size) == ((32, 32), (128, 128))
    gaze_training = params.estimator_train_config("gaze")
    assert (gaze_training.steps, gaze_training.batch_size, gaze_training.augment) == (800, 64, False)
    hand_training = params.estimator_train_config("hand")
    assert (hand_training.steps, hand_training.lr, hand_training.heatmap_sigma_px) == (300, 0.005, 1.0)
    assert hand_training.heatmap_loss == "softmax"
    assert hand_training.precise_bn_batches == 60
    assert (hand_training.augment, hand_training.rotation_deg) == (True, 20.0)


def test_training_sets(params, raw, tmp_path):
    assert params.training_sets("gaze") == {"synthetic": ("synthetic", 0), "refined": ("refined", 0)}

    def larger(p):
        p["estimate"]["gaze"].update(train_images=100, larger_variant_factor=4)

    variant = load_params(write(tmp_path, edited(raw, larger)))
    assert variant.training_sets("gaze") == {
        "synthetic": ("synthetic", 100),
        "refined": ("refined", 100),
        "synthetic_4x": ("synthetic", 400),
        "refined_4x": ("refined", 400),
    }


def test_an_unknown_task_is_refused(params):
    with pytest.raises(KeyError, match="unknown task 'face'"):
        params.refiner_config("face")


def test_the_refiner_average_is_a_train_setting_and_the_estimators_a_training_one(raw, tmp_path):
    """refiner_ema_decay acts in the adversarial phase only, so it sits with the rounds (a change reruns train@,
    not pretrain@); the estimator's weight average with its training settings; both off unless set."""
    params = load_params(write(tmp_path, raw))
    assert params.train_config("hand").refiner_ema_decay == 0.0
    assert params.estimator_train_config("hand").weight_average_decay == 0.0

    def average(p):
        p["train"]["hand"]["refiner_ema_decay"] = 0.99
        p["estimate"]["hand"]["training"]["weight_average_decay"] = 0.98

    params = load_params(write(tmp_path, edited(raw, average)))
    assert params.train_config("hand").refiner_ema_decay == 0.99
    assert params.train_config("hand", with_rounds=False).refiner_ema_decay == 0.0  # the pretrain stage's
    assert params.estimator_train_config("hand").weight_average_decay == 0.98
    assert "pretrain.hand.refiner_ema_decay" in refusal(
        tmp_path, raw, _set("pretrain", "hand", "refiner_ema_decay", 0.9)
    )
    assert "less than 1" in refusal(tmp_path, raw, _set("train", "hand", "refiner_ema_decay", 1.0))


def test_left_out_values_take_the_library_default_over_the_task_preset(raw, tmp_path):
    def drop(p):
        del p["pretrain"]["hand"]["refiner"]  # the whole override section
        del p["pretrain"]["hand"]["lr"]
        del p["estimate"]["hand"]["model"]["width"]

    params = load_params(write(tmp_path, edited(raw, drop)))
    refiner = params.refiner_config("hand")
    preset = REFINER_PRESETS["hand"]
    assert (refiner.width, refiner.num_blocks, refiner.kernel_size) == (preset.width, preset.num_blocks, 7)
    assert refiner.input_size == (128, 128)
    assert params.train_config("hand").lr == 0.001
    assert params.estimator_config("hand").width == 128  # HourglassConfig's default


# ------------------------------------------------------------------------------ bad values, by dotted key
def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(p):
        node = p
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _both(*edits):
    def edit(p):
        for one in edits:
            one(p)

    return edit


def _delete(*keys):
    def edit(p):
        node = p
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


@pytest.mark.parametrize(
    ("edit", "key", "says"),
    [
        pytest.param(_set("pretrain", "gaze", "lr", math.inf), "pretrain.gaze.lr", "finite number", id="lr-inf"),
        pytest.param(_set("pretrain", "gaze", "lr", math.nan), "pretrain.gaze.lr", "finite number", id="lr-nan"),
        pytest.param(_set("runtime", "device", "tpu9"), "runtime.device", "tpu9", id="device"),
        pytest.param(
            _set("prepare", "gaze", "image_size", [-35, 55]),
            "prepare.gaze.image_size",
            "greater than or equal to 1",
            id="negative-size",
        ),
        pytest.param(
            _set("prepare", "gaze", "image_size", [1, 1]),
            "prepare.gaze.image_size",
            "smaller than the discriminator",
            id="size-below-receptive-field",
        ),
        pytest.param(
            _both(_set("prepare", "gaze", "val_fraction", 0.5), _set("prepare", "gaze", "test_fraction", 0.6)),
            "prepare.gaze",
            "nothing would be left to train on",
            id="fractions",
        ),
        pytest.param(
            _set("prepare", "gaze", "test_split", "fraction"),
            "prepare.gaze",
            "test_split fraction needs test_fraction",
            id="split-without-its-value",
        ),
        pytest.param(
            _set("prepare", "gaze", "test_split", "none"),
            "prepare.gaze",
            "test_persons given, but test_split is none",
            id="value-without-its-split",
        ),
        pytest.param(
            _set("prepare", "hand", "test_split", "evaluation_subset"),
            "prepare.hand",
            "real_format must be mpiigaze",
            id="evaluation-subset-of-nyu",
        ),
        pytest.param(
            _set("prepare", "gaze", "real_resize", "bilinear"),
            "prepare.gaze",
            "applies to the folder format",
            id="resize-of-mpiigaze",
        ),
        pytest.param(
            _both(
                _set("prepare", "gaze", "real_format", "folder"),
                _set("prepare", "gaze", "real_resize", "bilinear"),
                _set("prepare", "gaze", "test_split", "fraction"),
                _set("prepare", "gaze", "test_persons", []),
                _set("prepare", "gaze", "test_fraction", 0.2),
            ),
            "prepare.gaze",
            "labelled images are never resized",
            id="resize-of-labelled-test-images",
        ),
        pytest.param(
            _both(_set("prepare", "hand", "holdout_fraction", 0.8)),
            "prepare.hand",
            "no real image would be left for the refiner",
            id="holdout-too-large",
        ),
        pytest.param(
            _set("prepare", "hand", "synthetic_equalize", True),
            "prepare.hand",
            "synthetic_equalize apply to the unityeyes format",
            id="equalize-of-nyu",
        ),
        pytest.param(
            _set("prepare", "gaze", "synthetic_eye_width_factor", 0.8),
            "prepare.gaze.synthetic_eye_width_factor",
            "greater than or equal to 1",
            id="eye-width-factor-too-small",
        ),
        pytest.param(
            _set("prepare", "gaze", "real_resize", "cubic"),
            "prepare.gaze.real_resize",
            "bilinear",
            id="unknown-resize",
        ),
        pytest.param(
            _set("pretrain", "gaze", "refiner", "widht", 32),
            "pretrain.gaze.refiner.widht",
            "Extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            _set("pretrain", "gaze", "batch_size", "32"),
            "pretrain.gaze.batch_size",
            "valid integer",
            id="string-for-int",
        ),
        pytest.param(
            _set("pretrain", "gaze", "batch_size", True), "pretrain.gaze.batch_size", "valid integer", id="bool-for-int"
        ),
        pytest.param(
            _set("pretrain", "gaze", "optimizer", "rmsprop"),
            "pretrain.gaze.optimizer",
            "'sgd' or 'adam'",
            id="optimizer",
        ),
        pytest.param(
            _set("pretrain", "gaze", "refiner", "kernel_size", 4),
            "pretrain.gaze.refiner",
            "must be odd",
            id="even-kernel",
        ),
        pytest.param(
            _set("train", "gaze", "refiner_steps_per_round", 0),
            "train.gaze.refiner_steps_per_round",
            "greater than or equal to 1",
            id="no-refiner-steps",
        ),
        pytest.param(
            _set("train", "gaze", "adversarial_roundz", 3),
            "train.gaze.adversarial_roundz",
            "Extra inputs are not permitted",
            id="misspelt-rounds",
        ),
        pytest.param(
            _set("estimate", "gaze", "training", "augment", True),
            "estimate.gaze.training.augment",
            "corrupt the labels",
            id="gaze-augment",
        ),
        pytest.param(
            _set("estimate", "gaze", "model", "widths", [32, 32]),
            "estimate.gaze.model.widths",
            "Field required",
            id="too-few-widths",
        ),
        pytest.param(
            _set("estimate", "gaze", "larger_variant_factor", 4),
            "estimate.gaze",
            "needs train_images > 0",
            id="variant-without-images",
        ),
        pytest.param(_set("prepare", "hand", "image_size", [128, 96]), "prepare.hand", "square", id="nyu-not-square"),
        pytest.param(_set("prepare", "face", {}), "prepare.face", "Extra inputs are not permitted", id="unknown-task"),
        pytest.param(_set("evaluat", {}), "evaluat", "Extra inputs are not permitted", id="misspelt-section"),
        pytest.param(_delete("evaluate"), "evaluate", "Field required", id="missing-section"),
        pytest.param(
            _delete("refine", "gaze", "batch_size"), "refine.gaze.batch_size", "Field required", id="missing-value"
        ),
    ],
)
def test_bad_values_are_refused_by_their_dotted_key(tmp_path, raw, edit, key, says):
    message = refusal(tmp_path, raw, edit)
    assert message.startswith(key) or f"; {key}" in message, message
    assert says in message, message


def test_the_edited_file_differs_only_by_the_edit(tmp_path, raw):
    """The round trip through yaml.safe_dump loses nothing: an unedited copy loads, so each refusal above is
    the edit's doing."""
    assert load_params(write(tmp_path, edited(raw, lambda p: None))) == load_params(PARAMS)


def test_a_duplicated_key_is_refused(tmp_path):
    text = PARAMS.read_text()
    assert text.count("    lr: 0.001\n") >= 1
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("    lr: 0.001\n", "    lr: 0.001\n    lr: 0.002\n", 1))
    with pytest.raises(ConfigError, match="found the key 'lr' twice"):
        load_params(path)


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")


@pytest.mark.skip(reason="test_persons are checked against the real data by prepare, not by load_params")
def test_an_unknown_test_person_is_refused():
    pass


def test_a_bad_heatmap_size_is_blamed_on_itself(tmp_path, raw):
    message = refusal(tmp_path, raw, _set("estimate", "hand", "model", "heatmap_size", [8, 8]))
    assert "estimate.hand.model" in message and "prepare.hand.image_size" not in message, message


def test_a_pretrain_problem_is_not_blamed_on_train(tmp_path, raw):
    message = refusal(tmp_path, raw, _set("pretrain", "gaze", "history_capacity", 1))
    assert message.startswith("pretrain.gaze") and "train.gaze:" not in message.replace("pretrain.gaze:", ""), message


# ------------------------------------------------------------------------------ profiles
def test_the_paper_profile_gives_dvc_overrides(monkeypatch):
    from simgan.profiles import overrides

    monkeypatch.chdir(ROOT)
    changed = overrides("paper")
    assert all("=" in item for item in changed)
    assert "pretrain.gaze.refiner.width=64" in changed
    assert 'pretrain.gaze.optimizer="sgd"' in changed
    assert "prepare.hand.image_size=[224, 224]" in changed


def test_the_paper_profile_merged_has_the_papers_numbers(tmp_path):
    from simgan.profiles import merge

    merged = merge(read_yaml(PARAMS), read_yaml(ROOT / "profiles" / "paper.yaml"))
    paper = load_params(write(tmp_path, merged))
    gaze = paper.train_config("gaze")
    assert (paper.refiner_config("gaze").width, gaze.optimizer, gaze.lr, gaze.batch_size) == (64, "sgd", 0.001, 512)
    assert (gaze.refiner_pretrain_steps, gaze.discriminator_pretrain_steps) == (1000, 200)
    assert (gaze.refiner_steps_per_round, gaze.discriminator_steps_per_round) == (2, 1)
    assert (gaze.self_reg_weight, gaze.self_reg_feature, gaze.self_reg_pupil_weight) == (0.01, "identity", 0.0)
    hand = paper.refiner_config("hand")
    assert (hand.num_blocks, hand.kernel_size, hand.input_size) == (10, 7, (224, 224))
    assert paper.train_config("hand").refiner_pretrain_steps == 500
    estimator = paper.estimator_config("gaze")
    assert (estimator.widths, estimator.hidden, estimator.input_size) == ((32, 32, 64, 80, 192), 1000, (35, 55))
    hourglass = paper.estimator_config("hand")
    assert (hourglass.num_stacks, hourglass.num_joints, hourglass.heatmap_size, hourglass.input_size) == (
        2,
        14,
        (64, 64),
        (224, 224),
    )
    assert paper.training_sets("gaze")["synthetic_4x"] == ("synthetic", 4400)
    assert paper.training_sets("hand")["refined_3x"] == ("refined", 900)
    assert paper.estimator_train_config("gaze").augment is False  # the paper's gaze CNN: no augmentation
    assert paper.estimator_train_config("hand").rotation_deg == 20
    assert paper.estimator_train_config("hand").heatmap_loss == "mse"  # Newell et al.'s
    assert paper.estimator_train_config("hand").precise_bn_batches == 0


def test_a_profile_with_an_unknown_key_is_refused(tmp_path):
    from simgan.profiles import overrides

    (tmp_path / "typo.yaml").write_text("pretrain:\n  gaze:\n    refiner:\n      widht: 64\n")
    with pytest.raises(ConfigError, match=r"pretrain\.gaze\.refiner\.widht: Extra inputs"):
        overrides("typo", params=PARAMS, folder=tmp_path)


def test_a_profile_with_a_bad_value_is_refused(tmp_path):
    from simgan.profiles import overrides

    (tmp_path / "slow.yaml").write_text("train:\n  gaze:\n    refiner_steps_per_round: 0\n")
    with pytest.raises(ConfigError, match=r"train\.gaze\.refiner_steps_per_round"):
        overrides("slow", params=PARAMS, folder=tmp_path)


def test_a_missing_profile_is_refused(tmp_path):
    from simgan.profiles import overrides

    (tmp_path / "real.yaml").write_text("refine:\n  gaze:\n    batch_size: 8\n")
    with pytest.raises(ConfigError, match=r"no such profile \(profiles here: real\)"):
        overrides("nope", params=PARAMS, folder=tmp_path)


# ------------------------------------------------------------------------------ `simgan check`
def test_check_accepts_the_repository_params(monkeypatch, capsys):
    from simgan.cli import main

    monkeypatch.chdir(ROOT)
    assert main(["check"]) == 0
    assert capsys.readouterr().out == "params.yaml: every value checked\n"
    assert main(["check", "--profile", "paper"]) == 0
    out = capsys.readouterr().out
    assert "params.yaml: every value checked" in out
    assert "profile paper over params.yaml" in out


def test_check_names_the_bad_key_in_one_line(monkeypatch, capsys, tmp_path, raw):
    from simgan.cli import main

    monkeypatch.chdir(ROOT)
    bad = write(tmp_path, edited(raw, _set("runtime", "device", "tpu9")))
    assert main(["check", "--params", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("simgan check: ") and "runtime.device" in lines[0]
    assert "Traceback" not in captured.err


def test_the_crop_options_reach_the_unityeyes_reader(raw, tmp_path):
    tree = edited(
        raw,
        _both(
            _set("prepare", "gaze", "synthetic_eye_width_factor", 1.2),
            _set("prepare", "gaze", "synthetic_equalize", True),
        ),
    )
    params = load_params(write(tmp_path, tree))
    assert params.prepare["gaze"].sources()["synthetic"].options == {
        "size": (35, 55),
        "eye_width_factor": 1.2,
        "equalize": True,
    }
    assert "eye_width_factor" not in params.prepare["hand"].sources()["synthetic"].options


@pytest.mark.parametrize("profile", sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml")))
def test_every_profile_over_params_yaml_loads(raw, tmp_path, profile):
    from simgan.profiles import merge

    params = load_params(write(tmp_path, merge(raw, read_yaml(ROOT / "profiles" / f"{profile}.yaml"))))
    if profile == "paper":  # the paper's architecture: its padding is unstated, zeros is the common default
        assert params.refiner_config("gaze").padding_mode == "zeros"


def test_the_demo_profile_is_the_recipe_that_keeps_the_pupil_on_real_eyes(raw, tmp_path):
    """docs/results.md, "Recipe study on real eyes" and "A pupil-region term": synthetic crops framed and
    equalised as MPIIGaze's eyes, reflect padding (no frame of lines along the border), ψ = derivatives at
    λ 0.5 with the pupil region held at β 4.0 (pupil shift under 1.5 px on real eyes at 3 seeds)."""
    params = load_params(write(tmp_path, raw))
    assert params.prepare["gaze"].sources()["synthetic"].options == {
        "size": (35, 55),
        "eye_width_factor": 1.2,
        "equalize": True,
    }
    assert params.refiner_config("gaze").padding_mode == "reflect"
    gaze = params.train_config("gaze")
    assert (gaze.self_reg_weight, gaze.self_reg_feature, gaze.self_reg_level_weight) == (0.5, "gradients", 0.0)
    assert (gaze.self_reg_pupil_weight, gaze.self_reg_pupil_sigma) == (4.0, 0.08)


def test_the_pupil_region_term_is_for_eyes_only(raw, tmp_path):
    raw["pretrain"]["hand"]["self_reg_pupil_weight"] = 1.0
    with pytest.raises(
        ConfigError, match="pretrain.hand.self_reg_pupil_weight is 1.0: the pupil-region term needs eyes"
    ):
        load_params(write(tmp_path, raw))
    raw["pretrain"]["hand"]["self_reg_pupil_weight"] = 0.0
    raw["pretrain"]["gaze"]["self_reg_pupil_weight"] = 4.0
    assert load_params(write(tmp_path, raw)).train_config("gaze").self_reg_pupil_weight == 4.0
