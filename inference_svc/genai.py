"""One span per generation, named and attributed after the OpenTelemetry GenAI semantic
conventions (`chat smollm2@default`, gen_ai.request.* / gen_ai.response.* / gen_ai.usage.*),
so trace backends that know those conventions show model, sampling and token usage.
The span is a child of the gRPC server span, which continues the gateway's trace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from inference_svc.decode.generation import Done, Request

tracer = trace.get_tracer("mlxhub.inference")

PROVIDER = "mlx"


@dataclass
class Outcome:
    """What the request's handler saw at the end: set `done` when the Done event arrives."""

    done: Done | None = None


@contextlib.contextmanager
def generation_span(request: Request, reference: str) -> Iterator[Outcome]:
    span, outcome = start_span(request, reference), Outcome()
    try:
        yield outcome
    except GeneratorExit:  # the client went away mid-stream: not an error of ours
        end_span(span, outcome.done)
        raise
    except BaseException as error:
        end_span(span, outcome.done, error)
        raise
    end_span(span, outcome.done)


def start_span(request: Request, reference: str) -> Span:
    operation = "chat" if request.messages else "text_completion"
    sampling = request.sampling
    attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.request.model": reference,
        "gen_ai.response.model": request.spec.version,
        "gen_ai.request.temperature": sampling.temperature,
        "gen_ai.request.top_p": sampling.top_p,
    }
    if sampling.max_tokens:
        attributes["gen_ai.request.max_tokens"] = sampling.max_tokens
    if sampling.top_k:
        attributes["gen_ai.request.top_k"] = sampling.top_k
    if sampling.seed is not None:
        attributes["gen_ai.request.seed"] = sampling.seed
    if sampling.stop:
        attributes["gen_ai.request.stop_sequences"] = list(sampling.stop)
    if request.spec.adapter_path:
        attributes["mlxhub.base_model_version"] = request.spec.base_version
    return tracer.start_span(f"{operation} {reference}", kind=trace.SpanKind.INTERNAL, attributes=attributes)


def end_span(span: Span, done: Done | None, error: BaseException | None = None) -> None:
    """Record usage and finish reason (or the error), then end the span."""
    if done is not None:
        span.set_attributes({
            "gen_ai.usage.input_tokens": done.prompt_tokens,
            "gen_ai.usage.output_tokens": done.completion_tokens,
            "gen_ai.response.finish_reasons": [done.finish_reason],
            "mlxhub.time_to_first_token_ms": done.ttft_ms,
            "mlxhub.tokens_per_second": done.tokens_per_second,
        })
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.set_attribute("error.type", type(error).__name__)
    span.end()
