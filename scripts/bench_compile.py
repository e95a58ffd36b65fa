"""Training step of a whole network, eager vs ``torch.compile`` (``LitSNN(compile=True)``), per preset.

    python scripts/bench_compile.py [--neurons lif,ar_lif,i_lif] [--threads 1] [--steps 15]

Per preset: the first compiled step (the compilation), then the median of interleaved eager and
compiled steps (forward + loss + backward, ``small_conv`` on 8x8 digits-sized input, T = 4,
batch 64) and their ratio. On CPU the eager neurons are the CPU path and the compiled ones the
reference inside inductor's graph; on CUDA both use the Triton kernels (eager: the autograd
Function; compiled: the custom ops).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from lit_snn.module import LitSNN


def step(model: LitSNN, x, y) -> None:
    loss = model.loss(model(x), y)
    model.zero_grad()
    loss.backward()


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", default="lif,plif,ar_lif,i_lif")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x = torch.rand(64, 1, 8, 8, device=device)
    y = torch.randint(0, 10, (64,), device=device)
    print(f"device {device}, {args.threads} thread(s), small_conv [4, 64, 1, 8, 8], {args.steps} interleaved steps")
    print(f"{'neuron':<10} {'compile s':>9} {'eager ms':>9} {'compiled ms':>11} {'eager/compiled':>14}")
    for neuron in args.neurons.split(","):
        torch.manual_seed(0)
        compiled = LitSNN(neuron=neuron, compile=True).to(device).train()
        eager = copy.deepcopy(compiled)
        eager.hparams.compile = False
        compile_s = timed(lambda m=compiled: step(m, x, y), device)
        step(eager, x, y)
        times = {"eager": [], "compiled": []}
        for _ in range(args.steps):
            for name, model in (("eager", eager), ("compiled", compiled)):
                times[name].append(timed(lambda m=model: step(m, x, y), device) * 1e3)
        e, c = statistics.median(times["eager"]), statistics.median(times["compiled"])
        print(f"{neuron:<10} {compile_s:>9.1f} {e:>9.2f} {c:>11.2f} {e / c:>13.2f}x", flush=True)


if __name__ == "__main__":
    main()
