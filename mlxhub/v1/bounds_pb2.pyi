from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StringForm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRING_FORM_UNSPECIFIED: _ClassVar[StringForm]
    STRING_FORM_NAME: _ClassVar[StringForm]
    STRING_FORM_MODEL_REFERENCE: _ClassVar[StringForm]
    STRING_FORM_UUID: _ClassVar[StringForm]
    STRING_FORM_LINE: _ClassVar[StringForm]
    STRING_FORM_TEXT: _ClassVar[StringForm]
STRING_FORM_UNSPECIFIED: StringForm
STRING_FORM_NAME: StringForm
STRING_FORM_MODEL_REFERENCE: StringForm
STRING_FORM_UUID: StringForm
STRING_FORM_LINE: StringForm
STRING_FORM_TEXT: StringForm
BOUNDS_FIELD_NUMBER: _ClassVar[int]
bounds: _descriptor.FieldDescriptor

class FieldBounds(_message.Message):
    __slots__ = ("minimum", "maximum", "exclusive_minimum", "exclusive_maximum", "min_length", "max_length", "max_items", "form", "items", "keys", "allowed")
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_MINIMUM_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    MIN_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    FORM_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    minimum: float
    maximum: float
    exclusive_minimum: bool
    exclusive_maximum: bool
    min_length: int
    max_length: int
    max_items: int
    form: StringForm
    items: FieldBounds
    keys: FieldBounds
    allowed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., exclusive_minimum: _Optional[bool] = ..., exclusive_maximum: _Optional[bool] = ..., min_length: _Optional[int] = ..., max_length: _Optional[int] = ..., max_items: _Optional[int] = ..., form: _Optional[_Union[StringForm, str]] = ..., items: _Optional[_Union[FieldBounds, _Mapping]] = ..., keys: _Optional[_Union[FieldBounds, _Mapping]] = ..., allowed: _Optional[_Iterable[str]] = ...) -> None: ...
