"""The CPU path of the neuron family: what ``backend: auto`` runs on CPU tensors (fp32, bf16, fp16).

``multistep_cpu`` (``scan.py``) is the neuron scan as one autograd Function with a hand-written
backward: ``forward.py`` runs the step loop in place, ``adjoint.py`` the reverse-time adjoint of the
Triton kernel's backward step, both on reused step-sized rows (``scratch.py``: memory kept mapped
from call to call) with the parameters as 0-dim tensors (``params.py``). ``parallel_cpu``
(``parallel.py``) is PSN's. The PyTorch reference (``reference.multistep_reference``) stays the spec
and the oracle; ``tests/neurons/test_cpu_path.py`` holds the two equal.
"""

from .parallel import parallel_cpu
from .scan import multistep_cpu

__all__ = ["multistep_cpu", "parallel_cpu"]
