"""The `simgan` command: what users type.

    simgan simulate  render the embedded default datasets in their published formats (no downloads)
    simgan check     check params.yaml (and a profile over it) before running anything
    simgan prepare   raw inputs -> uint8 arrays, manifests and quarantine tables, outside the pipeline
    simgan profile   run a profile (a delta over params.yaml, e.g. the paper's) as a DVC experiment
    simgan refine    refine a .npy array or a folder of images with a trained checkpoint
    simgan serve     serve a task's promoted refiner over HTTP (BentoML, run as its own process group)
    simgan promoted  print the promoted bento (or model) tag of a task
    simgan rollback  serve a task's previous promoted model again
    simgan run       run a Prefect worker or server so that one Ctrl-C or SIGTERM stops it

The main job is the pipeline, `dvc repro` (the README's `make demo`): it reads params.yaml and writes
artifacts/. Commands here that write never write into DVC's outputs under artifacts/; `simgan rollback`
rewrites artifacts/promoted.json, which no stage declares (the retrain flow and it own that file).
"""

from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from simgan import layout
from simgan.io import atomic_write


def _save_png(path: Path, image: np.ndarray, *, scale: int) -> None:
    from PIL import Image

    picture = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    atomic_write(path, lambda handle: picture.save(handle, format="PNG"))


def _same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name one file or folder (through links, `..` or another spelling)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _refine(args: argparse.Namespace) -> int:
    from simgan.inference import RefinerRunner, resolve_device

    source, target = Path(args.input), Path(args.output)
    device = resolve_device(args.device)  # 'banana', or 'cuda:7' on a machine without it: one line, before any work
    if _same_file(source, target):
        raise ValueError(
            f"the output {target} is the input {source}: refining in place would replace the originals; "
            f"name another output"
        )
    if source.is_file() and source.suffix == ".npy":
        runner = RefinerRunner.from_checkpoint(args.checkpoint, device=device, batch_size=args.batch_size)
        images = np.load(source, mmap_mode="r")
        problem = runner.size_problem(images.shape) if images.ndim in (3, 4) else None
        if problem is not None:
            height, width = runner.config.input_size
            raise ValueError(
                f"{source} holds images of {images.shape[-2]}×{images.shape[-1]} (H×W), but the refiner in "
                f"{args.checkpoint} was trained on {height}×{width}: is it the checkpoint of another task?"
            )
        refined = runner.refine(np.asarray(images))
        atomic_write(target, lambda handle: np.save(handle, refined))
        print(f"refined {len(refined)} images -> {target}")
        return 0
    if not source.is_dir():
        raise SystemExit(f"simgan refine: {source} is neither a .npy file nor a folder of images")
    _check_output_folder(source, target)
    runner = RefinerRunner.from_checkpoint(args.checkpoint, device=device, batch_size=args.batch_size)
    return _refine_folder(runner, source, target)


REFINE_OUTPUTS = ("*.png", "quarantine.csv")  # what a refine writes into its output folder


def _check_output_folder(source: Path, target: Path) -> None:
    """The output folder of a folder refine: new, empty, or a previous refine's output (which it replaces whole)."""
    if target.exists() and not target.is_dir():
        raise ValueError(f"the output {target} is a file; a folder of images is refined into a folder")
    if target.is_dir():
        others = [p for p in target.iterdir() if not (p.is_file() and any(p.match(g) for g in REFINE_OUTPUTS))]
        if others:
            raise ValueError(
                f"the output folder {target} holds {others[0].name!r}, which a refine does not write: a finished "
                f"refine replaces its output folder whole, so name a new or empty folder (or a previous output)"
            )


