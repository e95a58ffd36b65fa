"""Known third-party noise, hidden in one place by its exact message.

Lightning probes for SLURM when it builds a ``Trainer`` and again on every fit without a
``ckpt_path`` (``checkpoint_connector._parse_ckpt_path`` calls ``SLURMEnvironment.detect()``
whatever the plugins), and each probe warns "The `srun` command is available on your system but is
not used" on any machine with SLURM installed (78 lines in the default ablation). Naming the cluster
environment in the Trainer's plugins would remove the first probe only, and jsonargparse then
warns that it cannot serialise the plugin; so the message is hidden instead, outside a SLURM job
only (``SLURM_JOB_ID`` unset): inside one the hint may be meant.

Also hidden: Lightning's tips on every ``Trainer`` (the tensorboardX notice of its default logger,
the "litlogger" advertisement, logged at INFO whatever the loggers) and the deprecation of
``LeafSpec`` that Lightning's own pytree helper triggers in torch. Each entry matches the start of
one message only; anything else still shows. ``--verbose`` (ablate, sweep, compare) installs none
of these filters.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

SRUN_HINT = "The `srun` command is available on your system but is not used"  # Lightning's, outside SLURM jobs
# (start of the warning's message, why it is not ours to act on)
KNOWN_WARNINGS = (
    ("Starting from v1.9.0, `tensorboardX` has been removed",
     "Lightning's notice about its default logger when tensorboard is not installed (a CSV logger is used)"),
    ("`isinstance(treespec, LeafSpec)` is deprecated",
     "torch's deprecation, triggered inside lightning.pytorch.utilities._pytree"),
)
# (start of the log record's message, its logger): Lightning's INFO tips on every Trainer
KNOWN_TIPS = (
    ("💡 Tip: For seamless cloud logging and experiment tracking", "lightning.pytorch.utilities.rank_zero"),
)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(text) for text, _ in KNOWN_TIPS)


_DROP_TIPS = _DropTips()


def in_slurm_job() -> bool:
    """Whether this process runs inside a SLURM allocation (where Lightning's srun hint may be meant)."""
    return "SLURM_JOB_ID" in os.environ


def quiet_third_party() -> None:
    """Hide the known warnings and tips (``KNOWN_WARNINGS``, ``KNOWN_TIPS``; the srun hint outside SLURM)."""
    for text, _why in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(text))
    if not in_slurm_job():
        warnings.filterwarnings("ignore", message=re.escape(SRUN_HINT))
    for _text, name in KNOWN_TIPS:
        logger = logging.getLogger(name)
        if _DROP_TIPS not in logger.filters:
            logger.addFilter(_DROP_TIPS)
