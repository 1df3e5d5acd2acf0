"""Throughput of the eyes refiner: what the user-facing paths cost over the bare network.

Two questions, each answered by a pair of measurements taken in the same run, same process, same
thread count, same shapes, warmed up and interleaved: `--repeats` pairs of runs, adjacent in time,
alternating which side goes first; a ratio is the median of the per-pair ratios, so a burst of load
from another process (this machine has 2 cores) hits both sides of a pair or is voted out, and the
rates shown are the median runs:

refine   `RefinerRunner.refine` (numpy uint8 in, numpy uint8 out: the whole path the CLI, the
         pipeline and the service call) against the bare reference: the same Refiner module (same
         weights, channels_last) run layer by layer under `torch.inference_mode()` on float
         batches made in advance, already channels_last, no uint8 conversion. Same FLOPs, zero
         wrapper. Target on CPU: refine >= 0.85 x bare.
train    `SimGANTrainer.fit` over adversarial rounds (K_g R steps of b, then K_d D steps on b
         refined + b real; sampling, history buffer, metrics) against a bare loop with the same
         models, optimisers, losses (`simgan.losses`), batch shapes and updates per round, on
         tensors made in advance: no sampling, no history, no metrics, no progress bar.
         Overhead = 1 - trainer rate / bare rate. Target on CPU: <= 10 %.
cuda     when a CUDA GPU is present: bf16 refine throughput at batch 1024 through `RefinerRunner`
         and its bare channels_last bf16 reference (aim: >= 50,000 images/s on an H100, 35x55).

The last line printed is one JSON object {"benchmark": "refiner", "figures": {...}}.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch

from simgan.data.transforms import to_model
from simgan.inference import RefinerRunner
from simgan.losses import discriminator_loss, refiner_adversarial_loss, self_regularization_loss
from simgan.nn.discriminator import DISCRIMINATOR_PRESETS
from simgan.nn.refiner import REFINER_PRESETS, Refiner
from simgan.training.refiner import OPTIMIZERS, SimGANTrainer, TrainConfig

PRESET = "gaze"  # the paper's eyes networks (35×55)
REFINE_RATIO_TARGET = 0.85
TRAIN_OVERHEAD_TARGET = 0.10
CUDA_BF16_AIM = 50_000  # images/s on an H100 at 35x55, batch 1024


# ------------------------------------------------------------------------------------------ utils
def eye_like(count: int, seed: int) -> tuple:
    """uint8 (count, 35, 55) images; speed does not depend on what they show."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, size=(count, 35, 55), dtype=np.uint8), None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    """Seconds one call of `fn` takes, with the device drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(first, second, repeats: int, device: torch.device) -> tuple[list[float], list[float]]:
    """Time `first` and `second` `repeats` times each, alternating which goes first (drift cancels)."""
    times_first, times_second = [], []
    for index in range(repeats):
        if index % 2 == 0:
            times_first.append(timed(first, device))
            times_second.append(timed(second, device))
        else:
            times_second.append(timed(second, device))
            times_first.append(timed(first, device))
    return times_first, times_second


def fmt_times(times: list[float]) -> str:
    return "[" + ", ".join(f"{t:.3f}" for t in times) + "] s"


def paired_ratio(numerators: list[float], denominators: list[float]) -> tuple[float, list[float]]:
    """Median of numerator_i / denominator_i over the pairs, and the per-pair ratios."""
    ratios = [n / d for n, d in zip(numerators, denominators)]
    return statistics.median(ratios), ratios


def bare_refiner_forward(refiner: Refiner, x: torch.Tensor) -> torch.Tensor:
    """The refiner's layers called directly: no input checks, no wrapper."""
    return refiner.output_activation(refiner.head(refiner.blocks(refiner.stem(x))))


