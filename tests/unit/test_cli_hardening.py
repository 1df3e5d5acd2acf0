"""The `simgan` command under careless use (issue 16): every misuse is one line and a non-zero exit, never a
traceback, a silent wrong result or lost data. Run in-process (`simgan.cli.main`) to stay fast."""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simgan import cli
from simgan.inference import RefinerRunner, build_refiner
from simgan.io import atomic_write
from simgan.nn.refiner import Refiner, RefinerConfig
from simgan.training.checkpoint import save_checkpoint

EYES, HANDS = (35, 55), (64, 64)


def _checkpoint(path: Path, size: tuple[int, int]) -> Path:
    """A refiner checkpoint as training writes it (configs + weights), untrained: fast, same format."""
    config = RefinerConfig(width=4, num_blocks=0, input_size=size)
    save_checkpoint(path, {"refiner_config": config.to_dict(), "refiner": Refiner(config).state_dict()})
    return path


@pytest.fixture
def eyes_checkpoint(tmp_path) -> Path:
    return _checkpoint(tmp_path / "gaze.pt", EYES)


def _pixels(count: int, size=EYES, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *size), dtype=np.uint8)


def _folder(path: Path, count: int = 3) -> Path:
    path.mkdir()
    for i, image in enumerate(_pixels(count)):
        Image.fromarray(image).save(path / f"eye_{i}.png")
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------- item 3: a checkpoint of another size


@pytest.mark.parametrize("checkpoint_size, array_size", [(HANDS, EYES), (EYES, (128, 128))])
def test_refine_refuses_arrays_of_another_size_than_the_checkpoint(tmp_path, capsys, checkpoint_size, array_size):
    checkpoint = _checkpoint(tmp_path / "c.pt", checkpoint_size)
    np.save(tmp_path / "in.npy", _pixels(4, array_size))
    code = cli.main(["refine", "--checkpoint", str(checkpoint), str(tmp_path / "in.npy"), str(tmp_path / "out.npy")])
    assert code != 0 and not (tmp_path / "out.npy").exists()
    err = _one_line_error(capsys)
    assert f"{array_size[0]}×{array_size[1]}" in err and f"{checkpoint_size[0]}×{checkpoint_size[1]}" in err


def test_the_runner_itself_refuses_another_size(eyes_checkpoint):
    runner = RefinerRunner.from_checkpoint(eyes_checkpoint, device="cpu")
    with pytest.raises(ValueError, match="size 128×128, expected 35×55"):
        runner.refine(_pixels(2, (128, 128)))
    config = RefinerConfig(width=4, num_blocks=0, input_size=HANDS)
    with pytest.raises(ValueError, match="size 35×55, expected 64×64"):  # as the service builds it
        RefinerRunner(build_refiner(config.to_dict(), Refiner(config).state_dict())).refine(_pixels(1))


# ---------------------------------------------------------------- item 4: the output is the input


def test_refine_never_writes_over_its_input(tmp_path, capsys, eyes_checkpoint):
    np.save(tmp_path / "x.npy", _pixels(2))
    original = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "link.npy").symlink_to(tmp_path / "x.npy")
    images = _folder(tmp_path / "images")
    before = _contents(images)
    for source, target in [
        (tmp_path / "x.npy", tmp_path / "x.npy"),
        (tmp_path / "x.npy", tmp_path / "link.npy"),  # the same file by another name
        (images, images),
        (images, tmp_path / "images" / ".." / "images"),
    ]:
        assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(source), str(target)]) != 0
        assert "would replace the originals" in _one_line_error(capsys)
    # an output folder that holds the input folder would be replaced whole: refused too
    outer = tmp_path / "outer"
    outer.mkdir()
    inner = _folder(outer / "in")
    assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(inner), str(outer)]) != 0
    assert "which a refine does not write" in _one_line_error(capsys)
    assert (tmp_path / "x.npy").read_bytes() == original and _contents(images) == before
    assert len(list(inner.iterdir())) == 3


# ---------------------------------------------------------------- item 7: failed writes, devices


