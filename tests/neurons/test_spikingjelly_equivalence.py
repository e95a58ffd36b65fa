"""Our presets against SpikingJelly 2.0's independent implementations (CPU, its Torch path).

Two things at once: an oracle for our neuron math that we did not write, and a check that the
benchmark's competitors (``lit_snn.bench.spikingjelly_neuron``) compute what our presets compute,
so a speed-up is never quoted against a different neuron. Same input: identical spikes and final
membrane, the same input gradient (and, for the exact stand-ins, the same learnable-parameter
gradient through SpikingJelly's own parametrisation).
"""

import pytest
import torch

pytest.importorskip("spikingjelly.activation_based.neuron")

from lit_snn.bench import spikingjelly_neuron  # noqa: E402
from lit_snn.neurons import KernelSpec, create_neuron, multistep_reference, neuron_config  # noqa: E402

# exact stand-ins: same dynamics and same surrogate
EXACT = ("lif", "plif", "i_lif", "ar_lif", "ar_lif_dvs", "da_lif")
# same dynamics, SpikingJelly's sigmoid surrogate instead of our rectangle (its Triton LIF has no rectangle)
SAME_FORWARD = ("hard_lif", "soft_lif")


def run_both(preset, seed=0, shape=(6, 3, 4, 5, 5)):
    torch.manual_seed(seed)
    x = (torch.randn(shape, dtype=torch.float64) * 1.5 + 0.5).float().requires_grad_(True)
    grad = torch.randn_like(x)
    spec = KernelSpec.from_config(neuron_config(preset))
    params = {k: v.detach().clone().requires_grad_(v.requires_grad)
              for k, v in create_neuron(preset).effective_params().items()}
    ours, v_ours, _ = multistep_reference(x, **params, spec=spec)
    (gx_ours,) = torch.autograd.grad(ours, x, grad, retain_graph=True)

    module, note = spikingjelly_neuron(preset, torch.float32, "cpu")
    assert note is None
    module.reset()
    out = module(x)
    theirs = out[0] if isinstance(out, tuple) else out
    (gx_theirs,) = torch.autograd.grad(theirs, x, grad, retain_graph=True)
    return dict(x=x, grad=grad, params=params, ours=ours, v_ours=v_ours, gx_ours=gx_ours, module=module,
                theirs=theirs, gx_theirs=gx_theirs)


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


@pytest.mark.parametrize("preset", ["lif", "i_lif"])
def test_same_final_membrane(preset):
    r = run_both(preset)
    torch.testing.assert_close(r["v_ours"], r["module"].v, rtol=1e-6, atol=1e-6)


def test_plif_decay_gradient():
    """Both learn w with k = 1/tau = sigmoid(w) (U = V + k (X - V)): the same dL/dw."""
    r = run_both("plif")
    neuron = create_neuron("plif")
    assert neuron.decay_w.requires_grad
    out = neuron(r["x"].detach())
    (g_ours,) = torch.autograd.grad(out, neuron.decay_w, r["grad"])
    (g_theirs,) = torch.autograd.grad(r["theirs"], r["module"].w, r["grad"])
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
