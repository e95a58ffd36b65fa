"""Neuron kernel benchmark: forward + backward time and peak memory per preset, on a CUDA GPU.

Usage (``lit-snn bench`` forwards its arguments to ``main``)::

    lit-snn bench                                   # every preset, fp32 and bf16, T = 4 and 8
    lit-snn bench --presets lif,ar_lif --dtypes fp32 --T 4 --shape 64,128,32,32
    lit-snn bench --quick                           # lif, fp32, T = 4: a one-line smoke run
    lit-snn bench --columns ours,eager              # skip torch.compile and SpikingJelly
    TRITON_INTERPRET=1 lit-snn bench --device cpu --shape 2,4,4,4 --T 3   # check the benchmark itself

Input ``x`` is ``[T, *shape]`` (default shape ``64,128,32,32``: B, C, H, W); one case is a
forward over all T steps plus the backward of the spikes (w.r.t. ``x`` and the preset's learnable
parameters). Columns, each a median of ``triton.testing.do_bench`` (CUDA-synchronised):

- ``ours``: the fused Triton kernels (``lit_snn.neurons.kernels.multistep_triton``)
- ``eager``: the PyTorch reference recurrence (``multistep_reference``)
- ``compile``: ``torch.compile`` of the reference (compilation excluded; can take a while)
- ``sj``: SpikingJelly's multi-step neuron where an equivalent exists (``LIFNode`` for lif,
  hard_lif, soft_lif; ``ParametricLIFNode`` for plif; ``ILIFNode(detach_reset=True)`` for i_lif;
  ``ComplementaryLIFNode`` for clif; ``KLIFNode`` for klif; ``GatedLIFNode(T)`` for glif;
  ``PSN(T)`` for psn; ``FlexSN`` cores written from the equations for ar_lif, ar_lif_dvs, da_lif
  and alif), ``n/a`` when SpikingJelly is not importable or has no equivalent (ib_ra_lif).
  Written against SpikingJelly 2.0 (which picks its Triton path for CUDA inputs by itself;
  0.0.0.1.x gets ``backend="triton"``). Its ``KLIFNode``, ``GatedLIFNode`` and ``PSN`` have no
  Triton path (a Torch loop over T; one ``addmm``), which the run says. In bf16/fp16 its
  ``LIFNode``/``ParametricLIFNode`` are prepared with its own explicit-precision API
  (``neuron_storage`` = the dtype), without which a half-precision state sends them to the Torch
  reference; its ``ILIFNode`` has no such path, and the run says so. The competitor takes our
  neuron's parameter values where SpikingJelly would draw its own (GLIF's gates, which it draws
  around 1/2; PSN's random ``W``). The stand-ins compute the same spikes and gradients as our
  presets (checked against our reference in ``tests/neurons/test_spikingjelly_equivalence.py``),
  except that hard_lif/soft_lif use SpikingJelly's sigmoid surrogate (its Triton LIF has no
  rectangle): same dynamics and bytes, different surrogate.

Presets with parameters per time step (glif, psn) are built for each ``--T``; their ``ours`` and
``eager`` columns run our neuron module (``SpikingNeuron`` with backend ``triton`` / ``torch``:
GLIF's gated-input pass plus the scan kernel; PSN's parallel kernel), ``compile`` compiles the
``torch`` one, and the gradients are those of ``x`` and the module's raw parameters.

``same``: the fraction of spikes (forward, same input) of each column equal to ours, so a speed-up
is never quoted against a competitor that computes something else.

Also printed: the speed-up of ours over each column, peak memory of each (``torch.cuda`` peak
allocated during one forward + backward, inputs excluded), and ours as a fraction of the
memory-bandwidth roofline: minimum bytes = read x + write spikes (forward) + read x + read
dL/dS + write dL/dx (backward), i.e. 5 T N bytes-per-element, divided by the time and by the GPU's
peak bandwidth (a table by device name; a measured device-to-device copy bandwidth otherwise).

Without a CUDA GPU it prints a message and returns 0. ``--device cpu`` runs every column once
more on the CPU at whatever (small) shape is given, the kernels in Triton's interpreter when
``TRITON_INTERPRET=1`` is set: the times then say nothing about the kernels; the run checks the
benchmark itself (every column builds, runs forward and backward, and agrees with ours).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_SHAPE = (64, 128, 32, 32)
COLUMNS = ("ours", "eager", "compile", "sj")
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
    parser.add_argument("--dtypes", default="fp32,bf16", help=f"comma-separated, of {', '.join(DTYPES)}")
    parser.add_argument("--T", default="4,8", help="comma-separated numbers of time steps")
    parser.add_argument("--shape", default=",".join(map(str, DEFAULT_SHAPE)),
                        help="per-step shape, comma-separated (B,C,H,W or B,F)")
    parser.add_argument("--columns", default=",".join(COLUMNS), help=f"subset of {', '.join(COLUMNS)}")
    parser.add_argument("--quick", action="store_true", help="lif, fp32, T=4 only")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                        help="auto: CUDA if present, else a message and exit; cpu: check the benchmark itself")
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
    """One competitor on one case: ``step()`` = forward + backward, ``spikes()`` = forward only."""

    def __init__(self, step, spikes, note=None):
        self.step = step
        self.spikes = spikes
        self.note = note or (lambda: None)


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


def _first_line(err: BaseException, width: int) -> str:
    text = str(err).splitlines()[0][:width] if str(err) else ""
    return f"{type(err).__name__}: {text}"


def make_case(preset, dtype, T, shape, columns, device="cuda"):
    """name -> ``Column`` (or a string saying why the column is n/a), plus the input for byte counts."""
    from lit_snn.neurons import KernelSpec, create_neuron, multistep_reference, neuron_config
    from lit_snn.neurons.kernels import multistep_triton

    x = torch.randn((T, *shape), device=device, dtype=dtype).mul_(1.5).add_(0.5).requires_grad_(True)
    grad = torch.randn_like(x)

    def column(forward, grad_inputs, prepare=lambda: None, note=None):
        def step():
            prepare()
            torch.autograd.grad(forward(), grad_inputs, grad, allow_unused=True)

        def spikes():  # with grad mode on, as timed: no_grad would make torch.compile compile again
            prepare()
            return forward().detach()
        return Column(step, spikes, note)

    runs = {}
    if neuron_config(preset).needs_time_steps:
        # GLIF, PSN: parameters per time step, so neurons built for this T; the module runs GLIF's
        # gated-input pass before the scan, PSN's parallel kernel instead of it
        def build(backend):
            return create_neuron(preset, time_steps=T, backend=backend, validate=False).to(device, dtype)

        neuron, reference = build("triton"), build("torch")
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
            runs["ours"] = column(lambda: multistep_triton(x, **params, spec=spec)[0], inputs)
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
    return runs, x


def measure(run, device="cuda") -> tuple[float, float | None]:
    """(median ms, peak MiB above the allocation at entry) of one forward + backward.

    On CUDA: ``triton.testing.do_bench`` medians and the allocator's peak; on the CPU (a check of
    the benchmark, not a timing) the median of three wall-clock runs and no peak.
    """
    run()  # compile / autotune outside the timing
    if device == "cpu":
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times), None
    import triton.testing

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
    """column -> fraction of its forward spikes equal to ours (None where either is missing)."""
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


# --------------------------------------------------------------------------------------------- main
def _select(args):
    """(presets, dtypes, steps, shape, columns) from the arguments, or an error message."""
    from lit_snn.neurons import list_neurons

    presets = list_neurons() if args.presets == "all" else [p.strip() for p in args.presets.split(",") if p]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d]
    columns = [c.strip() for c in args.columns.split(",") if c]
    try:
        steps = [int(t) for t in args.T.split(",") if t]
        shape = tuple(int(s) for s in args.shape.split(",") if s)
    except ValueError:
        return f"--T and --shape take comma-separated integers, got --T {args.T!r} --shape {args.shape!r}"
    if args.quick:
        presets, dtypes, steps = ["lif"], ["fp32"], [4]
    unknown = sorted(set(presets) - set(list_neurons()))
    bad_dtypes = sorted(set(dtypes) - set(DTYPES))
    bad_columns = sorted(set(columns) - set(COLUMNS))
    if unknown or bad_dtypes or bad_columns:
        return (f"unknown presets {unknown} / dtypes {bad_dtypes} / columns {bad_columns}; valid: "
                f"{', '.join(list_neurons())} / {', '.join(DTYPES)} / {', '.join(COLUMNS)}")
    if not steps or min(steps) < 1 or not shape or min(shape) < 1:
        return f"--T and --shape need positive integers, got --T {args.T!r} --shape {args.shape!r}"
    return presets, dtypes, steps, shape, columns


def main(argv=None) -> int:
    """Run the benchmark and print one table row per (preset, dtype, T); returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = args.device
    if device == "auto":
        if not torch.cuda.is_available():
            print("lit-snn bench: no CUDA GPU found; the benchmark times the Triton kernels on a GPU, "
                  "so there is nothing to measure here (the kernels' CPU tests run in the Triton interpreter; "
                  "--device cpu checks the benchmark itself).")
            return 0
        device = "cuda"
    elif device == "cuda" and not torch.cuda.is_available():
        print("lit-snn bench: --device cuda, but no CUDA GPU is visible to torch.")
        return 1
    try:
        import triton  # noqa: F401
    except ImportError:
        print("lit-snn bench: Triton is not installed (pip install 'lit_snn[gpu]').")
        return 1
    selection = _select(args)
    if isinstance(selection, str):
        print(f"lit-snn bench: {selection}")
        return 2
    presets, dtypes, steps, shape, columns = selection

    if device == "cuda":
        name = torch.cuda.get_device_name()
        measured = copy_bandwidth()
        peak_bw = peak_bandwidth(name)
        bw = peak_bw or measured
        print(f"device: {name}; peak bandwidth {bw / 1e12:.2f} TB/s ({'table' if peak_bw else 'measured'}), "
              f"measured copy {measured / 1e12:.2f} TB/s; shape [T, {', '.join(map(str, shape))}]")
    else:
        bw = None
        print(f"device: cpu (checking the benchmark itself: these times say nothing about the kernels); "
              f"shape [T, {', '.join(map(str, shape))}]")
    others = [c for c in columns if c != "ours"]
    header = (f"{'preset':<11} {'dtype':<5} {'T':>3} | " + " ".join(f"{c + ' ms':>9}" for c in columns)
              + " | " + " ".join(f"{'x' + c:>9}" for c in others)
              + " | " + " ".join(f"{c + ' MiB':>10}" for c in columns) + " | roofline"
              + " | " + " ".join(f"{'same ' + c:>12}" for c in others))
    print(header)
    print("-" * len(header))
    reported = set()

    def report(preset, dtype_name, T, col, text):
        if (col, text) not in reported:
            reported.add((col, text))
            print(f"  [{preset} {dtype_name} T={T}] {col}: {text}")

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
                        times[col], mems[col] = measure(run.step, device)
                        note = run.note()
                        if note:
                            report(preset, dtype_name, T, col, note)
                    except Exception as err:  # noqa: BLE001  (one failing column must not end the run)
                        report(preset, dtype_name, T, col, f"failed: {_first_line(err, 100)}")
                    if device == "cuda":
                        torch.cuda.empty_cache()
                ours = times.get("ours")
                speedups = [None if ours is None or times[c] is None else times[c] / ours for c in others]
                min_bytes = 5 * x.numel() * x.element_size()
                roof = None if ours is None or bw is None else min_bytes / (ours * 1e-3) / bw
                print(f"{preset:<11} {dtype_name:<5} {T:>3} | "
                      + " ".join(f"{_fmt(times[c], '.3f'):>9}" for c in columns)
                      + " | " + " ".join(f"{_fmt(s, '.2f'):>9}" for s in speedups)
                      + " | " + " ".join(f"{_fmt(mems[c], '.0f'):>10}" for c in columns)
                      + f" | {_fmt(roof, '.0%'):>8}"
                      + " | " + " ".join(f"{_fmt(same.get(c), '.2%'):>12}" for c in others), flush=True)
                del runs, x
                if device == "cuda":
                    torch.cuda.empty_cache()
    print("x<col>: time of <col> / time of ours (> 1: ours is faster). roofline: (5 T N bytes) / time / peak. "
          "same <col>: fraction of <col>'s spikes equal to ours.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
