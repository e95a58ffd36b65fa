"""The networks of ``lit-snn bench --e2e``: lit_snn's ``mnist_conv`` (width 16: conv3x3(16)-BN-maxpool2-
neuron, conv3x3(32)-BN-maxpool2-neuron, linear(1568 -> 10), as ``configs/fashion_mnist_lif.yaml``)
written in each library, each a module ``x [B, 1, 28, 28] -> logits [B, 10]`` (the mean over T of
the per-step outputs: our ``mean_output_ce``'s input).

- ``lit_snn``: ``LitSNN``'s network, the LightningModule's own ``forward`` (direct encoding as a
  stride-0 expand, so the first conv + BN + pool run once) and its CPU layout (channels-last).
- ``sj_tutorial``: SpikingJelly 2.0 as its tutorials write it: ``layer.*`` modules in multi-step
  mode (``functional.set_step_mode``), the image repeated T times through every layer,
  ``functional.reset_net`` after each forward, contiguous tensors.
- ``sj_expert``: SpikingJelly written for speed: the static image through conv + BN + pool once,
  then repeated over T; channels-last; the neuron on SpikingJelly 2.0's CPU path (its
  ``lif_multi_step`` autograd Function for built-in surrogates: the only CPU backend it has; its
  Triton and CUDA ones need a GPU).
- ``snntorch``: snnTorch's tutorial loop: every layer per step, ``Leaky`` (beta 0.5, threshold 1,
  reset to zero, sigmoid surrogate of slope 4) with its membrane carried by hand. It has no input
  decay (``U = 0.5 V + X``, ours ``U = 0.5 V + 0.5 X``) and its batch norm is per step: same
  layers and cost, not the same loss.
- ``ann``: the floor: the same convs, batch norms, pools and linear with ReLU, channels-last, no T.
- ``relu_T``: the same spiking network with ReLU in each neuron's place: the static image through
  conv + BN + pool once, repeated over T, the second block and the linear over T B, channels-last.
  What the step costs without neurons: ``lit_snn``'s time over it is what our neurons (and their
  layout) add.

The SpikingJelly neurons are ``competitors.spikingjelly_neuron``'s (checked against our presets in
``tests/neurons/test_spikingjelly_equivalence.py``), so with ``copy_weights`` the two SpikingJelly
networks compute our network's loss (``tests/test_bench_e2e.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .competitors import spikingjelly_neuron

NUM_CLASSES, SIDE, WIDTH = 10, 28, 16
VARIANTS = ("lit_snn", "sj_tutorial", "sj_expert", "snntorch", "ann", "relu_T")
SNNTORCH_PRESETS = ("lif",)  # the presets snnTorch's Leaky stands in for


def lit_snn_network(preset: str, T: int) -> nn.Module:
    """The LightningModule (``LitSNN``) of ``configs/fashion_mnist_lif.yaml`` with ``preset``, laid out
    for the CPU as a fit lays it out; its ``forward`` gives ``[T, B, 10]``."""
    from lit_snn.module import LitSNN

    model = LitSNN(backbone="mnist_conv", backbone_kwargs={"width": WIDTH}, neuron=preset, time_steps=T,
                   optimizer="sgd", num_classes=NUM_CLASSES, in_channels=1)
    model.apply_memory_format()
    return _MeanOverTime(model)


class _MeanOverTime(nn.Module):
    """``[T, B, K]`` outputs of ``model`` as their mean over T, ``[B, K]``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x).mean(0)


def _sj_neuron(preset: str, T: int) -> nn.Module:
    module, _ = spikingjelly_neuron(preset, torch.float32, "cpu", T=T)
    return module


