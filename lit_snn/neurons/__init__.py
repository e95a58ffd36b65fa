"""The neuron family: one configurable multi-step spiking neuron whose fields are the ablation axes."""

from .config import NeuronConfig
from .conversion import BinarySpikeLayer, convert_to_binary_spikes, integer_to_binary, virtual_step_weights
from .family import SpikingNeuron
from .presets import create_neuron, describe_neurons, list_neurons, neuron_config, register_preset
from .reference import KernelSpec, multistep_reference
from .surrogate import heaviside, integer_spike, surrogate_grad

__all__ = [
    "BinarySpikeLayer",
    "convert_to_binary_spikes",
    "KernelSpec",
    "NeuronConfig",
    "SpikingNeuron",
    "create_neuron",
    "describe_neurons",
    "heaviside",
    "integer_spike",
    "integer_to_binary",
    "list_neurons",
    "multistep_reference",
    "neuron_config",
    "register_preset",
    "surrogate_grad",
    "virtual_step_weights",
]
