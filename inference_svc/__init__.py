"""Inference service: streams tokens from registered model versions (base + adapter).

Importing the package loads the fast BLAS first (see `mlxhub.blas`): it only
works before anything imports MLX, so this is the earliest point every entry
(`python -m inference_svc`, tests, bench) goes through."""

from mlxhub import blas

blas.enable()
