"""``lit-snn bench --e2e``: one training step and one epoch of the same network in lit_snn, SpikingJelly
(as its tutorials write it and as an expert writes it), snnTorch and as the ANN floor, on the CPU.

Usage::

    lit-snn bench --e2e                                # lif and ar_lif, T = 4, batch 128, threads 1 and 2
    lit-snn bench --e2e --presets lif --threads 1 --rounds 11 --batch 64 --T 8
    lit-snn bench --e2e --quick                        # batch 8, one round, one thread: a smoke run

The network is ``mnist_conv`` of ``configs/fashion_mnist_lif.yaml`` (``e2e_networks``: how each
variant writes it). Input: Fashion-MNIST-shaped random images ``[B, 1, 28, 28]``, 10 classes. A step is
the forward, the cross-entropy of the mean output over T, the backward and an SGD step (momentum
0.9); an epoch is ``--batches`` such steps over a shuffled ``DataLoader`` of fixed random data.
Every variant takes lit_snn's initial weights (``copy_weights``); before timing, the loss of each
SpikingJelly network on one batch must be lit_snn's (``loss`` column: ``same``, else the two losses,
and the exit status is 1), which makes the comparison fair. snnTorch's network and the ANN have the
same layers but not the same neuron, so their loss is not compared (``-``).

Timing: the variants of a preset run in interleaved rounds (``timing.interleaved_times``), each
time the median over rounds, each ratio ``x`` the median over rounds of the variant's time over
lit_snn's in the same round (> 1: lit_snn is faster), so a shared machine's load cancels in the
ratios. One table per thread count (``torch.set_num_threads``).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from .e2e_networks import NUM_CLASSES, SIDE, VARIANTS, build_network, copy_weights
from .table_rows import first_line, fmt
from .timing import cpu_name, interleaved_times

LOSS_TOLERANCE = 1e-3  # relative: the SpikingJelly networks' loss on one batch against lit_snn's
QUICK = {"batch": 8, "rounds": 1, "batches": 2, "epoch_rounds": 1, "threads": "1"}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="lit-snn bench --e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="lif,ar_lif", help="comma-separated preset names (default lif,ar_lif)")
    parser.add_argument("--T", type=int, default=4, help="time steps (default 4)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of one step (default 7)")
    parser.add_argument("--batches", type=int, default=20, help="batches in an epoch (default 20)")
    parser.add_argument("--epoch-rounds", type=int, default=3, help="interleaved rounds of one epoch (default 3)")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts, one table each")
    parser.add_argument("--quick", action="store_true",
                        help="batch 8, one round, 2 batches an epoch, one thread (a smoke run)")
    return parser.parse_args(argv)


class Variant:
    """One network under training: ``step()`` = one SGD step on the fixed batch, ``epoch()`` = one pass
    over the loader."""

    def __init__(self, net: nn.Module, batch: tuple, loader) -> None:
        self.net = net.train()
        self.batch, self.loader = batch, loader
        self.optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def loss(self, x, y):
        return nn.functional.cross_entropy(self.net(x), y)

    def train_on(self, x, y) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.loss(x, y).backward()
        self.optimizer.step()

    def step(self) -> None:
        self.train_on(*self.batch)

    def epoch(self) -> None:
        for x, y in self.loader:
            self.train_on(x, y)


class _Epoch:
    """A variant whose ``step()`` is an epoch (what ``interleaved_times`` times)."""

    def __init__(self, variant: Variant) -> None:
        self.step = variant.epoch


def build_variants(preset: str, T: int, batch: tuple, loader) -> tuple[dict, dict]:
    """(variant -> ``Variant`` or the reason it is n/a, variant -> its loss check: ``same``, the two losses,
    or ``-`` where the network is not the same as ours). Every variant starts from lit_snn's weights."""
    variants, checks = {}, {}
    torch.manual_seed(0)
    ours = build_network("lit_snn", preset, T)
    for name in VARIANTS:
        try:
            net = ours if name == "lit_snn" else build_network(name, preset, T)
            if net is not ours:
                copy_weights(ours.model.net, net)
        except Exception as err:  # noqa: BLE001  (not installed, no counterpart: report, go on)
            variants[name] = f"n/a ({first_line(err, 70)})"
            continue
        variants[name] = Variant(net, batch, loader)
    reference = variants["lit_snn"].loss(*batch).item()
    for name, variant in variants.items():
        if isinstance(variant, str) or name in ("lit_snn", "snntorch", "ann", "relu_T"):
            checks[name] = "-"
            continue
        value = variant.loss(*batch).item()
        same = abs(value - reference) <= LOSS_TOLERANCE * max(abs(reference), 1.0)
        checks[name] = "same" if same else f"{value:.5f} vs {reference:.5f}"
    return variants, checks


