"""The refinement service under load, beside offline `simgan.inference` measured in the same run.

What it does: packages a gaze refiner exactly as the package stage does (a temporary project and
BENTOML_HOME), serves the bento with `bentoml serve` on 127.0.0.1 in its own process group, and sends
POST /refine requests (one 35×55 PNG each, multipart) from a closed-loop asyncio client at
concurrency 1, 8 and 32: each of C connections sends its next request when the previous answer
arrives. Per level: p50/p99 latency (send → full answer) and throughput (answers / wall time).

Baseline, same run, same machine: `RefinerRunner.refine` on uint8 batches of `--offline-batch` images
with torch's default threads (every core), what the refine stage and `simgan refine` do; images/s.
Ratio = service throughput / offline throughput. Targets on CPU: ratio at concurrency 32 >= 0.5; p99
at concurrency 8 <= 100 ms. The client runs on the same machine and its CPU counts against the server.

The model: --checkpoint (default artifacts/train/gaze/checkpoint.pt, the demo profile's trained
refiner), or, when that file is absent, an untrained refiner of params.yaml's gaze shape (same FLOPs).
The last line printed is one JSON object {"benchmark": "service", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

from simgan.config import load_params  # noqa: E402
from simgan.inference import RefinerRunner  # noqa: E402
from simgan.nn.refiner import Refiner  # noqa: E402
from simgan.training.checkpoint import save_checkpoint  # noqa: E402

THROUGHPUT_RATIO_TARGET = 0.5  # at concurrency 32, service / offline
P99_TARGET_MS = 100.0  # at concurrency 8
TASK = "gaze"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# ------------------------------------------------------------------------------------------ set-up
def make_project(folder: Path, checkpoint: Path | None, params_file: Path, overrides: dict) -> tuple[Path, str]:
    """A project the package stage can run in: service files, simgan/, params, a gaze checkpoint."""
    for name in ("service.py", "bentofile.yaml", "data.dvc"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, folder / name)
    shutil.copytree(ROOT / "simgan", folder / "simgan", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load(params_file.read_text())
    params["package"][TASK].update(overrides)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    target = folder / "artifacts/train" / TASK / "checkpoint.pt"
    target.parent.mkdir(parents=True)
    if checkpoint is not None:
        shutil.copy2(checkpoint, target)
        metrics = checkpoint.parent / "dvclive/metrics.json"
        if metrics.is_file():
            (target.parent / "dvclive").mkdir()
            shutil.copy2(metrics, target.parent / "dvclive/metrics.json")
        return target, f"trained checkpoint {checkpoint}"
    loaded = load_params(params_file)
    config = loaded.refiner_config(TASK)
    torch.manual_seed(0)
    save_checkpoint(target, {"refiner_config": config.to_dict(), "refiner": Refiner(config).state_dict()})
    return target, f"untrained refiner of params.yaml's {TASK} shape (no {checkpoint or 'checkpoint'} found)"


def package(project: Path, env: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "simgan.stages.package", "--task", TASK],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"package stage failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return json.loads((project / "artifacts/package" / TASK / "bento.json").read_text())


def start_server(bento: str, project: Path, env: dict, port: int) -> subprocess.Popen:
    log = open(project / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", bento, "--host", "127.0.0.1", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{(project / 'server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit("server did not become ready in 180 s")


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, then SIGKILL to the rest (BentoML's workers have sessions of their own)."""
    import psutil

    try:
        workers = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        workers = []
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for worker in workers:
        try:
            worker.kill()
        except psutil.NoSuchProcess:
            pass


# ------------------------------------------------------------------------------------------ measurements
def offline_pass(runner: RefinerRunner, batches: list[np.ndarray]) -> float:
    """images/s of one pass of RefinerRunner.refine over `batches`."""
    started = time.perf_counter()
    for chunk in batches:
        runner.refine(chunk)
    return sum(len(chunk) for chunk in batches) / (time.perf_counter() - started)


