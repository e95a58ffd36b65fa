"""A test-only DataModule whose third training batch raises on rank 0 only, in trial 0's fit only: a
failure of one DDP rank while the others wait in the step's collectives (rank 0's logging or checkpoint
writing failing is the real case)."""

from __future__ import annotations

from pathlib import Path

from lit_snn.data import DigitsDataModule

FAILING_TRIAL = "trial-0000"


class FailsOnRankZero(DigitsDataModule):
    def on_after_batch_transfer(self, batch, dataloader_idx):
        trainer = self.trainer
        if (trainer.training and trainer.global_rank == 0 and trainer.global_step == 2
                and Path(trainer.default_root_dir).name == FAILING_TRIAL):
            raise RuntimeError("planted failure on rank 0")
        return super().on_after_batch_transfer(batch, dataloader_idx)
