"""A markdown table of a declared config's fields (for the README and `saescope config-docs`)."""

from __future__ import annotations

import types
import typing
from typing import Any

from saescope.config.schema import REQUIRED, Config, accepted_text, specs


def markdown_table(cls: type[Config]) -> str:
    """| field | type | default | accepted | flag | what it is | — one row per field, sections dotted."""
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
        if spec.is_section:
            rows += _rows(spec.type, f"{prefix}{spec.name}.", cli=on_cli)
            continue
        flag = spec.flag() if on_cli else ""
        rows.append(
            (
                prefix + spec.name,
                type_name(spec.type),
                spec.default,
                accepted_text(spec.type, spec.meta),
                flag,
                spec.meta.get("help", ""),
            )
        )
    return rows


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
