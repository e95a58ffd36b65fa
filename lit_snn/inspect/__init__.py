"""``lit-snn inspect RUN_ID_OR_CKPT``: what a trained model's spiking layers do on a few test samples.

``record`` runs the samples and keeps, per ``SpikingNeuron`` layer, its spikes and membrane over T;
``figures`` computes the arrays each figure draws (raster events, traces, rate maps, level
histograms) and draws them with matplotlib; ``cli`` is the command.
"""

from .figures import level_histogram, membrane_data, raster_data, rate_map
from .record import LayerRecord, membrane_trace, record_layers

__all__ = ["LayerRecord", "level_histogram", "membrane_data", "membrane_trace", "raster_data", "rate_map",
           "record_layers"]
