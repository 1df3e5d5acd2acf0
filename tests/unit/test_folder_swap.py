"""Folders written whole (issue 16, item 5): `simgan.io.staging_folder` / `publish_folder`, and `prepare_task`
built on them. A failed or killed prepare over a good folder leaves that folder as it was, never a mix of two
runs; a finished one replaces it whole."""

from __future__ import annotations

import errno
import io
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from simgan import io as simgan_io
from simgan.data import prepare
from simgan.data.prepare import DatasetError, Source, prepare_task
from simgan.io import publish_folder, staging_folder

SIZE = (35, 55)


def _pngs(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    for i, image in enumerate(np.random.default_rng(seed).integers(0, 256, (count, *SIZE), dtype=np.uint8)):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


def _sources(synthetic: Path, real: Path) -> dict[str, Source]:
    return {
        "synthetic": Source("folder", synthetic, {"size": SIZE}),
        "real": Source("folder", real, {"size": SIZE, "labels": None}),
    }


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture
def good(tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A prepared gaze folder (12 synthetic, 10 real images) and its bytes."""
    out = tmp_path / "prepared"
    sources = _sources(_pngs(tmp_path / "syn", 12, 0), _pngs(tmp_path / "real", 10, 1))
    prepare_task("gaze", out, sources, workers=1, progress=False)
    return out, _contents(out / "gaze")


def test_a_prepare_failing_in_its_second_domain_leaves_the_previous_folder_whole(good, tmp_path):
    """Item 5: the synthetic domain of the new run was already written when the real one failed."""
    out, before = good
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.png", "b.png"):
        (broken / name).write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    other_synthetic = _pngs(tmp_path / "syn2", 5, 2)  # would change synthetic/ if it were written in place
    with pytest.raises(DatasetError, match=r"no usable real image among 2 input\(s\)"):
        prepare_task("gaze", out, _sources(other_synthetic, broken), workers=1, progress=False)
    after = _contents(out / "gaze")
    rejected = after.pop("real/quarantine.rejected.csv")  # the reasons, beside the previous set
    assert len(pd.read_csv(io.BytesIO(rejected))) == 2
    assert after == before
    assert _hidden(out) == []  # the staging folder is gone

    prepare_task("gaze", out, _sources(other_synthetic, tmp_path / "real"), workers=1, progress=False)
    files = _contents(out / "gaze")
    assert "real/quarantine.rejected.csv" not in files  # a finished run replaces the folder whole
    assert len(np.load(out / "gaze/synthetic/images.npy")) == len(pd.read_csv(out / "gaze/synthetic/manifest.csv"))
    assert len(np.load(out / "gaze/synthetic/images.npy")) == 5


def test_a_full_disk_during_prepare_is_one_error_naming_the_folder_and_changes_nothing(good, monkeypatch):
    out, before = good
    write = prepare.atomic_write

    def disk_fills_up(path, writer):
        if Path(path).name == "summary.json":  # both domains are written by then
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, writer)

    monkeypatch.setattr(prepare, "atomic_write", disk_fills_up)
    with pytest.raises(OSError) as failed:
        prepare_task("gaze", out, _sources(out.parent / "syn", out.parent / "real"), workers=1, progress=False)
    assert failed.value.errno == errno.ENOSPC
    assert str(failed.value) == (
        f"[Errno {errno.ENOSPC}] cannot write {out / 'gaze'}: No space left on device; it is as it was before this run"
    )
    assert _contents(out / "gaze") == before and _hidden(out) == []


def test_other_errors_inside_a_staging_folder_pass_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        with staging_folder(tmp_path / "target"):
            raise FileNotFoundError(errno.ENOENT, "No such file", str(tmp_path / "elsewhere"))
    assert list(tmp_path.iterdir()) == []


def test_the_previous_folder_is_put_back_when_the_swap_fails(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging = tmp_path / ".out.partial-new"
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    rename = os.rename

    def refuse_the_new_folder(source, destination):
        if Path(source) == staging:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        rename(source, destination)

    monkeypatch.setattr(simgan_io.os, "rename", refuse_the_new_folder)
    with pytest.raises(OSError, match=f"cannot write {target}: Input/output error; it is as it was before this run"):
        publish_folder(staging, target)
    monkeypatch.undo()
    assert _contents(target) == {"old.txt": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.partial-new", "out"]  # nothing set aside left
    publish_folder(staging, target)
    assert _contents(target) == {"new.txt": b"new"} and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_leftovers_of_a_killed_run_are_tidied_and_a_folder_set_aside_is_put_back(tmp_path):
    """A run killed while building leaves its staging folder; one killed between the two renames of the swap
    leaves no target and the previous folder aside. The next run of the same target tidies both, and never
    touches what a live process is building."""
    target, dead, alive = tmp_path / "out", _dead_pid(), os.getppid()
    for name in (f".out.partial-{dead}-x1", f".out.old-{dead}", f".out.partial-{alive}-x2", f".other.old-{dead}"):
        (tmp_path / name).mkdir()
    (tmp_path / f".out.old-{dead}" / "kept.txt").write_text("the previous output")
    with pytest.raises(RuntimeError):
        with staging_folder(target) as staging:
            assert _contents(target) == {"kept.txt": b"the previous output"}  # put back before anything else
            raise RuntimeError("the new run fails too")
    assert not staging.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".other.old-{dead}", f".out.partial-{alive}-x2", "out"]
    assert _contents(target) == {"kept.txt": b"the previous output"}


def test_the_prepare_stage_reports_a_full_disk_in_one_line(tmp_path, monkeypatch, capsys):
    """The stage catches the OSError io raises (naming the folder, left as it was): exit 1, one line."""
    from simgan.stages import prepare as stage

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device: artifacts/prepared/gaze is as it was before this run")

    (tmp_path / "data/gaze/synthetic").mkdir(parents=True)
    (tmp_path / "data/gaze/real").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((Path(__file__).parents[2] / "params.yaml").read_text())
    monkeypatch.setattr(stage, "prepare_task", full)
    assert stage.main(["--task", "gaze"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "prepare@gaze: [Errno 28] No space left on device: artifacts/prepared/gaze is as it was before this run"
    ]
