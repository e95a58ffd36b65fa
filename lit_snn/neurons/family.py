"""``SpikingNeuron``: the configurable multi-step neuron module (one class for every preset)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .config import NeuronConfig
from .cpu import multistep_cpu, parallel_cpu
from .cpu.scan import gated_input, nonfinite_reaches_state
from .parallel import init_parallel_params, parallel_reference
from .precision import warn_if_levels_collapse
from .reference import PARAM_NAMES, KernelSpec, multistep_reference


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


_DECAY_FNS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}
_DECAY_INVERSES = {"sigmoid": _logit, "tanh": math.atanh}


class SpikingNeuron(nn.Module):
    """A multi-step spiking neuron layer of the family described by ``NeuronConfig``.

    ``forward(x)`` takes time-first input ``x`` of shape ``[T, ...]`` (``[T, B, C, H, W]`` for
    conv layers, ``[T, B, F]`` for linear ones) and returns spikes of the same shape: binary
    ``{0, 1}`` or integer-valued ``{0, 1/N, ..., D}``. Membrane and memory start at zero on every
    call, so no reset is ever needed between samples. Learnable parameters (decays, threshold,
    AR-LIF's ``a`` and ``c``, KLIF's slope, GLIF's gates, ALIF's rho and gamma) have one entry per
    layer or per channel (dim 2); GLIF's conductance is ``[T, P]``, PSN's mixing ``[T, T]`` and its
    learnable threshold ``[T]``.
    """

    def __init__(self, config: NeuronConfig | None = None, name: str = "custom") -> None:
        super().__init__()
        self.config = config or NeuronConfig()
        self.name = name
        self.spec = KernelSpec.from_config(self.config)
        # NaN/inf in the input: raise at once (default), or, inside a network on a GPU where a check
        # per layer would synchronise every step, record a device flag that the caller checks once
        self.defer_finite_check = False
        self._nonfinite: Tensor | None = None
        self._constants: dict = {}  # the fixed parameters as tensors, per device and dtype
        cfg, size = self.config, self.config.num_params

        def param(value: float) -> nn.Parameter:
            return nn.Parameter(torch.full((size,), float(value)))

        if cfg.decay == "learnable":  # PLIF: k = sigmoid(w), beta = 1 - k
            self.decay_w = param(_logit(1 - cfg.beta))
        elif cfg.decay == "dual":  # DA-LIF: alpha = f(tau_a), beta = f(tau_b)
            inverse = _DECAY_INVERSES[cfg.decay_fn]
            self.tau_a = param(inverse(cfg.alpha))
            self.tau_b = param(inverse(cfg.beta))
        elif cfg.decay == "gated":  # GLIF: leak and integration gates, tau, linear decay, conductance per step
            self.glif_a = param(cfg.gate_init)
            self.glif_b = param(cfg.gate_init)
            self.glif_tau = param(_logit(cfg.glif_tau_init))
            self.glif_linear_decay = param(_logit(cfg.linear_decay_start))
            self.glif_conduct = nn.Parameter(torch.full((cfg.time_steps, size), _logit(cfg.glif_conduct_init)))
        elif cfg.decay == "parallel":  # PSN: H = W X over time; W initialised as SpikingJelly's PSN
            self.psn_weight = nn.Parameter(init_parallel_params(cfg.time_steps)[0])
        if cfg.threshold == "learnable":
            if cfg.decay == "parallel":  # one threshold per time step
                self.v_th = nn.Parameter(torch.full((cfg.time_steps,), float(cfg.v_threshold)))
            else:
                self.v_th = param(_logit(cfg.v_threshold) if cfg.sigmoid_params else cfg.v_threshold)
        elif cfg.threshold == "adaptive":  # AR-LIF threshold adjustment tanh(a) tanh(X)
            self.thr_a = param(cfg.threshold_coef_init)
        elif cfg.threshold == "spike_adaptive" and cfg.adapt_learnable:  # ALIF: rho = sigmoid(logit), gamma
            self.adapt_rho = param(_logit(cfg.adapt_decay))
            self.adapt_gamma = param(cfg.adapt_gain)
        if cfg.reset == "adaptive":  # AR-LIF memory gate sigmoid(c X)
            self.mem_c = param(cfg.memory_gain_init)
        elif cfg.reset == "gated":  # GLIF: reset gate (hard vs soft) and soft-reset value
            self.glif_r = param(cfg.gate_init)
            self.glif_subreset = param(_logit(cfg.subreset_start))
        if cfg.slope == "learnable":  # KLIF: U = relu(k U)
            self.slope_k = param(cfg.slope_init)

    # ------------------------------------------------------------------ parameters
    def effective_params(self, device: torch.device | None = None) -> dict[str, Tensor]:
        """The per-layer/per-channel values the recurrence uses: alpha, beta, vth, thr_coef, mem_gain.

        Fixed values live with the learnable parameters; a neuron without any lives on ``device``
        (default: the CPU) in fp32, so that a call on a GPU copies nothing from the host.
        """
        cfg = self.config
        ref = next(self.parameters(), None)
        if ref is not None:
            like = dict(device=ref.device, dtype=ref.dtype)
        else:
            like = dict(device=torch.device(device) if device is not None else torch.device("cpu"),
                        dtype=torch.float32)
        size = cfg.num_params

        def const(value: float) -> Tensor:  # cached per (value, device, dtype): no allocation per call
            key = (float(value), like["device"], like["dtype"])
            if key not in self._constants:
                self._constants[key] = torch.full((size,), float(value), **like)
            return self._constants[key]

        if cfg.decay == "learnable":
            k = torch.sigmoid(self.decay_w)
            beta, alpha = 1 - k, (k if cfg.decay_input else const(cfg.alpha))
        elif cfg.decay == "dual":
            f = _DECAY_FNS[cfg.decay_fn]
            alpha, beta = f(self.tau_a), f(self.tau_b)
        elif cfg.decay == "gated":  # the leak; the input gain and linear decay act on x (glif_input)
            alpha, beta = const(1.0), 1 - torch.sigmoid(self.glif_a) * (1 - torch.sigmoid(self.glif_tau))
        else:
            alpha, beta = const(cfg.alpha), const(cfg.beta)
        if cfg.threshold == "learnable":
            vth = torch.sigmoid(self.v_th) if cfg.sigmoid_params else self.v_th
        else:
            vth = const(cfg.v_threshold)
        if cfg.threshold == "adaptive":
            thr_coef = torch.tanh(self.thr_a)
        elif cfg.threshold == "spike_adaptive":
            thr_coef = self.adapt_gamma if cfg.adapt_learnable else const(cfg.adapt_gain)
        else:
            thr_coef = const(0.0)
        adapt_decay = torch.sigmoid(self.adapt_rho) if cfg.adapt_learnable and cfg.threshold == "spike_adaptive" \
            else const(cfg.adapt_decay)
        if cfg.reset == "adaptive":
            mem_gain = self.mem_c
        elif cfg.reset == "complementary":  # CLIF's sigmoid(H / tau) with 1 / tau = 1 - beta
            mem_gain = 1 - beta
        else:
            mem_gain = const(0.0)
        if cfg.reset == "gated":  # divided by the leak: the next charge subtracts (1 - r) v_sub, as in GLIF
            reset_gate, reset_value = torch.sigmoid(self.glif_r), torch.sigmoid(self.glif_subreset)
            if cfg.decay == "gated":
                reset_value = reset_value / beta
        else:
            reset_gate, reset_value = const(0.0), const(0.0)
        slope = self.slope_k if cfg.slope == "learnable" else const(1.0)
        values = (alpha, beta, vth, thr_coef, mem_gain, adapt_decay, slope, reset_gate, reset_value)
        return dict(zip(PARAM_NAMES, values))

    def glif_gate(self, shape: tuple) -> tuple[Tensor, Tensor]:
        """GLIF's gated integration's ``(gain [T, P], bias [P])`` for an input of ``shape`` ``[T, ...]``:
        ``x'_t = gain_t x_t + bias`` (``glif_input``; the CPU path folds it into its scan)."""
        T = shape[0]
        if T != self.config.time_steps:
            raise ConfigError(f"{self.name}: built for time_steps={self.config.time_steps} (one conductance per "
                             f"step), got an input with T = {T} (shape {tuple(shape)})")
        gain = 1 - torch.sigmoid(self.glif_b) * (1 - torch.sigmoid(self.glif_conduct))  # [T, P]
        bias = -(1 - torch.sigmoid(self.glif_a)) * torch.sigmoid(self.glif_linear_decay)  # [P]
        return gain, bias

    def glif_input(self, x: Tensor) -> Tensor:
        """GLIF's gated integration as an input transform, ``x'_t = (1 - b (1 - g_t)) x_t - (1 - a) l``
        (``b``, ``g_t``, ``a``, ``l`` sigmoids of their logits), so that the recurrence charges
        ``U_t = leak V_{t-1} + x'_t``. One elementwise pass before the kernel (GLIF on the reference
        and Triton paths; the CPU path folds it into its scan: ``multistep_cpu``'s ``input_gain``);
        autograd reduces the gradients of the per-step conductance and of the linear decay."""
        return gated_input(x, *self.glif_gate(x.shape))

    # ------------------------------------------------------------------ forward
    def check_input(self, x: Tensor, finite: bool = True) -> None:
        """Clear errors for wrong rank, non-floating dtype, a channel mismatch and (``finite``) NaN/inf."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{self.name}: expected a torch.Tensor [T, ...], got {type(x).__name__}")
        if x.dim() < 2:
            raise ConfigError(
                f"{self.name}: expected time-first input [T, ...] with at least 2 dims, got shape "
                f"{tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"{self.name}: expected a floating-point input, got dtype {x.dtype}")
        if self.config.granularity == "channel":
            if x.dim() < 3 or x.shape[2] != self.config.channels:
                raise ConfigError(
                    f"{self.name}: per-channel parameters for {self.config.channels} channels need input "
                    f"[T, B, {self.config.channels}, ...], got shape {tuple(x.shape)}"
                )
        if not x.numel() or not finite:
            return
        # one fp32 reduction (a single read of x, no bool tensor, no autograd node): NaN/inf anywhere
        # makes it non-finite. On the CPU 0.05 ms for 1M elements against 2.8 ms for isfinite(x).all(),
        # which is left for the rare non-finite sum (a finite input whose fp32 sum overflows, |sum| > 3e38)
        with torch.no_grad():
            total = x.sum(dtype=torch.float32)
        if self.defer_finite_check:  # record on the device, no synchronisation; see nonfinite_input()
            # (a finite input flags only if its fp32 sum overflows, itself worth stopping for)
            self._record_nonfinite(~torch.isfinite(total))
        elif not torch.isfinite(total):
            self._raise_if_nonfinite(x)

    def _raise_if_nonfinite(self, x: Tensor) -> None:
        """``ValueError`` naming NaN or inf if ``x`` holds one (the full check, after a cheap one flagged)."""
        if not torch.isfinite(x).all():
            bad = "NaN" if torch.isnan(x).any() else "inf"
            raise ConfigError(f"{self.name}: input contains {bad} (shape {tuple(x.shape)})")

    def _check_final_state(self, x: Tensor, v_last: Tensor) -> None:
        """``check_input``'s NaN/inf check read from ``V_T`` [...] instead of x [T, ...]: for the
        variants ``nonfinite_reaches_state`` names, a NaN/inf anywhere in x leaves V_T non-finite,
        so one sum over V_T (T times fewer elements than x) replaces the pass over x. A finite x
        flags only if the membrane itself overflowed (|V| > 3e38), which is worth stopping for too."""
        with torch.no_grad():
            total = v_last.sum(dtype=torch.float32)
        if self.defer_finite_check:
            self._record_nonfinite(~torch.isfinite(total))
        elif not torch.isfinite(total):
            self._raise_if_nonfinite(x)

    def _record_nonfinite(self, bad: Tensor) -> None:
        self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad

    def nonfinite_input(self) -> Tensor | None:
        """With ``defer_finite_check``: a boolean tensor, True if any input since the last call held
        NaN/inf (then cleared); ``None`` if nothing was recorded."""
        flag, self._nonfinite = self._nonfinite, None
        return flag

    def backend_for(self, x: Tensor) -> str:
        """The path that runs ``x``: ``"triton"``, ``"cpu"`` or ``"torch"`` (the reference).

        ``auto``: for the storage dtypes (fp32, bf16, fp16), the Triton kernels on CUDA tensors and the
        CPU path (``cpu/``) on CPU ones; the reference otherwise (float64, which gradient checks use,
        and other devices). ``triton``/``cpu``/``torch``: that path (``triton`` fails loudly without
        Triton or a GPU; ``cpu`` runs any float dtype on any device). Under
        ``torch.compile`` (``LitSNN(compile=True)``) ``auto`` on CPU is the reference, which inductor
        fuses (the CPU path's hand-written Function would be an opaque graph break)."""
        backend = self.config.backend
        if backend != "auto" or x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            return "torch" if backend == "auto" else backend
        if x.device.type == "cpu" and torch.compiler.is_compiling():
            return "torch"  # traced by torch.compile: the reference, which inductor fuses
        return "triton" if x.is_cuda else "cpu" if x.device.type == "cpu" else "torch"

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Spikes ``[T, ...]`` plus the final membrane ``V_T`` and memory ``M_T`` (``[...]`` each).

        PSN (``decay: parallel``) has no membrane: its ``V_T`` is the last step's ``H_T = (W X)_T``
        and its ``M_T`` is zero."""
        path = self.backend_for(x) if isinstance(x, Tensor) else "torch"  # a non-tensor: check_input names it
        triton_path = path == "triton"
        parallel = self.config.decay == "parallel"
        # the deferred NaN/inf check rides on the Triton forward of the scan, which reads x anyway
        fused_check = triton_path and self.defer_finite_check and self.config.validate and not parallel
        # the CPU path's simple variants carry a NaN/inf of x into V_T: their check reads V_T after the scan
        state_check = (path == "cpu" and self.config.validate and self.config.decay != "gated" and not parallel
                       and isinstance(x, Tensor) and nonfinite_reaches_state(self.spec))
        if self.config.validate:
            self.check_input(x, finite=not (fused_check or state_check))
        if parallel:
            return self._parallel_forward(x, path)
        params = self.effective_params(x.device)
        if self.spec.integer and x.dtype in (torch.bfloat16, torch.float16):
            warn_if_levels_collapse(self.name, self.spec.int_max, self.spec.int_scale, x.dtype)
        gate = {}
        if self.config.decay == "gated" and path == "cpu":  # folded into the CPU scan (multistep_cpu)
            gain, bias = self.glif_gate(x.shape)
            gate = dict(input_gain=gain.to(x.device), input_bias=bias.to(x.device))
        elif self.config.decay == "gated":
            x = self.glif_input(x)
        if triton_path:
            from .kernels import multistep_triton  # imported lazily: Triton is optional on CPU

            # the kernel computes in fp32 registers: keep the parameters fp32 under bf16/fp16 storage
            params = {k: v.to(device=x.device, dtype=torch.float32) for k, v in params.items()}
            if fused_check:
                spikes, v, m, flag = multistep_triton(x, **params, spec=self.spec, check_finite=True)
                self._record_nonfinite(flag[0] > 0)
                return spikes, v, m
            return multistep_triton(x, **params, spec=self.spec)
        if path == "cpu":  # the parameters stay in their dtype: the CPU path computes in fp32 (fp64 for fp64)
            params = {k: v.to(x.device) for k, v in params.items()}
            spikes, v_last, m_last = multistep_cpu(x, **params, spec=self.spec, **gate)
            if state_check:
                self._check_final_state(x, v_last)
            return spikes, v_last, m_last
        params = {k: v.to(device=x.device, dtype=x.dtype) for k, v in params.items()}
        return multistep_reference(x, **params, spec=self.spec)

    def parallel_params(self) -> tuple[Tensor, Tensor]:
        """PSN's mixing ``W [T, T]`` and its thresholds ``[T]`` (learnable, or the fixed ``v_threshold``)."""
        weight = self.psn_weight
        if self.config.threshold == "learnable":
            return weight, self.v_th
        return weight, torch.full((self.config.time_steps,), float(self.config.v_threshold),
                                  device=weight.device, dtype=weight.dtype)

    def _parallel_forward(self, x: Tensor, path: str) -> tuple[Tensor, Tensor, Tensor]:
        if x.shape[0] != self.config.time_steps:
            raise ConfigError(f"{self.name}: built for time_steps={self.config.time_steps} (W is [T, T]), got an "
                             f"input with T = {x.shape[0]} (shape {tuple(x.shape)})")
        weight, threshold = self.parallel_params()
        kind, param = self.spec.surrogate, self.spec.surrogate_param
        if path == "triton":
            from .kernels.parallel import parallel_triton

            spikes, h_last = parallel_triton(x, weight.to(x.device, torch.float32),
                                             threshold.to(x.device, torch.float32), kind, param)
        elif path == "cpu":
            spikes, h_last = parallel_cpu(x, weight, threshold, kind, param)
        else:
            spikes, h_last = parallel_reference(x, weight.to(x.dtype), threshold.to(x.dtype), kind, param)
        return spikes, h_last, torch.zeros_like(h_last)

    def forward(self, x: Tensor) -> Tensor:  # x: [T, ...] -> spikes [T, ...]
        return self.forward_with_state(x)[0]

    def extra_repr(self) -> str:
        cfg = self.config
        parts = [f"name={self.name}", f"reset={cfg.reset}", f"threshold={cfg.threshold}",
                 f"decay={cfg.decay}", f"spike={cfg.spike}"]
        if cfg.spike == "integer":
            parts.append(f"D={cfg.int_max}, N={cfg.int_scale}")
        else:
            parts.append(f"surrogate={cfg.surrogate}")
        if cfg.granularity == "channel":
            parts.append(f"channels={cfg.channels}")
        return ", ".join(parts)
