"""Step-sized rows, the CPU path's unit of work: every op reads and writes whole rows ``[B, C, *S]``.

``Rows`` holds one quantity over time (all steps, or a ring of one or two that rotate); ``carve``
cuts one scratch block into such arrays; ``Grad`` is one step's gradient row in the adjoint, built
by fused in-place ops from zero or from an alias (a copy costs nothing until the row is written).
"""

from __future__ import annotations

import torch
from torch import Tensor

Coef = float | Tensor  # a coefficient: a Python float (an op's alpha/value) or a broadcasting tensor


class Rows:
    """The values of one quantity over time, one view per row: all ``T`` (or ``T + 1``) rows
    (``keep``), or one or two that rotate (row ``t % n``)."""

    def __init__(self, array: Tensor) -> None:  # array: [n, *step]
        self.all = array
        self._rows = array.unbind(0)

    def __getitem__(self, t: int) -> Tensor:
        return self._rows[t % len(self._rows)]


def carve(block: Tensor, sizes: dict) -> dict:
    """``block`` ``[sum of sizes, *step]`` cut into ``{name: [size, *step]}`` consecutive slices."""
    out, start = {}, 0
    for name, n in sizes.items():
        out[name] = block[start:start + n]
        start += n
    return out


class Grad:
    """One step's gradient row: zero, an alias of a row it equals, or its own buffer (``buf``)."""

    __slots__ = ("buf", "value")

    def __init__(self, buf: Tensor) -> None:
        self.buf, self.value = buf, None

    def start(self, alias: Tensor | None = None) -> None:
        """Zero (``None``), or equal to ``alias`` (read, never written)."""
        self.value = alias

    def add(self, value: Tensor, coef: Coef = 1.0) -> None:
        """``self += coef * value``."""
        if self.value is None:
            if isinstance(coef, float) and coef == 1.0:
                self.value = value
                return
            torch.mul(value, coef, out=self.buf)
        elif self.value is self.buf:
            self.buf.add_(value, alpha=coef) if isinstance(coef, float) else self.buf.addcmul_(value, coef)
        elif isinstance(coef, float):
            torch.add(self.value, value, alpha=coef, out=self.buf)
        else:
            torch.addcmul(self.value, value, coef, out=self.buf)
        self.value = self.buf

    def add_product(self, a: Tensor, b: Coef, coef: float = 1.0) -> None:
        """``self += coef * a * b``."""
        if not isinstance(b, Tensor):
            return self.add(a, coef * b)
        if self.value is None:
            torch.mul(a, b, out=self.buf)
            if coef != 1.0:
                self.buf.mul_(coef)
        elif self.value is self.buf:
            self.buf.addcmul_(a, b, value=coef)
        else:
            torch.addcmul(self.value, a, b, value=coef, out=self.buf)
        self.value = self.buf

    def own(self) -> Tensor:
        """The value in ``buf`` (materialised), to be modified in place."""
        if self.value is None:
            self.buf.zero_()
        elif self.value is not self.buf:
            self.buf.copy_(self.value)
        self.value = self.buf
        return self.buf
