"""The limits the protos declare on request fields, read from the descriptors.

`(mlxhub.v1.bounds)` (proto/mlxhub/v1/bounds.proto) says what a field accepts and
`google.api.field_behavior` which fields a request must set. Every service checks
every request against them before handling it (`RequestBounds`, a server
interceptor), code that needs one of the limits as a number reads it with `of()`,
and the gateway's OpenAPI document is written from the same options: the numbers
live in the .proto files only.
"""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from mlxhub import names, validation
from mlxhub.errors import InvalidArgument, abort
from mlxhub.v1 import bounds_pb2

_T = FieldDescriptor
_NUMBERS = frozenset({
    _T.TYPE_DOUBLE, _T.TYPE_FLOAT, _T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32, _T.TYPE_UINT32, _T.TYPE_FIXED32,
    _T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64, _T.TYPE_UINT64, _T.TYPE_FIXED64,
})
FORM_HINTS = {
    bounds_pb2.STRING_FORM_NAME: names.NAME_RULE,
    bounds_pb2.STRING_FORM_MODEL_REFERENCE: f"NAME, NAME@ALIAS or NAME/versions/N ({names.NAME_RULE})",
    bounds_pb2.STRING_FORM_UUID: "a UUID",
    bounds_pb2.STRING_FORM_LINE: "one line of text, without control characters",
    bounds_pb2.STRING_FORM_TEXT: "text; tab and line breaks are the only control characters allowed",
}


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field of a request: its dotted proto path and a sentence that says the limit."""

    field: str
    message: str


def bounds(field: FieldDescriptor) -> bounds_pb2.FieldBounds:
    """The field's declared bounds (an empty FieldBounds when it declares none)."""
    return field.GetOptions().Extensions[bounds_pb2.bounds]


def of(message: type[Message] | Descriptor, field_name: str) -> bounds_pb2.FieldBounds:
    """Bounds of `message`'s field, for a service that needs one of its limits as a number."""
    descriptor = message if isinstance(message, Descriptor) else message.DESCRIPTOR
    return bounds(descriptor.fields_by_name[field_name])


