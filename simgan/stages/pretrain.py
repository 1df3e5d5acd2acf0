"""Stage pretrain: Algorithm 1's first two phases — the refiner on self-regularisation only, then the
discriminator — on the synthetic train split and the real refiner split (no real labels).

A killed run resumes from its last checkpoint (a persistent DVC output) when that checkpoint is an
unfinished run of the same networks, schedule and data (`TrainingLoop.resume_if_unfinished`).

Several processes (DDP) when the environment asks: SIMGAN_NPROC, SIMGAN_LAUNCHER, or several GPUs (the stage then
re-runs itself under torchrun, `simgan.stages.common.relaunch`; docs/scaling.md). Rank 0 writes the outputs.
"""

from __future__ import annotations

import sys

from simgan import layout
from simgan.stages.common import parse, rank_zero_report, refiner_trainer


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("pretrain", __doc__, argv, data_parallel=True)
    out = layout.pretrained(task)
    trainer = refiner_trainer(task, params, with_rounds=False, report=None)
    with rank_zero_report(trainer, out / "dvclive"):
        trainer.resume_if_unfinished(out / "checkpoint.pt")
        trainer.fit(checkpoint_path=out / "checkpoint.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
