"""Neuron kernel benchmark: forward + backward time and peak memory per preset, on a CUDA GPU.

Usage (``lit-snn bench`` forwards its arguments to ``main``)::

    lit-snn bench                                   # every preset, fp32 and bf16, T = 4 and 8
    lit-snn bench --presets lif,ar_lif --dtypes fp32 --T 4 --shape 64,128,32,32
    lit-snn bench --quick                           # lif, fp32, T = 4: a one-line smoke run
    lit-snn bench --columns ours,eager              # skip torch.compile and SpikingJelly

Input ``x`` is ``[T, *shape]`` (default shape ``64,128,32,32``: B, C, H, W); one case is a
forward over all T steps plus the backward of the spikes (w.r.t. ``x`` and the preset's learnable
parameters). Columns, each a median of ``triton.testing.do_bench`` (CUDA-synchronised):

- ``ours``: the fused Triton kernels (``lit_snn.neurons.kernels.multistep_triton``)
- ``eager``: the PyTorch reference recurrence (``multistep_reference``)
- ``compile``: ``torch.compile`` of the reference (compilation excluded; can take a while)
- ``sj``: SpikingJelly's multi-step Triton neuron where an equivalent exists (``LIFNode`` for lif,
  hard_lif, soft_lif; ``ParametricLIFNode`` for plif; ``ILIFNode`` for i_lif; ``FlexSN`` for
  ar_lif, ar_lif_dvs, da_lif), ``n/a`` when SpikingJelly is not importable or has no equivalent
  (ib_ra_lif). Written against SpikingJelly 2.0 (which picks its Triton path for CUDA inputs by
  itself; 0.0.0.1.x gets ``backend="triton"``). The stand-ins for hard_lif/soft_lif use its
  sigmoid surrogate: same dynamics and bytes, different surrogate.

Also printed: the speed-up of ours over each column, peak memory of each (``torch.cuda`` peak
allocated during one forward + backward, inputs excluded), and ours as a fraction of the
memory-bandwidth roofline: minimum bytes = read x + write spikes (forward) + read x + read
dL/dS + write dL/dx (backward), i.e. 5 T N bytes-per-element, divided by the time and by the GPU's
peak bandwidth (a table by device name; a measured device-to-device copy bandwidth otherwise).

Without a CUDA GPU it prints a message and returns 0.
"""

from __future__ import annotations

import argparse
import sys

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
def learnable_params(preset: str, dtype: torch.dtype) -> dict:
    """Effective parameters as leaves; those the preset learns require grad."""
    from lit_snn.neurons import create_neuron

    neuron = create_neuron(preset)
    params = neuron.effective_params()
    return {k: v.detach().to("cuda", dtype).requires_grad_(v.requires_grad) for k, v in params.items()}


def spikingjelly_neuron(preset: str, dtype: torch.dtype):
    """An equivalent SpikingJelly multi-step Triton neuron, or raise with the reason."""
    from spikingjelly.activation_based import neuron as sjn
    from spikingjelly.activation_based import surrogate

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
    elif preset == "i_lif":  # defaults: decay 0.25, D = 4, soft reset
        module = build(sjn.ILIFNode)
    elif preset in ("ar_lif", "ar_lif_dvs", "da_lif"):
        module = _flexsn(preset, sjn, surrogate)
    else:
        raise LookupError("no SpikingJelly equivalent")
    return module.to("cuda", dtype)


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


def make_case(preset, dtype, T, shape, columns):
    """name -> (zero-arg forward+backward callable), plus the input for byte counts."""
    from lit_snn.neurons import KernelSpec, multistep_reference, neuron_config
    from lit_snn.neurons.kernels import multistep_triton

    spec = KernelSpec.from_config(neuron_config(preset))
    x = torch.randn((T, *shape), device="cuda", dtype=dtype).mul_(1.5).add_(0.5).requires_grad_(True)
    grad = torch.randn_like(x)
    params = learnable_params(preset, dtype)
    inputs = [x] + [p for p in params.values() if p.requires_grad]

    def fwd_bwd(fn):
        def run():
            spikes = fn()
            torch.autograd.grad(spikes, inputs, grad)
        return run

    runs = {}
    if "ours" in columns:
        runs["ours"] = fwd_bwd(lambda: multistep_triton(x, **params, spec=spec)[0])
    if "eager" in columns:
        runs["eager"] = fwd_bwd(lambda: multistep_reference(x, **params, spec=spec)[0])
    if "compile" in columns:
        compiled = torch.compile(multistep_reference, dynamic=False)
        runs["compile"] = fwd_bwd(lambda: compiled(x, **params, spec=spec)[0])
    if "sj" in columns:
        try:
            module = spikingjelly_neuron(preset, dtype)
        except Exception as err:  # noqa: BLE001  (not installed, no equivalent, API mismatch: report, go on)
            runs["sj"] = f"n/a ({type(err).__name__}: {str(err).splitlines()[0][:60] if str(err) else ''})"
        else:
            sj_inputs = [x] + [p for p in module.parameters() if p.requires_grad]

            def sj_run():
                module.reset()
                out = module(x)
                out = out[0] if isinstance(out, tuple) else out
                torch.autograd.grad(out, sj_inputs, grad, allow_unused=True)
            # FlexSN silently falls back to a non-Triton scan when its kernel generation fails: say so
            sj_run.note = lambda: ("SpikingJelly used its non-Triton (HOP) scan" if not all(
                getattr(module, "_triton_capability", {}).values()) else None)
            runs["sj"] = sj_run
    return runs, x


