"""``lit-snn bench``: the neuron benchmark (``command``: its usage and columns) and the end-to-end
training-step benchmark (``--e2e``: ``e2e``).

Modules: ``command`` (arguments, ``main``), ``cases`` (one preset's columns), ``competitors``
(SpikingJelly's and snnTorch's equivalents of our presets, also the oracles of the equivalence
tests), ``cpu_table`` and ``gpu_table`` (the two tables), ``timing`` (interleaved rounds,
``do_bench``, bandwidths), ``table_rows`` (the tables' text).
"""

from .command import main
from .competitors import learnable_params, snntorch_neuron, spikingjelly_neuron

__all__ = ["learnable_params", "main", "snntorch_neuron", "spikingjelly_neuron"]