# ------------------------------------------------------------------------------------------ refine
def measure_refine(
    refiner: Refiner, device: torch.device, batch_size: int, count: int, repeats: int, bf16: bool | None, label: str
) -> dict:
    """RefinerRunner.refine on `count` uint8 images against the bare channels_last network."""
    runner = RefinerRunner(refiner, device=device, batch_size=batch_size, bf16=bf16)
    images, _ = eye_like(count, seed=0)  # uint8 (N, 35, 55)
    model = runner.refiner  # the same module (and weights) the runner calls
    chunks = [
        to_model(torch.from_numpy(images[start : start + batch_size]).unsqueeze(1).to(device)).contiguous(
            memory_format=torch.channels_last
        )
        for start in range(0, count, batch_size)
    ]
    use_bf16 = runner.bf16

    def user_path() -> None:
        runner.refine(images)

    def bare() -> None:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            for chunk in chunks:
                bare_refiner_forward(model, chunk)

    user_path()  # warm-up: allocator, oneDNN / cuDNN kernel selection
    bare()
    runner_times, bare_times = interleaved(user_path, bare, repeats, device)
    runner_time, bare_time = statistics.median(runner_times), statistics.median(bare_times)
    ratio, ratios = paired_ratio(bare_times, runner_times)  # refine rate / bare rate, per pair
    batches = len(chunks)
    result = {
        "images_per_s": count / runner_time,
        "bare_images_per_s": count / bare_time,
        "ratio": ratio,
        "ms_per_batch": 1e3 * runner_time / batches,
        "bare_ms_per_batch": 1e3 * bare_time / batches,
        "batch": batch_size,
        "images": count,
        "bf16": use_bf16,
    }
    print(f"[{label}] {count} images in batches of {batch_size}, bf16={use_bf16}, median of {repeats} paired runs")
    print(
        f"  RefinerRunner.refine (uint8 numpy -> uint8 numpy): {result['images_per_s']:10.1f} images/s "
        f"{result['ms_per_batch']:9.2f} ms/batch   runs {fmt_times(runner_times)}"
    )
    print(
        f"  bare network (float channels_last, inference_mode): {result['bare_images_per_s']:9.1f} images/s "
        f"{result['bare_ms_per_batch']:9.2f} ms/batch   runs {fmt_times(bare_times)}"
    )
    print(
        f"  ratio refine / bare = {result['ratio']:.3f} (median of the pairs {', '.join(f'{r:.3f}' for r in ratios)})"
    )
    return result