class SpikingJellyTutorial(nn.Module):
    """SpikingJelly's tutorial network: multi-step ``layer.*`` modules, the image repeated T times."""

    def __init__(self, preset: str, T: int) -> None:
        super().__init__()
        from spikingjelly.activation_based import functional, layer

        self.T, self.functional = T, functional
        w1, w2 = WIDTH, 2 * WIDTH
        self.net = nn.Sequential(
            layer.Conv2d(1, w1, 3, padding=1, bias=False), layer.BatchNorm2d(w1), layer.MaxPool2d(2),
            _sj_neuron(preset, T),
            layer.Conv2d(w1, w2, 3, padding=1, bias=False), layer.BatchNorm2d(w2), layer.MaxPool2d(2),
            _sj_neuron(preset, T),
            layer.Flatten(), layer.Linear(w2 * (SIDE // 4) ** 2, NUM_CLASSES),
        )
        functional.set_step_mode(self.net, "m")

    def forward(self, x: Tensor) -> Tensor:  # [B, 1, 28, 28] -> [B, 10]
        x_seq = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)  # [T, B, 1, 28, 28]
        out = self.net(x_seq).mean(0)
        self.functional.reset_net(self.net)
        return out


class SpikingJellyExpert(nn.Module):
    """SpikingJelly written for speed: stem (conv + BN + pool) once on the static image, channels-last."""

    def __init__(self, preset: str, T: int) -> None:
        super().__init__()
        from spikingjelly.activation_based import functional

        self.T, self.functional = T, functional
        w1, w2 = WIDTH, 2 * WIDTH
        self.stem = nn.Sequential(nn.Conv2d(1, w1, 3, padding=1, bias=False), nn.BatchNorm2d(w1), nn.MaxPool2d(2))
        self.neuron1 = _sj_neuron(preset, T)
        self.block = nn.Sequential(nn.Conv2d(w1, w2, 3, padding=1, bias=False), nn.BatchNorm2d(w2), nn.MaxPool2d(2))
        self.neuron2 = _sj_neuron(preset, T)
        self.fc = nn.Linear(w2 * (SIDE // 4) ** 2, NUM_CLASSES)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:  # [B, 1, 28, 28] -> [B, 10]
        y = self.stem(x.contiguous(memory_format=torch.channels_last))  # [B, w1, 14, 14], once
        # the same input at every step: batch norm's statistics over T copies are the one copy's
        s = self.neuron1(y.unsqueeze(0).expand(self.T, *y.shape))  # [T, B, w1, 14, 14]
        y = self.block(s.flatten(0, 1)).unflatten(0, (self.T, -1))  # [T, B, w2, 7, 7]
        s = self.neuron2(y)
        out = self.fc(s.flatten(2)).mean(0)  # [B, 10]
        self.functional.reset_net(self)
        return out


class SnnTorchTutorial(nn.Module):
    """snnTorch's tutorial loop over T: every layer per step, ``Leaky`` with its membrane carried."""

    def __init__(self, preset: str, T: int) -> None:
        super().__init__()
        if preset not in SNNTORCH_PRESETS:
            raise LookupError(f"no snnTorch network for {preset} (only {', '.join(SNNTORCH_PRESETS)})")
        import snntorch
        from snntorch import surrogate

        self.T = T
        w1, w2 = WIDTH, 2 * WIDTH
        self.conv1, self.bn1 = nn.Conv2d(1, w1, 3, padding=1, bias=False), nn.BatchNorm2d(w1)
        self.conv2, self.bn2 = nn.Conv2d(w1, w2, 3, padding=1, bias=False), nn.BatchNorm2d(w2)
        self.fc = nn.Linear(w2 * (SIDE // 4) ** 2, NUM_CLASSES)
        grad = surrogate.sigmoid(slope=4)
        self.lif1, self.lif2 = (snntorch.Leaky(beta=0.5, threshold=1.0, spike_grad=grad, reset_mechanism="zero")
                                for _ in range(2))

    def forward(self, x: Tensor) -> Tensor:  # [B, 1, 28, 28] -> [B, 10]
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = 0
        for _ in range(self.T):
            spk1, mem1 = self.lif1(nn.functional.max_pool2d(self.bn1(self.conv1(x)), 2), mem1)
            spk2, mem2 = self.lif2(nn.functional.max_pool2d(self.bn2(self.conv2(spk1)), 2), mem2)
            out = out + self.fc(spk2.flatten(1))
        return out / self.T


class AnnFloor(nn.Module):
    """The same convs, batch norms, pools and linear with ReLU for the neurons; channels-last, no T."""

    def __init__(self) -> None:
        super().__init__()
        w1, w2 = WIDTH, 2 * WIDTH
        self.net = nn.Sequential(
            nn.Conv2d(1, w1, 3, padding=1, bias=False), nn.BatchNorm2d(w1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(w1, w2, 3, padding=1, bias=False), nn.BatchNorm2d(w2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(w2 * (SIDE // 4) ** 2, NUM_CLASSES),
        )
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:  # [B, 1, 28, 28] -> [B, 10]
        return self.net(x.contiguous(memory_format=torch.channels_last))


class ReluOverTime(nn.Module):
    """``SpikingJellyExpert``'s network with ReLU for each neuron: the step without neurons."""

    def __init__(self, T: int) -> None:
        super().__init__()
        self.T = T
        w1, w2 = WIDTH, 2 * WIDTH
        self.stem = nn.Sequential(nn.Conv2d(1, w1, 3, padding=1, bias=False), nn.BatchNorm2d(w1), nn.MaxPool2d(2))
        self.block = nn.Sequential(nn.Conv2d(w1, w2, 3, padding=1, bias=False), nn.BatchNorm2d(w2), nn.MaxPool2d(2))
        self.fc = nn.Linear(w2 * (SIDE // 4) ** 2, NUM_CLASSES)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:  # [B, 1, 28, 28] -> [B, 10]
        y = torch.relu(self.stem(x.contiguous(memory_format=torch.channels_last)))  # [B, w1, 14, 14], once
        y = y.unsqueeze(0).expand(self.T, *y.shape)  # [T, B, w1, 14, 14]
        y = torch.relu(self.block(y.flatten(0, 1))).unflatten(0, (self.T, -1))  # [T, B, w2, 7, 7]
        return self.fc(y.flatten(2)).mean(0)  # [B, 10]


def build_network(variant: str, preset: str, T: int) -> nn.Module:
    """``variant``'s network for ``preset`` (the ANN ignores both); ``LookupError`` where the variant has
    no counterpart of the preset, ``ImportError`` where its library is missing."""
    if variant == "lit_snn":
        return lit_snn_network(preset, T)
    if variant == "sj_tutorial":
        return SpikingJellyTutorial(preset, T)
    if variant == "sj_expert":
        return SpikingJellyExpert(preset, T)
    if variant == "snntorch":
        return SnnTorchTutorial(preset, T)
    if variant == "ann":
        return AnnFloor()
    if variant == "relu_T":
        return ReluOverTime(T)
    raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")


def _weighted_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """``target``'s convs, batch norms and linear layers (in module order) take ``source``'s weights and
    buffers, and its neurons' learnable parameters (AR-LIF's ``a``, ``c``: FlexSN's static inputs) ours."""
    pairs = list(zip(_weighted_layers(source), _weighted_layers(target), strict=True))
    with torch.no_grad():
        for a, b in pairs:
            for name, tensor in [*a.named_parameters(recurse=False), *a.named_buffers(recurse=False)]:
                getattr(b, name).copy_(tensor)
        ours = [n for n in source.modules() if hasattr(n, "effective_params")]
        theirs = [m for m in target.modules() if type(m).__name__ == "FlexSN"]
        for neuron, flex in zip(ours, theirs):
            for mine, other in zip(neuron.parameters(), flex.parameters()):
                other.copy_(mine.reshape(other.shape))
