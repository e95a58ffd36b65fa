"""The benchmarks' competitors, built to compute what our presets compute: SpikingJelly's multi-step
neurons (and FlexSN cores written from our equations), snnTorch's ``Leaky``, and our presets'
effective parameters as autograd leaves. Also the oracles of
``tests/neurons/test_spikingjelly_equivalence.py``, which checks that they agree with our reference."""

from __future__ import annotations

import torch

from .table_rows import first_line


def learnable_params(preset: str, dtype: torch.dtype, device: str, neuron=None) -> dict:
    """Effective parameters (of ``neuron``, default a fresh one) as leaves; those the preset learns require grad."""
    from lit_snn.neurons import create_neuron

    neuron = create_neuron(preset) if neuron is None else neuron
    params = neuron.effective_params()
    return {k: v.detach().to(device, dtype).requires_grad_(v.requires_grad) for k, v in params.items()}


# SpikingJelly classes without a Triton implementation, and what runs instead
_SJ_TORCH_ONLY = {"KLIFNode": "a Torch loop over T", "GatedLIFNode": "a Torch loop over T", "PSN": "one Torch addmm"}


def spikingjelly_neuron(preset: str, dtype: torch.dtype, device: str = "cuda", T: int | None = None, neuron=None):
    """An equivalent SpikingJelly multi-step neuron (its Triton path on CUDA), or raise with the reason.

    ``T``: the number of time steps, needed by the presets with parameters per step (glif, psn;
    default the preset's ``time_steps``). ``neuron``: our ``SpikingNeuron`` whose parameter values
    the competitor takes (default ``create_neuron(preset, time_steps=T)``): GLIF's gates, which
    SpikingJelly draws at random around 1/2 while ours start at 1/2, PSN's random ``W`` and
    thresholds, KLIF's ``k``, ALIF's learnable rho/gamma; GLIF's per-channel parameters and T
    follow its config. Returns ``(module, note)``; ``note`` says when SpikingJelly will not take
    its Triton path.
    """
    from spikingjelly.activation_based import neuron as sjn
    from spikingjelly.activation_based import surrogate

    from lit_snn.neurons import create_neuron, neuron_config

    if neuron is None:
        per_step = neuron_config(preset).needs_time_steps and T is not None
        neuron = create_neuron(preset, **({"time_steps": T} if per_step else {}))
    cfg = neuron.config
    if cfg.needs_time_steps and T is not None and cfg.time_steps != T:
        raise ValueError(f"spikingjelly_neuron: T={T}, but the neuron is built for time_steps={cfg.time_steps}")

    def build(cls, **kw):
        try:  # SpikingJelly 0.0.0.1.x: explicit backend argument
            return cls(step_mode="m", backend="triton", **kw)
        except TypeError:  # SpikingJelly 2.0: CUDA inputs select its Triton implementation by themselves
            return cls(step_mode="m", **kw)

    sig = surrogate.Sigmoid(alpha=4.0)
    if preset == "lif":
        module = build(sjn.LIFNode, tau=2.0, decay_input=True, v_reset=0.0, surrogate_function=sig)
    elif preset in ("hard_lif", "soft_lif"):  # U = V - V/2 + X; sigmoid surrogate
        module = build(sjn.LIFNode, tau=2.0, decay_input=False, v_reset=0.0 if preset == "hard_lif" else None,
                       surrogate_function=sig)
    elif preset == "plif":
        module = build(sjn.ParametricLIFNode, init_tau=2.0, decay_input=True, v_reset=0.0, surrogate_function=sig)
    elif preset == "i_lif":  # defaults: decay 0.25, D = 4, soft reset; SpikeYOLO's code detaches the reset's spike
        module = build(sjn.ILIFNode, detach_reset=True)
    elif preset == "clif":  # defaults: tau 2 (H = V/2 + X, sigmoid(H/2)), threshold 1, Rect(1)
        module = build(sjn.ComplementaryLIFNode)
    elif preset == "klif":  # defaults: tau 2, decay_input, hard reset to 0, Sigmoid(4); k learnable
        module = build(sjn.KLIFNode)
        _copy_params(module, {"k": neuron.slope_k})
    elif preset == "glif":  # layer-wise (inplane None) or channel-wise (inplane C); Sigmoid(4)
        inplane = cfg.channels if cfg.granularity == "channel" else None
        module = build(sjn.GatedLIFNode, T=cfg.time_steps, inplane=inplane)
        # every learnable a logit in both; SpikingJelly draws alpha, beta, gamma: take ours instead
        _copy_params(module, {"alpha": neuron.glif_a, "beta": neuron.glif_b, "gamma": neuron.glif_r,
                              "tau": neuron.glif_tau, "v_threshold": neuron.v_th,
                              "linear_decay": neuron.glif_linear_decay, "v_subreset": neuron.glif_subreset,
                              "conduct": neuron.glif_conduct})
    elif preset == "psn":  # S = H(W X + b), ATan(2); our threshold is -b
        module = sjn.PSN(cfg.time_steps)
        weight, threshold = neuron.parallel_params()
        _copy_params(module, {"weight": weight, "bias": -threshold})
    elif preset in ("ar_lif", "ar_lif_dvs", "da_lif"):
        module = _flexsn(preset, sjn, surrogate)
    elif preset == "alif":
        module = _alif_flexsn(neuron, sjn, surrogate)
    else:
        raise LookupError("no SpikingJelly equivalent")
    module = module.to(device, dtype)
    note = None
    name = type(module).__name__
    if device != "cpu" and name in _SJ_TORCH_ONLY:
        note = f"SpikingJelly {name} has no Triton path ({_SJ_TORCH_ONLY[name]} runs)"
    elif dtype != torch.float32 and device != "cpu":
        module, note = _spikingjelly_half_precision(module, dtype, device)
    return module, note


