"""Neuron benchmark: forward + backward time and memory per preset, on a CUDA GPU or on the CPU.

Usage (``lit-snn bench`` forwards its arguments to ``main``)::

    lit-snn bench                                   # GPU: every preset, fp32 and bf16, T = 4 and 8
    lit-snn bench --presets lif,ar_lif --dtypes fp32 --T 4 --shape 64,128,32,32
    lit-snn bench --quick                           # lif, fp32, T = 4: a one-line smoke run
    lit-snn bench --columns ours,eager              # skip torch.compile and SpikingJelly
    lit-snn bench --device cpu                      # the CPU benchmark (make bench-cpu), see below

Input ``x`` is ``[T, *shape]``; one case is a forward over all T steps plus the backward of the
spikes (w.r.t. ``x`` and the preset's learnable parameters). Columns:

- ``ours``: what ``backend: auto`` runs on the device: the fused Triton kernels
  (``kernels.multistep_triton``) on a GPU; on the CPU the CPU path (``neurons.cpu``: the numba
  kernels, or with ``LIT_SNN_CPU_NUMBA=0`` the reference itself)
- ``eager``: the PyTorch reference recurrence (``multistep_reference``)
- ``compile``: ``torch.compile`` of the reference (compilation excluded; can take a while)
- ``sj``: SpikingJelly's multi-step neuron where an equivalent exists (``LIFNode`` for lif,
  hard_lif, soft_lif; ``ParametricLIFNode`` for plif; ``ILIFNode(detach_reset=True)`` for i_lif;
  ``ComplementaryLIFNode`` for clif; ``KLIFNode`` for klif; ``GatedLIFNode(T)`` for glif;
  ``PSN(T)`` for psn; ``FlexSN`` cores written from the equations for ar_lif, ar_lif_dvs, da_lif
  and alif), ``n/a`` when SpikingJelly is not importable or has no equivalent (ib_ra_lif).
  Written against SpikingJelly 2.0 (which picks its Triton path for CUDA inputs by itself and its
  Torch path on the CPU; 0.0.0.1.x gets ``backend="triton"``). Its ``KLIFNode``, ``GatedLIFNode``
  and ``PSN`` have no Triton path (a Torch loop over T; one ``addmm``), which the GPU run says. In
  bf16/fp16 its ``LIFNode``/``ParametricLIFNode`` are prepared with its own explicit-precision API
  (``neuron_storage`` = the dtype), without which a half-precision state sends them to the Torch
  reference; its ``ILIFNode`` has no such path, and the run says so. The competitor takes our
  neuron's parameter values where SpikingJelly would draw its own (GLIF's gates, which it draws
  around 1/2; PSN's random ``W``). The stand-ins compute the same spikes and gradients as our
  presets (checked against our reference in ``tests/neurons/test_spikingjelly_equivalence.py``),
  except that hard_lif/soft_lif use SpikingJelly's sigmoid surrogate (its Triton LIF has no
  rectangle): same dynamics and bytes, different surrogate.
- ``snntorch`` (CPU only): snnTorch's ``Leaky`` for hard_lif and soft_lif (``beta`` 0.5, threshold 1,
  the reset in the same step, our surrogate as its ``spike_grad``): hard_lif exactly; for soft_lif
  snnTorch subtracts a second, detached threshold where a reset leaves the membrane above it, so
  the two differ there (``same`` says how often). ``n/a`` when snnTorch is not installed or for the
  other presets.

Presets with parameters per time step (glif, psn) are built for each ``--T``; their ``ours`` and
``eager`` columns run our neuron module (``SpikingNeuron`` with backend ``triton``/``cpu`` and
``torch``: GLIF's gated-input pass plus the scan; PSN's parallel path), ``compile`` compiles the
``torch`` one, and the gradients are those of ``x`` and the module's raw parameters.

GPU (default when CUDA is present): each time a median of ``triton.testing.do_bench``; ``same`` is
the fraction of forward spikes equal to ours; memory is the ``torch.cuda`` peak allocated during one
forward + backward (inputs excluded); ``roofline`` is ours as a fraction of the memory-bandwidth
roofline: minimum bytes = read x + write spikes (forward) + read x + read dL/dS + write dL/dx
(backward), i.e. 5 T N bytes-per-element, divided by the time and by the GPU's peak bandwidth (a
table by device name; a measured device-to-device copy bandwidth otherwise). Without a CUDA GPU
it prints a message and returns 0.

CPU (``--device cpu``; default shape ``16,64,16,16``, fp32, ``--threads 1,2``): one table per
thread count; the columns of a case run in interleaved rounds (``--rounds``), each time the median
wall-clock time of a round's forward + backward, and each ratio ``x<col>`` the median over rounds
of that round's time of ``<col>`` over ours, so a shared machine's noise cancels in the ratios.
Memory (``MiB``) is what autograd keeps for the backward: the bytes of the distinct storages saved
by the graph of one forward (saved-tensor hooks), the input ``x`` and the parameters excluded (they
are alive anyway). ``same``: the fraction of neurons whose spikes at every step and whose ``dL/dx``
(within 1e-3 of the largest) equal ours. ``roofline`` is ``n/a``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_SHAPE = {"cuda": (64, 128, 32, 32), "cpu": (16, 64, 16, 16)}
COLUMNS = ("ours", "eager", "compile", "sj", "snntorch")
DEFAULT_COLUMNS = {"cuda": "ours,eager,compile,sj", "cpu": "ours,eager,compile,sj,snntorch"}
# peak HBM bandwidth in bytes/s by a substring of torch.cuda.get_device_name(); first match wins
PEAK_BANDWIDTH = (
    ("GH200", 4.0e12),
    ("H200", 4.8e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),  # SXM, HBM3
    ("H800", 3.35e12),
    ("B200", 8.0e12),
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB", 1.935e12),
    ("A100", 1.555e12),
    ("L40S", 0.864e12),
    ("RTX 5090", 1.792e12),
    ("RTX 4090", 1.008e12),
    ("RTX 3090", 0.936e12),
)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="lit-snn bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="all", help="comma-separated preset names, or 'all'")
    parser.add_argument("--dtypes", default=None, help=f"comma-separated, of {', '.join(DTYPES)} "
                        "(default fp32,bf16 on a GPU, fp32 on the CPU)")
    parser.add_argument("--T", default="4,8", help="comma-separated numbers of time steps")
    shapes = {device: ",".join(map(str, shape)) for device, shape in DEFAULT_SHAPE.items()}
    parser.add_argument("--shape", default=None, help="per-step shape, comma-separated (B,C,H,W or B,F); default "
                        f"{shapes['cuda']} (GPU), {shapes['cpu']} (CPU)")
    parser.add_argument("--columns", default=None, help=f"subset of {', '.join(COLUMNS)} (default "
                        f"{DEFAULT_COLUMNS['cuda']} on a GPU, {DEFAULT_COLUMNS['cpu']} on the CPU)")
    parser.add_argument("--quick", action="store_true", help="lif, fp32, T=4 only")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                        help="auto: CUDA if present, else a message and exit; cpu: the CPU benchmark")
    parser.add_argument("--threads", default="1,2", help="CPU: comma-separated torch thread counts, one table each")
    parser.add_argument("--rounds", type=int, default=7, help="CPU: interleaved timing rounds per case")
    return parser.parse_args(argv)


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def peak_bandwidth(device_name: str) -> float | None:
    for key, value in PEAK_BANDWIDTH:
        if key in device_name:
            return value
    return None


def copy_bandwidth() -> float:
    """Measured device-to-device copy bandwidth (bytes/s, read + write) of a 512 MiB buffer."""
    import triton.testing

    src = torch.empty(128 * 2**20, device="cuda", dtype=torch.float32)
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), return_mode="median")
    return 2 * src.numel() * 4 / (ms * 1e-3)


# --------------------------------------------------------------------------------------------- cases
class Column:
    """One competitor on one case: ``step()`` = forward + backward (returns the spikes and the
    gradients), ``spikes()`` = forward only, ``graph()`` = forward keeping its autograd graph."""

    def __init__(self, step, spikes, graph, note=None, leaves=()):
        self.step = step
        self.spikes = spikes
        self.graph = graph
        self.note = note or (lambda: None)
        self.leaves = list(leaves)  # x and the parameters: alive anyway, not counted as kept memory


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
        return module, (f"SpikingJelly {type(module).__name__} has no {name} Triton path ({_first_line(err, 80)}): "
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


def _first_line(err: BaseException, width: int) -> str:
    text = str(err).splitlines()[0][:width] if str(err) else ""
    return f"{type(err).__name__}: {text}"


def make_case(preset, dtype, T, shape, columns, device="cuda"):
    """name -> ``Column`` (or a string saying why the column is n/a), plus the input for byte counts."""
    from lit_snn.neurons import KernelSpec, create_neuron, multistep_reference, neuron_config

    if device == "cpu":
        from lit_snn.neurons.cpu import multistep_cpu as ours_scan
    else:
        from lit_snn.neurons.kernels import multistep_triton as ours_scan
    ours_backend = "cpu" if device == "cpu" else "triton"

    x = torch.randn((T, *shape), device=device, dtype=dtype).mul_(1.5).add_(0.5).requires_grad_(True)
    grad = torch.randn_like(x)

    def column(forward, grad_inputs, prepare=lambda: None, note=None):
        def step():
            prepare()
            out = forward()
            return out.detach(), torch.autograd.grad(out, grad_inputs, grad, allow_unused=True)

        def spikes():  # with grad mode on, as timed: no_grad would make torch.compile compile again
            prepare()
            return forward().detach()

        def graph():
            prepare()
            return forward()
        return Column(step, spikes, graph, note, leaves=grad_inputs)

    runs = {}
    if neuron_config(preset).needs_time_steps:
        # GLIF, PSN: parameters per time step, so neurons built for this T; the module runs GLIF's
        # gated-input pass before the scan, PSN's parallel kernel instead of it
        def build(backend):
            return create_neuron(preset, time_steps=T, backend=backend, validate=False).to(device, dtype)

        neuron, reference = build(ours_backend), build("torch")
        reference.load_state_dict(neuron.state_dict())  # PSN's W is drawn at random: the same in both
        if "ours" in columns:
            runs["ours"] = column(lambda: neuron(x), [x, *neuron.parameters()])
        if "eager" in columns:
            runs["eager"] = column(lambda: reference(x), [x, *reference.parameters()])
        if "compile" in columns:
            torch._dynamo.reset()  # as below
            compiled_module = torch.compile(reference, dynamic=False)
            runs["compile"] = column(lambda: compiled_module(x), [x, *reference.parameters()])
    else:
        neuron = create_neuron(preset)
        spec = KernelSpec.from_config(neuron.config)
        params = learnable_params(preset, dtype, device, neuron)
        inputs = [x] + [p for p in params.values() if p.requires_grad]
        if "ours" in columns:
            runs["ours"] = column(lambda: ours_scan(x, **params, spec=spec)[0], inputs)
        if "eager" in columns:
            runs["eager"] = column(lambda: multistep_reference(x, **params, spec=spec)[0], inputs)
        if "compile" in columns:
            # a fresh cache per case: dynamo's recompile limit (8 per function) would otherwise be reached
            # across presets and dtypes, after which "compile" silently runs eager
            torch._dynamo.reset()
            compiled = torch.compile(multistep_reference, dynamic=False)
            runs["compile"] = column(lambda: compiled(x, **params, spec=spec)[0], inputs)
    if "sj" in columns and preset == "glif" and x.dim() != 5:
        runs["sj"] = "n/a (SpikingJelly's GatedLIFNode takes [T, B, C, H, W] only)"
    elif "sj" in columns:
        try:
            module, precision_note = spikingjelly_neuron(preset, dtype, device, T=T, neuron=neuron)
        except Exception as err:  # noqa: BLE001  (not installed, no equivalent, API mismatch: report, go on)
            runs["sj"] = f"n/a ({_first_line(err, 60)})"
        else:
            def sj_forward():
                out = module(x)
                return out[0] if isinstance(out, tuple) else out

            def sj_note():
                # FlexSN silently falls back to a non-Triton scan when its kernel generation fails: say so
                capability = getattr(module, "_triton_capability", None)
                if capability is not None and device != "cpu" and not all(capability.values()):
                    return "SpikingJelly used its non-Triton (HOP) scan"
                return precision_note

            sj_inputs = [x] + [p for p in module.parameters() if p.requires_grad]
            # PSN keeps no state between calls (no reset); the others start each call from zero after it
            runs["sj"] = column(sj_forward, sj_inputs, prepare=getattr(module, "reset", lambda: None), note=sj_note)
    if "snntorch" in columns and device != "cpu":
        runs["snntorch"] = "n/a (the snnTorch column runs on the CPU only)"
    elif "snntorch" in columns:
        try:
            leaky = snntorch_neuron(preset, neuron).to(device, dtype)
        except Exception as err:  # noqa: BLE001  (not installed, no equivalent: report, go on)
            runs["snntorch"] = f"n/a ({_first_line(err, 60)})"
        else:
            runs["snntorch"] = column(lambda: leaky(x), [x])
    return runs, x


def measure(run) -> tuple[float, float]:
    """GPU: (median ms of ``triton.testing.do_bench``, peak MiB above the allocation at entry) of one
    forward + backward."""
    import triton.testing

    run()  # compile / autotune outside the timing
    run()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    ms = triton.testing.do_bench(run, return_mode="median")
    return ms, peak


def agreement(runs: dict) -> dict:
    """GPU: column -> fraction of its forward spikes equal to ours (None where either is missing)."""
    ours = runs.get("ours")
    if not isinstance(ours, Column):
        return {}
    try:
        reference = ours.spikes()
    except Exception:  # noqa: BLE001  (reported when the column is timed)
        return {}
    result = {}
    for name, run in runs.items():
        if name == "ours" or not isinstance(run, Column):
            continue
        try:
            spikes = run.spikes()
            result[name] = (spikes.to(reference.dtype) == reference).float().mean().item()
        except Exception:  # noqa: BLE001
            result[name] = None
    return result


# --------------------------------------------------------------------------------------------- CPU
GRAD_TOLERANCE = 1e-3  # dL/dx equal to ours within this fraction of ours' largest entry


def interleaved_times(runs: dict, columns: list, rounds: int) -> tuple[dict, dict, dict]:
    """CPU: (median ms, median per-round ratio to ours, error message) per column; the columns of
    one round run back to back, so load that changes between rounds cancels in the ratios."""
    live, errors = [], {}
    for col in columns:
        run = runs.get(col)
        if not isinstance(run, Column):
            continue
        try:
            run.step()  # compile and warm up outside the timing
            live.append(col)
        except Exception as err:  # noqa: BLE001  (one failing column must not end the run)
            errors[col] = f"failed: {_first_line(err, 100)}"
    samples = {col: [] for col in live}
    for _ in range(rounds):
        for col in live:
            start = time.perf_counter()
            runs[col].step()
            samples[col].append((time.perf_counter() - start) * 1e3)
    times = {col: statistics.median(v) for col, v in samples.items()}
    ratios = {}
    if "ours" in samples:
        ratios = {col: statistics.median(t / o for t, o in zip(v, samples["ours"])) for col, v in samples.items()}
    return times, ratios, errors


def kept_mib(column: Column) -> float:
    """MiB of the distinct storages the autograd graph of one forward saves for its backward, the
    input and parameters excluded."""
    alive = {t.untyped_storage().data_ptr() for t in column.leaves}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in alive:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = column.graph()
    del out
    return sum(saved.values()) / 2**20


def agreement_cpu(runs: dict) -> tuple[dict, list]:
    """CPU: (column -> fraction of neurons whose spikes at every step and whose dL/dx equal ours,
    notes on parameter gradients that differ from ours)."""
    ours = runs.get("ours")
    if not isinstance(ours, Column):
        return {}, []
    try:
        spikes, grads = ours.step()
    except Exception:  # noqa: BLE001  (reported when the column is timed)
        return {}, []
    dx = grads[0] if grads[0] is not None else torch.zeros_like(spikes)
    tol = GRAD_TOLERANCE * max(dx.abs().max().item(), 1e-30)
    result, notes = {}, []
    for name, run in runs.items():
        if name == "ours" or not isinstance(run, Column):
            continue
        try:
            s, g = run.step()
        except Exception:  # noqa: BLE001
            result[name] = None
            continue
        gx = g[0] if g[0] is not None else torch.zeros_like(dx)
        same = (s.to(spikes.dtype) == spikes) & ((gx.to(dx.dtype) - dx).abs() <= tol)
        result[name] = same.reshape(same.shape[0], -1).all(0).float().mean().item()
        if name in ("eager", "compile"):  # the same parameters as ours: their gradients must agree too
            for i, (a, b) in enumerate(zip(grads[1:], g[1:])):
                if a is not None and b is not None and (a - b).abs().max() > GRAD_TOLERANCE * max(a.abs().max(), 1.0):
                    notes.append(f"{name}: parameter gradient {i} differs from ours")
    return result, notes


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _row(preset, dtype_name, T, columns, times, ratios, mems, roof, same) -> str:
    others = [c for c in columns if c != "ours"]
    return (f"{preset:<11} {dtype_name:<5} {T:>3} | " + " ".join(f"{_fmt(times.get(c), '.3f'):>9}" for c in columns)
            + " | " + " ".join(f"{_fmt(ratios.get(c), '.2f'):>9}" for c in others)
            + " | " + " ".join(f"{_fmt(mems.get(c), '.1f'):>10}" for c in columns)
            + f" | {_fmt(roof, '.0%'):>8}"
            + " | " + " ".join(f"{_fmt(same.get(c), '.2%'):>12}" for c in others))


def _header(columns) -> str:
    others = [c for c in columns if c != "ours"]
    return (f"{'preset':<11} {'dtype':<5} {'T':>3} | " + " ".join(f"{c + ' ms':>9}" for c in columns)
            + " | " + " ".join(f"{'x' + c:>9}" for c in others)
            + " | " + " ".join(f"{c + ' MiB':>10}" for c in columns) + " | roofline"
            + " | " + " ".join(f"{'same ' + c:>12}" for c in others))


def run_cpu(presets, dtypes, steps, shape, columns, threads, rounds, report) -> None:
    """The CPU benchmark: one table per thread count (see the module docstring)."""
    previous = torch.get_num_threads()
    try:
        for n in threads:
            torch.set_num_threads(n)
            print(f"threads: {n}")
            header = _header(columns)
            print(header)
            print("-" * len(header))
            for preset in presets:
                for dtype_name in dtypes:
                    for T in steps:
                        runs, x = make_case(preset, DTYPES[dtype_name], T, shape, columns, "cpu")
                        for col in columns:
                            if isinstance(runs.get(col), str):
                                report(preset, dtype_name, T, col, runs[col])
                        same, notes = agreement_cpu(runs)
                        times, ratios, errors = interleaved_times(runs, columns, rounds)
                        for col, text in errors.items():
                            report(preset, dtype_name, T, col, text)
                        mems = {c: kept_mib(runs[c]) for c in times}
                        for col in times:
                            note = runs[col].note()
                            if note:
                                report(preset, dtype_name, T, col, note)
                        for note in notes:
                            report(preset, dtype_name, T, "same", note)
                        print(_row(preset, dtype_name, T, columns, times, ratios, mems, None, same), flush=True)
                        del runs, x
    finally:
        torch.set_num_threads(previous)
    print("x<col>: median over interleaved rounds of <col>'s time / ours (> 1: ours is faster). MiB: memory autograd "
          "keeps for the backward (input and parameters excluded). same <col>: fraction of neurons with ours' spikes "
          f"at every step and ours' dL/dx (within {GRAD_TOLERANCE:g} of its largest).")


# --------------------------------------------------------------------------------------------- main
def _select(args, device):
    """(presets, dtypes, steps, shape, columns, threads) from the arguments, or an error message."""
    from lit_snn.neurons import list_neurons

    presets = list_neurons() if args.presets == "all" else [p.strip() for p in args.presets.split(",") if p]
    dtypes = [d.strip() for d in (args.dtypes or ("fp32" if device == "cpu" else "fp32,bf16")).split(",") if d]
    columns = [c.strip() for c in (args.columns or DEFAULT_COLUMNS[device]).split(",") if c]
    shape_text = args.shape or ",".join(map(str, DEFAULT_SHAPE[device]))
    try:
        steps = [int(t) for t in args.T.split(",") if t]
        shape = tuple(int(s) for s in shape_text.split(",") if s)
        threads = [int(n) for n in args.threads.split(",") if n]
    except ValueError:
        return (f"--T, --shape and --threads take comma-separated integers, got --T {args.T!r} --shape "
                f"{shape_text!r} --threads {args.threads!r}")
    if args.quick:
        presets, dtypes, steps = ["lif"], ["fp32"], [4]
    unknown = sorted(set(presets) - set(list_neurons()))
    bad_dtypes = sorted(set(dtypes) - set(DTYPES))
    bad_columns = sorted(set(columns) - set(COLUMNS))
    if unknown or bad_dtypes or bad_columns:
        return (f"unknown presets {unknown} / dtypes {bad_dtypes} / columns {bad_columns}; valid: "
                f"{', '.join(list_neurons())} / {', '.join(DTYPES)} / {', '.join(COLUMNS)}")
    if not steps or min(steps) < 1 or not shape or min(shape) < 1 or not threads or min(threads) < 1:
        return (f"--T, --shape and --threads need positive integers, got --T {args.T!r} --shape {shape_text!r} "
                f"--threads {args.threads!r}")
    if args.rounds < 1:
        return f"--rounds needs a positive integer, got {args.rounds}"
    return presets, dtypes, steps, shape, columns, threads


def main(argv=None) -> int:
    """Run the benchmark and print one table row per (preset, dtype, T); returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = args.device
    if device == "auto":
        if not torch.cuda.is_available():
            print("lit-snn bench: no CUDA GPU found; the default benchmark times the Triton kernels on a GPU, "
                  "so there is nothing to measure here (--device cpu runs the CPU benchmark: make bench-cpu).")
            return 0
        device = "cuda"
    elif device == "cuda" and not torch.cuda.is_available():
        print("lit-snn bench: --device cuda, but no CUDA GPU is visible to torch.")
        return 1
    if device == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            print("lit-snn bench: Triton is not installed (pip install 'lit_snn[gpu]').")
            return 1
    selection = _select(args, device)
    if isinstance(selection, str):
        print(f"lit-snn bench: {selection}")
        return 2
    presets, dtypes, steps, shape, columns, threads = selection
    reported = set()

    def report(preset, dtype_name, T, col, text):
        if (col, text) not in reported:
            reported.add((col, text))
            print(f"  [{preset} {dtype_name} T={T}] {col}: {text}")

    if device == "cpu":
        print(f"device: cpu ({_cpu_name()}, {torch.get_num_threads()} threads available), torch {torch.__version__}; "
              f"shape [T, {', '.join(map(str, shape))}]; {args.rounds} interleaved rounds per case")
        run_cpu(presets, dtypes, steps, shape, columns, threads, args.rounds, report)
        return 0

    name = torch.cuda.get_device_name()
    measured = copy_bandwidth()
    peak_bw = peak_bandwidth(name)
    bw = peak_bw or measured
    print(f"device: {name}; peak bandwidth {bw / 1e12:.2f} TB/s ({'table' if peak_bw else 'measured'}), "
          f"measured copy {measured / 1e12:.2f} TB/s; shape [T, {', '.join(map(str, shape))}]")
    header = _header(columns)
    print(header)
    print("-" * len(header))
    for preset in presets:
        for dtype_name in dtypes:
            for T in steps:
                runs, x = make_case(preset, DTYPES[dtype_name], T, shape, columns, device)
                same = agreement(runs)
                times, mems = {}, {}
                for col in columns:
                    run = runs.get(col)
                    times[col] = mems[col] = None
                    if not isinstance(run, Column):
                        if isinstance(run, str):
                            report(preset, dtype_name, T, col, run)
                        continue
                    try:
                        times[col], mems[col] = measure(run.step)
                        note = run.note()
                        if note:
                            report(preset, dtype_name, T, col, note)
                    except Exception as err:  # noqa: BLE001  (one failing column must not end the run)
                        report(preset, dtype_name, T, col, f"failed: {_first_line(err, 100)}")
                    torch.cuda.empty_cache()
                ours = times.get("ours")
                ratios = {c: None if ours is None or times[c] is None else times[c] / ours for c in columns}
                min_bytes = 5 * x.numel() * x.element_size()
                roof = None if ours is None or bw is None else min_bytes / (ours * 1e-3) / bw
                print(_row(preset, dtype_name, T, columns, times, ratios, mems, roof, same), flush=True)
                del runs, x
                torch.cuda.empty_cache()
    print("x<col>: time of <col> / time of ours (> 1: ours is faster). roofline: (5 T N bytes) / time / peak. "
          "same <col>: fraction of <col>'s spikes equal to ours.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
