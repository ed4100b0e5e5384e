"""The gateway's compiled proto -> JSON conversion gives exactly what json_format.MessageToDict
gives, for every response type the gateway serves, filled at random, and for the edge values
of each scalar kind."""

from __future__ import annotations

import math
import random

import pytest
from google.protobuf import any_pb2, json_format, struct_pb2, timestamp_pb2, wrappers_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2, status_pb2

from gateway.routes import load_bindings
from mlxhub.proto_json import message_to_dict
from mlxhub.v1 import registry_pb2

F = FieldDescriptor
EDGE = {
    F.TYPE_INT64: [0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1],
    F.TYPE_UINT64: [0, 2**64 - 1],
    F.TYPE_INT32: [0, -1, 2**31 - 1, -(2**31)],
    F.TYPE_UINT32: [0, 2**32 - 1],
    F.TYPE_DOUBLE: [0.0, -0.0, 1.0, 0.1, 1e300, -2.5, math.inf, -math.inf, math.nan],
    F.TYPE_FLOAT: [0.0, 0.1, 1.0 / 3, 3.4e38, -1.5, math.inf, math.nan],
    F.TYPE_STRING: ["", "a", "ünïcode ✓", "quote\"and\\slash\n"],
    F.TYPE_BYTES: [b"", b"\x00\xff", b"hello world"],
    F.TYPE_BOOL: [True, False],
}


def scalar(field: FieldDescriptor, rng: random.Random):
    if field.type == F.TYPE_ENUM:
        numbers = list(field.enum_type.values_by_number)
        return rng.choice(numbers + ([max(numbers) + 7] if not field.enum_type.is_closed else []))
    for kind in (field.type, {F.TYPE_SINT64: F.TYPE_INT64, F.TYPE_SFIXED64: F.TYPE_INT64, F.TYPE_FIXED64: F.TYPE_UINT64,
                              F.TYPE_SINT32: F.TYPE_INT32, F.TYPE_SFIXED32: F.TYPE_INT32,
                              F.TYPE_FIXED32: F.TYPE_UINT32}.get(field.type)):
        if kind in EDGE:
            value = rng.choice(EDGE[kind])
            return value
    raise AssertionError(f"no sample for {field.full_name}")


def fill_struct(struct: struct_pb2.Struct, rng: random.Random, depth: int) -> None:
    for i in range(rng.randint(0, 4)):
        fill_value(struct.fields[f"k{i}"], rng, depth + 1)


def fill_value(value: struct_pb2.Value, rng: random.Random, depth: int) -> None:
    kinds = ["null", "number", "string", "bool"] + (["struct", "list"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "null":
        value.null_value = struct_pb2.NULL_VALUE
    elif kind == "number":
        value.number_value = rng.choice([0.0, 1.0, -2.5, 1e20, 3.0])
    elif kind == "string":
        value.string_value = rng.choice(["", "x", "✓"])
    elif kind == "bool":
        value.bool_value = rng.random() < 0.5
    elif kind == "struct":
        fill_struct(value.struct_value, rng, depth)
    else:
        for _ in range(rng.randint(0, 3)):
            fill_value(value.list_value.values.add(), rng, depth + 1)


def fill(message, rng: random.Random, depth: int = 0) -> None:
    """Set a random subset of the message's fields, recursively (to a bounded depth)."""
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Struct":
        return fill_struct(message, rng, depth)
    if name == "google.protobuf.Value":
        return fill_value(message, rng, depth)
    if name == "google.protobuf.Timestamp":
        message.seconds = rng.choice([0, -1, -62135596800, 253402300799, rng.randint(-10**10, 4 * 10**9)])
        message.nanos = rng.choice([0, 5_000_000, 120_000, 7, 999_999_999])
        return None
    if name == "google.protobuf.Duration":
        message.seconds, message.nanos = rng.randint(0, 10_000), rng.choice([0, 5_000_000, 7])
        return None
    if name == "google.protobuf.FieldMask":
        message.paths.extend(rng.sample(["a", "b_c", "d.e_f"], rng.randint(0, 3)))
        return None
    if name == "google.protobuf.Any":
        message.Pack(error_details_pb2.ErrorInfo(reason="R", domain="d", metadata={"k": "v"}))
        return None
    for field in message.DESCRIPTOR.fields:
        if rng.random() < 0.35 or (field.message_type is not None and depth >= 4):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = (field.message_type.fields_by_name[n] for n in ("key", "value"))
            mapping = getattr(message, field.name)
            for _ in range(rng.randint(0, 3)):
                key = scalar(key_field, rng)
                if value_field.message_type is not None:
                    fill(mapping[key], rng, depth + 1)
                else:
                    mapping[key] = scalar(value_field, rng)
        elif field.is_repeated:
            values = getattr(message, field.name)
            for _ in range(rng.randint(0, 3)):
                if field.message_type is not None:
                    fill(values.add(), rng, depth + 1)
                else:
                    values.append(scalar(field, rng))
        elif field.message_type is not None:
            fill(getattr(message, field.name), rng, depth + 1)
            getattr(message, field.name).SetInParent()
        else:
            setattr(message, field.name, scalar(field, rng))
    return None


def same(ours, theirs) -> bool:
    """Equal as JSON values, with NaN equal to itself (json_format writes it as the string 'NaN')."""
    return ours == theirs and type(ours) is type(theirs) and (
        not isinstance(ours, dict) or all(same(ours[k], theirs[k]) for k in ours)) and (
        not isinstance(ours, list) or all(same(a, b) for a, b in zip(ours, theirs, strict=True)))


RESPONSE_TYPES = sorted({b.response_class for b in load_bindings()}, key=lambda c: c.DESCRIPTOR.full_name)


@pytest.mark.parametrize("message_class", RESPONSE_TYPES, ids=lambda c: c.DESCRIPTOR.name)
def test_every_response_type_converts_as_json_format_does(message_class):
    rng = random.Random(message_class.DESCRIPTOR.full_name)
    for _ in range(60):
        message = message_class()
        fill(message, rng)
        expected = json_format.MessageToDict(message)
        got = message_to_dict(message)
        assert same(got, expected), (message, got, expected)
        assert list(got) == list(expected)  # the same key order too


def test_well_known_types_and_edges_convert_as_json_format_does():
    value = struct_pb2.Value()
    value.struct_value.update({"a": [1, "x", None, {"b": True}], "n": 2.5})
    stamp = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=123_000_000)
    packed = any_pb2.Any()
    packed.Pack(registry_pb2.Model(name="m", latest_version=3))
    status = status_pb2.Status(code=5, message="gone")
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="NOT_FOUND"))
    for message in (value, stamp, packed, status, wrappers_pb2.Int64Value(value=5), wrappers_pb2.FloatValue(value=0.1),
                    wrappers_pb2.BytesValue(value=b"\x01"), struct_pb2.ListValue(), registry_pb2.Model()):
        assert same(message_to_dict(message), json_format.MessageToDict(message)), message


def test_a_timestamp_out_of_range_is_refused_as_json_format_refuses_it():
    for seconds, nanos in ((253402300800, 0), (-62135596801, 0), (0, 1_000_000_000)):
        stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
        with pytest.raises(ValueError):
            json_format.MessageToDict(stamp)
        with pytest.raises(ValueError):
            message_to_dict(stamp)


def test_a_non_finite_struct_number_is_refused_as_json_format_refuses_it():
    value = struct_pb2.Value(number_value=math.inf)
    with pytest.raises(ValueError):
        json_format.MessageToDict(value)
    with pytest.raises(ValueError):
        message_to_dict(value)
