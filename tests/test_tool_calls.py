"""Tool calls end to end: the official `openai` client makes a two-turn tool round trip through the
gateway and the real inference service, on a tiny model whose chat template has the Hermes/Qwen
tool-call format (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`, what mlx-lm's tokenizer
recognizes as `json_tools`). The demo model's template (SmolLM2's) has no tool format, so tools
on it are refused.

The tiny model is a real llama run by the real engine, built so its greedy answer is known: its
embedding is the identity, its attention and MLP add nothing, and its head maps each token to the
next one a tool round trip needs (a bigram table). A few whole strings are tokens of its
vocabulary, so the table stays small: after a forced call's `"arguments": ` it writes the city
and closes the call; after the prompt's last line it answers "It is sunny.". The tool-call
reader is tested on its own on text split in every way."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import httpx
import jsonschema
import openai
import pytest
from inference_util import register
from mlx_lm.tool_parsers import json_tools

from gateway.server import running
from inference_svc.tool_calls import ToolCallDelta, ToolCallReader, ToolUse, forced_prefix, joined, read_all
from mlxhub.v1 import inference_pb2 as pb

TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools:{% for tool in tools %} {{ tool.function.name }}{% endfor %}<|im_end|>\n"
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
ARGUMENTS, CITY, CLOSE, ANSWER = '"arguments": ', '{"city": "Paris"}', "}\n</tool_call>", "It is sunny."
KEY = '{"city":'
START, HEAD, BRANCH = "<tool_call>\n", '{"name": "get_weather", "arguments": ', '{"name": "get_'
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


def make_tool_model(directory: Path, calls: bool = False) -> Path:
    """The tiny llama above: a chat template with tools, and a bigram table as its weights. With
    `calls`, it answers the question with a call of its own (under `auto`) instead of the text."""
    import mlx.core as mx
    from tokenizers import Tokenizer

    from bench.tiny_model import make_tiny_model

    size = 272  # the byte-level vocabulary, its 3 special tokens, the 5 words below (and unused ids)
    make_tiny_model(directory, hidden_size=size, vocab_size=size, tie_word_embeddings=False, intermediate_size=16)
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    # KEY and BRANCH are never written: the grammar engine lets a token run past a point where the
    # grammar branches (after a JSON key, between the tools' names) only when a token ends there, as
    # one does in a trained vocabulary.
    tokenizer.add_tokens([ARGUMENTS, CITY, CLOSE, ANSWER, KEY, START, HEAD, BRANCH])
    tokenizer.save(str(directory / "tokenizer.json"))
    config = json.loads((directory / "tokenizer_config.json").read_text())
    (directory / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": TEMPLATE}))
    ids = tokenizer.get_vocab()
    end = ids["<|im_end|>"]
    follows = {ids["Ċ"]: ids[ANSWER], ids[ARGUMENTS]: ids[CITY], ids[CITY]: ids[CLOSE], ids[CLOSE]: end,
               ids[ANSWER]: end, ids[START]: ids[HEAD], ids[HEAD]: ids[CITY]}  # "Ċ" is the byte-level "\n"
    if calls:
        follows[ids["Ċ"]] = ids[START]
    head = mx.zeros((size, size))
    head[end] = 0.5  # any other token: end the reply
    for token, after in follows.items():
        head[:, token] = 0
        head[after, token] = 1.0
    weights = dict(mx.load(str(directory / "model.safetensors")))
    weights["model.embed_tokens.weight"] = mx.eye(size)
    weights["lm_head.weight"] = head
    for name, value in list(weights.items()):
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            weights[name] = mx.zeros_like(value)
    mx.save_safetensors(str(directory / "model.safetensors"), weights)
    return directory


@pytest.fixture(scope="module")
def tool_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tool_model(tmp_path_factory.mktemp("tools") / "model")


@pytest.fixture(scope="module")
def caller_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tool_model(tmp_path_factory.mktemp("caller") / "model", calls=True)


@pytest.fixture
def base_url(inference, registry_stub, tool_model, caller_model, tiny_model, settings):
    register(registry_stub, "weather", tool_model)
    register(registry_stub, "caller", caller_model)
    register(registry_stub, "tiny", tiny_model)
    with running(settings) as url:
        yield url


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/openai/v1", api_key="unused", max_retries=0)


def test_a_tool_round_trip_with_the_openai_client(base_url):
    ai = client(base_url)
    named = {"type": "function", "function": {"name": "get_weather"}}
    first = ai.chat.completions.create(model="weather", messages=QUESTION, tools=[WEATHER, CLOCK], tool_choice=named,
                                       temperature=0, max_tokens=16)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert choice.message.content is None

    # The call goes back as the assistant's turn, its result as a "tool" message; the model answers in text.
    turn = [*QUESTION, choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 degrees"}]
    second = ai.chat.completions.create(model="weather", messages=turn, tools=[WEATHER, CLOCK], temperature=0,
                                        max_tokens=16)
    assert second.choices[0].message.content == ANSWER and second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None

    # `required` with one tool is that tool; `none` leaves the tools out and answers in text.
    required = ai.chat.completions.create(model="weather", messages=QUESTION, tools=[WEATHER], tool_choice="required",
                                          temperature=0, max_tokens=16)
    assert required.choices[0].message.tool_calls[0].function.name == "get_weather"
    unused = ai.chat.completions.create(model="weather", messages=QUESTION, tools=[WEATHER], tool_choice="none",
                                        temperature=0, max_tokens=16)
    assert unused.choices[0].message.content == ANSWER and unused.choices[0].finish_reason == "stop"


def test_tool_calls_stream_name_first_then_arguments(base_url):
    chunks = list(client(base_url).chat.completions.create(
        model="weather", messages=QUESTION, tools=[WEATHER], temperature=0, max_tokens=16, stream=True,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].content is None
    start = deltas[0].tool_calls[0]
    assert start.index == 0 and start.id.startswith("call_") and start.type == "function"
    assert start.function.name == "get_weather" and start.function.arguments == ""
    later = [d.tool_calls[0] for d in deltas[1:]]
    assert later and all(d.index == 0 and d.id is None and d.function.name is None for d in later)
    assert json.loads("".join(d.function.arguments for d in later)) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # no markup leaks as text


def test_an_auto_call_is_decoded_under_its_schema_and_streams(base_url):
    """Under `auto` the model's own call (free text until its start marker, then the call's grammar)
    arrives as a call whose arguments match the schema, whole and streamed name first."""
    ai = client(base_url)
    whole = ai.chat.completions.create(model="caller", messages=QUESTION, tools=[WEATHER, CLOCK], tool_choice="auto",
                                       temperature=0, max_tokens=16)
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None, choice
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])

    chunks = list(ai.chat.completions.create(model="caller", messages=QUESTION, tools=[WEATHER, CLOCK], temperature=0,
                                             max_tokens=16, stream=True))
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].function.name == "get_weather" and deltas[0].function.arguments == ""
    assert "".join(d.function.arguments or "" for d in deltas[1:]) == call.function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tools_on_a_model_without_a_tool_format_are_refused(base_url):
    with pytest.raises(openai.BadRequestError) as caught:
        client(base_url).chat.completions.create(model="tiny", messages=QUESTION, tools=[WEATHER], max_tokens=2)
    assert caught.value.body["param"] == "tools" and "does not support tool calls" in caught.value.body["message"]

    with httpx.Client(base_url=f"{base_url}/openai/v1", timeout=60) as http:
        cases = [
            ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
             "tool_choice.function", "not one of the tools"),
            ({"tool_choice": "required"}, "tool_choice", "needs tools"),
            ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name", ""),
            ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice", ""),
            ({"tools": [{"type": "function", "function": {"name": "f", "strict": "yes"}}]},
             "tools[0].function.strict", ""),
        ]
        for extra, param, words in cases:
            answer = http.post("/chat/completions", json={"model": "weather", "messages": QUESTION, **extra})
            assert answer.status_code == 400, answer.text
            error = answer.json()["error"]
            assert error["param"] == param and words in error["message"], error
        orphan = [*QUESTION, {"role": "tool", "content": "sunny"}]
        answer = http.post("/chat/completions", json={"model": "weather", "messages": orphan, "tools": [WEATHER]})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "messages[1].tool_call_id"


def test_the_grpc_contract_carries_tools_and_calls(inference_stub, registry_stub, tool_model, tiny_model):
    register(registry_stub, "weather", tool_model)
    register(registry_stub, "tiny", tiny_model)
    tools = [pb.Tool(name="get_weather", parameters=json.dumps(WEATHER["function"]["parameters"]))]
    forced = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function="get_weather")
    ask = {"model": "weather", "messages": [pb.ChatMessage(role="user", content="Weather in Paris?")],
           "tools": tools, "tool_choice": forced, "sampling": pb.SamplingParams(temperature=0, max_tokens=16)}
    unary = inference_stub.Generate(pb.GenerateRequest(**ask))
    assert unary.finish_reason == pb.FINISH_REASON_TOOL_CALLS and unary.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in unary.tool_calls] == [("get_weather", {"city": "Paris"})]

    stream = list(inference_stub.GenerateStream(pb.GenerateStreamRequest(**ask)))
    deltas = [d for message in stream for d in message.tool_calls]
    assert [(d.index, d.name) for d in deltas if d.name] == [(0, "get_weather")] and deltas[0].id
    assert deltas[0].arguments == "" and all(d.index == 0 and not d.id and not d.name for d in deltas[1:])
    assert "".join(d.arguments for d in deltas) == unary.tool_calls[0].arguments == '{"city": "Paris"}'
    assert stream[-1].finish_reason == pb.FINISH_REASON_TOOL_CALLS

    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(**{**ask, "model": "tiny"}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not support tool calls" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(model="weather", prompt="hi", tools=tools))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "messages" in caught.value.details()


# The reader on its own: the model's text, split anywhere, becomes text and whole calls.


def reader(prefix: str = "") -> ToolCallReader:
    return ToolCallReader(json_tools.tool_call_start, json_tools.tool_call_end, json_tools.parse_tool_call,
                          prefix=prefix)


def test_the_reader_finds_calls_however_the_text_is_split():
    reply = 'Let me look. <tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call><tool_call>{"name": "g"}' \
            "</tool_call> done"
    for size in (1, 2, 3, 7, len(reply)):
        read, items = reader(), []
        for at in range(0, len(reply), size):
            items += read.feed(reply[at:at + size])
        items += read.finish()
        text = "".join(i for i in items if isinstance(i, str))
        pieces = [i for i in items if isinstance(i, ToolCallDelta)]
        calls = [(c.name, c.arguments) for c in joined(pieces)]
        assert text == "Let me look.  done", size
        assert calls == [("f", '{"x": 1}'), ("g", "{}")], size
        assert read.calls == 2
        # Each call is named by its first piece; the arguments follow in pieces (the call that names
        # no arguments comes whole, once closed).
        assert pieces[0].name == "f" and pieces[0].id and pieces[0].arguments == ""
        assert all(not p.name and not p.id for p in pieces if p.index == 0 and p is not pieces[0])
        if size < 8:
            assert len([p for p in pieces if p.index == 0]) > 2, size  # streamed, not sent whole


def test_arguments_stream_as_they_arrive():
    read = reader()
    assert read.feed('<tool_call>\n{"name": "f", "argu') == []  # not named yet: the head is not all there
    (named,) = read.feed('ments": ')
    assert (named.index, named.name, named.arguments) == (0, "f", "")
    assert [p.arguments for p in read.feed('{"q": "a\\"}')] == ['{"q": "a\\"}']  # an escaped quote, a brace in a string
    assert [p.arguments for p in read.feed('", "n": [1, {"m": 2}]')] == ['", "n": [1, {"m": 2}]']
    assert [p.arguments for p in read.feed('}}\n</tool_')] == ["}"]  # the call object's own brace is not an argument
    assert read.feed("call>after") == ["after"] and read.finish() == []
    _, (call,) = read_all(reader(), '<tool_call>{"name": "f", "arguments": {"q": "a\\"}", "n": [1, {"m": 2}]}}</tool_call>')
    assert json.loads(call.arguments) == {"q": 'a"}', "n": [1, {"m": 2}]}


def test_the_reader_keeps_what_is_no_call_as_text():
    assert read_all(reader(), "a <tool_call>not json</tool_call> b") == ("a <tool_call>not json</tool_call> b", [])
    assert read_all(reader(), "1 < 2 <tool") == ("1 < 2 <tool", [])  # a marker's beginning, at the end, is text
    text, calls = read_all(reader(), '<tool_call>{"name": "f", "arguments": {}}')  # ended by the reply's end
    assert text == "" and [c.name for c in calls] == ["f"]


def test_a_forced_call_starts_inside_the_call():
    class Tokenizer:  # what mlx-lm's tokenizer wrapper says of a Hermes/Qwen template
        tool_call_start, tool_call_end = json_tools.tool_call_start, json_tools.tool_call_end
        tool_parser = staticmethod(json_tools.parse_tool_call)

    use = ToolUse((WEATHER,), "function", "get_weather")
    prefix = forced_prefix(Tokenizer, use)
    assert prefix == '<tool_call>\n{"name": "get_weather", "arguments": '
    read = ToolCallReader.for_tokenizer(Tokenizer, use)
    text, calls = read_all(read, '{"city": "Paris"}}\n</tool_call>')
    assert text == "" and [(c.name, c.arguments) for c in calls] == [("get_weather", '{"city": "Paris"}')]
    assert forced_prefix(Tokenizer, ToolUse((WEATHER,), "auto")) == ""
    assert forced_prefix(Tokenizer, ToolUse((WEATHER, CLOCK), "required")) == "<tool_call>"  # which one: the model's


def test_the_auto_grammar_takes_text_or_calls(tool_model):
    """Under `auto`: free text, or text then a call whose arguments match; with a response_format,
    an answer in that format, or calls only."""
    from llguidance import LLMatcher
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    from inference_svc.decode.constraints import JSON_SCHEMA, Format
    from inference_svc.decode.vocabulary import vocabulary
    from inference_svc.tool_calls import call_grammar

    tokenizer = load_tokenizer(tool_model)

    def accepts(grammar: str, text: str) -> bool:
        matcher = LLMatcher(vocabulary(tokenizer), grammar, log_level=0)
        return all(matcher.consume_token(t) for t in tokenizer.encode(text, add_special_tokens=False)) \
            and matcher.is_accepting()

    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lyon"}}\n</tool_call>'
    free = call_grammar(ToolUse((WEATHER, CLOCK), "auto"), tokenizer)
    assert accepts(free, "It is sunny.") and accepts(free, "Let me see. " + call) and accepts(free, call + "\n" + call)
    assert not accepts(free, call.replace('"city"', '"town"'))  # arguments outside the schema
    assert not accepts(free, call + " and some text")  # after the calls, nothing but more calls
    shaped = call_grammar(ToolUse((WEATHER,), "auto"), tokenizer,
                          Format(JSON_SCHEMA, json.dumps({"type": "object", "required": ["a"],
                                                          "properties": {"a": {"type": "integer"}}})))
    assert accepts(shaped, '{"a":1}') and accepts(shaped, call)
    assert not accepts(shaped, "It is sunny.")
