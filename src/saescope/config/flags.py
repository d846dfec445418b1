"""Command-line flags derived from a declared config, and the config read back from parsed flags."""

from __future__ import annotations

import argparse
import typing
from typing import Any, TypeVar

from saescope.config.schema import REQUIRED, Config, FieldSpec, parse_count, specs
from saescope.errors import ConfigError

C = TypeVar("C", bound=Config)


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type[Config], *, title: str | None = None
) -> None:
    """One flag per field declared with cli=True; a section's fields go in a group of their own."""
    target: Any = parser.add_argument_group(title) if title else parser
    for spec in specs(cls):
        if not spec.meta.get("cli", True):
            continue
        if spec.is_section:
            add_config_arguments(parser, spec.type, title=spec.name)
        else:
            _add_flag(target, spec)


def config_from_args(cls: type[C], args: argparse.Namespace, **fixed: Any) -> C:
    """The config the flags describe (fields without a flag keep their defaults; fixed wins)."""
    kwargs: dict[str, Any] = {}
    for spec in specs(cls):
        if spec.name in fixed or not spec.meta.get("cli", True):
            continue
        if spec.is_section:
            kwargs[spec.name] = config_from_args(spec.type, args)
        elif hasattr(args, dest(spec)):
            kwargs[spec.name] = _value(spec, getattr(args, dest(spec)))
    return cls(**{**kwargs, **fixed})


def validate_flags(cfg: Config) -> None:
    """cfg.validate(), its error naming the flag (--threads) where the field has one."""
    try:
        cfg.validate()
    except ConfigError as err:
        flag = flag_of(type(cfg), err.field)
        if flag is None:
            raise
        raise ConfigError(flag, err.value, err.accepted) from None


def flag_of(cls: type[Config], field: str) -> str | None:
    """The flag of a field ('corpus.context_length' -> '--context-length'), if it has one."""
    name, _, rest = field.partition(".")
    for spec in specs(cls):
        if spec.name == name and spec.meta.get("cli", True):
            if spec.is_section:
                return flag_of(spec.type, rest) if rest else None
            return None if rest else spec.flag()
    return None


def dest(spec: FieldSpec) -> str:
    return spec.flag().lstrip("-").replace("-", "_")


def _add_flag(group: Any, spec: FieldSpec) -> None:
    help_text = (spec.meta.get("flag_help") or spec.meta["help"]).replace("%", "%%")
    flag = spec.flag()
    if spec.type is bool:
        group.add_argument(flag, action="store_true", help=help_text)
        return
    if spec.default is REQUIRED:
        group.add_argument(flag, required=True, help=help_text)
        return
    kwargs: dict[str, Any] = {"default": spec.default}
    if _repeated(spec.type):
        kwargs.update(action="append", default=None, metavar=spec.name.upper().rstrip("S"))
        help_text += f" (default: {', '.join(spec.default)})".replace("%", "%%")
        group.add_argument(flag, dest=dest(spec), help=help_text, **kwargs)
        return
    if _sequence(spec.type):
        kwargs["default"] = ",".join(str(v) for v in spec.default)
        kwargs["metavar"] = spec.name.upper()
    elif spec.meta.get("count"):
        kwargs["type"] = parse_count
    elif _number_type(spec.type) is not None:
        kwargs["type"] = _number_type(spec.type)
    elif spec.meta.get("choices"):
        kwargs["choices"] = list(spec.meta["choices"])
    if kwargs["default"] not in (None, ""):
        help_text += " (default: %(default)s)"
    group.add_argument(flag, help=help_text, **kwargs)


def _value(spec: FieldSpec, value: Any) -> Any:
    if spec.type is bool:
        return not value if spec.flag().startswith("--no-") else value
    if _repeated(spec.type):
        return spec.default if value is None else value
    if _sequence(spec.type) and isinstance(value, str):
        return _parse_ints(spec, value)
    return value


def _repeated(tp: Any) -> bool:
    """A list of strings: one flag given once per item (--hook A --hook B)."""
    return typing.get_origin(tp) is list and typing.get_args(tp) == (str,)


def _number_type(tp: Any) -> type | None:
    """int or float for a field of that type, or of that type or None (`int | None`)."""
    members = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    return members[0] if len(members) == 1 and members[0] in (int, float) else None


def _sequence(tp: Any) -> bool:
    return typing.get_origin(tp) in (list, tuple)


def _parse_ints(spec: FieldSpec, text: str) -> Any:
    """'16,8' -> (16, 8) for a tuple field, '3,17' -> [3, 17] for a list field; a tuple of
    strings splits at the commas ('detection,fuzzing' -> ('detection', 'fuzzing'))."""
    args = typing.get_args(spec.type)
    if args and args[0] is str:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    fixed = typing.get_origin(spec.type) is tuple and Ellipsis not in args
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = None
    if values is None or (fixed and len(values) != len(args)):
        count = f"{len(args)} " if fixed else ""
        raise ConfigError(
            spec.flag(), text, f"{count}comma-separated integers, e.g. {_example(spec)}"
        )
    return tuple(values) if typing.get_origin(spec.type) is tuple else values


def _example(spec: FieldSpec) -> str:
    return ",".join(str(v) for v in spec.default) or "3,17"
