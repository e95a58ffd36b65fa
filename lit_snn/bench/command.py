"""Neuron benchmark: forward + backward time and memory per preset, on a CUDA GPU or on the CPU.

Usage (``lit-snn bench`` forwards its arguments to ``main``)::

    lit-snn bench                                   # GPU: every preset, fp32 and bf16, T = 4 and 8
    lit-snn bench --presets lif,ar_lif --dtypes fp32 --T 4 --shape 64,128,32,32
    lit-snn bench --quick                           # lif, fp32, T = 4: a one-line smoke run
    lit-snn bench --columns ours,eager              # skip torch.compile and SpikingJelly
    lit-snn bench --device cpu                      # the CPU benchmark (make bench-cpu), see below
    lit-snn bench --e2e [--help]                    # a training step of one network in each library (e2e)

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
import sys

import torch

from .cases import DTYPES
from .cpu_table import run_cpu
from .gpu_table import run_gpu
from .timing import cpu_name

DEFAULT_SHAPE = {"cuda": (64, 128, 32, 32), "cpu": (16, 64, 16, 16)}
COLUMNS = ("ours", "eager", "compile", "sj", "snntorch")
DEFAULT_COLUMNS = {"cuda": "ours,eager,compile,sj", "cpu": "ours,eager,compile,sj,snntorch"}


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
    parser.add_argument("--e2e", action="store_true", help="the end-to-end training-step benchmark instead, with "
                        "flags of its own (lit-snn bench --e2e --help)")
    parser.add_argument("--backward", action="store_true", help="CPU: each fused preset's neuron backward against "
                        "the general adjoint, and lif's forward + backward against the copy bandwidth (x [max T, "
                        "*shape])")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                        help="auto: CUDA if present, else a message and exit; cpu: the CPU benchmark")
    parser.add_argument("--threads", default="1,2", help="CPU: comma-separated torch thread counts, one table each")
    parser.add_argument("--rounds", type=int, default=7, help="CPU: interleaved timing rounds per case")
    return parser.parse_args(argv)



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


def _backward(args) -> int:
    """``--backward``: the CPU tables of ``backward.py`` on x [max T, *shape] (lif only with ``--quick``)."""
    from .backward import FUSED_PRESETS, run

    selection = _select(args, "cpu")
    if isinstance(selection, str):
        print(f"lit-snn bench: {selection}")
        return 2
    presets, _, steps, shape, _, threads = selection
    if args.presets == "all":
        presets = list(FUSED_PRESETS)
    others = sorted(set(presets) - set(FUSED_PRESETS))
    if others:
        print(f"lit-snn bench: --backward compares the fused backward of {', '.join(FUSED_PRESETS)}; "
              f"{', '.join(others)} {'has' if len(others) == 1 else 'have'} none")
        return 2
    return run(presets, (max(steps), *shape), threads, args.rounds)


def main(argv=None) -> int:
    """Run the benchmark and print one table row per (preset, dtype, T); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--e2e" in argv:
        from .e2e import main as e2e_main

        return e2e_main([arg for arg in argv if arg != "--e2e"])
    args = parse_args(argv)
    if args.backward:
        return _backward(args)
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
        print(f"device: cpu ({cpu_name()}, {torch.get_num_threads()} threads available), torch {torch.__version__}; "
              f"shape [T, {', '.join(map(str, shape))}]; {args.rounds} interleaved rounds per case")
        run_cpu(presets, dtypes, steps, shape, columns, threads, args.rounds, report)
        return 0

    run_gpu(presets, dtypes, steps, shape, columns, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