def behaviors(field: FieldDescriptor) -> set[int]:
    """The field's google.api.field_behavior values (REQUIRED, OUTPUT_ONLY, IMMUTABLE, ...)."""
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def is_required(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in behaviors(field)


def is_output_only(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.OUTPUT_ONLY in behaviors(field)


def number(value: float) -> str:
    """A limit as people write it: 1024, 0.5, 10000000 (never 1e+07)."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def range_text(b: bounds_pb2.FieldBounds) -> str:
    """'in [1, 1024]', '> 0', '<= 1', ... for a FieldBounds with a minimum or a maximum."""
    low = number(b.minimum) if b.HasField("minimum") else None
    high = number(b.maximum) if b.HasField("maximum") else None
    if low is not None and high is not None:
        return f"in {'(' if b.exclusive_minimum else '['}{low}, {high}{')' if b.exclusive_maximum else ']'}"
    if low is not None:
        return f"{'>' if b.exclusive_minimum else '>='} {low}"
    return f"{'<' if b.exclusive_maximum else '<='} {high}"


def _number_problem(path: str, value: float, b: bounds_pb2.FieldBounds, zero_is_unset: bool) -> Problem | None:
    if not (b.HasField("minimum") or b.HasField("maximum")):
        return None
    ok = isinstance(value, int) or math.isfinite(value)
    if ok and b.HasField("minimum"):
        ok = value > b.minimum if b.exclusive_minimum else value >= b.minimum
    if ok and b.HasField("maximum"):
        ok = value < b.maximum if b.exclusive_maximum else value <= b.maximum
    if ok:
        return None
    unset = " (0 or unset: the default)" if zero_is_unset and not accepts(b, 0) else ""
    return Problem(path, f"{path} must be {range_text(b)}{unset}, got {value}")


def accepts(b: bounds_pb2.FieldBounds, value: float) -> bool:
    """Whether a number lies within `b`'s range."""
    return _number_problem("", value, b, False) is None


def _string_problem(path: str, value: str, b: bounds_pb2.FieldBounds, label: str = "") -> Problem | None:
    label = label or path
    if b.min_length and len(value) < b.min_length:
        need = "must not be empty" if b.min_length == 1 else f"must have at least {b.min_length} characters"
        return Problem(path, f"{label} {need}, got {value!r}")
    if b.max_length and len(value) > b.max_length:
        return Problem(path, f"{label} is {len(value)} characters long; the limit is {b.max_length}")
    if b.form == bounds_pb2.STRING_FORM_NAME:
        problem = names.name_problem(value, label)
        return Problem(path, problem) if problem else None
    if b.form == bounds_pb2.STRING_FORM_MODEL_REFERENCE:
        try:
            names.parse_reference(value)
        except ValueError as error:
            return Problem(path, str(error))
    if b.form == bounds_pb2.STRING_FORM_UUID:
        try:
            uuid.UUID(value)
        except ValueError:
            return Problem(path, f"{label} {value!r} is not a UUID")
    if b.form in (bounds_pb2.STRING_FORM_LINE, bounds_pb2.STRING_FORM_TEXT):
        control = validation.control_problem(value, label, multiline=b.form == bounds_pb2.STRING_FORM_TEXT)
        if control:
            return Problem(path, control)
    if b.allowed and value not in b.allowed:
        return Problem(path, f"{label} must be one of {', '.join(b.allowed)}, got {value!r}")
    return None


def _value_problem(path: str, field: FieldDescriptor, value: Any, b: bounds_pb2.FieldBounds,
                   zero_is_unset: bool) -> Problem | None:
    """One value of `field` (the field itself, an element, or a map value)."""
    if field.type == _T.TYPE_MESSAGE:
        return None if _is_well_known(field) else problem(value, f"{path}.")
    if field.type == _T.TYPE_STRING:
        return _string_problem(path, value, b)
    if field.type in _NUMBERS:
        return _number_problem(path, value, b, zero_is_unset)
    return None


def _field_problem(message: Message, field: FieldDescriptor, b: bounds_pb2.FieldBounds, path: str) -> Problem | None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        entries = getattr(message, field.name)
        if b.max_items and len(entries) > b.max_items:
            return Problem(path, f"{path} has {len(entries)} entries; the limit is {b.max_items}")
        value_field = field.message_type.fields_by_name["value"]
        for key, value in entries.items():
            entry = f"{path}[{key}]"
            key_problem = _string_problem(entry, key, b.keys, f"key {key!r} of {path}") if isinstance(key, str) else None
            if found := key_problem or _value_problem(entry, value_field, value, b.items, False):
                return found
        return None
    if field.is_repeated:
        values = getattr(message, field.name)
        if b.max_items and len(values) > b.max_items:
            return Problem(path, f"{path} has {len(values)} elements; the limit is {b.max_items}")
        for i, value in enumerate(values):
            if found := _value_problem(f"{path}[{i}]", field, value, b.items, False):
                # an element of a list of scalars is reported as the list (the message says which one)
                return found if field.type == _T.TYPE_MESSAGE else Problem(path, found.message)
        return None
    if field.type == _T.TYPE_MESSAGE:
        if _is_well_known(field) or not message.HasField(field.name):
            return None
        return problem(getattr(message, field.name), f"{path}.")
    value = getattr(message, field.name)
    if not value:  # proto3: the zero value is "unset", i.e. the default
        return None
    return _value_problem(path, field, value, b, True)


def required_problem(field: FieldDescriptor, path: str) -> Problem:
    hint = FORM_HINTS.get(bounds(field).form)
    return Problem(path, f"{path} is required" + (f"; give {hint}" if hint else ""))


@functools.cache
def _plan(descriptor: Descriptor) -> tuple[tuple[FieldDescriptor, bounds_pb2.FieldBounds, bool], ...]:
    """(field, bounds, required) for the fields of a message that a request may set, read once per type."""
    return tuple((f, bounds(f), is_required(f)) for f in descriptor.fields if not is_output_only(f))


def problem(message: Message, prefix: str = "") -> Problem | None:
    """The first field of `message` (and of the messages in it) outside its declared bounds, or None.

    Output-only fields are skipped: a client may send back what it read.
    """
    for field, b, required in _plan(message.DESCRIPTOR):
        path = prefix + field.name
        if required and not _is_set(message, field):
            return required_problem(field, path)
        if found := _field_problem(message, field, b, path):
            return found
    return None


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.type == _T.TYPE_MESSAGE:
        return message.HasField(field.name)
    return bool(getattr(message, field.name))


def _is_well_known(field: FieldDescriptor) -> bool:
    """Timestamps, Structs, masks...: nothing in them declares bounds."""
    return field.message_type.full_name.startswith("google.protobuf.")


def check(message: Message, prefix: str = "") -> None:
    """Raise InvalidArgument, naming the field, when `message` is outside its declared bounds."""
    if found := problem(message, prefix):
        raise InvalidArgument(found.message, field=found.field)


class RequestBounds(grpc.ServerInterceptor):
    """Checks each unary-request call's request against its declared bounds before the servicer
    sees it: INVALID_ARGUMENT naming the field, so no service can forget a limit."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        if handler.response_streaming:
            inner_stream = handler.unary_stream

            def unary_stream(request, context):
                self.admit(request, context)
                yield from inner_stream(request, context)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer)
        inner = handler.unary_unary

        def unary_unary(request, context):
            self.admit(request, context)
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer,
                                                   handler.response_serializer)

    @staticmethod
    def admit(request: Message, context: grpc.ServicerContext) -> None:
        if found := problem(request):
            abort(context, InvalidArgument(found.message, field=found.field))
