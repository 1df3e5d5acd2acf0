"""Stage train: Algorithm 1's adversarial rounds (K_g refiner and K_d discriminator steps, history
buffer), continuing from the pretrain stage's checkpoint.

A killed run resumes from its own last checkpoint (a persistent DVC output) when that checkpoint is an
unfinished run of the same networks, schedule, data and pretrained starting point; otherwise it starts
again from the pretrain checkpoint.

Several processes (DDP) when the environment asks: SIMGAN_NPROC, SIMGAN_LAUNCHER, or several GPUs (the stage then
re-runs itself under torchrun, `simgan.stages.common.relaunch`; docs/scaling.md). Rank 0 writes the outputs.
"""

from __future__ import annotations

import sys

from simgan import layout
from simgan.stages.common import file_digest, parse, rank_zero_report, refiner_trainer


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("train", __doc__, argv, data_parallel=True)
    out = layout.trained(task)
    start = layout.pretrained(task) / "checkpoint.pt"
    trainer = refiner_trainer(task, params, with_rounds=True, report=None)
    trainer.provenance["pretrained_sha256"] = file_digest(start)
    with rank_zero_report(trainer, out / "dvclive"):
        if not trainer.resume_if_unfinished(out / "checkpoint.pt"):
            trainer.load(start)  # step = end of pretraining
        trainer.fit(checkpoint_path=out / "checkpoint.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
