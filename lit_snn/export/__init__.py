"""Export of trained lit_snn models to the Neuromorphic Intermediate Representation (NIR) and back."""

from .nir import DEFAULT_DT, from_nir, to_nir

__all__ = ["DEFAULT_DT", "from_nir", "to_nir"]