def _copy_params(module, values: dict) -> None:
    """Set ``module``'s parameters (by name) to the values of ours, reshaped to its layout."""
    with torch.no_grad():
        for name, value in values.items():
            target = getattr(module, name)
            target.copy_(value.detach().reshape(target.shape))


def _spikingjelly_half_precision(module, dtype, device):
    """SpikingJelly 2.0 keeps a half-precision state off its Triton LIF path unless its explicit
    neuron precision is configured (``neuron_storage``); ILIFNode has no such option; FlexSN and
    ComplementaryLIFNode need none (their kernels follow the input's dtype)."""
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    if type(module).__name__ in ("FlexSN", "ComplementaryLIFNode"):
        return module, None  # FlexSN generates kernels for the input's dtype; CLIF's take a matching-dtype state
    try:
        from spikingjelly.activation_based.precision import PrecisionConfig, prepare_model_for_precision
    except ImportError:  # SpikingJelly before 2.0
        return module, None
    try:
        artifacts = prepare_model_for_precision(module, device, PrecisionConfig(mode=name, neuron_storage=name))
    except RuntimeError as err:
        return module, (f"SpikingJelly {type(module).__name__} has no {name} Triton path ({first_line(err, 80)}): "
                        "its Torch path runs")
    return artifacts.model, f"SpikingJelly prepared with neuron_storage={name}"


def _flexsn(preset, sjn, surrogate):
    """FlexSN neurons with the presets' single-step dynamics (states V[, M]; learnables as static inputs).

    FlexSN rejects cores that capture modules, so the surrogates are SpikingJelly's autograd
    functions: ``sigmoid`` (alpha 4), ``rect`` (alpha 1: width 1, as ours) and
    ``piecewise_quadratic`` (alpha 1: the triangle of width 1).
    """
    if preset == "da_lif":
        def core(x, v, tau_a, tau_b):
            u = torch.sigmoid(tau_b) * v + torch.sigmoid(tau_a) * x
            s = surrogate.sigmoid.apply(u - 1.0, 4.0)
            return s, u * (1.0 - s)

        statics = (torch.nn.Parameter(torch.zeros(())), torch.nn.Parameter(torch.zeros(())))
        return sjn.FlexSN(core, num_states=1, static_inputs=statics, step_mode="m")

    decay = 0.5 if preset == "ar_lif" else 0.2
    carry = preset == "ar_lif"
    fire = surrogate.rect.apply if preset == "ar_lif" else surrogate.piecewise_quadratic.apply

    def core(x, v, m, a, c):
        u = decay * v + x
        th = 1.0 + torch.tanh(a) * torch.tanh(x)
        s = fire(u - th, 1.0)
        g = torch.sigmoid(c * x)
        mp = m if carry else m * 0.0
        m = torch.relu(mp) * g - torch.relu(-mp) * (1.0 - g) + (2.0 * s - 1.0) * torch.sigmoid(x)
        return s, u - s * (th + torch.sigmoid(m)), m

    statics = (torch.nn.Parameter(torch.zeros(())), torch.nn.Parameter(torch.ones(())))
    # SpikingJelly 2.0 signature; on CUDA it generates Triton kernels (or falls back to its HOP scan)
    return sjn.FlexSN(core, num_states=2, static_inputs=statics, step_mode="m")


