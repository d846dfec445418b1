"""Configs declared once: dataclass fields carry their help, accepted range and CLI flag.

From that one declaration come the checks (with messages naming the field, the value and what is
accepted), construction from dicts and YAML (unknown names get the nearest known one suggested),
dotted key=value overrides, argparse flags with help and defaults, and a markdown table.

Declare a config like this::

    @dataclass
    class ExampleConfig(Config):
        '''Settings of one evaluation.'''

        corpus: CorpusConfig = section(CorpusConfig, "the text evaluated on")
        n_tokens: int = setting(8192, "tokens to evaluate on", low=1, count=True, flag="--tokens")
        dtype: str = setting("float32", "compute dtype", choices=("float32", "bfloat16"))

    cfg = ExampleConfig.from_yaml("eval.yaml", ["n_tokens=16k", "corpus.context_length=64"])
    cfg.validate()  # raises ConfigError("n_tokens", 0, "an integer >= 1") and the like

Override validate() for checks beyond single fields (call super().validate() first);
check_fields() runs the declared checks alone.

Construction normalises (count strings such as "2.5M" to ints, "1e-3" to floats, mappings to
sections, lists to tuples); validate() only checks and never changes the config.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from saescope.errors import ConfigError, SaescopeError

C = TypeVar("C", bound="Config")

_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}
COUNT_EXAMPLES = "a count such as 100000, 100k, 2.5M or 1e6"


class CountError(ValueError, argparse.ArgumentTypeError):
    """Not a count; as an ArgumentTypeError, argparse prints its message as it is."""


def parse_count(text: str) -> int:
    """'100000', '100k', '2.5M', '1e6' -> int; CountError for anything else."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbg]?)\s*", str(text).lower())
    if not match:
        raise CountError(f"got {text!r}; expected {COUNT_EXAMPLES}")
    return int(float(match.group(1)) * _SUFFIXES[match.group(2)])


REQUIRED: Any = dataclasses.MISSING  # setting(REQUIRED, ...): a field without a default


def setting(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[str] | None = None,
    count: bool = False,
    note: str | None = None,
    accepted: str | None = None,
    flag: str | None = None,
    flag_help: str | None = None,
    cli: bool = True,
    allow_empty: bool = False,
) -> Any:
    """A config field. low/high bound numbers (and list items); count accepts 100k / 2.5M;
    note is added to the accepted text; accepted replaces it; flag renames the CLI option
    (a bool that defaults to true gets --no-NAME) and flag_help its help; cli=False keeps it
    off the command line."""
    meta = {
        "help": help,
        "low": low,
        "high": high,
        "choices": tuple(choices) if choices else None,
        "count": count,
        "note": note,
        "accepted": accepted,
        "flag": flag,
        "flag_help": flag_help,
        "cli": cli,
        "allow_empty": allow_empty,
    }
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(
    cls: type[Config],
    help: str,
    *,
    cli: bool = True,
    factory: typing.Callable[[], Config] | None = None,
) -> Any:
    """A nested config: its fields are written `name.field` in overrides and tables. factory
    makes the default where cls alone cannot (a section whose class depends on a value)."""
    return dataclasses.field(
        default_factory=factory or cls, metadata={"help": help, "section": True, "cli": cli}
    )


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One declared field with its resolved type."""

    name: str
    type: Any
    default: Any
    meta: dict[str, Any]

    @property
    def is_section(self) -> bool:
        return bool(self.meta.get("section"))

    def flag(self) -> str:
        if self.meta.get("flag"):
            return self.meta["flag"]
        base = self.name.replace("_", "-")
        return f"--no-{base}" if self.type is bool and self.default is True else f"--{base}"


class Config:
    """Base of the declared configs (subclasses are dataclasses whose fields use
    setting/section)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __post_init__(self) -> None:
        for spec in specs(type(self)):
            value = getattr(self, spec.name)
            normalised = _normalise(spec, value)
            if normalised is not value:
                object.__setattr__(self, spec.name, normalised)

    # ---- construction --------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> list[str]:
        return [spec.name for spec in specs(cls)]

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any], *, where: str = "") -> C:
        """Build from a mapping (as read from YAML/JSON); an
        unknown name is an error with a hint."""
        if not isinstance(values, dict):
            raise ConfigError(
                where.rstrip(".") or cls.__name__, values, "a mapping of field: value"
            )
        check_field_names(values, cls.field_names(), where)
        kwargs = {}
        for spec in specs(cls):
            if spec.name not in values:
                continue
            value = values[spec.name]
            if spec.is_section and isinstance(value, dict):
                value = spec.type.from_dict(value, where=f"{where}{spec.name}.")
            kwargs[spec.name] = value
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls: type[C], path: str | Path, overrides: list[str] | None = None) -> C:
        return cls.from_dict(merge(read_yaml(path), parse_overrides(overrides or [])))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self: C, **changes: Any) -> C:
        check_field_names(changes, self.field_names())
        return dataclasses.replace(self, **changes)

    def with_overrides(self: C, overrides: list[str]) -> C:
        """This config with `name=value` / `section.name=value` items applied."""
        return type(self).from_dict(merge(self.to_dict(), parse_overrides(overrides)))

    def updated(self: C, changes: dict[str, Any]) -> C:
        """This config with {"name": value, "section.name": value} applied (checked again)."""
        return type(self).from_dict(merge(self.to_dict(), nest_dotted(changes)))

    @classmethod
    def variants(cls) -> dict[str, type[Config]]:
        """For a section whose class a value picks (e.g. the architecture's): each possible
        class by the names that pick it, for the docs. Empty for an ordinary config."""
        return {}

    # ---- checks --------------------------------------------------------------------------

    def validate(self) -> None:
        """Check the config; subclasses add checks that look past the fields (files, sizes)."""
        self.check_fields()

    def check_fields(self) -> None:
        """Check every field against its declaration (sections too, by their own check_fields);
        raise ConfigError for the first bad one."""
        for spec in specs(type(self)):
            check_field(spec, getattr(self, spec.name))


