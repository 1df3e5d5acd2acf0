"""What the retrain flow promotes on: the labelled metric where a task has one, realism where it has none."""

from __future__ import annotations

from flows.retrain import DEFAULT_DIRECTION, DEFAULT_METRIC, FALLBACK_METRIC, decide

GAZE, HAND = "artifacts/evaluate/gaze/metrics.json", "artifacts/evaluate/hand/metrics.json"


def run(gaze_within=None, gaze_realism=0.7, hand_within=None, hand_realism=0.8) -> dict:
    metrics = {f"{GAZE}:{FALLBACK_METRIC}": gaze_realism, f"{HAND}:{FALLBACK_METRIC}": hand_realism}
    if gaze_within is not None:
        metrics[f"{GAZE}:{DEFAULT_METRIC}"] = gaze_within
    if hand_within is not None:
        metrics[f"{HAND}:{DEFAULT_METRIC}"] = hand_within
    return metrics


def test_labelled_tasks_are_judged_on_the_labelled_metric_alone():
    before = run(gaze_within=17.8, hand_within=5.6)
    ok, why = decide(run(gaze_within=18.0, hand_within=5.7, gaze_realism=0.99), before, DEFAULT_METRIC, "max")
    assert ok and FALLBACK_METRIC not in why  # realism got worse, but labels decide where they exist
    ok, why = decide(run(gaze_within=17.0, hand_within=5.7), before, DEFAULT_METRIC, DEFAULT_DIRECTION)
    assert not ok and "refined_within_pct got worse, 17.8 -> 17" in why


def test_a_task_without_labelled_test_images_is_judged_on_realism():
    before = run(gaze_within=17.8, hand_realism=0.80)
    ok, why = decide(run(gaze_within=18.0, hand_realism=0.85), before, DEFAULT_METRIC, DEFAULT_DIRECTION)
    assert not ok and "without labelled real test images, on realism" in why and "0.8 -> 0.85" in why
    ok, why = decide(run(gaze_within=18.0, hand_realism=0.75), before, DEFAULT_METRIC, DEFAULT_DIRECTION)
    assert ok and "refined_within_pct" in why and "0.8 -> 0.75" in why


def test_no_labelled_metric_anywhere_is_still_a_comparison_not_a_free_pass():
    before = run()
    ok, why = decide(run(gaze_realism=0.9), before, DEFAULT_METRIC, DEFAULT_DIRECTION)
    assert not ok and "gaze" in why
    assert decide(run(), None, DEFAULT_METRIC, DEFAULT_DIRECTION)[0]  # the first run: nothing to compare
