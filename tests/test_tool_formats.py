"""Tool-call arguments decoded under each function's schema in the other call formats of mlx-lm's
tokenizer whose arguments are JSON: Mistral's `[TOOL_CALLS]name[ARGS]{...}`, its older JSON list
`[TOOL_CALLS] [{"name": ..., "arguments": ...}]`, and Kimi K2's `functions.name:0` sections (the
Hermes/Qwen format: tests/test_tool_schemas.py). The real demo model (SmolLM2-135M-Instruct) is
given a chat template in each format (tests/inference_util.py); it writes no reliable calls on its
own, so every argument below parses and validates only because the grammar allows nothing else.
A format whose arguments are not JSON stays free, and says so in a warning."""

from __future__ import annotations

import functools
import json
import logging
import threading
from pathlib import Path

import jsonschema
import openai
import pytest
from inference_util import (
    KIMI_TOOL_TEMPLATE,
    MISTRAL_LIST_TOOL_TEMPLATE,
    MISTRAL_TOOL_TEMPLATE,
    register,
    with_chat_template,
)
from mlx_lm.tool_parsers import pythonic
from test_tool_schemas import ASKS, TOOLS, WEATHER, ask, function, schema_of

from gateway.server import running
from inference_svc import tool_grammars
from inference_svc.tool_calls import (
    ToolCallDelta,
    ToolCallReader,
    ToolUse,
    call_grammar,
    constraint,
    forced_prefix,
    joined,
    read_all,
)

FORMATS = {  # the model's name: its template, the syntax mlx-lm's tokenizer is read as, a reply with two calls
    "mistral": (MISTRAL_TOOL_TEMPLATE, tool_grammars.MISTRAL,
                ('[TOOL_CALLS]get_weather[ARGS]{"city": "Lyon", "unit": "celsius"}'
                 '[TOOL_CALLS]add_items[ARGS]{"items": [{"item": "pear", "count": 2}]}')),
    "mistral-list": (MISTRAL_LIST_TOOL_TEMPLATE, tool_grammars.MISTRAL_LIST,
                     ('[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Lyon", "unit": "celsius"}}, '
                      '{"name": "add_items", "arguments": {"items": [{"item": "pear", "count": 2}]}}]')),
    "kimi": (KIMI_TOOL_TEMPLATE, tool_grammars.KIMI,
             ('<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>'
              '{"city": "Lyon", "unit": "celsius"}<|tool_call_end|><|tool_call_begin|>functions.add_items:1'
              '<|tool_call_argument_begin|>{"items": [{"item": "pear", "count": 2}]}<|tool_call_end|>'
              "<|tool_calls_section_end|>")),
}
TWO_CALLS = [("get_weather", {"city": "Lyon", "unit": "celsius"}), ("add_items", {"items": [{"item": "pear", "count": 2}]})]


