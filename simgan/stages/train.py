"""Stage train: Algorithm 1's adversarial rounds (K_g refiner and K_d discriminator steps, history
buffer), continuing from the pretrain stage's checkpoint."""

from __future__ import annotations

import sys

from simgan import layout
from simgan.stages.common import LiveReport, parse
from simgan.stages.pretrain import build_trainer


def main() -> int:
    task, params, _ = parse("train", __doc__)
    out = layout.trained(task)
    report = LiveReport(out / "dvclive")
    trainer = build_trainer(task, params, with_rounds=True, report=report)
    trainer.load(layout.pretrained(task) / "checkpoint.pt")  # step = end of pretraining
    trainer.fit(checkpoint_path=out / "checkpoint.pt")
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
