"""Compile the neuron kernels for a GPU architecture without a GPU and report their resources.

Triton's wheel ships ``ptxas`` and ``cuobjdump``, so every kernel variant can be compiled ahead of
time for, say, Hopper (sm_90) on any machine. That catches what Triton's CPU interpreter cannot
(the interpreter runs the kernels as NumPy: a kernel that does not compile, or type errors in
loop-carried values, only show on a GPU) and tells, per variant and autotune configuration, the
registers per thread, local memory (register spills) and the resident warps per SM that the
registers allow: the first-order facts of a memory-bound kernel's speed.

    python -m lit_snn.tools.kernel_resources                 # every preset, fp32 and bf16, sm_90
    python -m lit_snn.tools.kernel_resources --presets ar_lif --dtypes bf16 --arch 80

Must run without ``TRITON_INTERPRET`` (the kernels are then decorated for compilation).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from ..neurons.kernels import multistep, parallel
from ..neurons.presets import list_neurons, neuron_config
from ..neurons.reference import KernelSpec
from ..neurons.surrogate import SURROGATE_IDS

DTYPES = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}
# pointers that hold activations (x's dtype); the others are fp32 (parameters, scratch, partial sums)
_ACTIVATION_POINTERS = {"x_ptr", "s_ptr", "v_ptr", "m_ptr", "gs_ptr", "gv_ptr", "gm_ptr", "gx_ptr", "h_ptr",
                        "gh_ptr"}
_FLOAT_SCALARS = {"int_scale", "int_top", "int_max", "surrogate_param"}
REGISTERS_PER_SM = 65536  # sm_70 .. sm_100
MAX_WARPS_PER_SM = {70: 64, 75: 32, 80: 64, 86: 48, 89: 48, 90: 64, 100: 64}


@dataclass
class Resources:
    registers: int | None  # per thread
    stack: int | None  # bytes per thread
    local: int | None  # bytes of local memory per thread (spills)
    shared: int | None  # bytes per program
    load_bytes: int = 0  # widest global load per instruction (16: 128-bit vectors, coalesced)
    store_bytes: int = 0  # widest global store per instruction

    def resident_warps(self, num_warps: int, arch: int) -> int | None:
        """Warps per SM that the register file allows (granularity: whole programs)."""
        if not self.registers:
            return None
        regs = -(-self.registers // 8) * 8  # allocated in units of 8 per thread
        programs = REGISTERS_PER_SM // (regs * 32 * num_warps)
        return min(programs * num_warps, MAX_WARPS_PER_SM.get(arch, 64))


def _constexprs(direction: str, spec: KernelSpec, per_channel: bool, block: int, grad_state: bool,
                param_grad: bool, unroll: bool) -> dict:
    variant = multistep.Variant.from_spec(spec, per_channel)
    consts = dict(variant.constexprs(direction), BLOCK=block)
    if direction == "fwd":
        consts.update(CHECK_FINITE=True)  # as in training (LitSNN's deferred NaN/inf check): the superset
    if direction == "bwd":
        consts.update(HAS_GRAD_STATE=grad_state, PARAM_GRAD=param_grad, CHUNK=multistep.PARTIAL_CHUNK,
                      UNROLL=unroll, K=variant.checkpoint_every)
    return consts


def compile_variant(direction: str, spec: KernelSpec, dtype: str, block: int, num_warps: int, arch: int = 90,
                    per_channel: bool = False, grad_state: bool = False, param_grad: bool = True,
                    unroll: bool = False):
    """Compile one kernel variant for ``sm_<arch>``; returns Triton's compiled kernel (raises on failure)."""
    fn = multistep._forward_kernel if direction == "fwd" else multistep._backward_kernel
    consts = _constexprs(direction, spec, per_channel, block, grad_state, param_grad, unroll)
    return _compile(fn, consts, dtype, num_warps, arch)


def compile_parallel(direction: str, dtype: str, block: int, num_warps: int, arch: int = 90, T: int = 4,
                     surrogate: str = "atan", grad_state: bool = False, param_grad: bool = True):
    """Compile PSN's kernel (``kernels/parallel.py``) for ``sm_<arch>`` at sequence length ``T``."""
    fn = parallel._forward_kernel if direction == "fwd" else parallel._backward_kernel
    consts = dict(TP=parallel._padded_steps(T), BLOCK=block)
    if direction == "bwd":
        consts.update(SURROGATE=SURROGATE_IDS[surrogate], HAS_GS=True, HAS_GH=grad_state, NEED_GX=True,
                      NEED_GP=param_grad)
    return _compile(fn, consts, dtype, num_warps, arch)


def parallel_configs(direction: str, T: int) -> list[tuple[int, int]]:
    """PSN's autotune configurations that its pruner keeps at ``T`` (BLOCK, num_warps)."""
    configs, budget = ((parallel.FWD_CONFIGS, parallel.FWD_BUDGET) if direction == "fwd"
                       else (parallel.BWD_CONFIGS, parallel.BWD_BUDGET))
    tp = parallel._padded_steps(T)
    return [(b, w) for b, w in configs if parallel._tile_values(tp, b) <= budget * 32 * w]