# ------------------------------------------------------------------------------------------ train
def measure_train(device: torch.device, batch_size: int, rounds: int, repeats: int, warmup: int) -> dict:
    """SimGANTrainer.fit over adversarial rounds against a bare loop doing the same updates."""
    synthetic, _ = eye_like(max(1024, batch_size * 4), seed=0)
    real, _ = eye_like(max(1024, batch_size * 4), seed=1)
    config = TrainConfig(
        batch_size=batch_size,
        refiner_pretrain_steps=0,
        discriminator_pretrain_steps=0,
        adversarial_rounds=warmup + repeats * rounds,
        log_every_steps=10,
        seed=0,
    )
    trainer = SimGANTrainer(
        synthetic,
        real,
        refiner_config=REFINER_PRESETS[PRESET],
        discriminator_config=DISCRIMINATOR_PRESETS[PRESET],
        config=config,
        device=device,
        progress=False,
    )
    cuda = trainer.device.type == "cuda"
    channels_last = cuda and config.channels_last  # what the trainer does: NHWC on CUDA only
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda and config.amp else contextlib.nullcontext

    # The bare loop: copies of the same networks, the same optimiser kind and settings.
    refiner = copy.deepcopy(trainer.refiner)
    discriminator = copy.deepcopy(trainer.discriminator)
    refiner.train()
    discriminator.train()
    refiner_optimizer = OPTIMIZERS[config.optimizer](list(refiner.parameters()), config)
    discriminator_optimizer = OPTIMIZERS[config.optimizer](list(discriminator.parameters()), config)
    b = batch_size
    fresh_for_d = b - b // 2  # steady state (§2.3): b/2 current refined + b/2 from the history
    generator = torch.Generator().manual_seed(1)

    def premade(images, count: int) -> torch.Tensor:
        index = torch.randint(len(images), (count,), generator=generator)
        batch = to_model(torch.from_numpy(images[index.numpy()]).unsqueeze(1).to(device))
        return batch.contiguous(memory_format=torch.channels_last) if channels_last else batch

    synthetic_r = premade(synthetic, b)
    synthetic_d = premade(synthetic, fresh_for_d)
    with torch.no_grad(), autocast():
        past = refiner(premade(synthetic, b // 2)).float()  # stands in for the history half
    real_d = premade(real, b)
    kg, kd = config.refiner_steps_per_round, config.discriminator_steps_per_round

    def bare_round() -> None:
        for _ in range(kg):
            discriminator.requires_grad_(False)
            with autocast():
                refined = refiner(synthetic_r)
                loss = config.self_reg_weight * self_regularization_loss(
                    refined,
                    synthetic_r,
                    config.self_reg_feature,
                    config.self_reg_reduction,
                    config.self_reg_level_weight,
                ) + refiner_adversarial_loss(discriminator(refined), config.adversarial_reduction)
            discriminator.requires_grad_(True)
            refiner_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            refiner_optimizer.step()
        for _ in range(kd):
            with torch.no_grad(), autocast():
                current = refiner(synthetic_d).float()
            refined = torch.cat([current, past])
            with autocast():
                logits = discriminator(torch.cat([refined, real_d]))
                loss = discriminator_loss(logits[:b], logits[b:], config.adversarial_reduction)
            discriminator_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            discriminator_optimizer.step()

    def bare_rounds() -> None:
        for _ in range(rounds):
            bare_round()

    def trainer_rounds() -> None:
        trainer.fit(stop_at_step=trainer.step + rounds)

    trainer.fit(stop_at_step=warmup)  # fills the history with b/2 images: steady-state D batches
    for _ in range(warmup):
        bare_round()
    trainer_times, bare_times = interleaved(trainer_rounds, bare_rounds, repeats, device)
    trainer_time, bare_time = statistics.median(trainer_times), statistics.median(bare_times)
    ratio, ratios = paired_ratio(bare_times, trainer_times)  # trainer rate / bare rate, per pair
    images_per_round = kg * b + kd * fresh_for_d
    result = {
        "images_per_s": images_per_round * rounds / trainer_time,
        "bare_images_per_s": images_per_round * rounds / bare_time,
        "overhead": 1.0 - ratio,
        "ms_per_round": 1e3 * trainer_time / rounds,
        "bare_ms_per_round": 1e3 * bare_time / rounds,
        "images_per_round": images_per_round,
        "batch": b,
        "rounds_per_repeat": rounds,
        "refiner_steps_per_round": kg,
        "discriminator_steps_per_round": kd,
        "channels_last": channels_last,
        "bf16": cuda and config.amp,
    }
    print(
        f"[train] adversarial rounds of K_g={kg} R steps (b={b}) + K_d={kd} D step (b refined + b real), "
        f"{rounds} round(s) per run after {warmup} warm-up, median of {repeats} paired runs, "
        f"channels_last={channels_last}"
    )
    print(
        f"  images/s = refiner images per round / time; per round {kg}*{b} (R steps, forward+backward) "
        f"+ {kd}*{fresh_for_d} (fresh refined for the D batch, no grad; the other b/2 come from the history) "
        f"= {images_per_round}"
    )
    print(
        f"  SimGANTrainer.fit: {result['images_per_s']:10.1f} images/s {result['ms_per_round']:9.1f} ms/round   "
        f"runs {fmt_times(trainer_times)}"
    )
    print(
        f"  bare loop:         {result['bare_images_per_s']:10.1f} images/s "
        f"{result['bare_ms_per_round']:9.1f} ms/round   "
        f"runs {fmt_times(bare_times)}"
    )
    print(
        f"  overhead = 1 - trainer / bare = {100 * result['overhead']:.1f} % (1 - median of the pairs "
        f"{', '.join(f'{r:.3f}' for r in ratios)})"
    )
    return result


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Benchmark the eyes refiner: RefinerRunner.refine and SimGANTrainer.fit against bare references "
            "with the same FLOPs, measured in the same run. The last line printed is one JSON object."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="device of the refine and train comparisons ('cpu' or 'cuda'); the ratio targets "
        "(refine >= 0.85x bare, training overhead <= 10%%) are CPU targets",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch CPU threads, used by every measurement alike",
    )
    parser.add_argument(
        "--refine-batch",
        type=int,
        default=None,
        help="RefinerRunner batch_size (images per forward) for the refine comparison "
        "(default: 64 on CPU, 1024 on CUDA)",
    )
    parser.add_argument(
        "--refine-images",
        type=int,
        default=None,
        help="images per timed refine call (default: 2 batches on CPU, 16 on CUDA)",
    )
    parser.add_argument("--train-batch", type=int, default=32, help="TrainConfig.batch_size b of the train comparison")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="adversarial rounds per timed training run (each repeat times this many rounds "
        "of the trainer and as many bare rounds)",
    )
    parser.add_argument(
        "--warmup-rounds",
        type=int,
        default=1,
        help="untimed adversarial rounds first (>= 1, so the history holds b/2 images)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs of each side, interleaved in pairs; ratios are the median of the "
        "per-pair ratios (5 gives steadier figures on a busy machine, at ~1.6x the time)",
    )
    parser.add_argument("--cuda-batch", type=int, default=1024, help="batch of the CUDA bf16 refine figure")
    parser.add_argument("--cuda-images", type=int, default=16 * 1024, help="images per timed CUDA bf16 refine call")
    parser.add_argument("--skip-train", action="store_true", help="leave out the train comparison")
    parser.add_argument(
        "--skip-cuda", action="store_true", help="leave out the CUDA bf16 figure even if a GPU is present"
    )
    args = parser.parse_args(argv)
    if args.warmup_rounds < 1:
        parser.error("--warmup-rounds must be >= 1")
    for name in ("threads", "train_batch", "rounds", "repeats", "cuda_batch", "cuda_images"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.train_batch < 2:
        parser.error("--train-batch must be >= 2")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    on_cuda = device.type == "cuda"
    refine_batch = args.refine_batch or (1024 if on_cuda else 64)
    refine_images = args.refine_images or refine_batch * (16 if on_cuda else 2)
    config = REFINER_PRESETS[PRESET]

    print(
        f"refiner benchmark, preset {PRESET!r} ({config.input_size[0]}x{config.input_size[1]}, width {config.width}, "
        f"{config.num_blocks} blocks, {config.kernel_size}x{config.kernel_size})"
    )
    print(
        f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads; torch {torch.__version__}; "
        f"python {platform.python_version()}; device {device}"
    )
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"date: {date}")

    torch.manual_seed(0)
    refine = measure_refine(
        Refiner(config), device, refine_batch, refine_images, args.repeats, bf16=None, label=f"refine on {device}"
    )

    train = None
    if not args.skip_train:
        train = measure_train(device, args.train_batch, args.rounds, args.repeats, args.warmup_rounds)

    cuda = None
    cuda_name = None
    if args.skip_cuda:
        print("[cuda] skipped (--skip-cuda)")
    elif not torch.cuda.is_available():
        print("[cuda] CUDA is not available: no bf16 figure (cuda_* figures are null)")
    else:
        cuda_name = torch.cuda.get_device_name(0)
        torch.manual_seed(0)
        cuda = measure_refine(
            Refiner(config),
            torch.device("cuda"),
            args.cuda_batch,
            args.cuda_images,
            args.repeats,
            bf16=True,
            label=f"refine bf16 on {cuda_name}",
        )
        print(f"  aim: >= {CUDA_BF16_AIM:,} images/s on an H100 at 35x55")

    figures = {
        "preset": PRESET,
        "device": str(device),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": date,
        "repeats": args.repeats,
        "refine_batch": refine["batch"],
        "refine_images": refine["images"],
        "refine_images_per_s": round(refine["images_per_s"], 2),
        "refine_bare_images_per_s": round(refine["bare_images_per_s"], 2),
        "refine_ms_per_batch": round(refine["ms_per_batch"], 3),
        "refine_bare_ms_per_batch": round(refine["bare_ms_per_batch"], 3),
        "refine_ratio": round(refine["ratio"], 4),
        "refine_ratio_target": REFINE_RATIO_TARGET,
        "refine_ratio_met": refine["ratio"] >= REFINE_RATIO_TARGET,
        "train_batch": train["batch"] if train else None,
        "train_rounds_per_repeat": train["rounds_per_repeat"] if train else None,
        "train_images_per_round": train["images_per_round"] if train else None,
        "train_images_per_s": round(train["images_per_s"], 2) if train else None,
        "train_bare_images_per_s": round(train["bare_images_per_s"], 2) if train else None,
        "train_ms_per_round": round(train["ms_per_round"], 2) if train else None,
        "train_bare_ms_per_round": round(train["bare_ms_per_round"], 2) if train else None,
        "train_overhead": round(train["overhead"], 4) if train else None,
        "train_overhead_target": TRAIN_OVERHEAD_TARGET,
        "train_overhead_met": (train["overhead"] <= TRAIN_OVERHEAD_TARGET) if train else None,
        "cuda_device": cuda_name,
        "cuda_bf16_batch": cuda["batch"] if cuda else None,
        "cuda_bf16_refine_images_per_s": round(cuda["images_per_s"], 1) if cuda else None,
        "cuda_bf16_bare_images_per_s": round(cuda["bare_images_per_s"], 1) if cuda else None,
        "cuda_bf16_refine_ratio": round(cuda["ratio"], 4) if cuda else None,
        "cuda_bf16_aim_images_per_s": CUDA_BF16_AIM,
        "seconds": None,
    }
    targets = [
        f"refine ratio {refine['ratio']:.3f} (target >= {REFINE_RATIO_TARGET}): "
        f"{'met' if figures['refine_ratio_met'] else 'NOT met'}"
    ]
    if train:
        targets.append(
            f"train overhead {100 * train['overhead']:.1f} % (target <= {100 * TRAIN_OVERHEAD_TARGET:.0f} %): "
            f"{'met' if figures['train_overhead_met'] else 'NOT met'}"
        )
    if cuda:
        targets.append(
            f"CUDA bf16 refine {cuda['images_per_s']:,.0f} images/s on {cuda_name} "
            f"(aim >= {CUDA_BF16_AIM:,} on an H100)"
        )
    if device.type != "cpu":
        targets.append("(the ratio targets are CPU targets; these ratios were measured on " + str(device) + ")")
    print("targets: " + "; ".join(targets))
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(f"benchmark time: {figures['seconds']} s")
    print(json.dumps({"benchmark": "refiner", "figures": figures}))
    return figures


if __name__ == "__main__":
    main()
