"""HTTP request -> protobuf request, and protobuf response -> JSON, per a binding's rule.

The body (all of it for `body: "*"`, one field for `body: "field"`) is parsed
with protobuf's canonical JSON mapping and unknown fields are rejected; path
variables then override it; query parameters fill the fields neither covers.
Every rejection is INVALID_ARGUMENT naming the offending field or parameter.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.body import parse_json, require_object
from gateway.errors import invalid_argument
from gateway.routes import Binding
from mlxhub.proto_json import message_to_dict

_T = FieldDescriptor
_INTEGER_TYPES = {
    _T.TYPE_INT32, _T.TYPE_INT64, _T.TYPE_UINT32, _T.TYPE_UINT64, _T.TYPE_SINT32, _T.TYPE_SINT64,
    _T.TYPE_FIXED32, _T.TYPE_FIXED64, _T.TYPE_SFIXED32, _T.TYPE_SFIXED64,
}  # fmt: skip
_TRUE, _FALSE = {"true", "t", "1"}, {"false", "f", "0"}
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)" at "([^"]+)"')


def find_field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    """A field by proto name or JSON (lowerCamel) name (the proto name first)."""
    return _field_names(descriptor).get(name)


@functools.cache
def _field_names(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """Each field of a message type under its JSON name and its proto name, made once per type."""
    names: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        names.setdefault(field.json_name, field)
    return names | {field.name: field for field in descriptor.fields}


def is_map(field: FieldDescriptor) -> bool:
    return field.type == _T.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def is_well_known(descriptor: Descriptor) -> bool:
    return descriptor.full_name.startswith("google.protobuf.")


def _parse_scalar(field: FieldDescriptor, text: str) -> Any:
    """Convert one query or path value to the field's Python type (ValueError if it is not one)."""
    if field.type == _T.TYPE_STRING:
        return text
    if field.type == _T.TYPE_BOOL:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError
    if field.type in _INTEGER_TYPES:
        return int(text)
    if field.type in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        value = float(text)
        if math.isnan(value) and text.lower() != "nan":
            raise ValueError
        return value
    if field.type == _T.TYPE_ENUM:
        by_name = field.enum_type.values_by_name.get(text)
        if by_name is not None:
            return by_name.number
        if int(text) in field.enum_type.values_by_number:
            return int(text)
        raise ValueError
    if field.type == _T.TYPE_BYTES:
        return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    raise ValueError


def _type_name(field: FieldDescriptor) -> str:
    if field.type == _T.TYPE_ENUM:
        return f"{field.enum_type.full_name} (one of {', '.join(field.enum_type.values_by_name)}, or its number)"
    if field.type == _T.TYPE_MESSAGE:
        return field.message_type.full_name
    return {v: k for k, v in vars(_T).items() if k.startswith("TYPE_")}[field.type].removeprefix("TYPE_").lower()


def set_field(message: Message, path: str, values: list[str], source: str) -> str:
    """Set the field at dotted `path` from text values; return the field's proto path.

    `source` ("query parameter" / "path parameter") goes into error messages.
    """
    names = path.split(".")
    target, proto_path = message, []
    for i, name in enumerate(names):
        field = find_field(target.DESCRIPTOR, name)
        if field is None:
            raise invalid_argument(
                f"unknown {source} {path!r}: {target.DESCRIPTOR.full_name} has no field {name!r}", path
            )
        proto_path.append(field.name)
        if i == len(names) - 1:
            break
        if field.type != _T.TYPE_MESSAGE or field.is_repeated or is_well_known(field.message_type):
            raise invalid_argument(f"{source} {path!r}: {name!r} is not a message field, so it has no sub-fields", path)
        target = getattr(target, field.name)
    if is_map(field):
        raise invalid_argument(f"{source} {path!r} is a map; send it in a JSON body", path)
    if not field.is_repeated and len(values) > 1:
        raise invalid_argument(f"{source} {path!r} is not repeated but was given {len(values)} values", path)
    try:
        if field.type == _T.TYPE_MESSAGE:
            if not is_well_known(field.message_type) or field.is_repeated:
                raise invalid_argument(f"{source} {path!r} is a message; set its fields as {path}.<field>", path)
            json_format.ParseDict(values[0], getattr(target, field.name))
        elif field.is_repeated:
            getattr(target, field.name).extend(_parse_scalar(field, v) for v in values)
        else:
            setattr(target, field.name, _parse_scalar(field, values[0]))
    except (ValueError, TypeError, binascii.Error, json_format.ParseError):
        shown = values[0] if len(values) == 1 else values
        raise invalid_argument(f"{source} {path!r}: {shown!r} is not a valid {_type_name(field)}", path) from None
    return ".".join(proto_path)


def _body_is_object(binding: Binding) -> bool:
    """Whether the body must be a JSON object: the whole request, or a message or map field."""
    if binding.body == "*":
        return True
    field = binding.request_class.DESCRIPTOR.fields_by_name[binding.body]
    if is_map(field):
        return True
    if field.type != _T.TYPE_MESSAGE or field.is_repeated:
        return False
    return not is_well_known(field.message_type) or field.message_type.full_name == "google.protobuf.Struct"


def _parse_body(binding: Binding, message: Message, body: bytes) -> None:
    if not body.strip():
        return
    if not binding.body:
        raise invalid_argument(f"{binding.http_method} {binding.template.pattern} takes no request body")
    payload = parse_json(body)
    if _body_is_object(binding):
        require_object(payload, None if binding.body == "*" else binding.body)
    try:
        json_format.ParseDict(payload if binding.body == "*" else {binding.body: payload}, message)
    except json_format.ParseError as error:
        unknown = _UNKNOWN_FIELD.search(str(error))
        if unknown:  # `at "UpdateModelRequest.model"` -> "model.<name>"
            field = ".".join([*unknown.group(2).split(".")[1:], unknown.group(1)])
            raise invalid_argument(f"request body has unknown field {field!r}: {error}", field) from None
        raise invalid_argument(f"request body: {error}") from None


def build_request(
    binding: Binding, path_params: dict[str, str], query: Iterable[tuple[str, str]], body: bytes
) -> Message:
    """The request message for `binding` from the parts of an HTTP request."""
    message = binding.request_class()
    _parse_body(binding, message, body)
    taken = {set_field(message, name, [value], "path parameter") for name, value in path_params.items()}
    grouped: dict[str, list[str]] = {}
    for name, value in query:
        grouped.setdefault(name, []).append(value)
    for name, values in grouped.items():
        if binding.body == "*":
            raise invalid_argument(f"unknown query parameter {name!r}: this method takes every field in the body", name)
        proto_path = set_field(message, name, values, "query parameter")
        if proto_path in taken or proto_path.split(".")[0] == binding.body:
            raise invalid_argument(f"query parameter {name!r} is set by the path or the body, not the query", name)
    return message


def response_json(binding: Binding, message: Message) -> Any:
    """Canonical JSON of a response (lowerCamel names), or of its `response_body` field."""
    if not binding.response_body:
        return message_to_dict(message)
    field = message.DESCRIPTOR.fields_by_name[binding.response_body]
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)[field.json_name]
