"""The README's configuration table, rendered from the fields of `mlxhub.config.Settings`.

Every setting documents itself (its variable, default and description live on its field), so
the table cannot drift: `python tools/settings_table.py` rewrites it in README.md, `--check`
fails when README.md differs, and tests/test_settings.py runs that check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from mlxhub.config import Section, Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
HEADER = "| variable | default | meaning |\n| --- | --- | --- |\n"


def shown(field: FieldInfo) -> str:
    """A field's default as the README shows it."""
    default = field.get_default(call_default_factory=True)
    if default in (None, "", (), {}):
        return "unset"
    if isinstance(default, float):
        return f"`{default:g}`"
    return f"`{default}`"


def field_rows(field: FieldInfo) -> list[tuple[str, str, str]]:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "rows" in extra:  # a field that several variables feed documents each of them
        return [(row["variable"], row["default"], row["meaning"]) for row in extra["rows"]]
    if not isinstance(field.validation_alias, str) or not field.description:
        raise ValueError(f"setting {field!r} needs a validation_alias (its variable) and a description")
    return [(f"`{field.validation_alias}`", extra.get("shown") or shown(field), field.description)]


def rows(model: type[Settings | Section] = Settings) -> list[tuple[str, str, str]]:
    """One row per variable, in the order the fields are declared (sections where they sit)."""
    found = []
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
            found += rows(field.annotation)
        else:
            found += field_rows(field)
    return found


def table() -> str:
    return HEADER + "".join(f"| {variable} | {default} | {meaning} |\n" for variable, default, meaning in rows())


def replace_table(readme: str) -> str:
    """README text with its configuration table (from HEADER to the next blank line) regenerated."""
    start = readme.index(HEADER)
    end = readme.index("\n\n", start) + 1
    return readme[:start] + table() + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when README.md's table is not the generated one")
    args = parser.parse_args(argv)
    current = README.read_text()
    wanted = replace_table(current)
    if args.check:
        if wanted != current:
            print("README.md's configuration table differs from the settings; run python tools/settings_table.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
