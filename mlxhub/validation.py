"""Checks on values a service is about to record in an event: text without control
characters and numbers that are finite.

An event is forever: a value PostgreSQL cannot store (NUL in `text` or `jsonb`,
NaN or Infinity in `jsonb`) would be committed to the log and then stop every read
model that projects it. So such values are refused at the edge, as INVALID_ARGUMENT
naming the field.

The rule: single-line fields (names, paths, tag keys and values, references) admit no
control character at all; free text (descriptions) admits tab, line feed and carriage
return, and no other C0 or C1 control, DEL, or NUL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mlxhub.errors import InvalidArgument

# The control characters each kind of field refuses, as the inside of a character class
# (ECMA-262 and Python alike, so the OpenAPI document's patterns are built from the same text).
LINE_CONTROL_CHARS = r"\x00-\x1f\x7f-\x9f"
TEXT_CONTROL_CHARS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
LINE_CONTROLS = re.compile(f"[{LINE_CONTROL_CHARS}]")
TEXT_CONTROLS = re.compile(f"[{TEXT_CONTROL_CHARS}]")


def control_problem(value: str, field: str, *, multiline: bool) -> str | None:
    """Why `value` cannot be stored (the first control character it has and where), or None.
    `multiline`: free text, where tab and line breaks are fine."""
    found = (TEXT_CONTROLS if multiline else LINE_CONTROLS).search(value)
    if found is None:
        return None
    allowed = "only tab and line breaks are allowed" if multiline else "this field takes a single line of text"
    return f"{field} contains the control character U+{ord(found.group()):04X} at offset {found.start()}; remove it ({allowed})"


def check_line(value: str, field: str) -> None:
    """A single-line value: no control characters at all."""
    problem = control_problem(value, field, multiline=False)
    if problem:
        raise InvalidArgument(problem, field=field)


def check_text(value: str, field: str) -> None:
    """Free text: tab and line breaks are fine, NUL and other control characters are not."""
    problem = control_problem(value, field, multiline=True)
    if problem:
        raise InvalidArgument(problem, field=field)


def check_number(value: float, field: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"{field} is {value}; give a finite number (NaN and Infinity cannot be stored)",
                              field=field)


def check_numbers(values: Mapping[str, float], field: str) -> None:
    """A map of names to numbers (metrics): single-line names, finite values."""
    for key, value in values.items():
        check_line(key, f"{field} key")
        check_number(value, f"{field}[{key}]")


def check_values(value: Any, field: str) -> None:
    """A nested structure (dicts, lists, strings, numbers) from a request, checked throughout:
    strings as free text, dict keys as single lines, numbers finite."""
    if isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, float):
        check_number(value, field)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_line(str(key), f"{field} key")
            check_values(item, f"{field}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_values(item, f"{field}[{index}]")