@functools.cache
def specs(cls: type[Config]) -> tuple[FieldSpec, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        out.append(FieldSpec(f.name, hints[f.name], default, dict(f.metadata)))
    return tuple(out)


# ---- normalisation (at construction) -------------------------------------------------------


def _normalise(spec: FieldSpec, value: Any) -> Any:
    if spec.is_section:
        return (
            spec.type.from_dict(value, where=f"{spec.name}.") if isinstance(value, dict) else value
        )
    return _normalise_value(spec.type, spec.meta, value)


def _normalise_value(tp: Any, meta: dict[str, Any], value: Any) -> Any:
    """Count strings to ints, numeric strings to floats, lists to tuples; the rest is left for
    validate() to judge."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return value
        for member in args:
            if _accepts_shape(member, value):
                return _normalise_value(member, meta, value)
        return value
    if origin is tuple and isinstance(value, list):
        value = tuple(value)
    if origin in (list, tuple) and isinstance(value, list | tuple):
        items = [_normalise_value(args[0], meta, v) for v in value]
        return type(value)(items) if items != list(value) else value
    if tp is int and meta.get("count") and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return parse_count(value)
            except ValueError:
                return value
    if tp is float and isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _accepts_shape(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return isinstance(value, list | tuple)
    return not isinstance(value, list | tuple)


# ---- checks -----------------------------------------------------------------------------------


def check_field(spec: FieldSpec, value: Any) -> None:
    if spec.is_section:
        if not isinstance(value, spec.type):
            raise ConfigError(spec.name, value, f"a mapping of {spec.type.__name__} fields")
        try:
            value.check_fields()
        except ConfigError as err:
            raise ConfigError(f"{spec.name}.{err.field}", err.value, err.accepted) from None
        return
    if not _fits(spec.type, spec.meta, value):
        raise ConfigError(spec.name, value, accepted_text(spec.type, spec.meta, value))


def validate_section(name: str, value: Config) -> None:
    """value.validate() (its declared checks and its own), an error naming `name.field`."""
    try:
        value.validate()
    except ConfigError as err:
        raise ConfigError(f"{name}.{err.field}", err.value, err.accepted) from None


def _fits(tp: Any, meta: dict[str, Any], value: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return any(_fits(member, meta, value) for member in args)
    if tp is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_fits(args[0], meta, v) for v in value)
    if origin is tuple:
        same = len(args) == 2 and args[1] is Ellipsis
        return (
            isinstance(value, tuple)
            and (same or len(value) == len(args))
            and all(_fits(args[0], meta, v) for v in value)
        )
    if tp is bool:
        return isinstance(value, bool)
    if tp is int or tp is float:
        kinds = int if tp is int else int | float
        return (
            isinstance(value, kinds)
            and not isinstance(value, bool)
            and not (isinstance(value, float) and math.isnan(value))
            and (meta.get("low") is None or value >= meta["low"])
            and (meta.get("high") is None or value <= meta["high"])
        )
    if tp is str:
        if not isinstance(value, str):
            return False
        if meta.get("choices"):
            return value in meta["choices"]
        return meta.get("allow_empty") or bool(value.strip())
    return isinstance(value, tp)


def accepted_text(tp: Any, meta: dict[str, Any], value: Any = None) -> str:
    """What a field accepts, in words (the end of its error message and its docs column)."""
    if meta.get("accepted"):
        return meta["accepted"]
    text = _describe(tp, meta)
    if meta.get("choices") and isinstance(value, str):
        hint = difflib.get_close_matches(value, meta["choices"], n=1)
        if hint:
            text += f" (did you mean {hint[0]!r}?)"
    if meta.get("note"):
        text += f" ({meta['note']})"
    return text


def _describe(tp: Any, meta: dict[str, Any]) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        parts = [_describe(m, meta) for m in args if m is not type(None)]
        text = " or ".join(parts)
        return text + ", or null" if type(None) in args else text
    if origin is list:
        return f"a list of {_plural(_describe(args[0], meta))}"
    if origin is tuple:
        n = "" if len(args) == 2 and args[1] is Ellipsis else f"{len(args)} "
        return f"{n}{_plural(_describe(args[0], meta))}".strip()
    if tp is bool:
        return "true or false"
    if tp is int or tp is float:
        noun = "an integer" if tp is int else "a number"
        low, high = meta.get("low"), meta.get("high")
        if low is not None and high is not None:
            return f"{noun} from {low:g} to {high:g}"
        if low is not None:
            return f"{noun} >= {low:g}"
        if high is not None:
            return f"{noun} <= {high:g}"
        return noun
    if tp is str:
        if meta.get("choices"):
            return f"one of {', '.join(meta['choices'])}"
        return "a string" if meta.get("allow_empty") else "a non-empty string"
    return getattr(tp, "__name__", str(tp))


def _plural(text: str) -> str:
    """'an integer >= 0' -> 'integers >= 0', 'a non-empty string' -> 'non-empty strings'."""
    for article in ("an ", "a "):
        if text.startswith(article):
            text = text[len(article) :]
            break
    return re.sub(r"\b(integer|number|string)\b", r"\1s", text, count=1)


# ---- names, YAML and key=value overrides --------------------------------------------------------


def check_field_names(values: dict[str, Any], known: list[str], where: str = "") -> None:
    """Raise for the first unknown field, suggesting the nearest known name."""
    for name in values:
        if name not in known:
            hint = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
            suggestion = f"; did you mean {where + hint[0]!r}?" if hint else ""
            raise SaescopeError(
                f"unknown field {where + str(name)!r}{suggestion} Known fields: {', '.join(known)}."
            )


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SaescopeError(f"{path}: no such config file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise SaescopeError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(values, dict):
        raise SaescopeError(
            f"{path}: expected a mapping of field: value, got {type(values).__name__}"
        )
    return values


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """['k=64', 'corpus.source=builtin'] -> {'k': 64, 'corpus': {'source': 'builtin'}}.

    Values are parsed as YAML, so numbers, booleans, lists and null work as in a file;
    a dotted name sets one field of a section.
    """
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise SaescopeError(f"override {item!r}: expected field=value, e.g. k=64")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SaescopeError(f"override {item!r}: the value is not valid YAML ({err})") from err
        if isinstance(value, str) and value.replace("_", "").isdigit():
            value = int(value)  # '2_000_000' is a number, as in Python
        values = merge(values, nest_dotted({name: value}))
    return values


def nest_dotted(values: dict[str, Any]) -> dict[str, Any]:
    """{'optim.lr': 1e-3, 'seed': 1} -> {'optim': {'lr': 1e-3}, 'seed': 1}."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        *parents, last = name.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = value
    return nested


def merge(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win; mappings (sections) are merged key by key, at any depth."""
    merged = dict(values)
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = merge(merged[name], value)
        else:
            merged[name] = value
    return merged
