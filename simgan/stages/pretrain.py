"""Stage pretrain: Algorithm 1's first two phases — the refiner on self-regularisation only, then the
discriminator — on the synthetic train split and the real refiner split (no real labels).

A killed run resumes from its last checkpoint (a persistent DVC output) when that checkpoint is an
unfinished run of the same networks, schedule and data (`simgan.stages.common.continues_killed_run`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from simgan import layout
from simgan.config import model_configs, train_config
from simgan.stages.common import LiveReport, continues_killed_run, device, fingerprint, parse, prepared_images
from simgan.training.refiner import SimGANTrainer


def build_trainer(task: str, params, *, with_rounds: bool, report) -> SimGANTrainer:
    """The trainer of both training stages: same data, same networks, same pretraining schedule.

    Its `extra_state` records the fingerprint of the data it trains on, for `resume_if_killed`.
    """
    pre = params.pretrain[task]
    synthetic, _ = prepared_images(task, "synthetic", splits=("train",))
    real, _ = prepared_images(task, "real", splits=("refiner",))
    refiner_config, discriminator_config = model_configs(pre, tuple(params.prepare[task].image_size))
    trainer = SimGANTrainer(synthetic, real, refiner_config=refiner_config, discriminator_config=discriminator_config,
                            config=train_config(pre, params.train[task] if with_rounds else None),
                            device=device(pre.device), report=report)
    trainer.extra_state = {"data_fingerprint": fingerprint(synthetic, real)}
    return trainer


def resume_if_killed(trainer: SimGANTrainer, checkpoint: Path, stage: str) -> bool:
    """Load `checkpoint` when it is an unfinished run of this very training; says so. Returns whether it did."""
    expected = {"refiner_config": trainer.refiner_config.to_dict(),
                "discriminator_config": trainer.discriminator_config.to_dict(),
                "train_config": trainer.config.to_dict(), **trainer.extra_state}
    if not continues_killed_run(checkpoint, expected, trainer.total_steps):
        return False
    trainer.load(checkpoint)
    print(f"{stage}: resuming at step {trainer.step} of {trainer.total_steps} from {checkpoint}", file=sys.stderr)
    return True


def main() -> int:
    task, params, _ = parse("pretrain", __doc__)
    out = layout.pretrained(task)
    report = LiveReport(out / "dvclive")
    trainer = build_trainer(task, params, with_rounds=False, report=report)
    resume_if_killed(trainer, out / "checkpoint.pt", f"pretrain@{task}")
    trainer.fit(checkpoint_path=out / "checkpoint.pt")
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
