"""Developer tools, run as ``python -m lit_snn.tools.<name>``; nothing in the package imports them.

``kernel_resources``: compile the Triton neuron kernels for a GPU architecture without a GPU and report
their registers, spills and resident warps per SM.
"""
