"""Resource names and model references: one pattern for every name in the hub.

Patterns are matched with `fullmatch`, never `^...$` with `match`: Python's `$` also
matches before a final newline, which would let `demo\n` pass as a look-alike name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME_PATTERN = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"
NAME_RE = re.compile(NAME_PATTERN)
NAME_RULE = (
    "1-64 characters of lower-case letters, digits, '.', '_' or '-', "
    "starting and ending with a letter or digit"
)
RESERVED_ALIASES = frozenset({"latest"})


def name_problem(value: str, what: str = "name") -> str | None:
    """Return why `value` is not a valid name, or None when it is."""
    if not value:
        return f"{what} is empty; give {NAME_RULE}"
    if not NAME_RE.fullmatch(value):
        return f"{what} {value!r} is not valid; use {NAME_RULE}"
    return None


@dataclass(frozen=True)
class ModelReference:
    """`name`, `name@alias` or `name/versions/N` (a bare name means its latest version)."""

    name: str
    alias: str = ""
    version: int = 0

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}/versions/{self.version}"
        if self.alias:
            return f"{self.name}@{self.alias}"
        return self.name


REFERENCE_PATTERN = rf"(?P<name>{NAME_PATTERN})(?:@(?P<alias>{NAME_PATTERN})|/versions/(?P<version>[1-9][0-9]*))?"
_REF_RE = re.compile(REFERENCE_PATTERN)


def parse_reference(text: str) -> ModelReference:
    """Parse a model reference; raise ValueError with the accepted forms."""
    match = _REF_RE.fullmatch(text or "")
    if not match:
        raise ValueError(
            f"model reference {text!r} is not valid; use NAME, NAME@ALIAS or NAME/versions/N ({NAME_RULE})"
        )
    alias = match["alias"] or ""
    if alias == "latest":
        alias = ""
    return ModelReference(match["name"], alias, int(match["version"] or 0))


def version_name(model: str, version: int) -> str:
    return f"{model}/versions/{version}"
