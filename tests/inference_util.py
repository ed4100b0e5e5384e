"""Helpers shared by the inference tests: register a model directory, read a stream, give a model
a tool-call chat template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from google.rpc import error_details_pb2

from mlxhub.errors import status_of
from mlxhub.v1 import inference_pb2 as ipb
from mlxhub.v1 import registry_pb2 as rpb

# A chat template in the Hermes/Qwen tool-call format (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`),
# for the demo model, whose own template has no tool format.
HERMES_TOOL_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nYou can call these functions:\n<tools>\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools>\n"
    "To call one, reply <tool_call>\n{\"name\": <its name>, \"arguments\": <its arguments>}\n</tool_call><|im_end|>\n"
    "{% endif %}{% for message in messages %}"
    "{% if message.role == 'assistant' %}<|im_start|>assistant\n{% if message.content %}{{ message.content }}{% endif %}"
    "{% for tool_call in message.tool_calls or [] %}"
    "{% if tool_call.function is defined %}{% set tool_call = tool_call.function %}{% endif %}"
    "<tool_call>\n{\"name\": \"{{ tool_call.name }}\", \"arguments\": {{ tool_call.arguments | tojson }}}\n</tool_call>"
    "{% endfor %}<|im_end|>\n"
    "{% elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}\n</tool_response>"
    "<|im_end|>\n{% else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def with_chat_template(model: Path, directory: Path, template: str) -> Path:
    """A copy of `model` in `directory` whose tokenizer uses `template`."""
    shutil.copytree(model, directory)
    config = json.loads((directory / "tokenizer_config.json").read_text())
    (directory / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": template}))
    return directory


def register(registry_stub, name: str, directory: Path, alias: str = "") -> int:
    try:
        registry_stub.GetModel(rpb.GetModelRequest(name=name))
    except Exception:  # noqa: BLE001 - NOT_FOUND: create it
        registry_stub.CreateModel(rpb.CreateModelRequest(name=name))
    version = registry_stub.CreateModelVersion(
        rpb.CreateModelVersionRequest(name=name, artifact_path=str(directory))
    ).version.version
    if alias:
        registry_stub.SetAlias(rpb.SetAliasRequest(name=name, alias=alias, version=version))
    return version


def chat(model: str, text: str, **sampling) -> ipb.GenerateStreamRequest:
    return ipb.GenerateStreamRequest(model=model, messages=[ipb.ChatMessage(role="user", content=text)],
                                     sampling=ipb.SamplingParams(**sampling))


def field_violations(error) -> list[str]:
    fields = []
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields

# Chat templates in the other tool-call formats with JSON arguments that mlx-lm's tokenizer recognizes, for the
# demo model (its own turn markers around them): Mistral's `[TOOL_CALLS]name[ARGS]{...}` and its older JSON list
# `[TOOL_CALLS] [{"name": ..., "arguments": ...}]`, and Kimi K2's sections of `functions.name:0` calls.
_TURNS = (
    "{% for message in messages %}"
    "{% if message.role == 'assistant' %}<|im_start|>assistant\n{% if message.content %}{{ message.content }}{% endif %}"
    "{% if message.tool_calls %}CALLS{% endif %}<|im_end|>\n"
    "{% elif message.role == 'tool' %}<|im_start|>user\nThe result: {{ message.content }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_OFFER = "{% if tools %}<|im_start|>system\nYou can call these functions:\n{{ tools | tojson }}\nHOW<|im_end|>\n{% endif %}"


def _tool_template(how: str, calls: str) -> str:
    return _OFFER.replace("HOW", how) + _TURNS.replace("CALLS", calls)


MISTRAL_TOOL_TEMPLATE = _tool_template(
    "To call one, reply [TOOL_CALLS]<its name>[ARGS]<its arguments>",
    "{% for call in message.tool_calls %}[TOOL_CALLS]{{ call.function.name }}[ARGS]"
    "{{ call.function.arguments | tojson }}{% endfor %}")
MISTRAL_LIST_TOOL_TEMPLATE = _tool_template(
    "To call one, reply [TOOL_CALLS] [{\"name\": <its name>, \"arguments\": <its arguments>}]",
    "[TOOL_CALLS] [{% for call in message.tool_calls %}{\"name\": \"{{ call.function.name }}\", \"arguments\": "
    "{{ call.function.arguments | tojson }}}{% if not loop.last %}, {% endif %}{% endfor %}]")
KIMI_TOOL_TEMPLATE = _tool_template(
    "To call one, reply <|tool_calls_section_begin|><|tool_call_begin|>functions.<its name>:0"
    "<|tool_call_argument_begin|><its arguments><|tool_call_end|><|tool_calls_section_end|>",
    "<|tool_calls_section_begin|>{% for call in message.tool_calls %}<|tool_call_begin|>functions."
    "{{ call.function.name }}:{{ loop.index0 }}<|tool_call_argument_begin|>{{ call.function.arguments | tojson }}"
    "<|tool_call_end|>{% endfor %}<|tool_calls_section_end|>")
