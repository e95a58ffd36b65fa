"""Where a study's workers run besides local processes: a SLURM job array through submitit.

slurm_settings.py (the ``launcher:`` block and ``--slurm-*`` flags, checked; submitit's parameters),
flags.py (the CLI's launcher flags), slurm.py (check the stores, open the study and its queue as a
local run does, submit the array, follow it with ``--wait``), slurm_task.py (what one array task runs:
the worker loop of its kind on the shared study), preemption.py (the pre-kill signal, requeue and
resume), ddp_trial.py and plan_channel.py (one trial on several processes of a SLURM step: rank 0 the
worker, the other ranks its DDP peers).
"""
