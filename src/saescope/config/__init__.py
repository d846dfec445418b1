"""Typed config schemas: each stage's config declared once, with checks, YAML/key=value overrides,
CLI flags and docs derived from the declaration (see saescope.config.schema for an example)."""

from saescope.config.docs import markdown_table
from saescope.config.flags import add_config_arguments, config_from_args, validate_flags
from saescope.config.schema import (
    REQUIRED,
    Config,
    check_field_names,
    merge,
    parse_count,
    parse_overrides,
    read_yaml,
    section,
    setting,
)

__all__ = [
    "REQUIRED",
    "Config",
    "add_config_arguments",
    "check_field_names",
    "config_from_args",
    "markdown_table",
    "merge",
    "parse_count",
    "parse_overrides",
    "read_yaml",
    "section",
    "setting",
    "validate_flags",
]
