"""An OpenAPI 3.1 document generated from the same bindings the gateway serves.

Generated descriptors carry no comments, so summaries are method and message
names. Schemas follow protobuf's canonical JSON mapping: 64-bit integers are
strings, enums are their value names, well-known types have their JSON forms.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.rpc import status_pb2

from gateway.routes import Binding
from gateway.transcode import find_field, is_map

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
        properties = {f.json_name: self.field(f) for f in descriptor.fields}
        return {"type": "object", "title": descriptor.name, "properties": properties}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if is_map(field):
            return {"type": "object", "additionalProperties": self.field(field.message_type.fields_by_name["value"])}
        if field.type == _T.TYPE_MESSAGE:
            schema = self.ref(field.message_type)
        elif field.type == _T.TYPE_ENUM:
            schema = self.ref(field.enum_type)
        else:
            schema = dict(_SCALARS[field.type])
        return {"type": "array", "items": schema} if field.is_repeated else schema


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
            {"name": name, "in": "query", "required": False, "schema": schemas.field(field)}
            for name, field in _query_fields(request, skip)
        ]
    operation: dict[str, Any] = {
        "operationId": f"{method.containing_service.name}_{method.name}",
        "summary": method.name,
        "tags": [method.containing_service.name],
        "parameters": parameters,
    }
    if binding.body:
        body_schema = (
            schemas.ref(request) if binding.body == "*" else schemas.field(request.fields_by_name[binding.body])
        )
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
