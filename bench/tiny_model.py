"""A random llama with a byte-level BPE tokenizer and a chat template, built in a second:
what the tests and the training benchmark train on when a step must cost milliseconds (a test
and benchmark fixture, so it lives here and not in a service package)."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm.models import llama
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_tiny_model(directory: Path, chat_template: bool = True, nan: bool = False, layers: int = 2,
                    **dimensions: int) -> Path:
    """A random 2-layer llama with a byte-level BPE tokenizer: trains in milliseconds per step."""
    directory.mkdir(parents=True, exist_ok=True)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    specials = ["<|im_start|>", "<|im_end|>", "<pad>"]
    args = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": layers, "intermediate_size": 128,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "vocab_size": len(alphabet) + len(specials), "rope_theta": 10000.0, "tie_word_embeddings": True,
            **dimensions}
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs(**args))
    weights = dict(tree_flatten(model.parameters()))
    if nan:
        weights["model.norm.weight"] = mx.full(weights["model.norm.weight"].shape, float("nan"))
    mx.save_safetensors(str(directory / "model.safetensors"), weights)
    (directory / "config.json").write_text(json.dumps(args))
    tokenizer = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(directory / "tokenizer.json"))
    tokenizer_config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>", "pad_token": "<pad>"}
    if chat_template:
        tokenizer_config["chat_template"] = CHAT_TEMPLATE
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return directory
