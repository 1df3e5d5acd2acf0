"""Realism: the classifier two-sample test on same / different distributions, and the visual Turing test page."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.stats import binomtest

from simgan.evaluation.realism import two_sample_test, visual_turing_test_html


def _textured(count: int, seed: int, noise: float = 0.0, size: tuple[int, int] = (35, 55)) -> np.ndarray:
    """Smooth random blobs (an image-like distribution), optionally with fine sensor-like noise on top."""
    rng = np.random.default_rng(seed)
    fields = ndimage.gaussian_filter(rng.normal(0, 1, (count, *size)), sigma=(0, 3, 3))
    images = 128 + 40 * fields / fields.std() + noise * rng.normal(0, 1, (count, *size))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def test_two_halves_of_one_distribution_are_indistinguishable():
    images = _textured(800, seed=0)
    result = two_sample_test(images[:400], images[400:], seed=0, steps=150)
    assert result["n_test"] == 400 and result["n_correct"] == round(result["accuracy"] * 400)
    assert 0.42 < result["accuracy"] < 0.58 and result["p_value"] > 0.01
    assert result["p_value"] == pytest.approx(binomtest(result["n_correct"], 400).pvalue)


def test_clearly_different_sets_are_told_apart():
    result = two_sample_test(_textured(300, seed=1), _textured(500, seed=2, noise=12.0), seed=0, steps=150)
    assert result["n_test"] == 300  # balanced: 300 of the larger set, half of each held out
    assert result["accuracy"] > 0.9 and result["p_value"] < 1e-10 and result["p_value_greater"] < 1e-10


def test_two_sample_test_is_deterministic_and_leaves_global_state_alone():
    a, b = _textured(100, seed=3), _textured(100, seed=4, noise=6.0)
    rng_state, threads = torch.get_rng_state(), torch.get_num_threads()
    first = two_sample_test(a, b, seed=5, steps=40)
    assert torch.equal(torch.get_rng_state(), rng_state) and torch.get_num_threads() == threads
    assert two_sample_test(a, b, seed=5, steps=40) == first
    json.dumps(first)


def test_large_depth_maps_are_downsampled_inside():
    result = two_sample_test(_textured(40, seed=6, size=(128, 128)), _textured(40, seed=7, size=(128, 128)), steps=5)
    assert result["input_size_px"] == [64, 64] and result["n_test"] == 40


def test_two_sample_test_rejects_unusable_input():
    with pytest.raises(ValueError, match="same image size"):
        two_sample_test(np.zeros((10, 35, 55), np.uint8), np.zeros((10, 36, 60), np.uint8))
    with pytest.raises(ValueError, match="held-out"):
        two_sample_test(np.zeros((1, 35, 55), np.uint8), np.zeros((5, 35, 55), np.uint8))


def _trials(page: str) -> list[dict]:
    return json.loads(re.search(r"const TRIALS = (\[.*?\]);\n", page, re.DOTALL).group(1))


def test_visual_turing_page_is_self_contained(tmp_path):
    real, refined = _textured(30, seed=8), _textured(25, seed=9, noise=10.0)
    path = visual_turing_test_html(real, refined, tmp_path / "turing.html", n_pairs=12, seed=1, title="Eyes <test>")
    page = path.read_text()
    assert page.count("data:image/png;base64,") == 24  # n_pairs of each set, inline
    assert not re.search(r"https?://", page), "the page must not load anything from the network"
    assert "<link" not in page and 'src="http' not in page and "Eyes &lt;test&gt;" in page
    trials = _trials(page)
    truths = [t["truth"] for t in trials]
    assert truths.count("real") == 12 and truths.count("refined") == 12
    assert truths != sorted(truths)  # shuffled
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary file left behind
    few = visual_turing_test_html(real[:3], refined, tmp_path / "few.html", n_pairs=50)
    assert few.read_text().count("data:image/png;base64,") == 6  # capped by the smaller set


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_visual_turing_page_p_values_match_scipy(tmp_path):
    page = visual_turing_test_html(_textured(2, 0), _textured(2, 1), tmp_path / "t.html", n_pairs=2).read_text()
    script = page[page.index("function logFactorials") : page.index("function show")]
    cases = [(517, 1000), (162, 200), (5, 10), (0, 7)]
    program = script + f"console.log(JSON.stringify({json.dumps(cases)}.map(([k, n]) => binomialPValues(k, n))));"
    output = json.loads(subprocess.run(["node", "-e", program], capture_output=True, text=True, check=True).stdout)
    for (k, n), got in zip(cases, output):
        assert got["twoSided"] == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-6)
        assert got["greater"] == pytest.approx(binomtest(k, n, 0.5, alternative="greater").pvalue, rel=1e-6)
    assert output[0]["greater"] == pytest.approx(0.148, abs=5e-4)  # the paper's Table 1 value


# ------------------------------------------------------------------------------------ realism scores
from simgan.evaluation.realism import classifier_auc, kernel_inception_distance, roc_auc  # noqa: E402


def _blobs(rng, count, *, sharp: bool, brightness: float = 0.0, contrast: float = 1.0) -> np.ndarray:
    """Eye-sized images of a smooth blob, with (sharp) or without fine texture; brightness/contrast applied last."""
    y, x = np.mgrid[0:20, 0:32]
    images = []
    for _ in range(count):
        cy, cx = rng.uniform(6, 14), rng.uniform(10, 22)
        image = 120 + 60 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 30)
        if sharp:
            image = image + rng.normal(0, 12, image.shape)
        image = (image - 128) * contrast + 128 + brightness
        images.append(np.clip(image, 0, 255))
    return np.stack(images).astype(np.uint8)


def test_roc_auc_is_the_mann_whitney_statistic():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5  # ties count half


def test_realism_is_calibrated_same_distribution_near_chance_different_texture_high():
    rng = np.random.default_rng(0)
    real, real_too, textured = (_blobs(rng, 120, sharp=s) for s in (False, False, True))
    same = classifier_auc(real, real_too, budgets=(60,), seeds=(0, 1))["budgets"]["60"]
    different = classifier_auc(real, textured, budgets=(60,), seeds=(0, 1))["budgets"]["60"]
    assert abs(same["mean"] - 0.5) < 0.12 and different["mean"] > 0.9
    kid_same = kernel_inception_distance(real, real_too, subsets=10, subset_size=60)["mean"]
    kid_different = kernel_inception_distance(real, textured, subsets=10, subset_size=60)["mean"]
    assert abs(kid_same) < 0.2 * kid_different and kid_different > 0


def test_brightness_and_contrast_alone_do_not_count():
    """A refiner that only shifted brightness and contrast has changed nothing the measure rewards or
    punishes: the standardised classifier cannot tell such sets apart, while on raw pixels it can."""
    rng = np.random.default_rng(1)
    real, shifted = _blobs(rng, 120, sharp=False), _blobs(rng, 120, sharp=False, brightness=40, contrast=0.6)
    standardised = classifier_auc(real, shifted, budgets=(60,), seeds=(0, 1))["budgets"]["60"]["mean"]
    raw = classifier_auc(real, shifted, budgets=(60,), seeds=(0, 1), standardised=False)["budgets"]["60"]["mean"]
    assert abs(standardised - 0.5) < 0.12 and raw > 0.9


def test_realism_report_is_the_same_in_parallel_processes_as_one_after_another():
    """evaluate runs the realism classifiers in one process per core: the report must not depend on that, to
    the bit, and must be what the separate calls give (two-sample test, then AUC over the seeds, then KID)."""
    from simgan.evaluation.realism import realism_report, two_sample_test

    rng = np.random.default_rng(2)
    real, smooth, textured = _blobs(rng, 40, sharp=False), _blobs(rng, 40, sharp=False), _blobs(rng, 40, sharp=True)
    sets = {"real_vs_smooth": smooth, "real_vs_textured": textured}
    options = {"seed": 3, "steps": 5, "budgets": (2, 4), "seeds": 2}
    alone = realism_report(real, sets, workers=1, **options)
    parallel = realism_report(real, sets, workers=2, **options)
    assert json.dumps(parallel) == json.dumps(alone)
    assert list(alone) == list(sets) and list(alone["real_vs_textured"])[-2:] == ["auc", "kid"]
    expected = two_sample_test(real, textured, seed=3, steps=5)
    expected["auc"] = classifier_auc(real, textured, budgets=(2, 4), seeds=(3, 4))
    expected["kid"] = kernel_inception_distance(real, textured)
    assert json.dumps(alone["real_vs_textured"]) == json.dumps(expected)
