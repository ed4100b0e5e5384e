"""How much memory a version will take once loaded, read from its files' safetensors headers
before anything is loaded: the cache refuses or makes room on this estimate, so a version
too big for the budget is turned away without allocating its weights (dequantizing a 7B
checkpoint to float32 on the CPU takes ~28 GB).

The estimate is the weight bytes in the format they are served in (`loader.weight_format`):
as stored, each tensor's own bytes; in float32, four bytes per element, where an MLX
quantized weight counts its dequantized elements and its scales and biases vanish (as
`mlx_lm.utils.dequantize_model` leaves them). An adapter version is only its LoRA matrices,
as stored (it shares its base's loaded weights, and its matrices are kept once, in its base's
pack: `inference_svc.lora`); its base is a version of its own in the cache.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from safetensors import safe_open

from inference_svc.loader import FLOAT32
from mlxhub.errors import FailedPrecondition

FLOAT32_BYTES = 4
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
                "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}


def _tensors(file: Path) -> dict[str, tuple[str, list[int]]]:
    """name -> (dtype, shape) from a safetensors header (the data is not read)."""
    try:
        with safe_open(str(file), framework="numpy") as handle:
            names = handle.keys()
            return {name: (handle.get_slice(name).get_dtype(), handle.get_slice(name).get_shape()) for name in names}
    except Exception as exc:  # noqa: BLE001  (the library raises its own error types for a bad header)
        raise FailedPrecondition(f"cannot read the safetensors header of {file}: {exc}",
                                 resource_type="file", resource_name=str(file)) from None


def _group_size(config: dict, name: str) -> int:
    quantization = config.get("quantization") or config.get("quantization_config") or {}
    module = name.rsplit(".", 1)[0]
    override = quantization.get(module)
    if isinstance(override, dict) and "group_size" in override:
        return int(override["group_size"])
    return int(quantization.get("group_size", 64))


def weights_bytes(directory: Path, pattern: str, fmt: str) -> int:
    """Bytes the weights in `directory`'s files matching `pattern` take when served in `fmt`."""
    config_file = directory / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    tensors: dict[str, tuple[str, list[int]]] = {}
    for file in sorted(directory.glob(pattern)):
        tensors.update(_tensors(file))
    total = 0
    for name, (dtype, shape) in tensors.items():
        elements = math.prod(shape)
        if fmt != FLOAT32:
            total += elements * _DTYPE_BYTES.get(dtype, FLOAT32_BYTES)
            continue
        stem, _, kind = name.rpartition(".")
        if kind in ("scales", "biases") and f"{stem}.weight" in tensors:
            continue  # gone once dequantized
        scales = tensors.get(f"{stem}.scales")
        if kind == "weight" and scales is not None:  # packed: count the dequantized elements
            elements = math.prod(shape[:-1]) * scales[1][-1] * _group_size(config, name)
        total += elements * FLOAT32_BYTES
    return total


def served_bytes(path: str, adapter_path: str, fmt: str) -> int:
    """The estimated memory of a version served in `fmt`: the base model in `path`, or, for an adapter
    version, only the matrices in `adapter_path` (loaded as stored, beside its base)."""
    if adapter_path:
        return weights_bytes(Path(adapter_path), "adapters.safetensors", "as stored")
    return weights_bytes(Path(path), "model*.safetensors", fmt)
