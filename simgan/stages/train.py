"""Stage train: Algorithm 1's adversarial rounds (K_g refiner and K_d discriminator steps, history
buffer), continuing from the pretrain stage's checkpoint.

A killed run resumes from its own last checkpoint (a persistent DVC output) when that checkpoint is an
unfinished run of the same networks, schedule, data and pretrained starting point; otherwise it starts
again from the pretrain checkpoint.
"""

from __future__ import annotations

import hashlib
import sys

from simgan import layout
from simgan.stages.common import LiveReport, parse
from simgan.stages.pretrain import build_trainer, resume_if_killed


def main() -> int:
    task, params, _ = parse("train", __doc__)
    out = layout.trained(task)
    start = layout.pretrained(task) / "checkpoint.pt"
    report = LiveReport(out / "dvclive")
    trainer = build_trainer(task, params, with_rounds=True, report=report)
    trainer.extra_state["pretrained_sha256"] = hashlib.sha256(start.read_bytes()).hexdigest()[:16]
    if not resume_if_killed(trainer, out / "checkpoint.pt", f"train@{task}"):
        trainer.load(start)  # step = end of pretraining
    trainer.fit(checkpoint_path=out / "checkpoint.pt")
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
