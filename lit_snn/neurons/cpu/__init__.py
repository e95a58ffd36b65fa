"""The CPU path of the neuron family: what ``backend: auto`` runs on CPU tensors (fp32, bf16, fp16).

``multistep_cpu`` (``scan.py``) is the neuron scan as one autograd Function with a hand-written
backward, in one of two implementations. By default ``numba_scan.py`` (the Function and
``numba_supports``) runs ``numba_kernels.py``, the scan as one numba-compiled fused loop per
direction, the CPU analogue of the Triton kernel (it saves only x and the parameters; compiled once
per dtype and cached on disk). The fallback (``LIT_SNN_CPU_NUMBA=0``, no numba, or a variant numba
does not cover) is torch ops per step: ``forward.py`` runs the step loop in place, ``adjoint.py``
the reverse-time adjoint of the Triton kernel's backward step, both on reused step-sized rows
(``scratch.py``: memory kept mapped from call to call, ``rows.py``) with the parameters as 0-dim
tensors (``params.py``). ``parallel_cpu`` (``parallel.py``) is PSN's: the numba kernels of
``numba_parallel.py`` behind the same switch, torch matmuls as the fallback. The PyTorch reference
(``reference.multistep_reference``) stays the spec and the oracle; ``tests/neurons/test_cpu_path.py``
holds both implementations equal to it (``test_cpu_numba.py``: the numba path's own checks).
"""

from .parallel import parallel_cpu
from .scan import multistep_cpu

__all__ = ["multistep_cpu", "parallel_cpu"]
