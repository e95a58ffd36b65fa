"""Every preset against hand-computed traces of the paper equations (spec sections 1-4).

Two kinds of check: literal traces worked out by hand (numbers in the test), and an independent
scalar implementation of each paper's equations written straight from the spec (pure Python
floats, no torch), compared over random inputs for every preset.
"""

import math
import random

import pytest
import torch

from lit_snn.neurons import create_neuron, list_neurons


def sig(v):
    return 1 / (1 + math.exp(-v))


def run(name, xs, **overrides):
    """Run preset `name` on the scalar sequence `xs` (T steps, one neuron); return spikes, V_T, M_T."""
    neuron = create_neuron(name, **overrides).double()
    x = torch.tensor(xs, dtype=torch.float64).reshape(len(xs), 1)
    s, v, m = neuron.forward_with_state(x)
    return s.flatten().tolist(), v.item(), m.item()


# ---------------------------------------------------------------- literal traces (by hand)
def test_lif_literal_trace():
    # U = V + (X - V)/2, th 1, hard reset to 0
    # t1: U = 0 + 1.5/2 = 0.75 -> no spike, V = 0.75
    # t2: U = 0.75 + (1.5 - 0.75)/2 = 1.125 -> spike, V = 0
    # t3: U = 0 + 0.5/2 = 0.25 -> no spike, V = 0.25
    s, v, _ = run("lif", [1.5, 1.5, 0.5])
    assert s == [0.0, 1.0, 0.0]
    assert v == pytest.approx(0.25, abs=1e-12)


def test_soft_and_hard_lif_literal_trace():
    # U = 0.5 V + X; t1: U = 0.8 (V 0.8); t2: U = 0.4 + 0.9 = 1.3 spike
    s, v, _ = run("soft_lif", [0.8, 0.9, 0.1])
    assert s == [0.0, 1.0, 0.0]
    # soft: V2 = 0.3; t3: U = 0.15 + 0.1 = 0.25
    assert v == pytest.approx(0.25, abs=1e-12)
    s, v, _ = run("hard_lif", [0.8, 0.9, 0.1])
    assert s == [0.0, 1.0, 0.0]
    assert v == pytest.approx(0.1, abs=1e-12)  # hard: V2 = 0, t3: U = 0.1


def test_i_lif_literal_trace():
    # U = 0.25 V + X, S = round(clamp(U, 0, 4)), V = U - S
    # t1: U = 2.7 -> S = 3, V = -0.3; t2: U = -0.075 + 0.4 = 0.325 -> S = 0, V = 0.325
    # t3: U = 0.08125 + 9 = 9.08125 -> S = 4 (clamped), V = 5.08125
    s, v, _ = run("i_lif", [2.7, 0.4, 9.0])
    assert s == [3.0, 0.0, 4.0]
    assert v == pytest.approx(5.08125, abs=1e-12)


def test_ib_ra_lif_literal_codes():
    # S = round(clamp(100 U, 0, 511)) / 100; t1: U = 0.0123 -> code 1 -> S 0.01, V = 0.0023
    # t2: U = 0.000575 + 3.3333 = 3.333875 -> code 333 -> S = 3.33, V = 0.003875
    # t3: U = 0.00096875 + 7 -> code 511 (range top, D = 5.11)
    s, v, _ = run("ib_ra_lif", [0.0123, 3.3333, 7.0])
    assert s == pytest.approx([0.01, 3.33, 5.11], abs=1e-12)
    assert v == pytest.approx(7.00096875 - 5.11, abs=1e-9)


def test_ar_lif_literal_trace():
    # a = 0 -> th = 1; c = 1. x1 = 2: U = 2 >= 1 spike.
    # g = sig(2); M = 0*g - 0 + (2*1 - 1) sig(2) = sig(2); V = 2 - (1 + sig(sig(2)))
    s, v, m = run("ar_lif", [2.0])
    assert s == [1.0]
    assert m == pytest.approx(sig(2.0), abs=1e-12)
    assert v == pytest.approx(2.0 - 1.0 - sig(sig(2.0)), abs=1e-12)


def test_ib_ra_lif_range_alignment_uses_high_codes():
    """Without alignment (N = 1) a membrane in [0, 5] uses codes 0..5; with N = 100 most codes > 5."""
    x = torch.rand(1, 5000, dtype=torch.float64) * 5
    aligned = create_neuron("ib_ra_lif").double()(x) * 100
    plain = create_neuron("ib_ra_lif", int_scale=1.0).double()(x)
    assert plain.max() <= 5 and (plain > 5).float().mean() == 0
    assert (aligned > 5).double().mean() > 0.9
    assert torch.allclose(aligned, aligned.round(), atol=1e-9)  # integer codes