def measure(run) -> tuple[float, float]:
    """(median ms, peak MiB above the allocation at entry) of one forward + backward."""
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


# --------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    """Run the benchmark and print one table row per (preset, dtype, T); returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not torch.cuda.is_available():
        print("lit-snn bench: no CUDA GPU found; the benchmark times the Triton kernels on a GPU, "
              "so there is nothing to measure here (the kernels' CPU tests run in the Triton interpreter).")
        return 0
    try:
        import triton  # noqa: F401
    except ImportError:
        print("lit-snn bench: Triton is not installed (pip install 'lit_snn[gpu]').")
        return 1
    from lit_snn.neurons import list_neurons

    presets = list_neurons() if args.presets == "all" else [p.strip() for p in args.presets.split(",") if p]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d]
    steps = [int(t) for t in args.T.split(",") if t]
    shape = tuple(int(s) for s in args.shape.split(",") if s)
    columns = [c.strip() for c in args.columns.split(",") if c]
    if args.quick:
        presets, dtypes, steps = ["lif"], ["fp32"], [4]
    unknown = sorted(set(presets) - set(list_neurons()))
    bad_dtypes = sorted(set(dtypes) - set(DTYPES))
    bad_columns = sorted(set(columns) - set(COLUMNS))
    if unknown or bad_dtypes or bad_columns:
        print(f"lit-snn bench: unknown presets {unknown} / dtypes {bad_dtypes} / columns {bad_columns}; valid: "
              f"{', '.join(list_neurons())} / {', '.join(DTYPES)} / {', '.join(COLUMNS)}")
        return 2

    name = torch.cuda.get_device_name()
    measured = copy_bandwidth()
    peak_bw = peak_bandwidth(name)
    bw = peak_bw or measured
    print(f"device: {name}; peak bandwidth {bw / 1e12:.2f} TB/s ({'table' if peak_bw else 'measured'}), "
          f"measured copy {measured / 1e12:.2f} TB/s; shape [T, {', '.join(map(str, shape))}]")
    header = (f"{'preset':<11} {'dtype':<5} {'T':>3} | " + " ".join(f"{c + ' ms':>9}" for c in columns)
              + " | " + " ".join(f"{'x' + c:>9}" for c in columns if c != "ours")
              + " | " + " ".join(f"{c + ' MiB':>10}" for c in columns) + " | roofline")
    print(header)
    print("-" * len(header))
    reported = set()
    for preset in presets:
        for dtype_name in dtypes:
            for T in steps:
                runs, x = make_case(preset, DTYPES[dtype_name], T, shape, columns)
                times, mems = {}, {}
                for col in columns:
                    run = runs.get(col)
                    if isinstance(run, str) or run is None:
                        times[col] = mems[col] = None
                        if isinstance(run, str) and (col, run) not in reported:
                            reported.add((col, run))
                            print(f"  [{preset} {dtype_name} T={T}] {col}: {run}")
                        continue
                    try:
                        times[col], mems[col] = measure(run)
                        note = getattr(run, "note", lambda: None)()
                        if note:
                            print(f"  [{preset} {dtype_name} T={T}] {col}: {note}")
                    except Exception as err:  # noqa: BLE001  (one failing column must not end the run)
                        times[col] = mems[col] = None
                        print(f"  [{preset} {dtype_name} T={T}] {col} failed: {type(err).__name__}: "
                              f"{str(err).splitlines()[0][:100] if str(err) else ''}")
                    torch.cuda.empty_cache()
                ours = times.get("ours")
                speedups = [None if ours is None or times[c] is None else times[c] / ours
                            for c in columns if c != "ours"]
                min_bytes = 5 * x.numel() * x.element_size()
                roof = None if ours is None else min_bytes / (ours * 1e-3) / bw
                print(f"{preset:<11} {dtype_name:<5} {T:>3} | "
                      + " ".join(f"{_fmt(times[c], '.3f'):>9}" for c in columns)
                      + " | " + " ".join(f"{_fmt(s, '.2f'):>9}" for s in speedups)
                      + " | " + " ".join(f"{_fmt(mems[c], '.0f'):>10}" for c in columns)
                      + f" | {_fmt(roof, '.0%')}", flush=True)
                del runs, x
                torch.cuda.empty_cache()
    print("x<col>: time of <col> / time of ours (> 1: ours is faster). roofline: (5 T N bytes) / time / peak.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
