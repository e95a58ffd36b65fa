"""Every preset against hand-computed traces of the paper equations (spec sections 1-4).

Two kinds of check: literal traces worked out by hand (numbers in the test), and an independent
scalar implementation of each paper's equations written straight from the spec (pure Python
floats, no torch), compared over random inputs for every preset.
"""

import math
import random

import pytest
import torch

from lit_snn.neurons import create_neuron, list_neurons, neuron_config


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
# learnable values off their init, so that they are exercised (logits for GLIF's sigmoids)
LEARNED = dict(a=0.7, c=-1.3, w=0.4, tau_a=-0.6, tau_b=1.1, k=1.4, glif_a=0.3, glif_b=-0.4, glif_r=0.6,
               glif_tau=-0.9, glif_vth=0.2, glif_ld=-2.0, glif_sub=0.1, glif_conduct=[0.5, -0.2, 0.1, 0.9, -0.6,
                                                                                     0.3, 0.0])
PSN_W = [[0.3 * ((3 * t + 5 * s) % 7 - 3) for s in range(7)] for t in range(7)]  # a fixed [7, 7] mixing
PSN_B = [0.5 + 0.1 * t for t in range(7)]


def scalar_trace(name, xs, p=LEARNED):
    """Each paper's equations, per element, in plain floats (spec sections 1-4 and 7)."""
    if name == "psn":  # H = W X over time, S = H(H - B); no state
        hs = [sum(PSN_W[t][s] * xs[s] for s in range(len(xs))) for t in range(len(xs))]
        return [1.0 if h - b >= 0 else 0.0 for h, b in zip(hs, PSN_B)], hs[-1], 0.0
    V, M, out = 0.0, 0.0, []
    S_prev = 0.0
    for t, x in enumerate(xs):
        if name in ("lif", "klif"):
            U = V + (x - V) / 2
        elif name == "plif":
            k = sig(p["w"])
            U = V + k * (x - V)
        elif name in ("hard_lif", "soft_lif", "ar_lif", "clif", "alif"):
            U = 0.5 * V + x
        elif name == "ar_lif_dvs":
            U = 0.2 * V + x
        elif name == "da_lif":
            U = sig(p["tau_b"]) * V + sig(p["tau_a"]) * x
        elif name in ("i_lif", "ib_ra_lif"):
            U = 0.25 * V + x
        elif name == "glif":  # SpikingJelly's gated_lif_step: V is the membrane before the reset
            al, be, ga = sig(p["glif_a"]), sig(p["glif_b"]), sig(p["glif_r"])
            leak = 1 - al * (1 - sig(p["glif_tau"]))
            U = (leak * V - (1 - al) * sig(p["glif_ld"]) + x * (1 - be * (1 - sig(p["glif_conduct"][t])))
                 - leak * V * ga * S_prev - (1 - ga) * sig(p["glif_sub"]) * S_prev)
        if name == "klif":
            U = max(p["k"] * U, 0.0)
        if name in ("ar_lif", "ar_lif_dvs"):
            th = 1 + math.tanh(p["a"]) * math.tanh(x)
            S = 1.0 if U - th >= 0 else 0.0
            Mp = M if name == "ar_lif" else 0.0
            g = sig(p["c"] * x)
            M = max(Mp, 0) * g - max(-Mp, 0) * (1 - g) + (2 * S - 1) * sig(x)
            V = U - S * (th + sig(M))
        elif name == "clif":  # M = M sigmoid(H / tau) + S, V = H - S (th + sigmoid(M)), tau 2
            S = 1.0 if U >= 1 else 0.0
            M = M * sig(U / 2) + S
            V = U - S * (1 + sig(M))
        elif name == "alif":  # th = 1 + 1.8 a_t, a_t = 0.9 a_{t-1} + 0.1 S_{t-1}; soft reset
            th = 1 + 1.8 * M
            S = 1.0 if U - th >= 0 else 0.0
            V = U - S * th
            M = 0.9 * M + 0.1 * S
        elif name == "glif":
            S = 1.0 if U - sig(p["glif_vth"]) >= 0 else 0.0
            V = U
        elif name == "i_lif":
            S = math.floor(min(max(U, 0), 4) + 0.5)
            V = U - S
        elif name == "ib_ra_lif":
            S = math.floor(min(max(100 * U, 0), 511) + 0.5) / 100
            V = U - S
        else:
            S = 1.0 if U >= 1 else 0.0
            V = U * (1 - S) if name != "soft_lif" else U - S
        S_prev = S
        out.append(S)
    if name == "glif":  # ours reports V after the reset that SpikingJelly applies at the next step
        al, ga = sig(p["glif_a"]), sig(p["glif_r"])
        leak = 1 - al * (1 - sig(p["glif_tau"]))
        V = V - S * (ga * V + (1 - ga) * sig(p["glif_sub"]) / leak)
    return out, V, M


def set_learned(neuron, p=LEARNED):
    """Our parameters set to the values ``scalar_trace`` uses."""
    values = dict(thr_a=p["a"], mem_c=p["c"], decay_w=p["w"], tau_a=p["tau_a"], tau_b=p["tau_b"], slope_k=p["k"],
                  glif_a=p["glif_a"], glif_b=p["glif_b"], glif_r=p["glif_r"], glif_tau=p["glif_tau"],
                  glif_linear_decay=p["glif_ld"], glif_subreset=p["glif_sub"])
    with torch.no_grad():
        for pname, value in values.items():
            if hasattr(neuron, pname):
                getattr(neuron, pname).fill_(value)
        if neuron.config.decay == "gated":
            neuron.v_th.fill_(p["glif_vth"])
            neuron.glif_conduct.copy_(torch.tensor(p["glif_conduct"]).reshape(-1, 1))
        if neuron.config.decay == "parallel":
            neuron.psn_weight.copy_(torch.tensor(PSN_W))
            neuron.v_th.copy_(torch.tensor(PSN_B))


@pytest.mark.parametrize("name", list_neurons())
def test_preset_matches_scalar_paper_equations(name):
    rng = random.Random(0)
    T, n = 7, 40
    steps = {"time_steps": T} if neuron_config(name).needs_time_steps else {}
    neuron = create_neuron(name, **steps).double()
    set_learned(neuron)
    xs = [[rng.uniform(-1.0, 3.0) for _ in range(n)] for _ in range(T)]
    s, v, m = neuron.forward_with_state(torch.tensor(xs, dtype=torch.float64))
    assert 0.05 < (s > 0).double().mean().item() < 0.95, name  # both firing and silence
    for j in range(n):
        ref_s, ref_v, ref_m = scalar_trace(name, [xs[t][j] for t in range(T)])
        assert s[:, j].tolist() == pytest.approx(ref_s, abs=1e-6), name
        assert v[j].item() == pytest.approx(ref_v, abs=1e-6), name
        if name.startswith("ar_lif") or name in ("clif", "alif"):
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