def _refine_folder(runner, source: Path, target: Path) -> int:
    """Refine every PNG/JPEG in `source`; unreadable or mis-sized files are listed in quarantine.csv.

    The output is built in a hidden sibling folder and renamed into place at the end, so a run that fails
    (disk full, killed) leaves the previous output or nothing, never a set of PNGs that looks complete.
    """
    from PIL import Image, UnidentifiedImageError

    from simgan.inference import size_problem
    from simgan.io import staging_folder

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
        problem = size_problem(pixels.shape, expected)
        if problem is not None:
            quarantine.append((str(path), problem))
            continue
        good.append((path, pixels))
    with staging_folder(target) as staging:  # published whole at the end, or removed (target as it was)
        if good:
            refined = runner.refine(np.stack([pixels for _, pixels in good]))
            for (path, _), image in zip(good, refined):
                _save_png(staging / f"{path.stem}.png", image, scale=1)
        if quarantine:
            lines = io.StringIO()
            csv.writer(lines).writerows([("file", "reason"), *quarantine])
            atomic_write(staging / "quarantine.csv", lambda handle: handle.write(lines.getvalue().encode()))
    for file, reason in quarantine:
        print(f"quarantined {file}: {reason}", file=sys.stderr)
    print(f"{len(files)} images in, {len(good)} refined -> {target}, {len(quarantine)} quarantined")
    if not good:
        raise SystemExit(f"simgan refine: no usable image in {source}")
    return 0


def _bento_to_serve(args: argparse.Namespace) -> tuple[str, str]:
    """(bento tag, where it came from): --bento as given; --latest: the last packaged (package stage's record);
    by default the promoted one (artifacts/promoted.json, written by the retrain flow and `simgan rollback`)."""
    from simgan import promotion

    if args.bento is not None:
        return args.bento, "--bento"
    if args.latest:
        record = layout.packaged(args.task) / promotion.BENTO_RECORD
        if not record.is_file():
            raise FileNotFoundError(
                f"{record} does not exist: package the {args.task} refiner first (`dvc repro package@{args.task}`)"
            )
        return json.loads(record.read_text())["bento"], f"{record} (the last packaged; not necessarily promoted)"
    entry = promotion.served(".", args.task)
    return entry["bento"], f"{promotion.PROMOTED} (promoted {entry.get('promoted_at')})"


def _serve(args: argparse.Namespace) -> int:
    """Run `python -m bentoml serve <bento>` as a child in its own process group, and stop the whole group on
    one Ctrl-C or SIGTERM (see `simgan.procs`): the core never imports BentoML."""
    from simgan.procs import run_group

    bento, origin = _bento_to_serve(args)
    env = dict(os.environ)
    env.setdefault("BENTOML_HOME", str(Path(".bentoml").resolve()))  # the store the package stage wrote
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    _check_port_free(args.host, args.port)
    command = [sys.executable, "-m", "bentoml", "serve", bento, "--host", args.host, "--port", str(args.port)]
    print(
        f"serving {bento} ({origin}) from {env['BENTOML_HOME']} on http://{args.host}:{args.port} "
        f"(API page: /, OpenAPI: /docs.json)",
        flush=True,
    )
    return run_group(command, env=env)


