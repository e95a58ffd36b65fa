"""``LitSNN``: the LightningModule that trains any backbone with any neuron of the family."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger
from torch import Tensor
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from .backbones import create_backbone
from .data.base import check_time_steps
from .errors import ConfigError
from .losses import LOSSES, mean_output_ce, tet_loss
from .neurons import SpikingNeuron, neuron_config

OPTIMIZERS = ("sgd", "adamw")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


class LitSNN(L.LightningModule):
    """A spiking classifier: backbone(neuron) + CE or TET loss + top-1/top-5 + firing/energy.

    Static batches ``x [B, C, H, W]`` are direct-encoded (the same image at each of
    ``time_steps`` steps); DVS batches ``x [B, T, P, H, W]`` are used as they come (their T is
    set by the DataModule). The prediction is the argmax of the mean over T of the per-step
    outputs. Optimiser SGD (momentum) or AdamW, linear warm-up then cosine decay per epoch.

    ``weight_decay`` applies to every parameter of rank >= 2 (conv and linear weights).
    ``weight_decay_1d`` decides the rest, the parameters of rank 0 or 1 (norm weights and biases,
    layer biases, neuron parameters such as decays, thresholds and AR-LIF's ``a``/``c``): False
    (default) exempts them, True decays them too, as the AR-LIF authors' ``train.py`` does
    (``SGD(net.parameters(), weight_decay=...)``).

    ``compile``: the training forward and backward run through ``torch.compile`` of the whole
    network (``compile_backend``, default inductor); validation, test and inference stay eager (the
    activity monitor's hooks would each cost a recompilation). The neurons then run as one op per
    direction on CUDA (the Triton kernels' custom ops, no graph break) and as the PyTorch
    reference on CPU (which inductor fuses; the CPU path's hand-written Function is opaque to it).
    The compilation costs tens of seconds per process: it pays on long runs, not on the digits.
    Parameters, checkpoints and results are those of the eager model.

    ``memory_format``: the layout of the conv weights and so of every activation they produce.
    ``auto`` (default) is channels-last on the CPU, where oneDNN's convolutions and batch norm run
    1.7-1.8x faster in it (``small_conv``'s second conv and its norms on two cores) and the CPU
    neurons take it without a copy, and contiguous on accelerators (the Triton kernels read
    contiguous inputs). Applied for the trainer's device when a fit, validation, test or prediction sets up
    (before DDP wraps the model); only speed depends on it.
    """

    def __init__(
        self,
        backbone: str = "small_conv",
        neuron: str = "lif",
        neuron_overrides: dict | None = None,
        backbone_kwargs: dict | None = None,
        num_classes: int = 10,
        in_channels: int = 1,
        time_steps: int = 4,
        loss: str = "ce",
        tet_lambda: float = 0.05,
        tet_phi: float = 1.0,
        tet_one_hot: bool = False,
        label_smoothing: float = 0.0,
        optimizer: str = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        weight_decay_1d: bool = False,
        warmup_epochs: int = 0,
        compile: bool = False,
        compile_backend: str = "inductor",
        memory_format: str = "auto",
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        check_time_steps(time_steps)
        if memory_format not in MEMORY_FORMATS:
            raise ConfigError(f"unknown memory_format {memory_format!r}; valid: {', '.join(MEMORY_FORMATS)}")
        if lr <= 0 or not math.isfinite(lr):
            raise ConfigError(f"lr must be a positive number, got {lr}")
        if weight_decay < 0 or not math.isfinite(weight_decay):
            raise ConfigError(f"weight_decay must be a number >= 0, got {weight_decay}")
        overrides = dict(neuron_overrides or {})
        if neuron_config(neuron, **overrides).needs_time_steps:  # unknown preset/field -> clear ValueError
            # GLIF's conductance and PSN's [T, T] mixing have one entry per step: the model's T
            if overrides.setdefault("time_steps", time_steps) != time_steps:
                raise ConfigError(f"neuron_overrides.time_steps={overrides['time_steps']} differs from "
                                 f"time_steps={time_steps}; {neuron} needs the model's T (drop the override)")
        self.save_hyperparameters()
        self.net = create_backbone(
            backbone, neuron=neuron, neuron_overrides=overrides, num_classes=num_classes,
            in_channels=in_channels, **(backbone_kwargs or {}),
        )
        # plain (micro) accuracy as the papers report it, not torchmetrics' default per-class mean;
        # no compute groups: top-1 and top-5 must never share state
        metrics = MetricCollection({
            "acc": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "acc_top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
        }, compute_groups=False)
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # each stage's mean loss over the epoch, weighted by batch size
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        # neurons record NaN/inf inputs on the device; _shared_step checks them once per step
        self.neurons = {name: m for name, m in self.net.named_modules() if isinstance(m, SpikingNeuron)}
        for neuron in self.neurons.values():
            neuron.defer_finite_check = True
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed fit keeps its best
        self.activity = None  # ActivityMonitor during val/test (firing rates, SOPs)
        self.code_histograms: dict = {}  # integer neurons: layer -> counts per code, last val/test epoch
        # the compiled network, built at the first training step; kept out of the module tree
        # (``__dict__``), so that parameters and state-dict keys stay those of ``self.net``
        self.__dict__["_compiled_net"] = None

    def metric_names(self) -> set[str]:
        """Every metric this module logs in ``fit`` and ``test`` (the names a study may optimise)."""
        from .monitoring import ActivityMonitor

        names = {f"{stage}/{name}" for stage in ("train", "val", "test") for name in ("loss", "acc", "acc_top5")}
        names |= {"train/lr", "val/acc_best"}
        names |= {f"val/{k}" for k in ActivityMonitor.metric_names(self.net, count_energy=False)}
        return names | {f"test/{k}" for k in ActivityMonitor.metric_names(self.net, count_energy=True)}

    # ------------------------------------------------------------------ forward
    def encode(self, x: Tensor) -> Tensor:
        """Batch -> time-first input ``[T, B, C, H, W]``."""
        if self.activity is not None:
            self.activity.set_event_input(x.dim() == 5)
        if x.dim() == 4:  # static image [B, C, H, W]: direct encoding
            return x.unsqueeze(0).expand(self.hparams.time_steps, *x.shape)
        if x.dim() == 5:  # DVS frames [B, T, P, H, W]
            if x.shape[1] != self.hparams.time_steps:
                raise ConfigError(f"DVS batch has {x.shape[1]} frames per sample but model.time_steps is "
                                 f"{self.hparams.time_steps}; frame the data with the model's T")
            return x.transpose(0, 1).contiguous()  # [T, B, P, H, W]
        raise ConfigError(f"expected a batch [B, C, H, W] (static) or [B, T, P, H, W] (DVS), got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        """Per-step logits ``[T, B, K]``."""
        return self._net_for_step()(self.encode(x))

    def _net_for_step(self):
        """``self.net``, or its ``torch.compile`` while training with ``compile``."""
        if not (self.hparams.compile and self.training and torch.is_grad_enabled()):
            return self.net
        if self._compiled_net is None:
            self.__dict__["_compiled_net"] = torch.compile(self.net, backend=self.hparams.compile_backend)
        return self._compiled_net

    def loss(self, outputs: Tensor, target: Tensor) -> Tensor:
        hp = self.hparams
        if hp.loss == "tet":
            return tet_loss(outputs, target, hp.tet_lambda, hp.tet_phi, hp.tet_one_hot, hp.label_smoothing)
        return mean_output_ce(outputs, target, hp.label_smoothing)

    def _shared_step(self, batch, stage: str) -> Tensor:
        x, y = batch
        outputs = self(x)  # [T, B, K]
        loss = self.loss(outputs, y)
        self._check_finite(loss, stage)
        labels = y.argmax(-1) if y.dim() == 2 else y  # soft labels from mixup/cutmix
        getattr(self, f"{stage}_metrics").update(outputs.mean(0), labels)
        getattr(self, f"{stage}_loss").update(loss.detach(), weight=labels.shape[0])
        return loss

    def _log_epoch(self, stage: str) -> dict[str, Tensor]:
        """Log the epoch's mean loss and accuracies (``{stage}/loss``, ``/acc``, ``/acc_top5``) once.

        Updated per step and logged here, not with ``self.log`` per step: each of Lightning's log
        calls moves its whole result collection (3 ms a step for three keys on the digits, a tenth
        of the step). ``compute`` syncs the states across processes under DDP."""
        metrics, mean_loss = getattr(self, f"{stage}_metrics"), getattr(self, f"{stage}_loss")
        if not mean_loss.update_count:
            return {}
        values = {f"{stage}/loss": mean_loss.compute(), **metrics.compute()}
        mean_loss.reset()
        metrics.reset()
        for name, value in values.items():
            self.log(name, value, prog_bar=name in ("train/loss", "val/loss", "val/acc"))
        return values

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_train_epoch_start(self) -> None:
        optimizer = self.optimizers(use_pl_optimizer=False)
        self.log("train/lr", optimizer.param_groups[0]["lr"], on_step=False, on_epoch=True)

    def _check_finite(self, loss: Tensor, stage: str) -> None:
        """One synchronisation per step: NaN/inf in the loss or in any neuron layer's input (a NaN
        input would otherwise be silenced by the spike threshold) stops the run naming the layer."""
        flags = {name: f for name, f in ((n, m.nonfinite_input()) for n, m in self.neurons.items()) if f is not None}
        bad = torch.stack([~torch.isfinite(loss), *flags.values()]) if flags else ~torch.isfinite(loss)[None]
        if not bad.any():
            return
        if bad[0]:
            raise FloatingPointError(f"{stage} loss is {loss.item()} (neuron {self.hparams.neuron})")
        first = next(name for name, f in zip(flags, bad[1:]) if f)
        raise FloatingPointError(f"{stage}: the input of neuron layer net.{first} contains NaN or inf")

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    # ------------------------------------------------------------------ layout
    def apply_memory_format(self, device: torch.device | None = None) -> None:
        """Lay the weights out as ``memory_format`` says for ``device`` (default: where they are; idempotent)."""
        choice = self.hparams.get("memory_format", "auto")  # absent from checkpoints saved before it existed
        if choice == "auto":
            choice = "channels_last" if (device or self.device).type == "cpu" else "contiguous"
        self.net.to(memory_format=torch.channels_last if choice == "channels_last" else torch.contiguous_format)

    def setup(self, stage: str) -> None:
        # every trainer function (fit, validate, test, predict), for the device the strategy then moves the
        # model to, before it wraps it: DDP's gradient buckets take the weights' strides then, and a layout
        # changed after the wrap ("grad strides do not match bucket view strides") made a resumed DDP fit
        # drift from an uninterrupted one
        self.apply_memory_format(self.trainer.strategy.root_device)

    # ------------------------------------------------------------------ activity
    def _start_activity(self, count_energy: bool) -> None:
        from .monitoring import ActivityMonitor

        self.activity = ActivityMonitor(self.net, count_energy=count_energy)

    def _log_activity(self, stage: str) -> None:
        if self.activity is None:
            return
        summary = self.activity.summary()
        self.code_histograms = self.activity.code_histograms()  # integer neurons: used levels
        self.activity.remove()
        self.activity = None
        self.log_dict({f"{stage}/{k}": float(v) for k, v in summary.items()}, sync_dist=True)

    def on_validation_epoch_start(self) -> None:
        self._start_activity(count_energy=False)

    def on_validation_epoch_end(self) -> None:
        acc = self._log_epoch("val").get("val/acc")
        self._log_activity("val")
        if acc is not None and not self.trainer.sanity_checking:
            self.val_acc_best.update(acc)
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self._start_activity(count_energy=True)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        self._log_activity("test")
        self._save_code_histograms()

    def _save_code_histograms(self) -> None:
        """Integer neurons: counts of every used level per layer, as ``code_histograms.json`` in the
        run's log folder and as an artifact of an MLflow run."""
        if not self.code_histograms or not self.trainer.is_global_zero:
            return
        data = {name: hist.tolist() for name, hist in self.code_histograms.items()}
        for logger in self.loggers:
            if isinstance(logger, MLFlowLogger) and logger.run_id:
                logger.experiment.log_dict(logger.run_id, data, "code_histograms.json")
        if self.trainer.log_dir:
            path = Path(self.trainer.log_dir) / "code_histograms.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data))

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        hp = self.hparams
        params = list(self.net.parameters())
        if hp.weight_decay_1d:  # every parameter decayed (the AR-LIF authors' optimiser)
            groups = [{"params": params, "weight_decay": hp.weight_decay}]
        else:  # norms, biases and neuron parameters (rank <= 1) exempt
            decay = [p for p in params if p.dim() > 1]
            no_decay = [p for p in params if p.dim() <= 1]
            groups = [g for g in ({"params": decay, "weight_decay": hp.weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum)
        else:
            opt = torch.optim.AdamW(groups, lr=hp.lr)
        epochs = max(1, int(self.trainer.max_epochs or 1)) if self._trainer is not None else 1
        warmup = min(hp.warmup_epochs, epochs - 1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs - warmup))
        if warmup > 0:
            ramp = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / (warmup + 1), total_iters=warmup)
            sched = torch.optim.lr_scheduler.SequentialLR(opt, [ramp, cosine], milestones=[warmup])
        else:
            sched = cosine
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
