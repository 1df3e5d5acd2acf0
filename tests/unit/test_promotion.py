"""The promotion pointer (artifacts/promoted.json): promote, what `simgan serve` picks, rollback, and `simgan run`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simgan import promotion
from simgan.cli import build_parser, main

GAZE = "artifacts/evaluate/gaze/metrics.json:refined_within_pct"
HAND = "artifacts/evaluate/hand/metrics.json:refined_within_pct"


def tags(version: str) -> dict:
    return {"model": f"simgan-refiner-gaze:m{version}", "bento": f"simgan-gaze:b{version}"}


def record(gaze: float, hand: float, data_hash: str) -> dict:
    return {"status": "promoted", "metrics": {GAZE: gaze, HAND: hand}, "data_hash": data_hash, "finished_at": "t"}


def package(root: Path, task: str, version: str) -> None:
    path = root / "artifacts" / "package" / task / "bento.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": task, **{k: v.replace("gaze", task) for k, v in tags(version).items()}}))


def test_metrics_belong_to_the_task_named_by_a_folder_of_their_file():
    assert promotion.belongs_to(GAZE, "gaze") and not promotion.belongs_to(GAZE, "hand")
    assert not promotion.belongs_to("artifacts/reports/report.json:gaze", "gaze")  # a key, not a folder


def test_promote_points_each_task_at_its_bento_and_keeps_what_it_replaced():
    first = promotion.promote(None, record(50, 40, "h1"), {"gaze": tags("1")})
    assert first["serving"]["gaze"]["bento"] == "simgan-gaze:b1"
    assert first["serving"]["gaze"]["metrics"] == {GAZE: 50}
    assert first["history"] == {}

    second = promotion.promote(first, record(60, 40, "h2"), {"gaze": tags("2")})
    assert second["serving"]["gaze"]["model"] == "simgan-refiner-gaze:m2"
    assert [entry["model"] for entry in second["history"]["gaze"]] == ["simgan-refiner-gaze:m1"]

    # the same bento promoted again (another task's data changed) is not a new entry: rollback skips no-ops
    third = promotion.promote(second, record(60, 45, "h3"), {"gaze": tags("2")})
    assert third["serving"]["gaze"] == second["serving"]["gaze"]
    assert len(third["history"]["gaze"]) == 1


def test_serve_picks_the_promoted_bento_and_latest_only_when_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    package(tmp_path, "gaze", "1")
    assert main(["serve", "--task", "gaze"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "nothing is promoted yet" in error and "--latest" in error

    promotion.write(tmp_path, promotion.promote(None, record(50, 40, "h1"), promotion.packaged(tmp_path)))
    package(tmp_path, "gaze", "2")  # a later run packaged (and was refused): not served by default
    from simgan.cli import _bento_to_serve

    args = build_parser().parse_args(["serve", "--task", "gaze"])
    assert _bento_to_serve(args)[0] == "simgan-gaze:b1"
    args = build_parser().parse_args(["serve", "--task", "gaze", "--latest"])
    assert _bento_to_serve(args)[0] == "simgan-gaze:b2"
    assert main(["promoted", "--task", "gaze"]) == 0 and capsys.readouterr().out == "simgan-gaze:b1\n"
    assert main(["promoted", "--task", "hand"]) == 2
    assert "promotes no hand bento" in capsys.readouterr().err


def test_rollback_serves_the_previous_promotion_and_restores_its_metrics(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first = promotion.promote(None, record(50, 40, "h1"), {"gaze": tags("1")})
    promotion.write(tmp_path, promotion.promote(first, record(60, 45, "h2"), {"gaze": tags("2")}))

    assert main(["rollback", "--task", "gaze"]) == 0
    assert "serving simgan-refiner-gaze:m1 again" in capsys.readouterr().out
    after = promotion.read(tmp_path)
    assert after["serving"]["gaze"]["bento"] == "simgan-gaze:b1"
    assert after["metrics"] == {GAZE: 50, HAND: 45}  # gaze's as promoted then; hand's untouched
    assert after["rollbacks"][0]["from"]["model"] == "simgan-refiner-gaze:m2"

    assert main(["rollback", "--task", "gaze"]) == 2  # nothing further back: one line, nothing changed
    assert "no earlier gaze promotion" in capsys.readouterr().err
    assert promotion.read(tmp_path) == after


def test_a_broken_record_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "promoted.json").write_text("{not json")
    assert main(["serve", "--task", "gaze"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "artifacts/promoted.json is not valid JSON" in error


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_simgan_run_stops_the_whole_group_on_one_signal(tmp_path, sig):
    """A command that ignores SIGTERM and leaves a child in a session of its own (as BentoML's workers do):
    one signal to `simgan run` ends both, within the grace period."""
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)\n"
        f"open({str(tmp_path / 'child')!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "simgan", "run", "--grace-s", "1", "--", sys.executable, "-c", script],
        stderr=subprocess.PIPE,
        text=True,
    )
    child_file = tmp_path / "child"
    deadline = time.monotonic() + 60  # a guard against hanging, not a timing assertion
    while not child_file.exists() or not child_file.read_text():
        assert time.monotonic() < deadline and wrapper.poll() is None
        time.sleep(0.1)
    child = int(child_file.read_text())
    wrapper.send_signal(sig)
    assert wrapper.wait(timeout=60) == 128 + sig
    assert "killed" in wrapper.stderr.read()
    assert not alive(child)


def alive(pid: int) -> bool:
    """Running, not a zombie (the killed child's parent is gone, and who reaps orphans varies)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.1)
    return True
