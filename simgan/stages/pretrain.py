"""Stage pretrain: Algorithm 1's first two phases — the refiner on self-regularisation only, then the
discriminator — on the synthetic train split and the real refiner split (no real labels)."""

from __future__ import annotations

import sys

from simgan import layout
from simgan.config import model_configs, train_config
from simgan.stages.common import LiveReport, device, parse, prepared_images
from simgan.training.refiner import SimGANTrainer


def build_trainer(task: str, params, *, with_rounds: bool, report) -> SimGANTrainer:
    """The trainer of both training stages: same data, same networks, same pretraining schedule."""
    pre = params.pretrain[task]
    synthetic, _ = prepared_images(task, "synthetic", splits=("train",))
    real, _ = prepared_images(task, "real", splits=("refiner",))
    refiner_config, discriminator_config = model_configs(pre, tuple(params.prepare[task].image_size))
    return SimGANTrainer(synthetic, real, refiner_config=refiner_config, discriminator_config=discriminator_config,
                         config=train_config(pre, params.train[task] if with_rounds else None),
                         device=device(pre.device), report=report)


def main() -> int:
    task, params, _ = parse("pretrain", __doc__)
    out = layout.pretrained(task)
    report = LiveReport(out / "dvclive")
    trainer = build_trainer(task, params, with_rounds=False, report=report)
    trainer.fit(checkpoint_path=out / "checkpoint.pt")
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
