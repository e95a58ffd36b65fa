"""Host (CPU) time of one multistep_triton forward + backward with the kernel launches stubbed out.

    TRITON_INTERPRET=1 .venv/bin/python scripts/host_overhead.py

Prints, per preset, the time through the eager autograd.Function (what eager calls use), through
the torch.library custom ops (what torch.compile traces), and an empty autograd.Function as the floor.
"""

import os
import time
from unittest import mock

os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

from lit_snn.neurons import KernelSpec, create_neuron, neuron_config  # noqa: E402
from lit_snn.neurons.kernels import multistep as km  # noqa: E402


class _NoLaunch:
    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


class _Empty(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.empty_like(x)

    @staticmethod
    def backward(ctx, g):
        return torch.empty_like(g)


def per_call_us(step, n=500):
    for _ in range(50):
        step()
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n * 1e6


def main():
    torch.set_num_threads(1)
    km._fwd_runner = km._bwd_runner = _NoLaunch()
    x = torch.randn(4, 2, 3, 4, 4, requires_grad=True)
    g = torch.randn_like(x)
    floor = per_call_us(lambda: torch.autograd.grad(_Empty.apply(x), [x], g))
    print(f"empty autograd.Function: {floor:.0f} us")
    for preset in ("lif", "plif", "ar_lif"):
        spec = KernelSpec.from_config(neuron_config(preset))
        params = {k: v.detach().clone().requires_grad_(v.requires_grad)
                  for k, v in create_neuron(preset).effective_params().items()}
        inputs = [x] + [p for p in params.values() if p.requires_grad]

        def step(params=params, spec=spec, inputs=inputs):
            torch.autograd.grad(km.multistep_triton(x, **params, spec=spec)[0], inputs, g)

        eager = per_call_us(step)
        with mock.patch.object(torch.compiler, "is_compiling", return_value=True):
            custom = per_call_us(step)
        print(f"{preset:<7} forward + backward: {eager:.0f} us eager Function, {custom:.0f} us through the custom ops")


if __name__ == "__main__":
    main()