# ---------------------------------------------------------------- scalar re-implementation
def scalar_trace(name, xs, a=0.0, c=1.0, w=0.0, tau_a=0.0, tau_b=0.0):
    """Each paper's equations, per element, in plain floats (spec sections 1-4)."""
    V, M, out = 0.0, 0.0, []
    for x in xs:
        if name == "lif":
            U = V + (x - V) / 2
        elif name == "plif":
            k = sig(w)
            U = V + k * (x - V)
        elif name in ("hard_lif", "soft_lif", "ar_lif"):
            U = 0.5 * V + x
        elif name == "ar_lif_dvs":
            U = 0.2 * V + x
        elif name == "da_lif":
            U = sig(tau_b) * V + sig(tau_a) * x
        elif name in ("i_lif", "ib_ra_lif"):
            U = 0.25 * V + x
        if name in ("ar_lif", "ar_lif_dvs"):
            th = 1 + math.tanh(a) * math.tanh(x)
            S = 1.0 if U - th >= 0 else 0.0
            Mp = M if name == "ar_lif" else 0.0
            g = sig(c * x)
            M = max(Mp, 0) * g - max(-Mp, 0) * (1 - g) + (2 * S - 1) * sig(x)
            V = U - S * (th + sig(M))
        elif name == "i_lif":
            S = math.floor(min(max(U, 0), 4) + 0.5)
            V = U - S
        elif name == "ib_ra_lif":
            S = math.floor(min(max(100 * U, 0), 511) + 0.5) / 100
            V = U - S
        else:
            S = 1.0 if U >= 1 else 0.0
            V = U * (1 - S) if name != "soft_lif" else U - S
        out.append(S)
    return out, V, M


@pytest.mark.parametrize("name", list_neurons())
def test_preset_matches_scalar_paper_equations(name):
    rng = random.Random(0)
    a, c, w, tau_a, tau_b = 0.7, -1.3, 0.4, -0.6, 1.1
    neuron = create_neuron(name).double()
    with torch.no_grad():  # move learnable parameters off their init so they are exercised
        for pname, value in (("thr_a", a), ("mem_c", c), ("decay_w", w), ("tau_a", tau_a), ("tau_b", tau_b)):
            if hasattr(neuron, pname):
                getattr(neuron, pname).fill_(value)
    T, n = 7, 40
    xs = [[rng.uniform(-1.0, 3.0) for _ in range(n)] for _ in range(T)]
    s, v, m = neuron.forward_with_state(torch.tensor(xs, dtype=torch.float64))
    for j in range(n):
        ref_s, ref_v, ref_m = scalar_trace(name, [xs[t][j] for t in range(T)], a, c, w, tau_a, tau_b)
        assert s[:, j].tolist() == pytest.approx(ref_s, abs=1e-6), name
        assert v[j].item() == pytest.approx(ref_v, abs=1e-6), name
        if name.startswith("ar_lif"):
            assert m[j].item() == pytest.approx(ref_m, abs=1e-6), name


def test_da_lif_starts_as_lif_and_exposes_alpha_beta():
    neuron = create_neuron("da_lif")
    p = neuron.effective_params()
    assert p["alpha"].item() == pytest.approx(0.5) and p["beta"].item() == pytest.approx(0.5)
    x = torch.rand(6, 3, 50) * 3
    assert torch.equal(neuron(x), create_neuron("lif")(x))
    tanh_neuron = create_neuron("da_lif", decay_fn="tanh", alpha=0.3, beta=0.8)
    p = tanh_neuron.effective_params()
    assert p["alpha"].item() == pytest.approx(0.3) and p["beta"].item() == pytest.approx(0.8)
    assert tanh_neuron.tau_b.item() == pytest.approx(math.atanh(0.8))


def test_plif_starts_as_lif():
    x = torch.rand(5, 2, 30) * 3
    assert torch.equal(create_neuron("plif")(x), create_neuron("lif")(x))


def test_learnable_threshold_and_channel_granularity():
    neuron = create_neuron("soft_lif", threshold="learnable", granularity="channel", channels=3)
    assert neuron.v_th.shape == (3,)
    with torch.no_grad():
        neuron.v_th.copy_(torch.tensor([0.5, 1.0, 2.0]))
    x = torch.full((1, 1, 3, 2), 0.9)
    assert neuron(x)[0, 0].tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]


def test_state_resets_between_calls():
    neuron = create_neuron("ar_lif")
    x = torch.rand(4, 2, 10) * 2
    assert torch.equal(neuron(x), neuron(x))
