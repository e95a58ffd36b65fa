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


COMBOS = [c for c in itertools.product(
    ["hard", "soft", "adaptive", "complementary", "gated", "none"],
    ["fixed", "learnable", "adaptive", "spike_adaptive"], ["fixed", "learnable", "dual", "gated"],
    ["binary", "integer"],
) if not (c[0] in ("adaptive", "complementary") and c[1] == "spike_adaptive")]  # both need the state M


@pytest.mark.parametrize("reset,threshold,decay,spike", COMBOS,
                         ids=["-".join(c) for c in COMBOS])
def test_gradcheck_every_smooth_combination(smooth_spikes, reset, threshold, decay, spike):
    torch.manual_seed(0)
    surrogate = "atan" if reset == "soft" else "sigmoid"
    neuron = create_neuron(
        "lif", reset=reset, threshold=threshold, decay=decay, spike=spike, surrogate=surrogate,
        surrogate_alpha=2.0, alpha=0.6, beta=0.4, decay_input=(decay == "learnable"),
        granularity="channel", channels=2, int_max=3.0, memory_carry=(threshold != "fixed" or reset != "adaptive"),
        v_threshold=0.8, time_steps=4, slope="learnable" if decay == "dual" else "none",
        adapt_learnable=threshold == "spike_adaptive",
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
        neuron_config("lif", reset=reset, threshold=threshold, decay=decay, spike=spike, alpha=0.6, v_threshold=0.8,
                      time_steps=4)


# ---------------------------------------------------------------- detach_reset, by hand
# Two steps, x = [1.2, x2], loss L = S_1 + S_2. The reset's dependence on S_1 either carries
# gradient (detach_reset False) or not (True, the I-LIF authors' mem_update):
# - i_lif (U = 0.25 V + X, S = round(clamp(U, 0, 4)), STE 1, V = U - S), x2 = 0.5:
#   U1 = 1.2, S1 = 1, V1 = 0.2; U2 = 0.55, S2 = 1. dU2/dU1 = 0.25 (1 - dS1/dU1) = 0, detached 0.25:
#   dL/dx = [1 + 0, 1], detached [1 + 0.25, 1].
# - soft_lif (U = 0.5 V + X, rectangle(1): 1 on |U - 1| < 0.5, V = U - S), x2 = 0.5:
#   U1 = 1.2 (S1 = 1, sg 1), V1 = 0.2; U2 = 0.6 (S2 = 0, sg 1). dU2/dU1 = 0.5 (1 - 1) = 0, detached 0.5:
#   dL/dx = [1, 1], detached [1.5, 1].
# - hard_lif (V = U (1 - S)), x2 = 0.6: V1 = 0, dV1/dU1 = (1 - S1) - U1 sg1 = -1.2, detached 0;
#   U2 = 0.6 (S2 = 0, sg 1): dS2/dx1 = 0.5 * -1.2 = -0.6: dL/dx = [0.4, 1], detached [1, 1].
DETACH_CASES = {
    "i_lif": (0.5, [1.0, 1.0], [1.25, 1.0]),
    "soft_lif": (0.5, [1.0, 1.0], [1.5, 1.0]),
    "hard_lif": (0.6, [0.4, 1.0], [1.0, 1.0]),
}


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
@pytest.mark.parametrize("preset", list(DETACH_CASES))
def test_detach_reset_two_step_gradients_by_hand(preset, detach, backend):
    if backend == "triton":
        pytest.importorskip("triton")
        from lit_snn.neurons.kernels import INTERPRET

        if not INTERPRET and not torch.cuda.is_available():
            pytest.skip("Triton kernels need CUDA or TRITON_INTERPRET=1")
    x2, attached, detached = DETACH_CASES[preset]
    device = "cuda" if backend == "triton" and torch.cuda.is_available() else "cpu"
    neuron = create_neuron(preset, detach_reset=detach, backend=backend).to(device)
    x = torch.tensor([[1.2], [x2]], device=device, requires_grad=True)  # [T = 2, 1]
    s = neuron(x)
    (grad,) = torch.autograd.grad(s.sum(), x)
    assert grad.flatten().tolist() == pytest.approx(detached if detach else attached, abs=1e-6)


def test_i_lif_detaches_as_its_authors_and_ib_ra_lif_follows():
    assert neuron_config("i_lif").detach_reset and neuron_config("ib_ra_lif").detach_reset
