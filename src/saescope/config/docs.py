"""A markdown table of a declared config's fields (for the README and `saescope config-docs`)."""

from __future__ import annotations

import types
import typing
from typing import Any

from saescope.config.schema import REQUIRED, Config, FieldSpec, accepted_text, specs


def markdown_table(cls: type[Config]) -> str:
    """| field | type | default | accepted | flag | what it is |: one row per field, a section's
    fields dotted."""
    lines = [
        "| field | type | default | accepted | flag | what it is |",
        "|---|---|---|---|---|---|",
    ]
    lines += [_row(*row) for row in _rows(cls, "", cli=True)]
    return "\n".join(lines)


def _rows(cls: type[Config], prefix: str, *, cli: bool) -> list[tuple[Any, ...]]:
    """cli=False: the fields of a section declared without flags show none."""
    rows = []
    for spec in specs(cls):
        on_cli = cli and spec.meta.get("cli", True)
        if spec.is_section and spec.type.variants():
            rows += _variant_rows(spec, f"{prefix}{spec.name}.")
            continue
        if spec.is_section:
            rows += _rows(spec.type, f"{prefix}{spec.name}.", cli=on_cli)
            continue
        rows.append(_field_row(spec, prefix, spec.flag() if on_cli else "", spec.default))
    return rows


def _variant_rows(spec: FieldSpec, prefix: str) -> list[tuple[Any, ...]]:
    """A section whose class depends on a value (the architecture's): the base fields with the
    section default's values, then each variant's own fields once, marked with who has them."""
    rows = []
    for field in specs(spec.type):
        default = getattr(spec.default, field.name, field.default)
        rows.append(_field_row(field, prefix, "", default))
    owners: dict[tuple[str, str], list[str]] = {}
    declared: dict[tuple[str, str], FieldSpec] = {}
    base = set(spec.type.field_names())
    for label, cls in spec.type.variants().items():
        for field in specs(cls):
            if field.name not in base:
                key = (field.name, field.meta.get("help", ""))
                owners.setdefault(key, []).append(label)
                declared[key] = field
    for key, field in declared.items():
        rows.append(_field_row(field, prefix, "", field.default, f"{', '.join(owners[key])}: "))
    return rows


def _field_row(
    spec: FieldSpec, prefix: str, flag: str, default: Any, who: str = ""
) -> tuple[Any, ...]:
    return (
        prefix + spec.name,
        type_name(spec.type),
        default,
        accepted_text(spec.type, spec.meta),
        flag,
        who + spec.meta.get("help", ""),
    )


def _row(name: str, tp: str, default: Any, accepted: str, flag: str, help_text: str) -> str:
    shown = "required" if default is REQUIRED else f"`{default!r}`"
    cells = [f"`{name}`", tp, shown, accepted, f"`{flag}`" if flag else "", help_text]
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    return getattr(tp, "__name__", str(tp))
