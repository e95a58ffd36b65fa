"""Our presets against SpikingJelly 2.0's independent implementations (CPU, its Torch path).

Two things at once: an oracle for our neuron math that we did not write, and a check that the
benchmark's competitors (``lit_snn.bench.spikingjelly_neuron``) compute what our presets compute,
so a speed-up is never quoted against a different neuron. Same input: identical spikes and final
membrane, the same input gradient (and, for the exact stand-ins, the same learnable-parameter
gradient through SpikingJelly's own parametrisation). ALIF has no SpikingJelly class: its oracle
is a FlexSN core written from the spec's equations (``neurons.md`` section 7).
"""

import pytest
import torch

pytest.importorskip("spikingjelly.activation_based.neuron")

from spikingjelly.activation_based import neuron as sjn  # noqa: E402

from lit_snn.bench import spikingjelly_neuron  # noqa: E402
from lit_snn.neurons import create_neuron, neuron_config  # noqa: E402

# exact stand-ins: same dynamics and same surrogate
EXACT = ("lif", "plif", "i_lif", "ar_lif", "ar_lif_dvs", "da_lif", "clif", "klif", "glif", "psn", "alif")
# same dynamics, SpikingJelly's sigmoid surrogate instead of our rectangle (its Triton LIF has no rectangle)
SAME_FORWARD = ("hard_lif", "soft_lif")
SHAPE = (6, 3, 4, 5, 5)  # [T, B, C, H, W]; C = 4 for the per-channel GLIF
GLIF_PARAMS = {  # ours -> SpikingJelly's GatedLIFNode (both logits, same parametrisation)
    "glif_a": "alpha", "glif_b": "beta", "glif_r": "gamma", "glif_tau": "tau", "v_th": "v_threshold",
    "glif_linear_decay": "linear_decay", "glif_subreset": "v_subreset", "glif_conduct": "conduct",
}


def run_both(preset, seed=0, shape=SHAPE, perturb=False, **overrides):
    """Our neuron (its PyTorch reference path) and the benchmark's SpikingJelly stand-in on one input.

    ``perturb``: move every learnable of ours off its initial value (the stand-in takes ours), so
    that a parameter passed to the wrong SpikingJelly parameter changes the result.
    """
    torch.manual_seed(seed)
    x = (torch.randn(shape, dtype=torch.float64) * 1.5 + 0.5).float().requires_grad_(True)
    grad = torch.randn_like(x)
    if neuron_config(preset).needs_time_steps:  # GLIF, PSN: parameters per time step
        overrides.setdefault("time_steps", shape[0])
    neuron = create_neuron(preset, **overrides)
    if perturb:
        with torch.no_grad():
            for p in neuron.parameters():
                p.add_(0.4 * (torch.rand_like(p) - 0.5))
    ours, v_ours, m_ours = neuron.forward_with_state(x)
    (gx_ours,) = torch.autograd.grad(ours, x, grad, retain_graph=True)

    module, note = spikingjelly_neuron(preset, torch.float32, "cpu", T=shape[0], neuron=neuron)
    assert note is None
    if hasattr(module, "reset"):  # PSN keeps no state
        module.reset()
    out = module(x)
    theirs = out[0] if isinstance(out, tuple) else out
    (gx_theirs,) = torch.autograd.grad(theirs, x, grad, retain_graph=True)
    return dict(x=x, grad=grad, neuron=neuron, ours=ours, v_ours=v_ours, m_ours=m_ours, gx_ours=gx_ours,
                module=module, theirs=theirs, gx_theirs=gx_theirs)


def assert_same_run(r):
    """Firing and silence both exercised; the same spikes and input gradient."""
    assert 0.05 < r["ours"].mean().item() < 0.95
    assert torch.equal(r["ours"], r["theirs"])
    torch.testing.assert_close(r["gx_ours"], r["gx_theirs"], rtol=1e-5, atol=1e-5)


def param_grads(r, ours_names, theirs_names):
    """dL/d(each named parameter) of ours and of the stand-in, through the spikes of ``run_both``."""
    ours = dict(r["neuron"].named_parameters())
    theirs = dict(r["module"].named_parameters())
    g_ours = torch.autograd.grad(r["ours"], [ours[n] for n in ours_names], r["grad"], retain_graph=True)
    g_theirs = torch.autograd.grad(r["theirs"], [theirs[n] for n in theirs_names], r["grad"], retain_graph=True)
    return g_ours, g_theirs


