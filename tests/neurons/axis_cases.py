"""The reset x threshold x spike combinations that the kernel tests and the CPU path tests both
cover (kept out of either test module: the CPU path's runs without Triton)."""

import pytest


def axis_cases():
    """Every reset x threshold x spike combination (the two that would both need the second state M
    excluded); surrogates, decays, granularity, memory carry, detach_reset and slope rotate."""
    surrogates = ["rectangle", "triangle", "sigmoid", "atan"]
    decays = ["fixed", "learnable", "dual"]
    cases, i = [], 0
    for reset in ("hard", "soft", "adaptive", "complementary", "gated", "none"):
        for threshold in ("fixed", "learnable", "adaptive", "spike_adaptive"):
            if reset in ("adaptive", "complementary") and threshold == "spike_adaptive":
                continue
            for spike in ("binary", "integer"):
                fields = {"reset": reset, "threshold": threshold, "spike": spike, "decay": decays[i % 3],
                          "surrogate": surrogates[i % 4], "surrogate_width": [0.8, 1.3][i % 2],
                          "surrogate_alpha": [4.0, 2.5][i % 2], "beta": 0.4, "alpha": 0.7,
                          "memory_carry": i % 4 != 1 or reset != "adaptive", "int_max": [4.0, 5.11][i % 2],
                          "int_scale": [1.0, 100.0][i % 2], "detach_reset": i % 3 == 2,
                          "slope": "learnable" if i % 5 == 3 else "none", "v_threshold": 0.9,
                          "adapt_learnable": threshold == "spike_adaptive" and i % 2 == 0}
                channel = i % 2 == 1
                cid = f"{reset}-{threshold}-{spike}-{fields['surrogate'] if spike == 'binary' else 'ste'}" + (
                    "-channel" if channel else "") + ("-nocarry" if not fields["memory_carry"] else "") + (
                    "-detach" if fields["detach_reset"] else "") + ("-slope" if fields["slope"] != "none" else "")
                cases.append(pytest.param(fields, channel, id=cid))
                i += 1
    return cases
