"""A test-only DataModule whose training loader hangs in a native call while the file that
``LIT_SNN_TEST_STUCK`` names exists: a trial stuck where no Python signal handler can run."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from lit_snn.data import DigitsDataModule


class StuckDigits(DigitsDataModule):
    def train_dataloader(self):
        flag = os.environ.get("LIT_SNN_TEST_STUCK")
        if flag and Path(flag).exists():
            ctypes.CDLL(None).sleep(3600)  # libc sleep: C code, the GIL released, signals' Python handlers wait
        return super().train_dataloader()
