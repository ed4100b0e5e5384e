"""The route table, read from the `google.api.http` options of the mlxhub.v1 services.

Nothing here names an RPC: every method with an HTTP rule (and each of its
`additional_bindings`) becomes a `Binding`, so adding an RPC to a proto adds its
route. Path templates follow google/api/http.proto:

    Template = "/" Segments [ ":" Verb ] ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor

from mlxhub.v1 import inference_pb2, registry_pb2, trainer_pb2

SERVICE_FILES = (registry_pb2.DESCRIPTOR, trainer_pb2.DESCRIPTOR, inference_pb2.DESCRIPTOR)
HTTP_METHODS = ("get", "put", "post", "delete", "patch")

BATCH_SIZE_FIELD = "batch_size"
_INTEGER_CPP_TYPES = {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                      FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64}

# How specific a path segment is; a literal beats a variable, which beats `**`.
_LITERAL, _SINGLE, _MULTI = 2, 1, 0


class RouteError(Exception):
    """No binding matches; `allowed` lists the methods that would (405 when non-empty)."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        super().__init__()
        self.allowed = sorted(set(allowed))


def _split_top(text: str, sep: str) -> list[str]:
    """Split `text` at `sep` where it is not inside `{...}`."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _segment_regex(segment: str) -> tuple[str, int]:
    if segment == "*":
        return r"[^/]+", _SINGLE
    if segment == "**":
        return r".+", _MULTI
    if not segment or "{" in segment or "}" in segment:
        raise ValueError(f"bad path segment {segment!r}")
    return re.escape(segment), _LITERAL


@dataclass(frozen=True)
class PathTemplate:
    """A compiled path template: a regex plus the field path of each variable."""

    pattern: str
    regex: re.Pattern[str]
    variables: tuple[str, ...]
    specificity: tuple[int, ...]

    @classmethod
    def compile(cls, pattern: str) -> PathTemplate:
        if not pattern.startswith("/"):
            raise ValueError(f"path template {pattern!r} must start with '/'")
        *segments, last = _split_top(pattern[1:], "/")
        last, *verb = _split_top(last, ":")
        if len(verb) > 1:
            raise ValueError(f"path template {pattern!r} has more than one ':verb'")
        regex, variables, ranks = "", [], []
        for segment in [*segments, last]:
            if segment.startswith("{") and segment.endswith("}"):
                field_path, _, sub = segment[1:-1].partition("=")
                parts = [_segment_regex(s) for s in (sub or "*").split("/")]
                regex += f"/(?P<v{len(variables)}>{'/'.join(p for p, _ in parts)})"
                variables.append(field_path.strip())
                ranks.extend(rank for _, rank in parts)
            else:
                part, rank = _segment_regex(segment)
                regex += "/" + part
                ranks.append(rank)
        if verb:
            regex += ":" + re.escape(verb[0])
            ranks.append(_LITERAL + 1)
        return cls(pattern, re.compile(regex), tuple(variables), tuple(ranks))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        return {name: unquote(found.group(f"v{i}")) for i, name in enumerate(self.variables)}

    @property
    def openapi_path(self) -> str:
        """The template as an OpenAPI path: `{name=models/*}` becomes `{name}`."""
        return re.sub(r"\{([^}=]+)(=[^}]*)?\}", r"{\1}", self.pattern)


def upstream_of(service: ServiceDescriptor) -> str:
    """The settings key of the process serving `service`: RegistryService -> "registry"."""
    return service.name.removesuffix("Service").lower()


@dataclass(frozen=True)
class Binding:
    """One HTTP rule of one RPC."""

    method: MethodDescriptor
    http_method: str
    template: PathTemplate
    body: str = ""
    response_body: str = ""
    upstream: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "upstream", upstream_of(self.method.containing_service))

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        return self.method.server_streaming

    @cached_property
    def packing(self) -> Packing | None:
        return Packing.of(self.method)

    @cached_property
    def request_class(self) -> type:
        return message_factory.GetMessageClass(self.method.input_type)

    @cached_property
    def response_class(self) -> type:
        return message_factory.GetMessageClass(self.method.output_type)


@dataclass(frozen=True)
class Packing:
    """A stream that can carry several items per message: its request has an integer `batch_size`
    (0: one item per message), its response one item field and one repeated field of the same type.

    The gateway reads such a stream packed when its client asked for one item per message, and
    writes each item as the line the unpacked message would have been: one upstream read and one
    HTTP write per batch instead of per item, with the same lines."""

    size_field: str
    item_field: str
    item_json_name: str
    items_field: str

    @classmethod
    def of(cls, method: MethodDescriptor) -> Packing | None:
        if not method.server_streaming:
            return None
        size = method.input_type.fields_by_name.get(BATCH_SIZE_FIELD)
        if size is None or size.cpp_type not in _INTEGER_CPP_TYPES or size.is_repeated:
            return None
        fields = method.output_type.fields
        singles = [f for f in fields if f.message_type is not None and not f.is_repeated]
        repeated = [f for f in fields if f.message_type is not None and f.is_repeated]
        if len(fields) != 2 or len(singles) != 1 or len(repeated) != 1:
            return None
        if singles[0].message_type.full_name != repeated[0].message_type.full_name:
            return None
        return cls(size.name, singles[0].name, singles[0].json_name, repeated[0].name)


def _bindings_of_rule(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Iterable[Binding]:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        verb, path = rule.custom.kind.upper(), rule.custom.path
    elif kind in HTTP_METHODS:
        verb, path = kind.upper(), getattr(rule, kind)
    else:
        return
    yield Binding(method, verb, PathTemplate.compile(path), rule.body, rule.response_body)
    for extra in rule.additional_bindings:
        yield from _bindings_of_rule(method, extra)


def services(files=SERVICE_FILES) -> list[ServiceDescriptor]:
    return [service for file in files for service in file.services_by_name.values()]


def load_bindings(files=SERVICE_FILES) -> list[Binding]:
    """Every HTTP binding declared in `files`, in declaration order."""
    bindings = []
    for service in services(files):
        for method in service.methods:
            if method.client_streaming:
                continue  # HTTP/JSON cannot carry a client stream
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            bindings.extend(_bindings_of_rule(method, rule))
    return bindings


class RouteTable:
    """Matches (HTTP method, path) to a binding; the most specific template wins.

    A request is matched twice (its metric label, then its call) and clients repeat paths, so
    recent matches are remembered; the path parameters given back are shared: read them only.
    """

    CACHED_MATCHES = 4096

    def __init__(self, bindings: Iterable[Binding]) -> None:
        self.bindings = sorted(bindings, key=lambda b: b.template.specificity, reverse=True)
        self.match = functools.lru_cache(maxsize=self.CACHED_MATCHES)(self._match)

    def _match(self, http_method: str, path: str) -> tuple[Binding, dict[str, str]]:
        allowed = []
        for binding in self.bindings:
            params = binding.template.match(path)
            if params is None:
                continue
            if binding.http_method == http_method.upper():
                return binding, params
            allowed.append(binding.http_method)
        raise RouteError(allowed)
