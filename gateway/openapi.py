"""An OpenAPI 3.1 document generated from the same bindings the gateway serves.

Generated descriptors carry no comments, so summaries are method and message
names. Schemas follow protobuf's canonical JSON mapping: 64-bit integers are
strings, enums are their value names, well-known types have their JSON forms.
The constraints come from the protos' field options, the ones the services
enforce (mlxhub.bounds): `google.api.field_behavior` gives `required` and
`readOnly`, `(mlxhub.v1.bounds)` the ranges, lengths, sizes and name patterns.
"""

from __future__ import annotations

import re
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.rpc import status_pb2

from gateway.routes import Binding
from gateway.transcode import find_field, is_map
from mlxhub import bounds, names, validation
from mlxhub.v1 import bounds_pb2

_T = FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "uint32"},
    _T.TYPE_FIXED32: {"type": "integer", "format": "uint32"},
    _T.TYPE_INT64: {"type": "string", "format": "int64"},
    _T.TYPE_SINT64: {"type": "string", "format": "int64"},
    _T.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    _T.TYPE_UINT64: {"type": "string", "format": "uint64"},
    _T.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WRAPPERS = {
    "Double": _T.TYPE_DOUBLE,
    "Float": _T.TYPE_FLOAT,
    "Int64": _T.TYPE_INT64,
    "UInt64": _T.TYPE_UINT64,
    "Int32": _T.TYPE_INT32,
    "UInt32": _T.TYPE_UINT32,
    "Bool": _T.TYPE_BOOL,
    "String": _T.TYPE_STRING,
    "Bytes": _T.TYPE_BYTES,
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated lowerCamel field paths."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    **{f"google.protobuf.{name}Value": _SCALARS[kind] for name, kind in _WRAPPERS.items()},
}
# The range of each 32-bit type (JSON numbers; proto JSON refuses values outside it).
_INT32_RANGE = {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}
_64_BIT = {_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64, _T.TYPE_UINT64, _T.TYPE_FIXED64}
# ECMA-262 patterns (JSON Schema's dialect) of the string forms: Python's named groups dropped.
_FORM_PATTERNS = {
    bounds_pb2.STRING_FORM_NAME: f"^{names.NAME_PATTERN}$",
    bounds_pb2.STRING_FORM_MODEL_REFERENCE: "^" + re.sub(r"\(\?P<\w+>", "(", names.REFERENCE_PATTERN) + "$",
    bounds_pb2.STRING_FORM_UUID: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    bounds_pb2.STRING_FORM_LINE: f"^[^{validation.LINE_CONTROL_CHARS}]*$",
    bounds_pb2.STRING_FORM_TEXT: f"^[^{validation.TEXT_CONTROL_CHARS}]*$",
}
_UNSIGNED_64 = {_T.TYPE_UINT64, _T.TYPE_FIXED64}


def _number_keywords(field: FieldDescriptor, b: bounds_pb2.FieldBounds, schema: dict[str, Any]) -> None:
    """minimum / maximum (JSON numbers) or a digits pattern (64-bit integers travel as strings)."""
    if field.type in _64_BIT:
        schema["pattern"] = "^[0-9]+$" if field.type in _UNSIGNED_64 else "^-?[0-9]+$"
        if b.HasField("minimum") and not b.HasField("maximum") and b.minimum in (0, 1) and not b.exclusive_minimum:
            schema["pattern"] = "^[0-9]+$" if b.minimum == 0 else "^0*[1-9][0-9]*$"
        elif b.HasField("minimum") or b.HasField("maximum"):
            schema["description"] = f"An integer {bounds.range_text(b)}."
        return
    low, high = _INT32_RANGE.get(schema.get("format", ""), (None, None))
    if b.HasField("minimum"):
        low = b.minimum if low is None else max(low, b.minimum)
    if b.HasField("maximum"):
        high = b.maximum if high is None else min(high, b.maximum)
    integral = schema["type"] == "integer"
    for key, value, exclusive in (("minimum", low, b.exclusive_minimum), ("maximum", high, b.exclusive_maximum)):
        if value is None:
            continue
        value = int(value) if integral or float(value).is_integer() else value
        schema[f"exclusive{key.title()}" if exclusive else key] = value