def random_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` Fashion-MNIST-shaped images in [0, 1) and labels of 10 classes."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, SIDE, SIDE, generator=generator),
            torch.randint(0, NUM_CLASSES, (n,), generator=generator))


def run_table(presets, args) -> bool:
    """Print the table of the current thread count; returns whether every loss check passed."""
    x, y = random_data(args.batch * args.batches)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=args.batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    batch = (x[:args.batch], y[:args.batch])
    header = (f"{'preset':<7} {'variant':<12} {'step ms':>9} {'x step':>7} {'epoch s':>8} {'x epoch':>8}  loss")
    print(header)
    print("-" * len(header))
    passed = True
    for preset in presets:
        variants, checks = build_variants(preset, args.T, batch, loader)
        passed &= all(c in ("same", "-") for c in checks.values())
        step_ms, step_x, errors = interleaved_times(variants, list(VARIANTS), args.rounds, base="lit_snn")
        epochs = {k: v if isinstance(v, str) else _Epoch(v) for k, v in variants.items() if k not in errors}
        epoch_ms, epoch_x, epoch_errors = interleaved_times(epochs, list(VARIANTS), args.epoch_rounds, base="lit_snn")
        errors.update(epoch_errors)
        for name in VARIANTS:
            reason = variants[name] if isinstance(variants[name], str) else errors.get(name)
            if reason:
                print(f"{preset:<7} {name:<12} {reason}")
                continue
            epoch_s = None if name not in epoch_ms else epoch_ms[name] / 1e3
            print(f"{preset:<7} {name:<12} {fmt(step_ms.get(name), '.1f'):>9} {fmt(step_x.get(name), '.2f'):>7} "
                  f"{fmt(epoch_s, '.3f'):>8} {fmt(epoch_x.get(name), '.2f'):>8}  {checks[name]}", flush=True)
        if step_x.get("relu_T"):  # relu_T / lit_snn per round: the neurons' share is its inverse minus one
            print(f"{preset:<7} neurons add {1 / step_x['relu_T'] - 1:.0%} to the step of the same network with ReLU "
                  f"(relu_T)", flush=True)
    return passed


def main(argv) -> int:
    """Run the end-to-end benchmark (see the module docstring); returns the exit code."""
    args = parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    from lit_snn.neurons import list_neurons

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    try:
        threads = [int(n) for n in args.threads.split(",") if n]
    except ValueError:
        threads = []
    unknown = sorted(set(presets) - set(list_neurons()))
    counts = {"--T": args.T, "--batch": args.batch, "--rounds": args.rounds, "--batches": args.batches,
              "--epoch-rounds": args.epoch_rounds}
    problems = [f"{flag} {value}" for flag, value in counts.items() if value < 1]
    if not threads or min(threads) < 1:
        problems.append(f"--threads {args.threads!r}")
    if problems:
        print(f"lit-snn bench --e2e: {', '.join(problems)}: positive integers needed (--threads: comma-separated)")
        return 2
    if unknown or not presets:
        print(f"lit-snn bench --e2e: unknown presets {unknown or args.presets!r}; valid: {', '.join(list_neurons())}")
        return 2
    print(f"device: cpu ({cpu_name()}, {torch.get_num_threads()} threads available), torch {torch.__version__}, "
          f"{_versions()}; mnist_conv width 16, T {args.T}, batch {args.batch}, SGD; {args.rounds} interleaved "
          f"rounds of a step, {args.epoch_rounds} of an epoch of {args.batches} batches")
    previous = torch.get_num_threads()
    passed = True
    try:
        for n in threads:
            torch.set_num_threads(n)
            print(f"threads: {n}")
            passed &= run_table(presets, args)
    finally:
        torch.set_num_threads(previous)
    print("x step, x epoch: median over interleaved rounds of the variant's time / lit_snn's (> 1: lit_snn is "
          f"faster). loss: the network's loss on one batch against lit_snn's (within {LOSS_TOLERANCE:g}, relative); "
          "'-': not the same network (snnTorch's neuron, the ANN).")
    if not passed:
        print("lit-snn bench --e2e: a SpikingJelly network's loss differs from lit_snn's: its times compare "
              "different computations")
    return 0 if passed else 1


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("spikingjelly", "snntorch"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} missing")
    return ", ".join(found)