@pytest.mark.parametrize("preset", EXACT + SAME_FORWARD)
def test_same_spikes(preset):
    r = run_both(preset)
    assert 0.05 < r["ours"].mean().item() < 0.95  # a trace that exercises both firing and silence
    assert torch.equal(r["ours"], r["theirs"])


@pytest.mark.parametrize("preset", EXACT)
def test_same_input_gradient(preset):
    r = run_both(preset)
    torch.testing.assert_close(r["gx_ours"], r["gx_theirs"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset", SAME_FORWARD)
def test_surrogate_stand_in_differs_only_in_gradient(preset):
    r = run_both(preset)
    assert not torch.allclose(r["gx_ours"], r["gx_theirs"])  # rectangle vs sigmoid: the gradients differ


@pytest.mark.parametrize("preset", ["lif", "i_lif", "clif", "klif", "alif"])
def test_same_final_membrane(preset):
    """V_T (and the second state: CLIF's complementary potential, ALIF's trace). PSN has no
    membrane to compare (ours reports H_{T-1} = (W X)_{T-1}, SpikingJelly keeps nothing)."""
    r = run_both(preset)
    module = r["module"]
    if preset == "alif":  # FlexSN states (V_T, a_T, S_T); our M_T is the next trace rho a_T + (1 - rho) S_T
        v, a, s_last = module.states
        rho = neuron_config("alif").adapt_decay
        torch.testing.assert_close(r["m_ours"], rho * a + (1 - rho) * s_last, rtol=1e-6, atol=1e-6)
    else:
        v = module.v
    torch.testing.assert_close(r["v_ours"], v, rtol=1e-6, atol=1e-6)
    if preset == "clif":
        torch.testing.assert_close(r["m_ours"], module.m, rtol=1e-6, atol=1e-6)


def test_plif_decay_gradient():
    """Both learn w with k = 1/tau = sigmoid(w) (U = V + k (X - V)): the same dL/dw."""
    r = run_both("plif")
    assert r["neuron"].decay_w.requires_grad
    (g_ours,), (g_theirs,) = param_grads(r, ["decay_w"], ["w"])
    assert g_ours.abs().item() > 1e-3
    torch.testing.assert_close(g_ours.reshape(()), g_theirs.reshape(()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", ["ar_lif", "da_lif"])
def test_flexsn_static_parameter_gradients(preset):
    """The FlexSN stand-ins take the learnables as static inputs in our parametrisation
    (AR-LIF: a with thr_coef = tanh(a), c; DA-LIF: the two decay logits): the same gradients."""
    r = run_both(preset)
    neuron = create_neuron(preset)
    out = neuron(r["x"].detach())
    ours = dict(neuron.named_parameters())
    statics = list(r["module"].static_inputs)
    names = ["thr_a", "mem_c"] if preset == "ar_lif" else ["tau_a", "tau_b"]
    g_ours = torch.autograd.grad(out, [ours[n] for n in names], r["grad"])
    g_theirs = torch.autograd.grad(r["theirs"], statics, r["grad"])
    for name, a, b in zip(names, g_ours, g_theirs):
        assert a.abs().sum().item() > 1e-4, name
        torch.testing.assert_close(a.sum().reshape(()), b.reshape(()), rtol=1e-4, atol=1e-5, msg=name)


def test_klif_slope_gradient():
    """KLIF's learnable k (ours ``slope_k``, SpikingJelly's ``k``): the same dL/dk."""
    r = run_both("klif", perturb=True)  # k off its init 1: the stand-in must take ours
    assert r["neuron"].slope_k.item() != 1.0
    assert_same_run(r)
    (g_ours,), (g_theirs,) = param_grads(r, ["slope_k"], ["k"])
    assert g_ours.abs().item() > 1e-3
    torch.testing.assert_close(g_ours.reshape(()), g_theirs.reshape(()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("overrides", [{}, {"granularity": "channel", "channels": SHAPE[2]}],
                         ids=["layer", "channel"])
@pytest.mark.parametrize("perturb", [False, True], ids=["init", "perturbed"])
def test_glif_parameter_gradients(overrides, perturb):
    """Every GLIF learnable (gates a, b, r; tau; threshold; linear decay; soft-reset value; the
    conductance per step), layer-wise and channel-wise: the same spikes, input gradient and
    parameter gradients as GatedLIFNode. ``perturbed`` moves every logit off its init (at init the
    three gates are equal, so a swapped pair would go unseen)."""
    r = run_both("glif", perturb=perturb, **overrides)
    assert_same_run(r)
    g_ours, g_theirs = param_grads(r, list(GLIF_PARAMS), list(GLIF_PARAMS.values()))
    for name, a, b in zip(GLIF_PARAMS, g_ours, g_theirs):
        assert a.abs().sum().item() > 1e-4, name
        torch.testing.assert_close(a.reshape(b.shape), b, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("overrides", [{}, {"granularity": "channel", "channels": SHAPE[2]}],
                         ids=["layer", "channel"])
def test_glif_final_membrane(overrides):
    """SpikingJelly's final ``v`` is the membrane before the reset (it resets at the next step from
    the previous spike); ours is after it: ours = v - S_T (r v + (1 - r) v_sub / leak)."""
    r = run_both("glif", perturb=True, **overrides)
    n = r["neuron"]

    def per_channel(p):
        return p.detach().reshape((1, -1, 1, 1))

    gate, v_sub = torch.sigmoid(per_channel(n.glif_r)), torch.sigmoid(per_channel(n.glif_subreset))
    leak = 1 - torch.sigmoid(per_channel(n.glif_a)) * (1 - torch.sigmoid(per_channel(n.glif_tau)))
    v, s_last = r["module"].v, r["theirs"][-1]
    assert 0 < s_last.mean().item() < 1
    torch.testing.assert_close(r["v_ours"], v - s_last * (gate * v + (1 - gate) * v_sub / leak),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("perturb", [False, True], ids=["init", "perturbed"])
def test_psn_parameter_gradients(perturb):
    """PSN: ours ``psn_weight`` = SpikingJelly's ``weight`` [T, T], ours ``v_th`` [T] = -``bias`` [T, 1]."""
    r = run_both("psn", perturb=perturb)
    assert_same_run(r)
    (g_w, g_th), (g_weight, g_bias) = param_grads(r, ["psn_weight", "v_th"], ["weight", "bias"])
    assert g_w.abs().sum().item() > 1e-3 and g_th.abs().sum().item() > 1e-3
    torch.testing.assert_close(g_w, g_weight, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_th, -g_bias.reshape(-1), rtol=1e-5, atol=1e-5)


def test_alif_has_no_learnables_by_default():
    r = run_both("alif")
    assert list(r["neuron"].parameters()) == [] and list(r["module"].parameters()) == []
    assert_same_run(r)


def test_alif_learnable_adaptation_gradients():
    """``adapt_learnable``: rho = sigmoid(logit) and gamma learnable, the FlexSN core's static
    inputs: the same spikes, input gradient and dL/d(rho logit), dL/dgamma."""
    r = run_both("alif", perturb=True, adapt_learnable=True)
    assert_same_run(r)
    ours = dict(r["neuron"].named_parameters())
    names = ["adapt_rho", "adapt_gamma"]
    g_ours = torch.autograd.grad(r["ours"], [ours[n] for n in names], r["grad"], retain_graph=True)
    g_theirs = torch.autograd.grad(r["theirs"], list(r["module"].static_inputs), r["grad"])
    for name, a, b in zip(names, g_ours, g_theirs):
        assert a.abs().sum().item() > 1e-4, name
        torch.testing.assert_close(a.reshape(()), b.reshape(()), rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("T", [1, SHAPE[0]])
def test_i_lif_detached_reset(T):
    """I-LIF's reset sees the spike without gradient (SpikeYOLO's ``mem_old - spike.detach()``):
    ours equals ``ILIFNode(detach_reset=True)`` (the bench's stand-in) in spikes and input gradient.
    ``ILIFNode()`` (no detach) gives the same spikes; for T > 1 its input gradient differs (the
    straight-through spike enters the next step's membrane), for T = 1 it cannot."""
    r = run_both("i_lif", shape=(T, *SHAPE[1:]))
    assert r["module"].detach_reset
    assert_same_run(r)
    plain = sjn.ILIFNode(step_mode="m")
    assert not plain.detach_reset
    spikes = plain(r["x"])
    (gx_plain,) = torch.autograd.grad(spikes, r["x"], r["grad"])
    assert torch.equal(spikes, r["ours"])
    if T == 1:
        torch.testing.assert_close(gx_plain, r["gx_ours"], rtol=1e-5, atol=1e-5)
    else:
        differ = ~torch.isclose(gx_plain, r["gx_ours"], rtol=1e-5, atol=1e-5)
        assert differ.float().mean().item() > 0.01  # not one stray element: the reset path itself