def _alif_flexsn(neuron, sjn, surrogate):
    """ALIF as a FlexSN core written from the spec's equations (``neurons.md`` section 7), states
    (V, a, S_prev): ``a_t = rho a_{t-1} + (1 - rho) S_{t-1}``, ``th_t = V_th + gamma a_t``,
    ``U_t = beta V_{t-1} + X_t``, ``S_t = H(U_t - th_t)`` (SpikingJelly's ``rect``, width 1),
    ``V_t = U_t - S_t th_t``. With ``adapt_learnable`` the static inputs are our rho logit and gamma.
    """
    cfg = neuron.config
    if (cfg.reset, cfg.surrogate, cfg.granularity, cfg.spike, cfg.detach_reset) != \
            ("soft", "rectangle", "layer", "binary", False):
        raise LookupError("the ALIF FlexSN stand-in covers the preset's soft reset, rectangle surrogate, "
                          "per-layer parameters")
    beta, gain, vth, width = float(cfg.beta), float(cfg.alpha), float(cfg.v_threshold), float(cfg.surrogate_width)
    if cfg.adapt_learnable:
        def core(x, v, a, s_prev, rho_logit, gamma):
            rho = torch.sigmoid(rho_logit)
            a = rho * a + (1.0 - rho) * s_prev
            th = vth + gamma * a
            u = beta * v + gain * x
            s = surrogate.rect.apply(u - th, width)
            return s, u - s * th, a, s

        statics = tuple(torch.nn.Parameter(p.detach().reshape(()).clone().float())
                        for p in (neuron.adapt_rho, neuron.adapt_gamma))
        return sjn.FlexSN(core, num_states=3, static_inputs=statics, step_mode="m")

    rho, gamma = float(cfg.adapt_decay), float(cfg.adapt_gain)

    def core(x, v, a, s_prev):
        a = rho * a + (1.0 - rho) * s_prev
        th = vth + gamma * a
        u = beta * v + gain * x
        s = surrogate.rect.apply(u - th, width)
        return s, u - s * th, a, s

    return sjn.FlexSN(core, num_states=3, step_mode="m")


def snntorch_neuron(preset: str, neuron):
    """snnTorch's ``Leaky`` as our hard_lif / soft_lif: ``U = 0.5 V + X``, threshold 1, the reset
    (``zero`` / ``subtract``) in the same step (``reset_delay=False``), our surrogate as its
    ``spike_grad``. The same neuron for hard_lif; for soft_lif snnTorch also subtracts a detached
    threshold at the next step where the reset left the membrane at or above it. Returns a module
    ``[T, ...] -> spikes [T, ...]``; ``LookupError`` for the other presets, ``ImportError`` without
    snnTorch."""
    cfg = neuron.config
    if preset not in ("hard_lif", "soft_lif"):
        raise LookupError("no snnTorch Leaky equivalent")
    import snntorch

    from lit_snn.neurons import heaviside

    kind, param = neuron.spec.surrogate, neuron.spec.surrogate_param
    leaky = snntorch.Leaky(beta=float(cfg.beta), threshold=float(cfg.v_threshold),
                           spike_grad=lambda u: heaviside(u, kind, param),
                           reset_mechanism="zero" if preset == "hard_lif" else "subtract", reset_delay=False)

    class LeakyOverTime(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.leaky = leaky

        def forward(self, x):  # [T, ...] -> [T, ...]
            mem = torch.zeros_like(x[0])
            spikes = []
            for x_t in x:
                spk, mem = self.leaky(x_t, mem)
                spikes.append(spk)
            return torch.stack(spikes)

    return LeakyOverTime()

