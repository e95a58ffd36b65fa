"""Every kernel variant compiles for Hopper (sm_90) and Ampere (sm_80) without a GPU, with no
register spills at any autotune configuration.

Triton's CPU interpreter (how the other kernel tests run here) executes the kernels as NumPy, so
it cannot see a kernel that fails to compile or spills; Triton's own ptxas can. Runs
``python -m lit_snn.tools.kernel_resources`` in a subprocess without ``TRITON_INTERPRET``.
"""

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("triton")


def run_resources(*args):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    out = subprocess.run([sys.executable, "-m", "lit_snn.tools.kernel_resources", *args],
                         capture_output=True, text=True, env=env, timeout=600)
    return out


def cells(stdout):
    """(preset, dtype, kernel) -> [(BLOCK, warps, registers, local bytes, resident warps, widest load, widest store)]
    per autotune configuration (strings, as printed)."""
    table = {}
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] in ("fwd", "bwd"):
            table[tuple(fields[:3])] = re.findall(r"(\d+)/(\d+)wu? (\w+)r (\w+)L (\w+)W (\d+)/(\d+)B", line)
    return table


def check_table(out, presets, dtypes):
    assert out.returncode == 0, out.stderr[-3000:]
    table = cells(out.stdout)
    assert sorted(table) == sorted((p, d, k) for p in presets for d in dtypes for k in ("fwd", "bwd"))
    for key, configs in table.items():
        assert len(configs) >= 4, (key, configs)
        for block, num_warps, *_, load, store in configs:
            if key[1] == "fp32" and int(block) // (32 * int(num_warps)) >= 4:  # 4+ neurons per thread
                assert (load, store) == ("16", "16"), f"{key} {block}/{num_warps}w: not 128-bit vector access"
    if any(cell[2] == "None" for configs in table.values() for cell in configs):
        pytest.skip("every variant compiled with 128-bit access, but this Triton wheel has no cuobjdump: "
                    "register and spill counts cannot be read")
    for key, configs in table.items():
        for _, _, registers, local, warps, _, _ in configs:
            assert local == "0", f"{key}: register spills ({local} bytes of local memory per thread)"
            assert int(registers) <= 255 and int(warps) >= 8, (key, configs)
    return table


def test_every_preset_compiles_for_sm90_without_spills():
    """Every preset, forward and backward, at every autotune configuration (both backward modes)."""
    from lit_snn.neurons import list_neurons

    out = run_resources("--dtypes", "fp32")
    table = check_table(out, list_neurons(), ["fp32"])
    # the backward's 2-neurons-per-thread configurations keep AR-LIF's occupancy up
    ar_bwd = table[("ar_lif", "fp32", "bwd")]
    assert max(int(cell[4]) for cell in ar_bwd) >= 24, ar_bwd


def test_other_variants_compile_for_sm80():
    """bf16 storage, per-channel parameters, gradients into the final state (V and M), no parameter gradients."""
    presets = ["da_lif", "ar_lif", "ib_ra_lif", "clif", "alif", "klif", "glif"]
    out = run_resources("--presets", ",".join(presets), "--dtypes", "bf16", "--arch", "80", "--per-channel",
                        "--grad-state", "--no-param-grad")
    check_table(out, presets, ["bf16"])


def test_resources_refuses_unknown_presets():
    out = run_resources("--presets", "nope")
    assert out.returncode == 2 and "unknown presets/dtypes ['nope']" in out.stdout
