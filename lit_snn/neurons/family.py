"""``SpikingNeuron``: the configurable multi-step neuron module (one class for every preset)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import NeuronConfig
from .precision import warn_if_levels_collapse
from .reference import KernelSpec, multistep_reference


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
    AR-LIF's ``a`` and ``c``) have one entry per layer or per channel (dim 2).
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
        if cfg.threshold == "learnable":
            self.v_th = param(cfg.v_threshold)
        elif cfg.threshold == "adaptive":  # AR-LIF threshold adjustment tanh(a) tanh(X)
            self.thr_a = param(cfg.threshold_coef_init)
        if cfg.reset == "adaptive":  # AR-LIF memory gate sigmoid(c X)
            self.mem_c = param(cfg.memory_gain_init)

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
        else:
            alpha, beta = const(cfg.alpha), const(cfg.beta)
        vth = self.v_th if cfg.threshold == "learnable" else const(cfg.v_threshold)
        thr_coef = torch.tanh(self.thr_a) if cfg.threshold == "adaptive" else const(0.0)
        mem_gain = self.mem_c if cfg.reset == "adaptive" else const(0.0)
        return dict(alpha=alpha, beta=beta, vth=vth, thr_coef=thr_coef, mem_gain=mem_gain)

    # ------------------------------------------------------------------ forward
    def check_input(self, x: Tensor, finite: bool = True) -> None:
        """Clear errors for wrong rank, non-floating dtype, a channel mismatch and (``finite``) NaN/inf."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{self.name}: expected a torch.Tensor [T, ...], got {type(x).__name__}")
        if x.dim() < 2:
            raise ValueError(
                f"{self.name}: expected time-first input [T, ...] with at least 2 dims, got shape "
                f"{tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"{self.name}: expected a floating-point input, got dtype {x.dtype}")
        if self.config.granularity == "channel":
            if x.dim() < 3 or x.shape[2] != self.config.channels:
                raise ValueError(
                    f"{self.name}: per-channel parameters for {self.config.channels} channels need input "
                    f"[T, B, {self.config.channels}, ...], got shape {tuple(x.shape)}"
                )
        if not x.numel() or not finite:
            return
        if self.defer_finite_check:  # record on the device, no synchronisation; see nonfinite_input()
            # one fp32 reduction (a single read of x, no bool tensor): NaN/inf anywhere makes it non-finite;
            # a finite input flags only if its fp32 sum overflows (|sum| > 3e38), itself worth stopping for
            self._record_nonfinite(~torch.isfinite(x.sum(dtype=torch.float32)))
        elif not torch.isfinite(x).all():
            bad = "NaN" if torch.isnan(x).any() else "inf"
            raise ValueError(f"{self.name}: input contains {bad} (shape {tuple(x.shape)})")

    def _record_nonfinite(self, bad: Tensor) -> None:
        self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad

    def nonfinite_input(self) -> Tensor | None:
        """With ``defer_finite_check``: a boolean tensor, True if any input since the last call held
        NaN/inf (then cleared); ``None`` if nothing was recorded."""
        flag, self._nonfinite = self._nonfinite, None
        return flag

    def use_triton(self, x: Tensor) -> bool:
        """``triton``: always (fails loudly without Triton/GPU); ``auto``: CUDA tensors of a dtype the
        kernel stores (fp32, bf16, fp16), the reference otherwise (CPU, float64 for gradcheck)."""
        backend = self.config.backend
        kernel_dtype = x.dtype in (torch.float32, torch.bfloat16, torch.float16)
        return backend == "triton" or (backend == "auto" and x.is_cuda and kernel_dtype)

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Spikes ``[T, ...]`` plus the final membrane ``V_T`` and memory ``M_T`` (``[...]`` each)."""
        triton_path = isinstance(x, Tensor) and self.use_triton(x)  # a non-tensor: check_input names it
        # the deferred NaN/inf check rides on the Triton forward, which reads x anyway
        fused_check = triton_path and self.defer_finite_check and self.config.validate
        if self.config.validate:
            self.check_input(x, finite=not fused_check)
        params = self.effective_params(x.device)
        if self.spec.integer and x.dtype in (torch.bfloat16, torch.float16):
            warn_if_levels_collapse(self.name, self.spec.int_max, self.spec.int_scale, x.dtype)
        if triton_path:
            from .kernels import multistep_triton  # imported lazily: Triton is optional on CPU

            # the kernel computes in fp32 registers: keep the parameters fp32 under bf16/fp16 storage
            params = {k: v.to(device=x.device, dtype=torch.float32) for k, v in params.items()}
            if fused_check:
                spikes, v, m, flag = multistep_triton(x, **params, spec=self.spec, check_finite=True)
                self._record_nonfinite(flag[0] > 0)
                return spikes, v, m
            return multistep_triton(x, **params, spec=self.spec)
        params = {k: v.to(device=x.device, dtype=x.dtype) for k, v in params.items()}
        return multistep_reference(x, **params, spec=self.spec)

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
