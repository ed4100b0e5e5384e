"""Protobuf responses to JSON-ready values, the same as `json_format.MessageToDict` gives, faster.

`MessageToDict` decides every field's conversion again for every message it meets, which made it
most of the gateway's time per streamed event. Here each message type gets a plan once (field ->
JSON name and converter), and a message is converted by walking its set fields with that plan.
Anything the plan does not cover (extensions, `Any`) goes to `json_format` itself, so the output
never differs; tests/test_proto_json.py holds the two side by side.
"""

from __future__ import annotations

import base64
import datetime
import math
import struct
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

_F = FieldDescriptor
_INT64 = {_F.CPPTYPE_INT64, _F.CPPTYPE_UINT64}
_TO_JSON_STRING = {"google.protobuf.Duration", "google.protobuf.FieldMask"}
_WRAPPERS_FILE = "google/protobuf/wrappers.proto"
_SINGLE = struct.Struct("<f")
_EPOCH = datetime.datetime(1970, 1, 1)
_MIN_TIMESTAMP_S, _MAX_TIMESTAMP_S = -62135596800, 253402300799  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z

Convert = Callable[[Any], Any]
# Per message type: the function that turns one of its messages into a JSON-ready value.
_plans: dict[Descriptor, Convert] = {}


def message_to_dict(message: Message) -> Any:
    """`json_format.MessageToDict(message)`: lowerCamel names, int64 as strings, enums by name."""
    plan = _plans.get(message.DESCRIPTOR)
    if plan is None:
        plan = _plan(message.DESCRIPTOR)
    return plan(message)


def _plan(descriptor: Descriptor) -> Convert:
    name = descriptor.full_name
    if descriptor.file.name == _WRAPPERS_FILE:
        inner = _value_converter(descriptor.fields_by_name["value"])
        plan = (lambda message: inner(message.value)) if inner else (lambda message: message.value)
    elif name == "google.protobuf.Timestamp":
        plan = _timestamp
    elif name in _TO_JSON_STRING:
        plan = _to_json_string
    elif name == "google.protobuf.Struct":
        plan = _struct
    elif name == "google.protobuf.Value":
        plan = _value
    elif name == "google.protobuf.ListValue":
        plan = _list_value
    elif name == "google.protobuf.Any":
        plan = json_format.MessageToDict
    else:
        _plans[descriptor] = json_format.MessageToDict  # stands in while a recursive type is planned
        plan = _regular(descriptor)
    _plans[descriptor] = plan
    return plan


def _regular(descriptor: Descriptor) -> Convert:
    fields: dict[FieldDescriptor, tuple[str, Convert | None]] = {
        field: (field.json_name, _field_converter(field)) for field in descriptor.fields
    }

    def convert(message: Message) -> dict[str, Any]:
        out = {}
        for field, value in message.ListFields():
            known = fields.get(field)
            if known is None:  # an extension: json_format knows how it is named
                return json_format.MessageToDict(message)
            name, converter = known
            out[name] = value if converter is None else converter(value)
        return out

    return convert


def _field_converter(field: FieldDescriptor) -> Convert | None:
    """How a field's value (the whole list or map, when repeated) becomes JSON; None: as it is."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_of = _map_key
        value_of = _value_converter(field.message_type.fields_by_name["value"])
        if value_of is None:
            return lambda mapping: {key_of(key): mapping[key] for key in mapping}
        return lambda mapping: {key_of(key): value_of(mapping[key]) for key in mapping}
    each = _value_converter(field)
    if field.is_repeated:
        return list if each is None else (lambda values: [each(value) for value in values])
    return each


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _value_converter(field: FieldDescriptor) -> Convert | None:
    """How one value of the field's type becomes JSON; None: as it is."""
    cpp_type = field.cpp_type
    if cpp_type == _F.CPPTYPE_MESSAGE:
        return message_to_dict
    if cpp_type == _F.CPPTYPE_ENUM:
        return _enum_converter(field)
    if field.type == _F.TYPE_BYTES:
        return _bytes
    if cpp_type in _INT64:
        return str
    if cpp_type == _F.CPPTYPE_FLOAT:
        return _float32
    if cpp_type == _F.CPPTYPE_DOUBLE:
        return _double
    return None  # strings, booleans, 32-bit integers


def _enum_converter(field: FieldDescriptor) -> Convert:
    enum = field.enum_type
    if enum.full_name == "google.protobuf.NullValue":
        return lambda value: None
    names = {number: value.name for number, value in enum.values_by_number.items()}
    if enum.is_closed:
        return lambda value: names[value] if value in names else _unmappable(enum.full_name, value)
    return lambda value: names.get(value, value)


def _unmappable(enum: str, value: int) -> Any:
    raise json_format.SerializeToJsonError(f"{enum} has no value {value}, which a closed enum cannot carry")


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _double(value: float) -> Any:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def _float32(value: float) -> Any:
    """The shortest decimal that is the same 32-bit float (what json_format prints for `float` fields)."""
    if not math.isfinite(value):
        return _double(value)
    for digits in range(6, 18):
        shortest = float(f"{value:.{digits}g}")
        if _SINGLE.unpack(_SINGLE.pack(shortest))[0] == value:
            return shortest
    return value


def _to_json_string(message: Any) -> str:
    return message.ToJsonString()


def _timestamp(message: Any) -> str:
    """RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as `Timestamp.ToJsonString` writes it."""
    seconds, nanos = message.seconds, message.nanos
    if not (_MIN_TIMESTAMP_S <= seconds <= _MAX_TIMESTAMP_S and 0 <= nanos < 1_000_000_000):
        return message.ToJsonString()  # out of range: raises as json_format does
    text = (_EPOCH + datetime.timedelta(seconds=seconds)).isoformat()
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _struct(message: Any) -> dict[str, Any]:
    fields = message.fields
    return {key: _value(fields[key]) for key in fields}


def _list_value(message: Any) -> list[Any]:
    return [_value(value) for value in message.values]


def _value(message: Any) -> Any:
    kind = message.WhichOneof("kind")
    if kind == "string_value":
        return message.string_value
    if kind == "number_value":
        number = message.number_value
        if not math.isfinite(number):  # as json_format: a non-finite number would read back as a string
            return json_format.MessageToDict(message)
        return number
    if kind == "bool_value":
        return message.bool_value
    if kind == "struct_value":
        return _struct(message.struct_value)
    if kind == "list_value":
        return _list_value(message.list_value)
    return None