def test_a_full_disk_leaves_no_set_of_pngs_that_looks_complete(tmp_path, capsys, eyes_checkpoint, monkeypatch):
    images, out = _folder(tmp_path / "images", count=4), tmp_path / "refined"
    calls = []
    save_png = cli._save_png

    def disk_fills_up(path, image, *, scale):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        save_png(path, image, scale=scale)

    monkeypatch.setattr(cli, "_save_png", disk_fills_up)
    assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(images), str(out)]) != 0
    err = _one_line_error(capsys)
    assert f"cannot write {out}: No space left on device" in err
    assert not out.exists()  # nothing at all rather than 2 of 4 PNGs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaze.pt", "images"]  # no hidden leftovers

    monkeypatch.setattr(cli, "_save_png", save_png)
    assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(images), str(out)]) == 0
    first = _contents(out)
    assert sorted(first) == [f"eye_{i}.png" for i in range(4)]
    calls.clear()
    monkeypatch.setattr(cli, "_save_png", disk_fills_up)
    (images / "eye_0.png").unlink()
    assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(images), str(out)]) != 0
    assert _contents(out) == first  # a failed re-run leaves the previous output whole
    monkeypatch.setattr(cli, "_save_png", save_png)
    assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(images), str(out)]) == 0
    assert sorted(_contents(out)) == ["eye_1.png", "eye_2.png", "eye_3.png"]  # replaced whole: no stale eye_0


def test_refine_into_a_folder_that_cannot_be_written_is_one_line(tmp_path, capsys, eyes_checkpoint):
    np.save(tmp_path / "in.npy", _pixels(2))
    (tmp_path / "a_file").write_text("not a folder")
    images = _folder(tmp_path / "images")
    for source, target in [(tmp_path / "in.npy", tmp_path / "a_file" / "out.npy"), (images, tmp_path / "a_file" / "o")]:
        assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(source), str(target)]) != 0
        assert "cannot write" in _one_line_error(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_refine_into_a_read_only_folder_is_one_line(tmp_path, capsys, eyes_checkpoint):
    np.save(tmp_path / "in.npy", _pixels(2))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(tmp_path / "in.npy"), str(locked / "o.npy")])
    assert "Permission denied" in _one_line_error(capsys)


@pytest.mark.parametrize("device", ["banana", "cuda:7"])
def test_an_unusable_device_is_one_line(tmp_path, capsys, eyes_checkpoint, device):
    if device == "cuda:7" and torch_cuda_devices() > 7:
        pytest.skip("this machine has a cuda:7")
    np.save(tmp_path / "in.npy", _pixels(1))
    args = ["refine", "--checkpoint", str(eyes_checkpoint), "--device", device]
    assert cli.main([*args, str(tmp_path / "in.npy"), str(tmp_path / "out.npy")]) != 0
    assert f"device {device!r}" in _one_line_error(capsys)


def torch_cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def test_prepare_into_a_file_or_an_unwritable_place_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(SystemExit, match=r"--out .*a_file is a file, not a folder"):
        cli.main(["prepare", "--out", str(tmp_path / "a_file"), "--params", str(tmp_path / "unread.yaml")])
    with pytest.raises(SystemExit, match=r"cannot write into --out .*a_file/sub: Not a directory"):
        cli.main(["prepare", "--out", str(tmp_path / "a_file" / "sub"), "--params", str(tmp_path / "unread.yaml")])


# ---------------------------------------------------------------- items 6, 9: numbers argparse refuses


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "99999"],
        ["serve", "--port", "0"],
        ["serve", "--port", "http"],
        ["prepare", "--out", "x", "--workers", "-3"],
        ["simulate", "--workers", "-1"],
        ["refine", "--checkpoint", "c.pt", "--batch-size", "0", "a.npy", "b.npy"],
    ],
)
def test_out_of_range_numbers_are_refused_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as refused:
        cli.build_parser().parse_args(argv)
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "out of range" in err or "not a whole number" in err


def test_prepare_workers_zero_means_all_cores():
    assert cli.build_parser().parse_args(["prepare", "--out", "x", "--workers", "0"]).workers == 0


def test_serve_on_a_port_in_use_is_one_line_and_a_free_port_is_handed_to_bentoml(monkeypatch):
    executed = []

    def run_group(command, env=None, grace_s=None):
        with socket.socket() as again:  # the probe let go of the port before handing over
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", int(command[command.index("--port") + 1])))
        executed.append(command)
        return 0

    monkeypatch.setattr("simgan.procs.run_group", run_group)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(SystemExit, match=f"port {port} on 127.0.0.1 is already in use"):
            cli.main(["serve", "--bento", "simgan-gaze:latest", "--port", str(port)])
    assert executed == []
    assert cli.main(["serve", "--bento", "simgan-gaze:latest", "--port", str(port)]) == 0
    assert executed and executed[0][-2:] == ["--port", str(port)]


# ---------------------------------------------------------------- item 10: the umask is honoured


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write(tmp_path / "f.bin", lambda handle: handle.write(b"x"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == mode


def test_a_refined_folder_follows_the_umask(tmp_path, eyes_checkpoint):
    images, out = _folder(tmp_path / "images"), tmp_path / "refined"
    previous = os.umask(0o022)
    try:
        assert cli.main(["refine", "--checkpoint", str(eyes_checkpoint), str(images), str(out)]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}
