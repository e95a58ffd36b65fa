"""Gradients of the neuron family: surrogate formulas and gradcheck through every axis combination.

A Heaviside forward has no finite-difference gradient, so the check swaps the forward for the
surrogate's smooth primitive (sigmoid(alpha u), 1/2 + atan(pi/2 alpha u)/pi) while keeping our
backward formula, and the integer quantiser for the clamp it straight-throughs. gradcheck then
verifies the whole recurrence's chain rule (resets, AR-LIF memory, thresholds, decays, every
learnable parameter) and that each surrogate derivative is the derivative of its primitive.
"""

import itertools
import math

import pytest
import torch

from lit_snn.neurons import create_neuron, neuron_config, surrogate_grad
from lit_snn.neurons import reference as reference_module
from lit_snn.neurons.surrogate import IntegerQuantizer

PRIMITIVES = {
    "sigmoid": lambda u, a: torch.sigmoid(a * u),
    "atan": lambda u, a: 0.5 + torch.atan(math.pi / 2 * a * u) / math.pi,
    "rectangle": lambda u, w: (u / w + 0.5).clamp(0, 1),
    "triangle": lambda u, w: torch.where(
        u < 0, (w + u).clamp_min(0) ** 2 / (2 * w * w), 1 - (w - u).clamp_min(0) ** 2 / (2 * w * w)
    ),
}


@pytest.mark.parametrize("kind,param", [("sigmoid", 4.0), ("atan", 2.0), ("rectangle", 1.0), ("triangle", 1.0)])
def test_surrogate_is_derivative_of_its_primitive(kind, param):
    u = torch.linspace(-1.7, 1.7, 341, dtype=torch.float64)
    u = u[((u.abs() - param / 2).abs() > 1e-3) & ((u.abs() - param).abs() > 1e-3)]  # away from kinks
    u.requires_grad_(True)
    (auto,) = torch.autograd.grad(PRIMITIVES[kind](u, param).sum(), u)
    assert torch.allclose(surrogate_grad(u.detach(), kind, param), auto, atol=1e-10)


class _SmoothSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, kind, param):
        ctx.save_for_backward(u)
        ctx.kind, ctx.param = kind, param
        return PRIMITIVES[kind](u, param)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * surrogate_grad(u, ctx.kind, ctx.param), None, None


class _ClampSpike(torch.autograd.Function):
    """The integer spike's straight-through backward (the real one) with a clamp forward."""

    @staticmethod
    def forward(ctx, z, int_max, int_scale):
        ctx.save_for_backward(z)
        ctx.int_max = int_max
        return z.clamp(0, int_max)

    @staticmethod
    def backward(ctx, g):
        return IntegerQuantizer.backward(ctx, g)


def _forward_with_state(neuron, params, x):
    """``neuron.forward_with_state(x)`` with its parameters replaced by ``params`` (for gradcheck)."""
    return torch.func.functional_call(_StateWrapper(neuron), {"neuron." + k: v for k, v in params.items()}, (x,))


class _StateWrapper(torch.nn.Module):
    def __init__(self, neuron):
        super().__init__()
        self.neuron = neuron

    def forward(self, x):
        return self.neuron.forward_with_state(x)


@pytest.fixture
def smooth_spikes(monkeypatch):
    monkeypatch.setattr(reference_module, "heaviside", lambda u, k, p: _SmoothSpike.apply(u, k, float(p)))
    monkeypatch.setattr(reference_module, "integer_spike", lambda z, d, n: _ClampSpike.apply(z, float(d), float(n)))


COMBOS = list(itertools.product(
    ["hard", "soft", "adaptive"], ["fixed", "learnable", "adaptive"], ["fixed", "learnable", "dual"],
    ["binary", "integer"],
))


@pytest.mark.parametrize("reset,threshold,decay,spike", COMBOS,
                         ids=["-".join(c) for c in COMBOS])
def test_gradcheck_every_smooth_combination(smooth_spikes, reset, threshold, decay, spike):
    torch.manual_seed(0)
    surrogate = "atan" if reset == "soft" else "sigmoid"
    neuron = create_neuron(
        "lif", reset=reset, threshold=threshold, decay=decay, spike=spike, surrogate=surrogate,
        surrogate_alpha=2.0, alpha=0.6, beta=0.4, decay_input=(decay == "learnable"),
        granularity="channel", channels=2, int_max=3.0, memory_carry=(threshold != "fixed"),
    ).double()
    with torch.no_grad():  # random, distinct parameter values per channel
        for p in neuron.parameters():
            p.add_(0.3 * torch.randn_like(p))
    names = [n for n, _ in neuron.named_parameters()]
    params = [p for _, p in neuron.named_parameters()]
    x = (torch.rand(4, 2, 2, 3, dtype=torch.float64) * 2.5 + 0.1).requires_grad_(True)

    def fn(x, *ps):
        return _forward_with_state(neuron, dict(zip(names, ps)), x)

    inputs = (x,) + tuple(p.detach().clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_parameters_receive_gradients_in_ar_lif():
    neuron = create_neuron("ar_lif", surrogate="sigmoid")
    x = torch.rand(6, 4, 100) * 2
    neuron(x).sum().backward()
    assert neuron.thr_a.grad.abs().item() > 0
    assert neuron.mem_c.grad.abs().item() > 0


def test_config_of_gradcheck_combos_is_valid():
    for reset, threshold, decay, spike in COMBOS:
        neuron_config("lif", reset=reset, threshold=threshold, decay=decay, spike=spike, alpha=0.6)