def _promoted(args: argparse.Namespace) -> int:
    from simgan import promotion

    entry = promotion.served(".", args.task)
    print(entry[args.field])
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from simgan import promotion

    before, now = promotion.rollback(".", args.task)
    print(
        f"{args.task}: serving {now['model']} again (bento {now['bento']}, promoted {now.get('promoted_at')}) "
        f"instead of {before['model']}; restart `simgan serve --task {args.task}` to serve it"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from simgan.procs import run_group

    if not args.cmd:
        raise ValueError("simgan run: name a command after --, e.g. `simgan run -- prefect worker start --pool P`")
    command = args.cmd[1:] if args.cmd[0] == "--" else args.cmd
    return run_group(command, grace_s=args.grace_s)


def _check_port_free(host: str, port: int) -> None:
    """Bind (host, port) as the server will (SO_REUSEADDR, as uvicorn sets it) and let go: a port in use or an
    address this machine does not have is a one-line error here rather than a traceback from the server."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as error:
        raise SystemExit(
            f"simgan serve: cannot listen on {host!r}: {getattr(error, 'strerror', None) or error}"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise SystemExit(
                    f"simgan serve: port {port} on {host} is already in use (another server?); choose one with --port"
                ) from None
            raise SystemExit(f"simgan serve: cannot listen on {host}:{port}: {error.strerror or error}") from None


def _simulate(args: argparse.Namespace) -> int:
    from simgan.data.simulators import simulate

    started = time.perf_counter()
    result = simulate(Path(args.out), profile=args.profile, seed=args.seed, workers=args.workers)
    print(json.dumps(result, indent=2, default=str))
    print(f"rendered the '{args.profile}' profile into {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


def _parse_source(text: str | None, domain: str, size: tuple[int, int], **options):
    """FORMAT:PATH -> Source at the task's prepared size (`options`: unlabelled, resize; see data.prepare.source)."""
    from simgan.data.prepare import READERS, source

    if text is None:
        return None
    fmt, _, path = text.partition(":")
    if fmt not in READERS or not path:
        raise ValueError(f"--{domain} expects FORMAT:PATH with FORMAT one of {sorted(READERS)}; got {text!r}")
    return source(fmt, path, domain, size, **options)


def inside(path: Path, folder: Path) -> bool:
    return path.resolve() == folder.resolve() or folder.resolve() in path.resolve().parents


def _check_writable_folder(out: Path) -> None:
    """--out must be a folder this process can create files in: said in one line before any work."""
    import tempfile

    if out.exists() and not out.is_dir():
        raise SystemExit(f"simgan prepare: --out {out} is a file, not a folder; name a folder (it is created)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise SystemExit(f"simgan prepare: cannot write into --out {out}: {error.strerror or error}") from None


def _prepare(args: argparse.Namespace) -> int:
    """params.yaml's prepare section (sizes, splits, formats), optionally another source, into --out."""
    from simgan.config import load_params
    from simgan.data.prepare import prepare_task

    out = Path(args.out)
    if inside(out, layout.ARTIFACTS):
        raise SystemExit(
            f"simgan prepare: {out} is inside {layout.ARTIFACTS}/, which the pipeline (DVC) owns; "
            f"`dvc repro prepare@<task>` prepares it from params.yaml. Choose another --out."
        )
    _check_writable_folder(out)
    params = load_params(args.params)
    for task in [args.task] if args.task in layout.TASKS else layout.TASKS:  # "all": every task
        p = params.prepare[task]
        size = tuple(p.image_size)
        sources = p.sources()
        unlabelled = {"unlabelled": p.test_split not in ("persons", "fraction", "evaluation_subset")}
        if unlabelled["unlabelled"]:
            unlabelled["resize"] = p.real_resize
        sources["synthetic"] = _parse_source(args.synthetic, "synthetic", size) or sources["synthetic"]
        sources["real"] = _parse_source(args.real, "real", size, **unlabelled) or sources["real"]
        for domain, src in sources.items():
            if not Path(src.path).exists():
                raise SystemExit(
                    f"simgan prepare: {task} {domain}: {src.path} does not exist; render the embedded "
                    f"default with `simgan simulate --out {layout.DATA}` or point --{domain} at your data"
                )
        prepare_task(
            task,
            out,
            sources,
            workers=args.workers or p.workers or None,
            progress=not args.quiet,
            val_fraction=p.val_fraction,
            split=p.real_split(),
            log=print,
        )
        print(f"grid of samples (synthetic row, real row): {out / task / 'samples.png'}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from simgan.config import load_params
    from simgan.profiles import overrides

    load_params(args.params)
    print(f"{args.params}: every value checked")
    for name in args.profile or []:
        changed = overrides(name, Path(args.params))
        print(f"profile {name} over {args.params}: {len(changed)} values changed, every value checked")
    return 0


def _profile(args: argparse.Namespace) -> int:
    import shlex
    import subprocess

    from simgan.profiles import overrides

    changed = overrides(args.name, Path(args.params))
    command = ["dvc", "exp", "run", "-n", args.experiment or args.name]
    for item in changed:
        command += ["-S", item]
    print(shlex.join(command), flush=True)
    if not args.run:
        return 0
    return subprocess.call(command)


def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; expected {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {what}")
        return value

    return parse


def _port(text: str) -> int:
    value = _int_at_least(1, "a port number from 1 to 65535")(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is out of range; expected a port number from 1 to 65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simgan",
        description="SimGAN (Shrivastava et al., CVPR 2017): refine synthetic images so they look real "
        "while keeping the simulator's labels.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    simulate.add_argument(
        "--workers", type=_int_at_least(0, "0 or more processes"), default=None, help="processes (default: all cores)"
    )
    simulate.set_defaults(handler=_simulate)

    check = commands.add_parser(
        "check",
        help="check params.yaml (and profiles over it) before running anything",
        description="Load params.yaml with the pipeline's strict loader: unknown, missing, mistyped or out-of-range "
        "values, duplicated keys and combinations that cannot work are reported by their dotted key. With "
        "--profile, check that profile's delta over it too.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    check.add_argument("--params", default="params.yaml", help="the params file")
    check.add_argument("--profile", action="append", metavar="NAME", help="also check profiles/NAME.yaml over it")
    check.set_defaults(handler=_check)

    profile = commands.add_parser(
        "profile",
        help="run a profile (profiles/NAME.yaml, a delta over params.yaml) as a DVC experiment",
        description="A profile holds only the values that differ from params.yaml (profiles/paper.yaml: the "
        "paper's settings, for a GPU). This prints `dvc exp run -n NAME -S key=value ...` for it after checking "
        "the merged params; with --run it runs it. params.yaml is never rewritten: DVC applies the values inside "
        "the experiment, and `dvc exp show` / `dvc exp apply NAME` compare and restore it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    profile.add_argument("name", help="the profile (file name in profiles/ without .yaml), e.g. paper")
    profile.add_argument("--params", default="params.yaml", help="the params file it is a delta over")
    profile.add_argument("--experiment", default=None, help="experiment name (default: the profile's)")
    profile.add_argument("--run", action="store_true", help="run the experiment (default: print the command)")
    profile.set_defaults(handler=_profile)

    prepare = commands.add_parser(
        "prepare",
        help="raw inputs -> uint8 arrays + manifests + quarantine tables, outside the pipeline",
        description="Prepare data as the pipeline's prepare stage does, with params.yaml's sizes, splits and "
        "sources, into a folder of your own: per task and domain, OUT/<task>/<domain>/images.npy (uint8, "
        "memory-mappable), manifest.csv (one row per image) and quarantine.csv (file, reason), plus "
        "OUT/<task>/summary.json and samples.png. Inputs that cannot be used are quarantined with the reason, "
        "never dropped. --synthetic/--real FORMAT:PATH try another source (formats: unityeyes, mpiigaze, "
        "gaze_h5, nyu, folder). The pipeline's own prepared data is `dvc repro prepare@<task>`; OUT may not "
        "be inside artifacts/, which DVC owns.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    prepare.add_argument("--out", required=True, help="output root (not inside artifacts/)")
    prepare.add_argument("--task", default="all", choices=["gaze", "hand", "all"], help="which task")
    prepare.add_argument("--params", default="params.yaml", help="the params file (sizes, splits, sources)")
    prepare.add_argument("--synthetic", default=None, metavar="FORMAT:PATH", help="override the synthetic source")
    prepare.add_argument("--real", default=None, metavar="FORMAT:PATH", help="override the real source")
    prepare.add_argument(
        "--workers",
        type=_int_at_least(0, "0 or more processes"),
        default=None,
        help="processes (default: params.yaml's, 0 = all cores)",
    )
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(handler=_prepare)

    refine = commands.add_parser(
        "refine",
        help="refine a .npy array or a folder of images with a trained checkpoint",
        description="Refine uint8 images with the refiner of a checkpoint. INPUT is a .npy array "
        "(N, H, W) or (N, C, H, W) of uint8 -> OUTPUT .npy of the same shape, or a folder of PNG/JPEG "
        "images -> OUTPUT folder of PNGs with the same names; files that cannot be read or have the "
        "wrong size are listed in OUTPUT/quarantine.csv with the reason. The images must have the size the "
        "checkpoint was trained on. OUTPUT is never INPUT; an OUTPUT folder is built aside and renamed into "
        "place whole at the end (a failed run leaves the previous one), so it must be new, empty, or a previous "
        "refine's output.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    refine.add_argument(
        "--checkpoint", required=True, help="checkpoint written by training (e.g. artifacts/train/gaze/checkpoint.pt)"
    )
    refine.add_argument("input", help=".npy file or folder of images")
    refine.add_argument("output", help=".npy file or folder")
    refine.add_argument(
        "--batch-size", type=_int_at_least(1, "1 or more images"), default=1024, help="images per forward pass"
    )
    refine.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    refine.set_defaults(handler=_refine)

    serve = commands.add_parser(
        "serve",
        help="serve a task's promoted refiner over HTTP (POST /refine, /refine_batch, /info)",
        description="Serve TASK's promoted bento (artifacts/promoted.json, written by the retrain flow when a run "
        "passes its gate, and by `simgan rollback`; the store is $BENTOML_HOME, default .bentoml/) with "
        "`bentoml serve`: POST /refine (multipart field `image`, PNG/JPEG -> PNG), POST /refine_batch "
        "(JSON uint8 N×H×W), POST /info; /readyz, /livez, OpenAPI at /docs.json. A running server keeps serving "
        "what it started with: restart it after a promotion or a rollback. Stops on one Ctrl+C or SIGTERM.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--task", default="gaze", choices=layout.TASKS, help="whose refiner")
    which = serve.add_mutually_exclusive_group()
    which.add_argument(
        "--latest",
        action="store_true",
        help="serve the last packaged bento (artifacts/package/TASK/bento.json), promoted or not",
    )
    which.add_argument("--bento", default=None, help="a bento tag to serve instead (e.g. simgan-gaze:<version>)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=_port, default=3000, help="port to listen on")
    serve.set_defaults(handler=_serve)

    promoted = commands.add_parser(
        "promoted",
        help="print the tag of TASK's promoted bento (or model): `bentoml serve $(simgan promoted --task gaze)`",
        description="Print the bento (or model) tag that artifacts/promoted.json promotes for TASK: what "
        "`simgan serve --task TASK` serves.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    promoted.add_argument("--task", default="gaze", choices=layout.TASKS, help="which task")
    promoted.add_argument("--field", default="bento", choices=["bento", "model"], help="which tag")
    promoted.set_defaults(handler=_promoted)

    rollback = commands.add_parser(
        "rollback",
        help="serve TASK's previous promoted model again (artifacts/promoted.json)",
        description="Point TASK's serving entry in artifacts/promoted.json back at the promotion before it (again: "
        "further back) and make its metrics the ones the next retrain is compared with. Nothing is retrained or "
        "rebuilt: the bento is still in the store. Restart a running `simgan serve --task TASK` to serve it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rollback.add_argument("--task", required=True, choices=layout.TASKS, help="which task")
    rollback.set_defaults(handler=_rollback)

    run = commands.add_parser(
        "run",
        help="run a long-lived command (a Prefect worker or server) that stops on one Ctrl+C or SIGTERM",
        description="Run CMD in its own process group; on Ctrl+C or SIGTERM the whole group gets SIGTERM, and "
        "SIGKILL once the command has no children left (an idle worker at once; a flow run winds down its DVC stage "
        "first) or after --grace-s: `simgan run -- prefect worker start --pool simgan-local`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument(
        "--grace-s", type=float, default=15.0, help="most seconds between SIGTERM and SIGKILL while children run"
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command")
    run.set_defaults(handler=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as error:  # ConfigError and CheckpointError are ValueErrors
        if args.verbose:
            raise
        print(f"simgan {args.command}: {one_line(error)}", file=sys.stderr)
        return 2


def one_line(error: BaseException) -> str:
    """An error as one line: an OSError as 'file: reason' (no '[Errno 28]'), others by their first line."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
