"""Fused Triton kernels of the neuron family (forward + backward over all T steps in one launch each).

``multistep_triton(x, alpha, beta, vth, thr_coef, mem_gain, spec)`` has the signature and the math
of ``lit_snn.neurons.reference.multistep_reference``; see ``multistep.py`` for the kernels, what
the backward keeps per element, and the numerics. Without Triton, calling it raises ``RuntimeError``
(no silent fallback: use ``backend="torch"``).
"""

from __future__ import annotations

try:
    import triton  # noqa: F401
except Exception as err:  # noqa: BLE001  (missing or broken Triton: fail loudly at call time)
    _IMPORT_ERROR: Exception | None = err
else:
    _IMPORT_ERROR = None

if _IMPORT_ERROR is None:
    from .multistep import INTERPRET, multistep_triton
else:
    INTERPRET = False

    def multistep_triton(x, alpha, beta, vth, thr_coef, mem_gain, spec):
        raise RuntimeError(
            f"multistep_triton needs Triton, which could not be imported ({_IMPORT_ERROR!r}); install "
            "triton (pip install 'lit_snn[gpu]') or use the PyTorch reference (backend='torch')"
        )

TRITON_AVAILABLE = _IMPORT_ERROR is None

__all__ = ["INTERPRET", "TRITON_AVAILABLE", "multistep_triton"]