def _constrained(field: FieldDescriptor, b: bounds_pb2.FieldBounds, schema: dict[str, Any]) -> dict[str, Any]:
    """A scalar schema with the bounds the services enforce on one value."""
    if field.type == _T.TYPE_STRING:
        if b.min_length:
            schema["minLength"] = b.min_length
        if b.max_length:
            schema["maxLength"] = b.max_length
        if b.form in _FORM_PATTERNS:
            schema["pattern"] = _FORM_PATTERNS[b.form]
        if b.form == bounds_pb2.STRING_FORM_UUID:
            schema["format"] = "uuid"
        if b.allowed:
            schema["enum"] = list(b.allowed)
    elif schema.get("type") in ("integer", "number") or field.type in _64_BIT:
        _number_keywords(field, b, schema)
    return schema


def _excludes_zero(field: FieldDescriptor, b: bounds_pb2.FieldBounds) -> bool:
    """A singular number whose zero value (unset: the default) lies outside its declared range."""
    if field.is_repeated or field.type not in _SCALARS or field.type in (_T.TYPE_STRING, _T.TYPE_BYTES, _T.TYPE_BOOL):
        return False
    if not (b.HasField("minimum") or b.HasField("maximum")):
        return False
    return not bounds.accepts(b, 0)


class _Schemas:
    """Collects `components/schemas` while handing out `$ref`s."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, descriptor: Descriptor | EnumDescriptor) -> dict[str, Any]:
        name = descriptor.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placeholder first: messages may be recursive
            self.components[name] = self._define(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def _define(self, descriptor: Descriptor | EnumDescriptor) -> dict[str, Any]:
        if isinstance(descriptor, EnumDescriptor):
            return {"type": "string", "enum": [v.name for v in descriptor.values], "title": descriptor.name}
        return self.message(descriptor)

    def message(self, descriptor: Descriptor, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        """An object schema of the message's fields (less `skip`: fields a request takes from its path).
        Unknown fields are refused by the gateway, so none are allowed."""
        fields = [f for f in descriptor.fields if f.name not in skip]
        schema: dict[str, Any] = {
            "type": "object",
            "title": descriptor.name,
            "properties": {f.json_name: self.field(f) for f in fields},
            "additionalProperties": False,
        }
        required = [f.json_name for f in fields if bounds.is_required(f)]
        if required:
            schema["required"] = required
        return schema

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        b = bounds.bounds(field)
        if is_map(field):
            key, value = (field.message_type.fields_by_name[n] for n in ("key", "value"))
            schema: dict[str, Any] = {"type": "object", "additionalProperties": self.value(value, b.items)}
            if b.max_items:
                schema["maxProperties"] = b.max_items
            keys = _constrained(key, b.keys, {"type": "string"})
            if len(keys) > 1:
                schema["propertyNames"] = keys
        elif field.is_repeated:
            schema = {"type": "array", "items": self.value(field, b.items)}
            if b.max_items:
                schema["maxItems"] = b.max_items
        else:
            schema = self.value(field, b)
            if _excludes_zero(field, b) and not bounds.is_required(field):
                schema["description"] = "0 or omitted: the default."
        if bounds.is_required(field):  # proto3 reads an empty value as unset, so it must not be empty
            if field.is_repeated:
                schema["minItems" if schema["type"] == "array" else "minProperties"] = 1
            elif field.type == _T.TYPE_STRING:
                schema["minLength"] = max(1, schema.get("minLength", 0))
        behaviors = bounds.behaviors(field)
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True
        if field_behavior_pb2.IMMUTABLE in behaviors:
            schema["description"] = "Set when the resource is created; it cannot change."
        return schema

    def value(self, field: FieldDescriptor, b: bounds_pb2.FieldBounds) -> dict[str, Any]:
        """The schema of one value of `field` (the field, an element, or a map value)."""
        if field.type == _T.TYPE_MESSAGE:
            return self.ref(field.message_type)
        if field.type == _T.TYPE_ENUM:
            return self.ref(field.enum_type)
        return _constrained(field, b, dict(_SCALARS[field.type]))


def _query_fields(descriptor: Descriptor, skip: set[str], prefix: str = "", depth: int = 0):
    """(dotted JSON name, field) for every field a query string can set."""
    for field in descriptor.fields:
        path = prefix + field.json_name
        if field.name in skip or is_map(field):
            continue
        is_plain_message = field.type == _T.TYPE_MESSAGE and field.message_type.full_name not in _WELL_KNOWN
        if is_plain_message:
            if not field.is_repeated and depth < 3:
                yield from _query_fields(field.message_type, set(), path + ".", depth + 1)
        else:
            yield path, field


def _field_at(descriptor: Descriptor, dotted: str) -> FieldDescriptor:
    *parents, leaf = dotted.split(".")
    for name in parents:
        descriptor = find_field(descriptor, name).message_type
    return find_field(descriptor, leaf)


def _operation(binding: Binding, schemas: _Schemas) -> dict[str, Any]:
    method = binding.method
    request = method.input_type
    path_fields = {v.split(".")[0] for v in binding.template.variables}
    parameters = [
        {"name": v, "in": "path", "required": True, "schema": schemas.field(_field_at(request, v))}
        for v in binding.template.variables
    ]
    if binding.body != "*":
        skip = path_fields | {binding.body}
        parameters += [
            {"name": name, "in": "query", "required": "." not in name and bounds.is_required(field),
             "schema": schemas.field(field)}
            for name, field in _query_fields(request, skip)
        ]
    operation: dict[str, Any] = {
        "operationId": f"{method.containing_service.name}_{method.name}",
        "summary": method.name,
        "tags": [method.containing_service.name],
        "parameters": parameters,
    }
    if binding.body:
        if binding.body != "*":
            body_schema = schemas.field(request.fields_by_name[binding.body])
        elif path_fields:  # the path's fields come from the path, the rest from the body
            body_schema = schemas.message(request, frozenset(path_fields))
        else:
            body_schema = schemas.ref(request)
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    result = schemas.ref(method.output_type)
    if binding.response_body:
        result = schemas.field(method.output_type.fields_by_name[binding.response_body])
    status_ref = schemas.ref(status_pb2.Status.DESCRIPTOR)
    if binding.server_streaming:
        content = {
            "application/x-ndjson": {
                "schema": {
                    "type": "object",
                    "description": "One JSON object per line: a message, or a final error.",
                    "properties": {"result": result, "error": status_ref},
                }
            },
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": f"Server-sent events: `data: <{method.output_type.name} JSON>` per message; "
                    "`event: error` with a google.rpc.Status on failure. Sent when Accept is text/event-stream.",
                }
            },
        }
        description = f"A stream of {method.output_type.name}"
    else:
        content = {"application/json": {"schema": result}}
        description = method.output_type.name
    operation["responses"] = {
        "200": {"description": description, "content": content},
        "default": {
            "description": "An error: google.rpc.Status",
            "content": {"application/json": {"schema": status_ref}},
        },
    }
    return operation


def openapi_document(bindings: list[Binding], *, auth_enabled: bool = False, title: str = "MLX Hub") -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: dict[str, int] = {}
    for binding in bindings:
        operation = _operation(binding, schemas)
        seen = operation_ids[operation["operationId"]] = operation_ids.get(operation["operationId"], 0) + 1
        if seen > 1:  # an additional binding of the same RPC
            operation["operationId"] += f"_{seen}"
        paths.setdefault(binding.template.openapi_path, {})[binding.http_method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "v1"},
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.components.items()))},
    }
    if auth_enabled:
        document["components"]["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"apiKey": []}]
    return document
