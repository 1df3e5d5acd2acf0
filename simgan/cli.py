"""The `simgan` command: what users type.

    simgan simulate  render the embedded default datasets in their published formats (no downloads)
    simgan prepare   raw inputs -> uint8 arrays, manifests and quarantine tables per task
    simgan demo      train a refiner on the built-in eye images (no downloads), resumable
    simgan refine    refine a .npy array or a folder of images with a trained checkpoint
    simgan serve     serve a task's packaged refiner over HTTP (BentoML, run as its own command)
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from simgan.io import atomic_write

DEMO_DIR = Path("artifacts/demo")


def _demo(args: argparse.Namespace) -> int:
    import torch

    from simgan.data.demo_eyes import real_like_eyes, synthetic_eyes
    from simgan.inference import RefinerRunner
    from simgan.nn.discriminator import DISCRIMINATOR_PRESETS
    from simgan.nn.refiner import REFINER_PRESETS, RefinerConfig
    from simgan.training.refiner import SimGANTrainer, TrainConfig

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    synthetic, _ = synthetic_eyes(args.synthetic, seed=args.seed)
    real, _ = real_like_eyes(args.real, seed=args.seed + 1)
    preset = REFINER_PRESETS["eyes"]
    refiner_config = RefinerConfig(**{**preset.to_dict(), "width": args.width})
    config = TrainConfig(
        batch_size=args.batch_size,
        refiner_pretrain_steps=args.refiner_pretrain_steps,
        discriminator_pretrain_steps=args.discriminator_pretrain_steps,
        adversarial_rounds=args.rounds,
        optimizer="adam",
        lr=args.lr,
        history_capacity=args.batch_size * 32,  # 64 D steps of b/2 fresh images
        checkpoint_every_steps=50,
        seed=args.seed,
    )
    metrics_rows: list[dict] = []
    trainer = SimGANTrainer(
        synthetic, real, refiner_config=refiner_config, discriminator_config=DISCRIMINATOR_PRESETS["eyes"],
        config=config, device=args.device, progress=not args.quiet,
        report=lambda step, metrics: metrics_rows.append({"step": step, **metrics}),
    )
    if checkpoint.exists() and not args.fresh:
        trainer.load(checkpoint)
        print(f"resuming from {checkpoint} at step {trainer.step}/{trainer.total_steps}")
    resumed = trainer.step > 0
    started = time.perf_counter()
    final = trainer.fit(checkpoint_path=checkpoint)
    seconds = time.perf_counter() - started

    if metrics_rows:
        metrics_file = out / "metrics.csv"
        names = sorted({key for row in metrics_rows for key in row if key != "step"})
        append = resumed and metrics_file.exists()  # a resumed run continues the same table
        with metrics_file.open("a" if append else "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["step", *names], extrasaction="ignore")
            if not append:
                writer.writeheader()
            writer.writerows(metrics_rows)

    # A grid people can look at: rows of synthetic, refined, |refined − synthetic| ×4, real.
    runner = RefinerRunner.from_checkpoint(checkpoint, device=args.device)
    shown = synthetic[:10]
    refined = runner.refine(shown)
    difference = np.clip(np.abs(refined.astype(np.int16) - shown.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    rows = [np.concatenate(list(images), axis=1) for images in (shown, refined, difference, real[:10])]
    _save_png(out / "refined_grid.png", np.concatenate(rows, axis=0), scale=3)

    all_refined = runner.refine(synthetic[:500])
    change = float(np.abs(all_refined.astype(np.float32) - synthetic[:500]).mean())
    print(f"trained {trainer.step}/{trainer.total_steps} steps in {seconds:.0f} s on {trainer.device} "
          f"(torch {torch.__version__})")
    if final:
        print("last metrics: " + ", ".join(f"{k}={v:.3g}" for k, v in sorted(final.items())))
    print(f"mean |refined − synthetic| = {change:.1f} grey levels over 500 images")
    print(f"checkpoint: {checkpoint}\ngrid (synthetic / refined / difference ×4 / real): {out / 'refined_grid.png'}")
    return 0


def _save_png(path: Path, image: np.ndarray, *, scale: int) -> None:
    from PIL import Image

    picture = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    atomic_write(path, lambda handle: picture.save(handle, format="PNG"))


def _refine(args: argparse.Namespace) -> int:
    from simgan.inference import RefinerRunner

    runner = RefinerRunner.from_checkpoint(args.checkpoint, device=args.device, batch_size=args.batch_size)
    source, target = Path(args.input), Path(args.output)
    if source.is_file() and source.suffix == ".npy":
        images = np.load(source, mmap_mode="r")
        refined = runner.refine(np.asarray(images))
        atomic_write(target, lambda handle: np.save(handle, refined))
        print(f"refined {len(refined)} images -> {target}")
        return 0
    if not source.is_dir():
        raise SystemExit(f"simgan refine: {source} is neither a .npy file nor a folder of images")
    return _refine_folder(runner, source, target)


def _refine_folder(runner, source: Path, target: Path) -> int:
    """Refine every PNG/JPEG in `source`; unreadable or mis-sized files are listed in quarantine.csv."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in source.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    expected = runner.config.input_size
    good: list[tuple[Path, np.ndarray]] = []
    quarantine: list[tuple[str, str]] = []
    for path in files:
        try:
            with Image.open(path) as picture:
                pixels = np.asarray(picture.convert("L"))
        except (UnidentifiedImageError, OSError, ValueError) as error:
            quarantine.append((str(path), f"unreadable image: {error}"))
            continue
        if pixels.shape != expected:
            quarantine.append((str(path), f"size {pixels.shape[0]}×{pixels.shape[1]}, expected {expected[0]}×{expected[1]}"))
            continue
        good.append((path, pixels))
    target.mkdir(parents=True, exist_ok=True)
    if good:
        refined = runner.refine(np.stack([pixels for _, pixels in good]))
        for (path, _), image in zip(good, refined):
            _save_png(target / f"{path.stem}.png", image, scale=1)
    if quarantine:
        with (target / "quarantine.csv").open("w", newline="") as handle:
            csv.writer(handle).writerows([("file", "reason"), *quarantine])
        for file, reason in quarantine:
            print(f"quarantined {file}: {reason}", file=sys.stderr)
    print(f"{len(files)} images in, {len(good)} refined -> {target}, {len(quarantine)} quarantined")
    if not good:
        raise SystemExit(f"simgan refine: no usable image in {source}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Replace this process with `python -m bentoml serve <bento>`: the core never imports BentoML."""
    import os

    from simgan import layout

    bento = args.bento
    if bento is None:
        record = layout.packaged(args.task) / "bento.json"
        if not record.is_file():
            raise FileNotFoundError(f"{record} does not exist: package the {args.task} refiner first "
                                    f"(`dvc repro package@{args.task}`) or name a bento with --bento")
        bento = json.loads(record.read_text())["bento"]
    env = dict(os.environ)
    env.setdefault("BENTOML_HOME", str(Path(".bentoml").resolve()))  # the store the package stage wrote
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    command = [sys.executable, "-m", "bentoml", "serve", bento, "--host", args.host, "--port", str(args.port)]
    print(f"serving {bento} from {env['BENTOML_HOME']} on http://{args.host}:{args.port} "
          f"(API page: /, OpenAPI: /docs.json)", flush=True)
    os.execve(sys.executable, command, env)
    return 0  # not reached


def _simulate(args: argparse.Namespace) -> int:
    from simgan.data.simulators import simulate

    started = time.perf_counter()
    result = simulate(Path(args.out), profile=args.profile, seed=args.seed, workers=args.workers)
    print(json.dumps(result, indent=2, default=str))
    print(f"rendered the '{args.profile}' profile into {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


def _parse_source(text: str | None, domain: str, task: str, size):
    """FORMAT:PATH -> Source, with the task's prepared size."""
    from simgan.data.prepare import READERS, Source

    if text is None:
        return None
    fmt, _, path = text.partition(":")
    if fmt not in READERS or not path:
        raise ValueError(f"--{domain} expects FORMAT:PATH with FORMAT one of {sorted(READERS)}; got {text!r}")
    options = {"size": size}
    if fmt == "nyu":
        options["kind"] = "synthdepth" if domain == "synthetic" else "depth"
    return Source(fmt, Path(path), options)


def _prepare(args: argparse.Namespace) -> int:
    from simgan.data.prepare import default_sources, prepare_task

    tasks = ["gaze", "hand"] if args.task == "all" else [args.task]
    data = Path(args.data)
    if not data.exists():
        raise SystemExit(f"simgan prepare: {data} does not exist; render the embedded default with "
                         f"`simgan simulate --out {data}` or point --data at your datasets")
    for task in tasks:
        sources = default_sources(task, data, args.hand_size)
        size = (35, 55) if task == "gaze" else args.hand_size
        for domain in ("synthetic", "real"):
            override = _parse_source(getattr(args, domain), domain, task, size)
            if override is not None:
                sources[domain] = override
        prepare_task(task, data, Path(args.out), sources=sources, workers=args.workers, progress=not args.quiet,
                     hand_size=args.hand_size, test_persons=args.test_persons.split(",") if args.test_persons else (),
                     log=print)
        print(f"grid of samples (synthetic row, real row): {Path(args.out) / task / 'samples.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simgan",
        description="SimGAN (Shrivastava et al., CVPR 2017): refine synthetic images so they look real "
        "while keeping the simulator's labels.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="train a refiner on built-in eye images (no downloads)",
        description="Train a refiner on built-in 35×55 eye images: flat synthetic renders against "
        "'real-like' ones with texture, uneven light, blur, glints and noise. The paper's eyes "
        "discriminator and refiner layout, at a reduced refiner width so it finishes in minutes on a "
        "CPU. Resumes from OUT/checkpoint.pt when present. Writes checkpoint.pt, metrics.csv and "
        "refined_grid.png (rows: synthetic, refined, difference ×4, real).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--out", default=str(DEMO_DIR), help="output folder")
    demo.add_argument("--synthetic", type=int, default=4000, help="number of synthetic images")
    demo.add_argument("--real", type=int, default=4000, help="number of real-like images")
    demo.add_argument("--width", type=int, default=32, help="refiner feature maps (paper: 64)")
    demo.add_argument("--batch-size", type=int, default=32, help="b: images per refiner / discriminator batch")
    demo.add_argument("--refiner-pretrain-steps", type=int, default=100, help="self-regularisation-only refiner steps")
    demo.add_argument("--discriminator-pretrain-steps", type=int, default=50, help="discriminator-only steps")
    demo.add_argument("--rounds", type=int, default=250, help="T: adversarial rounds of K_g=2 refiner and K_d=1 discriminator steps")
    demo.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (the demo uses Adam to converge in few steps)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data, weights and sampling")
    demo.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    demo.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=_demo)

    simulate = commands.add_parser(
        "simulate",
        help="render the embedded default datasets (UnityEyes, MPIIGaze, NYU formats)",
        description="Render the embedded default data, deterministic by seed, in the published formats "
        "so the real readers run on it: gaze/synthetic (UnityEyes jpg+json), gaze/real (MPIIGaze "
        "normalized .mat + Evaluation Subset lists), hand/synthetic and hand/real (NYU depth PNGs + "
        "joint_data.mat). The 'real' sets carry the appearance the simulators leave out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    simulate.add_argument("--out", default="data", help="folder to write (the project's data/)")
    simulate.add_argument("--profile", default="default", choices=["default", "tiny"], help="how much to render")
    simulate.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    simulate.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    simulate.set_defaults(handler=_simulate)

    prepare = commands.add_parser(
        "prepare",
        help="raw inputs -> uint8 arrays + manifests + quarantine tables",
        description="Read a task's raw inputs and write, per domain, images.npy (uint8, memory-mappable), "
        "manifest.csv (one row per image) and quarantine.csv (file, reason) under OUT/<task>/<domain>/, "
        "plus OUT/<task>/summary.json and samples.png. Inputs that cannot be used are quarantined "
        "with the reason, never dropped. By default the layout of `simgan simulate` is read; "
        "--synthetic/--real FORMAT:PATH point a domain elsewhere (formats: unityeyes, mpiigaze, "
        "gaze_h5, nyu, folder).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    prepare.add_argument("--task", default="all", choices=["gaze", "hand", "all"], help="which task")
    prepare.add_argument("--data", default="data", help="raw data root")
    prepare.add_argument("--out", default="artifacts/prepared", help="output root")
    prepare.add_argument("--synthetic", default=None, metavar="FORMAT:PATH", help="override the synthetic source")
    prepare.add_argument("--real", default=None, metavar="FORMAT:PATH", help="override the real source")
    prepare.add_argument("--hand-size", type=int, default=224, help="side of the prepared hand crops (paper: 224)")
    prepare.add_argument("--test-persons", default="p00,p01,p02",
                         help="real-eye persons held out as the labelled test split (never shown to the refiner)")
    prepare.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(handler=_prepare)

    refine = commands.add_parser(
        "refine",
        help="refine a .npy array or a folder of images with a trained checkpoint",
        description="Refine uint8 images with the refiner of a checkpoint. INPUT is a .npy array "
        "(N, H, W) or (N, C, H, W) of uint8 -> OUTPUT .npy of the same shape, or a folder of PNG/JPEG "
        "images -> OUTPUT folder of PNGs with the same names; files that cannot be read or have the "
        "wrong size are listed in OUTPUT/quarantine.csv with the reason.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    refine.add_argument("--checkpoint", required=True, help="checkpoint written by training (e.g. artifacts/demo/checkpoint.pt)")
    refine.add_argument("input", help=".npy file or folder of images")
    refine.add_argument("output", help=".npy file or folder")
    refine.add_argument("--batch-size", type=int, default=1024, help="images per forward pass")
    refine.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    refine.set_defaults(handler=_refine)

    serve = commands.add_parser(
        "serve",
        help="serve a task's packaged refiner over HTTP (POST /refine, /refine_batch, /info)",
        description="Serve the bento the package stage built for TASK (its tag is in "
        "artifacts/package/TASK/bento.json; the store is $BENTOML_HOME, default .bentoml/) with "
        "`bentoml serve`: POST /refine (multipart field `image`, PNG/JPEG -> PNG), POST /refine_batch "
        "(JSON uint8 N×H×W), POST /info; /readyz, /livez, OpenAPI at /docs.json. Runs until Ctrl+C.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--task", default="gaze", choices=["gaze", "hand"], help="whose packaged refiner")
    serve.add_argument("--bento", default=None, help="a bento tag to serve instead (e.g. simgan-gaze:latest)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=3000, help="port to listen on")
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from simgan.training.checkpoint import CheckpointError

    try:
        return args.handler(args)
    except (CheckpointError, ValueError, TypeError, FileNotFoundError) as error:
        if args.verbose:
            raise
        print(f"simgan {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
