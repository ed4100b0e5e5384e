"""`mlx-hub generate MODEL PROMPT` (tokens stream to the terminal as they come) and
`mlx-hub chat MODEL` (an interactive chat that keeps the conversation), over the
inference service's GenerateStream."""

from __future__ import annotations

import sys
from typing import Annotated

import grpc
import typer

from mlxhub.cli import rpc
from mlxhub.cli.output import console, err_console
from mlxhub.v1 import inference_pb2 as pb

MaxTokens = Annotated[int, typer.Option("--max-tokens", help="Most tokens to generate (0: the service's default).")]
Temperature = Annotated[float, typer.Option(help="0 is greedy.")]


def stream(request: pb.GenerateStreamRequest, echo: bool = True) -> tuple[str, pb.GenerateStreamResponse | None]:
    """Print the text as it streams; return it with the final message. Ctrl-C cancels the call."""
    inference = rpc.connect("inference")
    call = inference.start("GenerateStream", request)
    parts, final = [], None
    try:
        for message in call:
            if message.HasField("usage"):
                final = message
            if message.text:
                parts.append(message.text)
                if echo:
                    sys.stdout.write(message.text)
                    sys.stdout.flush()
    except KeyboardInterrupt:
        call.cancel()
    except grpc.RpcError as exc:
        if echo and parts:
            sys.stdout.write("\n")
        raise inference.failure(exc) from None
    return "".join(parts), final


def summary(final: pb.GenerateStreamResponse | None) -> str:
    if final is None:
        return "(cancelled)"
    reason = pb.FinishReason.Name(final.finish_reason).removeprefix("FINISH_REASON_").lower()
    u = final.usage
    return (f"{final.model_version}: {u.completion_tokens} tokens, {u.tokens_per_second:.1f} tok/s, "
            f"first token {u.time_to_first_token_ms:.0f} ms, {reason}")


def generate_request(
    model: str, prompt: str, *, raw: bool = False, max_tokens: int = 0, temperature: float = 0.0,
    seed: int | None = None, top_p: float = 0.0, top_k: int = 0, min_p: float = 0.0,
    repetition_penalty: float = 0.0, stop: list[str] | None = None,
) -> pb.GenerateStreamRequest:
    """The request `generate` sends; 0 (or no value) leaves a sampling setting to the service (off).
    The service checks the values against the bounds in inference.proto."""
    sampling = pb.SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed or 0,
                                 has_seed=seed is not None, top_p=top_p, top_k=top_k, min_p=min_p,
                                 repetition_penalty=repetition_penalty, stop=stop or [])
    request = pb.GenerateStreamRequest(model=model, sampling=sampling)
    if raw:
        request.prompt = prompt
    else:
        request.messages.append(pb.ChatMessage(role="user", content=prompt))
    return request


def generate(
    model: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/versions/N.")],
    prompt: str,
    raw: Annotated[bool, typer.Option("--raw", help="Send the prompt as is, without the chat template.")] = False,
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling (with --temperature > 0).")] = None,
    top_p: Annotated[float, typer.Option(
        "--top-p", help="Sample from the likeliest tokens whose probabilities add up to this, above 0 to 1 (0: off).")] = 0.0,
    top_k: Annotated[int, typer.Option("--top-k", help="Sample from the K likeliest tokens only (0: off).")] = 0,
    min_p: Annotated[float, typer.Option(
        "--min-p", help="Skip tokens less likely than this fraction of the likeliest, 0 to below 1 (0: off).")] = 0.0,
    repetition_penalty: Annotated[float, typer.Option(
        "--repetition-penalty", help="Above 1 makes tokens already in the text less likely (0 or 1: off).")] = 0.0,
    stop: Annotated[list[str] | None, typer.Option(
        "--stop", help="End the text before this string; repeatable, up to 8.")] = None,
) -> None:
    """Generate text from PROMPT; tokens appear as they are produced."""
    request = generate_request(model, prompt, raw=raw, max_tokens=max_tokens, temperature=temperature, seed=seed,
                               top_p=top_p, top_k=top_k, min_p=min_p, repetition_penalty=repetition_penalty,
                               stop=stop)
    _, final = stream(request)
    sys.stdout.write("\n")
    err_console.print(summary(final), style="dim")


def chat(
    model: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/versions/N.")],
    system: Annotated[str, typer.Option(help="A system message to start with.")] = "",
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
) -> None:
    """Chat with MODEL; an empty line, /exit or Ctrl-D ends it, Ctrl-C stops an answer."""
    history = [pb.ChatMessage(role="system", content=system)] if system else []
    console.print(f"chatting with {model}; /exit or Ctrl-D to leave", style="dim")
    while True:
        try:
            line = console.input("[bold]> [/]")
        except (EOFError, KeyboardInterrupt):
            break
        if not line.strip() or line.strip() == "/exit":
            break
        history.append(pb.ChatMessage(role="user", content=line))
        request = pb.GenerateStreamRequest(model=model, messages=history,
                                           sampling=pb.SamplingParams(max_tokens=max_tokens, temperature=temperature))
        text, final = stream(request)
        sys.stdout.write("\n")
        history.append(pb.ChatMessage(role="assistant", content=text))
        err_console.print(summary(final), style="dim")