def _compile(fn, consts: dict, dtype: str, num_warps: int, arch: int):
    if not isinstance(fn, triton.runtime.jit.JITFunction):
        raise RuntimeError("kernel_resources: the kernels were decorated for the interpreter; unset "
                           "TRITON_INTERPRET and run again")
    signature = {}
    for name in fn.arg_names:
        if name in consts:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            kind = DTYPES[dtype] if name in _ACTIVATION_POINTERS else ("i32" if name == "flag_ptr" else "fp32")
            signature[name] = "*" + kind
        else:
            signature[name] = "fp32" if name in _FLOAT_SCALARS else "i32"
    # what the JIT specialises for a CIFAR ResNet stage ([T, 64, 128, 32, 32]): 16-aligned pointers and
    # N, C, S multiples of 16 (T and K are not specialised), which lets loads and stores vectorise
    aligned = [i for i, name in enumerate(fn.arg_names)
               if signature[name].startswith("*") or name in ("N", "C", "S")]
    source = ASTSource(fn, signature, constexprs=consts, attrs={(i,): [["tt.divisibility", 16]] for i in aligned})
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options={"num_warps": num_warps,
                                                                               "num_stages": 1})


def _widest(ptx: str, op: str) -> int:
    """Bytes moved by the widest ``ld.global``/``st.global`` of the PTX (vectors: .v2/.v4)."""
    widest = 0
    for vec, bits in re.findall(rf"{op}\.global(?:\.[a-z]\w*)*?(?:\.v(\d))?\.[bfsu](\d+)", ptx):
        widest = max(widest, int(vec or 1) * int(bits) // 8)
    return widest


def resources(kernel) -> Resources:
    """Registers, stack, local and shared memory of a compiled kernel (read by the wheel's cuobjdump)
    and the widest global load and store of its PTX."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    shared = kernel.metadata.shared
    widths = dict(load_bytes=_widest(kernel.asm["ptx"], "ld"), store_bytes=_widest(kernel.asm["ptx"], "st"))
    if not os.path.exists(tool):
        return Resources(None, None, None, shared, **widths)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(kernel.asm["cubin"])
        out = subprocess.run([tool, "--dump-resource-usage", path], capture_output=True, text=True).stdout
    match = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", out)
    if not match:
        return Resources(None, None, None, shared, **widths)
    reg, stack, _, local = (int(g) for g in match.groups())
    return Resources(reg, stack, local, shared, **widths)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lit_snn.tools.kernel_resources",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="all", help="comma-separated preset names, or 'all'")
    parser.add_argument("--dtypes", default="fp32,bf16", help=f"comma-separated, of {', '.join(DTYPES)}")
    parser.add_argument("--arch", type=int, default=90, help="compute capability x10 (90: H100/H200, 80: A100)")
    parser.add_argument("--per-channel", action="store_true", help="per-channel parameters")
    parser.add_argument("--grad-state", action="store_true", help="backward: gradients flow into V_T (and M_T)")
    parser.add_argument("--no-param-grad", action="store_true", help="backward: no parameter gradients")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    presets = list_neurons() if args.presets == "all" else [p for p in args.presets.split(",") if p]
    dtypes = [d for d in args.dtypes.split(",") if d]
    bad = sorted(set(presets) - set(list_neurons())) + sorted(set(dtypes) - set(DTYPES))
    if bad:
        print(f"kernel_resources: unknown presets/dtypes {bad}")
        return 2
    print(f"sm_{args.arch}, Triton {triton.__version__}; regs/thread, local (spill) bytes/thread, resident warps/SM")
    print(f"{'preset':<11} {'dtype':<5} {'kernel':<4} autotune configurations: "
          "BLOCK/warps (u: unrolled backward chunk), r registers per thread, L local (spill) bytes per thread, "
          "W resident warps per SM, "
          "B widest global load/store in bytes")
    failures = 0
    for preset in presets:
        cfg = neuron_config(preset)
        spec = KernelSpec.from_config(cfg)
        psn = cfg.decay == "parallel"  # PSN: its own kernel (kernels/parallel.py) at the preset's T
        for dtype in dtypes:
            fwd_configs = [(b, w, False) for b, w in multistep.FWD_CONFIGS]
            scan_configs = (("fwd", fwd_configs), ("bwd", multistep.BWD_CONFIGS))
            psn_configs = tuple((d, [(b, w, False) for b, w in parallel_configs(d, cfg.time_steps)])
                                for d in ("fwd", "bwd")) if psn else ()
            for direction, configs in (psn_configs if psn else scan_configs):
                cells = []
                for block, warps, unroll in configs:
                    try:
                        if psn:
                            kernel = compile_parallel(direction, dtype, block, warps, args.arch, cfg.time_steps,
                                                      cfg.surrogate, args.grad_state, not args.no_param_grad)
                        else:
                            kernel = compile_variant(direction, spec, dtype, block, warps, args.arch,
                                                     args.per_channel, args.grad_state, not args.no_param_grad,
                                                     unroll)
                        res = resources(kernel)
                    except Exception as err:  # noqa: BLE001  (report every variant that fails to compile)
                        failures += 1
                        cells.append(f"{'FAILED ' + type(err).__name__:>28}")
                        print(f"  {preset} {dtype} {direction} BLOCK {block}/{warps}w: {err}", file=sys.stderr)
                        continue
                    warps_per_sm = res.resident_warps(warps, args.arch)
                    cell = (f"{block}/{warps}w{'u' if unroll else ''} {res.registers}r {res.local}L {warps_per_sm}W "
                            f"{res.load_bytes}/{res.store_bytes}B")
                    cells.append(f"{cell:>28}")
                print(f"{preset:<11} {dtype:<5} {direction:<4} " + "  ".join(cells), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
