"""`mlx-hub generate MODEL PROMPT` (tokens stream to the terminal as they come) and
`mlx-hub chat MODEL` (an interactive chat that keeps the conversation), over the
inference service's GenerateStream."""

from __future__ import annotations

import sys
from typing import Annotated

import grpc
import typer

from mlxhub.cli import console, err_console, fail
from mlxhub.client import connect, format_error
from mlxhub.config import ConfigError, load_settings
from mlxhub.v1 import inference_pb2 as pb

MaxTokens = Annotated[int, typer.Option("--max-tokens", help="Most tokens to generate (0: the service's default).")]
Temperature = Annotated[float, typer.Option(help="0 is greedy.")]


def stream(request: pb.GenerateStreamRequest, echo: bool = True) -> tuple[str, pb.GenerateStreamResponse | None]:
    """Print the text as it streams; return it with the final message. Ctrl-C cancels the call."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(f"error: {exc}") from None
    call = connect(settings, "inference").GenerateStream(request)
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
        raise fail(format_error(exc, settings.address("inference"))) from None
    return "".join(parts), final


def summary(final: pb.GenerateStreamResponse | None) -> str:
    if final is None:
        return "(cancelled)"
    reason = pb.FinishReason.Name(final.finish_reason).removeprefix("FINISH_REASON_").lower()
    u = final.usage
    return (f"{final.model_version}: {u.completion_tokens} tokens, {u.tokens_per_second:.1f} tok/s, "
            f"first token {u.time_to_first_token_ms:.0f} ms, {reason}")


def generate(
    model: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/versions/N.")],
    prompt: str,
    raw: Annotated[bool, typer.Option("--raw", help="Send the prompt as is, without the chat template.")] = False,
    max_tokens: MaxTokens = 0,
    temperature: Temperature = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling (with --temperature > 0).")] = None,
) -> None:
    """Generate text from PROMPT; tokens appear as they are produced."""
    sampling = pb.SamplingParams(max_tokens=max_tokens, temperature=temperature,
                                 seed=seed or 0, has_seed=seed is not None)
    request = pb.GenerateStreamRequest(model=model, sampling=sampling)
    if raw:
        request.prompt = prompt
    else:
        request.messages.append(pb.ChatMessage(role="user", content=prompt))
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


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command()(chat)