@pytest.fixture(scope="module")
def models(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo model's weights and tokenizer with a chat template in each format."""
    return {name: with_chat_template(smollm2, tmp_path_factory.mktemp(name) / "model", template)
            for name, (template, _, _) in FORMATS.items()}


@pytest.fixture(scope="module")
def tokenizers(models: dict[str, Path]) -> dict:
    from mlx_lm.tokenizer_utils import load

    return {name: load(path) for name, path in models.items()}


@pytest.fixture
def inference_options():
    """Room for a whole batch of asks at once (the forced, required, auto and free rows below)."""
    from inference_svc.server import InferenceOptions

    return InferenceOptions(memory_gb=4.0, keep_alive_s=60.0, max_running=12, max_queued=12)


@pytest.fixture
def client(inference, registry_stub, models, settings):
    for name, path in models.items():
        register(registry_stub, name, path)
    with running(settings) as url:
        yield openai.OpenAI(base_url=f"{url}/openai/v1", api_key="unused", max_retries=0, timeout=600)


def test_mlx_lm_reads_each_template_as_its_format(tokenizers):
    for name, (_, syntax, reply) in FORMATS.items():
        tokenizer = tokenizers[name]
        assert tool_grammars.syntax_of(tokenizer) is syntax, name
        # mlx-lm's own parser reads the reply the grammar allows as the two calls.
        span = reply[len(tokenizer.tool_call_start):]
        span = span[:len(span) - len(tokenizer.tool_call_end)] if tokenizer.tool_call_end else span
        parsed = tokenizer.tool_parser(span, TOOLS)
        assert [(c["name"], c["arguments"]) for c in parsed] == TWO_CALLS, name


def test_each_grammar_takes_text_or_calls_matching_their_schemas(tokenizers):
    """Under `auto`: free text, or text then calls (in the format) whose arguments match; forced:
    the call's arguments after the prompt's prefix; `required`: calls only."""
    for name, (_, _, reply) in FORMATS.items():
        tokenizer = tokenizers[name]
        accepts = functools.partial(accepted, tokenizer)
        free = call_grammar(ToolUse(tuple(TOOLS), "auto"), tokenizer)
        assert accepts(free, "It is sunny.") and accepts(free, "Let me see. " + reply) and accepts(free, reply), name
        assert not accepts(free, reply.replace('"celsius"', '"kelvin"')), name  # an enum the schema does not have
        assert not accepts(free, reply.replace('"count": 2', '"count": 20')), name  # past the maximum
        assert not accepts(free, reply + " and some text"), name  # after the calls, nothing
        required = ToolUse(tuple(TOOLS), "required")
        assert forced_prefix(tokenizer, required) == tokenizer.tool_call_start
        assert accepts(call_grammar(required, tokenizer), reply[len(tokenizer.tool_call_start):]), name
        assert not accepts(call_grammar(required, tokenizer), "It is sunny."), name
        named = ToolUse(tuple(TOOLS), "function", "get_weather")
        prefix = forced_prefix(tokenizer, named)
        assert reply.startswith(prefix), (name, prefix)  # the call's opening, up to its arguments
        one = call_grammar(named, tokenizer)
        whole = prefix + '{"city": "Lyon", "unit": "celsius"}' + reply_close(name)
        assert accepts(one, whole[len(prefix):]), name
        assert not accepts(one, reply[len(prefix):]), name  # a named function is called once


def accepted(tokenizer, grammar: str, text: str) -> bool:
    """Whether `grammar` takes `text` (as the tokenizer encodes it) as a whole reply."""
    from llguidance import LLMatcher

    from inference_svc.decode.vocabulary import vocabulary

    matcher = LLMatcher(vocabulary(tokenizer), grammar, log_level=0)
    tokens = tokenizer.encode(text, add_special_tokens=False)
    return all(matcher.consume_token(t) for t in tokens) and matcher.is_accepting()


def reply_close(name: str) -> str:
    return {"mistral": "", "mistral-list": "}]", "kimi": "<|tool_call_end|><|tool_calls_section_end|>"}[name]


def test_the_reader_streams_each_format_in_pieces_that_join_to_the_whole(tokenizers):
    for name, (_, _, reply) in FORMATS.items():
        use = ToolUse(tuple(TOOLS), "auto")
        text, calls = read_all(ToolCallReader.for_tokenizer(tokenizers[name], use), "Sure. " + reply)
        assert text == "Sure. " and [(c.name, json.loads(c.arguments)) for c in calls] == TWO_CALLS, name
        for size in (1, 3, 7):
            read, items = ToolCallReader.for_tokenizer(tokenizers[name], use), []
            for at in range(0, len(reply), size):
                items += read.feed(reply[at:at + size])
            items += read.finish()
            pieces = [i for i in items if isinstance(i, ToolCallDelta)]
            assert [(c.name, c.arguments) for c in joined(pieces)] == [(c.name, c.arguments) for c in calls], name
            assert [p.name for p in pieces if p.name] == ["get_weather", "add_items"], name  # each named first
            assert len([p for p in pieces if p.index == 0]) > 2, (name, size)  # its arguments in pieces


def test_a_format_without_json_arguments_is_decoded_free_and_says_so(tokenizers, caplog):
    """Pythonic calls (`[f(city="Lyon")]`) are Python literals a JSON schema's grammar cannot describe
    faithfully: no grammar is claimed for them, and a warning says so."""

    class Pythonic:  # what mlx-lm's tokenizer says of a template in the pythonic format (LFM2's)
        has_tool_calling = True
        tool_call_start, tool_call_end = pythonic.tool_call_start, pythonic.tool_call_end
        tool_parser = staticmethod(pythonic.parse_tool_call)

    with caplog.at_level(logging.WARNING, logger="inference_svc.tool_calls"):
        assert constraint(None, ToolUse((WEATHER,), "required"), Pythonic) is None
    assert "NOT constrained" in caplog.text and "'pythonic'" in caplog.text
    assert forced_prefix(Pythonic, ToolUse((WEATHER,), "function", "get_weather")) == "<|tool_call_start|>"


@pytest.mark.parametrize("model", FORMATS)
def test_calls_validate_beside_an_unchanged_free_row(client, model):
    """In one batch: a function forced greedy and another sampled, `required` over all of them,
    `auto` greedy and sampled (text, or calls that validate), and a free greedy row whose answer is
    the one it gives alone."""
    free = {"messages": [{"role": "user", "content": "Tell me about the sea."}], "temperature": 0, "max_tokens": 24}
    greedy, sampled = {"temperature": 0}, {"temperature": 1.0, "seed": 11}
    alone = client.chat.completions.create(model=model, **free).choices[0].message.content

    def forced(name: str) -> dict:
        return {"messages": ask(name), "tools": TOOLS, "max_tokens": 64,
                "tool_choice": {"type": "function", "function": {"name": name}}}

    asks = {"free": free, "book_table/greedy": {**forced("book_table"), **greedy},
            "add_items/sampled": {**forced("add_items"), **sampled},
            "required": {"messages": ask("get_weather"), "tools": TOOLS, "max_tokens": 64, "tool_choice": "required",
                         **greedy},
            "auto/greedy": {"messages": ask("get_weather"), "tools": TOOLS, "max_tokens": 24, **greedy},
            "auto/sampled": {"messages": ask("get_weather"), "tools": TOOLS, "max_tokens": 24, **sampled}}
    answers = together(client, model, asks)

    assert answers.pop("free").message.content == alone
    for key, choice in answers.items():
        if key.startswith("auto") and not choice.message.tool_calls:  # a text answer
            assert choice.finish_reason in ("stop", "length") and choice.message.content, (key, choice)
            continue
        calls = choice.message.tool_calls or []
        if key == "required" and choice.finish_reason == "length":  # `required` may call again and again: the
            calls = [c for c in calls if whole(c.function.arguments)]  # budget can end inside its last call
        else:
            assert choice.finish_reason == "tool_calls", (key, choice)
        assert calls, (key, choice)
        for call in calls:
            jsonschema.validate(json.loads(call.function.arguments), schema_of(call.function.name))
        if key.split("/")[0] in ASKS:
            assert [c.function.name for c in choice.message.tool_calls] == [key.split("/")[0]], key


def whole(arguments: str) -> bool:
    """Whether a call's arguments are a whole JSON object (a cut one does not parse)."""
    try:
        json.loads(arguments)
    except ValueError:
        return False
    return True


def together(client: openai.OpenAI, model: str, asks: dict[str, dict]) -> dict:
    """The answers to all `asks` sent at once (so they decode in one batch)."""
    answers: dict = {}

    def send(key: str) -> None:
        answers[key] = client.chat.completions.create(model=model, **asks[key]).choices[0]

    threads = [threading.Thread(target=send, args=(key,)) for key in asks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(answers) == set(asks), set(asks) - set(answers)
    return answers


@pytest.mark.parametrize("model", FORMATS)
def test_streamed_arguments_are_the_whole_arguments(client, model):
    forced = {"type": "function", "function": {"name": "book_table"}}
    request = {"messages": ask("book_table"), "tools": TOOLS, "temperature": 0, "max_tokens": 64, "tool_choice": forced}
    (expected,) = client.chat.completions.create(model=model, **request).choices[0].message.tool_calls
    chunks = list(client.chat.completions.create(model=model, **request, stream=True))
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    first, rest = deltas[0], deltas[1:]
    assert first.function.name == "book_table" and first.id.startswith("call_"), first
    assert len(rest) > 2, rest  # in pieces as the tokens arrive
    assert "".join(d.function.arguments for d in rest) == expected.function.arguments
    jsonschema.validate(json.loads(expected.function.arguments), schema_of("book_table"))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # no markup as text


def test_a_schema_the_engine_cannot_compile_is_a_400_in_each_format(client):
    bad = function("lookup", {"type": "object", "properties": {"q": {"type": "string", "not": {"const": "x"}}}})
    for model in FORMATS:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=model, messages=ask("get_weather"), tools=[WEATHER, bad], max_tokens=5)
        assert caught.value.body["param"] == "tools[1].function.parameters", (model, caught.value.body)
        assert "'lookup'" in caught.value.body["message"], caught.value.body
