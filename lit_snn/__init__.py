"""lit_snn: spiking neuron models (AR-LIF, DA-LIF, IB-RA-LIF) as one configurable family,
with PyTorch Lightning training, Triton kernels, and Optuna/MLflow ablations."""

__version__ = "0.1.0"