def single_image_ms(runner: RefinerRunner, images: np.ndarray) -> float:
    """Median ms of RefinerRunner.refine on one image (no HTTP): the floor of a request's latency."""
    times = []
    for image in images[:50]:
        started = time.perf_counter()
        runner.refine(image[None])
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


async def load(url: str, body: bytes, content_type: str, concurrency: int, requests: int) -> dict:
    """Closed loop: `concurrency` connections, each sends its next request when its answer is in."""
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests

    async def worker(session) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.post(url, data=body, headers={"Content-Type": content_type}) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"requests_per_s": requests / wall, "latencies": latencies, "statuses": statuses}


def multipart_png(pixels: np.ndarray) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    boundary = "simganbenchmark"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="eye.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + buffer.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=ROOT / "artifacts/train/gaze/checkpoint.pt",
        help="gaze checkpoint to serve (absent: an untrained refiner of params.yaml's gaze shape)",
    )
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="package.gaze limits and workers")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="levels of the closed loop")
    parser.add_argument("--requests", type=int, default=300, help="requests per run (after a warm-up of 50)")
    parser.add_argument("--offline-batch", type=int, default=64, help="images per RefinerRunner.refine call")
    parser.add_argument("--offline-images", type=int, default=512, help="images per offline pass")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs per level, each between two offline passes; ratios are the median over runs",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override package.gaze params for this run, e.g. --set workers=1 torch_threads=2",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    package_params = {**yaml.safe_load(args.params.read_text())["package"][TASK], **overrides}
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"service benchmark: POST /refine, one {TASK} image per request; date {date}")
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}; python {platform.python_version()}"
    )
    print(
        f"server: workers={package_params['workers']} torch_threads={package_params['torch_threads']} "
        f"(params package.{TASK}"
        f"{', overridden: ' + str(overrides) if overrides else ''})"
    )

    with tempfile.TemporaryDirectory(prefix="simgan-service-bench-") as tmp:
        project = Path(tmp)
        checkpoint = args.checkpoint if args.checkpoint.is_file() else None
        target, model_text = make_project(project, checkpoint, args.params, overrides)
        env = {**os.environ, "BENTOML_HOME": str(project / "bentoml_home"), "BENTOML_DO_NOT_TRACK": "True"}
        packaged = package(project, env)
        print(f"model: {model_text}; bento {packaged['bento']}")

        # Offline baseline: the same checkpoint, torch's default threads (every core).
        runner = RefinerRunner.from_checkpoint(target, device="cpu")
        height, width = runner.config.input_size
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (args.offline_images, height, width), dtype=np.uint8)
        batches = [images[start : start + args.offline_batch] for start in range(0, len(images), args.offline_batch)]
        offline_pass(runner, batches[:1])  # warm-up
        single_ms = single_image_ms(runner, images)
        print(
            f"[offline] RefinerRunner.refine, batches of {args.offline_batch}, {torch.get_num_threads()} torch "
            f"threads; one image alone: {single_ms:.2f} ms p50"
        )

        port = free_port()
        server = start_server(packaged["bento"], project, env, port)
        try:
            url = f"http://127.0.0.1:{port}/refine"
            body, content_type = multipart_png(images[0])
            with urllib.request.urlopen(
                urllib.request.Request(url, data=body, headers={"Content-Type": content_type}), timeout=60
            ) as response:
                served = np.asarray(Image.open(io.BytesIO(response.read())))
            difference = int(np.abs(served.astype(int) - runner.refine(images[:1])[0].astype(int)).max())
            print(f"check: served image vs offline: max |difference| = {difference} grey level(s)")
            asyncio.run(load(url, body, content_type, max(args.concurrency), 50))  # warm-up
            levels = []
            for concurrency in args.concurrency:
                # Each repeat: offline pass, service run, offline pass; its ratio uses the mean of the two
                # offline passes beside it, so load from other processes hits both sides or is voted out.
                ratios, rates, offline_rates, latencies, statuses = [], [], [], [], {}
                for _ in range(args.repeats):
                    before = offline_pass(runner, batches)
                    run = asyncio.run(load(url, body, content_type, concurrency, args.requests))
                    after = offline_pass(runner, batches)
                    rates.append(run["requests_per_s"])
                    offline_rates.append((before + after) / 2)
                    ratios.append(run["requests_per_s"] / offline_rates[-1])
                    latencies += run["latencies"]
                    for code, count in run["statuses"].items():
                        statuses[str(code)] = statuses.get(str(code), 0) + count
                level = {
                    "concurrency": concurrency,
                    "requests": args.requests * args.repeats,
                    "requests_per_s": statistics.median(rates),
                    "offline_images_per_s": statistics.median(offline_rates),
                    "ratio_to_offline": statistics.median(ratios),
                    "ratios": ratios,
                    "p50_ms": 1e3 * percentile(latencies, 50),
                    "p99_ms": 1e3 * percentile(latencies, 99),
                    "statuses": statuses,
                }
                levels.append(level)
                print(
                    f"[concurrency {concurrency:2d}] service {level['requests_per_s']:7.1f} images/s, offline "
                    f"{level['offline_images_per_s']:7.1f} images/s: ratio {level['ratio_to_offline']:.3f} "
                    f"(median of "
                    f"{', '.join(f'{r:.3f}' for r in ratios)}); latency p50 {level['p50_ms']:6.1f} ms, "
                    f"p99 {level['p99_ms']:6.1f} ms over {level['requests']} requests; statuses {statuses}"
                )
        finally:
            stop_server(server)

    by_level = {level["concurrency"]: level for level in levels}
    ratio_32 = by_level[32]["ratio_to_offline"] if 32 in by_level else None
    p99_8 = by_level[8]["p99_ms"] if 8 in by_level else None
    targets = []
    if ratio_32 is not None:
        targets.append(
            f"throughput at concurrency 32 = {ratio_32:.3f} x offline "
            f"(target >= {THROUGHPUT_RATIO_TARGET}): "
            f"{'met' if ratio_32 >= THROUGHPUT_RATIO_TARGET else 'NOT met'}"
        )
    if p99_8 is not None:
        targets.append(
            f"p99 at concurrency 8 = {p99_8:.1f} ms (target <= {P99_TARGET_MS:.0f} ms): "
            f"{'met' if p99_8 <= P99_TARGET_MS else 'NOT met'}"
        )
    print("targets: " + "; ".join(targets))
    figures = {
        "task": TASK,
        "endpoint": "/refine",
        "image": f"{height}x{width}",
        "model": model_text,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "date": date,
        "server": {key: package_params[key] for key in ("workers", "torch_threads")},
        "offline_threads": torch.get_num_threads(),
        "offline_batch": args.offline_batch,
        "offline_single_image_ms_p50": round(single_ms, 3),
        "served_vs_offline_max_difference": difference,
        "levels": [
            {
                key: (
                    round(value, 3)
                    if isinstance(value, float)
                    else [round(v, 3) for v in value]
                    if key == "ratios"
                    else value
                )
                for key, value in level.items()
            }
            for level in levels
        ],
        "throughput_ratio_c32": round(ratio_32, 4) if ratio_32 is not None else None,
        "throughput_ratio_target": THROUGHPUT_RATIO_TARGET,
        "throughput_ratio_met": ratio_32 >= THROUGHPUT_RATIO_TARGET if ratio_32 is not None else None,
        "p99_ms_c8": round(p99_8, 2) if p99_8 is not None else None,
        "p99_target_ms": P99_TARGET_MS,
        "p99_met": p99_8 <= P99_TARGET_MS if p99_8 is not None else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"benchmark time: {figures['seconds']} s")
    print(json.dumps({"benchmark": "service", "figures": figures}))
    return figures


if __name__ == "__main__":
    main()
