"""Trainer service: LoRA / DoRA fine-tuning jobs on a JetStream work queue.

Importing the package loads the fast BLAS first (see `mlxhub.blas`; LoRA trains ~25x
faster with it on a Linux CPU): it only works before anything imports MLX, so this is
the earliest point every entry (`python -m trainer_svc [worker]`, tests, bench) goes through."""

from mlxhub import blas

blas.enable()
