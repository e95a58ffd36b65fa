"""The CPU path of the neuron family: what ``backend: auto`` runs on CPU tensors (fp32, bf16, fp16).

``multistep_cpu`` (``scan.py``) is the neuron scan as one autograd Function with a hand-written
backward: ``numba_scan.py`` (the Function and ``numba_supports``) runs ``numba_kernels.py``, the
scan as one numba-compiled fused loop per direction, the CPU analogue of the Triton kernel (it saves
only x and the parameters; compiled once per dtype and cached on disk; ``warmup.py`` compiles it
before a study's workers start). ``parallel_cpu`` (``parallel.py``) is PSN's, on the kernels of
``numba_parallel.py``. Their temporaries come from a pool kept mapped between calls (``scratch.py``).
Without numba (``LIT_SNN_CPU_NUMBA=0``, numba missing, or a Python numba does not support) both run
the PyTorch reference (``reference.multistep_reference``, ``parallel.parallel_reference``: autograd),
which stays the spec and the oracle; ``tests/neurons/test_cpu_path.py`` holds the kernels equal to it
(``test_cpu_numba.py``: the numba path's own checks).
"""

from .parallel import parallel_cpu
from .scan import multistep_cpu

__all__ = ["multistep_cpu", "parallel_cpu"]
