"""One case of the neuron benchmark (a preset, a dtype, T, a shape): every column's forward +
backward as a ``Column``."""

from __future__ import annotations

import torch

from .competitors import learnable_params, snntorch_neuron, spikingjelly_neuron
from .table_rows import first_line

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Column:
    """One competitor on one case: ``step()`` = forward + backward (returns the spikes and the
    gradients), ``spikes()`` = forward only, ``graph()`` = forward keeping its autograd graph."""

    def __init__(self, step, spikes, graph, note=None, leaves=()):
        self.step = step
        self.spikes = spikes
        self.graph = graph
        self.note = note or (lambda: None)
        self.leaves = list(leaves)  # x and the parameters: alive anyway, not counted as kept memory



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
            runs["sj"] = f"n/a ({first_line(err, 60)})"
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
            runs["snntorch"] = f"n/a ({first_line(err, 60)})"
        else:
            runs["snntorch"] = column(lambda: leaky(x), [x])
    return runs, x

